"""Results of administrative procedures: printed forms read as "label: value" lines.

* Giấy khai sinh (Circular 04/2020/TT-BTP form): Họ, chữ đệm, tên; Ngày, tháng, năm sinh; Giới
  tính; Dân tộc; Quốc tịch; Nơi sinh; Số định danh cá nhân; Họ, chữ đệm, tên người mẹ / người
  cha; Nơi đăng ký khai sinh; Số; Quyển số; date of registration.
* Giấy chứng nhận đăng ký hộ kinh doanh (Circular 02/2023/TT-BKHĐT form): Mã số hộ kinh doanh;
  Đăng ký lần đầu / thay đổi; Tên hộ kinh doanh; Địa chỉ trụ sở; Ngành, nghề; Vốn kinh doanh; Họ
  và tên chủ hộ; Sinh ngày; Số định danh cá nhân; Nơi cư trú.

Labels are matched diacritic-insensitively (fuzzy by folding), several labels may share one OCR
line ("Giới tính: Nam   Dân tộc: Kinh   Quốc tịch: Việt Nam"). Identifiers are validated with
:mod:`pipeline.records.identifiers`: a personal id that fails (or whose birth year disagrees with the
date of birth), or a business code whose check digit fails, is flagged ``invalid`` / ``inconsistent``.
"""

from __future__ import annotations

import re

from pipeline.records.identifiers import parse_personal_id, validate_tax_code
from pipeline.records.record import FieldEvidence
from pipeline.stages.extract.admin import _parent_split
from pipeline.stages.extract.common import (
    clean_spaces,
    find_date,
    fold,
    nfc,
    proper_case_agency,
    proper_case_person,
    restore_surname,
    uppercase_ratio,
)
from pipeline.stages.extract.layout import Line, page_lines
from pipeline.stages.extract.result import Extraction

# (field, folded label regex); order matters where one label contains another.
BIRTH_LABELS = [
    ("mother_name", r"ho,? chu dem,? ten (?:nguoi )?me"),
    ("father_name", r"ho,? chu dem,? ten (?:nguoi )?cha"),
    ("full_name", r"ho,? chu dem,? ten"),
    ("date_of_birth", r"ngay,? thang,? nam sinh"),
    ("registration_date", r"ngay,? thang,? nam dang ky"),
    ("sex", r"gioi tinh"),
    ("ethnicity", r"dan toc"),
    ("nationality", r"quoc tich"),
    ("place_of_birth", r"noi sinh"),
    ("hometown", r"que quan"),
    ("personal_id", r"so dinh danh ca nhan"),
    ("issuer", r"noi dang ky(?: khai sinh)?"),
    ("book_number", r"quyen so"),
    ("in_words", r"ghi bang chu"),
    ("residence", r"noi cu tru"),
    ("number", r"(?<![a-z])so"),
]
BUSINESS_LABELS = [
    ("business_code", r"ma so ho kinh doanh"),
    ("first_registration_date", r"dang ky lan dau"),
    ("change_date", r"dang ky thay doi lan thu \d+"),
    ("business_name", r"ten ho kinh doanh(?: viet bang tieng viet)?"),
    ("address", r"dia chi tru so(?: ho kinh doanh)?"),
    ("business_lines", r"nganh,? nghe kinh doanh"),
    ("capital", r"von kinh doanh"),
    ("owner_name", r"ho va ten(?: chu ho(?: kinh doanh)?)?"),
    ("sex", r"gioi tinh"),
    ("owner_date_of_birth", r"sinh ngay"),
    ("ethnicity", r"dan toc"),
    ("nationality", r"quoc tich"),
    ("owner_personal_id", r"so dinh danh ca nhan"),
    ("owner_residence", r"noi cu tru|dia chi thuong tru"),
]


