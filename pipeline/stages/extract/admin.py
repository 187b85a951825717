"""Rules for administrative documents laid out per Decree 30/2020/NĐ-CP (thể thức văn bản).

Page 1 header, two columns: left — cơ quan chủ quản (optional) and cơ quan ban hành in capitals,
"Số: <n>/<symbol>", and for a công văn the "V/v …" trích yếu; right — Quốc hiệu "CỘNG HÒA XÃ HỘI
CHỦ NGHĨA VIỆT NAM", Tiêu ngữ "Độc lập - Tự do - Hạnh phúc", "<Địa danh>, ngày … tháng … năm …".
Then (not for a công văn) the type name (e.g. "CHỈ THỊ") and the trích yếu centred. On the last
page the signature block is on the right (authority prefix KT./TL./TM./Q./TUQ., title, name) and
"Nơi nhận:" on the left.

The columns are found from word boxes: the left edge of the Quốc hiệu (or the Tiêu ngữ) fixes the
column boundary, and header lines are split there (Tesseract joins the two columns into one line).
Text above the Quốc hiệu row (a digital-signature stamp) is not part of the issuer; an incoming-mail
stamp ("CÔNG VĂN ĐẾN / Số: … / Ngày: …") is ignored for the number and date.

Every field gets a confidence (OCR word confidences × how certain the rule is) and evidence
(page + word boxes) for the review desk; problems become :class:`FieldIssue` entries.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
from rapidfuzz import fuzz

from pipeline.records.record import FieldEvidence, IssueKind
from pipeline.stages.extract.common import (
    SURNAMES,
    clean_spaces,
    deputy_title,
    doc_type_from_number,
    find_date,
    find_number,
    fix_subject_case,
    fold,
    join_name_fragments,
    known_title,
    looks_like_person,
    match_doc_type,
    match_head_title,
    nfc,
    number_type_abbr,
    proper_case_agency,
    proper_case_person,
    proper_case_title,
    repair_years,
    restore_surname,
    type_matches_number,
    uppercase_ratio,
)
from pipeline.stages.extract.layout import Line, median_height, page_lines, split_at, words_confidence
from pipeline.stages.extract.result import Extraction
from pipeline.stages.quality import strip_tone

AUTHORITY_RE = re.compile(r"^\s*(KT|TL|TM|Q|TUQ|K\.T|T\.L|T\.M)\s*[.,:]\s*(.+)$")
#: "KT." with its first letter misread ('TT.', 'IT.', 'XT.' — the seal or the signature crosses
#: it): a two-letter prefix ending in T followed by a head title is "ký thay" (no other prefix ends
#: in T).
GARBLED_KT_RE = re.compile(r"^\s*[A-Z|1!]T\s*[.,:]\s*(.+)$")
#: "KT." lost under the seal's ring but for its 'T.' ('ce=J{T. CHỦ TỊCH': the ring's letters read
#: with it): still "ký thay" by the same reasoning, but a guess — :func:`_set_block_fields` caps
#: the prefix and the deputy title it implies below the review threshold.
SEALED_KT_RE = re.compile(r"^\s*\S{1,7}T\s*\.\s*(.+)$")
VV_RE = re.compile(r"^\W{0,2}v\s*[/l|i1\\]\s*v\b\.?\s*:?\s*", re.IGNORECASE)


def strip_ve_viec(subject: str) -> str:
    """The trích yếu without its leading "Về việc" (the record's ``subject`` holds the content
    only, as for a công văn's "V/v …": Decree 30, Appendix I, item 5)."""
    words = subject.split(" ")
    if len(words) > 2 and fold(" ".join(words[:2])).rstrip(":") == "ve viec":
        return " ".join(words[2:]).lstrip(": ")
    return subject
_STAMP_RE = re.compile(r"^(cong van|cv)?\s*den\b")


def _text_conf(lines: list[Line]) -> float:
    """Confidence of a text field (tên cơ quan, trích yếu): its weakest line, and at most 0.5 when
    one of its words was read below 30 % *and* is no Vietnamese syllable (no vowel: 'cnnh' for
    'cách') — a garbled word sends the field to review instead of passing on an average.
    (Correct words with stacked marks, 'ĐẨY', 'KIẾM', are often read below 30 % too.)"""
    conf = min(ln.confidence for ln in lines)
    if any(w.conf < 30 and _garbled(w.text) for ln in lines for w in ln.words):
        conf = min(conf, 0.5)
    return conf


#: A trích yếu with a word read below this (0–1) is sent to review: it is free text that no
#: lexicon can check, and a syllable read at 78 % ('bỗ' for 'bổ') is as often wrong as right.
SUBJECT_MIN_WORD_CONF = 0.8


def _subject_conf(lines: list[Line]) -> float:
    conf = _text_conf(lines)
    weakest = min(w.conf for ln in lines for w in ln.words) / 100.0
    return min(conf, 0.55) if weakest < SUBJECT_MIN_WORD_CONF else conf


def _garbled(word: str) -> bool:
    """A word of 3+ letters that cannot be a Vietnamese syllable: no vowel among its letters."""
    letters = re.sub(r"[^a-z]", "", fold(word))
    return len(letters) >= 3 and not re.search(r"[aeiouy]", letters)


#: A continuation line of the trích yếu with at most this many words, every one read below
#: NOISE_MAX_CONF %, is a mark under it (a stamp's edge, a speck) read as letters, not text.
NOISE_MAX_WORDS = 2
NOISE_MAX_CONF = 35.0


def _noise_line(ln: Line) -> bool:
    """A short line of words all read at very low confidence (and no year: 'z017' is '2017')."""
    if len(ln.words) > NOISE_MAX_WORDS or any(w.conf >= NOISE_MAX_CONF for w in ln.words):
        return False
    return not re.search(r"(?<!\d)(19|20)\d\d(?!\d)", repair_years("năm " + ln.text))


def _window_score(words: list[str], target: str) -> float:
    return fuzz.ratio(" ".join(words), target)


def _find_anchor(lines: list[Line], target: str, min_score: float, max_top: float) -> tuple[Line, int] | None:
    """The line and word index where ``target`` (folded) starts, fuzzy over word windows.

    Windows of as many words as the target, and one fewer/more (OCR merges or splits words); at
    equal score the leftmost start wins."""
    best = None
    sizes = [len(target.split()) + d for d in (0, -1, 1)]
    for ln in lines:
        if ln.top > max_top:
            break
        folded = [fold(w.text) for w in ln.words]
        for j in range(len(folded)):
            for n in sizes:
                score = _window_score(folded[j : j + n], target)
                if score >= min_score and (best is None or score > best[0]):
                    best = (score, ln, j)
        if best and best[0] >= 95:
            break
    return (best[1], best[2]) if best else None


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def _is_rule(ln: Line) -> bool:
    """A printed rule (or seal speckle): no letters or digits to speak of."""
    return sum(c.isalnum() for c in ln.text) < 2


def _span_words(ln: Line, start: int, end: int):
    """Words of ``ln`` overlapping the character span [start, end) of ``ln.text``."""
    out, pos = [], 0
    for w in ln.words:
        s, e = pos, pos + len(w.text)
        if e > start and s < end:
            out.append(w)
        pos = e + 1
    return out or ln.words


def _box(words) -> tuple[int, int, int, int]:
    return (min(w.bbox[0] for w in words), min(w.bbox[1] for w in words),
            max(w.bbox[2] for w in words), max(w.bbox[3] for w in words))  # fmt: skip


def _ev(lines: list[Line], method: str = "rule") -> FieldEvidence:
    return FieldEvidence(page=lines[0].page if lines else None, boxes=[ln.bbox for ln in lines], method=method)


class HeaderLayout:
    """Column split and header band of page 1."""

    def __init__(self, page) -> None:
        self.width, self.height = page.width, page.height
        raw = page_lines(page)
        self.h = median_height(raw)
        top_band = self.height * 0.4
        qh = _find_anchor(raw, "cong hoa xa hoi chu nghia viet nam", 72, top_band)
        motto = _find_anchor(raw, "doc lap - tu do - hanh phuc", 70, top_band)
        self.national_top: float | None = None
        xs = []
        if qh:
            ln, j = qh
            xs.append(ln.words[j].bbox[0] - 0.012 * self.width)
            self.national_top = ln.words[j].bbox[1]
        if motto:
            ln, j = motto
            xs.append(ln.words[j].bbox[0] - 0.06 * self.width)
            if self.national_top is None:
                self.national_top = ln.words[j].bbox[1] - 1.4 * self.h
        self.found = bool(xs)
        self.split_x = min(xs) if xs else self.width * 0.47
        if qh and motto:  # the Quốc hiệu edge is the precise one
            self.split_x = qh[0].words[qh[1]].bbox[0] - 0.012 * self.width
        y0 = (self.national_top - 1.0 * self.h) if self.national_top is not None else 0
        first = split_at(raw, self.split_x, y0, y0 + 12 * self.h)
        # Header ends with the row of the number / place-date; re-split only that far (a
        # centred type name below must not be cut).
        end = y0 + 12 * self.h
        # the number and the day written in by hand can leave no printed date or number to end
        # the header on: it then ends above the type name ("CHỈ THỊ", "TỜ TRÌNH"; read on the
        # unsplit lines), or the trích yếu under it would be cut at the column edge
        type_top = min((ln.top for ln in raw if y0 + 3 * self.h < ln.top < end and _type_name_line(ln)), default=end)
        for ln in first:
            if ln.top < y0:
                continue
            if ln.top >= type_top:
                end = type_top - 0.2 * self.h
                break
            if find_date(ln.text) or find_number(ln.text):
                end = ln.bottom + 0.5 * self.h
                break
        self.header_end = end
        self.lines = split_at(raw, self.split_x, y0, end)
        self.y0 = y0
        self.stamp_zones = _stamp_zones(self.lines, self.h)

    def is_left(self, ln: Line) -> bool:
        return ln.center_x < self.split_x and ln.x1 <= self.split_x + 0.03 * self.width

    def is_right(self, ln: Line) -> bool:
        return ln.center_x >= self.split_x

    def in_stamp(self, ln: Line) -> bool:
        cx, cy = ln.center_x, (ln.top + ln.bottom) / 2
        return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in self.stamp_zones)


_STAMP_FIELDS = ("so", "ngay", "chuyen", "luu ho so", "gio", "s6", "den")


def _type_name_line(ln: Line) -> bool:
    """A short line in capitals naming a document type: the type name under the header."""
    return len(ln.words) <= 4 and uppercase_ratio(ln.text) > 0.8 and match_doc_type(ln.text) is not None


def _stamp_zones(lines: list[Line], h: float) -> list[tuple[float, float, float, float]]:
    """Areas of an incoming-mail stamp: a "CÔNG VĂN ĐẾN" / "ĐẾN" line and the "Số: …", "Ngày: …",
    "Chuyển: …" lines right under it (same x, within two line heights of each other)."""
    zones = []
    for i, ln in enumerate(lines):
        f = clean_spaces(re.sub(r"[^a-z ]", " ", fold(ln.text)))
        if not (_STAMP_RE.match(f) and len(f.split()) <= 4):
            continue
        x0, y0, x1, y1 = ln.x0, ln.top, ln.x1, ln.bottom
        for nxt in lines[i + 1 :]:
            if nxt.top - y1 > 2.0 * h:
                break
            if abs(nxt.x0 - x0) < 4 * h and fold(nxt.text).lstrip(" |-").startswith(_STAMP_FIELDS):
                x1, y1 = max(x1, nxt.x1), max(y1, nxt.bottom)
        zones.append((x0 - h, y0 - 0.5 * h, x1 + h, y1 + 0.3 * h))
    return zones


def extract_admin(pages, images=None) -> Extraction:
    """Rules over the OCR ``pages``; ``images`` (optional, one per page: the stored page image as
    JPEG/PNG bytes or an array, None where there is none) lets the "Nơi nhận" block be read again
    on its own (:mod:`.reread`)."""
    ex = Extraction(record_type="admin_document")
    if not pages or not pages[0].words:
        return ex
    page = pages[0]
    hl = HeaderLayout(page)
    lines = hl.lines
    W = hl.width
    h = hl.h

    # --- number: left column, under the issuer, not inside an incoming stamp ---------------
    number_line = None
    band_top = hl.y0 if hl.found else 0
    candidates = [ln for ln in lines if band_top <= ln.top <= max(hl.header_end, page.height * 0.3)]
    ordered = [ln for ln in candidates if hl.is_left(ln)] + [ln for ln in candidates if not hl.is_left(ln)]
    for ln in ordered:
        if hl.in_stamp(ln):
            continue
        m = find_number(ln.text)
        if not m:
            continue
        number_line = ln
        words = _span_words(ln, m.start, m.end)
        num_words = [w for w in words if not fold(w.text).startswith(("so", "s6"))] or words
        conf = words_confidence(num_words)
        if not hl.is_left(ln):
            conf *= 0.8
        if m.repaired:
            conf *= 0.85
        ev = FieldEvidence(page=ln.page, boxes=[_box(words)])
        # digits standing apart from the symbol ('Số: 46 /TB-UBND') fill a slot left for them: they
        # are written or stamped in at registration, and only their own confidence counts; digits
        # printed with the symbol as one token are part of the printed number
        digit_words = [w for w in num_words if "/" not in w.text and (any(c.isdigit() for c in w.text) or w.text[:1] in "OoIl|")]
        weakest = min((w.conf for w in digit_words), default=100.0) / 100.0
        ex.hints["number_symbol"] = m.symbol
        ex.hints["number_slot"] = _slot_box(ln, words, m.symbol)
        if m.number is None:
            ex.evidence["number"] = FieldEvidence(page=ln.page, boxes=[ex.hints["number_slot"]], method="handwriting")
            ex.flag("number", "missing", f"the digits of 'Số: … /{m.symbol}' are not printed (written by hand?): "
                    "enter them from the crop")  # fmt: skip
        elif weakest < NUMBER_MIN_DIGIT_CONF:
            # Registration numbers are written or stamped in by hand: Tesseract reads the ink as
            # something ('O4' for a handwritten 01 at 20 %) that must not pass for the number.
            ex.evidence["number"] = FieldEvidence(page=ln.page, boxes=[ex.hints["number_slot"]], method="handwriting")
            ex.hints["number_ocr"] = m.number
            ex.flag("number", "missing", f"the digits of 'Số: … /{m.symbol}' are unclear (read '{m.number.split('/')[0]}' "
                    f"with confidence {weakest:.2f}; written by hand?): enter them from the crop")  # fmt: skip
        else:
            ex.set("number", m.number, min(conf, weakest), ev)
        break
    if number_line is None:
        # 'Số:' and the handwritten digits both lost: the printed symbol alone ('/UBND-KTTH') in
        # the left column still marks the slot for the review desk
        for ln in (ln for ln in candidates if hl.is_left(ln) and not hl.in_stamp(ln)):
            sm = _LONE_SYMBOL.match(clean_spaces(ln.text))
            if sm:
                number_line = ln
                x1 = ln.x0
                slot = (max(0, int(x1 - 8 * ln.height)), int(ln.top - 0.4 * ln.height), int(x1), int(ln.bottom + 0.4 * ln.height))
                ex.hints["number_symbol"] = sm.group(1).replace(" ", "")
                ex.hints["number_slot"] = slot
                ex.evidence["number"] = FieldEvidence(page=ln.page, boxes=[slot], method="handwriting")
                ex.flag("number", "missing", f"only the symbol '/{ex.hints['number_symbol']}' of the number was read: "
                        "enter the number from the crop")  # fmt: skip
                break

    # --- place and date: right column ---------------------------------------------------------
    date_line = None
    right_rows = _join_rows([ln for ln in candidates if hl.is_right(ln) and not hl.in_stamp(ln)])
    right = right_rows + [ln for ln in candidates if not hl.is_right(ln)]
    for ln in right:
        if hl.in_stamp(ln):
            continue
        dm = find_date(ln.text) or (_date_without_day(ln.text) if ln in right_rows else None)
        if not dm:
            continue
        before = ln.text[: dm.start]
        if _letters(before) < 2 and hl.is_left(ln):
            continue
        date_line = ln
        words = _span_words(ln, dm.start, dm.end)
        ev = FieldEvidence(page=ln.page, boxes=[_box(words)])
        day_words = _day_words(words)
        weakest = min((w.conf for w in day_words), default=0.0) / 100.0
        month_year = _MONTH_YEAR_TAIL.search(fold(ln.text))
        if month_year and month_year.group(1).isdigit() and month_year.group(2).isdigit():
            ex.hints["date_month_year"] = (int(month_year.group(1)), int(month_year.group(2)))
        if dm.value is None:
            ex.evidence["date"] = FieldEvidence(page=ln.page, boxes=[_day_slot(ln, words)], method="handwriting")
            kind: IssueKind = "missing" if "handwritten" in (dm.problem or "") else "invalid"
            ex.flag("date", kind, f"date of issue unreadable ({dm.problem}): enter it from the crop")
        elif weakest < NUMBER_MIN_DIGIT_CONF:
            ex.evidence["date"] = FieldEvidence(page=ln.page, boxes=[_day_slot(ln, words)], method="handwriting")
            ex.hints["date_ocr"] = dm.value.isoformat()
            ex.flag("date", "missing", f"the day of the date of issue is unclear (read {dm.value.day:02d} with "
                    f"confidence {weakest:.2f}; written by hand?): enter it from the crop")  # fmt: skip
        else:
            conf = words_confidence(words) * (1.0 if hl.is_right(ln) else 0.8)
            ex.set("date", dm.value.isoformat(), conf, ev)
        place = re.sub(r"^[^A-ZĐÀ-Ỹ]+", "", before).strip(" ,.;:")
        place = clean_spaces(place)
        if 2 <= len(place) <= 40:
            pw = _span_words(ln, 0, max(1, dm.start - 1))
            ex.set("place", place, words_confidence(pw), FieldEvidence(page=ln.page, boxes=[_box(pw)]))
        break

    # --- issuer: left column from the Quốc hiệu row down to the number ------------------------
    limit = number_line.top if number_line else (date_line.top if date_line else hl.y0 + 6 * h)
    issuer_lines = [
        ln for ln in lines
        if ln.top >= hl.y0 and ln.bottom <= limit + 0.3 * h and hl.is_left(ln) and not hl.in_stamp(ln)
        and not _is_rule(ln) and uppercase_ratio(ln.text) > 0.6
    ]  # fmt: skip
    issuer_lines = [ln for ln in (_without_symbol(ln) for ln in issuer_lines) if ln is not None]
    if issuer_lines:
        texts = [clean_spaces(ln.text.strip("-_—–=~. ")) for ln in issuer_lines]
        parent_n = _parent_split(texts)
        conf = _text_conf(issuer_lines)
        raw = ex.hints.setdefault("raw", {})  # as printed (capitals), for the model's lexicon
        if parent_n:
            raw["issuer_parent"] = " ".join(texts[:parent_n])
            ex.set("issuer_parent", proper_case_agency(raw["issuer_parent"]), conf, _ev(issuer_lines[:parent_n]))
        raw["issuer"] = " ".join(texts[parent_n:])
        ex.set("issuer", proper_case_agency(raw["issuer"]), conf, _ev(issuer_lines[parent_n:]))

    # --- type name and trích yếu ------------------------------------------------------------
    header_bottom = max([ln.bottom for ln in (number_line, date_line) if ln is not None], default=hl.header_end)
    after = [ln for ln in lines if ln.top > header_bottom - 0.2 * h]
    title_line = None
    for ln in after[:10]:
        if hl.in_stamp(ln) or uppercase_ratio(ln.text) < 0.5:
            continue
        cand = _title_in_line(ln, W)
        if cand:
            sub, (name, score) = cand
            title_line = sub
            ex.set("doc_type", name, title_line.confidence * score, _ev([title_line]))
            break

    vv_lines = _vv_subject(lines, hl, number_line, h)
    if vv_lines:
        subject = fix_subject_case(clean_spaces(" ".join(ln.text for ln in vv_lines)))
        subject = VV_RE.sub("", subject).strip()
        ex.set("subject", subject, _subject_conf(vv_lines), _ev(vv_lines))
        if "doc_type" not in ex.fields:
            conf = 0.95 if not doc_type_from_number(ex.fields.get("number")) else 0.5
            ex.set("doc_type", "Công văn", conf, FieldEvidence(page=page.page, boxes=[vv_lines[0].bbox], method="layout"))
    elif title_line is not None:
        subj = _title_subject(after, title_line, h, W)
        if subj:
            ex.set("subject", fix_subject_case(clean_spaces(" ".join(ln.text for ln in subj))), _subject_conf(subj), _ev(subj))
    elif images is not None and images and images[0] is not None:
        # no type name under the header: a stamp beside it (the incoming-mail "CV ĐẾN" box in the
        # margin) joined its lines to the stamp's and Tesseract lost words of both
        title_line = _reread_title_zone(ex, page, images[0], header_bottom, h)

    number = ex.fields.get("number")
    symbol = number.split("/", 1)[1] if number else ex.hints.get("number_symbol")
    if "doc_type" not in ex.fields:
        implied = doc_type_from_number(number or (f"0/{symbol}" if symbol else None))
        if implied:
            ex.set("doc_type", implied, 0.6, FieldEvidence(page=page.page, boxes=ex.evidence.get("number", FieldEvidence()).boxes))
        elif number and number_type_abbr(number) is None and title_line is None:
            ex.set("doc_type", "Công văn", 0.6, FieldEvidence(page=page.page, method="layout"))
    check_number_type(ex)

    if images is not None and images and images[0] is not None:
        _read_handwritten_slots(ex, page, images[0])
    _signature_block(ex, pages, images)
    return ex


