"""The signer's PKI (hạ tầng khóa công khai) on Certomancer: CA hierarchy, certificates, CRLs,
OCSP and time-stamping, from the configuration ``pki.yml`` (shipped with this package).

Certomancer is a PKI *description* tool: it issues certificates from specs, and answers CRL,
OCSP and RFC 3161 requests from them. What it does not do, and this module does:

* generate keys (Certomancer only reads key files): :func:`create` makes them with
  ``cryptography`` and writes them encrypted (PKCS#8) with the signer's passphrase;
* fix the CA across restarts: the configuration has no validity (each certificate gets its
  ``sohoa.validity-days`` from the creation time) and Certomancer would sign new certificates
  each time it loads it; :func:`create` writes the issued certificates to the state and a copy
  of the configuration pointing at them (``certificate-file``), which :meth:`PKI.load` reads;
* revoke at run time: Certomancer reads revocations from the configuration, so
  :meth:`PKI.load` adds the state's ``revocations.json`` to the certificate specs;
* CRL numbers and times: Certomancer's repository CRLs follow a simulated schedule (a
  revocation shows only from the next period on); :meth:`PKI.crl` builds a CRL with
  Certomancer's ``CRLBuilder`` at the current time with the next number instead, its times
  in UTCTime as RFC 5280 wants (Certomancer writes GeneralizedTime).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp, tsp
from asn1crypto import x509 as asn1_x509
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig, PKIArchitecture, ServiceLabel
from certomancer.services import CRLBuilder, choose_signed_digest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline.embedded.signer.algorithms import PrivateKey
from pipeline.runtime.errors import ConfigurationError

ARCH = "sohoa"
CONFIG_NAME = "pki.yml"
#: TSA policy: an OID under the UUID arc 2.25 (ITU-T X.667), private to sohoa.
TSA_POLICY_OID = "2.25.261416123888890134342438790424440680757"
#: Clock skew tolerated by relying parties: certificates start slightly in the past.
BACKDATE = dt.timedelta(minutes=5)
CRL_VALIDITY = dt.timedelta(days=7)


def template() -> dict[str, Any]:
    """The shipped configuration (``pipeline/embedded/signer/pki.yml``)."""
    return yaml.safe_load((resources.files(__package__) / CONFIG_NAME).read_text(encoding="utf-8"))


def new_private_key(algorithm: str) -> PrivateKey:
    """A fresh key pair (cặp khóa): ``ec-p256``, ``ec-p384`` or ``rsa-3072``."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ConfigurationError(f"unknown key algorithm {algorithm!r} in {CONFIG_NAME}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def create(root: Path, passphrase: bytes, url_prefix: str, write) -> dict[str, Any]:
    """Generate the keys and issue the certificates of ``pki.yml`` into ``root``; returns the
    ``sohoa`` section (credentials). ``write(path, data)`` writes a state file (0600)."""
    cfg = template()
    own = cfg["sohoa"]
    cfg["external-url-prefix"] = url_prefix.rstrip("/")
    for label, algorithm in own["keys"].items():
        key = new_private_key(algorithm)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
        )
        write(root / cfg["keysets"][ARCH]["keys"][label]["path"], pem)
    certs = cfg["pki-architectures"][ARCH]["certs"]
    start = _now() - BACKDATE
    ends: dict[str, dt.datetime] = {}
    for label, spec in certs.items():  # issuers are declared before what they issue
        end = start + dt.timedelta(days=int(own["validity-days"][label]))
        if spec["issuer"] != label:
            end = min(end, ends[spec["issuer"]])  # never outlive the issuer
        ends[label] = end
        spec["validity"] = {"valid-from": start.isoformat(), "valid-to": end.isoformat()}
    arch = _config(cfg, root, passphrase).get_pki_arch(ArchLabel(ARCH))
    for label, spec in certs.items():
        write(root / "certs" / f"{label}.pem", _pem(arch.get_cert(CertLabel(label))))
        spec["certificate-file"] = f"certs/{label}.pem"
    write(root / CONFIG_NAME, yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False).encode("utf-8"))
    return own


def _config(cfg: dict[str, Any], root: Path, passphrase: bytes) -> CertomancerConfig:
    """Certomancer's view of ``cfg``, the keys decrypted with ``passphrase`` (given to a copy:
    the passphrase is never written with the configuration)."""
    cfg = copy.deepcopy(cfg)
    cfg["keysets"][ARCH]["default-password"] = passphrase.decode("utf-8")
    return CertomancerConfig(cfg, key_search_dir=str(root), config_search_dir=str(root))


def _pem(cert: asn1_x509.Certificate) -> bytes:
    return to_crypto(cert).public_bytes(serialization.Encoding.PEM)


