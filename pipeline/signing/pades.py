"""PAdES signature of the searchable PDF through the remote CSC signer.

Decree 30/2020 (Appendix I, §II) wants a digitized copy signed by the organisation with the
copy type and the signing time: the signature carries the organisation (``name``), the
copy type (``reason``), the place (``location``) and, with a time-stamp authority, a
trusted time (PAdES B-T); without one, the signing time attribute (B-B).

pyHanko builds the CMS signature; its signature value comes from the same CSC client that
signs records (:class:`pipeline.signing.sign.RemoteSigner`: one login, one authorisation path with the
PIN and the SAD bound to the hash, one retry layer), through :class:`CSCClientSigner`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from typing import TYPE_CHECKING, Protocol

import aiohttp
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509

from pipeline.embedded.signer.algorithms import SCHEME_BY_NAME, pss_params
from pipeline.runtime.errors import SignerUnavailableError, SigningError, SohoaError

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.runtime.config import SignerSettings

FIELD_NAME = "SohoaDigitizedCopy"


class CSCClient(Protocol):
    """What PAdES needs of the CSC client (:class:`pipeline.signing.sign.RemoteSigner`)."""

    settings: SignerSettings

    def certificate_chain(self) -> list[str]: ...

    def signature_algorithm(self) -> str: ...

    def sign_digests(self, digests: list[bytes]) -> list[bytes]: ...


def sign_pdf(
    client: CSCClient,
    pdf: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    visible: bool = False,
) -> bytes:
    """Return ``pdf`` with an incremental PAdES signature made by the CSC credential of ``client``."""
    try:
        return asyncio.run(_sign(client, pdf, signer_name=signer_name, reason=reason, location=location, visible=visible))
    except SohoaError:
        raise
    except Exception as exc:  # pyHanko/aiohttp errors: name them, keep them typed

        chain = list(_causes(exc))
        for cause in chain:
            if isinstance(cause, SohoaError):  # the CSC client's own error, wrapped by pyHanko
                raise cause from exc
        if any(isinstance(e, (aiohttp.ClientConnectionError, ConnectionError, asyncio.TimeoutError)) for e in chain):
            raise SignerUnavailableError(f"time-stamp authority unreachable while signing the PDF: {exc}") from exc
        if any(isinstance(e, aiohttp.ClientResponseError) and e.status >= 500 for e in chain):
            raise SignerUnavailableError(f"time-stamp authority error while signing the PDF: {exc}") from exc
        raise SigningError(f"PAdES signing failed: {type(exc).__name__}: {exc}") from exc


def _causes(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


#: How long a process keeps one time stamper (and so its dummy time stamp) for a TSA URL.
TIMESTAMPER_TTL_S = 3600.0
_timestampers: dict[tuple[str, int], tuple[float, object]] = {}


def _timestamper(url: str, timeout_s: int):
    """The process's pyHanko time stamper for ``url``, made at most :data:`TIMESTAMPER_TTL_S` ago.

    To size the signature before making it, pyHanko asks the TSA for a time stamp of a dummy
    digest and caches it in the time stamper: one stamper per document meant two TSA round
    trips a document instead of one (~35 ms each on loopback, plus the TSA's own signature).
    Renewed every hour, so that a new TSA certificate is soon reflected in the size estimate."""
    from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper  # deferred: loads pyhanko, pyhanko_certvalidator

    now = time.monotonic()
    made, stamper = _timestampers.get((url, timeout_s), (0.0, None))
    if stamper is None or now - made > TIMESTAMPER_TTL_S:
        stamper = HTTPTimeStamper(url, timeout=timeout_s)
        _timestampers[(url, timeout_s)] = (now, stamper)
    return stamper


def _mechanism(algorithm: str):
    """pyHanko's signature mechanism for a record algorithm name (``ecdsa-with-SHA256``, ...)."""
    family, hash_name = SCHEME_BY_NAME[algorithm]
    if family == "ecdsa":
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})
    if family == "pkcs1":
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_rsa"})
    params = pss_params(hash_name, hashlib.new(hash_name).digest_size)
    return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})


def _signer(client: CSCClient):
    """A pyHanko ``Signer`` whose raw signatures are the CSC client's ``signHash``."""
    from pyhanko.sign.signers import Signer  # deferred: loads pyhanko, pyhanko_certvalidator
    from pyhanko_certvalidator.registry import SimpleCertificateStore  # deferred: loads pyhanko_certvalidator

    chain = [asn1_x509.Certificate.load(base64.b64decode(c)) for c in client.certificate_chain()]
    mechanism = _mechanism(client.signature_algorithm())
    # placeholder for the size estimate: the largest value the key can give (DER ECDSA, RSA)
    bits = chain[0].public_key.bit_size
    placeholder = 2 * (bits + 7) // 8 + 9 if chain[0].public_key.algorithm == "ec" else (bits + 7) // 8

    class CSCClientSigner(Signer):
        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            if dry_run:
                return bytes(placeholder)
            (value,) = client.sign_digests([hashlib.new(digest_algorithm, data).digest()])
            return value

    return CSCClientSigner(
        signing_cert=chain[0], cert_registry=SimpleCertificateStore.from_certs(chain[1:]), signature_mechanism=mechanism
    )


async def _sign(client: CSCClient, pdf: bytes, *, signer_name: str, reason: str, location: str, visible: bool) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import (
        IncrementalPdfFileWriter,  # deferred: loads pyhanko, pyhanko_certvalidator
    )
    from pyhanko.sign import fields, signers  # deferred: loads pyhanko, pyhanko_certvalidator
    from pyhanko.sign.fields import SigFieldSpec  # deferred: loads pyhanko, pyhanko_certvalidator

    settings = client.settings
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        name=signer_name,
        reason=reason,
        location=location,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    timestamper = _timestamper(settings.timestamp_url, int(settings.timeout_s)) if settings.timestamp_url else None
    spec = SigFieldSpec(FIELD_NAME, box=(36, 36, 236, 96) if visible else None)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer = signers.PdfSigner(meta, _signer(client), timestamper=timestamper, new_field_spec=spec)
    out = io.BytesIO()
    await pdf_signer.async_sign_pdf(writer, output=out)
    return out.getvalue()
