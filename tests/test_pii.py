"""Personal data protection (Decree 13/2023): envelope encryption, access by role, blind index."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import stat

import pytest

from pipeline.records.pii import (
    PII_FIELDS,
    REDACTED,
    KeyRing,
    PiiAccessDenied,
    PiiDecryptionError,
    PiiEnvelope,
    UnknownKeyError,
    blind_index,
    decrypt_fields,
    encrypt_fields,
    keyring_path,
    rewrap,
)

NAME = "Nguyễn Thị Minh Khai"
MOTHER = "Trần Thị Bích Ngọc"
PID = "001305012345"


def birth_record(**fields) -> dict:
    base = {
        "number": "125",
        "book_number": "01/2024",
        "full_name": NAME,
        "date_of_birth": "2024-03-05",
        "sex": "Nữ",
        "place_of_birth": "Bệnh viện Phụ sản Hà Nội",
        "personal_id": PID,
        "mother_name": MOTHER,
        "father_name": "Lê Văn Tám",
        "issuer": "UBND phường Dịch Vọng",
        "date": "2024-03-12",
    }
    base.update(fields)
    text = f"GIẤY KHAI SINH Họ, chữ đệm, tên: {NAME} Số định danh cá nhân: {PID} Họ tên mẹ: {MOTHER}"
    return {
        "$schema": "https://sohoa.gov.vn/schemas/birth_certificate.v1.schema.json",
        "record_type": "birth_certificate",
        "schema_version": 1,
        "document_id": hashlib.sha256(b"birth").hexdigest(),
        "version": 1,
        "source_file": "khai-sinh-125.pdf",
        "page_count": 1,
        "status": "needs_review",
        "fields": base,
        "validation_errors": [
            {"field": "personal_id", "kind": "invalid", "message": f"{PID!r} is not a valid personal identification number"}
        ],
        "review_reasons": [{"field": "issuer", "kind": "low_confidence", "message": "issuer read with low confidence"}],
        "text": text,
        "pages": [
            {
                "page": 1, "width": 100, "height": 100, "dpi": 300, "text": text,
                "words": [{"text": w, "conf": 90.0, "bbox": [0, 0, 1, 1], "line": 0} for w in text.split()],
            }
        ],
        "provenance": {"source_sha256": "0" * 64, "source_size": 1, "pipeline_version": "t",
                       "processed_at": "2024-03-12T00:00:00Z", "unit": "000.00.01.H26"},
    }


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


def test_pii_fields_cover_private_persons_only():
    assert PII_FIELDS["admin_document"] == ()
    assert {"full_name", "personal_id", "date_of_birth", "place_of_birth", "mother_name", "father_name"} <= set(
        PII_FIELDS["birth_certificate"]
    )
    assert {"owner_name", "owner_personal_id", "owner_date_of_birth", "owner_residence"} <= set(
        PII_FIELDS["household_business_registration"]
    )


def test_round_trip(ring):
    record = birth_record()
    enc = encrypt_fields(record, ring)
    assert enc["fields"]["full_name"] is None and enc["fields"]["personal_id"] is None
    assert enc["fields"]["number"] == "125" and enc["fields"]["issuer"] == "UBND phường Dịch Vọng"
    assert enc["text"] == "" and all(w["text"] == "" for w in enc["pages"][0]["words"])
    assert enc["pages"][0]["words"][0]["bbox"] == [0, 0, 1, 1]  # geometry stays for the review desk
    assert enc["validation_errors"][0]["message"] == REDACTED
    assert enc["review_reasons"][0]["message"] == "issuer read with low confidence"
    envelope = PiiEnvelope.model_validate(enc["pii"])
    assert envelope.kid == ring.current_kid and "personal_id" in envelope.fields
    assert record["fields"]["full_name"] == NAME  # the input is not modified
    for role in ("steward", "reader", "admin"):
        assert decrypt_fields(enc, ring, role=role) == record
    assert encrypt_fields(enc, ring) == enc  # idempotent


def test_admin_document_without_identifiers_unchanged(ring):
    record = birth_record()
    text = "Quyết định số 12/QĐ-UBND ngày 01/02/2024, kinh phí 100.000.000.000 đồng, điện thoại 0255 3822 123"
    record.update(record_type="admin_document", fields={"number": "12/QĐ-UBND", "signer": "Nguyễn Văn A"},
                  text=text, validation_errors=[])  # fmt: skip
    record["pages"][0]["text"] = text
    assert encrypt_fields(record, ring) == record


def test_identifier_in_text_is_encrypted_whatever_the_type(ring):
    """A birth certificate misread as an official letter keeps no id in clear (issue 17)."""
    record = birth_record()
    record.update(record_type="admin_document", fields={"number": "12/QĐ-UBND", "subject": f"cấp lại giấy cho số {PID}"},
                  validation_errors=[])  # fmt: skip
    enc = encrypt_fields(record, ring)
    blob = json.dumps(enc, ensure_ascii=False)
    assert PID not in blob
    assert enc["fields"]["subject"] is None and enc["fields"]["number"] == "12/QĐ-UBND"
    assert enc["text"] == "" and all(w["text"] == "" for w in enc["pages"][0]["words"])
    assert enc["pii"]["blind_index"] == [blind_index(PID, ring)]
    assert decrypt_fields(enc, ring, role="steward") == record


def test_labelled_tax_code_in_text_is_encrypted(ring):
    from pipeline.records.pii import identifiers_in_text

    assert identifiers_in_text("Mã số thuế: 0312345678-001; điện thoại 0312345679") == ["0312345678-001"]
    assert identifiers_in_text(f"CCCD {PID}, cấp ngày 01/01/2021") == [PID]
    assert identifiers_in_text("tổng 1.234.567.890.123 đồng; mã 1234567890123") == []


def test_pii_never_in_clear_in_encrypted_bytes(ring):
    enc = encrypt_fields(birth_record(), ring)
    blob = json.dumps(enc, ensure_ascii=False).encode()
    for secret in (NAME, MOTHER, PID, "Lê Văn Tám", "2024-03-05", "Bệnh viện Phụ sản", "Minh Khai"):
        assert secret.encode() not in blob
        assert secret.encode() not in json.dumps(enc).encode()  # nor \\u-escaped
    assert PID.encode() not in base64.urlsafe_b64decode(enc["pii"]["ct"] + "==")


def test_wrong_key_and_tampering_fail(ring):
    enc = encrypt_fields(birth_record(), ring)
    other = KeyRing(current_kid=ring.current_kid, keys={ring.current_kid: b"\x01" * 32})
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(enc, other, role="admin")

    with pytest.raises(UnknownKeyError):
        decrypt_fields(enc, KeyRing.generate(), role="admin")

    tampered = copy.deepcopy(enc)
    ct = bytearray(base64.urlsafe_b64decode(tampered["pii"]["ct"] + "=="))
    ct[5] ^= 0x01
    tampered["pii"]["ct"] = base64.urlsafe_b64encode(bytes(ct)).rstrip(b"=").decode()
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(tampered, ring, role="admin")

    moved = copy.deepcopy(enc)
    moved["document_id"] = hashlib.sha256(b"another").hexdigest()  # envelope moved to another record
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(moved, ring, role="admin")


def test_roles(ring):
    enc = encrypt_fields(birth_record(), ring)
    assert decrypt_fields(enc, ring, role="unit", unit="000.00.01.H26")["fields"]["full_name"] == NAME
    with pytest.raises(PiiAccessDenied):
        decrypt_fields(enc, ring, role="unit", unit="000.00.02.H26")
    with pytest.raises(PiiAccessDenied):
        decrypt_fields(enc, ring, role="unit")
    with pytest.raises(PiiAccessDenied):
        decrypt_fields(enc, ring, role="guest")


def test_blind_index_stable_and_kid_bound(ring):
    a = blind_index(PID, ring)
    assert a == blind_index(PID, ring) == blind_index(" 0013 0501 2345 ", ring)
    assert a.startswith(ring.current_kid + ":") and PID not in a
    assert a != blind_index("001305012346", ring)
    old_kid = ring.current_kid
    ring.rotate()
    b = blind_index(PID, ring)
    assert b != a and b.startswith(ring.current_kid + ":")
    assert blind_index(PID, ring, kid=old_kid) == a
    assert set(ring.blind_indexes(PID)) == {a, b}
    enc = encrypt_fields(birth_record(), ring)
    assert enc["pii"]["blind_index"] == [b]


def test_rotation_keeps_old_records_readable(tmp_path):
    path = keyring_path(tmp_path)
    ring = KeyRing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = encrypt_fields(birth_record(), ring)
    old_kid = ring.current_kid
    new_kid = ring.rotate()
    ring.save(path)
    reloaded = KeyRing.load(path)
    assert reloaded.current_kid == new_kid and reloaded.kids() == {old_kid, new_kid}
    assert decrypt_fields(old, reloaded, role="steward") == birth_record()
    new = encrypt_fields(birth_record(), reloaded)
    assert new["pii"]["kid"] == new_kid
    assert decrypt_fields(new, reloaded, role="steward") == birth_record()
    rewrapped = rewrap(old, reloaded)
    assert rewrapped["pii"]["kid"] == new_kid and rewrapped["pii"]["ct"] == old["pii"]["ct"]
    del reloaded.private_keys[old_kid]  # the old private key retired: the rewrapped record still opens
    assert decrypt_fields(rewrapped, reloaded, role="admin") == birth_record()
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(old, reloaded, role="admin")
    secrets_ = [*reloaded.private_keys.values(), *reloaded.index_keys.values()]
    assert all(base64.urlsafe_b64encode(k).decode()[:16] not in repr(reloaded) for k in secrets_)


def test_household_business_owner_is_protected(ring):
    record = birth_record()
    record["record_type"] = "household_business_registration"
    record["fields"] = {
        "business_code": "0101243150", "business_name": "Hộ kinh doanh Bánh cuốn Bà Hoành",
        "address": "66 Tô Hiến Thành", "owner_name": "Phạm Thị Hoành", "owner_personal_id": PID,
        "owner_date_of_birth": "1960-01-01", "owner_residence": "12 ngõ Huế, Hà Nội",
    }
    record["validation_errors"] = []
    enc = encrypt_fields(record, ring)
    blob = json.dumps(enc, ensure_ascii=False)
    assert "Phạm Thị Hoành" not in blob and PID not in blob and "ngõ Huế" not in blob
    assert enc["fields"]["business_code"] == "0101243150"  # published registration data stays
    assert sorted(enc["pii"]["blind_index"]) == sorted([blind_index(PID, ring), blind_index("0101243150", ring)])
    assert decrypt_fields(enc, ring, role="reader") == record

