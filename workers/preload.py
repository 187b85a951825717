"""Preload module for external Dask workers: ``dask worker SCHEDULER --preload workers.preload
--nthreads 1 --resources ocr=1``. Sets ``OMP_THREAD_LIMIT=1`` before anything starts
Tesseract, and installs the sohoa worker plugin, which also sets the allocator to keep
page-sized buffers (:mod:`workers.memory`); the driver registers it again with the run's
settings when it connects. Workers need no PII key file: the driver ships the public
encryption ring with the run's settings (``pipeline.records.pii``)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


async def dask_setup(worker) -> None:
    """Install the worker plugin; a worker that lacks what it needs (Tesseract's language data,
    a PII key ring its environment names in ``SOHOA_PII_KEYRING``) fails to start, with the
    reason, instead of failing every document (issue 22)."""
    from workers.plugin import SohoaWorkerPlugin, WorkerRefused, leave  # deferred: loads dask, distributed, numpy

    keyring = os.environ.get("SOHOA_PII_KEYRING")  # this preload is an edge: it reads the environment
    plugin = SohoaWorkerPlugin(pii_keyring=Path(keyring) if keyring else None)
    try:
        await worker.plugin_add(plugin, name="sohoa-preload", catch_errors=False)
    except WorkerRefused as exc:  # before it registers: it never joins the scheduler
        await leave(worker, exc.message)
