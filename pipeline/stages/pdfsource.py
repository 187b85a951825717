"""What a source PDF itself carries: its text layer and its embedded signatures.

Scanning a born-digital page throws away exact text that the file already holds, and OCR of a
scanned page picks up text that is not the document's: the e-signature stamps that the
signing systems draw on the first page ("Ký bởi: Ủy ban nhân dân tỉnh … Thời gian ký: …",
"TRUNG TÂM CÔNG BÁO VÀ TIN HỌC ttcbth@… 18.11.2024 07:25:14 +07:00"). This module reads the PDF
itself so that the pipeline can

* take the words of a page from its text layer when the page has a *real* one (a Word or
  e-office export): :func:`text_layer_words` gives them as :class:`~pipeline.stages.models.Word` in
  pixels of the page rendered at the OCR resolution, in the same shape as the OCR words;
* drop OCR words that lie on a signing stamp (:func:`stamp_regions`), so that stamp text never
  becomes part of the issuer, subject or body;
* record who signed the file and when (:func:`read_signatures`), for the record's provenance.

Text is read with PDFium (pypdfium2) after flattening the page's annotations, because the
stamps — and, on e-office exports, the number and day that the văn thư signs into the page —
are drawn by the appearance streams of signature widgets, not by the page content. Whether a
page has a real text layer is decided by a rule that holds for the document type, not for one
file: after dropping stamp text and invisible text (render mode 3 or 7: the hidden layer of an
OCRed scan is OCR, not a born-digital layer), at least :data:`MIN_LETTERS` letters must remain,
on at least :data:`MIN_LINES` lines spread over at least :data:`MIN_SPREAD` of the page height,
and at most :data:`MAX_BAD` of the characters may be unmapped glyphs (U+FFFD, private use).

Signatures are read with pyHanko. The signing time is the signature dictionary's /M entry
(local time with its offset, as the visible stamp shows it), falling back to the CMS
signingTime: the provincial gazette centre's signer writes local time into signingTime and
labels it UTC, seven hours off; both raw values are kept, with a note when they disagree.

PDFium is not thread-safe: every call into it holds one module lock. Nothing here raises on a
damaged file: :func:`text_layer_words` gives None, the others what they could read.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import logging
import math
import re
import statistics
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from pipeline.stages.models import Word

Box = tuple[int, int, int, int]  # pixels: x0, y0, x1, y1, origin top-left
_PtBox = tuple[float, float, float, float]  # points on the displayed page: x0, y0, x1, y1, y down

MIN_LETTERS = 150  # letters a page must carry, outside stamps, to count as a real text layer
MIN_LINES = 3  # … on at least this many lines
MIN_SPREAD = 0.25  # … from top line to bottom line over at least this part of the page height
MAX_BAD = 0.2  # most characters that may be unmapped glyphs (U+FFFD, private use, no ToUnicode)
WORD_GAP = 0.5  # gap inside a run of characters, in character heights, that splits a word
SEGMENT_GAP = 2.5  # gap inside a line, in heights, that separates two columns (cf. pipeline.stages.layout)
SMALL_FONT = 0.85  # stamp text is set smaller than this part of the page's body text
VIETNAM = timezone(timedelta(hours=7))

# A line of an e-signature stamp: signer, organisation, signing time, e-mail, the gazette centre.
STAMP_LINE = re.compile(
    r"ký\s*bởi|người\s*ký|thời\s*gian\s*ký|cơ\s*quan\s*:|e-?mail\s*:|trung\s*tâm\s*công\s*báo"
    r"|công\s*báo\s*và\s*tin\s*học|[\w.+-]+@[\w-]+\.[\w.-]*"
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?|[+-]\d{2}:\d{2}\s*$",
    re.IGNORECASE,
)

_PDFIUM = threading.Lock()  # PDFium is not thread-safe
_HANKO = threading.Lock()  # one signature reader at a time: it raises pyHanko's log level meanwhile
_INVISIBLE_MODES = (3, 7)  # FPDF_TEXTRENDERMODE_INVISIBLE, FPDF_TEXTRENDERMODE_CLIP


@dataclass
class TextLayer:
    """The real text layer of one page, as OCR-shaped words in pixels at ``dpi``."""

    words: list[Word]
    text: str  # lines (in reading order) joined by "\n", words by " "
    width: int  # pixels of the page rendered at dpi
    height: int
    stamp_boxes: list[Box] = field(default_factory=list)  # e-signature stamps on the page (not in words)


@dataclass
class EmbeddedSignature:
    """One signature embedded in the PDF, as far as it could be read (see ``error``)."""

    field_name: str
    signer_cn: str | None = None
    signer_org: str | None = None
    signer_ids: list[str] = field(default_factory=list)  # subject UIDs, e.g. "MST:4300476238", "CCCD:…"
    issuer_cn: str | None = None
    serial: str | None = None  # certificate serial number, hex
    sha256: str | None = None  # certificate fingerprint, hex
    signing_time: datetime | None = None  # /M when it has an offset, else CMS signingTime
    time_source: str | None = None  # "M" or "cms"
    pdf_m: str | None = None  # the raw /M entry
    cms_signing_time: datetime | None = None  # the CMS signingTime attribute, as labelled
    tsa_time: datetime | None = None  # genTime of an attached signature time-stamp token
    time_note: str | None = None  # set when /M and signingTime disagree
    intact: bool | None = None  # the signed byte range still hashes to the signed digest
    valid: bool | None = None  # the CMS signature over that digest verifies (trust not checked)
    coverage: str | None = None  # "entire_file", "entire_revision" (revisions appended later), …
    modification_level: str | None = None  # what the later revisions change, per pyHanko
    sub_filter: str | None = None
    reason: str | None = None
    location: str | None = None
    contact_info: str | None = None
    error: str | None = None  # what could not be read or checked

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (datetimes as ISO 8601 strings) for the record's provenance."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, list) else value
        return out


# --- text layer ---------------------------------------------------------------------------


@dataclass
class _Word:
    text: str
    box: _PtBox  # ink box
    loose: _PtBox  # font box, ascent to descent: stable along a line
    widget: int | None  # index of the signature widget whose appearance drew it
    bad: int  # unmapped glyphs in it

    @property
    def size(self) -> float:
        return max(self.loose[3] - self.loose[1], 1e-3)

    @property
    def letters(self) -> int:
        return sum(1 for c in self.text if unicodedata.category(c).startswith("L"))


@dataclass
class _Segment:
    """A run of words on one line with no column gap inside."""

    words: list[_Word]
    stamp: bool = False

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def size(self) -> float:
        return statistics.median(w.size for w in self.words)

    @property
    def loose(self) -> _PtBox:
        return _union([w.loose for w in self.words])

    @property
    def widget(self) -> int | None:
        """The signature widget that drew all of it, if one did."""
        ids = {w.widget for w in self.words}
        return ids.pop() if len(ids) == 1 else None


@dataclass
class _Widget:
    name: str
    rect: _PtBox
    stamp: bool = False


@dataclass
class _Page:
    rows: list[list[_Segment]]  # lines top to bottom, each cut into column segments left to right
    widgets: list[_Widget]
    size: tuple[float, float]  # points, as displayed
    scale: float  # pixels per point

    def px(self, box: _PtBox) -> Box:
        x0, y0, x1, y1 = (round(v * self.scale) for v in box)
        return (x0, y0, x1, y1)

    def stamp_boxes(self) -> list[Box]:
        boxes = [self.px(s.loose) for row in self.rows for s in row if s.stamp]
        return boxes + [self.px(w.rect) for w in self.widgets if w.stamp]


def text_layer_words(data: bytes, page: int, dpi: int) -> TextLayer | None:
    """Words of page ``page`` (1-based) from the PDF's own text layer, or None when it has no real one.

    Words are in pixels of the page rendered at ``dpi`` (origin top-left, crop box and /Rotate
    applied), NFC, confidence 100, ``line`` numbered in reading order (top to bottom, left to
    right; a line spans the page, as Tesseract's ``--psm 4`` lines do, so that
    :mod:`pipeline.stages.layout` cuts it into columns), ``block`` 0. Stamp text is left out and its
    boxes given as ``stamp_boxes``. None for a page without text, with only stamp text (a
    signed scan), only invisible text (an OCRed scan) or garbage glyphs: that page is OCRed.
    """
    return _text_layer(_analyse(data, page, dpi))


def page_source(data: bytes, page: int, dpi: int) -> tuple[TextLayer | None, list[Box]]:
    """:func:`text_layer_words` and :func:`stamp_regions` of one page from one reading of it."""
    analysed = _analyse(data, page, dpi)
    return _text_layer(analysed), (analysed.stamp_boxes() if analysed is not None else [])


def _text_layer(analysed: _Page | None) -> TextLayer | None:
    if analysed is None:
        return None
    rows = [[w for s in row if not s.stamp for w in s.words] for row in analysed.rows]
    rows = [r for r in rows if r]
    letters = sum(w.letters for r in rows for w in r)
    bad = sum(w.bad for r in rows for w in r)
    lettered = [r for r in rows if any(w.letters for w in r)]
    if letters < MIN_LETTERS or bad > MAX_BAD * (letters + bad) or len(lettered) < MIN_LINES:
        return None
    spread = max(w.loose[3] for w in lettered[-1]) - min(w.loose[1] for w in lettered[0])
    if spread < MIN_SPREAD * analysed.size[1]:
        return None
    words = [Word(text=w.text, conf=100.0, bbox=analysed.px(w.box), line=i, block=0) for i, r in enumerate(rows) for w in r]
    text = "\n".join(" ".join(w.text for w in r) for r in rows)
    width, height = (max(1, math.ceil(v * analysed.scale - 1e-6)) for v in analysed.size)  # as pdftoppm does
    return TextLayer(words=words, text=text, width=width, height=height, stamp_boxes=analysed.stamp_boxes())


def stamp_regions(data: bytes, page: int, dpi: int) -> list[Box]:
    """Pixel boxes (at ``dpi``) of the e-signature stamps on page ``page`` (1-based), scans included.

    A box per stamp line (text matching :data:`STAMP_LINE`, and the lines next to it in the same
    small-font block) plus the rectangle of every signature widget whose appearance draws stamp
    text. Signature widgets that draw an image only (the signer's scribble, the seal, which on
    a born-digital page overlap the signer's title and name) or document text (the number and
    day that an e-office system signs into the page, e.g. "565" and "15") are not stamps.
    """
    analysed = _analyse(data, page, dpi)
    return analysed.stamp_boxes() if analysed is not None else []


def _analyse(data: bytes, page: int, dpi: int) -> _Page | None:
    try:
        with _PDFIUM:
            return _read_page(data, page, dpi)
    except Exception:  # noqa: BLE001 - a damaged or hostile file: no text layer, no stamps
        return None


def _read_page(data: bytes, page: int, dpi: int) -> _Page | None:
    """Words of the page (annotations flattened in) grouped into lines and segments, stamps marked.

    Geometry from here on is in points of the page as displayed: crop box origin top-left,
    y down, /Rotate applied, so that "top to bottom" is the reader's.
    """
    import pypdfium2 as pdfium  # deferred: loads pypdfium2

    pdf = pdfium.PdfDocument(data)
    try:
        if not 1 <= page <= len(pdf):
            return None
        pdf.init_forms()  # before the page is loaded, or it cannot be flattened; None without a form
        pg = pdf[page - 1]
        display = _Display(pg.get_cropbox(), pg.get_rotation() % 360)
        size = display.size
        textpage = pg.get_textpage()
        own_chars = textpage.count_chars()  # flattening appends the annotations' text after these
        textpage.close()
        widgets: list[_Widget] = []
        if pdf.formenv is not None:
            widgets = _signature_widgets(pg, pdf.formenv.raw, display)
            pg.flatten()
            pg.close()
            pg = pdf[page - 1]
        textpage = pg.get_textpage()
        words = _words(textpage, own_chars, widgets, display)
        textpage.close()
        pg.close()
    finally:
        pdf.close()
    result = _Page(_rows(words), widgets, size, dpi / 72.0)
    _mark_stamps(result)
    return result


class _Display:
    """PDF user space → points of the page as displayed (crop box, /Rotate clockwise, y down)."""

    def __init__(self, crop: _PtBox, rotation: int) -> None:
        self.left, self.bottom, self.right, self.top = crop
        self.rotation = rotation
        w, h = self.right - self.left, self.top - self.bottom
        self.size = (h, w) if rotation in (90, 270) else (w, h)

    def point(self, x: float, y: float) -> tuple[float, float]:
        u, v = x - self.left, self.top - y  # origin top-left, unrotated
        w, h = self.right - self.left, self.top - self.bottom
        if self.rotation == 90:
            return h - v, u
        if self.rotation == 180:
            return w - u, h - v
        if self.rotation == 270:
            return v, w - u
        return u, v

    def box(self, left: float, bottom: float, right: float, top: float) -> _PtBox:
        (x0, y0), (x1, y1) = self.point(left, bottom), self.point(right, top)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _union(boxes: list[_PtBox]) -> _PtBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _signature_widgets(pg: Any, form: Any, display: _Display) -> list[_Widget]:
    """The page's signature-field widgets: field name and rectangle."""
    import pypdfium2.raw as raw  # deferred: loads pypdfium2

    out: list[_Widget] = []
    for i in range(raw.FPDFPage_GetAnnotCount(pg)):
        annot = raw.FPDFPage_GetAnnot(pg, i)
        try:
            if raw.FPDFAnnot_GetSubtype(annot) != raw.FPDF_ANNOT_WIDGET:
                continue
            if raw.FPDFAnnot_GetFormFieldType(form, annot) != raw.FPDF_FORMFIELD_SIGNATURE:
                continue
            rect = raw.FS_RECTF()
            if not raw.FPDFAnnot_GetRect(annot, rect):
                continue
            size = raw.FPDFAnnot_GetFormFieldName(form, annot, None, 0)
            buf = ctypes.create_string_buffer(max(size, 2))
            raw.FPDFAnnot_GetFormFieldName(form, annot, ctypes.cast(buf, ctypes.POINTER(raw.FPDF_WCHAR)), size)
            name = buf.raw[: max(size - 2, 0)].decode("utf-16-le", "replace")
            out.append(_Widget(name=name, rect=display.box(rect.left, rect.bottom, rect.right, rect.top)))
        finally:
            raw.FPDFPage_CloseAnnot(annot)
    return out


