"""Page layout from OCR words: lines with boxes, split into the columns of a Decree-30 page.

Tesseract (psm 4) reads the two header columns as one line ("THỦ TƯỚNG CHÍNH PHỦ CỘNG HÒA XÃ
HỘI…"), and the same happens for "Nơi nhận" and the signature block. :func:`page_lines` splits a
line where a wide horizontal gap separates two groups of words; :func:`split_at` splits lines at a
known column boundary (the left edge of the Quốc hiệu) inside a band of the page.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pipeline.stages.models import PageResult, Word


@dataclass
class Line:
    """A run of words on one text line (possibly one column of a two-column line)."""

    page: int
    words: list[Word]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (
            min(w.bbox[0] for w in self.words),
            min(w.bbox[1] for w in self.words),
            max(w.bbox[2] for w in self.words),
            max(w.bbox[3] for w in self.words),
        )

    @property
    def x0(self) -> int:
        return self.bbox[0]

    @property
    def x1(self) -> int:
        return self.bbox[2]

    @property
    def top(self) -> int:
        return self.bbox[1]

    @property
    def bottom(self) -> int:
        return self.bbox[3]

    @property
    def height(self) -> int:
        hs = sorted(w.bbox[3] - w.bbox[1] for w in self.words)
        return max(1, hs[len(hs) // 2])

    @property
    def center_x(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def confidence(self) -> float:
        """Character-weighted mean OCR confidence of the words, 0–1."""
        total = sum(len(w.text) for w in self.words) or 1
        return sum(w.conf * len(w.text) for w in self.words) / total / 100.0

    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [self.bbox]

    def sub(self, start: int, end: int | None = None) -> Line:
        return Line(self.page, self.words[start:end])


def words_confidence(words: list[Word]) -> float:
    total = sum(len(w.text) for w in words) or 1
    return sum(w.conf * len(w.text) for w in words) / total / 100.0


def page_lines(page: PageResult, gap_factor: float = 3.0) -> list[Line]:
    """Lines in reading order (top to bottom, left to right within a row).

    A Tesseract line is split where the horizontal gap between two words is wider than
    ``gap_factor`` word heights (columns sharing one Tesseract line)."""
    by_line: dict[int, list[Word]] = {}
    for w in page.words:
        if not w.text.strip():
            continue
        by_line.setdefault(w.line, []).append(w)
    lines: list[Line] = []
    for key in sorted(by_line):
        words = sorted(by_line[key], key=lambda w: w.bbox[0])
        heights = sorted(w.bbox[3] - w.bbox[1] for w in words)
        h = max(heights[len(heights) // 2], 8)
        group = [words[0]]
        for prev, cur in zip(words, words[1:], strict=False):
            if cur.bbox[0] - prev.bbox[2] > gap_factor * h:
                lines.append(Line(page.page, group))
                group = []
            group.append(cur)
        lines.append(Line(page.page, group))
    return sort_lines(lines)


def sort_lines(lines: list[Line]) -> list[Line]:
    """Top to bottom; lines sharing a row (vertical overlap) ordered left to right."""
    lines = sorted(lines, key=lambda ln: (ln.top, ln.x0))
    rows: list[list[Line]] = []
    for ln in lines:
        if rows:
            ref = rows[-1][0]
            overlap = min(ref.bottom, ln.bottom) - max(ref.top, ln.top)
            if overlap > 0.5 * min(ref.height, ln.height):
                rows[-1].append(ln)
                continue
        rows.append([ln])
    out: list[Line] = []
    for row in rows:
        out.extend(sorted(row, key=lambda ln: ln.x0))
    return out


def split_at(lines: list[Line], x: float, y0: float = -1, y1: float = float("inf"), *, min_gap: float = 0) -> list[Line]:
    """Split lines whose words straddle ``x`` (by word centre) within the band ``y0 ≤ top < y1``;
    with ``min_gap``, only where the two parts are at least that far apart (a column gap, not a
    space between two words of one entry that runs past the middle of the page)."""
    out: list[Line] = []
    for ln in lines:
        if not (y0 <= ln.top < y1) or ln.x0 >= x or ln.x1 <= x:
            out.append(ln)
            continue
        left = [w for w in ln.words if (w.bbox[0] + w.bbox[2]) / 2 < x]
        right = [w for w in ln.words if (w.bbox[0] + w.bbox[2]) / 2 >= x]
        if min_gap and left and right and min(w.bbox[0] for w in right) - max(w.bbox[2] for w in left) < min_gap:
            out.append(ln)
            continue
        out.extend(Line(ln.page, part) for part in (left, right) if part)
    return sort_lines(out)


def median_height(lines: list[Line]) -> float:
    return statistics.median([ln.height for ln in lines]) if lines else 20.0
