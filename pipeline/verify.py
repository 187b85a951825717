"""Offline verification (kiểm tra chữ ký số) of signed records, signed PDFs and originals.

``verify_record_bytes`` checks, without any network: the stored bytes are the canonical JSON
that was signed; the signature value over the signing input; the certificate chain from the
signer to a trusted CA (signatures, validity at signing time, key usage, CA constraints);
revocation against the CRLs given. Each problem is a sentence that names what is wrong —
for a changed record, which top-level part (``/fields``, ``/text``, ...) changed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from .sign import canonical_bytes, canonical_members, part_digests, signing_input
from .signer.algorithms import AlgorithmError, scheme_from_name, verify_digest


@dataclass
class VerificationReport:
    ok: bool
    what: str
    signer: str | None = None
    signed_at: str | None = None
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def load_certificates(blobs: Sequence[bytes]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for blob in blobs:
        if b"-----BEGIN" in blob:
            certs.extend(x509.load_pem_x509_certificates(blob))
        else:
            certs.append(x509.load_der_x509_certificate(blob))
    return certs


def load_crls(blobs: Sequence[bytes]) -> list[x509.CertificateRevocationList]:
    out = []
    for blob in blobs:
        out.append(x509.load_pem_x509_crl(blob) if b"-----BEGIN" in blob else x509.load_der_x509_crl(blob))
    return out


def check_chain(
    chain: list[x509.Certificate],
    anchors: list[x509.Certificate],
    at: datetime,
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> list[str]:
    """Problems with ``chain`` (signer first) up to one of ``anchors`` at time ``at``."""
    problems: list[str] = []
    if not chain:
        return ["the signature carries no certificate"]
    anchor_fps = {a.fingerprint(a.signature_hash_algorithm or _sha256()) for a in anchors}
    pool = list(chain[1:]) + list(anchors)
    current = chain[0]
    leaf = current
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            problems.append("the signer certificate's key usage does not allow signatures")
    except x509.ExtensionNotFound:
        problems.append("the signer certificate has no key usage extension")
    for depth in range(8):
        if not (current.not_valid_before_utc <= at <= current.not_valid_after_utc):
            problems.append(
                f"certificate '{current.subject.rfc4514_string()}' was not valid at {at.isoformat()} "
                f"(valid {current.not_valid_before_utc.date()} – {current.not_valid_after_utc.date()})"
            )
        for crl in crls:
            if crl.issuer == current.issuer:
                revoked = crl.get_revoked_certificate_by_serial_number(current.serial_number)
                if revoked is not None and revoked.revocation_date_utc <= max(at, revoked.revocation_date_utc):
                    problems.append(
                        f"certificate '{current.subject.rfc4514_string()}' is revoked "
                        f"(since {revoked.revocation_date_utc.isoformat()})"
                    )
        if current.fingerprint(current.signature_hash_algorithm or _sha256()) in anchor_fps:
            return problems
        issuer = next((c for c in pool if c.subject == current.issuer and c is not current), None)
        if issuer is None:
            problems.append(f"no trusted CA issued '{current.subject.rfc4514_string()}' (issuer '{current.issuer.rfc4514_string()}')")
            return problems
        try:
            current.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError) as exc:
            problems.append(
                f"certificate '{current.subject.rfc4514_string()}' does not chain to a trusted CA "
                f"(its signature does not verify under '{issuer.subject.rfc4514_string()}')"
            )
            return problems
        try:
            bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
            if not bc.ca:
                problems.append(f"issuer '{issuer.subject.rfc4514_string()}' is not a CA")
        except x509.ExtensionNotFound:
            problems.append(f"issuer '{issuer.subject.rfc4514_string()}' has no basic constraints")
        current = issuer
    problems.append("certificate chain too long")
    return problems


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def verify_record(record: dict[str, Any], anchors: list[x509.Certificate], crls=()) -> VerificationReport:
    report = VerificationReport(ok=False, what="record")
    sig = record.get("signature")
    if not isinstance(sig, dict) or not sig.get("value"):
        report.problems.append("the record is not signed")
        return report
    report.signer = sig.get("signer")
    report.signed_at = sig.get("signed_at")
    parts = sig.get("parts") or {}
    members = canonical_members(record)
    digests = part_digests(record, members)
    changed = [p for p, h in digests.items() if parts.get(p) != h]
    missing = [p for p in parts if p not in digests]
    if changed or missing:
        report.problems.append("record changed after signing: " + ", ".join(sorted(changed + missing)))
    digest = hashlib.sha256(signing_input(record, members)).digest()
    if sig.get("digest") and sig["digest"] != digest.hex() and not changed:
        report.problems.append("record changed after signing: signature block")
    try:
        chain = load_certificates([base64.b64decode(c) for c in sig.get("certificate_chain") or []])
    except Exception as exc:  # noqa: BLE001
        report.problems.append(f"certificate chain unreadable: {exc}")
        return report
    if not chain:
        report.problems.append("the signature carries no certificate")
        return report
    try:
        scheme = scheme_from_name(sig.get("algorithm", ""))
        verify_digest(chain[0].public_key(), base64.b64decode(sig["value"]), digest, scheme)  # type: ignore[arg-type]
    except InvalidSignature:
        report.problems.append("signature value does not match the record (signature invalid)")
    except (AlgorithmError, ValueError) as exc:
        report.problems.append(f"signature unusable: {exc}")
    try:
        at = datetime.fromisoformat(sig.get("signed_at") or "")
    except ValueError:
        at = datetime.now(timezone.utc)
        report.problems.append("signing time missing or malformed")
    report.problems.extend(check_chain(chain, anchors, at, crls))
    report.details["certificate"] = chain[0].subject.rfc4514_string()
    report.ok = not report.problems
    return report


def verify_record_bytes(data: bytes, anchors: Sequence[bytes], crls: Sequence[bytes] = ()) -> VerificationReport:
    """Verify a stored record exactly as stored (its bytes must be the canonical JSON)."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return VerificationReport(ok=False, what="record", problems=[f"record is not valid UTF-8 JSON: {exc}"])
    report = verify_record(record, load_certificates(anchors), load_crls(crls))
    if canonical_bytes(record) != data:
        report.problems.insert(0, "record bytes differ from their canonical form (RFC 8785): the stored file was edited")
        report.ok = False
    return report