def _words(textpage: Any, own_chars: int, widgets: list[_Widget], display: _Display) -> list[_Word]:
    """Visible words in content-stream order: runs of characters cut at whitespace and wide gaps.

    Grouping in stream order, not by position alone, keeps apart what was drawn apart: the
    two header columns, and the number an e-office system draws into the "Số:" line.
    """
    import pypdfium2.raw as raw  # deferred: loads pypdfium2

    words: list[_Word] = []
    run: list[tuple[str, _PtBox, _PtBox, bool]] = []
    run_widget: int | None = None

    def flush() -> None:
        if run:
            text = unicodedata.normalize("NFC", "".join(c for c, *_ in run))
            inked = [b for _, b, _, _ in run if b[2] > b[0] and b[3] > b[1]] or [lb for _, _, lb, _ in run]
            left, _, right, _ = _union([lb for _, _, lb, _ in run])
            top = statistics.median(lb[1] for _, _, lb, _ in run)  # an accent on a capital reaches higher
            bottom = statistics.median(lb[3] for _, _, lb, _ in run)
            words.append(_Word(text, _union(inked), (left, top, right, bottom), run_widget, sum(b for *_, b in run)))
            run.clear()

    for i in range(textpage.count_chars()):
        code = raw.FPDFText_GetUnicode(textpage, i)
        ch = chr(code) if 0 < code < 0x110000 and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        if code in (0x02, 0xAD):  # PDFium's mark for a hyphen that ends a line ('6138/UBND-' ⏎ 'KGVX')
            ch = "-"
        obj = raw.FPDFText_GetTextObject(textpage, i)
        if ch.isspace() or raw.FPDFText_IsGenerated(textpage, i) or not obj:
            flush()
            continue
        if raw.FPDFTextObj_GetTextRenderMode(obj) in _INVISIBLE_MODES:
            flush()
            continue
        box = display.box(*textpage.get_charbox(i))
        loose = display.box(*textpage.get_charbox(i, loose=True))
        bad = ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cc") or bool(raw.FPDFText_HasUnicodeMapError(textpage, i))
        widget = _widget_at(widgets, loose) if i >= own_chars else None
        if run and not unicodedata.combining(ch):
            prev = run[-1][2]
            height = max(prev[3] - prev[1], loose[3] - loose[1], 1e-3)
            gap = loose[0] - prev[2]
            backwards = loose[0] < prev[0] - 0.1 * height
            shifted = abs((loose[1] + loose[3]) - (prev[1] + prev[3])) / 2 > 0.5 * height
            if gap > WORD_GAP * height or backwards or shifted or widget != run_widget:
                flush()
        if not run:
            run_widget = widget
        run.append((ch, box, loose, bad))
    flush()
    return words


