"""Revocation and chain policy of `sohoa verify` (README, "Signature"): records and PAdES PDFs are
checked by one validator (pyhanko-certvalidator) with the CRLs, on the real embedded signer and CA.

* a record signature has no trusted time: any revocation of its certificate invalidates it;
* a PDF signature time-stamped (B-T) before a revocation stays valid, unless the reason is a
  compromise (keyCompromise, cACompromise);
* a CRL not signed by its issuer is rejected, never believed; a chain breaking a CA's path
  length constraint is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from PIL import Image

from pipeline.embedded.signer import keystore
from pipeline.embedded.signer.admin import revoke
from pipeline.embedded.signer.algorithms import ALGORITHM_NAMES
from pipeline.embedded.signer.embedded import start_embedded_signer
from pipeline.embedded.signer.pki import PKI
from pipeline.signing.sign import assemble, canonical_bytes, canonical_members, part_digests, signing_input
from pipeline.signing.verify import verify_pdf, verify_record_bytes
from test_signer import _record  # noqa: E402 - the same record the signer's own tests sign


def _tiny_pdf() -> bytes:
    from pipeline.stages.pdf import build_searchable_pdf

    buf = io.BytesIO()
    Image.new("RGB", (170, 220), "white").save(buf, "JPEG")
    return build_searchable_pdf([(buf.getvalue(), 170, 220, 100, b"")], title="t", producer="sohoa test")


def _trust(state: Path) -> tuple[list[bytes], list[bytes]]:
    """The trusted CA and the signer's current CRLs (root and issuing CA), as `sohoa verify` reads them."""
    cadir = state / "ca"
    return [(cadir / "ca.pem").read_bytes()], [(cadir / "root.crl").read_bytes(), (cadir / "issuing.crl").read_bytes()]


def _pki(state: Path) -> PKI:
    """The signer's PKI as its state holds it (keys decrypted with the generated passphrase)."""
    return PKI(state, keystore.resolve_passphrase(state, None))


