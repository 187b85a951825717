"""Administration of the signer (quản trị): revoke a credential, add a user, run the service.

These work on the state directory, not over HTTP, so they need local access and the key
passphrase. Command line (``python -m pipeline.embedded.signer``)::

    python -m pipeline.embedded.signer serve   --state DIR [--host 127.0.0.1] [--port 8700] [--port-file F]
    python -m pipeline.embedded.signer revoke  --state DIR CREDENTIAL_ID [--reason key_compromise]
    python -m pipeline.embedded.signer add-user --state DIR USERNAME [--credential ID ...]  (password on stdin)
    python -m pipeline.embedded.signer show    --state DIR

The passphrase comes from ``--passphrase-file`` or ``SOHOA_SIGNER_PASSPHRASE`` (read by
:func:`main`, the entry point), else from the file generated when the state was created.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from pipeline.embedded.signer import keystore
from pipeline.embedded.signer.auth import AttemptLimiter
from pipeline.embedded.signer.config import ServiceConfig
from pipeline.embedded.signer.keystore import StateLayout
from pipeline.runtime.errors import ConfigurationError, SohoaError, exit_code_for


@dataclass(frozen=True)
class RevocationResult:
    credential_id: str
    serial_number: str  # hex
    crl_path: Path
    crl_number: int


def _reason(reason: str) -> str:
    """An RFC 5280 reason by its name (``key_compromise``) or its value (``keyCompromise``)."""
    for flag in x509.ReasonFlags:
        if reason in (flag.name, flag.value):
            return flag.name
    raise ConfigurationError(
        f"unknown revocation reason {reason!r}; one of: {', '.join(f.name for f in x509.ReasonFlags)}"
    )


def revoke(
    state_dir: Path,
    credential_id: str,
    *,
    passphrase: bytes | str | None = None,
    reason: str = "key_compromise",
) -> RevocationResult:
    """Revoke ``credential_id`` (thu hồi): signHash refuses it from the next request on, OCSP
    answers revoked, and the re-issued CRL (``ca/issuing.crl``) makes verification report its
    signatures revoked."""
    state_dir = Path(state_dir)
    flag = _reason(reason)
    secret = keystore.resolve_passphrase(state_dir, passphrase)
    serial, number = keystore.revoke_credential(state_dir, credential_id, secret, reason=flag)
    return RevocationResult(credential_id, format(serial, "x"), keystore.StateLayout(state_dir).issuing_crl, number)


def add_user(state_dir: Path, username: str, password: str, credentials: Sequence[str] = ("*",)) -> None:
    """Add (or reset) a service user allowed to use ``credentials`` (``*``: all)."""
    if not keystore.StateLayout(Path(state_dir)).state_file.exists():
        raise ConfigurationError(f"no signer state in {state_dir}")
    keystore.add_user(Path(state_dir), username, password, credentials)


def describe_state(state_dir: Path) -> dict:
    """Public facts about a state: CA certificate, credentials with subject, serial, validity, status."""
    layout = keystore.StateLayout(Path(state_dir))
    if not layout.state_file.exists():
        raise ConfigurationError(f"no signer state in {state_dir}")
    info = json.loads(layout.state_file.read_text(encoding="utf-8"))
    registry = keystore.RevocationRegistry(layout.revocations_file)
    creds = []
    now = dt.datetime.now(dt.UTC)
    for cid in info["credentials"]:
        cert = x509.load_pem_x509_certificate((layout.root / "certs" / f"{cid}.pem").read_bytes())
        rev = registry.lookup(cert.serial_number)
        status = "revoked" if rev else ("expired" if now > cert.not_valid_after_utc else "valid")
        creds.append(
            {
                "credential_id": cid,
                "subject": cert.subject.rfc4514_string(),
                "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "status": status,
            }
        )
    return {"state": str(layout.root), "ca_certificate": str(layout.root_cert), "created_at": info["created_at"], "credentials": creds}


def _passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_file:
        return Path(args.passphrase_file).read_text(encoding="utf-8").strip()
    return os.environ.get("SOHOA_SIGNER_PASSPHRASE") or None


def unlock_user(state_dir: Path, username: str) -> int:
    """Forget the wrong passwords and PINs of ``username`` and lift its locks (the running
    service sees the change: it re-reads the files when they change); how many were lifted."""
    layout = StateLayout(Path(state_dir))
    lifted = 0
    for path in (layout.pin_lockouts_file, layout.login_lockouts_file):
        if path.exists():
            limiter = AttemptLimiter(path, max_failures=1, window_s=0, lockout_s=0, max_lockout_s=0)
            lifted += len(limiter.clear(lambda key: _key_user(key) == username))
    return lifted


def _key_user(key: str) -> str | None:
    try:
        return str(json.loads(key)[1])
    except (ValueError, TypeError, IndexError):
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.embedded.signer", description="sohoa remote-signing service (CSC API)")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state", type=Path, required=True, help="state directory (keys, certificates, users)")
        p.add_argument("--passphrase-file", type=Path, help="file holding the key passphrase (else $SOHOA_SIGNER_PASSPHRASE)")

    p = sub.add_parser("serve", help="run the service")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--port-file", type=Path, help="write the bound URL here once listening (use with --port 0)")
    p.add_argument("--sad-ttl", type=float, default=ServiceConfig.sad_ttl_s, help="SAD lifetime, seconds")
    p.add_argument("--token-ttl", type=float, default=ServiceConfig.token_ttl_s, help="access token lifetime, seconds")
    p.add_argument("--public-url", default=ServiceConfig.public_url,
                   help="the service's public URL, written into new certificates (CRLs, OCSP)")
    p.add_argument("--log-level", default="info")

    p = sub.add_parser("revoke", help="revoke a credential and re-issue the CRL")
    common(p)
    p.add_argument("credential_id")
    p.add_argument("--reason", default="key_compromise", help="RFC 5280 reason, e.g. key_compromise, superseded")

    p = sub.add_parser("add-user", help="add or reset a user (password read from stdin or prompted)")
    common(p)
    p.add_argument("username")
    p.add_argument("--credential", action="append", help="credential the user may use (repeat; default all)")

    p = sub.add_parser("unlock", help="lift the login throttle and PIN locks of a user (wrong passwords/PINs)")
    common(p)
    p.add_argument("username")

    p = sub.add_parser("show", help="print the CA and credentials as JSON")
    common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from pipeline.embedded.signer.service import serve  # deferred: loads pydantic

            config = ServiceConfig(sad_ttl_s=args.sad_ttl, token_ttl_s=args.token_ttl, public_url=args.public_url)

            def ready(url: str) -> None:
                if args.port_file:
                    tmp = args.port_file.with_suffix(".tmp")
                    tmp.write_text(url)
                    tmp.replace(args.port_file)

            logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
            serve(args.state, args.host, args.port, passphrase=_passphrase(args), config=config, on_ready=ready, log_level=args.log_level)
        elif args.command == "revoke":
            result = revoke(args.state, args.credential_id, passphrase=_passphrase(args), reason=args.reason)
            print(f"revoked {result.credential_id} (serial {result.serial_number}); CRL #{result.crl_number} at {result.crl_path}")
        elif args.command == "add-user":
            password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
            if not password:
                raise ConfigurationError("empty password")
            add_user(args.state, args.username, password, args.credential or ["*"])
            print(f"user {args.username} saved")
        elif args.command == "unlock":
            print(f"lifted {unlock_user(args.state, args.username)} lock(s) of user {args.username}")
        elif args.command == "show":
            print(json.dumps(describe_state(args.state), ensure_ascii=False, indent=2))
    except KeyboardInterrupt:
        return 130
    except SohoaError as exc:
        print(f"sohoa signer: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))
    return 0