def to_crypto(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


class _CRLBuilder(CRLBuilder):
    """Certomancer's CRL builder with RFC 5280 §5.1.2.4 times: UTCTime through 2049 (it writes
    GeneralizedTime, which strict relying parties refuse)."""

    def format_tbs_crl(self, crl_number, this_update, revoked_certs, next_update, distpoint=None) -> asn1_crl.TbsCertList:
        tbs = super().format_tbs_crl(crl_number, this_update, revoked_certs, next_update, distpoint)
        fields = [(tbs, "this_update"), (tbs, "next_update"), *((r, "revocation_date") for r in tbs["revoked_certificates"])]
        for holder, name in fields:
            when = holder[name].native
            if when.year < 2050:
                holder[name] = asn1_x509.Time({"utc_time": when})
        return asn1_crl.TbsCertList.load(tbs.dump(force=True))  # re-encoded: what is signed is what is sent


@dataclass(frozen=True)
class RevokedCert:
    """A revocation (thu hồi) of the certificate labelled ``label`` (a credential ID)."""

    label: str
    revoked_at: dt.datetime
    reason: str  # RFC 5280 reason name as asn1crypto spells it: key_compromise, superseded, ...


class PKI:
    """The state's Certomancer architecture, with its revocations."""

    def __init__(self, root: Path, passphrase: bytes, revoked: Iterable[RevokedCert] = ()):
        self.root = Path(root)
        cfg = yaml.safe_load((self.root / CONFIG_NAME).read_text(encoding="utf-8"))
        self.own: dict[str, Any] = cfg.pop("sohoa")
        specs = cfg["pki-architectures"][ARCH]["certs"]
        for rev in revoked:
            since = rev.revoked_at.replace(microsecond=0).isoformat()  # GeneralizedTime: no fractions
            specs[rev.label]["revocation"] = {"revoked-since": since, "reason": rev.reason}
        try:
            self.arch: PKIArchitecture = _config(cfg, self.root, passphrase).get_pki_arch(ArchLabel(ARCH))
            self.arch.key_set.get_private_key(self.arch.get_cert_spec(CertLabel("root")).subject_key)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"cannot load the signer's keys in {root}: wrong key passphrase? ({exc})") from exc

    @property
    def credential_ids(self) -> list[str]:
        return list(self.own["credentials"])

    def cert(self, label: str) -> x509.Certificate:
        return to_crypto(self.arch.get_cert(CertLabel(label)))

    def private_key(self, label: str) -> PrivateKey:
        key_label = self.arch.get_cert_spec(CertLabel(label)).subject_key
        der = self.arch.key_set.get_private_key(key_label).dump()
        return serialization.load_der_private_key(der, password=None)  # type: ignore[return-value]

    def chain(self, label: str) -> list[x509.Certificate]:
        """``label``'s certificate, then its issuers up to the root."""
        return [self.cert(label), *(self.cert(str(c)) for c in self.arch.get_chain(CertLabel(label)))]

    def crl(self, repo: str, number: int, *, now: dt.datetime | None = None) -> bytes:
        """A DER CRL of the repository ``repo`` (``root``, ``issuing``) as of now, with the
        revocations the specs carry, valid for :data:`CRL_VALIDITY`."""
        registry = self.arch.service_registry
        info = registry.get_crl_repo_info(ServiceLabel(repo))
        key = self.arch.key_set.get_asym_key(info.signing_key)
        issuer = self.arch.get_cert(info.resolve_issuer_cert(self.arch))
        now = now or _now()
        builder = _CRLBuilder(
            issuer_name=self.arch.entities[info.for_issuer],
            issuer_key=key.private,
            signature_algo=choose_signed_digest(info.digest_algo, key.public, info.signature_algo),
            authority_key_identifier=issuer.key_identifier_value,
        )
        revoked = list(self.arch.get_revoked_certs_at_time(now, info))
        crl = builder.build_crl(
            crl_number=number,
            this_update=now - dt.timedelta(seconds=1),
            next_update=now + CRL_VALIDITY,
            revoked_certs=revoked,
            distpoint=info.format_idp(self.arch.entities),
        )
        return crl.dump()

    def crl_repos(self) -> list[str]:
        return [str(info.label) for info in self.arch.service_registry.list_crl_repos()]

    def timestamp(self, request_der: bytes) -> bytes:
        """RFC 3161: a ``TimeStampResp`` for a DER ``TimeStampReq`` (Certomancer's TSA)."""
        try:
            request = tsp.TimeStampReq.load(request_der)
            request.native  # noqa: B018 - parse it all now: a malformed request is refused
        except (ValueError, TypeError) as exc:
            raise ValueError(f"malformed TimeStampReq: {exc}") from exc
        stamper = self.arch.service_registry.summon_timestamper(ServiceLabel("tsa"))
        stamper.policy = tsp.ObjectIdentifier(TSA_POLICY_OID)
        return stamper.request_tsa_response(request).dump()

    def ocsp(self, label: str, request_der: bytes) -> bytes:
        """An OCSP response (RFC 6960) of the responder ``label`` (Certomancer's)."""
        try:
            request = ocsp.OCSPRequest.load(request_der)
            request.native  # noqa: B018
        except (ValueError, TypeError):
            return ocsp.OCSPResponse({"response_status": "malformed_request"}).dump()
        responder = self.arch.service_registry.summon_responder(ServiceLabel(label), at_time=_now())
        return responder.build_ocsp_response(request).dump()
