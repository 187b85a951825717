"""A small RFC 3161 time-stamping authority (đơn vị cấp dấu thời gian) for PAdES B-T.

Answers ``TimeStampReq`` (``application/timestamp-query``) with a ``TimeStampResp`` whose token
is a CMS SignedData over a ``TSTInfo``, signed with the TSA key (ECDSA or RSA) and carrying
the ESS ``signingCertificateV2`` attribute (RFC 5816). The TSA certificate has the critical
``timeStamping`` extended key usage and chains to the service's CA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .algorithms import PrivateKey

#: TSA policy: an OID under the UUID arc 2.25 (ITU-T X.667), private to sohoa.
TSA_POLICY_OID = "2.25.261416123888890134342438790424440680757"

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_DIGEST_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _attr(name: str, value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": cms.CMSAttributeType(name), "values": (value,)})


class TimeStampAuthority:
    """Signs time-stamp tokens with ``key``; ``chain`` (issuing CA, root) is embedded on request."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey, chain: list[x509.Certificate], *, policy: str = TSA_POLICY_OID):
        self.cert = _asn1(cert)
        self.key = key
        self.chain = [_asn1(c) for c in chain]
        self.policy = policy

    @staticmethod
    def _reject(fail_info: str, text: str) -> bytes:
        status = tsp.PKIStatusInfo(
            {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({fail_info})}
        )
        return tsp.TimeStampResp({"status": status}).dump()

    def respond(self, request_der: bytes, *, now: dt.datetime | None = None) -> bytes:
        """DER ``TimeStampResp`` for a DER ``TimeStampReq`` (a rejection when it is malformed)."""
        try:
            req = tsp.TimeStampReq.load(request_der)
            imprint = req["message_imprint"]
            md = imprint["hash_algorithm"]["algorithm"].native
            hashed = imprint["hashed_message"].native
            _ = req["nonce"].native
        except Exception:  # noqa: BLE001 - anything unparsable is a bad request
            return self._reject("bad_data_format", "malformed TimeStampReq")
        if md not in _HASHES:
            return self._reject("bad_alg", f"unsupported hash algorithm {md}")
        if len(hashed) != _DIGEST_LEN[md]:
            return self._reject("bad_data_format", "hashedMessage length does not match its algorithm")
        if req["req_policy"].native not in (None, self.policy):
            return self._reject("unaccepted_policy", "unknown policy")

        gen_time = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
        info = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": imprint,
            "serial_number": int.from_bytes(secrets.token_bytes(15), "big") | 1,
            "gen_time": gen_time,
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.cert.subject),
        }
        if req["nonce"].native is not None:
            info["nonce"] = req["nonce"]
        tst_info_der = tsp.TSTInfo(info).dump()

        sig_md = "sha256"
        signed_attrs = cms.CMSAttributes(
            [
                _attr("content_type", "tst_info"),
                _attr("signing_time", cms.Time({"utc_time": core.UTCTime(gen_time)})),
                _attr("message_digest", hashlib.sha256(tst_info_der).digest()),
                _attr("signing_certificate_v2", _signing_certificate_v2(self.cert)),
            ]
        )
        to_sign = signed_attrs.dump()
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            signature = self.key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
            sig_alg = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
        elif isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
            sig_alg = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
        else:  # pragma: no cover - keys come from ca.new_private_key
            raise TypeError("unsupported TSA key type")

        digest_alg = algos.DigestAlgorithm({"algorithm": sig_md})
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": self.cert.issuer, "serial_number": self.cert.serial_number}
                        )
                    }
                ),
                "digest_algorithm": digest_alg,
                "signed_attrs": signed_attrs,
                "signature_algorithm": sig_alg,
                "signature": signature,
            }
        )
        content = {
            "version": "v3",
            "digest_algorithms": [digest_alg],
            "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(tst_info_der)},
            "signer_infos": [signer_info],
        }
        if req["cert_req"].native:
            content["certificates"] = [cms.CertificateChoices({"certificate": c}) for c in (self.cert, *self.chain)]
        signed_data = cms.SignedData(content)
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


def _signing_certificate_v2(cert: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "cert_hash": hashlib.sha256(cert.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": cert.issuer})],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )
