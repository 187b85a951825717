"""Review (hiệu đính): the queue of records that need a steward, and corrections.

A correction never edits a stored record in place. It makes version ``n + 1``: the corrected
fields replace the extracted ones, the record is validated again (:func:`validate_record`),
its status is recomputed, a history entry says who changed which fields and why, and the
record is signed anew and written over the same key — S3 versioning keeps version ``n``.

A correction is checked before anything is signed: bounded values (:data:`MAX_TEXT` characters
a string, :data:`MAX_ITEMS` items a list), every changed field valid against the record's
schema (a wrong type, a malformed date: refused, not stored as an invalid version), and an
index key the warehouse can hold for a changed number or issuer.

Status after a correction: ``ok`` when no validation error remains, every flagged field
(one with a validation error or a review reason) was either corrected or accepted as read
by the steward, and every required field of the type (:data:`pipeline.stages.extract.REQUIRED_FIELDS`)
holds a value — accepting an empty date does not make a record ``ok``; else ``needs_review``.

Dates are typed at the desk as Vietnamese users write them (dd/mm/yyyy) and stored ISO 8601
(:func:`parse_date`); a day that does not exist is refused before signing. Messages are in
Vietnamese: field labels (:data:`FIELD_LABELS`), statuses, and the pipeline's review reasons
said again in words with their value and threshold (:func:`explain`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from pipeline.records.pii import KeyRing, decrypt_fields, encrypt_fields
from pipeline.records.record import (
    FIELD_MODELS,
    SCHEMA_VERSIONS,
    FieldEvidence,
    FieldIssue,
    HistoryEntry,
    Record,
    load_record,
    schema_id,
    timestamp,
)
from pipeline.stages.extract import REQUIRED_FIELDS
from pipeline.stages.extract.common import fold
from pipeline.stages.validate import semantic_issues, validate_record
from pipeline.warehouse.audit import dossier_receipts
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.store import write_indexes

#: Longest string a correction may set (characters), and most items of a list value.
MAX_TEXT = 2000
MAX_ITEMS = 200
#: Most fields one correction may name (changed plus accepted).
MAX_FIELDS = 100
#: S3 object keys are at most 1024 bytes: the lookup index key of a number or issuer must fit.
MAX_KEY_BYTES = 1024


class CorrectionError(ValueError):
    """The correction cannot apply to this record (unknown field, failed record, ...)."""


class VersionConflict(RuntimeError):
    """The record changed since the steward opened it (another correction came first)."""


_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def _named(name: str) -> str:
    """A field as an error message names it: its Vietnamese label and its key."""
    return f"{label(name)} ({name})" if label(name) != name else name


def flagged_fields(record: Record | Mapping[str, Any]) -> list[str]:
    """Fields that have a validation error or a review reason, in first-seen order."""
    if isinstance(record, Record):
        names = [i.field for i in record.validation_errors + record.review_reasons]
    else:
        names = [i["field"] for i in list(record.get("validation_errors") or []) + list(record.get("review_reasons") or [])]
    return list(dict.fromkeys(names))


def _normalize(value: Any) -> Any:
    if isinstance(value, str):
        value = " ".join(value.split())
        return value or None
    if isinstance(value, list):
        return [_normalize(v) for v in value if _normalize(v) is not None]
    return value


def _check_field_names(record_type: str, names: Iterable[str], flagged: Iterable[str]) -> None:
    known = set(FIELD_MODELS[record_type].model_fields)
    unknown = sorted(set(names) - known - set(flagged))
    if unknown:
        raise CorrectionError(f"trường không có trong loại hồ sơ {RECORD_TYPE_LABELS.get(record_type, record_type)}: {', '.join(unknown)}")


def check_values(fields: Mapping[str, Any], accepted: Iterable[str] = ()) -> None:
    """Refuse (:class:`CorrectionError`) values no field can hold: anything but text, a number,
    a boolean, null or a list of those; a string over :data:`MAX_TEXT` characters; a list over
    :data:`MAX_ITEMS` items; more than :data:`MAX_FIELDS` fields."""
    accepted = list(accepted)
    if len(fields) + len(accepted) > MAX_FIELDS:
        raise CorrectionError(f"một lần hiệu đính sửa tối đa {MAX_FIELDS} trường")
    for name in list(fields) + accepted:
        if not isinstance(name, str) or len(name) > 100:
            raise CorrectionError("tên trường là chuỗi tối đa 100 ký tự")

    def check(name: str, value: Any, nested: bool = False) -> None:
        if value is None or isinstance(value, (bool, int, float)):
            return
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise CorrectionError(f"{_named(name)}: {len(value)} ký tự, vượt giới hạn {MAX_TEXT} ký tự")
            return
        if isinstance(value, list) and not nested:
            if len(value) > MAX_ITEMS:
                raise CorrectionError(f"{_named(name)}: {len(value)} mục, vượt giới hạn {MAX_ITEMS} mục")
            for item in value:
                check(name, item, nested=True)
            return
        raise CorrectionError(f"{_named(name)}: giá trị phải là chữ, số, danh sách các giá trị đó hoặc để trống (không phải {type(value).__name__})")

    for name, value in fields.items():
        check(name, value)


def check_corrected(record: Record, changed: Iterable[str], document_id: str) -> None:
    """Refuse a corrected record (unsigned, personal data in clear) whose changed fields do
    not match the record's schema, or whose number or issuer is too long for its index key."""
    changed = set(changed)
    fields = record.fields
    semantic = {(i.field, i.message) for i in semantic_issues(fields)}
    invalid = [i for i in validate_record(record.model_copy(update={"signature": None}))
               if i.field in changed and (i.field, i.message) not in semantic]
    if invalid:
        raise CorrectionError("giá trị sửa không hợp lệ: " + "; ".join(explain(i.model_dump()) + f" ({i.field})" for i in invalid[:5]))
    for kind in ("number", "issuer"):
        value = fields.get(kind)
        if kind in changed and isinstance(value, str) and value:
            size = len(Warehouse.index_key(kind, value, document_id).encode())
            if size > MAX_KEY_BYTES:
                raise CorrectionError(
                    f"{_named(kind)}: quá dài để lập chỉ mục tra cứu ({size} byte khóa chỉ mục, tối đa {MAX_KEY_BYTES}); "
                    "hãy rút gọn"
                )


def apply_correction(
    record: Record | Mapping[str, Any],
    fields: Mapping[str, Any],
    *,
    reason: str,
    by: str,
    accepted: Iterable[str] = (),
    at: datetime | None = None,
) -> Record:
    """The next version of ``record`` (unsigned). Pure: nothing is read or written, ``record`` is
    not changed. A stored record (its JSON object, personal data decrypted) is loaded into the
    model first (:func:`~pipeline.records.record.load_record`: a record that is not one raises
    :class:`~pipeline.runtime.errors.SchemaValidationError`). The new version follows the current schema of its type:
    a record read under an older one (v1, v2) gains the members the newer one added, with their
    defaults (``pages[].text_source``: ``ocr``), so it still validates."""
    current = record if isinstance(record, Record) else load_record(record)
    if current.status == "failed":
        raise CorrectionError("hồ sơ xử lý lỗi không có trường nào để sửa; hãy tải bản quét lên lại")
    if not reason or not reason.strip():
        raise CorrectionError("cần ghi lý do hiệu đính")
    flagged = flagged_fields(current)
    _check_field_names(current.record_type, list(fields) + list(accepted), flagged)
    new = current.model_copy(deep=True)
    new.schema_, new.schema_version = schema_id(new.record_type), SCHEMA_VERSIONS[new.record_type]
    values, confidence, evidence = dict(new.fields), dict(new.field_confidence), dict(new.field_evidence)
    changed = sorted(k for k, v in fields.items() if _normalize(v) != values.get(k))
    for name in changed:
        values[name] = _normalize(fields[name])
        confidence[name] = 1.0
        old = evidence.get(name)
        evidence[name] = old.model_copy(update={"method": "steward"}) if old else FieldEvidence(method="steward")
    new.fields, new.field_confidence, new.field_evidence = values, confidence, evidence
    new.signature = None
    confirmed = set(changed) | set(accepted) | {k for k in fields if k not in changed}
    new.validation_errors = validate_record(new)
    reasons = [r for r in new.review_reasons if r.field not in confirmed]
    # a required field still empty keeps the record in review, whatever was accepted
    reasons_for = {r.field for r in reasons}
    for name in _missing_required(new.record_type, new.fields):
        if name not in reasons_for:
            reasons.append(FieldIssue(field=name, kind="missing", message=f"{label(name)} còn trống: trường bắt buộc, cần nhập"))
    new.review_reasons = reasons
    new.status = "ok" if not new.validation_errors and not new.review_reasons else "needs_review"
    new.version = current.version + 1
    when = (at or datetime.now(UTC)).replace(microsecond=0)
    note = reason.strip()
    accepted_only = sorted(confirmed - set(changed))
    if accepted_only:
        note += f" (chấp nhận như đã đọc: {', '.join(accepted_only)})"
    new.history = [*new.history, HistoryEntry(version=new.version, at=timestamp(when), by=by, action="corrected",
                                              reason=note, changed_fields=changed)]  # fmt: skip
    return new


