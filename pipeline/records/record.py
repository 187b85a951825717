"""Records: what the pipeline signs and stores, one per source document.

A record is an envelope (document id, source, status, OCR text and words, provenance,
history, signature) around the typed ``fields`` of its record type. The JSON Schemas in
``schemas/`` are generated from these models (``sohoa schemas --write``) and versioned by file
name: ``schemas/<record_type>.v<N>.schema.json``. A test proves they match.

The pipeline passes the :class:`Record` itself, not a dict, from building
(:func:`pipeline.runtime.document.build_record`) through personal-data encryption
(:func:`pipeline.records.pii.encrypt_fields`), signing (:meth:`pipeline.signing.sign.RemoteSigner.sign_record_bytes`)
and storage (:func:`pipeline.warehouse.store.store_document`); review loads a stored record back into it
(:func:`load_record`). It becomes JSON in one place, :meth:`Record.to_json` (its canonical bytes:
:func:`record_bytes`), which gives exactly the JSON the dict-built records had, so the records stored before
load and dump to their own bytes (``tests/test_typed_record.py``). ``fields`` stays the sparse JSON object the
extractor fills (a value of the wrong type is a per-field issue for review, found by the JSON Schema check);
:meth:`Record.typed_fields` reads it as the type's model.

Record types:

* ``admin_document`` — văn bản hành chính (Decree 30/2020/NĐ-CP layout).
* ``household_business_registration`` — Giấy chứng nhận đăng ký hộ kinh doanh.
* ``birth_certificate`` — Giấy khai sinh.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pipeline.runtime.errors import SchemaValidationError
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


def _iso_datetime(value: str) -> str:
    datetime.fromisoformat(value)  # ValueError (a validation error) when it is no ISO 8601 date-time
    return value


#: An ISO 8601 date-time kept as the string it was written as: the record's timestamps are signed
#: as text, and the pipeline has always written ``provenance.processed_at`` with ``Z`` and a history
#: entry's ``at`` with ``+00:00`` (:meth:`datetime.isoformat`); a ``datetime`` would rewrite one of
#: them, and a record read back and signed again must keep its bytes. Schema: ``format: date-time``.
Timestamp = Annotated[str, AfterValidator(_iso_datetime), Field(json_schema_extra={"format": "date-time"})]


def timestamp(at: datetime, *, zulu: bool = False) -> str:
    """A record timestamp (:data:`Timestamp`) of an aware ``at``: as history entries are written
    (``+00:00``), or with ``zulu`` as ``provenance.processed_at`` is (``Z``, pydantic's form)."""
    text = at.isoformat()
    return text.removesuffix("+00:00") + "Z" if zulu and text.endswith("+00:00") else text


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


#: The typed ``fields`` of a record, whichever its type (:meth:`Record.typed_fields`).
RecordFields = AdminDocumentFields | HouseholdBusinessFields | BirthCertificateFields

FIELD_MODELS: dict[str, type[RecordFields]] = {
    "admin_document": AdminDocumentFields,
    "household_business_registration": HouseholdBusinessFields,
    "birth_certificate": BirthCertificateFields,
}


class PiiEnvelope(BaseModel):
    """The ``pii`` member of a record: personal data encrypted at rest (Decree 13/2023)."""

    model_config = ConfigDict(extra="forbid")

    enc: Literal["A256GCM"] = Field(description="Content encryption: AES-256-GCM")
    alg: Literal["A256KW", "ECDH-ES+A256KW"] = Field(
        description="Data key wrapping (the envelope's version): 'ECDH-ES+A256KW', AES-256 key wrap "
        "(RFC 3394) with a key agreed between an ephemeral X25519 key and the public key 'kid'; "
        "'A256KW' (v1, read only), AES-256 key wrap with the symmetric key 'kid'"
    )
    kid: str = Field(description="Id of the key-encryption key")
    epk: str | None = Field(
        default=None, description="Ephemeral X25519 public key, base64url (alg 'ECDH-ES+A256KW' only)"
    )
    iv: str = Field(description="GCM nonce, base64url")
    ct: str = Field(description="Ciphertext with its 16-byte tag, base64url")
    wrapped_key: str = Field(description="The wrapped data key, base64url")
    fields: list[str] = Field(default_factory=list, description="Names of the encrypted fields (never values)")
    blind_index: list[str] = Field(
        default_factory=list, description="'kid:HMAC-SHA256' of each subject id (số định danh, mã số thuế)"
    )


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
    method: str = Field(default="rule", description="'rule', 'model', 'layout', 'reread' (a second reading of the zone), 'handwriting', 'signature' or 'steward'")
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
    processed_at: Timestamp
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
    at: Timestamp
    by: str
    action: Literal["digitized", "corrected", "resigned"]
    reason: str | None = None
    changed_fields: list[str] = Field(default_factory=list)


class StoredPage(PageResult):
    """A page as kept in the record (OCR words with boxes and confidences)."""


# What the pipeline passes from building (pipeline.runtime.document.build_record) through personal-data
# encryption, signing and storage, and what review loads a stored record into (Record.model_validate).
# It becomes JSON in one place, Record.to_json. (Not in the docstring: that is the schemas' description.)
class Record(_Strict):
    """Envelope common to every record type; ``fields`` is the typed payload."""

    # two aliases, not ``alias``: the JSON member is "$schema", and code (and mypy) construct by the name
    schema_: str = Field(
        validation_alias="$schema", serialization_alias="$schema", description="URI of the JSON Schema this record follows"
    )
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

    #: an assignment is checked as the construction is (the record is built member by member)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON (what is signed and stored): the ONE place a record becomes JSON
        (:func:`record_bytes`, the signature's payload, the schema check, the catalog row).

        Two members the writers have always left out when empty are left out: ``pii`` (a record
        without personal data has none, not ``null``) and a v1 envelope's ``epk``; everything
        else is dumped whole, so a record built here has the bytes the dict-built record had."""
        exclude: dict[str, bool | set[str]] = {}
        if self.pii is None:
            exclude["pii"] = True
        elif self.pii.epk is None:
            exclude["pii"] = {"epk"}
        return self.model_dump(mode="json", by_alias=True, exclude=exclude or None)

    def typed_fields(self) -> RecordFields:
        """``fields`` as the typed model of the record type (:data:`FIELD_MODELS`). ``fields`` itself
        stays the sparse JSON object the extractor filled (what is signed: no member is added), and a
        value of the wrong type is a per-field validation issue (:func:`pipeline.stages.validate.validate_record`),
        not an error; this raises :class:`pydantic.ValidationError` on such a value."""
        return FIELD_MODELS[self.record_type].model_validate(self.fields)


def load_record(data: Mapping[str, Any]) -> Record:
    """A stored record (its JSON object, e.g. :meth:`Warehouse.get_record`) as the model, its types
    checked (``Record.model_validate``); one that is no record raises
    :class:`~pipeline.runtime.errors.SchemaValidationError` (the API answers 422), not pydantic's error."""
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(p) for p in first["loc"]) or "(record)"
        raise SchemaValidationError(
            f"record {data.get('document_id')!r} does not load: {exc.error_count()} error(s), first {where}: {first['msg']}"
        ) from exc


def record_bytes(record: Record) -> bytes:
    """RFC 8785 canonical JSON of a record: the bytes that are stored and, but for the signature's
    value, signed (:mod:`pipeline.signing.sign`)."""
    return rfc8785.dumps(record.to_json())


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
