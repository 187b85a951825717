"""``SohoaWorkerPlugin``: prepares a Dask worker for OCR work, once.

Registered by the driver with ``client.register_plugin(SohoaWorkerPlugin(settings))`` (also
on workers that join later). On setup it pins ``OMP_THREAD_LIMIT=1`` (Tesseract's OpenMP
threads thrash when pages run in parallel: ~11 s instead of ~2.2 s a page), checks that
Tesseract and its ``vie`` data are present, loads Tesseract with its language data into the
worker process once (:func:`pipeline.tesseract.preload`; the pages are then read in process,
not by one ``tesseract`` process each), loads the extraction model once, and builds the
per-process runtime (warehouse and signer clients) for the run's settings. It also sets the
allocator to keep page-sized buffers (:mod:`workers.memory`): with the Dask nanny's default
malloc setting, load, deskew and clean-up cost twice their CPU time. OpenCV gets one thread
per calling thread, as Tesseract does: its own pool of one thread per core made every worker
compete with the others for the cores (their helper threads spun in ``sched_yield``). Last, it
imports the stages a task runs (~0.9 s: OpenCV, pyHanko, aiohttp), so that a worker is ready
when it says so and its first page does not pay for them.
"""

from __future__ import annotations

import logging
import os

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger("sohoa.worker")


class SohoaWorkerPlugin(WorkerPlugin):
    name = "sohoa"

    def __init__(self, settings=None, *, lang: str = "vie"):
        self.settings = settings
        self.lang = settings.ocr.lang if settings is not None else lang

    def setup(self, worker) -> None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
        from pipeline import tesseract
        from workers.memory import keep_page_buffers

        keep_page_buffers()
        one_thread_per_task()

        tesseract.check_language(self.lang)
        ocr = self.settings.ocr if self.settings is not None else None
        if ocr is None or ocr.engine == "library":
            patterns = tesseract.PATTERNS_FILE if ocr is None or ocr.user_patterns else None
            tesseract.preload(self.lang, ocr.oem if ocr else 1, patterns)
        try:
            from pipeline.extract import load_model

            load_model(self.settings.model_dir if self.settings else None)
        except ImportError:  # extraction model support not installed in this build
            pass
        if self.settings is not None and self.settings.warehouse is not None:
            from pipeline.runtime import runtime_for

            runtime_for(self.settings)
        import_stages()
        log.info("sohoa worker ready: tesseract %s, lang %s", tesseract.tesseract_version(), self.lang)


def one_thread_per_task() -> None:
    """OpenCV's parallel loops in the calling thread only: a worker runs one task per core."""
    import cv2

    cv2.setNumThreads(1)


def import_stages() -> None:
    """Import what the tasks of :mod:`pipeline.document` import on first use."""
    import importlib

    for name in ("pipeline.document", "pipeline.load", "pipeline.deskew", "pipeline.cleanup", "pipeline.ocr",
                 "pipeline.quality", "pipeline.validate", "pipeline.store", "pipeline.pdf", "pipeline.pades",
                 "pyhanko.sign.signers", "pyhanko.sign.signers.csc_signer",
                 "pyhanko.pdf_utils.incremental_writer", "aiohttp"):  # fmt: skip
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing from this build: its stage says so when used
            pass
