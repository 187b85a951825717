"""Records follow versioned JSON Schemas; the committed schema files are the models' own."""

import json

import pytest

from pipeline.records.record import SCHEMA_VERSIONS, schema_file_name
from pipeline.runtime.errors import SchemaValidationError
from pipeline.stages.validate import generate_schemas, schemas_dir, validate_record


def test_committed_schemas_match_the_record_models():
    generated = generate_schemas()
    for record_type, version in SCHEMA_VERSIONS.items():
        name = schema_file_name(record_type, version)
        assert name == f"{record_type}.v{version}.schema.json"
        committed = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
        assert committed == generated[name], f"{name} is stale: run `sohoa schemas --write`"


def _record(**fields):
    return {
        "$schema": "https://sohoa.gov.vn/schemas/admin_document.v1.schema.json",
        "record_type": "admin_document",
        "schema_version": 1,
        "document_id": "a" * 64,
        "version": 1,
        "source_file": "cv.pdf",
        "page_count": 1,
        "status": "ok",
        "error": None,
        "fields": fields,
        "field_confidence": {},
        "field_evidence": {},
        "validation_errors": [],
        "review_reasons": [],
        "text": "",
        "pages": [],
        "provenance": {
            "source_sha256": "a" * 64,
            "source_size": 10,
            "pipeline_version": "0.1.0",
            "processed_at": "2026-11-22T10:00:00Z",
        },
        "history": [],
        "signature": None,
    }


def test_a_complete_admin_record_is_valid():
    issues = validate_record(
        _record(number="516/TTg-KSTT", doc_type="Công văn", issuer="Thủ tướng Chính phủ", date="2021-04-22", recipients=["Các bộ"])
    )
    assert issues == []


def test_a_field_of_the_wrong_shape_is_a_field_issue_not_a_crash():
    issues = validate_record(_record(date="22/04/2021", recipients="Các bộ"))
    fields = {i.field for i in issues}
    assert fields == {"date", "recipients"}
    assert all(i.kind == "invalid" for i in issues)


def test_unknown_field_is_reported():
    issues = validate_record(_record(number="1/QĐ-UBND", colour="red"))
    assert any("colour" in i.message for i in issues)


def test_a_broken_envelope_is_a_schema_error():
    rec = _record()
    del rec["provenance"]
    with pytest.raises(SchemaValidationError, match="provenance"):
        validate_record(rec)


def test_identifiers_are_checked_beyond_the_schema():
    rec = _record()
    rec.update(record_type="birth_certificate", **{"$schema": "https://sohoa.gov.vn/schemas/birth_certificate.v1.schema.json"})
    rec["fields"] = {"full_name": "Nguyễn Văn An", "personal_id": "099203001234"}
    issues = validate_record(rec)
    assert [(i.field, i.kind) for i in issues] == [("personal_id", "invalid")]


@pytest.mark.parametrize("change", [
    {}, {"date": "2023-02-30"}, {"date": "2024-02-29"}, {"recipients": "Các bộ"}, {"number": 5},
    {"colour": "red"}, {"references": [{"doc_type": "Nghị định", "number": "45/2020/NĐ-CP"}]},
])
def test_the_fast_validator_agrees_with_the_reference_one(change):
    """A record the compiled validator accepts is one jsonschema accepts too (the fast path
    skips the reference validator only for valid records)."""
    from pipeline.stages.validate import _fast_validator, _validator

    rec = _record(number="516/TTg-KSTT", date="2021-04-22")
    rec["fields"].update(change)
    for version in (1, 2):
        rec.update(schema_version=version, **{"$schema": f"https://sohoa.gov.vn/schemas/admin_document.v{version}.schema.json"})
        reference_ok = not list(_validator("admin_document", version).iter_errors(rec))
        assert _fast_validator("admin_document", version).is_valid(rec) == reference_ok
