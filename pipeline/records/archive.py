"""Archival metadata per Circular 02/2019/TT-BNV, and the archive export (issue 23).

Circular 02/2019/TT-BNV (Thông tư 02/2019/TT-BNV of 24 January 2019, in force 10 March 2019,
"quy định tiêu chuẩn dữ liệu thông tin đầu vào và yêu cầu bảo quản tài liệu lưu trữ điện tử")
sets the input data standard of electronic archival documents: the metadata (dữ liệu đặc tả)
of a dossier (hồ sơ) and of each document (văn bản) in it, and the image requirements of a
document digitized from paper.

What could be confirmed and what is our reading
-----------------------------------------------
* Confirmed (public copies of the Circular's heading and summaries): its number, date, title
  and scope, and that it is issued under Decision 28/2018/QĐ-TTg (e-document exchange).
* Confirmed in substance (the 2025 successor, Circular 05/2025/TT-BNV, lists the same dossier
  fields): dossier metadata = mã hồ sơ, tiêu đề hồ sơ, thời hạn bảo quản, chế độ sử dụng,
  ngôn ngữ, thời gian bắt đầu / kết thúc, tổng số văn bản, số lượng tờ, số lượng trang,
  tình trạng vật lý, ký hiệu thông tin, từ khóa, mức độ tin cậy, ghi chú.
* Our best reading, NOT confirmed against the Circular's annex tables (no full text was
  available to us): the exact order of the document fields, the split of "số và ký hiệu" into
  two columns, the maximum lengths below (taken as the usual lengths of the annex: identifiers
  30, number 11, type name 100, issuer 200, trích yếu 500, notes 500, bút tích 2000), and the
  image requirement "PDF (we deliver PDF/A-2b), at least 200 dpi". The colour requirement is read
  by some as "ảnh màu" (colour only); by default black-and-white, grey and colour scans are
  accepted, ``strict_colour=True`` accepts colour only. An archive that holds the annex should
  check :data:`DOCUMENT_FIELDS` and :data:`DOSSIER_FIELDS` against it; everything else (schema,
  exports, tests) follows from those two tables.

Provenance of each value: ``record`` (sohoa fills it from the signed record) or ``steward``
(sohoa cannot know it: the value is left empty — ``null`` — and the field is listed in the
row's ``steward_fields`` for the archive's staff to fill). :func:`field_table` prints where
each field comes from (the note the issue asks for).

The image check looks at each page of the record: the scan's own resolution (before sohoa's
resampling, from the page's ``resampled:`` flag), its colour mode (from the stored page image
when given: ``bitonal``, ``grey`` or ``colour``), and the delivered format (always PDF/A-2b).
A shortfall is written in the row's ``image_check`` and in its ``ghi_chu`` (notes).
It is not (yet) written into the signed record itself: that needs the finalize stage
(``pipeline/runtime/document.py``) to call :func:`image_check_issue`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

STANDARD = "Thông tư 02/2019/TT-BNV"
SCHEMA_ID = "https://sohoa.gov.vn/schemas/archive/tt02-2019.v1.schema.json"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "archive" / "tt02-2019.v1.schema.json"
XML_NS = "https://sohoa.gov.vn/schemas/archive/tt02-2019"

#: Minimum resolution of a digitized page (our reading of the Circular: 200 dpi).
MIN_DPI = 200
COLOUR_MODES = ("bitonal", "grey", "colour")

#: Agency / unit code (mã định danh cơ quan, Decision 20/2020/QĐ-TTg structure, e.g. 000.00.01.H53).
AGENCY_CODE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$")

RECORD, STEWARD = "record", "steward"


@dataclass(frozen=True)
class ArchiveField:
    key: str  # JSON key
    label: str  # column header (the Circular's name)
    xml: str  # XML element name
    type: str  # "string" | "integer" | "date"
    max_length: int | None
    source: str  # where sohoa takes it from, or "steward"


DOCUMENT_FIELDS: tuple[ArchiveField, ...] = (
    ArchiveField("ma_dinh_danh", "Mã định danh văn bản", "MaDinhDanhVanBan", "string", 30,
                 "record: mã định danh of the archiving agency (--agency) + first 16 hex digits of document_id"),
    ArchiveField("ma_ho_so", "Mã hồ sơ", "MaHoSo", "string", 30, "record: provenance.dossier (mã hồ sơ of the upload); else steward"),
    ArchiveField("so_thu_tu", "Số thứ tự văn bản trong hồ sơ", "SoThuTuVanBan", "integer", None,
                 "record: rank by date within the dossier; steward when no dossier"),
    ArchiveField("ten_loai_van_ban", "Tên loại văn bản", "TenLoaiVanBan", "string", 100,
                 "record: fields.doc_type; the record type's name for procedure results"),
    ArchiveField("so_van_ban", "Số của văn bản", "SoVanBan", "string", 11, "record: fields.number before the first '/' (business_code for a household business)"),
    ArchiveField("ky_hieu_van_ban", "Ký hiệu của văn bản", "KyHieuVanBan", "string", 30, "record: fields.number after the first '/'"),
    ArchiveField("ngay_van_ban", "Ngày, tháng, năm văn bản", "NgayThangNamVanBan", "date", 10, "record: fields.date (ISO 8601)"),
    ArchiveField("co_quan_ban_hanh", "Tên cơ quan, tổ chức ban hành văn bản", "TenCoQuanBanHanh", "string", 200, "record: fields.issuer"),
    ArchiveField("trich_yeu", "Trích yếu nội dung", "TrichYeuNoiDung", "string", 500,
                 "record: fields.subject; household business: 'Đăng ký hộ kinh doanh' + business_name; else steward"),
    ArchiveField("ngon_ngu", "Ngôn ngữ", "NgonNgu", "string", 100, "record: OCR language (Tesseract vie) → 'Tiếng Việt' when the record has text"),
    ArchiveField("so_luong_trang", "Số lượng trang", "SoLuongTrang", "integer", None, "record: page_count"),
    ArchiveField("ky_hieu_thong_tin", "Ký hiệu thông tin", "KyHieuThongTin", "string", 30, "steward"),
    ArchiveField("tu_khoa", "Từ khóa", "TuKhoa", "string", 100, "steward"),
    ArchiveField("che_do_su_dung", "Chế độ sử dụng", "CheDoSuDung", "string", 20, "steward"),
    ArchiveField("muc_do_tin_cay", "Mức độ tin cậy", "MucDoTinCay", "string", 20,
                 "record: pages[].text_source: 'Số hóa' (scan), 'Gốc điện tử' (born-digital), 'Hỗn hợp'"),
    ArchiveField("but_tich", "Bút tích", "ButTich", "string", 2000, "steward"),
    ArchiveField("tinh_trang_vat_ly", "Tình trạng vật lý", "TinhTrangVatLy", "string", 50, "steward"),
    ArchiveField("ghi_chu", "Ghi chú", "GhiChu", "string", 500,
                 "record: image-requirement shortfalls and 'cần hiệu đính' when status is needs_review; else steward"),
    ArchiveField("tep_tin", "Tệp tin", "TepTin", "string", 64, "record: the PDF/A file, named <mã định danh>.pdf"),
)

DOSSIER_FIELDS: tuple[ArchiveField, ...] = (
    ArchiveField("ma_ho_so", "Mã hồ sơ", "MaHoSo", "string", 30, "record: provenance.dossier"),
    ArchiveField("tieu_de_ho_so", "Tiêu đề hồ sơ", "TieuDeHoSo", "string", 1000, "steward"),
    ArchiveField("thoi_han_bao_quan", "Thời hạn bảo quản", "ThoiHanBaoQuan", "string", 30, "steward"),
    ArchiveField("che_do_su_dung", "Chế độ sử dụng", "CheDoSuDung", "string", 20, "steward"),
    ArchiveField("ngon_ngu", "Ngôn ngữ", "NgonNgu", "string", 100, "record: the documents' languages"),
    ArchiveField("thoi_gian_bat_dau", "Thời gian bắt đầu", "ThoiGianBatDau", "date", 10, "record: earliest fields.date of its documents"),
    ArchiveField("thoi_gian_ket_thuc", "Thời gian kết thúc", "ThoiGianKetThuc", "date", 10, "record: latest fields.date of its documents"),
    ArchiveField("tong_so_van_ban", "Tổng số văn bản trong hồ sơ", "TongSoVanBan", "integer", None, "record: number of its records"),
    ArchiveField("so_luong_to", "Số lượng tờ", "SoLuongTo", "integer", None, "steward (a sheet may carry two pages)"),
    ArchiveField("so_luong_trang", "Số lượng trang", "SoLuongTrang", "integer", None, "record: sum of page_count"),
    ArchiveField("tinh_trang_vat_ly", "Tình trạng vật lý", "TinhTrangVatLy", "string", 50, "steward"),
    ArchiveField("ky_hieu_thong_tin", "Ký hiệu thông tin", "KyHieuThongTin", "string", 30, "steward"),
    ArchiveField("tu_khoa", "Từ khóa", "TuKhoa", "string", 100, "steward"),
    ArchiveField("muc_do_tin_cay", "Mức độ tin cậy", "MucDoTinCay", "string", 20, "record: the documents' levels"),
    ArchiveField("ghi_chu", "Ghi chú", "GhiChu", "string", 500, "steward"),
)

RECORD_TYPE_NAMES = {
    "household_business_registration": "Giấy chứng nhận đăng ký hộ kinh doanh",
    "birth_certificate": "Giấy khai sinh",
}

# Columns after the Circular's fields in the table layout (CSV/XLSX).
LEVEL_COLUMN = "Cấp (hồ sơ / văn bản)"
STEWARD_COLUMN = "Trường chờ bổ sung (steward)"
CHECK_COLUMN = "Kiểm tra ảnh"
ID_COLUMN = "document_id"


def field_table() -> str:
    """The note the issue asks for: each field of the Circular and where sohoa takes it from."""
    lines = ["| level | field (Circular 02/2019) | key | from |", "|---|---|---|---|"]
    for level, fields in (("văn bản", DOCUMENT_FIELDS), ("hồ sơ", DOSSIER_FIELDS)):
        lines += [f"| {level} | {f.label} | `{f.key}` | {f.source} |" for f in fields]
    return "\n".join(lines)


# --- image requirements ----------------------------------------------------------------------


def colour_mode_of_jpeg(data: bytes) -> str:
    """``bitonal``, ``grey`` or ``colour`` of a stored page image (JPEG; lossy, so a bitonal scan is a
    grey image whose pixels are nearly all near black or white)."""
    import numpy as np  # deferred: loads numpy
    from PIL import Image  # deferred: loads PIL

    with Image.open(io.BytesIO(data)) as im:
        if im.mode == "1":
            return "bitonal"
        if im.mode not in ("L", "LA", "I", "I;16"):
            rgb = np.asarray(im.convert("RGB").reduce(4), dtype=np.int16)
            spread = (rgb.max(axis=2) - rgb.min(axis=2))
            if float((spread > 24).mean()) > 0.002:
                return "colour"
        grey = np.asarray(im.convert("L"))[::2, ::2]  # sampled, not averaged: averaging makes greys
    mid = float(((grey > 48) & (grey < 208)).mean())
    return "bitonal" if mid < 0.03 else "grey"


def scan_dpi(page: Mapping[str, Any]) -> int:
    """The scan's own resolution: before clean-up's resampling (``resampled:300->200``), else the page's."""
    for flag in page.get("quality_flags") or []:
        m = re.match(r"resampled:(\d+)->\d+", flag)
        if m:
            return int(m.group(1))
    return int(page.get("dpi") or 0)


def check_images(
    record: Mapping[str, Any],
    page_images: Sequence[bytes | None] | None = None,
    *,
    min_dpi: int = MIN_DPI,
    strict_colour: bool = False,
) -> dict[str, Any]:
    """The record's pages against the Circular's image requirements (see the module docstring).

    ``page_images``: the stored page JPEGs (warehouse ``pages/``), to tell the colour mode; a page
    without one has colour mode ``null`` (unknown, not a shortfall)."""
    pages, problems = [], []
    allowed = ("colour",) if strict_colour else COLOUR_MODES
    for i, page in enumerate(record.get("pages") or []):
        dpi = scan_dpi(page)
        image = page_images[i] if page_images is not None and i < len(page_images) else None
        mode = colour_mode_of_jpeg(image) if image else None
        born_digital = page.get("text_source") == "text_layer"
        pages.append({"page": int(page.get("page", i + 1)), "dpi": dpi, "colour_mode": mode, "born_digital": born_digital})
        if not born_digital and dpi and dpi < min_dpi:
            problems.append(f"trang {page.get('page', i + 1)}: {dpi} dpi < {min_dpi} dpi")
        if mode is not None and mode not in allowed:
            problems.append(f"trang {page.get('page', i + 1)}: chế độ màu {mode} (yêu cầu: {', '.join(allowed)})")
    if record.get("status") == "failed" or not pages:
        problems.append("không có ảnh trang (bản ghi lỗi)")
    return {"meets_requirements": not problems, "format": "PDF/A-2b", "min_dpi": min_dpi, "problems": problems, "pages": pages}


def image_check_issue(record: Mapping[str, Any], page_images: Sequence[bytes | None] | None = None) -> dict | None:
    """A ``review_reasons`` entry (FieldIssue, kind ``quality``) when the scan falls short, else None:
    for the finalize stage to put in the record."""
    check = check_images(record, page_images)
    if check["meets_requirements"]:
        return None
    return {"field": "pages", "kind": "quality",
            "message": f"scan below the archive's image requirements ({STANDARD}): " + "; ".join(check["problems"])}


# --- rows ------------------------------------------------------------------------------------


def document_identifier(record: Mapping[str, Any], agency_code: str | None = None) -> str:
    """Mã định danh văn bản: ``<agency code>.<16 hex digits of the document id>`` (or the 16 digits
    alone without an agency code). Stable (content-addressed) and safe as a file name."""
    short = record["document_id"][:16].upper()
    if agency_code:
        if not AGENCY_CODE.match(agency_code):
            raise ValueError(f"agency code {agency_code!r} does not follow the structure 000.00.01.H53")
        return f"{agency_code}.{short}"
    return short


def _split_number(number: str | None) -> tuple[str | None, str | None]:
    if not number:
        return None, None
    head, sep, tail = number.partition("/")
    return (head.strip() or None), (tail.strip() or None) if sep else None


def _reliability(record: Mapping[str, Any]) -> str | None:
    sources = {p.get("text_source", "ocr") for p in record.get("pages") or []}
    if not sources:
        return None
    if sources == {"ocr"}:
        return "Số hóa"
    if sources == {"text_layer"}:
        return "Gốc điện tử"
    return "Hỗn hợp"


def _cut(value: Any, limit: int | None) -> Any:
    if isinstance(value, str) and limit and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def _row(fields: Sequence[ArchiveField], values: Mapping[str, Any], level: str) -> dict[str, Any]:
    row: dict[str, Any] = {"level": level}
    steward = []
    for f in fields:
        value = values.get(f.key)
        if value in ("", []):
            value = None
        row[f.key] = _cut(value, f.max_length)
        if value is None:
            steward.append(f.key)
    row["steward_fields"] = steward
    return row


def document_row(
    record: Mapping[str, Any],
    *,
    agency_code: str | None = None,
    page_images: Sequence[bytes | None] | None = None,
    rank: int | None = None,
    strict_colour: bool = False,
) -> dict[str, Any]:
    """The Circular's document metadata of one record (decrypted or not: no personal data is used)."""
    f = record.get("fields") or {}
    rtype = record.get("record_type")
    number = f.get("number") or f.get("business_code")
    so, ky_hieu = _split_number(number) if rtype == "admin_document" else (number, None)
    subject = f.get("subject")
    if not subject and rtype == "household_business_registration" and f.get("business_name"):
        subject = f"Đăng ký hộ kinh doanh {f['business_name']}"
    check = check_images(record, page_images, strict_colour=strict_colour)
    notes = list(check["problems"])
    if record.get("status") == "needs_review":
        notes.append("bản ghi cần hiệu đính (needs_review)")
    identifier = document_identifier(record, agency_code)
    values = {
        "ma_dinh_danh": identifier,
        "ma_ho_so": (record.get("provenance") or {}).get("dossier"),
        "so_thu_tu": rank,
        "ten_loai_van_ban": f.get("doc_type") or RECORD_TYPE_NAMES.get(rtype or ""),
        "so_van_ban": so,
        "ky_hieu_van_ban": ky_hieu,
        "ngay_van_ban": f.get("date"),
        "co_quan_ban_hanh": f.get("issuer"),
        "trich_yeu": subject,
        "ngon_ngu": "Tiếng Việt" if (record.get("text") or "").strip() else None,
        "so_luong_trang": record.get("page_count"),
        "muc_do_tin_cay": _reliability(record),
        "ghi_chu": "; ".join(notes) or None,
        "tep_tin": f"{identifier}.pdf",
    }
    row = _row(DOCUMENT_FIELDS, values, "van_ban")
    row["document_id"] = record["document_id"]
    row["image_check"] = check
    return row


