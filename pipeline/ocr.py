"""OCR stage: Tesseract ``vie`` on the cleaned page, words with boxes and confidences.

Output text is Unicode NFC (Tesseract may emit decomposed combining marks). Word boxes are
in pixels of the processed page (same geometry as the colour image kept for storage).
"""

from __future__ import annotations

import csv
import io
import time
import unicodedata

import numpy as np

from . import tesseract
from .config import LimitSettings, OcrSettings
from .models import ProcessedPage, Word


def parse_tsv(tsv: str) -> list[Word]:
    """Words (TSV level 5) in reading order with a running line index."""
    words: list[Word] = []
    line_ids: dict[tuple[int, int, int], int] = {}
    reader = csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if not header:
        return words
    col = {name: i for i, name in enumerate(header)}
    for row in reader:
        if len(row) < len(header) or row[col["level"]] != "5":
            continue
        text = unicodedata.normalize("NFC", row[col["text"]]).strip()
        if not text:
            continue
        key = (int(row[col["block_num"]]), int(row[col["par_num"]]), int(row[col["line_num"]]))
        line = line_ids.setdefault(key, len(line_ids))
        left, top = int(row[col["left"]]), int(row[col["top"]])
        width, height = int(row[col["width"]]), int(row[col["height"]])
        conf = float(row[col["conf"]])
        words.append(
            Word(
                text=text,
                conf=max(conf, 0.0),
                bbox=(left, top, left + width, top + height),
                line=line,
                block=key[0],
            )
        )
    return words


def words_to_text(words: list[Word]) -> str:
    """Page text: one output line per OCR line, a blank line between blocks."""
    lines: list[str] = []
    current_line = None
    current_block = None
    buf: list[str] = []
    for w in words:
        if w.line != current_line:
            if buf:
                lines.append(" ".join(buf))
            if current_block is not None and w.block != current_block:
                lines.append("")
            buf = []
            current_line = w.line
            current_block = w.block
        buf.append(w.text)
    if buf:
        lines.append(" ".join(buf))
    return unicodedata.normalize("NFC", "\n".join(lines))


def mean_confidence(words: list[Word]) -> float:
    """Character-weighted mean word confidence (0–100); 0 for an empty page."""
    total = sum(len(w.text) for w in words)
    if not total:
        return 0.0
    return sum(w.conf * len(w.text) for w in words) / total


def ocr_page(
    page: ProcessedPage, settings: OcrSettings, limits: LimitSettings, *, text_pdf: bool = True
) -> tuple[list[Word], str, float, bytes, float]:
    """Run Tesseract on ``page.ocr_image``.

    Returns ``(words, text, mean_confidence, text_only_pdf, seconds)``.
    """
    started = time.perf_counter()
    image = page.ocr_image
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., :3])
    out = tesseract.run(
        image,
        dpi=page.dpi,
        lang=settings.lang,
        psm=settings.psm,
        oem=settings.oem,
        preserve_interword_spaces=settings.preserve_interword_spaces,
        user_patterns=tesseract.PATTERNS_FILE if settings.user_patterns else None,
        text_pdf=text_pdf,
        timeout_s=limits.ocr_timeout_s,
        page=page.page,
    )
    words = parse_tsv(out.tsv)
    text = words_to_text(words)
    return words, text, mean_confidence(words), out.text_pdf, time.perf_counter() - started
