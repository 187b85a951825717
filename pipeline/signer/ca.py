"""The service's own PKI (hạ tầng khóa công khai): root CA → issuing CA → end-entity certificates.

Everything is generated with ``cryptography``. Profiles follow RFC 5280:

* root CA (CA gốc): self-signed, ``basicConstraints CA:TRUE`` (critical), ``keyUsage
  keyCertSign, cRLSign`` (critical), subject key identifier;
* issuing CA (CA trung gian): ``CA:TRUE, pathlen:0``, same key usage, AKI/SKI and a CRL
  distribution point on the root's CRL;
* end entity (chứng thư số của đơn vị): ``CA:FALSE``, ``keyUsage digitalSignature,
  nonRepudiation`` (critical), ``extendedKeyUsage documentSigning`` (RFC 9336) and
  ``emailProtection``, AKI/SKI, CRL distribution point on the issuing CA's CRL;
* time-stamping unit (đơn vị cấp dấu thời gian): ``extendedKeyUsage timeStamping``
  (critical, RFC 3161 §2.3), ``keyUsage digitalSignature, nonRepudiation``.

CRLs (danh sách chứng thư bị thu hồi) are v2 with CRL number, AKI and per-entry reasons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from .algorithms import PrivateKey, PublicKey

KeyAlgorithm = Literal["ec-p256", "ec-p384", "rsa-3072"]

#: id-kp-documentSigning (RFC 9336).
EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

#: Clock skew tolerated by relying parties: certificates start slightly in the past.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SubjectInfo:
    """Distinguished name parts (tên phân biệt). Non-ASCII values are encoded as UTF8String."""

    common_name: str
    organization: str
    organizational_unit: str | None = None
    locality: str | None = None  # Tỉnh/Thành phố
    country: str = "VN"
    user_id: str | None = None  # UID, e.g. the credential id

    def name(self) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, self.country)]
        if self.locality:
            attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, self.locality))
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        if self.organizational_unit:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit))
        if self.user_id:
            attrs.append(x509.NameAttribute(NameOID.USER_ID, self.user_id))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name(attrs)


def new_private_key(algorithm: KeyAlgorithm) -> PrivateKey:
    """A fresh key pair (cặp khóa)."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unknown key algorithm {algorithm!r}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _crl_dp(url: str | None) -> list[x509.Extension]:
    if not url:
        return []
    dp = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
    )
    return [x509.Extension(x509.CRLDistributionPoints([dp]).oid, False, x509.CRLDistributionPoints([dp]))]


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    validity_days: int,
    not_after_cap: dt.datetime | None,
) -> x509.CertificateBuilder:
    start = _now() - BACKDATE
    end = start + dt.timedelta(days=validity_days)
    if not_after_cap is not None and end > not_after_cap:
        end = not_after_cap  # never outlive the issuer
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _aki(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def create_root_ca(key: PrivateKey, subject: SubjectInfo, *, validity_days: int = 20 * 365) -> x509.Certificate:
    """Self-signed root CA certificate (chứng thư CA gốc): the trust anchor of verification."""
    name = subject.name()
    builder = (
        _builder(name, name, key.public_key(), validity_days, None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
    )
    return builder.sign(key, _hash_for(key))


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signing_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_ca(
    subject: SubjectInfo,
    public_key: PublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    *,
    validity_days: int = 10 * 365,
    crl_url: str | None = None,
) -> x509.Certificate:
    """Subordinate (issuing) CA certificate, ``pathlen:0``."""
    builder = (
        _builder(subject.name(), issuer_cert.subject, public_key, validity_days, issuer_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_aki(issuer_cert), critical=False)
    )
    for ext in _crl_dp(crl_url):
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def issue_end_entity(
    subject: SubjectInfo,
    public_key: PublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    *,
    validity_days: int = 3 * 365,
    crl_url: str | None = None,
    ca_issuers_url: str | None = None,
) -> x509.Certificate:
    """Document-signing certificate of an issuing unit (chứng thư số ký số của cơ quan, tổ chức)."""
    builder = (
        _builder(subject.name(), issuer_cert.subject, public_key, validity_days, issuer_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([EKU_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(_aki(issuer_cert), critical=False)
    )
    for ext in _crl_dp(crl_url):
        builder = builder.add_extension(ext.value, critical=ext.critical)
    if ca_issuers_url:
        aia = x509.AuthorityInformationAccess(
            [x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url))]
        )
        builder = builder.add_extension(aia, critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def issue_tsa(
    subject: SubjectInfo,
    public_key: PublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    *,
    validity_days: int = 5 * 365,
    crl_url: str | None = None,
) -> x509.Certificate:
    """Time-stamping unit certificate: the only extended key usage is timeStamping, critical."""
    builder = (
        _builder(subject.name(), issuer_cert.subject, public_key, validity_days, issuer_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(_aki(issuer_cert), critical=False)
    )
    for ext in _crl_dp(crl_url):
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(issuer_key, _hash_for(issuer_key))


@dataclass(frozen=True)
class RevokedEntry:
    """One CRL entry: serial, revocation time and reason (lý do thu hồi)."""

    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Sequence[RevokedEntry],
    *,
    number: int,
    validity: dt.timedelta = dt.timedelta(days=7),
) -> x509.CertificateRevocationList:
    """A v2 CRL signed by ``issuer_key``, valid from now for ``validity``."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now - dt.timedelta(seconds=1))
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_aki(issuer_cert), critical=False)
    )
    for entry in revoked:
        item = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial_number)
            .revocation_date(entry.revoked_at)
        )
        if entry.reason != x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return builder.sign(issuer_key, _hash_for(issuer_key))


def describe_name(name: x509.Name) -> str:
    """Readable one-line form of a DN (Unicode kept), e.g. ``CN=Văn phòng Chính phủ,O=...``."""
    return name.rfc4514_string()


def organization_of(cert: x509.Certificate) -> str:
    """The organisation (tổ chức) a certificate names, or its common name."""
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        attrs = cert.subject.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return describe_name(cert.subject)