def correct_record(
    warehouse: Warehouse,
    signer: Any,
    document_id: str,
    fields: Mapping[str, Any],
    *,
    reason: str,
    by: str,
    accepted: Iterable[str] = (),
    expected_version: int | None = None,
    keyring: KeyRing | None = None,
) -> Record:
    """Correct a stored record: new version, validated, signed (``signer.sign_record_bytes``), stored.

    The stored record is loaded into the model (:func:`~pipeline.records.record.load_record`), corrected on the
    model (:func:`apply_correction`), and goes back through the pipeline's own path: encrypted
    (:func:`~pipeline.records.pii.encrypt_fields`), signed, its indexes and bytes written
    (:func:`~pipeline.records.record.record_bytes`, the one JSON form).

    A record whose personal data is encrypted is decrypted with ``keyring`` (as a steward),
    corrected, and encrypted again under the current key before it is signed.

    Raises :class:`LookupError` when there is no record, :class:`VersionConflict` when
    ``expected_version`` is not the current version, :class:`CorrectionError` when the
    correction does not apply or a value is invalid (:func:`check_values`,
    :func:`check_corrected`: nothing is signed then). Returns the signed new version.
    """
    check_values(fields, accepted)
    with _locks[document_id]:
        stored = warehouse.get_record(document_id)
        if stored is None:
            raise LookupError(f"không có hồ sơ {document_id}")
        if expected_version is not None and int(stored.get("version", 1)) != expected_version:
            raise VersionConflict(
                f"hồ sơ đã được sửa thành phiên bản {stored.get('version', 1)} (bạn đang sửa phiên bản {expected_version}): "
                "tải lại hồ sơ rồi áp dụng lại các sửa đổi"
            )
        if stored.get("pii"):
            if keyring is None:
                raise CorrectionError("dữ liệu cá nhân của hồ sơ được mã hóa: cần bộ khóa dữ liệu cá nhân để hiệu đính")
            stored = decrypt_fields(stored, keyring, role="steward")
        current = load_record(stored)  # Record.model_validate: the stored JSON as the model
        fields = normalize_dates(current.record_type, fields)  # dd/mm/yyyy typed at the desk → ISO 8601
        unsigned = apply_correction(current, fields, reason=reason, by=by, accepted=accepted)
        check_corrected(unsigned, unsigned.history[-1].changed_fields, document_id)  # before signing
        if keyring is not None:
            unsigned = encrypt_fields(unsigned, keyring)
        signed, data = signer.sign_record_bytes(unsigned)
        write_indexes(warehouse, signed, keyring)  # the corrected values must be found
        warehouse.put_record(document_id, data, status=signed.status)
        return signed


# --- queue -------------------------------------------------------------------------------


