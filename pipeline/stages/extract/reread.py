"""A second, targeted OCR of one block of a page (the "Nơi nhận" list) from the stored page image.

Tesseract (``--psm 4``) reads the closing table of a Decree-30 page — "Nơi nhận" on the left, the
signature block on the right — as shared lines: one line box spans both columns (the bold
capitals of the signature block and the entries beside them), and short entries on the left come
out garbled ("ã THỨ" for "- Như trên;", "Giám đố," for "- Ban Giám đốc;"). The layout stage
puts the words in the right order but cannot un-garble them. Read alone, the same pixels read
right: :func:`reread_block` crops the block from the page image (the deskewed colour page that
the pipeline stores, ``PageOutput.image_jpeg``, whose pixels the word boxes refer to), pads it
with white, cleans it (:func:`prepare`) and runs Tesseract on it as one uniform block of text
(``--psm 6``), and returns the words in page coordinates.

:func:`merge_readings` then combines the two readings line by line: lines are paired by vertical
overlap, and of a pair the reading with the higher confidence stands (a line only one reading
has is kept). The re-read is best effort: no image, no Tesseract, a failure or a timeout leave
the page's own reading.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from typing import Any

import numpy as np

from pipeline.stages.extract.layout import Line
from pipeline.stages.models import Word

log = logging.getLogger(__name__)

PSM = 6  # a single uniform block of text
PAD = 24  # px of white around the crop (Tesseract wants a margin)
TIMEOUT_S = 20.0
#: A pair of lines (page reading, re-read) is the same line when they overlap vertically by more
#: than this fraction of the smaller height.
SAME_LINE = 0.5


def page_rgb(image: Any) -> np.ndarray | None:
    """The page image as 8-bit RGB: from encoded bytes (JPEG/PNG), a PIL image or an array."""
    if image is None:
        return None
    try:
        from PIL import Image  # deferred: loads PIL

        if isinstance(image, (bytes, bytearray, memoryview)):
            image = Image.open(io.BytesIO(bytes(image)))
        if isinstance(image, Image.Image):
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # no copy of an RGB page
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        return np.ascontiguousarray(arr[..., :3]).astype(np.uint8, copy=False)
    except Exception:  # noqa: BLE001 - a broken image means no re-read, never a failed document
        log.warning("page image unreadable for the targeted re-read", exc_info=True)
        return None


#: Grey level of the paper in the crop, as a percentile: the block is mostly paper.
PAPER_PERCENTILE = 60


def prepare(rgb: np.ndarray, dpi: int) -> np.ndarray:
    """The grey OCR copy of a crop of the colour page: the clean-up stage's illumination
    normalisation and seal suppression (:mod:`pipeline.stages.cleanup`), then a contrast stretch that
    maps the paper (the :data:`PAPER_PERCENTILE` grey level) to white and the darkest ink to black.

    The stretch matters: on the JPEG page, Tesseract reads the short capitals of the archive line
    ("Lưu: VT, HCTP.") as "LƯU: V†,HCÍIE." from the plain grey or merely normalised crop, and
    right once the soft grey stroke edges (blur, JPEG) are pushed to the paper. On the 45 office
    scans of benchmarks/extraction.py, Nơi nhận exact: grey crop 93.3 %, normalised 95.6 %,
    stretched 97.8 % (page OCR alone 88.9 %)."""
    import cv2  # deferred: loads cv2

    from pipeline.stages.cleanup import normalise_illumination, suppress_seals  # deferred: loads cv2

    gray = normalise_illumination(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dpi)
    gray, _ = suppress_seals(gray, rgb)
    lo = float(np.percentile(gray, 1))
    hi = float(np.percentile(gray, PAPER_PERCENTILE))
    if hi - lo < 32:  # no ink to speak of (or no paper): leave it
        return gray
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * 255.0 / (hi - lo), 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


def reread_block(rgb: np.ndarray, box: tuple[float, float, float, float], dpi: int, *, lang: str = "vie",
                 page: int | None = None) -> list[Word] | None:  # fmt: skip
    """Tesseract on the region ``box`` (x0, y0, x1, y1 in page pixels) of the page image ``rgb``,
    read as one block; words in page coordinates, ``line`` numbered in the block's reading order.
    None when the region is empty or Tesseract is unavailable or fails."""
    from pipeline._exec import tesseract  # deferred: loads tesserocr, PIL, pytesseract
    from pipeline.stages.ocr import parse_tsv  # deferred: loads tesserocr, cv2, PIL

    H, W = rgb.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(W, int(box[2])), min(H, int(box[3]))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    gray = prepare(np.ascontiguousarray(rgb[y0:y1, x0:x1]), dpi)
    crop = np.full((y1 - y0 + 2 * PAD, x1 - x0 + 2 * PAD), 255, dtype=np.uint8)
    crop[PAD : PAD + y1 - y0, PAD : PAD + x1 - x0] = gray
    try:
        out = tesseract.run(
            crop,
            dpi=dpi,
            lang=lang,
            psm=PSM,
            user_patterns=tesseract.PATTERNS_FILE,
            text_pdf=False,
            timeout_s=TIMEOUT_S,
            page=page,
        )
    except Exception:  # noqa: BLE001 - best effort: the page's own reading stays
        log.warning("targeted re-read failed (page %s, box %s)", page, box, exc_info=True)
        return None
    dx, dy = x0 - PAD, y0 - PAD
    return [
        w.model_copy(update={"bbox": (w.bbox[0] + dx, w.bbox[1] + dy, w.bbox[2] + dx, w.bbox[3] + dy)})
        for w in parse_tsv(out.tsv)
        if w.text.strip()
    ]


def lines_of(words: list[Word], page: int) -> list[Line]:
    """Lines of re-read words (one column: Tesseract's own lines), top to bottom."""
    by_line: dict[int, list[Word]] = {}
    for w in words:
        by_line.setdefault(w.line, []).append(w)
    lines = [Line(page, sorted(ws, key=lambda w: w.bbox[0])) for ws in by_line.values()]
    return sorted(lines, key=lambda ln: (ln.top, ln.x0))


def _overlap(a: Line, b: Line) -> float:
    inter = min(a.bottom, b.bottom) - max(a.top, b.top)
    return inter / max(1, min(a.bottom - a.top, b.bottom - b.top))


def _pairs(page_lines: list[Line], reread_lines: list[Line]) -> list[tuple[int, int]]:
    """Lines of two readings paired greedily by vertical overlap (> :data:`SAME_LINE` of the
    smaller height; a line pairs at most once)."""
    ranked = sorted(
        ((_overlap(p, r), i, j) for i, p in enumerate(page_lines) for j, r in enumerate(reread_lines)),
        reverse=True,
    )
    used_p: set[int] = set()
    used_r: set[int] = set()
    out = []
    for ov, i, j in ranked:
        if ov <= SAME_LINE or i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        out.append((i, j))
    return out


def _same_text(a: Line, b: Line) -> bool:
    def norm(ln: Line) -> str:
        return re.sub(r"[\s\-–—+•*_.,;:]", "", unicodedata.normalize("NFC", ln.text))

    return norm(a) == norm(b)


def disagreements(page_lines: list[Line], reread_lines: list[Line]) -> int:
    """Lines on which two readings of a block differ (punctuation and spacing aside), counting a
    line only one reading has: 0 means two independent readings agree character for character.
    (On the real development set a disagreement was often settled wrongly by confidence — the
    reading kept was at 0.96 and still wrong — so only agreement counts as evidence.)"""
    matched = _pairs(page_lines, reread_lines)
    differ = sum(not _same_text(page_lines[i], reread_lines[j]) for i, j in matched)
    return differ + (len(page_lines) - len(matched)) + (len(reread_lines) - len(matched))


def merge_readings(page_lines: list[Line], reread_lines: list[Line]) -> tuple[list[Line], int]:
    """One line list from two readings of the same block, top to bottom.

    Lines are paired greedily by vertical overlap (> :data:`SAME_LINE` of the smaller height; a
    line pairs at most once); of a pair the reading with the higher confidence is kept, a line
    only one reading has is kept as it is. Returns the lines and how many came from the re-read.
    """
    matched = _pairs(page_lines, reread_lines)
    used_p = {i for i, _ in matched}
    used_r = {j for _, j in matched}
    chosen: list[Line] = []
    taken = 0
    for i, j in matched:
        p, r = page_lines[i], reread_lines[j]
        if r.confidence > p.confidence:
            chosen.append(r)
            taken += 1
        else:
            chosen.append(p)
    chosen += [p for i, p in enumerate(page_lines) if i not in used_p]
    extra = [r for j, r in enumerate(reread_lines) if j not in used_r]
    chosen += extra
    taken += len(extra)
    return sorted(chosen, key=lambda ln: (ln.top, ln.x0)), taken
