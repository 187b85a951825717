"""Thin wrapper around Tesseract: the library in process (default) or the executable.

One call produces, from one page image, the TSV of words with boxes and confidences and a
one-page *text-only* PDF carrying Tesseract's glyphless font, in which the searchable PDF's
invisible text layer is written (:mod:`pipeline.stages.pdf`).

Two engines, the same words and boxes:

* ``"library"``: Tesseract through ``tesserocr`` (a maintained Cython binding whose manylinux
  wheel bundles its own libtesseract, 5.5), one :class:`Engine` per thread, initialised once —
  the worker plugin does it at start-up, so ``vie`` is loaded once per worker and not once per
  page (~0.1 s a page). It reads Debian's ``vie`` data (``tesseract-ocr-vie``, the files the
  executable reads; :func:`tessdata_dir`). The deadline is Tesseract's own monitor.
* ``"cli"``: the ``tesseract`` executable (Debian's, 5.3; through ``pytesseract``), one process
  per page: a crash of Tesseract then costs one page, not the worker.

The two Tesseract versions read the same words with the same boxes; a word's confidence may
differ a little (benchmarks/ocr_engine.py compares them, tests/test_tesseract_engine.py checks it).

Tesseract's OpenMP threads thrash when several pages run in parallel (11 s vs 2.2 s a page):
the worker runtime sets ``OMP_THREAD_LIMIT=1`` for the executable; the wheel's libtesseract is
built without OpenMP and reads in the calling thread only.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytesseract
import tesserocr
from PIL import Image

from pipeline._exec import linkpatch
from pipeline.runtime.errors import MissingDependencyError, OcrError, OcrTimeoutError

PATTERNS_FILE = Path(__file__).with_name("data") / "vie.user-patterns"

#: Where Debian's ``tesseract-ocr-vie`` puts ``vie.traineddata`` (the library's own default,
#: ``./``, is no place to look); the folder the executable reports wins (:func:`tessdata_dir`).
DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")

#: Tesseract variables both engines set. ``tessedit_do_invert=0``: a line read with low
#: confidence is not read a second time as white-on-black text, which administrative records
#: do not carry (2.4 % of the OCR time of the throughput benchmark's pages, min of 3 runs;
#: the text read differs by 0.03 %; OCR error rates unchanged, extraction 99.8 → 99.6 %: one
#: field of 495 read differently).
ENGINE_VARIABLES = {"tessedit_do_invert": "0"}

TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
_MISSING = "tesseract is not installed (apt install tesseract-ocr)"


@dataclass(frozen=True)
class TesseractOutput:
    tsv: str
    text_pdf: bytes


@functools.lru_cache(maxsize=2)
def tesseract_version(engine_kind: str = "library") -> str:
    """Version of the Tesseract that reads the pages with ``engine_kind`` ("5.5.4", "5.3.0")."""
    if engine_kind == "library":
        found = re.match(r"tesseract\s+(\S+)", tesserocr.tesseract_version())
        return found.group(1) if found else tesserocr.tesseract_version().split("\n")[0]
    try:
        return str(pytesseract.get_tesseract_version())
    except pytesseract.TesseractNotFoundError as exc:  # pragma: no cover - install problem
        raise MissingDependencyError(_MISSING) from exc


@functools.lru_cache(maxsize=1)
def tessdata_dir() -> Path:
    """The folder of the language data both engines read: the one the ``tesseract`` executable
    reports (Debian: ``/usr/share/tesseract-ocr/5/tessdata``), else :data:`DEBIAN_TESSDATA`."""
    try:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, timeout=30, check=False)
        found = re.search(r'languages in "([^"]+)"', out.stdout.decode("utf-8", "replace"))
        if found and Path(found.group(1)).is_dir():
            return Path(found.group(1))
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - no executable: the library alone
        pass
    return DEBIAN_TESSDATA


@functools.lru_cache(maxsize=8)
def available_languages() -> tuple[str, ...]:
    """Languages whose ``.traineddata`` is in :func:`tessdata_dir`."""
    _, languages = tesserocr.get_languages(f"{tessdata_dir()}/")
    return tuple(languages)


def check_language(lang: str) -> None:
    """A typed error when a language of ``lang`` ("vie", "vie+eng") has no data installed."""
    missing = [part for part in lang.split("+") if part not in available_languages()]
    if missing:
        raise MissingDependencyError(
            f"Tesseract language data missing in {tessdata_dir()}: {', '.join(missing)} "
            "(apt install tesseract-ocr-vie)"
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
            raise MissingDependencyError(_MISSING) from exc
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


# --- in-process engine (tesserocr) ---------------------------------------------------------------


class Engine:
    """One initialised Tesseract: the language data loaded once, read with many times.

    Reading a page in process saves the ~0.1 s a page the executable spends loading ``vie``
    and the image round trip through a file: the page's pixels go to Tesseract as they are
    (``SetImageBytes``). Not thread-safe: :func:`engine` lends each to one thread at a time.
    """

    def __init__(self, lang: str, oem: int, user_patterns: Path | None):
        check_language(lang)
        # Tesseract's chatter ("Detected 51 diacritics", "Empty page!!") would land in the worker's
        # log once per page; what matters reaches the caller as a typed error or in the TSV.
        variables = {"debug_file": "/dev/null", **ENGINE_VARIABLES}
        if user_patterns is not None and user_patterns.exists():
            variables["user_patterns_file"] = str(user_patterns)  # read at initialisation only
        try:
            self._api = tesserocr.PyTessBaseAPI(path=f"{tessdata_dir()}/", lang=lang, oem=int(oem),
                                                variables=variables, init=True)  # fmt: skip
        except RuntimeError as exc:
            raise MissingDependencyError(
                f"Tesseract could not load language {lang!r} from {tessdata_dir()} (apt install tesseract-ocr-vie)"
            ) from exc

    def tsv(self, image: np.ndarray, *, dpi: int, psm: int, preserve_interword_spaces: bool, timeout_s: float,
            page: int | None = None) -> str:  # fmt: skip
        """The TSV of words (with the header line the executable writes) for one page image."""
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise OcrError(f"OCR needs an 8-bit grey or RGB image, got {image.dtype} {image.shape}", page=page)
        if self._api is None:
            raise OcrError("the Tesseract engine was closed", page=page)
        height, width = image.shape[:2]
        depth = 1 if image.ndim == 2 else image.shape[2]
        pixels = np.ascontiguousarray(image).tobytes()
        api = self._api
        api.SetPageSegMode(int(psm))
        api.SetVariable("preserve_interword_spaces", "1" if preserve_interword_spaces else "0")
        try:
            api.SetImageBytes(pixels, width, height, depth, width * depth)
            api.SetSourceResolution(int(dpi))
            started = time.monotonic()
            done = api.Recognize(timeout=max(1, int(timeout_s * 1000)))
            if time.monotonic() - started >= timeout_s:
                raise OcrTimeoutError(f"Tesseract took longer than {timeout_s:.0f} s", page=page)
            if not done:
                raise OcrError("Tesseract failed to recognise the page", page=page)
            return TSV_HEADER + (api.GetTSVText(0) or "")
        finally:
            api.Clear()

    def close(self) -> None:
        if self._api is not None:
            self._api.End()
            self._api = None


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
    searchable PDF's text layer (:mod:`pipeline.stages.pdf`) is written in. Made once per process."""
    return run(np.full((64, 64), 255, dtype=np.uint8), dpi=300, lang=lang, psm=6, text_pdf=True,
               engine_kind="cli").text_pdf  # fmt: skip