def queue_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the review queue shows of one record."""
    confidences = list((record.get("field_confidence") or {}).values())
    provenance = record.get("provenance") or {}
    issues = list(record.get("validation_errors") or []) + list(record.get("review_reasons") or [])
    return {
        "document_id": record["document_id"],
        "source_file": record.get("source_file"),
        "record_type": record.get("record_type"),
        "version": record.get("version", 1),
        "unit": provenance.get("unit"),
        "dossier": provenance.get("dossier"),
        "issues": len(issues),
        "invalid": len(record.get("validation_errors") or []),
        "min_confidence": round(min(confidences), 3) if confidences else None,
        "flagged_fields": flagged_fields(record),
        "number": (record.get("fields") or {}).get("number"),
    }


def queue_order(item: Mapping[str, Any]) -> tuple:
    """Worst first: most issues, then lowest field confidence, then id (stable)."""
    conf = item["min_confidence"] if item["min_confidence"] is not None else 1.0
    return (-item["issues"], conf, item["document_id"])


def review_queue(warehouse: Warehouse, *, unit: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Records with status ``needs_review`` (of ``unit`` only, when given), worst first."""
    items = []
    for document_id in warehouse.iter_record_ids():
        if warehouse.record_status(document_id) != "needs_review":
            continue
        record = warehouse.get_record(document_id)
        if record is None or record.get("status") != "needs_review":
            continue
        item = queue_item(record)
        if unit is None or item["unit"] == unit:
            items.append(item)
    items.sort(key=queue_order)
    return items[:limit] if limit else items


# --- what the desk shows: Vietnamese labels, field kinds, issues in words ----------------------

#: Vietnamese label of every field of every record type (Decree 30/2020 Appendix I names for
#: administrative documents; the forms' own printed labels for procedure results).
FIELD_LABELS: dict[str, str] = {
    "number": "Số, ký hiệu", "doc_type": "Loại văn bản", "issuer": "Cơ quan ban hành",
    "issuer_parent": "Cơ quan chủ quản", "place": "Địa danh", "date": "Ngày ban hành",
    "subject": "Trích yếu", "signer": "Người ký", "signer_title": "Chức vụ người ký",
    "authority_prefix": "Quyền hạn ký (KT., TL., TM.)", "recipients": "Nơi nhận",
    "references": "Văn bản viện dẫn", "tasks": "Nhiệm vụ, thời hạn",
    "business_code": "Mã số hộ kinh doanh", "business_name": "Tên hộ kinh doanh", "address": "Địa chỉ trụ sở",
    "business_lines": "Ngành, nghề kinh doanh", "capital": "Vốn kinh doanh", "owner_name": "Chủ hộ kinh doanh",
    "owner_date_of_birth": "Ngày sinh chủ hộ", "owner_personal_id": "Số định danh chủ hộ",
    "owner_residence": "Nơi cư trú chủ hộ", "first_registration_date": "Ngày đăng ký lần đầu",
    "book_number": "Quyển số", "full_name": "Họ, chữ đệm, tên", "date_of_birth": "Ngày, tháng, năm sinh",
    "sex": "Giới tính", "ethnicity": "Dân tộc", "nationality": "Quốc tịch", "place_of_birth": "Nơi sinh",
    "personal_id": "Số định danh cá nhân", "mother_name": "Họ tên mẹ", "father_name": "Họ tên cha",
    "text": "Toàn văn", "page": "Trang",
}

#: Vietnamese names of record statuses and record types.
STATUS_LABELS = {"ok": "Hợp lệ, đã ký số", "needs_review": "Chờ hiệu đính", "failed": "Lỗi xử lý",
                 "processing": "Đang xử lý", "unknown": "Không rõ"}
RECORD_TYPE_LABELS = {"admin_document": "Văn bản hành chính", "birth_certificate": "Giấy khai sinh",
                      "household_business_registration": "Giấy chứng nhận đăng ký hộ kinh doanh"}
_KIND_LABELS = {"invalid": "không hợp lệ", "low_confidence": "đọc với độ tin cậy thấp", "missing": "chưa đọc được",
                "inconsistent": "không khớp", "quality": "chất lượng ảnh"}


def label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def required_fields(record_type: str) -> tuple[str, ...]:
    """Fields without which a record of this type is never ``ok`` (:data:`pipeline.stages.extract.REQUIRED_FIELDS`)."""
    return tuple(REQUIRED_FIELDS.get(record_type, ()))


def _field_kind(info: Any) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("format") == "date":
        return "date"
    annotation = str(info.annotation)
    if annotation.startswith("list[str]"):
        return "list"
    if annotation.startswith("list["):
        return "objects"
    return "text"