#: How far under the header the title zone is read again, in median line heights: the type name,
#: a trích yếu of up to five lines and the rule under it (Decree 30, Appendix I, items 4 and 5).
TITLE_ZONE_LINES = 10.0
#: Confidence of a trích yếu that only the second reading of the title zone gave: one reading of
#: free text (the lexicon checks a few words of it at best), where the page's own reading failed —
#: for the steward.
REREAD_SUBJECT_MAX_CONF = 0.5


def _reread_title_zone(ex: Extraction, page, image, top: float, h: float) -> Line | None:
    """The type name and the trích yếu read again from the page image when the page's OCR gave no
    type name under the header (:mod:`.reread`: the band under the header, the page's full width,
    as one block of text).

    On the page, Tesseract (psm 4) reads the centred title lines together with whatever stands
    beside them in the margin — an incoming-mail stamp ("TRUNG TÂM CÔNG BÁO … / CV ĐẾN / Số …")
    — as shared lines, and loses words of both ("CHỈ" of "CHỈ THỊ", "thi" of the trích yếu). Read
    as one block the stamp's words come first on each line and the centred part is found as on
    the page (:func:`_centred_part`). The type name it reads replaces one implied by the number
    only if the two agree (checked afterwards by :func:`check_number_type` in any case); the
    trích yếu is kept with confidence at most :data:`REREAD_SUBJECT_MAX_CONF` and named for
    review, its evidence marked ``reread``. Returns the type-name line, or None."""
    from pipeline.stages.extract import (
        reread,  # deferred: import cycle (pipeline.stages.extract imports pipeline.stages.extract.admin)
    )

    rgb = reread.page_rgb(image)
    if rgb is None or rgb.shape[0] < page.height * 0.9 or rgb.shape[1] < page.width * 0.9:
        return None
    W = page.width
    box = (0, top - 0.3 * h, W, min(page.height, top + TITLE_ZONE_LINES * h))
    words = reread.reread_block(rgb, box, page.dpi, page=page.page)
    if not words:
        return None
    lines = reread.lines_of(words, page.page)
    title = None
    for ln in lines[:4]:
        if uppercase_ratio(ln.text) < 0.5:
            continue
        cand = _title_in_line(ln, W)
        if cand:
            title = cand
            break
    if title is None:
        return None
    title_line, (name, score) = title
    symbol = ex.hints.get("number_symbol")
    implied = doc_type_from_number(ex.fields.get("number") or (f"0/{symbol}" if symbol else None))
    if "doc_type" not in ex.fields or implied == name:
        ex.set("doc_type", name, title_line.confidence * score, _ev([title_line], method="reread"))
    subj = _title_subject(lines, title_line, h, W)
    if subj:
        text = fix_subject_case(clean_spaces(" ".join(ln.text for ln in subj)))
        ex.set("subject", text, min(_subject_conf(subj), REREAD_SUBJECT_MAX_CONF), _ev(subj, method="reread"))
        confs: dict[str, float] = ex.hints.setdefault("word_conf", {}).setdefault("subject", {})
        for w in (w for ln in subj for w in ln.words):  # for the lexicon: these words are not the page's
            confs[w.text] = min(confs.get(w.text, 100.0), w.conf)
        ex.flag("subject", "low_confidence", "the trích yếu was read only by a second OCR of the title zone (the "
                "page's reading joined it to a stamp beside it): check it against the page")  # fmt: skip
    return title_line


