"""Rules for administrative documents laid out per Decree 30/2020/NĐ-CP (thể thức văn bản).

The header is two columns: issuing body (left) over the number; Quốc hiệu (right) over place
and date. The type name and trích yếu are centred under the header (a công văn has none: its
"V/v ..." subject sits under the number). The signature block is on the right at the end,
"Nơi nhận" on the left.
"""

from __future__ import annotations

import re

from ..records import FieldEvidence
from .common import (
    clean_spaces,
    doc_type_from_number,
    doc_type_from_title,
    fold,
    nfc,
    parse_vietnamese_date,
    sentence_case_name,
    sentence_case_title,
    title_case_person,
)
from .layout import Line, page_lines
from .result import Extraction

NUMBER_RE = re.compile(
    r"S[ốoô6ố]\s*[:;.]?\s*(\d{1,6})\s*/\s*((?:\d{4}\s*/\s*)?[A-ZĐ][A-Za-zĐđ0-9]*(?:\s*-\s*[A-ZĐ][A-Za-zĐđ0-9]*)*)"
)
PLACE_DATE_RE = re.compile(
    r"([A-ZĐÀ-Ỹ][^,]{1,40}?)\s*,\s*ngày\s*\d{1,2}\s*tháng\s*\d{1,2}\s*năm\s*\d{4}", re.IGNORECASE
)
NATIONAL_TITLE = "cong hoa xa hoi chu nghia viet nam"
MOTTO = "doc lap - tu do - hanh phuc"
AUTHORITY_RE = re.compile(r"^(KT|TL|TM|Q|TUQ)\s*\.\s*(.+)$")


def _is_national(line: Line) -> bool:
    f = fold(line.text)
    return "cong hoa" in f or "chu nghia" in f or "doc lap" in f or "hanh phuc" in f


def _uppercase_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(c.isupper() for c in letters) / len(letters)


def extract_admin(pages) -> Extraction:
    ex = Extraction(record_type="admin_document")
    if not pages:
        return ex
    first = page_lines(pages[0])
    if not first:
        return ex
    width = pages[0].width

    # --- header split: the Quốc hiệu line fixes the right column --------------------------
    national = next((ln for ln in first[:12] if _is_national(ln)), None)
    split_x = national.x0 - 10 if national else width * 0.45
    header_end = None

    # --- number ----------------------------------------------------------------------------
    number_line = None
    for ln in first[:25]:
        m = NUMBER_RE.search(nfc(ln.text))
        if m and ln.x0 < split_x:
            number_line = ln
            number = m.group(1) + "/" + re.sub(r"\s+", "", m.group(2))
            ex.set("number", number, ln.confidence, FieldEvidence(page=ln.page, boxes=ln.boxes()))
            break

    # --- place and date ---------------------------------------------------------------------
    date_line = None
    for ln in first[:30]:
        text = nfc(ln.text)
        d = parse_vietnamese_date(text)
        if d and "ngày" in text.lower():
            date_line = ln
            ex.set("date", d.isoformat(), ln.confidence, FieldEvidence(page=ln.page, boxes=ln.boxes()))
            pm = PLACE_DATE_RE.search(text)
            if pm:
                place = clean_spaces(pm.group(1)).strip(" .,:;")
                ex.set("place", place, ln.confidence, FieldEvidence(page=ln.page, boxes=ln.boxes()))
            break
    header_end = max((ln.bottom for ln in (number_line, date_line) if ln is not None), default=None)

    # --- issuer (left column above the number) -----------------------------------------------
    limit = number_line.top if number_line else (national.bottom + 3 * national.height if national else width)
    left = [
        ln for ln in first
        if ln.bottom <= limit + 2 and ln.x1 <= split_x + 20 and not _is_national(ln)
        and _uppercase_ratio(ln.text) > 0.6 and len(ln.text.strip("-_ ")) > 1
    ]  # fmt: skip
    if left:
        parent, issuer = _split_issuer([clean_spaces(ln.text.strip("-_ ")) for ln in left])
        conf = min(ln.confidence for ln in left)
        ev = FieldEvidence(page=left[0].page, boxes=[ln.bbox for ln in left])
        ex.set("issuer", sentence_case_name(issuer), conf, ev)
        if parent:
            ex.set("issuer_parent", sentence_case_name(parent), conf, ev)

    # --- type name and subject ---------------------------------------------------------------
    after_header = [ln for ln in first if header_end is None or ln.top > header_end]
    vv_lines = [
        ln for ln in first
        if ln.x1 <= split_x + 20 and number_line is not None and ln.top > number_line.top
        and (header_end is None or ln.top < header_end + 6 * ln.height)
    ]  # fmt: skip
    doc_type = None
    title_line = None
    for ln in after_header[:8]:
        t = doc_type_from_title(ln.text)
        if t:
            doc_type, title_line = t, ln
            ex.set("doc_type", t, ln.confidence, FieldEvidence(page=ln.page, boxes=ln.boxes()))
            break
    vv_start = next((i for i, ln in enumerate(vv_lines) if fold(ln.text).startswith("v/v")), None)
    if doc_type is None and vv_start is not None:
        ex.set("doc_type", "Công văn", 0.9, FieldEvidence(page=vv_lines[vv_start].page, method="layout"))
        subject_lines = [vv_lines[vv_start]]
        for ln in vv_lines[vv_start + 1 :]:
            if ln.top - subject_lines[-1].bottom > 1.6 * ln.height:
                break
            subject_lines.append(ln)
        subject = clean_spaces(" ".join(ln.text for ln in subject_lines))
        subject = re.sub(r"^V\s*/\s*v\.?\s*:?\s*", "", subject, flags=re.IGNORECASE)
        ex.set(
            "subject",
            subject,
            min(ln.confidence for ln in subject_lines),
            FieldEvidence(page=first[0].page, boxes=[ln.bbox for ln in subject_lines]),
        )
    elif title_line is not None:
        subj: list[Line] = []
        for ln in after_header:
            if ln.top <= title_line.bottom:
                continue
            centred = abs(ln.center_x - width / 2) < width * 0.12 and (ln.x1 - ln.x0) < width * 0.8
            if not centred or (subj and ln.top - subj[-1].bottom > 1.8 * ln.height):
                break
            subj.append(ln)
            if len(subj) >= 4:
                break
        if subj:
            ex.set(
                "subject",
                clean_spaces(" ".join(ln.text for ln in subj)),
                min(ln.confidence for ln in subj),
                FieldEvidence(page=subj[0].page, boxes=[ln.bbox for ln in subj]),
            )
    if "doc_type" not in ex.fields:
        implied = doc_type_from_number(ex.fields.get("number"))
        if implied:
            ex.set("doc_type", implied, 0.6, FieldEvidence(method="rule"))

    _signature_block(ex, pages)
    return ex