def _widget_at(widgets: list[_Widget], box: _PtBox) -> int | None:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for i, w in enumerate(widgets):
        if w.rect[0] <= x <= w.rect[2] and w.rect[1] <= y <= w.rect[3]:
            return i
    return None


def _rows(words: list[_Word]) -> list[list[_Segment]]:
    """Words grouped into lines, top to bottom, each cut into column segments, left to right.

    A word joins the line whose first word's font box ends (the descent line) within 0.4 of
    the smaller font size: a raised or slightly offset word stays on its line, and lines do
    not drift into each other as they would if compared with the line's growing extent.
    """
    rows: list[tuple[float, float, list[_Word]]] = []  # (descent line, size) of the first word, words
    for w in sorted(words, key=lambda w: (w.loose[3], w.loose[0])):
        best: tuple[float, int] | None = None
        for k in range(max(0, len(rows) - 4), len(rows)):
            descent, size, _ = rows[k]
            d = abs(descent - w.loose[3])
            if d <= 0.4 * min(size, w.size) and (best is None or d < best[0]):
                best = (d, k)
        if best is None:
            rows.append((w.loose[3], w.size, [w]))
        else:
            rows[best[1]][2].append(w)
    out: list[list[_Segment]] = []
    for _, _, row in sorted(rows, key=lambda r: min(w.loose[1] for w in r[2])):
        row.sort(key=lambda w: w.loose[0])
        height = statistics.median(w.size for w in row)
        segments = [_Segment([row[0]])]
        for prev, cur in zip(row, row[1:], strict=False):
            if cur.loose[0] - prev.loose[2] > SEGMENT_GAP * height:
                segments.append(_Segment([]))
            segments[-1].words.append(cur)
        out.append(segments)
    return out