def _read_handwritten_slots(ex: Extraction, page, image) -> None:
    """The number's digits and the day that OCR could not be trusted with, read by our own digit
    recogniser from the slot's pixels (:mod:`.handwriting`). Only a trusted reading becomes the
    value (``method``/``source`` ``handwriting``); otherwise the field stays empty, named in the
    review reasons with the slot's box, and the recogniser's guess is quoted for the steward."""
    from pipeline.stages.extract import (  # deferred: import cycle (pipeline.stages.extract imports pipeline.stages.extract.admin)
        handwriting,
        reread,
    )

    slots = {name: ex.evidence[name] for name in ("number", "date")
             if name not in ex.fields and name in ex.evidence and ex.evidence[name].method == "handwriting"}  # fmt: skip
    if not slots:
        return
    rgb = reread.page_rgb(image)
    if rgb is None or rgb.shape[0] < page.height * 0.9 or rgb.shape[1] < page.width * 0.9:
        return
    for name, evidence in slots.items():
        try:
            x0, y0, x1, y1 = (int(v) for v in evidence.boxes[0])
            reading = handwriting.read_slot(rgb, (x0, y0, x1, y1))
        except Exception:  # noqa: BLE001 - best effort: the slot stays for the steward
            continue
        value = _slot_value(ex, name, reading.text) if reading.trusted else None
        if value is not None and name == "number" and _ocr_digits(ex.hints.get("number_ocr")) != reading.text:
            # nothing checks a number but a second reading: Tesseract's digits of the same slot
            # must agree (a date is checked against the signing time, see .signatures)
            value = None
        if value is not None and name == "date" and ex.hints.get("date_ocr") != value:
            # read by the recogniser alone (OCR read the day otherwise, or not at all): .signatures
            # holds it to the issuing body's signing day
            ex.hints["date_handwritten"] = True
        if value is None and name == "date" and reading.confidence >= handwriting.CORROBORATED_MIN_CONF:
            # not trusted alone; .signatures takes it if the issuing body signed on that day or
            # within days after it (two independent readings of the same date agreeing)
            candidate = _slot_value(ex, name, reading.text)
            if candidate is not None:
                ex.hints["date_candidate"] = (candidate, reading.confidence, page.page, evidence.boxes)
        if value is None:
            if reading.text:
                for issue in ex.issues:
                    if issue.field == name and "recogniser" not in issue.message:
                        issue.message += f" (the digit recogniser reads '{reading.text}' with confidence {reading.confidence:.2f}, not enough to trust)"
            continue
        ex.set(name, value, reading.confidence,
               FieldEvidence(page=page.page, boxes=evidence.boxes, method="handwriting", source="handwriting"))  # fmt: skip
        ex.issues = [i for i in ex.issues if i.field != name]
        ex.hints.setdefault("handwritten", []).append(name)


def _ocr_digits(number: str | None) -> str | None:
    """The digits of a number as OCR read them ('04/TTr-UBND' → '04')."""
    return number.split("/", 1)[0] if number else None


def _slot_value(ex: Extraction, name: str, digits: str | None) -> str | None:
    """The field value a trusted reading of a slot makes: 'N/<symbol>' for the number, the ISO
    date with the printed month and year for the day; None when it makes no valid value."""
    if not digits or not digits.isdigit():
        return None
    if name == "number":
        symbol = ex.hints.get("number_symbol")
        return f"{int(digits)}/{symbol}" if symbol and int(digits) > 0 else None
    month_year = ex.hints.get("date_month_year")
    if not month_year:
        return None
    try:
        return date(month_year[1], month_year[0], int(digits)).isoformat()
    except ValueError:
        return None


#: Below this OCR confidence (0–1) a digit of the number or of the day is not trusted: on real
#: scans those digits are written in by hand at registration, and Tesseract reads the ink at
#: 20–75 % as other digits ('O4' for 01, '44' for 11); printed digits read at 85–97 %.
NUMBER_MIN_DIGIT_CONF = 0.85


def _slot_box(ln: Line, words, symbol: str | None) -> tuple[int, int, int, int]:
    """The box where the digits of 'Số: … /<symbol>' are (or should be): from the end of 'Số:'
    to the start of the symbol, the line's height — what the review desk shows for typing in."""
    so = next((w for w in words if fold(w.text).startswith(("so", "s6"))), None)
    sym = next((w for w in words if "/" in w.text), None)
    x0 = so.bbox[2] if so else ln.x0
    x1 = sym.bbox[0] if sym and sym.bbox[0] > x0 else ln.x1
    pad = int(0.4 * ln.height)
    return (x0, ln.top - pad, max(x1, x0 + ln.height), ln.bottom + pad)


#: A header line that is nothing but a number's symbol: '/UBND-KTTH', '/TB-UBND'.
_LONE_SYMBOL = re.compile(r"^[/|]\s*([A-ZĐ][A-ZĐa-z0-9]{0,9}(?:\s*-\s*[A-ZĐ][A-ZĐa-z0-9]{0,9})+)\.?$")


_MONTH_YEAR_TAIL = re.compile(r"(?:thang)?\s*(\d{1,2})\s*[,.]?\s*nam\s*(\d{4})")


def _join_rows(lines: list[Line]) -> list[Line]:
    """Lines of one column that share a row joined into one, left to right: a handwritten day
    between 'ngày' and 'tháng' leaves a gap that splits "Quảng Ngãi, ngày 06 tháng 01 năm 2025"
    into two lines (and Tesseract may lose 'ngày' with the ink)."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda x: x.top):
        row = next((r for r in rows if min(r[0].bottom, ln.bottom) - max(r[0].top, ln.top) > 0.5 * min(r[0].height, ln.height)), None)
        if row is None:
            rows.append([ln])
        else:
            row.append(ln)
    return [Line(r[0].page, [w for x in sorted(r, key=lambda y: y.x0) for w in x.words]) for r in rows]


_MONTH_YEAR = re.compile(r"^(?P<place>[a-z][a-z .-]{1,40}),\s*(?:ngay)?\s*\S{0,3}\s*(?P<date>(?:thang)?\s*[0-9oil|]{1,2}\s*[,.]?\s*nam\s*[0-9oil|]{4})")


def _date_without_day(text: str):
    """'Quảng Ngãi, tháng 9 năm 2024' (the day written in by hand, 'ngày' — even 'tháng' — lost with it): a date
    match with no value, so that the place is still read and the date sent to review."""
    from pipeline.stages.extract.common import (
        DateMatch,  # deferred: import cycle (pipeline.stages.extract.common imports pipeline.stages.extract.admin)
    )

    f = fold(nfc(text))
    m = _MONTH_YEAR.match(f)
    if not m:
        return None
    return DateMatch(None, m.end("place") + 1, m.end("date"), "the day is not printed (handwritten?)",
                     text[m.end("place") + 1 : m.end("date")])  # fmt: skip


def _day_words(words) -> list:
    """The word(s) between 'ngày' and 'tháng' (the day), empty when nothing was read there."""
    folded = [fold(w.text) for w in words]
    i = next((k for k, f in enumerate(folded) if f.startswith("ngay")), None)
    j = next((k for k, f in enumerate(folded) if f.startswith("thang")), None)
    if i is None or j is None or j <= i:
        return []
    inner = words[i + 1 : j]
    tail = words[i].text[4:]  # 'ngày06' read as one word
    return inner or ([words[i]] if any(c.isdigit() for c in tail) else [])


def _day_slot(ln: Line, words) -> tuple[int, int, int, int]:
    """The box of the day between 'ngày' and 'tháng' (where it is written in by hand)."""
    folded = [fold(w.text) for w in words]
    i = next((k for k, f in enumerate(folded) if f.startswith("ngay")), None)
    j = next((k for k, f in enumerate(folded) if f.startswith("thang")), None)
    x0 = words[i].bbox[2] if i is not None else ln.x0
    x1 = words[j].bbox[0] if j is not None and words[j].bbox[0] > x0 else x0 + 2 * ln.height
    pad = int(0.4 * ln.height)
    return (x0, ln.top - pad, max(x1, x0 + ln.height), ln.bottom + pad)


_SYMBOL_WORD = re.compile(r"/|^[A-ZĐ]{1,5}-[A-ZĐ]{2,}|^s[ốoô6]:?$", re.IGNORECASE)


def _without_symbol(ln: Line) -> Line | None:
    """An issuer line without the pieces of the number ('Số:', '/CT-UBND') that share its row when
    the digits are written by hand and the number line is not recognised as one."""
    words = [w for w in ln.words if not _SYMBOL_WORD.search(w.text)]
    return Line(ln.page, words) if words and _letters(" ".join(w.text for w in words)) >= 2 else None


def check_number_type(ex: Extraction) -> None:
    """A type abbreviation in the number that disagrees with the type name → review."""
    number = ex.fields.get("number") or (f"0/{ex.hints['number_symbol']}" if ex.hints.get("number_symbol") else None)
    doc_type = ex.fields.get("doc_type")
    ok = type_matches_number(doc_type, number)
    ex.issues = [i for i in ex.issues if not (i.field == "doc_type" and i.kind == "inconsistent")]
    if ok is False:
        assert number is not None  # type_matches_number cannot tell (None) without a number
        implied = doc_type_from_number(number)
        ex.flag(
            "doc_type",
            "inconsistent",
            f"type '{doc_type}' does not match the number's symbol '{number.split('/', 1)[1]}'"
            + (f" (implies '{implied}')" if implied else " (no type abbreviation)"),
        )


def _title_in_line(ln: Line, W: float):
    """(sub-line, (type, score)) when ``ln`` (or a centred window of it) is a type name."""
    m = match_doc_type(ln.text)
    if m:
        return ln, m
    n = len(ln.words)
    if n < 3:
        return None
    best = None
    for size in (2, 3, 1):
        for j in range(0, n - size + 1):
            sub = ln.sub(j, j + size)
            if abs(sub.center_x - W / 2) > 0.2 * W or uppercase_ratio(sub.text) < 0.8:
                continue
            m = match_doc_type(sub.text, min_score=88)
            if m and (best is None or m[1] > best[1][1]):
                best = (sub, (m[0], m[1] * 0.9))
    return best


_SUBJECT_STOP = ("can cu", "kinh gui", "dieu 1", "noi nhan")
_SUBJECT_STOP_NEXT = ("thuc hien", "quyet dinh:", "chu tich")


def _sentence_word(w: str) -> bool:
    """'Về', 'trên' (a word that can start a trích yếu line), not 'HỌC' or '0.NG'."""
    return w[:1].isalpha() and (len(w) == 1 or w[1:].islower())


def _centred_part(ln: Line, cx: float, tol: float) -> Line | None:
    """``ln`` or its shortest-trimmed suffix centred on ``cx`` (leading stamp garbage cut off)."""
    for j in range(len(ln.words)):
        sub = ln.sub(j)
        if j and words_confidence(ln.words[:j]) >= 0.75:
            continue  # the words cut off must look like garbage (a stamp), not a body line's start
        if (abs(sub.center_x - cx) < tol and sub.confidence > 0.7
                and _sentence_word(sub.words[0].text)):
            return sub
    return None


def _title_subject(after: list[Line], title_line: Line, h: float, W: float) -> list[Line]:
    """Centred lines under the type name, up to the gap before the body."""
    subj: list[Line] = []
    prev = title_line
    cx = title_line.center_x
    tol = 0.06 * W
    for ln in after:
        if ln.top <= title_line.bottom - 0.2 * h or ln is title_line:
            continue
        if _is_rule(ln):
            if subj and ln.x1 - ln.x0 >= 0.06 * W and abs(ln.center_x - cx) < 0.15 * W:
                break  # the rule under the trích yếu; a speck of a few pixels is not one
            continue
        part = ln if abs(ln.center_x - cx) < tol else _centred_part(ln, cx, tol)
        if part is None:
            if ln.x1 - ln.x0 < 0.45 * W:
                continue  # a stamp fragment beside the subject (body lines are full width)
            break
        gap = part.top - prev.bottom
        lh = max(part.height, prev.height if subj else part.height)
        if (subj and gap > 1.3 * lh) or (not subj and gap > 3.5 * lh):
            break
        f = fold(part.text)
        if f.startswith(_SUBJECT_STOP) or (subj and (f.startswith(_SUBJECT_STOP_NEXT) or uppercase_ratio(part.text) > 0.8)):
            break
        if subj and _noise_line(part):
            break
        subj.append(part)
        prev = part
        if len(subj) >= 5:
            break
    return subj


def _vv_subject(lines: list[Line], hl: HeaderLayout, number_line: Line | None, h: float) -> list[Line]:
    """'V/v …' lines of a công văn: left column, under the number."""
    start_y = number_line.bottom - 0.3 * h if number_line else hl.y0
    left = [ln for ln in lines if ln.top >= start_y and hl.is_left(ln) and ln.top < start_y + 12 * h]
    idx = next((i for i, ln in enumerate(left[:4]) if VV_RE.match(nfc(ln.text))), None)
    if idx is None:
        return []
    out = [left[idx]]
    for ln in left[idx + 1 :]:
        if ln.top - out[-1].bottom > 1.0 * out[-1].height or fold(ln.text).startswith(("kinh gui", "so:")):
            break
        if _is_rule(ln) or _noise_line(ln):
            break
        out.append(ln)
        if len(out) >= 6:
            break
    return out


_CHILD_UNITS = ("so ", "phong ", "van phong", "cuc ", "vu ", "ban ", "trung tam", "chi cuc", "thanh tra",
                "truong ", "benh vien", "vien ", "tong cuc", "kho bac", "cong an", "doi ")  # fmt: skip
_INCOMPLETE_END = ("uy ban nhan dan", "hoi dong nhan dan", "tinh", "thanh pho", "huyen", "quan", "xa", "phuong", "va")


def _parent_split(texts: list[str]) -> int:
    """How many of the issuer lines name the parent body (cơ quan chủ quản); 0 if none."""
    if len(texts) < 2:
        return 0
    for i in range(1, len(texts)):
        f = fold(texts[i]) + " "
        prev = clean_spaces(fold(" ".join(texts[:i])))
        if f.startswith(_CHILD_UNITS) and not prev.endswith(_INCOMPLETE_END):
            return i
    return 0


def _is_nn(ln: Line) -> bool:
    """The "Nơi nhận:" line (the heading of the recipients list)."""
    return fuzz.ratio(fold(ln.text)[:9], "noi nhan:") >= 80


def _signature_page(pages) -> tuple[int, list[Line], Line | None]:
    """(index of the page with the signature block, its lines, its "Nơi nhận" line or None).

    The main document's block is the FIRST one: what follows it is attached (a draft resolution
    with its own header, "Nơi nhận" and unsigned "CHỦ TỊCH", a list, a form), and its signer is
    not the document's."""
    for k in range(len(pages)):
        lines = page_lines(pages[k])
        nn = next((ln for ln in lines if _is_nn(ln)), None)
        auth = next((ln for ln in lines if AUTHORITY_RE.match(ln.text) and uppercase_ratio(ln.text) > 0.6), None)
        if nn or auth:
            return k, lines, nn
    return len(pages) - 1, page_lines(pages[-1]), None


def _signature_block(ex: Extraction, pages, images=None) -> None:
    k, lines, nn = _signature_page(pages)
    page = pages[k]
    if not lines:
        return
    W = page.width
    h = median_height(lines)
    auth = next((ln for ln in lines if _authority(ln) and uppercase_ratio(ln.text) > 0.6
                 and (nn is None or ln.top >= nn.top - 3 * h)), None)  # fmt: skip
    if auth is None and nn is not None:
        # the head signs (no prefix): the title may stand up to ~2 lines above "Nơi nhận:"
        auth = next((ln for ln in lines if nn.top - 3 * h <= ln.top < nn.top and ln.x0 >= W * 0.4
                     and (known_title(ln.text) or match_head_title(ln.text))), None)  # fmt: skip
    anchor_top = min([ln.top for ln in (nn, auth) if ln is not None], default=None)
    if anchor_top is None:
        end = next((ln for ln in reversed(lines) if ln.text.rstrip().endswith(("./.", "/."))), None)
        if end is None:
            return
        anchor_top = end.bottom
    mid = W * 0.5
    band = split_at(lines, mid, anchor_top - h, float("inf"), min_gap=1.5 * h)

    # Recipients: left half under "Nơi nhận:".
    heading_unread = False
    if nn is None and auth is not None:
        nn = _unread_heading(band, auth, h, mid)
        heading_unread = nn is not None
    if nn is not None:
        image = images[k] if images is not None and k < len(images) else None
        _recipients(ex, band, nn, mid, h, page, image, heading_unread=heading_unread)

    block = [ln for ln in band if ln.top >= anchor_top - 0.6 * h and ln.center_x >= mid * 0.95 and ln.x0 >= W * 0.4]
    reading = _read_block(block, anchor_top)
    other: _Block | None = None  # the reading not taken, for the tone marks of the name
    image = images[k] if images is not None and k < len(images) else None
    if image is not None:
        # the page's OCR may have lost the block under a seal, in part or whole
        again = _reread_block(block, anchor_top, h, page, image)
        deeper = None
        if not reading.name_ok and (again is None or not again.name_ok):
            # no full name in the box: it may stand lower (a tall signature, or lines measured in the
            # list's smaller font), cut by the box's lower edge
            deeper = _reread_block(block, anchor_top, h, page, image, min_height=_BLOCK_RETRY_HEIGHT)
            if deeper is not None and (again is None or deeper.better_than(again)):
                again = deeper
        if again is not None and again.better_than(reading):
            reading, other = again, reading
            if again is deeper and reading.name_ok:
                ex.hints["signer_deeper"] = True
        else:
            other = again
    _set_block_fields(ex, reading)
    if ex.hints.get("signer_deeper") and ex.fields.get("signer"):
        ex.evidence["signer"].method = "reread"
        ex.flag("signer", "low_confidence", "the signer's name was read only by a second OCR of the signature block "
                "reaching further down the page: check it against the page")  # fmt: skip
    if other is not None and other.person and ex.fields.get("signer"):
        restored = restore_dropped_tones(ex.fields["signer"], other.person)
        if restored is not None:
            ex.flag("signer", "low_confidence", f"the two readings of the name differ in a tone mark ('{ex.fields['signer']}' "
                    f"/ '{other.person}'): the marked syllable is taken (OCR drops a tone mark stacked over a "
                    "vowel mark; it does not add one): check the name")  # fmt: skip
            ex.set("signer", restored, min(ex.confidence["signer"], TONE_RESTORED_MAX_CONF), ex.evidence["signer"])