_ISSUER_CONTINUATIONS = ("tinh ", "thanh pho", "huyen ", "quan ", "xa ", "phuong ", "thi xa", "thi tran", "chinh phu")
_CHILD_UNITS = ("so ", "phong ", "van phong", "cuc ", "vu ", "ban ", "trung tam", "chi cuc", "thanh tra", "truong ")


def _split_issuer(lines: list[str]) -> tuple[str | None, str]:
    """Separate a parent body ('UBND TỈNH QUẢNG NGÃI') from the issuing body ('SỞ TƯ PHÁP')."""
    if len(lines) == 1:
        return None, lines[0]
    for i in range(1, len(lines)):
        f = fold(lines[i])
        if f.startswith(_CHILD_UNITS) and not fold(lines[i - 1]).endswith(("uy ban nhan dan", "van")):
            return " ".join(lines[:i]), " ".join(lines[i:])
    return None, " ".join(lines)


def _signature_block(ex: Extraction, pages) -> None:
    last = pages[-1]
    lines = page_lines(last)
    if not lines:
        return
    width = last.width
    recipients_idx = next((i for i, ln in enumerate(lines) if fold(ln.text).startswith("noi nhan")), None)
    # Recipients: lines starting with '-' under "Nơi nhận", left half.
    if recipients_idx is not None:
        anchor = lines[recipients_idx]
        recips = []
        boxes = []
        for ln in lines[recipients_idx + 1 :]:
            if ln.x0 > width * 0.5:
                continue
            t = ln.text.strip()
            if t.startswith(("-", "–", "+", "•")):
                recips.append(t.lstrip("-–+• ").rstrip(";.,").strip())
                boxes.append(ln.bbox)
            elif recips and ln.top - anchor.bottom < 40 * anchor.height:
                recips[-1] = clean_spaces(recips[-1] + " " + t.rstrip(";.,"))
                boxes.append(ln.bbox)
        if recips:
            ex.set("recipients", recips, anchor.confidence, FieldEvidence(page=last.page, boxes=boxes))
    # Signature block: right-half lines from the "Nơi nhận" row downwards (or the page bottom third).
    top_limit = lines[recipients_idx].top - 3 * lines[recipients_idx].height if recipients_idx is not None else last.height * 0.55
    right = [ln for ln in lines if ln.x0 > width * 0.45 and ln.top >= top_limit]
    if not right:
        return
    upper_lines = [ln for ln in right if _uppercase_ratio(ln.text) > 0.75 and len(ln.text) > 3]
    if not upper_lines:
        return
    # The signer's name is the last line of the block (after the signature gap), title-like lines above.
    name_line = right[-1]
    name = clean_spaces(name_line.text)
    if len(name.split()) >= 2:
        ex.set("signer", title_case_person(name), name_line.confidence, FieldEvidence(page=last.page, boxes=name_line.boxes()))
    titles = [ln for ln in right if ln is not name_line and ln.bottom < name_line.top and _uppercase_ratio(ln.text) > 0.75]
    if titles:
        m = AUTHORITY_RE.match(clean_spaces(titles[0].text))
        if m:
            ex.set(
                "authority_prefix",
                f"{m.group(1)}. {sentence_case_name(m.group(2))}",
                titles[0].confidence,
                FieldEvidence(page=last.page, boxes=titles[0].boxes()),
            )
            titles = titles[1:]
        if titles:
            t = titles[0]
            ex.set("signer_title", sentence_case_title(t.text), t.confidence, FieldEvidence(page=last.page, boxes=t.boxes()))