def _mark_stamps(page: _Page) -> None:
    """Mark the segments that belong to an e-signature stamp, and the widgets that draw one.

    A segment is a stamp line when it matches :data:`STAMP_LINE`, or lies next to a stamp line
    in a block of the same small font (a wrapped signer name, "BÁO VÀ TIN HỌC"), or is drawn by
    a signature widget that draws a stamp line. On a page with body text, a match counts only
    when drawn by a signature widget or set smaller than the body (:data:`SMALL_FONT`): a body
    line may well name "Trung tâm Công báo và Tin học" or give an e-mail address.
    """
    segments = [s for row in page.rows for s in row]
    matched = [s for s in segments if STAMP_LINE.search(s.text)]
    body = [w for s in segments if s not in matched for w in s.words]
    has_body = sum(w.letters for w in body) >= MIN_LETTERS
    body_size = statistics.median(w.size for w in body) if body else 0.0

    def eligible(s: _Segment) -> bool:
        return not has_body or s.widget is not None or s.size < SMALL_FONT * body_size

    for s in matched:
        if eligible(s):
            s.stamp = True
            if s.widget is not None:
                page.widgets[s.widget].stamp = True
    for s in segments:
        if s.widget is not None and page.widgets[s.widget].stamp:
            s.stamp = True
    changed = True
    while changed:
        changed = False
        for s in segments:
            if s.stamp or not eligible(s):
                continue
            a = s.loose
            for t in (t for t in segments if t.stamp and 0.75 <= s.size / t.size <= 1.33):
                b = t.loose
                near = max(a[1] - b[3], b[1] - a[3]) <= max(s.size, t.size)
                beside = a[0] < b[2] + t.size and b[0] < a[2] + t.size
                if near and beside:
                    s.stamp = changed = True
                    break