def dossier_rows(document_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per dossier (mã hồ sơ) of the documents; documents without a dossier make none."""
    groups: dict[str, list[dict]] = {}
    for row in document_rows:
        if row.get("ma_ho_so"):
            groups.setdefault(row["ma_ho_so"], []).append(row)
    out = []
    for code in sorted(groups):
        docs = groups[code]
        dates = sorted(d["ngay_van_ban"] for d in docs if d.get("ngay_van_ban"))
        languages = sorted({d["ngon_ngu"] for d in docs if d.get("ngon_ngu")})
        levels = {d["muc_do_tin_cay"] for d in docs if d.get("muc_do_tin_cay")}
        values = {
            "ma_ho_so": code,
            "ngon_ngu": ", ".join(languages) or None,
            "thoi_gian_bat_dau": dates[0] if dates else None,
            "thoi_gian_ket_thuc": dates[-1] if dates else None,
            "tong_so_van_ban": len(docs),
            "so_luong_trang": sum(int(d.get("so_luong_trang") or 0) for d in docs),
            "muc_do_tin_cay": (levels.pop() if len(levels) == 1 else "Hỗn hợp") if levels else None,
        }
        out.append(_row(DOSSIER_FIELDS, values, "ho_so"))
    return out


def archive_rows(
    records: Iterable[Mapping[str, Any]],
    *,
    agency_code: str | None = None,
    page_images: Mapping[str, Sequence[bytes | None]] | None = None,
    strict_colour: bool = False,
) -> tuple[list[dict], list[dict]]:
    """(dossier rows, document rows) of the records; documents ranked by date within their dossier."""
    records = list(records)
    page_images = page_images or {}
    docs = [document_row(r, agency_code=agency_code, page_images=page_images.get(r["document_id"]),
                         strict_colour=strict_colour) for r in records]
    by_dossier: dict[str, list[dict]] = {}
    for d in docs:
        if d["ma_ho_so"]:
            by_dossier.setdefault(d["ma_ho_so"], []).append(d)
    for group in by_dossier.values():
        group.sort(key=lambda d: (d.get("ngay_van_ban") or "9999", d["document_id"]))
        for i, d in enumerate(group, 1):
            d["so_thu_tu"] = i
            if "so_thu_tu" in d["steward_fields"]:
                d["steward_fields"].remove("so_thu_tu")
    docs.sort(key=lambda d: (d.get("ma_ho_so") or "~", d.get("so_thu_tu") or 0, d["document_id"]))
    return dossier_rows(docs), docs


# --- schema ----------------------------------------------------------------------------------


def _field_schema(f: ArchiveField) -> dict[str, Any]:
    if f.type == "integer":
        base: dict[str, Any] = {"type": "integer", "minimum": 0}
    elif f.type == "date":
        base = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    else:
        base = {"type": "string", "minLength": 1}
        if f.max_length:
            base["maxLength"] = f.max_length
    return {"anyOf": [base, {"type": "null"}], "title": f.label, "description": f"from {f.source}"}


def _row_schema(fields: Sequence[ArchiveField], level: str, extra: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"level": {"const": level}}
    props.update({f.key: _field_schema(f) for f in fields})
    props["steward_fields"] = {"type": "array", "uniqueItems": True,
                               "items": {"enum": [f.key for f in fields]},
                               "description": "fields sohoa cannot fill: null, for the archive's steward"}
    props.update(extra)
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": sorted(props)}


def archive_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the archive export, derived from the two field tables."""
    check = {
        "type": "object", "additionalProperties": False,
        "required": ["meets_requirements", "format", "min_dpi", "problems", "pages"],
        "properties": {
            "meets_requirements": {"type": "boolean"},
            "format": {"const": "PDF/A-2b"},
            "min_dpi": {"type": "integer"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "pages": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["page", "dpi", "colour_mode", "born_digital"],
                "properties": {"page": {"type": "integer", "minimum": 1}, "dpi": {"type": "integer", "minimum": 0},
                               "colour_mode": {"enum": [*COLOUR_MODES, None]}, "born_digital": {"type": "boolean"}}}},
        },
    }
    document = _row_schema(DOCUMENT_FIELDS, "van_ban", {
        "document_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "image_check": {"$ref": "#/$defs/ImageCheck"},
    })
    document["properties"]["ma_dinh_danh"] = {"type": "string", "pattern": r"^([0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}\.)?[0-9A-F]{16}$",
                                              "title": "Mã định danh văn bản"}
    document["properties"]["tep_tin"] = {"type": "string", "pattern": r"^[0-9A-Z.]+\.pdf$", "title": "Tệp tin"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"sohoa archive export: metadata per {STANDARD}",
        "type": "object",
        "additionalProperties": False,
        "required": ["standard", "generated_at", "dossiers", "documents"],
        "properties": {
            "standard": {"const": STANDARD},
            "generated_at": {"type": "string", "format": "date-time"},
            "agency_code": {"anyOf": [{"type": "string", "pattern": AGENCY_CODE.pattern}, {"type": "null"}]},
            "dossiers": {"type": "array", "items": {"$ref": "#/$defs/DossierRow"}},
            "documents": {"type": "array", "items": {"$ref": "#/$defs/DocumentRow"}},
        },
        "$defs": {"DocumentRow": document, "DossierRow": _row_schema(DOSSIER_FIELDS, "ho_so", {}), "ImageCheck": check},
    }


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def write_schema() -> Path:
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(archive_json_schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return SCHEMA_PATH


def validate_export(document: Mapping[str, Any]) -> list[str]:
    """Errors of an archive export (the JSON form, or what :func:`read_table` / :func:`read_xml` give)
    against the committed schema; [] when valid. Also: a null field must be listed as steward's."""
    import jsonschema  # deferred: loads jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    for kind in ("dossiers", "documents"):
        for i, row in enumerate(document.get(kind) or []):
            nulls = {k for k, v in row.items() if v is None}
            if nulls != set(row.get("steward_fields") or []):
                errors.append(f"{kind}/{i}: null fields {sorted(nulls)} != steward_fields {row.get('steward_fields')}")
    return errors


def export_document(dossiers: list[dict], documents: list[dict], *, agency_code: str | None = None,
                    at: datetime | None = None) -> dict[str, Any]:
    when = (at or datetime.now(UTC)).replace(microsecond=0)
    return {"standard": STANDARD, "generated_at": when.isoformat(), "agency_code": agency_code,
            "dossiers": dossiers, "documents": documents}


# --- table layout (CSV / XLSX) ---------------------------------------------------------------


def _table_columns() -> list[tuple[str, str]]:
    """(header, key) of the table: the union of both levels' fields in the Circular's order."""
    cols = [(LEVEL_COLUMN, "level")]
    seen = set()
    for f in DOSSIER_FIELDS + DOCUMENT_FIELDS:
        if f.key not in seen:
            seen.add(f.key)
            cols.append((f.label, f.key))
    return cols + [(STEWARD_COLUMN, "steward_fields"), (CHECK_COLUMN, "image_check"), (ID_COLUMN, "document_id")]


def table_rows(export: Mapping[str, Any]) -> list[list[str]]:
    """Header + one row per dossier, then per document (a field of the other level stays empty)."""
    cols = _table_columns()
    rows = [[h for h, _ in cols]]
    for row in list(export["dossiers"]) + list(export["documents"]):
        out = []
        for _, key in cols:
            value = row.get(key)
            if key == "steward_fields":
                value = ", ".join(value or [])
            elif key == "image_check":
                value = "" if value is None else ("đạt" if value["meets_requirements"] else "không đạt: " + "; ".join(value["problems"]))
            out.append("" if value is None else str(value))
        rows.append(out)
    return rows


def write_csv(export: Mapping[str, Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(table_rows(export))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: spreadsheet programs read UTF-8


def _typed(f: ArchiveField, text: str) -> Any:
    if text == "":
        return None
    return int(text) if f.type == "integer" else text


def read_table(rows: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The export back from its table (for validation): typed rows of both levels. The image check
    is only summarised in the table, so document rows get it back from the JSON form's fields only
    when ``image_check`` text says 'đạt' (kept as a minimal object)."""
    header, body = list(rows[0]), rows[1:]
    index = {label: i for i, label in enumerate(header)}
    out: dict[str, Any] = {"standard": STANDARD, "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                           "agency_code": None, "dossiers": [], "documents": []}
    for cells in body:
        cells = list(cells) + [""] * (len(header) - len(cells))
        level = cells[index[LEVEL_COLUMN]]
        fields = DOSSIER_FIELDS if level == "ho_so" else DOCUMENT_FIELDS
        row: dict[str, Any] = {"level": level}
        for f in fields:
            row[f.key] = _typed(f, cells[index[f.label]])
        steward = cells[index[STEWARD_COLUMN]]
        row["steward_fields"] = [s for s in steward.split(", ") if s]
        if level == "ho_so":
            out["dossiers"].append(row)
            continue
        row["document_id"] = cells[index[ID_COLUMN]]
        text = cells[index[CHECK_COLUMN]]
        problems = [] if text == "đạt" else text.removeprefix("không đạt: ").split("; ")
        row["image_check"] = {"meets_requirements": text == "đạt", "format": "PDF/A-2b", "min_dpi": MIN_DPI,
                              "problems": problems, "pages": []}
        out["documents"].append(row)
    return out


def read_csv(data: bytes) -> dict[str, Any]:
    return read_table(list(csv.reader(io.StringIO(data.decode("utf-8-sig")))))


def _col_name(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def write_xlsx(export: Mapping[str, Any]) -> bytes:
    """The table as an Office Open XML workbook (one sheet, inline strings), written with the
    standard library (openpyxl is not a dependency)."""
    rows = table_rows(export)
    sheet = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>']
    for r, cells in enumerate(rows, 1):
        sheet.append(f'<row r="{r}">')
        for c, text in enumerate(cells):
            if text:
                sheet.append(f'<c r="{_col_name(c)}{r}" t="inlineStr"><is><t xml:space="preserve">{_esc(text)}</t></is></c>')
        sheet.append("</row>")
    sheet.append("</sheetData></worksheet>")
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="TT02-2019" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": "".join(sheet),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def read_xlsx(data: bytes) -> dict[str, Any]:
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        root = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in root.iterfind(".//m:row", ns):
        cells: dict[int, str] = {}
        for c in row.iterfind("m:c", ns):
            ref = re.match(r"[A-Z]+", c.get("r") or "")
            if ref is None:
                raise ValueError(f"xlsx cell without a column reference: {c.get('r')!r}")
            col = 0
            for ch in ref.group(0):
                col = col * 26 + ord(ch) - 64
            cells[col - 1] = "".join(t.text or "" for t in c.iterfind(".//m:t", ns))
        width = max(cells) + 1 if cells else 0
        rows.append([cells.get(i, "") for i in range(width)])
    return read_table(rows)


# --- XML -------------------------------------------------------------------------------------


def write_xml(export: Mapping[str, Any]) -> bytes:
    """``<DuLieuDacTa>`` with one ``<HoSo>`` per dossier and one ``<VanBan>`` per document; each field an
    element named as in the Circular, with ``nguon="record|steward"``; a steward's field is empty."""
    root = ET.Element(f"{{{XML_NS}}}DuLieuDacTa", {"chuan": STANDARD, "taoLuc": export["generated_at"]})
    if export.get("agency_code"):
        root.set("maCoQuan", export["agency_code"])
    for kind, tag, fields in (("dossiers", "HoSo", DOSSIER_FIELDS), ("documents", "VanBan", DOCUMENT_FIELDS)):
        for row in export[kind]:
            el = ET.SubElement(root, f"{{{XML_NS}}}{tag}")
            if kind == "documents":
                el.set("documentId", row["document_id"])
            for f in fields:
                value = row.get(f.key)
                child = ET.SubElement(el, f"{{{XML_NS}}}{f.xml}", {"nguon": STEWARD if value is None else RECORD})
                if value is not None:
                    child.text = str(value)
            if kind == "documents":
                check = row["image_check"]
                ic = ET.SubElement(el, f"{{{XML_NS}}}KiemTraAnh", {"dat": "true" if check["meets_requirements"] else "false",
                                                                   "dinhDang": check["format"], "doPhanGiaiToiThieu": str(check["min_dpi"])})
                for p in check["pages"]:
                    attrs = {"so": str(p["page"]), "dpi": str(p["dpi"]), "gocDienTu": "true" if p["born_digital"] else "false"}
                    if p["colour_mode"]:
                        attrs["cheDoMau"] = p["colour_mode"]
                    ET.SubElement(ic, f"{{{XML_NS}}}Trang", attrs)
                for problem in check["problems"]:
                    ET.SubElement(ic, f"{{{XML_NS}}}VanDe").text = problem
    ET.register_namespace("", XML_NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _attr(el: ET.Element, name: str) -> str:
    """A required attribute of an element of the XML form."""
    value = el.get(name)
    if value is None:
        raise ValueError(f"archive XML: <{el.tag}> without {name!r}")
    return value


def read_xml(data: bytes) -> dict[str, Any]:
    """The export back from its XML form (for validation and round trips)."""
    q = lambda tag: f"{{{XML_NS}}}{tag}"  # noqa: E731
    root = ET.fromstring(data)
    out: dict[str, Any] = {"standard": root.get("chuan"), "generated_at": root.get("taoLuc"),
                           "agency_code": root.get("maCoQuan"), "dossiers": [], "documents": []}
    for kind, tag, fields, level in (("dossiers", "HoSo", DOSSIER_FIELDS, "ho_so"), ("documents", "VanBan", DOCUMENT_FIELDS, "van_ban")):
        for el in root.iterfind(q(tag)):
            row: dict[str, Any] = {"level": level}
            steward = []
            for f in fields:
                child = el.find(q(f.xml))
                value = None if child is None or child.get("nguon") == STEWARD else _typed(f, child.text or "")
                row[f.key] = value
                if value is None:
                    steward.append(f.key)
            row["steward_fields"] = steward
            if level == "van_ban":
                row["document_id"] = el.get("documentId")
                ic = el.find(q("KiemTraAnh"))
                if ic is None:
                    raise ValueError(f"archive XML: document {row['document_id']} without KiemTraAnh")
                row["image_check"] = {
                    "meets_requirements": ic.get("dat") == "true", "format": ic.get("dinhDang"),
                    "min_dpi": int(_attr(ic, "doPhanGiaiToiThieu")),
                    "problems": [p.text or "" for p in ic.iterfind(q("VanDe"))],
                    "pages": [{"page": int(_attr(t, "so")), "dpi": int(_attr(t, "dpi")), "colour_mode": t.get("cheDoMau"),
                               "born_digital": t.get("gocDienTu") == "true"} for t in ic.iterfind(q("Trang"))],
                }
            out[kind].append(row)
    return out


FORMATS = {
    "archive-json": ("metadata.json", lambda e: (json.dumps(e, ensure_ascii=False, indent=2) + "\n").encode()),
    "archive-xml": ("metadata.xml", write_xml),
    "archive-csv": ("metadata.csv", write_csv),
    "archive-xlsx": ("metadata.xlsx", write_xlsx),
}