def _continues(ln: Line, prev: Line) -> bool:
    """Whether ``ln`` is the wrapped continuation of the value that ends ``prev``: the next line
    of the same page, indented under it, with no label of its own (checked by the caller)."""
    return (
        ln.page == prev.page
        and ln.x0 > prev.x0 + 0.5 * prev.height
        and 0 <= ln.top - prev.bottom < 1.2 * prev.height
    )


def _label_values(lines: list[Line], labels) -> dict[str, tuple[str, Line]]:
    """First value of each label: the text after 'label:' up to the next label on the line,
    plus the indented continuation lines of a value that wraps (a long address)."""
    out: dict[str, tuple[str, Line]] = {}
    compiled = [(name, re.compile(rf"(?:^|(?<=[\s.\d]))(?:{rx})\s*[:;]")) for name, rx in labels]
    last: tuple[str, Line] | None = None  # the label whose value ends the previous line
    for ln in lines:
        text = nfc(ln.text)
        f = fold(text)
        hits = []
        taken: list[tuple[int, int]] = []
        for name, rx in compiled:
            for m in rx.finditer(f):
                if any(a <= m.start() < b for a, b in taken):
                    continue
                hits.append((m.start(), m.end(), name))
                taken.append((m.start(), m.end()))
        hits.sort()
        if not hits:
            if last is not None and last[0] in out and _continues(ln, last[1]):
                value, first = out[last[0]]
                out[last[0]] = (f"{value} {clean_spaces(text)}", first)
                last = (last[0], ln)
            else:
                last = None
            continue
        last = None
        for k, (_s, e, name) in enumerate(hits):
            end = hits[k + 1][0] if k + 1 < len(hits) else len(text)
            value = clean_spaces(text[e:end])
            if value.strip(" .;,:") and name not in out:
                out[name] = (value, ln)
                if k + 1 == len(hits):
                    last = (name, ln)
    return {name: (value.strip(" .;,:"), ln) for name, (value, ln) in out.items()}


def _ev(ln: Line) -> FieldEvidence:
    return FieldEvidence(page=ln.page, boxes=[ln.bbox])


def _header(ex: Extraction, lines: list[Line], width: int, title_key: str) -> None:
    """Issuer: upper-case left-column lines above the form title."""
    title_idx = next((i for i, ln in enumerate(lines) if title_key in fold(ln.text)), None)
    if title_idx is None:
        return
    left = [ln for ln in lines[:title_idx] if ln.center_x < width * 0.45 and uppercase_ratio(ln.text) > 0.7
            and not fold(ln.text).startswith("so")]  # fmt: skip
    if left and "issuer" not in ex.fields:
        texts = [clean_spaces(ln.text) for ln in left]
        n = _parent_split(texts)
        ex.set("issuer", proper_case_agency(" ".join(texts[n:])), min(ln.confidence for ln in left),
               FieldEvidence(page=left[0].page, boxes=[ln.bbox for ln in left[n:]]))  # fmt: skip


def _date_field(ex: Extraction, name: str, value: str, ln: Line) -> None:
    dm = find_date(value, numeric=True) or find_date("ngày " + value.replace("/", " tháng ", 1).replace("/", " năm ", 1))
    if dm and dm.value:
        ex.set(name, dm.value.isoformat(), ln.confidence, _ev(ln))
    else:
        ex.evidence[name] = _ev(ln)
        ex.flag(name, "invalid", f"'{value}' is not a date")


def _personal_id(ex: Extraction, name: str, value: str, ln: Line, dob_field: str) -> None:
    digits = re.sub(r"[\s.]", "", value.translate(str.maketrans("OoIl|", "00111")))
    ex.set(name, digits, ln.confidence, _ev(ln))
    try:
        pid = parse_personal_id(digits)
    except ValueError as exc:
        ex.flag(name, "invalid", f"personal id {digits!r}: {exc}")
        return
    dob = ex.fields.get(dob_field)
    if dob and int(dob[:4]) != pid.birth_year:
        ex.flag(name, "inconsistent", f"personal id encodes birth year {pid.birth_year}, date of birth is {dob}")