#: Confidence of a name whose tone mark was taken from the other reading.
TONE_RESTORED_MAX_CONF = 0.5


def restore_dropped_tones(name: str, other: str) -> str | None:
    """``name`` with the tone marks that it lacks and ``other`` (a second reading of the same name)
    has: syllable by syllable, where the two differ only in that ``name``'s syllable has no tone
    mark (thanh ngang) and ``other``'s has one ('Tuân' / 'Tuấn'). None when nothing is restored,
    or when the readings differ otherwise (another syllable count, other letters, two different
    tone marks: 'Tuần' / 'Tuấn' is no evidence either way).

    Tesseract drops a tone mark stacked over a vowel mark (â, ê, ô) — in the development set's
    readings of signers' names 'Tuân', 'Hiên', 'Nguyên', 'Trân' for Tuấn, Hiền, Nguyễn, Trần, some
    at 86 % — and was not seen adding one to an unmarked syllable ('Giang', 'Văn', 'Vân', 'Lê'
    read the same in every reading)."""
    a, b = name.split(), other.split()
    if len(a) != len(b):
        return None
    out, changed = [], False
    for x, y in zip(a, b, strict=True):
        if x == y:
            out.append(x)
            continue
        (bx, tx), (by, ty) = strip_tone(x), strip_tone(y)
        if bx != by or tx != 0 or ty != 1:
            return None
        out.append(y)
        changed = True
    return " ".join(out) if changed else None


class _Block:
    """The signature block as read: authority lines (KT./TL./TM. …), title lines and the name line."""

    def __init__(self, prefixes: list[Line], titles: list[Line], name: Line | None) -> None:
        self.prefixes, self.titles, self.name = prefixes, titles, name
        self.person = restore_surname(proper_case_person(_clean_name(name.text))) if name is not None else None

    @property
    def name_ok(self) -> bool:
        """A full name as officials' names are: a family name first and 3+ syllables."""
        syllables = (self.person or "").split()
        return len(syllables) >= 3 and syllables[0] in SURNAMES

    @property
    def name_conf(self) -> float:
        return min(w.conf for w in self.name.words) / 100.0 if self.name is not None else 0.0

    def better_than(self, other: _Block) -> bool:
        """This reading over ``other``: a well-formed name first, then a title read where the other
        has none, then the weakest syllable of the name."""
        if self.name_ok != other.name_ok:
            return self.name_ok
        if bool(self.titles or self.prefixes) != bool(other.titles or other.prefixes):
            return bool(self.titles or self.prefixes)
        return self.name_conf > other.name_conf


def _read_block(block: list[Line], anchor_top: float) -> _Block:
    i = 0
    prefixes: list[Line] = []
    while i < len(block) and _authority(block[i]) and uppercase_ratio(block[i].text) > 0.6:
        prefixes.append(block[i])
        i += 1
    titles: list[Line] = []
    for raw in block[i:]:
        if uppercase_ratio(raw.text) < 0.7 or _letters(raw.text) < 3:
            break
        ln = _clean_title_line(raw)
        if ln is None or (not titles and not (known_title(ln.text) or match_head_title(ln.text))):
            break
        if titles and ln.top - titles[-1].bottom > 1.5 * ln.height:
            break
        if not titles and prefixes and ln.top - prefixes[-1].bottom > 1.5 * ln.height:
            break
        titles.append(ln)
        if len(titles) >= 3:
            break
    # Name: the lowest person-like line of the block, below the titles.
    below = (titles or prefixes)[-1].bottom if (titles or prefixes) else anchor_top
    names = [ln for ln in block if ln.top > below and looks_like_person(_clean_name(ln.text))]
    title_case = [ln for ln in names if uppercase_ratio(ln.text) < 0.9]
    return _Block(prefixes, titles, (title_case or names)[-1] if names else None)


#: How far below the block's last line the re-read reaches (the name sits under the signature).
_BLOCK_REREAD_BELOW = 3.0
#: From the block's first line (prefix or title), the re-read reaches this many lines down at least:
#: prefix, title, the signature's space (4–6 lines) and the name, when the page's OCR lost the name.
_BLOCK_MIN_HEIGHT = 12.0


#: The second, deeper re-read (when the first found no full name): this many lines from the block's
#: first line (on the development set's black-and-white scan the name stood 12.8 lines of the
#: "Nơi nhận" list's font under it).
_BLOCK_RETRY_HEIGHT = 18.0


def _reread_block(block: list[Line], anchor_top: float, h: float, page, image,
                  min_height: float = _BLOCK_MIN_HEIGHT) -> _Block | None:  # fmt: skip
    """The signature block read again from the page image's red channel, where a red seal is as
    bright as the paper and the black print under it comes out whole (the page's OCR lost
    'Nguyễn' and 'CHỦ' under the seal of real scans; the red channel reads 'CHỦ TỊCH / Nguyễn
    Hoàng Giang' at 92–97 %). Blue or black ink stays dark. None without a usable image."""
    from pipeline.stages.extract import (
        reread,  # deferred: import cycle (pipeline.stages.extract imports pipeline.stages.extract.admin)
    )

    rgb = reread.page_rgb(image)
    if rgb is None or rgb.shape[0] < page.height * 0.9 or rgb.shape[1] < page.width * 0.9:
        return None
    W = page.width
    bottom = max([ln.bottom + _BLOCK_REREAD_BELOW * h for ln in block] + [anchor_top + min_height * h])
    box = (0.45 * W, anchor_top - 1.0 * h, W - 0.02 * W, min(bottom, page.height))
    red = np.repeat(rgb[..., :1], 3, axis=2)  # the red channel as a grey page
    words = reread.reread_block(red, box, page.dpi, page=page.page)
    if not words:
        return None
    lines = [Line(page.page, [w for w in ln.words if not _is_speck(w, h)]) for ln in reread.lines_of(words, page.page)]
    lines = [ln for ln in lines if ln.words and ln.center_x >= 0.5 * W * 0.95]
    return _read_block(lines, anchor_top) if lines else None


#: Confidence of an authority prefix read through :data:`SEALED_KT_RE` (and so of the deputy title
#: it implies): below every review threshold.
SEALED_PREFIX_MAX_CONF = 0.5


