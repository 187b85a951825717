"""Offline verification (kiểm tra chữ ký số) of signed records, signed PDFs and originals.

``verify_record_bytes`` checks, without any network: the stored bytes are the canonical JSON
that was signed; the signature value over the signing input. ``verify_pdf`` checks a PAdES
signature with pyHanko. For both, the signer's certificate is checked by one validator
(pyhanko-certvalidator: path to a trusted CA, signatures, validity, CA constraints and path
length, key usage, CRL signatures) and one revocation policy against the CRLs given
(:func:`_check_signer`; the policy is in the README, "Signature"). Each problem is a sentence
that names what is wrong — for a changed record, which top-level part (``/fields``, ...) changed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from pipeline.embedded.signer.algorithms import AlgorithmError, scheme_from_name, verify_digest
from pipeline.signing.sign import canonical_bytes, canonical_members, part_digests, signing_input
from pipeline.stages.pdfsource import outside_event_loop


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


#: Revocation reasons that reach back before any trusted time: the key (or a CA's key) may
#: have been in other hands since an unknown moment, so no signature it made is trusted.
COMPROMISE_REASONS = frozenset({"key_compromise", "ca_compromise", "aa_compromise"})


def _context(anchors: Sequence[Any], crls: Sequence[bytes], moment: datetime, intermediates: Sequence[Any] = ()):
    """The one validation context of records, PDFs and their time-stamps: the trusted CAs, the
    CRLs given (DER; nothing fetched), revocation checked strictly (``hard-fail``: every
    certificate naming a CRL distribution point needs a valid CRL signed by its issuer) as of
    ``moment``. No CRL given at all: revocation is not checked (``details['revocation']``)."""
    from pyhanko_certvalidator import ValidationContext  # deferred: loads pyhanko_certvalidator

    return ValidationContext(
        trust_roots=list(anchors),
        other_certs=list(intermediates),
        crls=list(crls),
        allow_fetching=False,
        revocation_mode="hard-fail" if crls else "none",
        moment=moment,
        retroactive_revinfo=True,  # a CRL issued after ``moment`` still speaks about it
    )


def _check_signer(
    cert, intermediates, anchors, crls, *, at: datetime, trusted_time: datetime | None, details: dict[str, Any]
) -> list[str]:
    """Problems with the signer certificate ``cert`` (asn1crypto), by pyhanko-certvalidator:
    path to ``anchors`` (signatures, validity, CA constraints, path length, key usage) and
    revocation at ``at``; then a revocation after ``at`` (see README, "Signature"): with no
    ``trusted_time`` any revocation invalidates; after a trusted time only a compromise does."""
    from pyhanko_certvalidator import CertificateValidator  # deferred: loads pyhanko_certvalidator
    from pyhanko_certvalidator.errors import (  # deferred: loads pyhanko_certvalidator
        PathBuildingError,
        RevokedError,
        ValidationError,
    )

    details["revocation"] = "checked against the CRLs given" if crls else "not checked: no CRL given"

    def validate(moment: datetime):
        ctx = _context(anchors, crls, moment, intermediates)
        validator = CertificateValidator(cert, intermediate_certs=list(intermediates), validation_context=ctx)
        return outside_event_loop(asyncio.run, validator.async_validate_usage({"digital_signature"}))

    try:
        path = validate(at)
    except (ValidationError, PathBuildingError) as exc:
        return [_describe(exc)]
    if not crls:
        return []
    # the latest moment the CRLs speak for every certificate of the path: now, or its first expiry
    horizon = min([datetime.now(UTC), *(c.not_valid_after - timedelta(seconds=1) for c in path)])
    if horizon <= at:
        return []
    try:
        validate(horizon)
    except RevokedError as exc:
        reason = getattr(exc.reason, "native", str(exc.reason))
        if trusted_time is not None and exc.revocation_dt > trusted_time and reason not in COMPROMISE_REASONS:
            details["revocation"] = f"revoked after the trusted time {trusted_time.isoformat()} ({reason}): still valid"
            return []
        return [_describe(exc)]
    except (ValidationError, PathBuildingError) as exc:
        return [_describe(exc)]
    return []


def _describe(exc: Exception) -> str:
    """A certvalidator failure as a sentence of the report."""
    from pyhanko_certvalidator.errors import (
        ExpiredError,
        InsufficientRevinfoError,
        InvalidCertificateError,
        NotYetValidError,
        PathBuildingError,
        RevokedError,
    )  # deferred: loads pyhanko_certvalidator

    if isinstance(exc, RevokedError):
        reason = getattr(exc.reason, "native", exc.reason)
        return f"certificate revoked (since {exc.revocation_dt.isoformat()}, reason {reason}): {exc}"
    if isinstance(exc, PathBuildingError):
        return f"the signer certificate does not chain to a trusted CA ({exc})"
    if isinstance(exc, (ExpiredError, NotYetValidError)):
        return f"certificate not valid at the signing time: {exc}"
    if isinstance(exc, InsufficientRevinfoError):
        return f"revocation status unknown (no valid CRL signed by the issuer among those given): {exc}"
    if isinstance(exc, InvalidCertificateError):
        return f"the signer certificate is not usable for signatures: {exc}"
    return f"the signer certificate does not chain to a trusted CA (certificate path invalid): {exc}"


def _asn1_certs(certs: Sequence[x509.Certificate]) -> list[Any]:
    return [asn1_x509.Certificate.load(c.public_bytes(_der())) for c in certs]


def _crl_ders(crls: Sequence[x509.CertificateRevocationList]) -> list[bytes]:
    return [c.public_bytes(_der()) for c in crls]


def verify_record(record: dict[str, Any], anchors: list[x509.Certificate], crls=()) -> VerificationReport:
    """A record signature has no trusted time of its own (``signed_at`` is the signer's word):
    its certificate is checked at ``signed_at`` and any revocation, whenever, invalidates it."""
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
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        at = datetime.now(UTC)
        report.problems.append("signing time missing or malformed")
    certs = _asn1_certs(chain)
    report.problems.extend(
        _check_signer(
            certs[0], certs[1:], _asn1_certs(anchors), _crl_ders(crls), at=at, trusted_time=None, details=report.details
        )
    )
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


def verify_pdf(
    pdf: bytes, record: dict[str, Any] | None, anchors: Sequence[bytes], crls: Sequence[bytes] = ()
) -> VerificationReport:
    """PAdES signature of a searchable PDF: integrity, its hash in the record, and its
    certificate by the same validator and policy as a record's (:func:`_check_signer`), checked
    at the time-stamp's time (B-T) — or, without a valid time-stamp, at the signer's own time
    with no trusted time, like a record."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # deferred: loads pyhanko, pyhanko_certvalidator
    from pyhanko.sign.validation import validate_pdf_signature  # deferred: loads pyhanko, pyhanko_certvalidator
    from pyhanko.sign.validation.generic_cms import (
        extract_tst_data_iter,  # deferred: loads pyhanko, pyhanko_certvalidator
    )

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
    roots = _asn1_certs(load_certificates(anchors))
    crl_ders = _crl_ders(load_crls(crls))
    for emb in sigs:
        name = emb.field_name
        try:
            tst = next(extract_tst_data_iter(emb.signer_info, signed=False), None)
            ts_time = tst["encap_content_info"]["content"].parsed["gen_time"].native if tst is not None else None
            at = ts_time or emb.self_reported_timestamp or datetime.now(UTC)
            status = outside_event_loop(validate_pdf_signature, emb, signer_validation_context=_context(roots, crl_ders, at))
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"PDF signature '{name}' could not be validated: {exc}")
            continue
        report.signer = status.signing_cert.subject.human_friendly
        report.signed_at = str(ts_time or status.signer_reported_dt or "")
        report.details["coverage"] = str(status.coverage)
        tsv = status.timestamp_validity
        report.details["timestamped"] = tsv is not None
        trusted_time = ts_time if tsv is not None and tsv.intact and tsv.valid and tsv.trusted else None
        if tsv is not None and trusted_time is None:
            report.problems.append(f"PDF signature '{name}': its time-stamp is not valid or not trusted")
        if not status.intact or not status.valid:
            report.problems.append(f"PDF signature '{name}' does not match the document (bytes changed)")
        problems = _check_signer(
            status.signing_cert, emb.other_embedded_certs, roots, crl_ders,
            at=at, trusted_time=trusted_time, details=report.details,
        )
        report.problems.extend(f"PDF signature '{name}': {p}" for p in problems)
        if not problems and not status.trusted:
            report.problems.append(f"PDF signature '{name}' does not chain to a trusted CA")
        if status.coverage.name != "ENTIRE_FILE":
            report.problems.append(f"PDF signature '{name}' does not cover the whole file (bytes added after signing)")
    report.ok = not report.problems
    return report


def _der():
    return Encoding.DER