# --- signatures ---------------------------------------------------------------------------


def read_signatures(data: bytes) -> list[EmbeddedSignature]:
    """The signatures embedded in the PDF, in signing order; [] for none or an unreadable file.

    Signing order is the order of the revisions that the signatures sign (pyHanko's order),
    which is the order in which they were appended to the file; fields of one revision keep
    their order in the form. Trust is not checked here (no trust roots, no fetching):
    ``intact``/``valid`` say whether the signed bytes and the CMS signature still match,
    ``coverage`` whether revisions were appended after signing. A signature that cannot be
    read or checked is still listed, as far as it was read, with ``error`` saying what failed.
    """
    found: list[tuple[float, int, EmbeddedSignature]] = []
    try:
        from pyhanko.pdf_utils.reader import (
            PdfFileReader,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
        )
        from pyhanko.sign.fields import (
            enumerate_sig_fields,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
        )
        from pyhanko.sign.validation.pdf_embedded import (
            EmbeddedPdfSignature,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
        )

        with _HANKO, _quiet("pyhanko", "pyhanko_certvalidator"):
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            for n, (name, value, field_ref) in enumerate(enumerate_sig_fields(reader, filled_status=True)):
                sig = EmbeddedSignature(field_name=str(name))
                try:
                    emb = EmbeddedPdfSignature(reader, field_ref, name)
                    revision = float(emb.signed_revision)
                except Exception as exc:  # noqa: BLE001 - unreadable CMS or byte range: keep the dictionary
                    emb, revision = None, float("inf")
                    sig.error = f"signature unreadable: {type(exc).__name__}: {exc}"
                found.append((revision, n, _read_signature(emb, value, sig)))
    except Exception:  # noqa: BLE001 - not a PDF, or a damaged AcroForm: what was read so far
        pass
    return [sig for *_, sig in sorted(found, key=lambda item: item[:2])]


