"""Reading-order stage (thứ tự đọc): the OCR words of a page put in the order of its physical layout.

Tesseract with ``--psm 4`` reads a page as one column of lines of variable size. On a page laid
out per Decree 30/2020/NĐ-CP that interleaves side-by-side blocks line by line: the header table
(tên cơ quan ban hành on the left, Quốc hiệu và Tiêu ngữ on the right) comes out as "ỦY BAN NHÂN
DÂN CỘNG HÒA XÃ HỘI …", and the closing table ("Nơi nhận:" on the left, the signature block —
quyền hạn, chức vụ, chữ ký, họ tên — on the right) as "Nơi nhận: KT. CHỦ TỊCH / - Như trên; PHÓ
CHỦ TỊCH …". This stage recovers the layout from the word boxes alone, for any page:

1. a Tesseract line is cut into *segments* where a horizontal gap wider than
   ``GAP_FACTOR`` word heights separates two runs of words (two columns sharing one line);
2. segments that overlap vertically form a *row*;
3. a *band* is a run of rows that all leave free a common vertical *gutter* (a white channel,
   at least ``MIN_GUTTER`` word heights wide, in the middle part of the text width), grown from
   a row with text on both sides of it; only such rows narrow the gutter. Full-width lines
   (body text) and lines centred on the page (titles, page numbers) end a band;
4. inside a band each side of the gutter is a column; a column is cut into *blocks* at vertical
   gaps wider than ``BLOCK_GAP`` word heights and before a "Nơi nhận" line (all below it in its
   column is the recipients list), a "Số:" line or a place and date line; blocks are read top
   to bottom, blocks starting at the same height (within ``TIE`` word heights) left to right —
   except that a one-line block beside a longer one is read with the longer one's first line;
5. a block that starts with "Nơi nhận" is read after the other blocks of its band: the recipients
   list is the last component of an administrative document (Decree 30/2020/NĐ-CP, Art. 8 (i)),
   after the signature block beside it.

Rows outside bands keep their top-to-bottom order. Words keep their boxes and confidences;
``line`` and ``block`` are renumbered in the new reading order.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from dataclasses import dataclass, field

from pipeline.stages.models import Word

GAP_FACTOR = 2.5  # horizontal gap, in word heights, that cuts a Tesseract line in two
MIN_GUTTER = 1.0  # minimum width of a column gutter, in word heights
GUTTER_ZONE = (0.15, 0.85)  # a gutter must reach into this part of the text width
CENTRED_TOLERANCE = 0.06  # a single segment this close (× text width) to the centre is centred
BLOCK_GAP = 0.9  # vertical gap, in word heights, that starts a new block inside a column
TIE = 0.6  # blocks whose tops differ by less than this (× word height) start "at the same height"
#: "Nơi nhận:" (recipients list), the "Số:" (số, ký hiệu) label and the "…, ngày … tháng … năm …"
#: of the place and date line, matched on the letters without their marks (:func:`_fold`): a fax
#: or a worn ribbon changes a tone or a vowel mark, "Nởi nhận:", "Sổ:" (benchmarks/ocr_quality.py,
#: fax), and the line still opens its component.
RECIPIENTS = re.compile(r"^noi\s*nhan\b")
NUMBER_LABEL = re.compile(r"^so\s*:")
DATE_LINE = re.compile(r"\bngay\s+\S{1,3}\s+thang\s+\S{1,3}\s+nam\b")


@dataclass
class Segment:
    """A run of words of one Tesseract line, with no wide gap inside."""

    words: list[Word]
    block: int  # Tesseract block of the line it came from

    @property
    def x0(self) -> int:
        return min(w.bbox[0] for w in self.words)

    @property
    def x1(self) -> int:
        return max(w.bbox[2] for w in self.words)

    @property
    def top(self) -> int:
        return min(w.bbox[1] for w in self.words)

    @property
    def bottom(self) -> int:
        return max(w.bbox[3] for w in self.words)

    @property
    def height(self) -> float:
        return word_height(self.words)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Row:
    segments: list[Segment] = field(default_factory=list)

    @property
    def top(self) -> int:
        return min(s.top for s in self.segments)

    @property
    def bottom(self) -> int:
        return max(s.bottom for s in self.segments)


def word_height(words: list[Word]) -> float:
    """Median box height of the words with at least two characters (punctuation is flat)."""
    tall = [w.bbox[3] - w.bbox[1] for w in words if len(w.text) >= 2] or [w.bbox[3] - w.bbox[1] for w in words]
    return float(max(1, statistics.median(tall))) if tall else 1.0


def split_line(words: list[Word], block: int, gap_factor: float = GAP_FACTOR) -> list[Segment]:
    """Cut one Tesseract line (words left to right) where a gap exceeds ``gap_factor`` word heights."""
    words = sorted(words, key=lambda w: w.bbox[0])
    h = word_height(words)
    segments = [Segment([words[0]], block)]
    for prev, cur in zip(words, words[1:], strict=False):
        if cur.bbox[0] - prev.bbox[2] > gap_factor * h:
            segments.append(Segment([], block))
        segments[-1].words.append(cur)
    return segments


def segments_of(words: list[Word], gap_factor: float = GAP_FACTOR, dropped: set[int] | None = None) -> list[Segment]:
    """Segments of all lines, in Tesseract's line order.

    ``dropped``: ``id()`` of words that are not text (see :func:`pipeline.stages.ocr.drop_non_text`).
    They still take their place when lines are cut — a dropped word inside a line is no gap
    between columns — but are left out of the segments; segments left empty disappear.
    """
    lines: dict[int, list[Word]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    out: list[Segment] = []
    for line in lines.values():
        for seg in split_line(line, line[0].block, gap_factor):
            if dropped:
                seg.words = [w for w in seg.words if id(w) not in dropped]
            if seg.words:
                out.append(seg)
    return out


def group_rows(segments: list[Segment]) -> list[Row]:
    """Rows of vertically overlapping segments (more than half the smaller height), top to bottom."""
    rows: list[Row] = []
    for seg in sorted(segments, key=lambda s: ((s.top + s.bottom) / 2, s.x0)):
        if rows:
            row = rows[-1]
            overlap = min(row.bottom, seg.bottom) - max(row.top, seg.top)
            if overlap > 0.5 * min(seg.bottom - seg.top, row.bottom - row.top):
                row.segments.append(seg)
                continue
        rows.append(Row([seg]))
    for row in rows:
        row.segments.sort(key=lambda s: s.x0)
    return rows


Interval = tuple[float, float]


def _free(row: Row, x0: float, x1: float) -> list[Interval]:
    """White horizontal intervals of a row inside ``[x0, x1]``."""
    free, at = [], x0
    for s in sorted(row.segments, key=lambda s: s.x0):
        if s.x0 > at:
            free.append((at, float(s.x0)))
        at = max(at, float(s.x1))
    if at < x1:
        free.append((at, x1))
    return free


def _intersect(a: list[Interval], b: list[Interval], min_width: float) -> list[Interval]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi - lo >= min_width:
                out.append((lo, hi))
    return out


@dataclass(frozen=True)
class _Page:
    x0: float
    x1: float
    centre: float
    h: float

    @property
    def width(self) -> float:
        return max(1.0, self.x1 - self.x0)

    def zone(self) -> list[Interval]:
        return [(self.x0 + GUTTER_ZONE[0] * self.width, self.x0 + GUTTER_ZONE[1] * self.width)]


def _page_geometry(segments: list[Segment]) -> _Page:
    x0 = float(min(s.x0 for s in segments))
    x1 = float(max(s.x1 for s in segments))
    wide = [s for s in segments if s.x1 - s.x0 >= 0.7 * (x1 - x0)]
    centre = statistics.median([(s.x0 + s.x1) / 2 for s in wide]) if wide else (x0 + x1) / 2
    h = statistics.median([s.height for s in segments])
    return _Page(x0, x1, float(centre), float(h))


def _is_centred(row: Row, page: _Page) -> bool:
    if len(row.segments) != 1:
        return False
    s = row.segments[0]
    return abs((s.x0 + s.x1) / 2 - page.centre) <= CENTRED_TOLERANCE * page.width


def _gutters(row: Row, page: _Page, gutters: list[Interval]) -> list[Interval]:
    """The gutters that stay free in ``row`` ([] when the row crosses them all or is centred)."""
    if _is_centred(row, page):
        return []
    return _intersect(gutters, _free(row, page.x0, page.x1), MIN_GUTTER * page.h)


def _two_sided(row: Row, gutters: list[Interval]) -> list[Interval]:
    """The gutters that have text of ``row`` on both sides."""
    return [g for g in gutters
            if any(s.x1 <= g[0] for s in row.segments) and any(s.x0 >= g[1] for s in row.segments)]


def find_bands(rows: list[Row], page: _Page) -> list[tuple[int, int, Interval | None]]:
    """``(first_row, end_row, gutter)`` spans covering all rows; ``gutter`` None outside bands.

    A band grows from a row with text on both sides of a gutter, up and down. Rows with text
    on both sides narrow the gutter to what they leave free; one-sided rows (a column's line,
    a paragraph's short last line) join while they leave part of it free, without narrowing it.
    """
    spans: list[tuple[int, int, Interval | None]] = []
    done = 0  # rows before this index are assigned
    i = 0

    def step(row: Row, gutters: list[Interval]) -> list[Interval] | None:
        free = _gutters(row, page, gutters)
        if not free:
            return None
        both = _two_sided(row, free)
        return both if both else gutters

    while i < len(rows):
        gutters = _two_sided(rows[i], _gutters(rows[i], page, page.zone())) if len(rows[i].segments) >= 2 else []
        if not gutters:
            i += 1
            continue
        start = i
        while start - 1 >= done:
            narrowed = step(rows[start - 1], gutters)
            if narrowed is None:
                break
            gutters, start = narrowed, start - 1
        end = i + 1
        while end < len(rows):
            narrowed = step(rows[end], gutters)
            if narrowed is None:
                break
            gutters, end = narrowed, end + 1
        for k in range(done, start):
            spans.append((k, k + 1, None))
        gutter = max(gutters, key=lambda g: g[1] - g[0])
        spans.append((start, end, gutter))
        done = i = end
    for k in range(done, len(rows)):
        spans.append((k, k + 1, None))
    return spans


def _fold(text: str) -> str:
    """Lower-case letters without their marks ("Nởi nhận:" → "noi nhan:", "Đ" → "d")."""
    base = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return base.lower().replace("đ", "d")


def _starts_recipients(seg: Segment) -> bool:
    return bool(RECIPIENTS.match(_fold(seg.text)))


def _own_component(seg: Segment) -> bool:
    """A "Số: …" or a "…, ngày … tháng … năm …" line: a component of its own."""
    folded = _fold(seg.text)
    return bool(NUMBER_LABEL.match(folded) or DATE_LINE.search(folded))


def _column_blocks(segments: list[Segment], h: float) -> list[list[Segment]]:
    """Blocks of one column, top to bottom. Everything under "Nơi nhận" in its column belongs
    to the recipients list (a wider gap there is a line Tesseract did not read). A "Số:" line
    and a place and date line start a block of their own however close they are to the line
    above them: number and date are components of their own (Decree 30/2020/NĐ-CP, Art. 8,
    items 3 and 4), read side by side (:func:`_order_tied`); on a fax the rules under the
    issuing body's name and under the motto are lost, a speck makes a line taller, and the gap
    falls under :data:`BLOCK_GAP` (the number was read with the name, the date with the motto)."""
    blocks: list[list[Segment]] = []
    recipients = False
    for seg in sorted(segments, key=lambda s: (s.top, s.x0)):
        starts = _starts_recipients(seg)
        if blocks and not starts and (recipients or not _own_component(seg)):
            prev_bottom = max(s.bottom for s in blocks[-1])
            if recipients or seg.top - prev_bottom <= BLOCK_GAP * h:
                blocks[-1].append(seg)
                continue
        blocks.append([seg])
        recipients = recipients or starts
    return blocks


def _order_tied(blocks: list[list[Segment]]) -> list[list[Segment]]:
    """Blocks starting at the same height, left to right. When all but one are one line (the
    "Số: …" line beside "Địa danh, ngày …", with the "V/v …" trích yếu under "Số"), the shared
    first row is read across before the rest of the longer block."""
    blocks = sorted(blocks, key=lambda b: b[0].x0)
    longer = [b for b in blocks if len(b) > 1]
    if len(blocks) < 2 or len(longer) != 1:
        return blocks
    first = sorted((b[0] for b in blocks), key=lambda s: s.x0)
    return [[s] for s in first] + [longer[0][1:]]


def order_band(rows: list[Row], gutter: Interval, h: float) -> list[list[Segment]]:
    """Blocks of a two-column band in reading order (see the module docstring, steps 4–5)."""
    mid = (gutter[0] + gutter[1]) / 2
    segments = [s for row in rows for s in row.segments]
    left = [s for s in segments if (s.x0 + s.x1) / 2 < mid]
    right = [s for s in segments if (s.x0 + s.x1) / 2 >= mid]
    blocks = _column_blocks(left, h) + _column_blocks(right, h)
    recipients = [b for b in blocks if _starts_recipients(b[0])]
    blocks = sorted((b for b in blocks if not _starts_recipients(b[0])), key=lambda b: b[0].top)
    ordered: list[list[Segment]] = []
    i = 0
    while i < len(blocks):
        j = i + 1
        while j < len(blocks) and blocks[j][0].top - blocks[i][0].top < TIE * h:
            j += 1
        ordered.extend(_order_tied(blocks[i:j]))
        i = j
    return ordered + recipients


def reading_order(words: list[Word], dropped: set[int] | None = None) -> list[Word]:
    """``words`` in the page's reading order, ``line`` and ``block`` renumbered from 0 and 1;
    words whose ``id()`` is in ``dropped`` are left out (their space still counts, see
    :func:`segments_of`)."""
    segments = segments_of(words, dropped=dropped)
    if not segments:
        return []
    page = _page_geometry(segments)
    rows = group_rows(segments)
    blocks: list[list[Segment]] = []
    last_block = None
    for start, end, gutter in find_bands(rows, page):
        if gutter is not None:
            blocks.extend(order_band(rows[start:end], gutter, page.h))
            last_block = None
            continue
        for seg in rows[start].segments:
            if last_block is not None and seg.block == last_block and blocks:
                blocks[-1].append(seg)
            else:
                blocks.append([seg])
            last_block = seg.block
    out: list[Word] = []
    line = 0
    for b, block in enumerate(blocks, start=1):
        for seg in block:
            for w in sorted(seg.words, key=lambda w: w.bbox[0]):
                out.append(w.model_copy(update={"line": line, "block": b}))
            line += 1
    return out
