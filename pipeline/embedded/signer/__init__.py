"""sohoa's remote-signing service (dịch vụ ký số từ xa): a CSC API v2 subset with its own CA.

Modules, one concern each:

* :mod:`.algorithms` — signature algorithm OIDs, raw sign/verify of pre-computed hashes;
* :mod:`.pki` — the PKI on Certomancer, configured by ``pki.yml``: root CA → issuing CA → unit
  certificates, TSA and OCSP responder; CRLs, OCSP and RFC 3161 time-stamps;
* :mod:`.keystore` — the state directory: encrypted keys, certificates, users, PINs, revocations;
* :mod:`.auth` — scrypt password/PIN hashes, bearer tokens;
* :mod:`.sad` — Signature Activation Data bound to hashes;
* :mod:`.service` — the CSC operations and the FastAPI app, :func:`serve`;
* :mod:`.admin` — revocation, users, the ``python -m pipeline.embedded.signer`` command line;
* :mod:`.embedded` — :func:`start_embedded_signer`, the service on loopback for one process.

The PKI (certificates, CRLs, OCSP, time-stamps) is Certomancer's, from ``pki.yml``. The CSC
server is ours: ``certomancer-csc-dummy`` (0.4.2) authenticates no one, has no PIN, signs any
number of times with one SAD that never expires, ignores revocations, offers the CA keys as
signing credentials and speaks CSC v1 only — what this service exists to do is users, PINs
and their lockouts, SADs bound to hashes and used once (SCAL2), refusal of revoked credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.embedded.signer.config import ServiceConfig


def serve(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    passphrase: bytes | str | None = None,
    config: ServiceConfig | None = None,
) -> None:
    """Run the signing service in the foreground (``sohoa signer``); see :func:`.service.serve`."""
    from pipeline.embedded.signer.service import (
        serve as _serve,  # deferred: import cycle (pipeline.embedded.signer.service imports pipeline.embedded.signer)
    )

    _serve(Path(state_dir), host, port, passphrase=passphrase, config=config)


__all__ = ["serve"]