def _read_signature(emb: Any, value: Any, sig: EmbeddedSignature) -> EmbeddedSignature:
    errors = [sig.error] if sig.error else []
    steps = [lambda: _read_dictionary(value.get_object(), sig), lambda: _read_times(emb, sig)]
    if emb is not None:
        steps += [lambda: _read_certificate(emb, sig), lambda: _check(emb, sig)]
    for step, what in zip(steps, ("dictionary", "signing time", "certificate", "integrity"), strict=False):  # 2 steps without pyHanko's view
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - record the state, never raise
            errors.append(f"{what}: {type(exc).__name__}: {exc}")
    sig.error = "; ".join(errors) or None
    return sig


def _read_certificate(emb: Any, sig: EmbeddedSignature) -> None:
    cert = emb.signer_cert
    subject = cert.subject.native
    sig.signer_cn = _first(subject.get("common_name"))
    sig.signer_org = _first(subject.get("organization_name"))
    uids = subject.get("user_id") or []
    sig.signer_ids = [str(u) for u in (uids if isinstance(uids, list) else [uids])]
    sig.issuer_cn = _first(cert.issuer.native.get("common_name"))
    sig.serial = format(cert.serial_number, "x")
    sig.sha256 = cert.sha256.hex()


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def _read_dictionary(d: Any, sig: EmbeddedSignature) -> None:
    entries = (("reason", "/Reason"), ("location", "/Location"), ("contact_info", "/ContactInfo"), ("pdf_m", "/M"))
    for attr, key in entries:
        value = d.get(key)
        if value is not None and str(value).strip():
            setattr(sig, attr, str(value))
    if (sf := d.get("/SubFilter")) is not None:
        sig.sub_filter = str(sf).lstrip("/")


