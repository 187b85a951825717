"""Sample results of administrative procedures (kết quả giải quyết thủ tục hành chính), rendered.

Two printed forms, filled in with synthetic people and businesses whose identifiers are valid:

* Giấy khai sinh (bản chính, form of Circular 04/2020/TT-BTP as amended): left header the
  registering People's Committee (Ủy ban nhân dân xã/phường), "Số:" and "Quyển số:"; right the
  Quốc hiệu; the title; "label: value" lines for the child, the parents and the registration;
  the signature block "NGƯỜI KÝ GIẤY KHAI SINH" with seal and name.
* Giấy chứng nhận đăng ký hộ kinh doanh (form of Circular 02/2023/TT-BKHĐT): left header the
  district People's Committee and its Phòng Tài chính - Kế hoạch; the title; "Mã số hộ kinh
  doanh", "Đăng ký lần đầu"; numbered items (name, address, lines of business, capital, owner);
  signature block "TRƯỞNG PHÒNG".

Identifiers follow :mod:`pipeline.records.identifiers`: a 12-digit số định danh cá nhân (province code,
century/sex digit, birth year, six digits) and a 10-digit mã số hộ kinh doanh with its check
digit. :func:`render_form` returns page images and the truth (the fields a record must hold, and
the text as drawn). Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from PIL import Image

from pipeline.records.identifiers import tax_check_digit

from .render import BOLD, ITAL, REG, _draw_seal, _draw_signature, _Layout
from .specs import _GIVEN, _MIDDLE, _SURNAMES, upper_vn

QUOC_HIEU = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TIEU_NGU = "Độc lập - Tự do - Hạnh phúc"

#: (province code, province, district, ward) — real place names, codes of Decree 137/2015's list.
PLACES = [
    ("001", "Hà Nội", "Quận Cầu Giấy", "Phường Dịch Vọng"),
    ("001", "Hà Nội", "Quận Hoàn Kiếm", "Phường Hàng Bạc"),
    ("031", "Hải Phòng", "Quận Lê Chân", "Phường An Biên"),
    ("022", "Quảng Ninh", "Thành phố Hạ Long", "Phường Bãi Cháy"),
    ("048", "Đà Nẵng", "Quận Hải Châu", "Phường Thạch Thang"),
    ("046", "Thừa Thiên Huế", "Thành phố Huế", "Phường Phú Hội"),
    ("079", "Hồ Chí Minh", "Quận 1", "Phường Bến Nghé"),
    ("079", "Hồ Chí Minh", "Quận 3", "Phường Võ Thị Sáu"),
    ("092", "Cần Thơ", "Quận Ninh Kiều", "Phường An Hòa"),
    ("068", "Lâm Đồng", "Thành phố Đà Lạt", "Phường 1"),
]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung", "Phan Chu Trinh"]
BUSINESSES = ["TẠP HÓA", "CÀ PHÊ", "SỬA CHỮA XE MÁY", "BÁNH MÌ", "MAY MẶC", "VẬT LIỆU XÂY DỰNG", "THUỐC THÚ Y", "PHỞ"]
LINES_OF_BUSINESS = [
    "Bán lẻ lương thực, thực phẩm", "Dịch vụ ăn uống", "Sửa chữa mô tô, xe máy", "Bán lẻ hàng may mặc",
    "Bán lẻ vật liệu xây dựng", "Bán lẻ đồ uống", "Dịch vụ phục vụ đồ uống", "Bán lẻ thuốc thú y",
]
ETHNICITIES = ["Kinh", "Kinh", "Kinh", "Tày", "Thái", "Mường", "Khmer", "Hoa"]
HOSPITALS = ["Bệnh viện Phụ sản Trung ương", "Bệnh viện Đa khoa tỉnh", "Bệnh viện Từ Dũ", "Trạm Y tế phường",
             "Bệnh viện Phụ sản Hà Nội", "Bệnh viện Hùng Vương"]


def person_name(rng: random.Random, *, surname: str | None = None, female: bool | None = None) -> str:
    middle = rng.choice(["Thị", "Ngọc", "Thu", "Kim"]) if female else rng.choice(_MIDDLE)
    return f"{surname or rng.choice(_SURNAMES)} {middle} {rng.choice(_GIVEN)}"


def personal_id(rng: random.Random, province_code: str, born: date, female: bool) -> str:
    """A valid số định danh cá nhân: province code, century/sex digit, birth year, six digits."""
    century = (born.year // 100 - 19) * 2 + (1 if female else 0)
    return f"{province_code}{century}{born.year % 100:02d}{rng.randrange(10**6):06d}"


def business_code(rng: random.Random) -> str:
    """A valid 10-digit mã số hộ kinh doanh (mã số thuế) with its check digit."""
    while True:
        first9 = f"{rng.choice(['01', '03', '04', '80', '83'])}{rng.randrange(10**7):07d}"
        check = tax_check_digit(first9)
        if check is not None:
            return f"{first9}{check}"


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def long_date(d: date) -> str:
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


@dataclass
class FormSpec:
    """One filled-in form: its record type, the header, the printed lines and the truth."""

    record_type: str  # "birth_certificate" | "household_business_registration"
    issuer_parent: str | None  # cơ quan chủ quản (upper-case line above the issuer), if any
    issuer: str  # cơ quan cấp, as the record holds it
    header_left: list[str]  # upper-case lines as printed
    number_lines: list[str]  # "Số: ...", "Quyển số: ..." under the header (may be empty)
    place_date: str | None  # "<Địa danh>, ngày ... tháng ... năm ..." on the right, if printed
    title: str
    body: list[str]  # "label: value" lines
    signer_title: str
    signer: str
    fields: dict[str, Any] = field(default_factory=dict)
    stem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def birth_certificate_spec(rng: random.Random) -> FormSpec:
    code, province, district, ward = rng.choice(PLACES)
    female = rng.random() < 0.5
    born = _day(rng, date(2005, 1, 1), date(2025, 6, 30))
    registered = born + timedelta(days=rng.randint(3, 50))
    father = person_name(rng)
    surname = father.split()[0]
    child = person_name(rng, surname=surname, female=female)
    mother = person_name(rng, female=True)
    pid = personal_id(rng, code, born, female)
    number = str(rng.randint(1, 480))
    book = f"{rng.randint(1, 3):02d}/{registered.year}"
    ethnicity = rng.choice(ETHNICITIES)
    place_of_birth = f"{rng.choice(HOSPITALS)}, {province}"
    ward_upper = upper_vn(ward)
    issuer = f"Ủy ban nhân dân {ward[0].lower()}{ward[1:]}"
    registrar = person_name(rng)
    title = rng.choice(["CHỦ TỊCH", "PHÓ CHỦ TỊCH"])
    body = [
        f"Họ, chữ đệm, tên: {upper_vn(child)}",
        f"Ngày, tháng, năm sinh: {born:%d/%m/%Y}   ghi bằng chữ: {long_date(born)}",
        f"Giới tính: {'Nữ' if female else 'Nam'}   Dân tộc: {ethnicity}   Quốc tịch: Việt Nam",
        f"Nơi sinh: {place_of_birth}",
        f"Số định danh cá nhân: {pid}",
        f"Họ, chữ đệm, tên người mẹ: {upper_vn(mother)}",
        f"Năm sinh: {born.year - rng.randint(20, 38)}   Dân tộc: {ethnicity}   Quốc tịch: Việt Nam",
        f"Họ, chữ đệm, tên người cha: {upper_vn(father)}",
        f"Năm sinh: {born.year - rng.randint(22, 42)}   Dân tộc: {ethnicity}   Quốc tịch: Việt Nam",
        f"Nơi đăng ký khai sinh: {issuer}, {district}, {province}",
        f"Ngày, tháng, năm đăng ký: {registered:%d/%m/%Y}",
    ]
    fields = {
        "number": number, "book_number": book, "full_name": child, "date_of_birth": born.isoformat(),
        "sex": "Nữ" if female else "Nam", "ethnicity": ethnicity, "nationality": "Việt Nam",
        "place_of_birth": place_of_birth, "personal_id": pid, "mother_name": mother, "father_name": father,
        "issuer": f"{issuer}, {district}, {province}",  # Nơi đăng ký khai sinh, as printed
        "date": registered.isoformat(),
    }
    return FormSpec(
        record_type="birth_certificate", issuer_parent=None, issuer=issuer,
        header_left=["ỦY BAN NHÂN DÂN", ward_upper], number_lines=[f"Số: {number}", f"Quyển số: {book}"],
        place_date=None, title="GIẤY KHAI SINH", body=body,
        signer_title=f"NGƯỜI KÝ GIẤY KHAI SINH\n{title}", signer=registrar, fields=fields,
        stem=f"giay-khai-sinh-{number}-{registered.year}",
    )


def household_business_spec(rng: random.Random) -> FormSpec:
    code, province, district, ward = rng.choice(PLACES)
    female = rng.random() < 0.4
    born = _day(rng, date(1960, 1, 1), date(2002, 12, 31))
    owner = person_name(rng, female=female)
    pid = personal_id(rng, code, born, female)
    mshkd = business_code(rng)
    first = _day(rng, date(2016, 1, 1), date(2025, 10, 31))
    trade = rng.choice(BUSINESSES)
    business_name = f"HỘ KINH DOANH {trade} {upper_vn(owner.split()[-1])}"
    address = f"Số {rng.randint(1, 299)} {rng.choice(STREETS)}, {ward}, {district}, {province}"
    lines = rng.sample(LINES_OF_BUSINESS, rng.randint(1, 2))
    capital = f"{rng.choice([50, 80, 100, 150, 200, 300])}.000.000 đồng"
    residence = address if rng.random() < 0.5 else (
        f"Số {rng.randint(1, 199)} {rng.choice(STREETS)}, {ward}, {district}, {province}")
    district_upper = upper_vn(district)
    issuer = "Phòng Tài chính - Kế hoạch"
    head = person_name(rng)
    body = [
        f"Mã số hộ kinh doanh: {mshkd}",
        f"Đăng ký lần đầu: {long_date(first)}",
        f"1. Tên hộ kinh doanh: {business_name}",
        f"2. Địa chỉ trụ sở hộ kinh doanh: {address}",
        f"3. Ngành, nghề kinh doanh: {'; '.join(lines)}",
        f"4. Vốn kinh doanh: {capital}",
        "5. Chủ hộ kinh doanh:",
        f"Họ và tên: {upper_vn(owner)}   Giới tính: {'Nữ' if female else 'Nam'}",
        f"Sinh ngày: {born:%d/%m/%Y}   Dân tộc: Kinh   Quốc tịch: Việt Nam",
        f"Số định danh cá nhân: {pid}",
        f"Nơi cư trú: {residence}",
    ]
    fields = {
        "issuer": issuer, "business_code": mshkd, "business_name": business_name, "address": address,
        "business_lines": lines, "capital": capital, "owner_name": owner, "owner_date_of_birth": born.isoformat(),
        "owner_personal_id": pid, "owner_residence": residence, "first_registration_date": first.isoformat(),
        "date": first.isoformat(),
    }
    return FormSpec(
        record_type="household_business_registration", issuer_parent=f"Ủy ban nhân dân {district}",
        issuer=issuer, header_left=[f"ỦY BAN NHÂN DÂN {district_upper}", "PHÒNG TÀI CHÍNH - KẾ HOẠCH"],
        number_lines=[], place_date=f"{district}, {long_date(first)}",
        title="GIẤY CHỨNG NHẬN ĐĂNG KÝ HỘ KINH DOANH", body=body,
        signer_title="TRƯỞNG PHÒNG", signer=head, fields=fields, stem=f"ho-kinh-doanh-{mshkd}",
    )


@dataclass
class RenderedForm:
    pages: list[Image.Image]
    page_texts: list[str]
    font: str
    dpi: int


class _SealSpec:
    """What the seal painter reads of a spec (issuer names)."""

    def __init__(self, spec: FormSpec):
        self.issuer = spec.issuer if spec.record_type == "birth_certificate" else spec.issuer_parent or spec.issuer
        self.issuer_parent = None


def render_form(spec: FormSpec, *, font: str = "serif", dpi: int = 300, seed: int = 0,
                seal: bool = True, signature: bool = True) -> RenderedForm:
    """One A4 page of ``spec`` (header, title, labelled lines, signature block)."""
    L = _Layout(font, dpi, "A4", 13.0, seed)
    text_w = L.right - L.left
    col_l_w = text_w * 0.45
    cx_l = L.left + col_l_w / 2
    cx_r = L.left + col_l_w + (L.right - L.left - col_l_w) / 2
    lines: list[str] = []

    y = L.top
    f_hdr = L.font(BOLD, 12.5)
    for s in spec.header_left:  # shrink to keep a gap before the Quốc hiệu column
        while f_hdr.getlength(s) > col_l_w - L.mm(6) and f_hdr.size > L.pt(10):
            f_hdr = L.font(BOLD, f_hdr.size * 72 / dpi - 0.5)
    for s in spec.header_left:
        L.centered(cx_l, y, s, f_hdr)
        lines.append(s)
        y += L.line_h(f_hdr, 1.15)
    y += L.pt(2)
    L.rule(cx_l, y, L.mm(18))
    y_left = y + L.pt(4)
    y = L.top
    f_qh = L.font(BOLD, 12)
    while f_qh.getlength(QUOC_HIEU) > (L.right - L.left - col_l_w) - L.mm(2) and f_qh.size > L.pt(10):
        f_qh = L.font(BOLD, f_qh.size * 72 / dpi - 0.5)
    L.centered(cx_r, y, QUOC_HIEU, f_qh)
    y += L.line_h(f_qh, 1.2)
    f_tn = L.font(BOLD, 13)
    _, tn_w = L.centered(cx_r, y, TIEU_NGU, f_tn)
    lines += [QUOC_HIEU, TIEU_NGU]
    y += L.line_h(f_tn, 1.15) + L.pt(1)
    L.rule(cx_r, y, tn_w)
    y = max(y_left, y + L.pt(4)) + L.pt(4)
    f_no = L.font(REG, 13)
    y_row = y
    for s in spec.number_lines:
        L.centered(cx_l, y, s, f_no)
        lines.append(s)
        y += L.line_h(f_no, 1.2)
    if spec.place_date:
        f_pd = L.font(ITAL, 13)
        L.centered(cx_r, y_row, spec.place_date, f_pd)
        lines.append(spec.place_date)
        y = max(y, y_row + L.line_h(f_pd, 1.2))

    y += L.mm(9)
    f_title = L.font(BOLD, 16)
    L.centered((L.left + L.right) / 2, y, spec.title, f_title)
    lines.append(spec.title)
    y += L.line_h(f_title, 1.3) + L.mm(6)

    f_body = L.font(REG, 13.5)
    f_label = L.font(REG, 13.5)
    for s in spec.body:
        for k, part in enumerate(L.wrap_text(s, f_body, text_w)):
            L.draw_str(L.left + (L.mm(8) if k else 0), y, part, f_label)
            lines.append(part)
            y += L.line_h(f_body, 1.45)

    # signature block, right column
    y += L.mm(8)
    f_sig = L.font(BOLD, 13)
    for s in spec.signer_title.split("\n"):
        L.centered(cx_r, y, s, f_sig)
        lines.append(s)
        y += L.line_h(f_sig, 1.2)
    f_hint = L.font(ITAL, 12)
    hint = "(Ký, ghi rõ họ, chữ đệm, tên, đóng dấu)"
    L.centered(cx_r, y, hint, f_hint)
    lines.append(hint)
    y += L.line_h(f_hint, 1.2)
    gap = L.mm(24)
    if seal:
        _draw_seal(L, _SealSpec(spec), cx=cx_r - L.mm(17), cy=y + gap / 2, font_family=font)
    if signature:
        _draw_signature(L, cx=cx_r, cy=y + gap * 0.5, w=L.mm(34), h=gap * 0.55)
    y += gap
    L.centered(cx_r, y, spec.signer, f_sig)
    lines.append(spec.signer)
    return RenderedForm(pages=[p.img for p in L.pages], page_texts=["\n".join(lines)], font=font, dpi=dpi)


def form_specs(n: int, seed: int = 0) -> list[FormSpec]:
    """``n`` forms alternating Giấy khai sinh and Giấy chứng nhận đăng ký hộ kinh doanh."""
    rng = random.Random(f"sohoa-forms-{seed}")
    return [birth_certificate_spec(rng) if i % 2 == 0 else household_business_spec(rng) for i in range(n)]


def form_truth(spec: FormSpec, rendered: RenderedForm, *, source_file: str, degradation: list[dict]) -> dict[str, Any]:
    return {"source_file": source_file, "record_type": spec.record_type, "fields": dict(spec.fields),
            "text": "\n".join(rendered.page_texts), "page_texts": rendered.page_texts, "pages": len(rendered.pages),
            "spec": spec.to_dict(), "degradation": degradation, "font": rendered.font, "dpi": rendered.dpi}
