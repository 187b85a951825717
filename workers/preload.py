"""Preload module for external Dask workers: ``dask worker SCHEDULER --preload workers.preload
--nthreads 1 --resources ocr=1``. Sets ``OMP_THREAD_LIMIT=1`` before anything starts
Tesseract, sets the allocator to keep page-sized buffers (:mod:`workers.memory`), and installs
the sohoa worker plugin (the driver registers it again with the run's settings when it
connects)."""

from __future__ import annotations

import os

from workers.memory import keep_page_buffers

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
keep_page_buffers()


async def dask_setup(worker) -> None:
    from workers.plugin import SohoaWorkerPlugin

    await worker.plugin_add(SohoaWorkerPlugin(), name="sohoa-preload")