def _read_times(emb: Any, sig: EmbeddedSignature) -> None:
    """Signing time: /M when it carries an offset, else CMS signingTime; note any disagreement."""
    from pyhanko.pdf_utils.generic import parse_pdf_date  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
    from pyhanko.sign.validation.generic_cms import (
        extract_self_reported_ts,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
    )

    if emb is not None:
        sig.cms_signing_time = extract_self_reported_ts(emb.signer_info)
    m = parse_pdf_date(sig.pdf_m, strict=False) if sig.pdf_m else None
    cms = sig.cms_signing_time
    if m is not None and m.tzinfo is not None:
        sig.signing_time, sig.time_source = m, "M"
    elif cms is not None:
        sig.signing_time, sig.time_source = cms, "cms"
    elif m is not None:  # /M without an offset: the signers here are in Vietnam
        sig.signing_time, sig.time_source = m.replace(tzinfo=VIETNAM), "M"
    if m is not None and m.tzinfo is not None and cms is not None and m != cms:
        ahead = (cms - m).total_seconds()  # how far the CMS value is ahead of /M
        hours = round(ahead / 3600)
        rest = ahead - 3600 * hours
        if hours and abs(rest) <= 120:  # a whole number of hours, give or take the seconds signing took
            local_as_utc = cms.utcoffset() == timedelta(0) and m.utcoffset() == timedelta(hours=hours)
            labelled = " (local time labelled UTC)" if local_as_utc else ""
            off = f"{hours:+d} h" + (f" {rest:+.0f} s" if rest else "")
            sig.time_note = f"CMS signingTime {cms.isoformat()} is {off} off /M {m.isoformat()}{labelled}"
        else:
            sig.time_note = f"CMS signingTime {cms.isoformat()} is {ahead:+.0f} s off /M {m.isoformat()}"


def outside_event_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` where it may start its own event loop (pyHanko's and
    pyhanko-certvalidator's synchronous calls use ``asyncio.run``): in this thread, or, inside a
    running loop (an async web handler, Playwright's sync API), in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def _check(emb: Any, sig: EmbeddedSignature) -> None:
    """Integrity without trust: pyHanko's validation with no trust roots and no fetching.

    pyHanko's validation runs its own event loop (``asyncio.run``), which cannot start inside a
    running one (an async web handler): there it runs in a worker thread. Should validation
    fail all the same, the byte-range digest is still compared with the signed one.
    """
    from pyhanko.sign.validation import (
        validate_pdf_signature,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
    )
    from pyhanko_certvalidator import (
        ValidationContext,  # deferred: loads pyhanko_certvalidator, cryptography, asn1crypto
    )

    context = ValidationContext(trust_roots=[], allow_fetching=False)
    try:
        status = outside_event_loop(validate_pdf_signature, emb, context)
    except Exception:
        with suppress(Exception):
            _compare_digest(emb, sig)
        raise
    sig.intact, sig.valid = bool(status.intact), bool(status.valid)
    sig.coverage = status.coverage.name.lower() if status.coverage is not None else None
    if status.modification_level is not None:
        sig.modification_level = status.modification_level.name.lower()
    if status.timestamp_validity is not None:
        sig.tsa_time = status.timestamp_validity.timestamp


def _compare_digest(emb: Any, sig: EmbeddedSignature) -> None:
    from pyhanko.sign.general import (
        find_unique_cms_attribute,  # deferred: loads pyhanko, pyhanko_certvalidator, cryptography
    )

    emb.compute_integrity_info(skip_diff=True)
    signed = find_unique_cms_attribute(emb.signer_info["signed_attrs"], "message_digest").native
    sig.intact = emb.compute_digest() == signed
    sig.coverage = emb.coverage.name.lower() if emb.coverage is not None else None


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence pyHanko's warnings (failed path building: expected without trust roots) meanwhile."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