# --- opt-in: line images as PNM (OcrSettings.line_images_pnm, off by default) --------------------


def line_image_writer():
    """The import slot of ``pixWriteMem`` in the libtesseract ``tesserocr`` loaded
    (:class:`pipeline._exec.linkpatch.Slot`) with the addresses of its Leptonica's ``pixWriteMem`` and
    ``pixWriteMemPnm``; None where Tesseract is not version 5 or the slot is not found."""
    if not tesseract_version("library").startswith("5."):
        return None
    tess = linkpatch.loaded_library("libtesseract")
    lept = linkpatch.loaded_library("libleptonica") or linkpatch.loaded_library("liblept")
    if tess is None or lept is None:
        return None
    try:
        slot = linkpatch.find_slot(tess, "TessBaseAPICreate", "pixWriteMem")
        png, pnm = linkpatch.address_of(lept.pixWriteMem), linkpatch.address_of(lept.pixWriteMemPnm)
    except (OSError, AttributeError, ValueError):
        return None
    return None if slot is None else (slot, png, pnm)


def line_images_as_pnm() -> bool:
    """Opt-in (``OcrSettings.line_images_pnm``, ``SOHOA_OCR_LINE_IMAGES=pnm``; off by default):
    spare Tesseract a PNG round trip per text line by rewriting one pointer of the loaded
    libtesseract's global offset table; ``True`` when the redirect holds in this process.

    Before the LSTM reads a line, Tesseract 5 (``ImageData::SetPixInternal``; still so in the
    wheel's 5.5) stores the line's image as PNG in memory (``pixWriteMem(..., IFF_PNG)``) and
    decodes it right back; the zlib compression is ~10 % of the CPU time of OCR
    (benchmarks/ocr_engine.py measures it). The import of ``pixWriteMem`` is pointed at
    Leptonica's ``pixWriteMemPnm``, which takes the same first three arguments; the reading is
    bit for bit the same (both lossless; the benchmark and tests/test_linkpatch.py check it).
    It makes a read-only page of another library writable for a moment (:mod:`pipeline._exec.linkpatch`),
    hence off by default. Nothing is changed (``False``) unless the library is Tesseract 5 and
    its import of ``pixWriteMem`` is found and bound to Leptonica's.
    """
    found = line_image_writer()  # libtesseract is loaded with tesserocr's extension module
    if found is None:
        return False
    slot, png, pnm = found
    return linkpatch.redirect_import(slot, png, pnm)


def line_images_redirected() -> bool:
    """Whether this process's libtesseract writes its line images as PNM (the opt-in applied)."""
    found = line_image_writer()
    return found is not None and ctypes.c_void_p.from_address(found[0].address).value == found[2]
