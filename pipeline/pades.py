"""PAdES signature of the searchable PDF through the remote CSC signer (pyHanko ``CSCSigner``).

Decree 30/2020 (Appendix I, §II) wants a digitized copy signed by the organisation with the
copy type and the signing time: the signature carries the organisation (``name``), the
copy type (``reason``), the place (``location``) and, with a time-stamp authority, a
trusted time (PAdES B-T); without one, the signing time attribute (B-B).
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import TYPE_CHECKING

from .errors import SignerUnavailableError, SigningError

if TYPE_CHECKING:  # pragma: no cover
    from .sign import RemoteSigner

FIELD_NAME = "SohoaDigitizedCopy"


def sign_pdf_csc(
    client: "RemoteSigner",
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
    except (SigningError, SignerUnavailableError):
        raise
    except Exception as exc:  # pyHanko/aiohttp errors: name them, keep them typed
        import aiohttp

        chain = list(_causes(exc))
        if any(isinstance(e, (aiohttp.ClientConnectionError, ConnectionError, asyncio.TimeoutError)) for e in chain):
            raise SignerUnavailableError(f"signer unreachable while signing the PDF: {exc}") from exc
        if any(isinstance(e, aiohttp.ClientResponseError) and e.status == 401 for e in chain):
            raise TokenRejected("the signer rejected the access token (401)") from exc
        if any(isinstance(e, aiohttp.ClientResponseError) and e.status >= 500 for e in chain):
            raise SignerUnavailableError(f"signer error while signing the PDF: {exc}") from exc
        raise SigningError(f"PAdES signing failed: {type(exc).__name__}: {exc}") from exc


class TokenRejected(SigningError):
    """The bearer token expired or the signer restarted: log in again and retry."""


#: How long a process keeps one time stamper (and so its dummy time stamp) for a TSA URL.
TIMESTAMPER_TTL_S = 3600.0
_timestampers: dict[tuple[str, int], tuple[float, object]] = {}


def _timestamper(url: str, timeout_s: int):
    """The process's pyHanko time stamper for ``url``, made at most :data:`TIMESTAMPER_TTL_S` ago.

    To size the signature before making it, pyHanko asks the TSA for a time stamp of a dummy
    digest and caches it in the time stamper: one stamper per document meant two TSA round
    trips a document instead of one (~35 ms each on loopback, plus the TSA's own signature).
    Renewed every hour, so that a new TSA certificate is soon reflected in the size estimate."""
    from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

    now = time.monotonic()
    made, stamper = _timestampers.get((url, timeout_s), (0.0, None))
    if stamper is None or now - made > TIMESTAMPER_TTL_S:
        stamper = HTTPTimeStamper(url, timeout=timeout_s)
        _timestampers[(url, timeout_s)] = (now, stamper)
    return stamper


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


async def _sign(client: "RemoteSigner", pdf: bytes, *, signer_name: str, reason: str, location: str, visible: bool) -> bytes:
    import aiohttp
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.fields import SigFieldSpec
    from pyhanko.sign.signers import csc_signer

    settings = client.settings
    token = client._ensure_token()
    session_info = csc_signer.CSCServiceSessionInfo(
        service_url=settings.url.rstrip("/"), credential_id=client.credential_id, oauth_token=token, api_ver="v1"
    )

    class PinAuthorization(csc_signer.CSCAuthorizationManager):
        """SCAL2: every authorisation carries the PIN and the exact hashes to be signed."""

        async def authorize_signature(self, hash_b64s: list[str]) -> csc_signer.CSCAuthorizationInfo:
            body = self.format_csc_auth_request(pin=settings.pin, hash_b64s=hash_b64s)
            async with session.post(
                self.csc_session_info.endpoint_url("credentials/authorize"),
                json=body,
                headers=self.csc_session_info.auth_headers,
                timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
            ) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise SigningError(f"signer refused credentials/authorize: {data}")
            return self.parse_csc_auth_response(data)

    async with aiohttp.ClientSession() as session:
        cred_info = await csc_signer.fetch_certs_in_csc_credential(session, session_info)
        signer = csc_signer.CSCSigner(session, auth_manager=PinAuthorization(session_info, cred_info), prefer_pss=True)
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
        pdf_signer = signers.PdfSigner(meta, signer, timestamper=timestamper, new_field_spec=spec)
        out = io.BytesIO()
        await pdf_signer.async_sign_pdf(writer, output=out)
        return out.getvalue()


