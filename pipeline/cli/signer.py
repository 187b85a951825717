"""``sohoa signer``: run the embedded remote-signing service (CSC API) on its own."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pipeline.cli.common import Command, settings_from_args
from pipeline.embedded.signer import serve
from pipeline.runtime.errors import ExitCode

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa signer`` to the parser and its function to ``commands``."""
    p = sub.add_parser("signer", help="run the remote-signing service (CSC API)")
    p.add_argument("--state", type=Path, help="state directory (keys, certificates, users)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--home", type=Path)
    commands["signer"] = cmd_signer


def cmd_signer(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    state = Path(args.state or (settings.home / "signer"))
    passphrase = os.environ.get("SOHOA_SIGNER_PASSPHRASE") or None
    user, password, pin = (os.environ.get(k) for k in ("SOHOA_SIGNER_USER", "SOHOA_SIGNER_PASSWORD", "SOHOA_SIGNER_PIN"))
    if password and pin:
        # first start of a deployment: create the state with the configured client credentials
        from pipeline.embedded.signer import keystore  # deferred: loads certomancer, cryptography, yaml

        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = keystore.resolve_passphrase(state, passphrase)
        keystore.init_state(state, secret, username=user or "sohoa", password=password, pin=pin)
    logging.getLogger().setLevel(logging.INFO)
    serve(state, host=args.host, port=args.port, passphrase=passphrase)
    return ExitCode.ok