def _forged_crl(issuer: x509.Certificate, key, revoked: list[x509.Certificate], number: int) -> bytes:
    """A CRL naming ``issuer`` as its issuer, signed by ``key`` (someone else's)."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for cert in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(cert.not_valid_before_utc)
        entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def _issue(name: str, key, issuer: x509.Certificate, issuer_key, *, ca: bool) -> x509.Certificate:
    """A certificate for ``key`` issued by ``issuer``: a CA (no path length) or a signer."""
    now = dt.datetime.now(dt.UTC)
    usage = dict(digital_signature=not ca, content_commitment=not ca, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _signed_record_and_pdf(signer) -> tuple[bytes, bytes]:
    from pipeline.signing.sign import RemoteSigner

    client = RemoteSigner(signer.settings)
    try:
        data = canonical_bytes(client.sign_record(_record()))
        pdf = client.sign_pdf(_tiny_pdf(), signer_name="Ủy ban nhân dân", reason="Bản sao điện tử", location="Hà Nội")
    finally:
        client.close()
    return data, pdf


def test_a_credential_revoked_for_key_compromise_fails_its_record_and_its_pdf(tmp_path):
    state = tmp_path / "signer"
    with start_embedded_signer(state) as signer:
        data, pdf = _signed_record_and_pdf(signer)
        anchors, crls = _trust(state)
        assert verify_record_bytes(data, anchors, crls).ok
        before = verify_pdf(pdf, None, anchors, crls)
        assert before.ok and before.details["timestamped"], before.problems

        time.sleep(1.1)  # revoked strictly after the time-stamp: only the reason can invalidate the PDF
        revoke(state, signer.settings.credential_id, reason="key_compromise")
        anchors, crls = _trust(state)

        record_report = verify_record_bytes(data, anchors, crls)
        assert not record_report.ok
        assert any("revoked" in p and "key_compromise" in p for p in record_report.problems), record_report.problems
        pdf_report = verify_pdf(pdf, None, anchors, crls)
        assert not pdf_report.ok
        assert any("revoked" in p and "key_compromise" in p for p in pdf_report.problems), pdf_report.problems


def test_a_revocation_after_the_time_stamp_keeps_the_pdf_but_not_the_record(tmp_path):
    """Superseded (no compromise) after the PDF's trusted time-stamp: the B-T PDF signature
    stays valid; the record signature, which has no trusted time, does not."""
    state = tmp_path / "signer"
    with start_embedded_signer(state) as signer:
        data, pdf = _signed_record_and_pdf(signer)
        time.sleep(1.1)
        revoke(state, signer.settings.credential_id, reason="superseded")
        anchors, crls = _trust(state)

        record_report = verify_record_bytes(data, anchors, crls)
        assert not record_report.ok
        assert any("revoked" in p and "superseded" in p for p in record_report.problems), record_report.problems
        pdf_report = verify_pdf(pdf, None, anchors, crls)
        assert pdf_report.ok, pdf_report.problems
        assert "revoked after the trusted time" in pdf_report.details["revocation"]


def test_a_forged_crl_is_rejected_not_believed(tmp_path):
    """A CRL with the issuing CA's name but signed by another key says nothing: it neither hides
    a revocation nor revokes a good certificate."""
    state = tmp_path / "signer"
    with start_embedded_signer(state) as signer:
        data, _ = _signed_record_and_pdf(signer)
    pki = _pki(state)
    issuing_cert = pki.cert("issuing")
    forger = ec.generate_private_key(ec.SECP256R1())
    anchors, crls = _trust(state)
    root_crl, real_issuing_crl = crls
    signer_cert = pki.cert(signer.settings.credential_id)

    # a forged CRL revoking a good certificate is not believed
    forged_revoking = _forged_crl(issuing_cert, forger, [signer_cert], number=99)
    report = verify_record_bytes(data, anchors, [root_crl, forged_revoking])
    assert not report.ok
    assert not any("revoked" in p for p in report.problems), report.problems
    assert any("revocation status unknown" in p for p in report.problems), report.problems
    assert verify_record_bytes(data, anchors, [root_crl, real_issuing_crl, forged_revoking]).ok

    # a forged empty CRL does not hide a real revocation
    revoke(state, signer.settings.credential_id, reason="key_compromise", passphrase=None)
    anchors, (root_crl, real_issuing_crl) = _trust(state)
    forged_empty = _forged_crl(issuing_cert, forger, [], number=100)
    report = verify_record_bytes(data, anchors, [root_crl, forged_empty])
    assert not report.ok and any("revocation status unknown" in p for p in report.problems), report.problems
    report = verify_record_bytes(data, anchors, [root_crl, forged_empty, real_issuing_crl])
    assert not report.ok and any("revoked" in p for p in report.problems), report.problems


def _sign_record_with(record: dict, key, chain) -> bytes:
    """A record signed exactly as :meth:`RemoteSigner.sign_record_bytes` does, by a local key."""
    signed = dict(record)
    signed.pop("signature", None)
    members = canonical_members(signed)
    signed["signature"] = {
        "format": "sohoa-jcs-detached/1",
        "canonicalization": "RFC 8785",
        "digest_algorithm": "sha256",
        "algorithm": ALGORITHM_NAMES[("ecdsa", "sha256")],
        "signer": chain[0].subject.rfc4514_string(),
        "signed_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "certificate_chain": [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain],
        "parts": part_digests(signed, members),
    }
    digest = hashlib.sha256(signing_input(signed, members)).digest()
    signed["signature"]["digest"] = digest.hex()
    signed["signature"]["value"] = base64.b64encode(key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))).decode()
    return assemble({**members, "signature": canonical_bytes(signed["signature"])})


def test_a_chain_breaking_the_issuing_cas_path_length_is_refused(tmp_path):
    """The issuing CA is `pathlen:0`: a CA certificate it issues cannot issue certificates that verify."""
    state = tmp_path / "signer"
    with start_embedded_signer(state):
        pass
    pki = _pki(state)
    issuing_cert, issuing_key = pki.cert("issuing"), pki.private_key("issuing")
    anchors, crls = _trust(state)

    # control: an end entity issued by the issuing CA itself verifies
    ee_key = ec.generate_private_key(ec.SECP256R1())
    ee = _issue("Đơn vị thử", ee_key, issuing_cert, issuing_key, ca=False)
    report = verify_record_bytes(_sign_record_with(_record(), ee_key, [ee, issuing_cert]), anchors, crls)
    assert report.ok, report.problems

    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub_ca = _issue("CA con của kẻ giả mạo", sub_key, issuing_cert, issuing_key, ca=True)
    ee_key = ec.generate_private_key(ec.SECP256R1())
    ee = _issue("Đơn vị thử", ee_key, sub_ca, sub_key, ca=False)
    report = verify_record_bytes(_sign_record_with(_record(), ee_key, [ee, sub_ca, issuing_cert]), anchors, crls)
    assert not report.ok
    assert any("path" in p.lower() and "length" in p.lower() for p in report.problems), report.problems
