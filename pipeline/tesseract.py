"""Thin wrapper around Tesseract: the library in process (default) or the executable.

One call produces, from one page image, the TSV of words with boxes and confidences and a
one-page *text-only* PDF carrying Tesseract's glyphless font, in which the searchable PDF's
invisible text layer is written (:mod:`pipeline.pdf`).

Two engines, the same output:

* ``"library"``: libtesseract through its C API (``ctypes``), one :class:`Engine` per thread,
  initialised once — the worker plugin does it at start-up, so ``vie`` is loaded once per worker
  and not once per page (~0.1 s a page). The deadline is Tesseract's own monitor.
* ``"cli"``: the ``tesseract`` executable (through ``pytesseract``), one process per page.

Tesseract's OpenMP threads thrash when several pages run in parallel (11 s vs 2.2 s a page):
the worker runtime sets ``OMP_THREAD_LIMIT=1`` and the library engine also asks libgomp for
one thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytesseract
from PIL import Image

from .errors import MissingDependencyError, OcrError, OcrTimeoutError

PATTERNS_FILE = Path(__file__).with_name("data") / "vie.user-patterns"

#: Tesseract variables both engines set. ``tessedit_do_invert=0``: a line read with low
#: confidence is not read a second time as white-on-black text, which administrative records
#: do not carry (2.4 % of the OCR time of the throughput benchmark's pages, min of 3 runs;
#: the text read differs by 0.03 %; OCR error rates unchanged, extraction 99.8 → 99.6 %: one
#: field of 495 read differently).
ENGINE_VARIABLES = {"tessedit_do_invert": "0"}


@dataclass(frozen=True)
class TesseractOutput:
    tsv: str
    text_pdf: bytes


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str:
    try:
        return str(pytesseract.get_tesseract_version())
    except pytesseract.TesseractNotFoundError as exc:  # pragma: no cover - install problem
        raise MissingDependencyError("tesseract is not installed (apt install tesseract-ocr)") from exc


@functools.lru_cache(maxsize=8)
def available_languages() -> tuple[str, ...]:
    try:
        return tuple(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError as exc:  # pragma: no cover
        raise MissingDependencyError("tesseract is not installed (apt install tesseract-ocr)") from exc


def check_language(lang: str) -> None:
    missing = [part for part in lang.split("+") if part not in available_languages()]
    if missing:
        raise MissingDependencyError(
            f"Tesseract language data missing: {', '.join(missing)} (apt install tesseract-ocr-vie)"
        )


def run(
    image: np.ndarray,
    *,
    dpi: int,
    lang: str,
    psm: int,
    oem: int = 1,
    preserve_interword_spaces: bool = True,
    user_patterns: Path | None = None,
    text_pdf: bool = True,
    timeout_s: float = 180.0,
    page: int | None = None,
    engine_kind: str = "library",
) -> TesseractOutput:
    """OCR one page image (grey or RGB uint8) and return TSV and the text-only PDF."""
    if engine_kind == "library":
        with engine(lang, oem, user_patterns) as tess:
            tsv = tess.tsv(image, dpi=dpi, psm=psm, preserve_interword_spaces=preserve_interword_spaces,
                           timeout_s=timeout_s, page=page)  # fmt: skip
        return TesseractOutput(tsv=tsv, text_pdf=glyphless_font_pdf(lang) if text_pdf else b"")
    if engine_kind != "cli":
        raise ValueError(f"unknown Tesseract engine {engine_kind!r} (library, cli)")
    config = [
        f"--psm {psm}",
        f"--oem {oem}",
        f"--dpi {int(dpi)}",
        "-c tessedit_create_tsv=1",
        f"-c preserve_interword_spaces={1 if preserve_interword_spaces else 0}",
        *(f"-c {name}={value}" for name, value in ENGINE_VARIABLES.items()),
    ]
    if user_patterns is not None and user_patterns.exists():
        config.append(f"--user-patterns {user_patterns}")
    extensions = ["tsv"]
    if text_pdf:
        config.append("-c textonly_pdf=1")
        extensions.append("pdf")
    with tempfile.TemporaryDirectory(prefix="sohoa-ocr-") as tmp:
        # uncompressed PGM/PPM: no PNG encode (0.2 s a page) and decode; --dpi gives the resolution
        src = Path(tmp) / "page.pnm"
        Image.fromarray(image).save(src, format="PPM")
        out_base = Path(tmp) / "out"
        try:
            pytesseract.pytesseract.run_tesseract(
                str(src),
                str(out_base),
                extension=" ".join(extensions),
                lang=lang,
                config=" ".join(config),
                timeout=timeout_s,
            )
        except RuntimeError as exc:
            if "timeout" in str(exc).lower():
                raise OcrTimeoutError(f"Tesseract took longer than {timeout_s:.0f} s", page=page) from exc
            raise OcrError(f"Tesseract failed: {exc}", page=page) from exc
        except pytesseract.TesseractError as exc:
            raise OcrError(f"Tesseract failed: {exc.message}", page=page) from exc
        except pytesseract.TesseractNotFoundError as exc:
            raise MissingDependencyError("tesseract is not installed (apt install tesseract-ocr)") from exc
        tsv = out_base.with_suffix(".tsv").read_text(encoding="utf-8", errors="replace")
        pdf = out_base.with_suffix(".pdf").read_bytes() if text_pdf else b""
    return TesseractOutput(tsv=tsv, text_pdf=pdf)


def osd(image: np.ndarray, *, timeout_s: float = 30.0) -> dict[str, str]:
    """Tesseract's orientation and script detection (``--psm 0``) as a dict of its fields."""
    with tempfile.TemporaryDirectory(prefix="sohoa-osd-") as tmp:
        src = Path(tmp) / "page.pnm"
        Image.fromarray(image).save(src, format="PPM")
        try:
            out = subprocess.run(
                ["tesseract", str(src), "-", "--psm", "0"],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrTimeoutError("orientation detection timed out") from exc
    fields: dict[str, str] = {}
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


# --- in-process engine (libtesseract through its C API) ----------------------------------------

TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    """libtesseract (``libtesseract5``, installed with ``tesseract-ocr``), its C API declared."""
    name = ctypes.util.find_library("tesseract") or "libtesseract.so.5"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise MissingDependencyError(f"libtesseract not found ({name}): apt install tesseract-ocr") from exc
    p, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for fn, res, args in (
        ("TessBaseAPICreate", p, []),
        ("TessBaseAPIDelete", None, [p]),
        ("TessBaseAPIInit4", c_int, [p, c_char_p, c_char_p, c_int, p, c_int,
                                     ctypes.POINTER(c_char_p), ctypes.POINTER(c_char_p), ctypes.c_size_t, c_int]),
        ("TessBaseAPISetVariable", c_int, [p, c_char_p, c_char_p]),
        ("TessBaseAPISetPageSegMode", None, [p, c_int]),
        ("TessBaseAPISetImage", None, [p, p, c_int, c_int, c_int, c_int]),
        ("TessBaseAPISetSourceResolution", None, [p, c_int]),
        ("TessBaseAPIRecognize", c_int, [p, p]),
        ("TessBaseAPIGetTsvText", p, [p, c_int]),
        ("TessBaseAPIClear", None, [p]),
        ("TessBaseAPIEnd", None, [p]),
        ("TessDeleteText", None, [p]),
        ("TessMonitorCreate", p, []),
        ("TessMonitorDelete", None, [p]),
        ("TessMonitorSetDeadlineMSecs", None, [p, c_int]),
    ):
        func = getattr(lib, fn)
        func.restype, func.argtypes = res, args
    line_images_as_pnm(lib)
    return lib


@functools.lru_cache(maxsize=1)
def line_images_as_pnm(lib: ctypes.CDLL | None = None) -> bool:
    """Spare Tesseract a PNG round trip per text line; ``True`` when done in this process.

    Before the LSTM reads a line, Tesseract 5.3 (``ImageData::SetPixInternal``) stores the
    line's image as PNG in memory (``pixWriteMem(..., IFF_PNG)``) and decodes it right back.
    On the throughput benchmark's pages the zlib compression alone was ~10 % of the CPU time
    of OCR (``perf``). Tesseract itself falls back to PNM there when Leptonica has no PNG; newer
    Tesseract builds keep the image as it is (``TESSERACT_IMAGEDATA_AS_PIX``). Here the import
    of ``pixWriteMem`` in the loaded libtesseract is pointed at Leptonica's ``pixWriteMemPnm``
    (:mod:`pipeline.linkpatch`), which takes the same first three arguments; the reading is
    bit for bit the same (PNM and PNG are both lossless; benchmarks/ocr_engine.py checks it and
    measures the gain). The only other caller of ``pixWriteMem`` in libtesseract 5 is the
    ScrollView debugging viewer. Nothing is changed (``False``) unless the library is
    Tesseract 5 and its import of ``pixWriteMem`` is found and bound to Leptonica's.
    """
    from . import linkpatch

    found = line_image_writer(lib or _library())
    if found is None:
        return False
    slot, png, pnm = found
    return linkpatch.redirect_import(slot, png, pnm)


def line_image_writer(lib: ctypes.CDLL | None = None):
    """libtesseract's import slot of ``pixWriteMem`` (:class:`pipeline.linkpatch.Slot`) with the
    addresses of Leptonica's ``pixWriteMem`` and ``pixWriteMemPnm``; None where Tesseract is not
    version 5 or the slot is not found."""
    from . import linkpatch

    lib = lib or _library()
    try:
        lib.TessVersion.restype = ctypes.c_char_p
        if not (lib.TessVersion() or b"").startswith(b"5."):
            return None
        lept = ctypes.CDLL(ctypes.util.find_library("lept") or "liblept.so.5")
        slot = linkpatch.find_slot(lib, "TessBaseAPICreate", "pixWriteMem")
    except (OSError, AttributeError, ValueError):
        return None
    if slot is None:
        return None
    return slot, linkpatch.address_of(lept.pixWriteMem), linkpatch.address_of(lept.pixWriteMemPnm)


@functools.lru_cache(maxsize=1)
def _gomp() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("gomp") or "libgomp.so.1")
    except OSError:  # pragma: no cover - a Tesseract built without OpenMP
        return None


