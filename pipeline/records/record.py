"""Records: what the pipeline signs and stores, one per source document.

A record is an envelope (document id, source, status, OCR text and words, provenance,
history, signature) around the typed ``fields`` of its record type. The JSON Schemas in
``schemas/`` are generated from these models (``sohoa schemas --write``) and versioned by file
name: ``schemas/<record_type>.v<N>.schema.json``. A test proves they match.

Record types:

* ``admin_document`` — văn bản hành chính (Decree 30/2020/NĐ-CP layout).
* ``household_business_registration`` — Giấy chứng nhận đăng ký hộ kinh doanh.
* ``birth_certificate`` — Giấy khai sinh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.records.pii import PiiEnvelope
from pipeline.stages.models import ErrorItem, PageResult, Status

RecordType = Literal["admin_document", "household_business_registration", "birth_certificate"]

SCHEMA_BASE_URI = "https://sohoa.gov.vn/schemas/"

#: Current schema version per record type. v2 added the ``pii`` envelope (personal data
#: encrypted at rest, Decree 13/2023); v3 the source of each page's text (``text_source``), of
#: each field (``field_evidence.*.source``) and the PDF's embedded signatures
#: (``provenance.signatures``). The older files stay in ``schemas/`` so that records written
#: before still validate against the schema they name.
SCHEMA_VERSIONS: dict[str, int] = {
    "admin_document": 3,
    "household_business_registration": 3,
    "birth_certificate": 3,
}


def schema_id(record_type: str, version: int | None = None) -> str:
    version = version or SCHEMA_VERSIONS[record_type]
    return f"{SCHEMA_BASE_URI}{record_type}.v{version}.schema.json"


def schema_file_name(record_type: str, version: int | None = None) -> str:
    version = version or SCHEMA_VERSIONS[record_type]
    return f"{record_type}.v{version}.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- field models ----------------------------------------------------------------------


class LegalReference(_Strict):
    """A legal document the text cites (căn cứ / viện dẫn), e.g. "Nghị định số 45/2020/NĐ-CP"."""

    doc_type: str | None = Field(default=None, description="Loại văn bản, e.g. 'Nghị định'")
    number: str | None = Field(default=None, description="Số, ký hiệu, e.g. '45/2020/NĐ-CP'")
    date: str | None = Field(default=None, description="Ngày ban hành, ISO 8601", json_schema_extra={"format": "date"})
    text: str = Field(description="The citation as it appears in the text")


class AssignedTask(_Strict):
    """A task the document assigns (nhiệm vụ), with its deadline (thời hạn) and body responsible."""

    responsible: str | None = Field(default=None, description="Cơ quan, đơn vị chủ trì")
    deadline: str | None = Field(default=None, description="Thời hạn, ISO 8601", json_schema_extra={"format": "date"})
    text: str = Field(description="The sentence that assigns the task")


class AdminDocumentFields(_Strict):
    """Thể thức văn bản hành chính (Decree 30/2020/NĐ-CP, Appendix I)."""

    number: str | None = Field(default=None, description="Số, ký hiệu văn bản, e.g. '5898/UBND-KSTT'")
    doc_type: str | None = Field(
        default=None, description="Tên loại văn bản (Decree 30 list); a letter with no type name is 'Công văn'"
    )
    issuer: str | None = Field(default=None, description="Tên cơ quan, tổ chức ban hành văn bản, joined to one line")
    issuer_parent: str | None = Field(default=None, description="Tên cơ quan, tổ chức chủ quản trực tiếp, if printed")
    place: str | None = Field(default=None, description="Địa danh")
    date: str | None = Field(default=None, description="Ngày ban hành, ISO 8601", json_schema_extra={"format": "date"})
    subject: str | None = Field(default=None, description="Trích yếu nội dung, without 'V/v'")
    signer: str | None = Field(default=None, description="Họ tên người ký")
    signer_title: str | None = Field(default=None, description="Chức vụ người ký, e.g. 'Phó Chủ tịch'")
    authority_prefix: str | None = Field(
        default=None, description="Quyền hạn ký: 'KT.', 'TL.', 'TM.', 'Q.', 'TUQ.' with the body or title"
    )
    recipients: list[str] = Field(default_factory=list, description="Nơi nhận")
    references: list[LegalReference] = Field(default_factory=list, description="Văn bản được viện dẫn")
    tasks: list[AssignedTask] = Field(default_factory=list, description="Nhiệm vụ và thời hạn")


class HouseholdBusinessFields(_Strict):
    """Giấy chứng nhận đăng ký hộ kinh doanh (Decree 01/2021/NĐ-CP; Circular 02/2023/TT-BKHĐT)."""

    issuer: str | None = Field(default=None, description="Cơ quan đăng ký kinh doanh cấp huyện")
    business_code: str | None = Field(default=None, description="Mã số hộ kinh doanh (10-digit tax code)")
    business_name: str | None = Field(default=None, description="Tên hộ kinh doanh")
    address: str | None = Field(default=None, description="Địa chỉ trụ sở hộ kinh doanh")
    business_lines: list[str] = Field(default_factory=list, description="Ngành, nghề kinh doanh")
    capital: str | None = Field(default=None, description="Vốn kinh doanh")
    owner_name: str | None = Field(default=None, description="Họ và tên chủ hộ / người đại diện")
    owner_date_of_birth: str | None = Field(default=None, json_schema_extra={"format": "date"})
    owner_personal_id: str | None = Field(default=None, description="Số định danh cá nhân (12 digits)")
    owner_residence: str | None = Field(default=None, description="Nơi cư trú")
    first_registration_date: str | None = Field(default=None, json_schema_extra={"format": "date"})
    date: str | None = Field(default=None, description="Ngày cấp / đăng ký thay đổi", json_schema_extra={"format": "date"})
    signer: str | None = None
    signer_title: str | None = None


class BirthCertificateFields(_Strict):
    """Giấy khai sinh (Law on Civil Status 2014; Circular 04/2020/TT-BTP)."""

    number: str | None = Field(default=None, description="Số")
    book_number: str | None = Field(default=None, description="Quyển số")
    full_name: str | None = Field(default=None, description="Họ, chữ đệm, tên")
    date_of_birth: str | None = Field(default=None, json_schema_extra={"format": "date"})
    sex: str | None = Field(default=None, description="Giới tính")
    ethnicity: str | None = Field(default=None, description="Dân tộc")
    nationality: str | None = Field(default=None, description="Quốc tịch")
    place_of_birth: str | None = Field(default=None, description="Nơi sinh")
    personal_id: str | None = Field(default=None, description="Số định danh cá nhân (12 digits)")
    mother_name: str | None = None
    father_name: str | None = None
    issuer: str | None = Field(default=None, description="Cơ quan đăng ký khai sinh")
    date: str | None = Field(default=None, description="Ngày đăng ký", json_schema_extra={"format": "date"})
    signer: str | None = None
    signer_title: str | None = None


FIELD_MODELS: dict[str, type[BaseModel]] = {
    "admin_document": AdminDocumentFields,
    "household_business_registration": HouseholdBusinessFields,
    "birth_certificate": BirthCertificateFields,
}


# --- envelope --------------------------------------------------------------------------


#: Why a field is flagged (``FieldIssue.kind``).
IssueKind = Literal["invalid", "low_confidence", "missing", "inconsistent", "quality"]


class FieldIssue(_Strict):
    """Why a field needs a steward's eye (invalid, low confidence, missing, inconsistent)."""

    field: str
    kind: IssueKind
    message: str