def field_specs(record_type: str) -> list[dict[str, Any]]:
    """Every field of the record type, in the model's order: name, Vietnamese label, kind
    (``text``, ``date`` — typed dd/mm/yyyy, stored ISO 8601 —, ``list`` of text, ``objects``)
    and whether it is required for ``ok``."""
    required = set(required_fields(record_type))
    return [{"name": name, "label": label(name), "kind": _field_kind(info), "required": name in required}
            for name, info in FIELD_MODELS[record_type].model_fields.items()]


def date_fields(record_type: str) -> set[str]:
    return {s["name"] for s in field_specs(record_type) if s["kind"] == "date"}


_DMY = re.compile(r"^\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})\s*$")
_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


def parse_date(value: str, name: str = "date") -> str:
    """A date as Vietnamese users write it (dd/mm/yyyy, also with '-' or '.'), or ISO 8601,
    to ISO 8601; :class:`CorrectionError` in Vietnamese for anything else or a day that does
    not exist (30/02)."""
    m = _DMY.match(value)
    if m:
        day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif (m := _ISO.match(value)) is not None:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        raise CorrectionError(f"{_named(name)}: '{value}' không phải ngày; nhập theo dạng ngày/tháng/năm, ví dụ 19/03/2024")
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise CorrectionError(f"{_named(name)}: ngày {day:02d}/{month:02d}/{year} không có thật") from None


