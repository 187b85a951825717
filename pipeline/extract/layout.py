"""Page layout from OCR words: lines with boxes, split into the columns of a Decree-30 header."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import PageResult, Word


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
        return max(1, self.bottom - self.top)

    @property
    def center_x(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def confidence(self) -> float:
        total = sum(len(w.text) for w in self.words) or 1
        return sum(w.conf * len(w.text) for w in self.words) / total / 100.0

    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [self.bbox]


def page_lines(page: PageResult) -> list[Line]:
    """Lines in reading order; a line is split where a horizontal gap wider than ~4 word heights
    separates two groups of words (the two columns of a header share one Tesseract line)."""
    by_line: dict[int, list[Word]] = {}
    for w in page.words:
        by_line.setdefault(w.line, []).append(w)
    lines: list[Line] = []
    for key in sorted(by_line):
        words = sorted(by_line[key], key=lambda w: w.bbox[0])
        heights = sorted(w.bbox[3] - w.bbox[1] for w in words)
        h = max(heights[len(heights) // 2], 8)
        group = [words[0]]
        for prev, cur in zip(words, words[1:]):
            if cur.bbox[0] - prev.bbox[2] > 4 * h:
                lines.append(Line(page.page, group))
                group = []
            group.append(cur)
        lines.append(Line(page.page, group))
    lines.sort(key=lambda ln: (ln.top, ln.x0))
    return _merge_same_row(lines)


def _merge_same_row(lines: list[Line]) -> list[Line]:
    """Keep lines sorted top-to-bottom; lines of the same row stay separate but ordered by x."""
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
        out.extend(sorted(row, key=lambda l: l.x0))
    return out
