"""The record as a pydantic model from building to storage (issue 21 item 5).

``build_record`` returns a :class:`~pipeline.records.record.Record`; encryption, signing, storage
and review take the model, and it becomes JSON in one place (``Record.to_json``, whose canonical
bytes are ``record_bytes``). What must not change is the bytes: ``tests/fixtures/records-before-typed/``
holds records exactly as the dict-building code before this change wrote them (RFC 8785; made from
the bundled samples ``cong-van-2632-skhdt-vp.jpg`` and ``giay-khai-sinh-419-2018.jpg`` by the tree
at 8cc0395, time fixed at 2026-12-05T01:02:03Z): one official letter, one birth certificate
encrypted under a v2 (ECDH-ES) and under a v1 (A256KW) envelope, one failed record.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rfc8785
from PIL import Image
from pydantic import ValidationError

from pipeline._exec.tesseract import glyphless_font_pdf
from pipeline.records.pii import KeyRing, decrypt_fields, encrypt_fields
from pipeline.records.record import (
    SCHEMA_VERSIONS,
    AdminDocumentFields,
    HistoryEntry,
    Record,
    load_record,
    record_bytes,
)
from pipeline.runtime.clients import Runtime
from pipeline.runtime.config import Settings
from pipeline.runtime.document import base_record
from pipeline.runtime.errors import SchemaValidationError
from pipeline.service.review import apply_correction, correct_record
from pipeline.signing.sign import RemoteSigner
from pipeline.signing.verify import verify_record_bytes
from pipeline.stages.models import PageOutput, PageResult, SourceRef, Word
from pipeline.stages.validate import validate_record
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.store import store_document

BEFORE = Path(__file__).parent / "fixtures" / "records-before-typed"


@pytest.mark.parametrize("name", sorted(p.name for p in BEFORE.glob("*.json")))
def test_a_record_written_before_loads_into_the_model_and_dumps_to_the_same_bytes(name):
    data = (BEFORE / name).read_bytes()
    record = Record.model_validate(json.loads(data))
    assert record_bytes(record) == data  # timestamps as written, no null pii, a v1 envelope without epk
    assert validate_record(record) == validate_record(json.loads(data))


def test_the_built_record_keeps_the_json_form_records_had():
    ref = SourceRef(document_id="ab" * 32, source_file="a.png", size=1, original_key="originals/ab")
    record = base_record(ref, 1, [PageResult(page=1, width=10, height=10, dpi=300)], status="ok")
    document = record.to_json()
    assert document["provenance"]["processed_at"].endswith("Z")  # as pydantic wrote the provenance
    assert document["history"][0]["at"].endswith("+00:00")  # as datetime.isoformat() wrote the entry
    assert "pii" not in document and document["signature"] is None and document["error"] is None
    assert record_bytes(record) == rfc8785.dumps(document)


def test_the_model_checks_types_as_it_is_built_and_changed():
    ref = SourceRef(document_id="ab" * 32, source_file="a.png", size=1, original_key="originals/ab")
    record = base_record(ref, 0, [], status="ok")
    with pytest.raises(ValidationError):
        record.status = "done"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        HistoryEntry.model_validate({**record.history[0].model_dump(), "at": "yesterday"})  # no ISO 8601 time
    with pytest.raises(ValidationError):
        Record.model_validate({**record.to_json(), "colour": "red"})
    with pytest.raises(SchemaValidationError, match="colour"):  # a stored record that is none: the API's 422
        load_record({**record.to_json(), "colour": "red"})
    record.fields = {"number": "5/UBND-VP", "recipients": ["Như trên"]}
    typed = record.typed_fields()
    assert isinstance(typed, AdminDocumentFields) and typed.number == "5/UBND-VP" and typed.recipients == ["Như trên"]
    assert record.to_json()["fields"] == {"number": "5/UBND-VP", "recipients": ["Như trên"]}  # sparse, as extracted
    record.fields = {"recipients": "Các bộ"}  # a wrong type is a field issue for review, not an error
    assert [i.field for i in validate_record(record)] == ["recipients"]
    with pytest.raises(ValidationError):
        record.typed_fields()


def test_the_model_and_its_json_form_are_encrypted_alike():
    data = (BEFORE / "birth-certificate-envelope-v2.json").read_bytes()
    ring = KeyRing.generate()
    stored = json.loads(data)  # its key was not kept: the personal data is put back in clear
    stored.pop("pii")
    stored["fields"].update(full_name="Nguyễn Văn An", personal_id="001305012345", date_of_birth="2018-01-02")
    stored["text"] = "GIẤY KHAI SINH Họ, chữ đệm, tên: Nguyễn Văn An số định danh 001305012345"
    stored["review_reasons"] = [{"field": "personal_id", "kind": "invalid", "message": "'001305012345' is odd"}]
    record = Record.model_validate(stored)
    model = encrypt_fields(record, ring)
    as_json = encrypt_fields(record.to_json(), ring)
    assert isinstance(model, Record) and record.pii is None and record.fields["full_name"]  # the input is not changed
    random = {"iv", "ct", "wrapped_key", "epk"}
    dumped = model.to_json()
    assert {k: v for k, v in dumped["pii"].items() if k not in random} == \
        {k: v for k, v in as_json["pii"].items() if k not in random}  # fmt: skip
    assert {k: v for k, v in dumped.items() if k != "pii"} == {k: v for k, v in as_json.items() if k != "pii"}
    assert dumped["fields"]["personal_id"] is None and dumped["text"] == ""
    assert decrypt_fields(dumped, ring, role="steward") == decrypt_fields(as_json, ring, role="steward") == record.to_json()


def test_an_older_schema_record_is_corrected_under_the_current_one():
    ref = SourceRef(document_id="cd" * 32, source_file="b.png", size=1, original_key="originals/cd")
    page = PageResult(page=1, width=10, height=10, dpi=300, words=[Word(text="Số", conf=90, bbox=(0, 0, 5, 5), line=0)])
    old = base_record(ref, 1, [page], status="needs_review").to_json()
    old.update({"$schema": "https://sohoa.gov.vn/schemas/admin_document.v2.schema.json", "schema_version": 2})
    del old["provenance"]["signatures"]  # v2 had no signatures of the PDF, nor a page's text_source
    for stored in old["pages"]:
        del stored["text_source"]
    assert validate_record(old) == []
    new = apply_correction(old, {"number": "7/UBND"}, reason="đọc lại bản giấy", by="steward:k1",
                           at=datetime(2026, 12, 5, 2, tzinfo=UTC))  # fmt: skip
    assert isinstance(new, Record) and new.version == 2 and new.schema_version == SCHEMA_VERSIONS["admin_document"]
    assert new.pages[0].text_source == "ocr" and new.provenance.signatures == []  # the v3 members, defaults
    assert new.field_evidence["number"].method == "steward"
    assert new.history[-1].at == "2026-12-05T02:00:00+00:00" and new.history[-1].changed_fields == ["number"]
    assert validate_record(new) == [] and old["version"] == 1  # the stored record is not changed


def test_stored_records_load_losslessly_and_a_correction_goes_through_the_same_path(
    warehouse_settings, signer_service, tmp_path
):
    """store_document → stored bytes → the model → the same bytes; review corrects the model and
    signs, encrypts and stores it as the pipeline does: the stored bytes are record_bytes of it."""
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings)
    warehouse = Warehouse(warehouse_settings)
    warehouse.ensure_bucket()
    ring = KeyRing.generate()
    runtime = Runtime(settings=settings, warehouse=warehouse, _keyring=ring)
    buf = io.BytesIO()
    Image.fromarray(np.full((300, 200), 250, np.uint8)).save(buf, format="JPEG")
    text = "GIẤY KHAI SINH số định danh 001305012345"
    words = [Word(text=w, conf=90, bbox=(i * 10, 0, i * 10 + 9, 9), line=0) for i, w in enumerate(text.split())]
    page = PageOutput(result=PageResult(page=1, width=200, height=300, dpi=100, text=text, words=words),
                      image_jpeg=buf.getvalue(), text_pdf=glyphless_font_pdf("vie"))  # fmt: skip
    ref = SourceRef(document_id=hashlib.sha256(b"typed").hexdigest(), source_file="typed.png", size=5,
                    original_key="originals/typed")  # fmt: skip
    record = base_record(ref, 1, [page.result], status="needs_review", record_type="birth_certificate")
    record.fields = {"full_name": "Nguyễn Văn An", "personal_id": "001305012345"}
    record.review_reasons = [{"field": "date", "kind": "missing", "message": "date was not found on the page"}]
    signed = store_document(runtime, ref, record, [page])
    assert isinstance(signed, Record) and signed.pii is not None and record.pii is None
    data = warehouse.get_record_bytes(ref.document_id)
    assert data == record_bytes(signed)  # the one JSON form is what was signed and stored
    assert record_bytes(Record.model_validate(json.loads(data))) == data
    anchors = [signer_service.settings.trust_anchor.read_bytes()]
    assert verify_record_bytes(data, anchors).ok

    signer = RemoteSigner(signer_service.settings)
    try:
        corrected = correct_record(warehouse, signer, ref.document_id, {"date": "02/01/2018"}, reason="bản giấy",
                                   by="steward:k1", expected_version=1, keyring=ring)  # fmt: skip
    finally:
        signer.close()
    assert isinstance(corrected, Record) and corrected.version == 2 and corrected.fields["date"] == "2018-01-02"
    assert corrected.fields["personal_id"] is None and corrected.pii is not None  # encrypted again
    data = warehouse.get_record_bytes(ref.document_id)
    assert data == record_bytes(corrected) and verify_record_bytes(data, anchors).ok
    clear = decrypt_fields(json.loads(data), ring, role="steward")
    assert clear["fields"]["personal_id"] == "001305012345" and clear["text"] == text