def verify_original(original: bytes, record: dict[str, Any]) -> VerificationReport:
    """The original file must hash to the record's document id (provenance.source_sha256)."""
    report = VerificationReport(ok=True, what="original")
    actual = hashlib.sha256(original).hexdigest()
    expected = record.get("provenance", {}).get("source_sha256") or record.get("document_id")
    if actual != expected:
        report.ok = False
        report.problems.append(f"original file changed: SHA-256 {actual[:16]}… ≠ signed {str(expected)[:16]}…")
    return report


def verify_pdf(pdf: bytes, record: dict[str, Any] | None, anchors: Sequence[bytes]) -> VerificationReport:
    """PAdES signature of a searchable PDF: integrity, chain to a trusted CA, and its hash in the record."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from asn1crypto import x509 as asn1_x509

    report = VerificationReport(ok=False, what="pdf")
    if record is not None:
        expected = (record.get("provenance") or {}).get("searchable_pdf_sha256")
        actual = hashlib.sha256(pdf).hexdigest()
        if expected and actual != expected:
            report.problems.append(f"searchable PDF changed: SHA-256 {actual[:16]}… ≠ signed {expected[:16]}…")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001
        report.problems.append(f"PDF unreadable: {exc}")
        return report
    if not sigs:
        report.problems.append("the PDF carries no signature")
        return report
    roots = [asn1_x509.Certificate.load(c.public_bytes(_der())) for c in load_certificates(anchors)]
    vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    for emb in sigs:
        try:
            status = validate_pdf_signature(emb, vc)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"PDF signature '{emb.field_name}' could not be validated: {exc}")
            continue
        report.signer = status.signing_cert.subject.human_friendly
        report.signed_at = str(status.signer_reported_dt or "")
        report.details["coverage"] = str(status.coverage)
        report.details["timestamped"] = status.timestamp_validity is not None
        if not status.intact or not status.valid:
            report.problems.append(f"PDF signature '{emb.field_name}' does not match the document (bytes changed)")
        elif not status.trusted:
            report.problems.append(f"PDF signature '{emb.field_name}' does not chain to a trusted CA")
        if status.coverage.name != "ENTIRE_FILE":
            report.problems.append(f"PDF signature '{emb.field_name}' does not cover the whole file (bytes added after signing)")
    report.ok = not report.problems
    return report


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER
