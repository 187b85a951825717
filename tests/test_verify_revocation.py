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
import hashlib
import io
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image

from pipeline.sign import assemble, canonical_bytes, canonical_members, part_digests, signing_input
from pipeline.signer import ca, keystore
from pipeline.signer.admin import revoke
from pipeline.signer.algorithms import ALGORITHM_NAMES
from pipeline.signer.embedded import start_embedded_signer
from pipeline.verify import verify_pdf, verify_record_bytes


from test_signer import _record  # noqa: E402 - the same record the signer's own tests sign


def _tiny_pdf() -> bytes:
    from pipeline.pdf import build_searchable_pdf

    buf = io.BytesIO()
    Image.new("RGB", (170, 220), "white").save(buf, "JPEG")
    return build_searchable_pdf([(buf.getvalue(), 170, 220, 100, b"")], title="t", producer="sohoa test")


def _trust(state: Path) -> tuple[list[bytes], list[bytes]]:
    """The trusted CA and the signer's current CRLs (root and issuing CA), as `sohoa verify` reads them."""
    cadir = state / "ca"
    return [(cadir / "ca.pem").read_bytes()], [(cadir / "root.crl").read_bytes(), (cadir / "issuing.crl").read_bytes()]


def _signed_record_and_pdf(signer) -> tuple[bytes, bytes]:
    from pipeline.sign import RemoteSigner

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
    layout = keystore.StateLayout(state)
    issuing_cert = keystore.read_cert(layout.issuing_cert)
    forger = ca.new_private_key("ec-p256")
    anchors, crls = _trust(state)
    root_crl, real_issuing_crl = crls
    signer_cert = keystore.read_cert(layout.credential_dir(signer.settings.credential_id) / "cert.pem")

    # a forged CRL revoking a good certificate is not believed
    entry = ca.RevokedEntry(signer_cert.serial_number, signer_cert.not_valid_before_utc, x509.ReasonFlags.key_compromise)
    forged_revoking = ca.build_crl(issuing_cert, forger, [entry], number=99).public_bytes(Encoding.DER)
    report = verify_record_bytes(data, anchors, [root_crl, forged_revoking])
    assert not report.ok
    assert not any("revoked" in p for p in report.problems), report.problems
    assert any("revocation status unknown" in p for p in report.problems), report.problems
    assert verify_record_bytes(data, anchors, [root_crl, real_issuing_crl, forged_revoking]).ok

    # a forged empty CRL does not hide a real revocation
    revoke(state, signer.settings.credential_id, reason="key_compromise", passphrase=None)
    anchors, (root_crl, real_issuing_crl) = _trust(state)
    forged_empty = ca.build_crl(issuing_cert, forger, [], number=100).public_bytes(Encoding.DER)
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
    layout = keystore.StateLayout(state)
    issuing_cert = keystore.read_cert(layout.issuing_cert)
    issuing_key = keystore.read_private_key(layout.issuing_key, keystore.resolve_passphrase(state, None))
    anchors, crls = _trust(state)
    unit = ca.SubjectInfo(common_name="Đơn vị thử", organization="Đơn vị thử")

    # control: an end entity issued by the issuing CA itself verifies
    ee_key = ca.new_private_key("ec-p256")
    ee = ca.issue_end_entity(unit, ee_key.public_key(), issuing_cert, issuing_key)
    report = verify_record_bytes(_sign_record_with(_record(), ee_key, [ee, issuing_cert]), anchors, crls)
    assert report.ok, report.problems

    sub_key = ca.new_private_key("ec-p256")
    sub_ca = ca.issue_ca(ca.SubjectInfo(common_name="CA con", organization="Kẻ giả mạo"), sub_key.public_key(), issuing_cert, issuing_key)
    ee_key = ca.new_private_key("ec-p256")
    ee = ca.issue_end_entity(unit, ee_key.public_key(), sub_ca, sub_key)
    report = verify_record_bytes(_sign_record_with(_record(), ee_key, [ee, sub_ca, issuing_cert]), anchors, crls)
    assert not report.ok
    assert any("path" in p.lower() and "length" in p.lower() for p in report.problems), report.problems