def _limit_openmp() -> None:
    """One OpenMP thread for Tesseract in the calling thread, whatever the environment said
    when libgomp was loaded (``OMP_THREAD_LIMIT`` is read only then)."""
    gomp = _gomp()
    if gomp is not None:
        gomp.omp_set_num_threads(1)


class Engine:
    """One initialised Tesseract: the language data loaded once, read with many times.

    Reading a page in process saves the ~0.1 s a page the executable spends loading ``vie``
    and the image round trip through a file. Not thread-safe: :func:`engine` lends each to one
    thread at a time.
    """

    def __init__(self, lang: str, oem: int, user_patterns: Path | None):
        check_language(lang)
        self._lib = _library()
        self._handle = self._lib.TessBaseAPICreate()
        names: list[bytes] = []
        values: list[bytes] = []
        if user_patterns is not None and user_patterns.exists():
            names.append(b"user_patterns_file")
            values.append(str(user_patterns).encode())
        n = len(names)
        rc = self._lib.TessBaseAPIInit4(
            self._handle, None, lang.encode(), oem, None, 0,
            (ctypes.c_char_p * max(n, 1))(*names), (ctypes.c_char_p * max(n, 1))(*values), n, 0,
        )  # fmt: skip
        if rc != 0:
            self._lib.TessBaseAPIDelete(self._handle)
            self._handle = None
            raise MissingDependencyError(f"Tesseract could not load language {lang!r} (apt install tesseract-ocr-vie)")
        # Tesseract's chatter ("Detected 51 diacritics", "Empty page!!") would land in the worker's
        # log once per page; what matters reaches the caller as a typed error or in the TSV.
        self._lib.TessBaseAPISetVariable(self._handle, b"debug_file", b"/dev/null")
        for name, value in ENGINE_VARIABLES.items():
            self._lib.TessBaseAPISetVariable(self._handle, name.encode(), value.encode())

    def tsv(self, image: np.ndarray, *, dpi: int, psm: int, preserve_interword_spaces: bool, timeout_s: float,
            page: int | None = None) -> str:  # fmt: skip
        """The TSV of words (with the header line the executable writes) for one page image."""
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise OcrError(f"OCR needs an 8-bit grey or RGB image, got {image.dtype} {image.shape}", page=page)
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        depth = 1 if image.ndim == 2 else image.shape[2]
        lib, handle = self._lib, self._handle
        lib.TessBaseAPISetPageSegMode(handle, psm)
        lib.TessBaseAPISetVariable(handle, b"preserve_interword_spaces", b"1" if preserve_interword_spaces else b"0")
        lib.TessBaseAPISetImage(handle, image.ctypes.data, width, height, depth, width * depth)
        lib.TessBaseAPISetSourceResolution(handle, int(dpi))
        monitor = lib.TessMonitorCreate()
        try:
            lib.TessMonitorSetDeadlineMSecs(monitor, int(timeout_s * 1000))
            started = time.monotonic()
            rc = lib.TessBaseAPIRecognize(handle, monitor)
            if time.monotonic() - started >= timeout_s:
                raise OcrTimeoutError(f"Tesseract took longer than {timeout_s:.0f} s", page=page)
            if rc != 0:
                raise OcrError(f"Tesseract failed to recognise the page (rc {rc})", page=page)
            text = lib.TessBaseAPIGetTsvText(handle, 0)
            if not text:
                return TSV_HEADER
            try:
                return TSV_HEADER + ctypes.string_at(text).decode("utf-8", "replace")
            finally:
                lib.TessDeleteText(text)
        finally:
            lib.TessMonitorDelete(monitor)
            lib.TessBaseAPIClear(handle)

    def close(self) -> None:
        if self._handle:
            self._lib.TessBaseAPIEnd(self._handle)
            self._lib.TessBaseAPIDelete(self._handle)
            self._handle = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