def extract_form(record_type: str, pages) -> Extraction:
    ex = Extraction(record_type=record_type)
    if not pages:
        return ex
    lines = [ln for p in pages for ln in page_lines(p, gap_factor=6.0)]
    width = pages[0].width
    if record_type == "birth_certificate":
        vals = _label_values(lines, BIRTH_LABELS)
        _header(ex, lines, width, "giay khai sinh")
        for name in ("full_name", "mother_name", "father_name"):
            if name in vals:
                v, ln = vals[name]
                ex.set(name, restore_surname(proper_case_person(v)), ln.confidence, _ev(ln))  # "Hưỳnh" → "Huỳnh"
        if "date_of_birth" in vals:
            _date_field(ex, "date_of_birth", *vals["date_of_birth"])
        for name in ("sex", "ethnicity", "nationality", "place_of_birth", "book_number"):
            if name in vals:
                v, ln = vals[name]
                ex.set(name, v, ln.confidence, _ev(ln))
        if "number" in vals:
            v, ln = vals["number"]
            m = re.match(r"^[0-9OoIl]+", v)
            if m:
                ex.set("number", m.group(0).translate(str.maketrans("OoIl", "0011")), ln.confidence, _ev(ln))
        if "issuer" in vals:
            v, ln = vals["issuer"]
            ex.set("issuer", proper_case_agency(v) if uppercase_ratio(v) > 0.7 else v, ln.confidence, _ev(ln))
        if "registration_date" in vals:
            _date_field(ex, "date", *vals["registration_date"])
        else:
            _place_date(ex, lines, width)
        if "personal_id" in vals:
            _personal_id(ex, "personal_id", *vals["personal_id"], dob_field="date_of_birth")
    else:
        vals = _label_values(lines, BUSINESS_LABELS)
        _header(ex, lines, width, "giay chung nhan")
        if "business_code" in vals:
            v, ln = vals["business_code"]
            code = re.sub(r"\s", "", v.translate(str.maketrans("OoIl|", "00111")))
            ex.set("business_code", code, ln.confidence, _ev(ln))
            try:
                validate_tax_code(code)
            except ValueError as exc:
                ex.flag("business_code", "invalid", f"business code {code!r}: {exc}")
        for name in ("business_name", "address", "capital", "owner_residence"):
            if name in vals:
                v, ln = vals[name]
                ex.set(name, v, ln.confidence, _ev(ln))
        if "owner_name" in vals:
            v, ln = vals["owner_name"]
            ex.set("owner_name", restore_surname(proper_case_person(v)), ln.confidence, _ev(ln))
        if "business_lines" in vals:
            v, ln = vals["business_lines"]
            ex.set("business_lines", [clean_spaces(x) for x in re.split(r"[;]", v) if x.strip()], ln.confidence, _ev(ln))
        for src, dst in (("owner_date_of_birth", "owner_date_of_birth"), ("first_registration_date", "first_registration_date")):
            if src in vals:
                _date_field(ex, dst, *vals[src])
        if "change_date" in vals:
            _date_field(ex, "date", *vals["change_date"])
        elif "first_registration_date" in ex.fields:
            ex.set("date", ex.fields["first_registration_date"], ex.confidence["first_registration_date"],
                   ex.evidence.get("first_registration_date"))  # fmt: skip
        if "owner_personal_id" in vals:
            _personal_id(ex, "owner_personal_id", *vals["owner_personal_id"], dob_field="owner_date_of_birth")
    return ex


def _place_date(ex: Extraction, lines: list[Line], width: int) -> None:
    for ln in lines:
        dm = find_date(ln.text)
        if dm and dm.value and ln.center_x > width * 0.4 and "," in ln.text[: dm.start + 1]:
            ex.set("date", dm.value.isoformat(), ln.confidence, _ev(ln))
            return
