"""Thin wrapper around the Tesseract executable (through ``pytesseract``).

One call produces, from one page image, the TSV of words with boxes and confidences and a
one-page *text-only* PDF (invisible text in Tesseract's glyphless font) that is laid over the
page image to make the searchable PDF. The worker runtime sets ``OMP_THREAD_LIMIT=1``:
Tesseract's OpenMP threads thrash when several pages run in parallel (11 s vs 2.2 s a page).
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytesseract
from PIL import Image

from .errors import MissingDependencyError, OcrError, OcrTimeoutError

PATTERNS_FILE = Path(__file__).with_name("data") / "vie.user-patterns"


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
) -> TesseractOutput:
    """OCR one page image (grey or RGB uint8) and return TSV and the text-only PDF."""
    config = [
        f"--psm {psm}",
        f"--oem {oem}",
        f"--dpi {int(dpi)}",
        "-c tessedit_create_tsv=1",
        f"-c preserve_interword_spaces={1 if preserve_interword_spaces else 0}",
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