_pool_lock = threading.Lock()
_pool: dict[tuple, list[Engine]] = {}


def _key(lang: str, oem: int, user_patterns: Path | None) -> tuple:
    return (lang, oem, str(user_patterns) if user_patterns else None)


@contextlib.contextmanager
def engine(lang: str, oem: int = 1, user_patterns: Path | None = None) -> Iterator[Engine]:
    """An idle engine for ``(lang, oem, user_patterns)`` from this process's pool, created when
    none is idle (one per thread reading at the same time), returned to the pool after use."""
    key = _key(lang, oem, user_patterns)
    with _pool_lock:
        idle = _pool.setdefault(key, [])
        found = idle.pop() if idle else None
    if found is None:
        found = Engine(lang, oem, user_patterns)
    _limit_openmp()  # per calling thread
    try:
        yield found
    finally:
        with _pool_lock:
            _pool[key].append(found)


def preload(lang: str, oem: int = 1, user_patterns: Path | None = None) -> None:
    """Load the language data into an idle engine now (worker start-up), not on the first page."""
    with engine(lang, oem, user_patterns):
        pass
    glyphless_font_pdf(lang)


@functools.lru_cache(maxsize=4)
def glyphless_font_pdf(lang: str = "vie") -> bytes:
    """A text-only PDF page of a blank image: it carries Tesseract's glyphless font, which the
    searchable PDF's text layer (:mod:`pipeline.pdf`) is written in. Made once per process."""
    return run(np.full((64, 64), 255, dtype=np.uint8), dpi=300, lang=lang, psm=6, text_pdf=True,
               engine_kind="cli").text_pdf  # fmt: skip
