"""Preload module for external Dask workers: ``dask worker SCHEDULER --preload workers.preload
--nthreads 1 --resources ocr=1``. Sets ``OMP_THREAD_LIMIT=1`` before anything starts
Tesseract, and installs the sohoa worker plugin, which also sets the allocator to keep
page-sized buffers (:mod:`workers.memory`); the driver registers it again with the run's
settings when it connects."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


async def dask_setup(worker) -> None:
    from workers.plugin import SohoaWorkerPlugin

    await worker.plugin_add(SohoaWorkerPlugin(), name="sohoa-preload")
