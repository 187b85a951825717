"""``SohoaWorkerPlugin``: prepares a Dask worker for OCR work, once.

Registered by the driver with ``client.register_plugin(SohoaWorkerPlugin(settings))`` (also
on workers that join later). On setup it pins ``OMP_THREAD_LIMIT=1`` (Tesseract's OpenMP
threads thrash when pages run in parallel: ~11 s instead of ~2.2 s a page), checks that
Tesseract and its ``vie`` data are present, loads Tesseract with its language data into the
worker process once (:func:`pipeline._exec.tesseract.preload`, through ``tesserocr``; the pages are
then read in process, not by one ``tesseract`` process each), loads the extraction model once, and builds the
per-process runtime (warehouse and signer clients) for the run's settings. It also sets the
allocator to keep page-sized buffers (:mod:`workers.memory`): with the Dask nanny's default
malloc setting, load, deskew and clean-up cost twice their CPU time. OpenCV gets one thread
per calling thread, as Tesseract does: its own pool of one thread per core made every worker
compete with the others for the cores (their helper threads spun in ``sched_yield``). Last, it
imports the stages a task runs (~0.9 s: OpenCV, pyHanko, aiohttp), so that a worker is ready
when it says so and its first page does not pay for them.

A worker that lacks what the run needs is refused when it joins, not per document (issue 22):
before any of the above it checks the key material the run's settings need
(:func:`check_key_material`) — with a public-key PII ring the driver ships the encryption ring
in the settings and a worker needs no key file; with a legacy symmetric ring every worker
needs the ring file — and Tesseract's language data. On failure it logs the reason, closes
itself (and its nanny: ``dask worker`` exits) and raises :class:`WorkerRefused`, which
``client.register_plugin`` re-raises in the driver before any document is accepted.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from pathlib import Path

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.runtime.errors import ConfigurationError, SohoaError
from workers.memory import keep_page_buffers

log = logging.getLogger("sohoa.worker")


class WorkerRefused(ConfigurationError):
    """This worker lacks what the run needs (key material, language data): it does not join."""

    stage = "worker"
    code = "worker_refused"


def check_key_material(settings=None, pii_keyring: Path | None = None) -> str:
    """Check that this worker can encrypt personal data as the run needs; say how.

    ``settings``: the run's (from the driver); ``pii_keyring``: a ring file the worker's own
    environment names (``SOHOA_PII_KEYRING`` read by ``workers.preload``). Raises
    :class:`~pipeline.runtime.errors.ConfigurationError` with the reason."""
    from pipeline.records.pii import KeyRing  # deferred: loads cryptography, pydantic

    if settings is not None and settings.pii_encryption:
        ring = KeyRing.from_json(settings.pii_encryption)
        if not ring.current_is_public:
            raise ConfigurationError("the run's PII encryption ring has no public key")
        return f"PII encryption to public key {ring.current_kid} (no decryption key on this worker)"
    path = settings.pii_keyring if settings is not None and settings.pii_keyring is not None else pii_keyring
    if path is None:
        return "no PII key ring configured"
    try:
        ring = KeyRing.load(path)
    except ConfigurationError as exc:
        hint = (" (the run's key ring has a symmetric current key, which every worker needs: mount it there, "
                "or add a public key with `sohoa pii rotate` so that workers need no key file)"
                if settings is not None else "")  # fmt: skip
        raise ConfigurationError(f"{exc.message}{hint}") from None
    if ring.can_decrypt:
        log.warning("this worker holds PII decryption keys (%s): workers need none; mount the full ring "
                    "on the API and the driver only", path)  # fmt: skip
    return f"PII key ring {path} (current key {ring.current_kid})"


#: exit status of a worker process that refused to join
REFUSED_EXIT_CODE = 78  # EX_CONFIG (sysexits.h)


def refuse(worker, reason: str, *, delay_s: float = 1.0) -> WorkerRefused:
    """Log ``reason``, make ``worker`` leave (after ``delay_s``: the error goes back to the
    driver that registered the plugin first) and return the error to raise."""
    name = getattr(worker, "name", None) or getattr(worker, "address", None) or "?"
    message = f"sohoa worker {name} refused: {reason}"
    log.error(message)
    loop = getattr(worker, "loop", None)
    if loop is not None:
        loop.call_later(delay_s, lambda: loop.add_callback(leave, worker, reason))
    return WorkerRefused(message)


async def leave(worker, reason: str = "sohoa-worker-refused") -> None:
    """Stop this worker process for good, then exit; ``dask worker`` ends with it. A worker
    still starting (``--preload``) just exits: its nanny's start fails and it closes. A running
    one first tells its nanny not to start it again (a nanny restarts a worker that dies)."""
    nanny = getattr(worker, "nanny", None)
    if nanny and getattr(worker, "status", None) not in (Status.init, Status.undefined):
        try:
            async with worker.rpc(nanny) as r:
                await asyncio.wait_for(r.close_gracefully(reason="sohoa-worker-refused"), 5)
        except Exception as exc:  # noqa: BLE001 - the nanny gone already: exiting is all that is left
            log.warning("could not tell the nanny %s: %s", nanny, exc)
    logging.shutdown()
    os._exit(REFUSED_EXIT_CODE)


class SohoaWorkerPlugin(WorkerPlugin):
    name = "sohoa"

    def __init__(self, settings=None, *, lang: str = "vie", pii_keyring: Path | None = None):
        self.settings = settings
        self.lang = settings.ocr.lang if settings is not None else lang
        self.pii_keyring = pii_keyring

    def setup(self, worker) -> None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
        from pipeline._exec import tesseract  # deferred: loads tesserocr, PIL, pytesseract

        try:  # what every document needs, checked once, here: a worker that lacks it never joins
            keys = check_key_material(self.settings, self.pii_keyring)
            tesseract.check_language(self.lang)
        except SohoaError as exc:
            raise refuse(worker, exc.message) from None
        log.info("sohoa worker: %s", keys)

        keep_page_buffers()
        one_thread_per_task()
        ocr = self.settings.ocr if self.settings is not None else None
        if ocr is None or ocr.engine == "library":
            patterns = tesseract.PATTERNS_FILE if ocr is None or ocr.user_patterns else None
            tesseract.preload(self.lang, ocr.oem if ocr else 1, patterns)
            if ocr is not None and ocr.line_images_pnm:  # opt-in, off by default: patches libtesseract's GOT
                log.info("line images as PNM: %s", tesseract.line_images_as_pnm())
        try:
            from pipeline.stages.extract import load_model  # deferred: optional dependency, its absence is handled here

            load_model(self.settings.model_dir if self.settings else None)
        except ImportError:  # extraction model support not installed in this build
            pass
        if self.settings is not None and self.settings.warehouse is not None:
            from pipeline.runtime.clients import runtime_for  # deferred: loads minio, urllib3, stamina

            runtime_for(self.settings)
        import_stages()
        log.info("sohoa worker ready: tesseract %s, lang %s", tesseract.tesseract_version(), self.lang)


def one_thread_per_task() -> None:
    """OpenCV's parallel loops in the calling thread only: a worker runs one task per core."""
    import cv2  # deferred: loads cv2

    cv2.setNumThreads(1)


def import_stages() -> None:
    """Import what the tasks of :mod:`pipeline.runtime.document` import on first use."""
    for name in ("pipeline.runtime.document", "pipeline.stages.load", "pipeline.stages.deskew", "pipeline.stages.cleanup", "pipeline.stages.ocr",
                 "pipeline.stages.quality", "pipeline.stages.validate", "pipeline.warehouse.store", "pipeline.stages.pdf", "pipeline.signing.pades",
                 "pyhanko.sign.signers", "pyhanko.sign.signers.csc_signer",
                 "pyhanko.pdf_utils.incremental_writer", "aiohttp"):  # fmt: skip
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing from this build: its stage says so when used
            pass