def _set_block_fields(ex: Extraction, reading: _Block) -> None:
    prefixes, titles = reading.prefixes, reading.titles
    kinds: list[tuple[str, str]] = []
    sealed = [ln for ln in prefixes if not AUTHORITY_RE.match(clean_spaces(ln.text))
              and not GARBLED_KT_RE.match(clean_spaces(ln.text))]  # fmt: skip
    if prefixes:
        parts = []
        for ln in prefixes:
            authority = _authority(ln)
            assert authority is not None  # _read_block takes only authority lines as prefixes
            p, rest = authority
            kinds.append((p, proper_case_title(rest)))
            parts.append(f"{p}. {proper_case_title(rest)}")
        conf = min(ln.confidence for ln in prefixes)
        ex.set("authority_prefix", "; ".join(parts), min(conf, SEALED_PREFIX_MAX_CONF) if sealed else conf, _ev(prefixes))
        if sealed:
            ex.flag("authority_prefix", "low_confidence", f"'KT.' taken from '{sealed[0].words[0].text}' (a seal over "
                    "the prefix): check the authority line")  # fmt: skip
    title, title_conf = None, 0.0
    if titles:
        text = clean_spaces(" ".join(ln.text for ln in titles)).strip(" .,;:")
        ex.hints.setdefault("raw", {})["signer_title"] = text
        title = (None if known_title(text) else match_head_title(text)) or proper_case_title(text)
        title_conf = min(min(w.conf for w in ln.words) for ln in titles) / 100.0
    if kinds and kinds[-1][0] == "KT":
        # "KT. <head>" is always followed by the deputy's own title (Decree 30, Appendix I): a
        # title read as the head's ('CHỦ TỊCH': 'PHÓ' lost under the seal) or garbled ('PO CHỦ
        # TỊCH') is the deputy title; one that is neither is left to the steward.
        deputy = deputy_title(kinds[-1][1])
        head = fold(kinds[-1][1])
        if title is None or fuzz.ratio(fold(title), head) >= 75 or fuzz.ratio(fold(title), fold(deputy)) >= 75:
            evidence = _ev(titles or prefixes)
            evidence.method = "rule"
            ex.set("signer_title", deputy, 0.9 * ex.confidence["authority_prefix"], evidence)
            if sealed:
                ex.flag("signer_title", "low_confidence", f"'{deputy}' follows from 'KT.', read under a seal: check "
                        "the title")  # fmt: skip
        else:
            ex.set("signer_title", title, min(title_conf, 0.5), _ev(titles))
            ex.flag("signer_title", "inconsistent", f"'{title}' under 'KT. {kinds[-1][1]}' is no deputy title")
    elif title is not None:
        ex.set("signer_title", title, title_conf, _ev(titles))
    if not reading.name_ok and (prefixes or titles):
        # the block was read in part (a seal or signature over it): what was read of the title
        # and the prefix may be missing a line ('KT.', 'PHÓ') as the name is
        for name in ("signer_title", "authority_prefix"):
            ex.flag(name, "low_confidence", "the signature block was read only in part (seal or signature over "
                    "it): check the title and the authority line (KT./TL./TM.)")  # fmt: skip
    if reading.name is not None:
        person = reading.person
        assert person is not None  # read from the name line
        # a name is as good as its weakest syllable ('Tuân' for 'Tuấn' under the signature), and
        # a full name starts with a family name (a syllable lost under the seal: 'Thị Lê Vân')
        conf = reading.name_conf
        if not reading.name_ok:
            # officials' names have a family name and 3+ syllables; fewer, or no family name
            # first, is most often a syllable hidden by the seal ('Hoàng Giang', 'Thị Lê Vân')
            conf = min(conf, 0.5)
            why = "no family name first" if person.split()[0] not in SURNAMES else f"only {len(person.split())} syllables"
            ex.flag("signer", "low_confidence", f"'{person}' has {why}: part of it may be hidden by the seal or the "
                    "signature")  # fmt: skip
        ex.set("signer", person, conf, _ev([reading.name]))


def _authority(ln: Line) -> tuple[str, str] | None:
    """('KT', 'CHỦ TỊCH') for an authority line 'KT. CHỦ TỊCH' (also with a misread 'K')."""
    text = clean_spaces(ln.text)
    m = AUTHORITY_RE.match(text)
    if m:
        return m.group(1).replace(".", "").upper(), m.group(2).strip(" ._-")
    g = GARBLED_KT_RE.match(text) or _sealed_kt(text)
    if g and (known_title(g.group(1)) or match_head_title(g.group(1))):
        return "KT", g.group(1).strip(" ._-")
    return None


def _sealed_kt(text: str) -> re.Match | None:
    """:data:`SEALED_KT_RE` on a line whose first token is garbled (not letters only: 'ce=J{T.'),
    not a word that happens to end in 'T.'."""
    m = SEALED_KT_RE.match(text)
    if m is None:
        return None
    first = text.split()[0].rstrip(".,:")
    return m if not first.isalpha() else None


def _clean_title_line(ln: Line) -> Line | None:
    """Drop seal/signature garbage words (no letters; low confidence) around a chức danh line.

    Low-confidence words stay when the line is a known title with them ('CHỦ' read at 34 % in
    '_ CHỦ TỊCH': the seal or signature crosses it) and not without them."""
    lettered = [w for w in ln.words if _letters(w.text) >= 1 and w.text[:1].isupper()]
    sure = [w for w in lettered if w.conf >= 50]
    if lettered and len(sure) < len(lettered):
        text = " ".join(w.text for w in lettered)
        sure_text = " ".join(w.text for w in sure)
        if (known_title(text) or match_head_title(text)) and not (known_title(sure_text) or match_head_title(sure_text)):
            return Line(ln.page, lettered)
    return Line(ln.page, sure) if sure else None


def _clean_name(text: str) -> str:
    return join_name_fragments(clean_spaces(re.sub(r"[^\wÀ-ỹ ]", " ", nfc(text)).replace("_", " ")))


#: The archive line of "Nơi nhận" (Decree 30, Appendix I: "Lưu: VT, <drafting unit>"), on folded
#: text, tolerant of a garbled "Lưu" ('1u:', '>†ƯU:', 'L.ữU:').
_LUU_RE = re.compile(r"^[^a-z0-9]{0,3}[a-z0-9]?\W?u{1,2}\s*[:;]")


def _is_luu(text: str) -> bool:
    return bool(_LUU_RE.match(fold(text)))


def _vt_like(token: str) -> bool:
    """'VT' (văn thư) as OCR reads it: 'VI', 'V1', 'ẤT', 'VE'."""
    f = fold(token)
    return 1 <= len(f) <= 2 and (f[0] == "v" or f[-1] == "t")


def _fix_luu(item: str, confs: dict[str, float] | None = None, unit: str | None = None) -> str:
    """'L.ữU: VI; CST' → 'Lưu: VT, CST' (the archive line: Lưu: VT (văn thư), <unit>).

    For a công văn the drafting unit (đơn vị soạn thảo) is also the last part of the number's
    symbol ('5898/UBND-KSTT' → KSTT; Decree 30, Appendix III): a low-confidence unit one letter
    off it ('HCTE' for HCTP) is read as that unit, and so is one with a letter doubled ('KSTTT':
    Tesseract repeats a glyph) unless read with high confidence."""
    if not _is_luu(item):
        return item
    rest = item.split(":", 1)[1] if ":" in item else re.split(r"[;]", item, maxsplit=1)[-1]
    m = re.match(r"^\s*([^\s,;.]{1,2})(?![^\s,;.])[\s,;.]*(.*)$", rest)
    parts: list[str] = []
    if m and _vt_like(m.group(1)):
        parts.append("VT")
        rest = m.group(2)
    for part in re.split(r"\s*[,;]\s*", rest):
        part = part.strip(" .")
        if not part:
            continue
        conf = (confs or {}).get(part, 100.0)
        if unit and part != unit and len(part) == len(unit) and part[0] == unit[0] \
                and sum(a != b for a, b in zip(part, unit, strict=True)) == 1 and conf < 70:
            part = unit
        elif unit and conf < DOUBLED_MAX_CONF and _doubled(part, unit):
            part = unit
        parts.append(part)
    return clean_spaces("Lưu: " + ", ".join(parts)).rstrip(", ")


#: A unit read with a doubled letter is taken for the number's unit below this confidence.
DOUBLED_MAX_CONF = 90.0


def _doubled(part: str, unit: str) -> bool:
    """``part`` is ``unit`` with one of its letters doubled ('KSTTT' for 'KSTT')."""
    return len(part) == len(unit) + 1 and any(
        part[i] == part[i + 1] and part[:i] + part[i + 1 :] == unit for i in range(len(part) - 1)
    )


_BULLETS = ("-", "–", "—", "+", "•", "*", "_")
#: 'Cổng TTĐT' (cổng thông tin điện tử, the e-portal that every list sends a copy to) read as
#: 'Công TTĐT' by both readings: 'Công' is never followed by TTĐT.
_CONG_TTDT = re.compile(r"\bCông(?= (?:TTĐT|TT-ĐT|TTĐTT|thông tin điện tử|Thông tin điện tử)\b)")
#: Confidence of a "Nơi nhận" list that two independent readings gave identically.
AGREED_RECIPIENTS_CONF = 0.95


