"""Signature algorithms (thuật toán ký): OIDs, CSC ``signAlgo`` resolution, raw sign and verify.

Shared by the service (which signs pre-computed hashes) and the client/verifier (which pick
the algorithm for a key and check signature values). Only what the sohoa PKI issues is
supported: ECDSA on P-256/P-384 and RSA (PKCS#1 v1.5 or RSASSA-PSS) with SHA-2.
ECDSA signature values are DER-encoded ``ECDSA-Sig-Value`` (what CMS/PAdES expects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: Digest algorithms: name -> (OID, cryptography hash class, digest length).
HASHES: dict[str, tuple[str, type[hashes.HashAlgorithm], int]] = {
    "sha256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256, 32),
    "sha384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384, 48),
    "sha512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512, 64),
}
HASH_BY_OID = {oid: name for name, (oid, _, _) in HASHES.items()}

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_P256 = "1.2.840.10045.3.1.7"
OID_P384 = "1.3.132.0.34"

ECDSA_OIDS = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3", "sha512": "1.2.840.10045.4.3.4"}
RSA_PKCS1_OIDS = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12", "sha512": "1.2.840.113549.1.1.13"}

#: Padding families: ECDSA, RSASSA-PKCS1-v1_5, RSASSA-PSS.
Family = Literal["ecdsa", "pkcs1", "pss"]

#: Names used in a record's ``signature.algorithm`` (and what they mean).
ALGORITHM_NAMES: dict[tuple[Family, str], str] = {
    ("ecdsa", "sha256"): "ecdsa-with-SHA256",
    ("ecdsa", "sha384"): "ecdsa-with-SHA384",
    ("ecdsa", "sha512"): "ecdsa-with-SHA512",
    ("pkcs1", "sha256"): "sha256WithRSAEncryption",
    ("pkcs1", "sha384"): "sha384WithRSAEncryption",
    ("pkcs1", "sha512"): "sha512WithRSAEncryption",
    ("pss", "sha256"): "RSASSA-PSS-SHA256",
    ("pss", "sha384"): "RSASSA-PSS-SHA384",
    ("pss", "sha512"): "RSASSA-PSS-SHA512",
}
SCHEME_BY_NAME = {v: k for k, v in ALGORITHM_NAMES.items()}


class AlgorithmError(ValueError):
    """An algorithm, its parameters or a hash value that this module does not accept."""


@dataclass(frozen=True)
class SignatureScheme:
    """How a hash is turned into a signature value: padding family, digest, PSS salt length."""

    family: Family
    hash_name: str  # "sha256" | "sha384" | "sha512"
    salt_length: int | None = None  # PSS only; MGF1 uses the same digest

    @property
    def name(self) -> str:
        return ALGORITHM_NAMES[(self.family, self.hash_name)]

    @property
    def hash_oid(self) -> str:
        return HASHES[self.hash_name][0]

    @property
    def digest_size(self) -> int:
        return HASHES[self.hash_name][2]

    @property
    def sign_algo_oid(self) -> str:
        """The CSC ``signAlgo`` this client sends."""
        if self.family == "ecdsa":
            return ECDSA_OIDS[self.hash_name]
        if self.family == "pkcs1":
            return RSA_PKCS1_OIDS[self.hash_name]
        return OID_RSASSA_PSS

    def sign_algo_params(self) -> bytes | None:
        """DER ``RSASSA-PSS-params`` for PSS (CSC ``signAlgoParams``), else None."""
        if self.family != "pss":
            return None
        return pss_params(self.hash_name, self.salt_length or self.digest_size).dump()

    def _hash(self) -> hashes.HashAlgorithm:
        return HASHES[self.hash_name][1]()

    def _padding(self) -> padding.AsymmetricPadding:
        if self.family == "pkcs1":
            return padding.PKCS1v15()
        return padding.PSS(mgf=padding.MGF1(self._hash()), salt_length=self.salt_length or self.digest_size)


def pss_params(hash_name: str, salt_length: int) -> algos.RSASSAPSSParams:
    digest = algos.DigestAlgorithm({"algorithm": hash_name})
    return algos.RSASSAPSSParams(
        {
            "hash_algorithm": digest,
            "mask_gen_algorithm": algos.MaskGenAlgorithm({"algorithm": "mgf1", "parameters": digest}),
            "salt_length": salt_length,
            "trailer_field": "trailer_field_bc",
        }
    )


def key_family(key: PrivateKey | PublicKey) -> Literal["ec", "rsa"]:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    raise AlgorithmError(f"unsupported key type {type(key).__name__}")


def default_scheme(key: PrivateKey | PublicKey) -> SignatureScheme:
    """The scheme sohoa uses for a key: ECDSA-SHA256, or RSASSA-PSS-SHA256 (salt 32) for RSA."""
    if key_family(key) == "ec":
        return SignatureScheme("ecdsa", "sha256")
    return SignatureScheme("pss", "sha256", 32)


def supported_sign_algos(key: PrivateKey | PublicKey) -> list[str]:
    """``key.algo`` of credentials/info: the signAlgo OIDs the service accepts for this key."""
    if key_family(key) == "ec":
        return [OID_EC_PUBLIC_KEY, *ECDSA_OIDS.values()]
    return [OID_RSA_ENCRYPTION, *RSA_PKCS1_OIDS.values(), OID_RSASSA_PSS]


def resolve_scheme(
    key: PrivateKey | PublicKey,
    sign_algo: str,
    hash_algo_oid: str | None = None,
    sign_algo_params: bytes | None = None,
) -> SignatureScheme:
    """Resolve a CSC ``signAlgo`` (+ ``hashAlgorithmOID`` / ``signAlgoParams``) for ``key``.

    Raises :class:`AlgorithmError` with a message naming the bad parameter.
    """
    family = key_family(key)
    hash_from_oid = None
    if hash_algo_oid is not None:
        hash_from_oid = HASH_BY_OID.get(hash_algo_oid)
        if hash_from_oid is None:
            raise AlgorithmError(f"Invalid parameter hashAlgorithmOID: unsupported digest {hash_algo_oid}")

    def agree(implied: str) -> str:
        if hash_from_oid is not None and hash_from_oid != implied:
            raise AlgorithmError("hashAlgorithmOID does not match the digest implied by signAlgo")
        return implied

    if family == "ec":
        for name, oid in ECDSA_OIDS.items():
            if sign_algo == oid:
                return SignatureScheme("ecdsa", agree(name))
        if sign_algo == OID_EC_PUBLIC_KEY:
            if hash_from_oid is None:
                raise AlgorithmError("Missing parameter hashAlgorithmOID (required with signAlgo ecPublicKey)")
            return SignatureScheme("ecdsa", hash_from_oid)
        raise AlgorithmError(f"Invalid parameter signAlgo: {sign_algo} is not supported by this EC key")

    for name, oid in RSA_PKCS1_OIDS.items():
        if sign_algo == oid:
            return SignatureScheme("pkcs1", agree(name))
    if sign_algo == OID_RSA_ENCRYPTION:
        if hash_from_oid is None:
            raise AlgorithmError("Missing parameter hashAlgorithmOID (required with signAlgo rsaEncryption)")
        return SignatureScheme("pkcs1", hash_from_oid)
    if sign_algo == OID_RSASSA_PSS:
        if not sign_algo_params:
            raise AlgorithmError("Missing parameter signAlgoParams (required with RSASSA-PSS)")
        try:
            params = algos.RSASSAPSSParams.load(sign_algo_params)
            hash_name = params["hash_algorithm"]["algorithm"].native
            mgf = params["mask_gen_algorithm"]
            mgf_hash = mgf["parameters"]["algorithm"].native
            salt = int(params["salt_length"].native)
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the same client error
            raise AlgorithmError(f"Invalid parameter signAlgoParams: {exc}") from exc
        if hash_name not in HASHES or mgf["algorithm"].native != "mgf1" or mgf_hash != hash_name:
            raise AlgorithmError("Invalid parameter signAlgoParams: only MGF1 with the message digest is supported")
        return SignatureScheme("pss", agree(hash_name), salt)
    raise AlgorithmError(f"Invalid parameter signAlgo: {sign_algo} is not supported by this RSA key")


def scheme_from_name(name: str, salt_length: int | None = None) -> SignatureScheme:
    """Inverse of :attr:`SignatureScheme.name` (for verifying a record's ``signature.algorithm``)."""
    try:
        family, hash_name = SCHEME_BY_NAME[name]
    except KeyError:
        raise AlgorithmError(f"unknown signature algorithm {name!r}") from None
    if family == "pss" and salt_length is None:
        salt_length = HASHES[hash_name][2]
    return SignatureScheme(family, hash_name, salt_length)


def check_digest(digest: bytes, scheme: SignatureScheme) -> None:
    if len(digest) != scheme.digest_size:
        raise AlgorithmError(
            f"hash value has {len(digest)} bytes, {scheme.hash_name.upper()} needs {scheme.digest_size}"
        )


def sign_digest(key: PrivateKey, digest: bytes, scheme: SignatureScheme) -> bytes:
    """Sign a pre-computed digest (what CSC ``signHash`` does)."""
    check_digest(digest, scheme)
    pre = Prehashed(scheme._hash())
    if scheme.family == "ecdsa":
        if key_family(key) != "ec" or not isinstance(key, ec.EllipticCurvePrivateKey):
            raise AlgorithmError("ECDSA needs an EC key")
        return key.sign(digest, ec.ECDSA(pre))
    if key_family(key) != "rsa" or not isinstance(key, rsa.RSAPrivateKey):
        raise AlgorithmError("RSA signature schemes need an RSA key")
    return key.sign(digest, scheme._padding(), pre)


def verify_digest(public_key: PublicKey, signature: bytes, digest: bytes, scheme: SignatureScheme) -> None:
    """Raise ``cryptography.exceptions.InvalidSignature`` unless ``signature`` signs ``digest``."""
    check_digest(digest, scheme)
    pre = Prehashed(scheme._hash())
    if scheme.family == "ecdsa":
        if key_family(public_key) != "ec" or not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise AlgorithmError("ECDSA signature but the certificate has an RSA key")
        public_key.verify(signature, digest, ec.ECDSA(pre))
        return
    if key_family(public_key) != "rsa" or not isinstance(public_key, rsa.RSAPublicKey):
        raise AlgorithmError("RSA signature but the certificate has an EC key")
    public_key.verify(signature, digest, scheme._padding(), pre)
