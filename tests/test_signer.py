"""The remote signer over real HTTP: CSC API behaviour, record signatures, PAdES, verification."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import replace

import httpx
import pytest
from PIL import Image

from pipeline.errors import SignerUnavailableError, SigningError
from pipeline.sign import RemoteSigner, canonical_bytes
from pipeline.verify import verify_original, verify_pdf, verify_record_bytes


def _record() -> dict:
    return {
        "document_id": hashlib.sha256(b"scan").hexdigest(),
        "fields": {"number": "27/CT-TTg", "date": "2023-10-27", "issuer": "Thủ tướng Chính phủ"},
        "text": "CHỈ THỊ Về tiếp tục đẩy mạnh cải cách thủ tục hành chính",
        "provenance": {"source_sha256": hashlib.sha256(b"scan").hexdigest()},
        "signature": None,
    }


@pytest.fixture(scope="module")
def client(signer_service):
    c = RemoteSigner(signer_service.settings)
    yield c
    c.close()


@pytest.fixture(scope="module")
def anchors(signer_service):
    return [signer_service.settings.trust_anchor.read_bytes()]


def _post(url: str, path: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/csc/v2/{path}", json=body, headers=headers, timeout=10)


def test_info_is_public_and_lists_the_csc_methods(signer_service):
    info = _post(signer_service.url, "info", {}).json()
    assert info["specs"].startswith("2.")
    assert {"credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"} <= set(info["methods"])


def test_a_wrong_token_and_a_wrong_password_are_refused(signer_service):
    r = _post(signer_service.url, "credentials/list", {}, token="not-a-token")
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    r = httpx.post(f"{signer_service.url}/csc/v2/auth/login", json={}, auth=("sohoa", "wrong"), timeout=10)
    assert r.status_code == 401


def test_sad_is_bound_to_the_authorised_hashes(signer_service, client):
    s = signer_service.settings
    token = client._ensure_token()
    good, other = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    sad = _post(
        s.url,
        "credentials/authorize",
        {"credentialID": s.credential_id, "numSignatures": 1, "hashes": [base64.b64encode(good).decode()],
         "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": s.pin},
        token,
    ).json()["SAD"]
    r = _post(
        s.url,
        "signatures/signHash",
        {"credentialID": s.credential_id, "SAD": sad, "hashes": [base64.b64encode(other).decode()],
         "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"},
        token,
    )
    assert r.status_code == 400 and "not authori" in r.json()["error_description"].lower()


def test_a_wrong_pin_is_refused(signer_service):
    bad = RemoteSigner(replace(signer_service.settings, pin="000000" if signer_service.settings.pin != "000000" else "111111"))
    with pytest.raises(SigningError, match="PIN"):
        bad.sign_digests([hashlib.sha256(b"x").digest()])


def test_signed_record_verifies_offline_and_names_the_part_that_changed(client, anchors):
    data = canonical_bytes(client.sign_record(_record()))
    report = verify_record_bytes(data, anchors)
    assert report.ok, report.problems
    assert "Trung tâm" in report.signer

    tampered = data.replace("27/CT-TTg".encode(), "28/CT-TTg".encode())
    report = verify_record_bytes(tampered, anchors)
    assert not report.ok
    assert any("/fields" in p for p in report.problems)


def test_the_stored_bytes_are_the_canonical_json_of_the_signed_record(client, anchors):
    from pipeline.sign import assemble

    record = _record()
    record["pages"] = [{"words": [{"text": "Số", "conf": 91.0, "bbox": [1, 2, 3, 4]}], "mean_confidence": 1e-7}]
    record["ghi chú 𝔸"] = "non-BMP key"
    signed, data = client.sign_record_bytes(record)
    assert data == canonical_bytes(signed)
    assert verify_record_bytes(data, anchors).ok
    assert assemble({"b": b"1", "a": b"[]", "é": b"2"}) == canonical_bytes({"b": 1, "a": [], "é": 2})


def test_any_changed_byte_of_a_stored_record_fails(client, anchors):
    data = canonical_bytes(client.sign_record(_record()))
    for index in (5, len(data) // 2, len(data) - 3):
        flipped = data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
        assert not verify_record_bytes(flipped, anchors).ok, f"byte {index} changed but verification passed"


def test_a_record_signed_under_another_ca_is_not_trusted(client, tmp_path):
    from pipeline.signer.embedded import start_embedded_signer

    data = canonical_bytes(client.sign_record(_record()))
    with start_embedded_signer(tmp_path / "other-signer") as other:
        foreign_ca = other.settings.trust_anchor.read_bytes()
    report = verify_record_bytes(data, [foreign_ca])
    assert not report.ok and any("trusted CA" in p for p in report.problems)


def test_an_original_that_changed_is_named(client):
    record = _record()
    assert verify_original(b"scan", record).ok
    report = verify_original(b"scan!", record)
    assert not report.ok and "original file changed" in report.problems[0]


def _tiny_pdf() -> bytes:
    from pipeline.pdf import build_searchable_pdf

    buf = io.BytesIO()
    Image.new("RGB", (850, 1100), "white").save(buf, "JPEG")
    return build_searchable_pdf([(buf.getvalue(), 850, 1100, 100, b"")], title="t", producer="sohoa test")


def test_pdf_gets_a_timestamped_pades_signature_that_detects_changes(client, anchors):
    signed = client.sign_pdf(_tiny_pdf(), signer_name="Ủy ban nhân dân", reason="Bản sao điện tử", location="Hà Nội")
    report = verify_pdf(signed, None, anchors)
    assert report.ok, report.problems
    assert report.details["timestamped"]
    index = len(signed) // 3
    changed = signed[:index] + bytes([signed[index] ^ 0x01]) + signed[index + 1 :]
    assert not verify_pdf(changed, None, anchors).ok


def test_an_unreachable_signer_is_a_transient_error(signer_service):
    dead = RemoteSigner(replace(signer_service.settings, url="http://127.0.0.1:9", retry_attempts=2, retry_initial_delay_s=0.01))
    with pytest.raises(SignerUnavailableError) as info:
        dead.sign_digests([hashlib.sha256(b"x").digest()])
    assert info.value.transient


def test_a_revoked_credential_fails_verification_against_the_crl(tmp_path):
    """After revocation (thu hồi) the signer refuses the credential and `sohoa verify`, given
    the re-issued CRL, names the revoked certificate; before, the same record verified."""
    from pipeline.cli import main as sohoa
    from pipeline.signer.admin import revoke
    from pipeline.signer.embedded import start_embedded_signer

    with start_embedded_signer(tmp_path / "signer") as signer:
        client = RemoteSigner(signer.settings)
        path = tmp_path / "record.json"
        path.write_bytes(canonical_bytes(client.sign_record(_record())))
        ca = tmp_path / "signer" / "ca"
        # both CRLs: the issuing CA's own revocation (on the root's CRL) is checked too
        args = ["verify", str(path), "--trust", str(ca / "ca.pem"), "--crl", str(ca / "root.crl"), "--crl", str(ca / "issuing.crl")]
        assert sohoa(args) == 0
        revoke(tmp_path / "signer", signer.settings.credential_id)
        assert sohoa(args) == 6
        with pytest.raises(SigningError):
            client.sign_record(_record())
        client.close()


def test_a_sad_expires_is_single_use_and_bound_to_its_credential():
    """SCAL2 authorisation data (SAD): refused once expired, for another credential or
    algorithm, and for a hash it already signed — each with its own message."""
    import time as _time

    from pipeline.signer.sad import SADError, SADStore

    oid = "2.16.840.1.101.3.4.2.1"
    h = hashlib.sha256(b"record").digest()
    store = SADStore(ttl_s=0.05)
    sad, _ = store.issue("u", "cred-a", oid, [h])
    _time.sleep(0.1)
    with pytest.raises(SADError, match="expired"):
        store.consume(sad, "u", "cred-a", oid, [h])
    store = SADStore(ttl_s=60)
    sad, expires_in = store.issue("u", "cred-a", oid, [h])
    assert expires_in == 60
    with pytest.raises(SADError, match="another credential"):
        store.consume(sad, "u", "cred-b", oid, [h])
    with pytest.raises(SADError, match="hashAlgorithmOID"):
        store.consume(sad, "u", "cred-a", "2.16.840.1.101.3.4.2.3", [h])
    with pytest.raises(SADError, match="Invalid parameter SAD"):
        store.consume(sad, "someone-else", "cred-a", oid, [h])
    store.consume(sad, "u", "cred-a", oid, [h])
    with pytest.raises(SADError):
        store.consume(sad, "u", "cred-a", oid, [h])  # used up
