"""The remote signer over real HTTP: CSC API behaviour, record signatures, PAdES, verification."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import replace

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image

from pipeline.runtime.errors import SignerUnavailableError, SigningError
from pipeline.signing.sign import RemoteSigner, canonical_bytes
from pipeline.signing.verify import verify_original, verify_pdf, verify_record_bytes


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

    tampered = data.replace(b"27/CT-TTg", b"28/CT-TTg")
    report = verify_record_bytes(tampered, anchors)
    assert not report.ok
    assert any("/fields" in p for p in report.problems)


def test_the_stored_bytes_are_the_canonical_json_of_the_signed_record(client, anchors):
    from pipeline.signing.sign import assemble

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
    from pipeline.embedded.signer.embedded import start_embedded_signer

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
    from pipeline.stages.pdf import build_searchable_pdf

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
    from pipeline.embedded.signer.admin import revoke
    from pipeline.embedded.signer.embedded import start_embedded_signer

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

    from pipeline.embedded.signer.sad import SADError, SADStore

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


def test_the_ca_and_the_credentials_stay_the_same_across_restarts(tmp_path):
    """The PKI is issued once, when the state is created: a restarted signer serves the same CA
    and certificates, so records signed before the restart verify against the anchor after it."""
    from pipeline.embedded.signer.embedded import EmbeddedSigner

    signer = EmbeddedSigner(tmp_path / "signer")
    signer.start()
    try:
        client = RemoteSigner(signer.settings)
        before = canonical_bytes(client.sign_record(_record()))
        chain_before = client.certificate_chain()
        client.close()
        anchor_before = signer.settings.trust_anchor.read_bytes()
        signer.stop()
        signer.start()
        client = RemoteSigner(signer.settings)
        after = canonical_bytes(client.sign_record(_record()))
        assert client.certificate_chain() == chain_before
        client.close()
    finally:
        signer.stop()
    anchor = signer.settings.trust_anchor.read_bytes()
    assert anchor == anchor_before
    assert verify_record_bytes(before, [anchor]).ok and verify_record_bytes(after, [anchor]).ok


def test_an_rsa_credential_signs_records_and_pdfs_with_pss(signer_service, anchors):
    """The RSA-3072 credential of pki.yml (vpcp): RSASSA-PSS through the same CSC client."""
    client = RemoteSigner(replace(signer_service.settings, credential_id="vpcp"))
    try:
        signed = client.sign_record(_record())
        assert signed["signature"]["algorithm"] == "RSASSA-PSS-SHA256"
        assert verify_record_bytes(canonical_bytes(signed), anchors).ok
        pdf = client.sign_pdf(_tiny_pdf(), signer_name="Văn phòng Chính phủ", reason="Bản sao điện tử", location="Hà Nội")
    finally:
        client.close()
    report = verify_pdf(pdf, None, anchors)
    assert report.ok, report.problems
    assert "Văn phòng Chính phủ" in report.signer


def _ocsp_status(url: str, cert, issuer) -> tuple[str, object]:
    """POST an OCSP request for ``cert`` to the responder its AIA names (path on ``url``)."""
    from urllib.parse import urlparse

    from asn1crypto import ocsp
    from asn1crypto import x509 as asn1_x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    (where,) = [a.access_location.value for a in aia if a.access_method == AuthorityInformationAccessOID.OCSP]
    leaf, ca = (asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in (cert, issuer))
    cert_id = ocsp.CertId({"hash_algorithm": {"algorithm": "sha256"}, "issuer_name_hash": ca.subject.sha256,
                           "issuer_key_hash": ca.public_key.sha256, "serial_number": leaf.serial_number})  # fmt: skip
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    r = httpx.post(url + urlparse(where).path, content=request.dump(),
                   headers={"Content-Type": "application/ocsp-request"}, timeout=10)  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    response = ocsp.OCSPResponse.load(r.content)
    assert response["response_status"].native == "successful"
    basic = response.basic_ocsp_response
    responder = basic["certs"][0]
    # signed by the delegated responder the issuing CA certified for OCSP
    assert responder.issuer == ca.subject and "ocsp_signing" in responder.extended_key_usage_value.native
    from cryptography.hazmat.primitives.asymmetric import ec as _ec

    public = x509.load_der_x509_certificate(responder.dump()).public_key()
    public.verify(basic["signature"].native, basic["tbs_response_data"].dump(), _ec.ECDSA(hashes.SHA256()))
    single = basic["tbs_response_data"]["responses"][0]["cert_status"]
    return single.name, single.chosen


def _published_crl(url: str, cert) -> x509.CertificateRevocationList:
    """GET the CRL at the distribution point ``cert`` names (path on ``url``)."""
    from urllib.parse import urlparse

    (point,) = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    r = httpx.get(url + urlparse(point.full_name[0].value).path, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(r.content)


def test_ocsp_and_the_crl_the_certificates_name_answer_good_then_revoked(tmp_path):
    """The OCSP responder (AIA) and the CRL distribution point the certificates name are served
    by the signer, and both see an administrator's revocation at once."""
    from pipeline.embedded.signer.admin import revoke
    from pipeline.embedded.signer.embedded import start_embedded_signer

    with start_embedded_signer(tmp_path / "signer") as signer:
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in RemoteSigner(signer.settings).certificate_chain()]
        status, _ = _ocsp_status(signer.url, chain[0], chain[1])
        assert status == "good"
        crl = _published_crl(signer.url, chain[0])
        assert crl.is_signature_valid(chain[1].public_key()) and crl.get_revoked_certificate_by_serial_number(chain[0].serial_number) is None
        revoke(tmp_path / "signer", signer.settings.credential_id, reason="superseded")
        status, info = _ocsp_status(signer.url, chain[0], chain[1])
        assert status == "revoked" and info["revocation_reason"].native == "superseded"
        crl = _published_crl(signer.url, chain[0])
        entry = crl.get_revoked_certificate_by_serial_number(chain[0].serial_number)
        assert crl.is_signature_valid(chain[1].public_key()) and entry is not None
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded


def test_a_supplied_key_passphrase_is_written_nowhere_and_every_key_needs_it(tmp_path):
    """A state created with the operator's passphrase (SOHOA_SIGNER_PASSPHRASE) keeps every
    private key encrypted with it, and the passphrase in no file of the state."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from pipeline.embedded.signer import keystore
    from pipeline.runtime.errors import ConfigurationError

    passphrase = b"operator passphrase 7f3a"
    assert keystore.init_state(tmp_path, passphrase)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and not [p for p in files if passphrase in p.read_bytes()]
    keys = sorted((tmp_path / "keys").glob("*.key.pem"))
    assert len(keys) == 7
    for key in keys:
        with pytest.raises(TypeError):  # encrypted: no key without the passphrase
            load_pem_private_key(key.read_bytes(), password=None)
        load_pem_private_key(key.read_bytes(), password=passphrase)
    with pytest.raises(ConfigurationError, match="passphrase"):
        keystore.load_state(tmp_path, b"wrong")
    assert keystore.load_state(tmp_path, passphrase).credentials