def _is_speck(w, h: float) -> bool:
    """Seal or signature speckle read as a word: a tiny box at low confidence (not a bullet)."""
    bw, bh = w.bbox[2] - w.bbox[0], w.bbox[3] - w.bbox[1]
    return w.conf < 60 and (bh < 0.45 * h or bw < 0.3 * h) and w.text not in _BULLETS


def _letter_unit(number: str | None) -> str | None:
    """The drafting unit in a công văn's number ('5898/UBND-KSTT' → 'KSTT'); None for other types."""
    if not number or doc_type_from_number(number) is not None or "-" not in number.split("/")[-1]:
        return None
    return number.split("/")[-1].split("-")[-1]


def _recipient_lines(band: list[Line], nn: Line, mid: float, h: float) -> list[Line]:
    """The "Nơi nhận" line and the left-column lines under it, down to a gap of 3 line heights
    (speckles left out, see :func:`_is_speck`)."""
    out = [nn]
    prev_bottom = nn.bottom
    for ln in band:
        if ln is nn or not (ln.top > nn.top + 0.3 * h and ln.center_x < mid):
            continue
        if ln.top - prev_bottom > 3 * h:
            break
        words = [w for w in ln.words if not _is_speck(w, h)]
        if not words:
            continue
        prev_bottom = ln.bottom
        out.append(Line(ln.page, words))
    return out


def _reread_recipients(lines: list[Line], band: list[Line], mid: float, h: float, page,
                       image) -> tuple[list[Line], int, int] | None:  # fmt: skip
    """The block read again on its own from the page image (:mod:`.reread`), merged line by line
    with the page's reading, how many lines the re-read gave and on how many lines the two
    readings differ; None when there is no usable image or the re-read gives nothing."""
    from pipeline.stages.extract import (
        reread,  # deferred: import cycle (pipeline.stages.extract imports pipeline.stages.extract.admin)
    )

    rgb = reread.page_rgb(image)
    if rgb is None or rgb.shape[0] < page.height * 0.9 or rgb.shape[1] < page.width * 0.9:
        return None  # no image, or not the image the word boxes refer to
    top, bottom = min(ln.top for ln in lines), max(ln.bottom for ln in lines)
    x0 = min(ln.x0 for ln in lines)
    x1 = max(ln.x1 for ln in lines)
    # The right edge: clear of the signature block beside the list (lines right of the middle).
    beside = [ln.x0 for ln in band if ln.center_x >= mid and ln.bottom > top and ln.top < bottom and ln.x0 > x1]
    right = min([x1 + 1.5 * h] + [b - 0.3 * h for b in beside])
    box = (x0 - 0.8 * h, top - 0.4 * h, right, bottom + 0.4 * h)
    words = reread.reread_block(rgb, box, page.dpi, page=page.page)
    if not words:
        return None
    again = [Line(page.page, [w for w in ln.words if not _is_speck(w, h)]) for ln in reread.lines_of(words, page.page)]
    again = [ln for ln in again if ln.words]
    merged, taken = reread.merge_readings(lines, again)
    return merged, taken, reread.disagreements(lines, again)


#: Marks that neither start nor end a "Nơi nhận" entry (it starts with its bullet and ends with ';'
#: or, the last, '.'): a speck or a stroke of the signature beside the list read as '`', '~', '='
#: ('- Cổng TTĐT tỉnh; `', '~ Như trên', 'Bộ Tài chính: ='). A ':' that ends an entry is its ';'
#: misread ('CT, PCT UBND tỉnh:'), dropped with it as the ';' is.
_STRAY_MARKS = "`~=^"


def _unread_heading(band: list[Line], auth: Line, h: float, mid: float) -> Line | None:
    """The line where "Nơi nhận:" stands but was not read as such ('TH' under a stroke of the
    signature): the left-column line beside the signature block's first line, right above a
    '- …' entry, in a list that ends with its "Lưu:" line (Decree 30, Appendix I: the list sits
    left of the signature block, its entries bulleted, the last "Lưu: VT, …"). None otherwise."""
    left = [ln for ln in band if ln.center_x < mid and ln.top >= auth.top - 1.5 * h]
    first = next((i for i, ln in enumerate(left[:3]) if ln.text.lstrip().startswith(_BULLETS)), None)
    if not first:  # none, or no line above the first entry
        return None
    head, entry = left[first - 1], left[first]
    if entry.top - head.bottom > 1.5 * h or head.top > auth.bottom + h or head.text.lstrip().startswith(_BULLETS):
        return None
    return head if any(_is_luu(ln.text.lstrip("".join(_BULLETS) + " ")) for ln in left[first:]) else None


def _recipients(ex: Extraction, band: list[Line], nn: Line, mid: float, h: float, page, image=None, *,
                heading_unread: bool = False) -> None:  # fmt: skip
    """Nơi nhận: one item per "- …;" entry, the last one "Lưu: VT, …".

    An entry ends with ';' (the last with '.'), so a line after a ';' starts a new entry even
    when its bullet was lost, and a line without a bullet after an unfinished entry continues it.
    Seal speckles (tiny low-confidence "words") are dropped; the list ends at the Lưu line.
    With the page image the block is first read again on its own and the better reading of each
    line kept (:func:`_reread_recipients`)."""
    lines = _recipient_lines(band, nn, mid, h)
    if image is not None:
        again = _reread_recipients(lines, band, mid, h, page, image)
        if again is not None:
            lines, ex.hints["recipients_reread_lines"], ex.hints["recipients_disagreements"] = again
    items: list[list] = []  # words per entry
    boxes = []
    confs = []
    seq: list[tuple[list, tuple, float]] = []
    for i, ln in enumerate(lines):
        words = ln.words
        if i == 0 and heading_unread and not _is_nn(ln):
            continue  # the garbled heading ('TH' for "Nơi nhận:"): no entry
        if i == 0 or _is_nn(ln):  # the heading: its words after "Nơi nhận:"
            words = [w for w in words[2:] if not _is_speck(w, h)] if _is_nn(ln) else words
            if not words:
                continue
            seq.append((words, ln.bbox, Line(ln.page, words).confidence if i else ln.confidence))
            continue
        seq.append((words, ln.bbox, ln.confidence))
    for words, box, conf in seq:
        text = " ".join(w.text for w in words).strip()
        if not text:
            continue
        last = " ".join(w.text for w in items[-1]).rstrip() if items else ""
        if text.startswith(_BULLETS) or not items or last.endswith(";") or _is_luu(text):
            if items and _is_luu(last):
                break  # the archive line closes the list
            items.append(list(words))
        else:
            items[-1].extend(words)
        boxes.append(box)
        confs.append(conf)
    unit = _letter_unit(ex.fields.get("number"))
    out = []
    for words in items:
        t = clean_spaces(" ".join(w.text for w in words)).lstrip("".join(_BULLETS) + _STRAY_MARKS + " ")
        t = clean_spaces(re.sub(rf"[;.,:\s{re.escape(_STRAY_MARKS)}]+$", "", t)).strip()
        t = re.sub(r";(?= [a-zđà-ỹ])", ",", t)  # an entry ends at ';': inside one it is a ','
        if _letters(t) < 2:
            continue
        wconf = {w.text.strip(".,;:"): w.conf for w in words}
        wconf.update({p: w.conf for w in words for p in re.split(r"[,;:]", w.text) if p})
        out.append(_fix_luu(_CONG_TTDT.sub("Cổng", t), wconf, unit))
    if out:
        conf = min(confs)
        if ex.hints.get("recipients_disagreements") == 0:
            # the page's OCR and the block read again on its own agree line for line
            conf = max(conf, AGREED_RECIPIENTS_CONF)
        ex.set("recipients", out, conf, FieldEvidence(page=page.page, boxes=boxes))
        if heading_unread:
            ex.flag("recipients", "low_confidence", "the 'Nơi nhận:' heading was not read: the bulleted list beside "
                    "the signature block, ending with its 'Lưu:' line, was taken for it; check the list")  # fmt: skip
        if not _is_luu(out[-1]):
            # Decree 30 (Appendix I): the list ends with "Lưu: VT, …"; without it a line was lost
            ex.flag("recipients", "missing", "the Nơi nhận list does not end with its 'Lưu: VT, …' line: a line "
                    "was not read; check the list against the page")  # fmt: skip