def normalize_dates(record_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with every date field typed dd/mm/yyyy turned into ISO 8601."""
    dates = date_fields(record_type)
    return {k: (parse_date(v, k) if k in dates and isinstance(v, str) and v.strip() else v) for k, v in fields.items()}


def format_date(value: Any) -> str:
    """ISO 8601 → dd/mm/yyyy (as shown on screen); anything else unchanged."""
    if isinstance(value, str) and (m := _ISO.match(value)):
        return f"{m.group(3)}/{m.group(2)}/{m.group(1)}"
    return "" if value is None else str(value)


_CONFIDENCE = re.compile(r"confidence (\d(?:\.\d+)?) < (\d(?:\.\d+)?)")
_NOT_A = re.compile(r"^(.*) is not a '(\w+)'$")
_ENGLISH = re.compile(r"\b(the|is|was|with|not|read|of|no|after|found|and)\b")
_VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.IGNORECASE)


#: The extractor's review reasons (pipeline/stages/extract) said in Vietnamese; ``{0}``… are the groups.
_KNOWN_MESSAGES = [(re.compile(p), w) for p, w in (
    (r"only the symbol '/([^']*)' of the number was read", "chỉ đọc được ký hiệu '/{0}', chưa có phần số — nhập theo vùng ảnh"),
    (r"the digits of 'Số: … /([^']*)' are not printed", "chữ số trước '/{0}' không in sẵn (viết tay?) — nhập theo vùng ảnh"),
    (r"the digits of 'Số: … /([^']*)' are unclear \(read '([^']*)'", "chữ số trước '/{0}' không rõ (máy đọc '{1}') — kiểm tra theo vùng ảnh"),
    (r"date of issue unreadable", "không đọc được ngày ban hành — nhập theo vùng ảnh"),
    (r"the day of the date of issue is unclear \(read (\d+)", "ngày trong ngày ban hành không rõ (máy đọc {0}) — kiểm tra theo vùng ảnh"),
    (r"the signature block was read only in part", "khối chữ ký chỉ đọc được một phần (dấu hoặc chữ ký đè lên) — kiểm tra"),
    (r"'([^']*)' under 'KT\. [^']*' is no deputy title", "'{0}' dưới 'KT.' không phải chức vụ cấp phó — kiểm tra"),
    (r"misread words restored from the Vietnamese dictionary", "một số chữ đọc sai đã được sửa theo từ điển tiếng Việt — kiểm tra"),
    (r"personal id encodes birth year (\d+), date of birth is (\S+)", "số định danh mang năm sinh {0} nhưng ngày sinh là {1}"),
    (r"part of it may be hidden by the seal", "có thể bị dấu che mất một phần — kiểm tra"),
    (r"no province after 'tỉnh' as read: restored", "tên tỉnh đọc sai đã được khôi phục theo danh mục tỉnh — kiểm tra"),
    (r"^page (\d+): ", "trang {0}: chất lượng ảnh thấp, có thể đọc sai — kiểm tra"),
)]


def _pct(x: str) -> str:
    return f"{round(float(x) * 100)} %"


def _recogniser_guess(message: str) -> str:
    """' (máy đoán '07', độ tin cậy 82 %)' when the message quotes the digit recogniser's reading."""
    guess = re.search(r"reads '([^']*)' with confidence (\d(?:\.\d+)?)", message)
    return f" (máy đoán '{guess.group(1)}', độ tin cậy {_pct(guess.group(2))})" if guess else ""


def explain(issue: Mapping[str, Any], evidence: Mapping[str, Any] | None = None) -> str:
    """A field issue in Vietnamese words, with the value and threshold it names. A message the
    pipeline already wrote in Vietnamese is kept; an English one is said again in Vietnamese
    (its technical wording stays after it, in parentheses, where no rule knows it)."""
    name, kind, message = issue.get("field", ""), issue.get("kind", ""), str(issue.get("message", ""))
    what = label(name)
    if _VIETNAMESE.search(message) and not _ENGLISH.search(message):
        return f"{what}: {message}"
    for pattern, words in _KNOWN_MESSAGES:
        if m := pattern.search(message):
            return f"{what}: {words.format(*m.groups())}" + _recogniser_guess(message)
    if m := _CONFIDENCE.search(message):
        return f"{what}: đọc với độ tin cậy {_pct(m.group(1))}, dưới ngưỡng {_pct(m.group(2))} — cần kiểm tra"
    if kind == "missing":
        out = f"{what}: không tìm thấy trên trang — cần nhập"
        if (evidence or {}).get("method") == "handwriting":
            out = f"{what}: viết tay, máy chưa đọc chắc chắn — nhập theo vùng ảnh của ô viết tay"
        return out + _recogniser_guess(message)
    if m := _NOT_A.match(message):
        kind_word = {"date": "ngày hợp lệ (ngày/tháng/năm)"}.get(m.group(2), m.group(2))
        return f"{what}: giá trị {m.group(1)} không phải {kind_word}"
    if "personal identification number" in message:
        return f"{what}: không phải số định danh cá nhân hợp lệ (12 chữ số)"
    if "tax code" in message:
        return f"{what}: không phải mã số thuế hợp lệ (sai số kiểm tra)"
    if "is no province" in message:
        return f"{what}: tên sau 'tỉnh' không phải tỉnh nào — có chữ bị mất hoặc đọc sai"
    if "not Vietnamese text" in message:
        return f"{what}: có ký tự không phải chữ Việt — có chữ bị đọc sai"
    if "signature block was not read" in message:
        return f"{what}: không đọc được khối chữ ký — kiểm tra người ký có ký thay (KT./TL./TM.) không"
    return f"{what}: {_KIND_LABELS.get(kind, kind)} ({message})"


def issues_view(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validation errors and review reasons, each with its Vietnamese explanation."""
    evidence = record.get("field_evidence") or {}
    out = []
    for source, items in (("invalid", record.get("validation_errors") or []), ("reason", record.get("review_reasons") or [])):
        for issue in items:
            out.append({**issue, "source": source, "label": label(issue.get("field", "")),
                        "message_vi": explain(issue, evidence.get(issue.get("field", "")))})
    return out


def missing_required(record: Mapping[str, Any]) -> list[str]:
    return _missing_required(record.get("record_type", ""), record.get("fields") or {})


def _missing_required(record_type: str, fields: Mapping[str, Any]) -> list[str]:
    return [n for n in required_fields(record_type) if fields.get(n) in (None, "", [])]


# --- history and search --------------------------------------------------------------------


def _changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    if before is None:
        return []
    names = list(dict.fromkeys(list(before) + list(after)))
    return [{"field": n, "label": label(n), "before": before.get(n), "after": after.get(n)}
            for n in names if before.get(n) != after.get(n)]


def history_view(warehouse: Warehouse, document_id: str, anchors: list[bytes], *,
                 readable: Any = None) -> list[dict[str, Any]]:
    """Every stored version, oldest first: version, who, when, why, the fields it changed with
    their values before and after, and whether its signature verifies (against ``anchors``;
    revocation is not checked here: ``sohoa verify`` does). ``readable(record)`` gives the view
    of a record the caller may read (personal data decrypted)."""
    from pipeline.signing.verify import verify_record_bytes  # deferred: loads httpx, asn1crypto

    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    versions = []
    for obj in warehouse.record_versions(document_id):
        data = warehouse.get_record_bytes(document_id, obj.version_id)
        if data is None:
            continue
        versions.append((obj, data, json.loads(data)))
    versions.sort(key=lambda v: int(v[2].get("version") or 0))
    for obj, data, record in versions:
        shown = readable(record) if readable else record
        entry = (record.get("history") or [{}])[-1]
        if anchors:
            report = verify_record_bytes(data, anchors)
            signature = {"valid": report.ok, "problems": list(report.problems)[:3]}
        else:
            signature = {"valid": None, "problems": ["không có chứng thư gốc để kiểm tra"]}
        out.append({
            "version": record.get("version"), "version_id": obj.version_id, "status": record.get("status"),
            "status_label": STATUS_LABELS.get(record.get("status", ""), record.get("status")),
            "at": entry.get("at"), "by": entry.get("by"), "action": entry.get("action"), "reason": entry.get("reason"),
            "changes": _changes(previous, shown.get("fields") or {}),
            "signed_at": (record.get("signature") or {}).get("signed_at"), "signature": signature,
        })
        previous = shown.get("fields") or {}
    return out


def search_records(warehouse: Warehouse, query: str, *, limit: int = 50, catalog: Any = None) -> list[dict[str, Any]]:
    """Records of any status whose number (exact, normalised), issuer (a substring, case and
    diacritics ignored), date (typed dd/mm/yyyy or ISO) or dossier code (mã hồ sơ) matches
    ``query``, or whose document id starts with it; newest date first.

    With ``catalog`` (:class:`pipeline.warehouse.catalog.Catalog`) number, issuer and date come from the
    catalog (DuckDB over Parquet, no record read but the hits'); dossiers from the receipts of
    one-stop units and the records' provenance. Without it every record is read (a small
    warehouse, tests)."""
    text = query.strip()
    if not text:
        return []
    try:
        iso = parse_date(text)
    except CorrectionError:
        iso = None
    ids: dict[str, None] = {}
    if catalog is not None:
        for criteria in ({"number": text}, {"issuer": text}, {"date_from": iso, "date_to": iso} if iso else None):
            if criteria:
                ids.update((row["document_id"], None) for row in catalog.find(**criteria, limit=limit))
        if re.fullmatch(r"[0-9a-f]{8,64}", text.lower()):
            ids.update((d, None) for d in warehouse.iter_record_ids() if d.startswith(text.lower()))

        if "-" in text and len(text) <= 64:
            ids.update((r["document_id"], None) for r in dossier_receipts(warehouse, text))
        records = [r for r in (warehouse.get_record(d) for d in list(ids)[: 2 * limit]) if r is not None]
    else:
        wanted = fold(text)
        records = []
        for document_id in warehouse.iter_record_ids():
            record = warehouse.get_record(document_id)
            if record is None:
                continue
            fields = record.get("fields") or {}
            haystack = [str(fields.get(k) or "") for k in ("number", "issuer", "subject")] + [
                str((record.get("provenance") or {}).get("dossier") or ""), document_id]
            if any(wanted in fold(h) for h in haystack if h) or (iso is not None and fields.get("date") == iso):
                records.append(record)
    hits = []
    for record in records:
        fields = record.get("fields") or {}
        item = queue_item(record)
        item.update(status=record.get("status"), status_label=STATUS_LABELS.get(record.get("status", ""), ""),
                    issuer=fields.get("issuer"), date=fields.get("date"), subject=fields.get("subject"))
        hits.append(item)
    hits.sort(key=lambda h: (h.get("date") or "", h["document_id"]), reverse=True)
    return hits[:limit]