class FieldEvidence(_Strict):
    """Where on the page a field was read (for the review desk) and by what."""

    page: int | None = None
    boxes: list[tuple[int, int, int, int]] = Field(default_factory=list)
    method: str = Field(default="rule", description="'rule', 'model', 'layout', 'handwriting', 'signature' or 'steward'")
    source: str | None = Field(
        default=None,
        description="What the value was read from: 'ocr' (Tesseract on the page image), 'text_layer' (the PDF's own "
        "text), 'handwriting' (a handwritten or stamped slot: its box), 'signature' (an embedded PDF signature), "
        "'steward'",
    )


class Provenance(_Strict):
    """Nguồn gốc: what was digitized, by which engines, when."""

    source_sha256: str
    source_size: int
    page_sha256: list[str] = Field(default_factory=list, description="SHA-256 of each page raster as rendered")
    pipeline_version: str
    engines: dict[str, str] = Field(default_factory=dict)
    processed_at: datetime
    searchable_pdf_sha256: str | None = None
    unit: str | None = None
    dossier: str | None = None
    signatures: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Signatures embedded in the source PDF (signer certificate, signing time from /M or CMS, "
        "integrity, coverage), as read by pyHanko; evidence for issuer and date",
    )


class HistoryEntry(_Strict):
    version: int
    at: datetime
    by: str
    action: Literal["digitized", "corrected", "resigned"]
    reason: str | None = None
    changed_fields: list[str] = Field(default_factory=list)


class StoredPage(PageResult):
    """A page as kept in the record (OCR words with boxes and confidences)."""


class Record(_Strict):
    """Envelope common to every record type; ``fields`` is the typed payload."""

    schema_: str = Field(alias="$schema", description="URI of the JSON Schema this record follows")
    record_type: RecordType
    schema_version: int
    document_id: str = Field(description="SHA-256 (hex) of the source bytes", pattern="^[0-9a-f]{64}$")
    version: int = Field(default=1, ge=1, description="Record version; a steward's correction adds one")
    source_file: str
    page_count: int = Field(ge=0)
    status: Status
    error: ErrorItem | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    field_confidence: dict[str, float] = Field(default_factory=dict)
    field_evidence: dict[str, FieldEvidence] = Field(default_factory=dict)
    validation_errors: list[FieldIssue] = Field(default_factory=list)
    review_reasons: list[FieldIssue] = Field(default_factory=list)
    text: str = ""
    pages: list[StoredPage] = Field(default_factory=list)
    provenance: Provenance
    history: list[HistoryEntry] = Field(default_factory=list)
    pii: PiiEnvelope | None = Field(
        default=None,
        description="Personal data of private persons, encrypted (envelope encryption, key id in 'kid'); "
        "the fields it holds are null in 'fields'",
    )
    signature: dict[str, Any] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def record_json_schema(record_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record type: the envelope with typed ``fields``."""
    envelope = Record.model_json_schema(by_alias=True, mode="serialization")
    fields_schema = FIELD_MODELS[record_type].model_json_schema(mode="serialization")
    defs = envelope.setdefault("$defs", {})
    defs.update(fields_schema.pop("$defs", {}))
    name = FIELD_MODELS[record_type].__name__
    defs[name] = fields_schema
    props = envelope["properties"]
    props["fields"] = {"$ref": f"#/$defs/{name}"}
    props["record_type"] = {"const": record_type, "type": "string"}
    props["schema_version"] = {"const": SCHEMA_VERSIONS[record_type], "type": "integer"}
    props["$schema"] = {"const": schema_id(record_type), "type": "string"}
    envelope["$id"] = schema_id(record_type)
    envelope["title"] = f"sohoa record: {record_type} v{SCHEMA_VERSIONS[record_type]}"
    envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    envelope.setdefault("required", [])
    for key in ("fields", "record_type", "schema_version", "$schema"):
        if key not in envelope["required"]:
            envelope["required"].append(key)
    envelope["required"].sort()
    return envelope
