"""What every ``sohoa`` command shares: the common options, the settings built once from them, the
actor of the audit log, and the checks of a server command. Command modules import from here,
never from :mod:`pipeline.cli` (which imports them): no cycle."""

from __future__ import annotations

import argparse
import getpass
import os
import socket
from collections.abc import Callable
from pathlib import Path

from pipeline.runtime.config import ClusterSettings, Settings, settings_from_env
from pipeline.runtime.errors import ExitCode, PortInUseError

#: a command: parsed arguments in, exit code out
Command = Callable[[argparse.Namespace], int]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, help="state directory of embedded services (default: $SOHOA_HOME or ~/.local/share/sohoa)")
    parser.add_argument("--warehouse", metavar="URL", help="S3 warehouse, http(s)://KEY:SECRET@host:port/bucket (default: embedded SeaweedFS)")
    parser.add_argument("--signer", metavar="URL", help="remote signer base URL (default: embedded signer); credentials from SOHOA_SIGNER_USER/PASSWORD")
    parser.add_argument("-v", "--verbose", action="store_true")


def cli_actor():
    """Who acts from the command line, for the audit and reuse logs: the OS user."""
    from pipeline.warehouse.audit import Actor  # deferred: loads minio, urllib3, stamina

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container
        user = str(os.getuid())
    return Actor(key_id=f"cli:{user}", unit="cli", role="admin")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "home", None):
        overrides["home"] = args.home
    if getattr(args, "warehouse", None):
        overrides["warehouse_url"] = args.warehouse
    if getattr(args, "signer", None):
        overrides["signer_url"] = args.signer
    if getattr(args, "scheduler", None) or getattr(args, "workers", None):
        overrides["cluster"] = ClusterSettings(scheduler_address=getattr(args, "scheduler", None), n_workers=getattr(args, "workers", None))
    if getattr(args, "force", False):
        overrides["force"] = True
    if getattr(args, "no_pdf_signature", False):
        overrides["sign_pdf"] = False
    return settings_from_env(**overrides)


def check_listen_address(host: str, port: int) -> None:
    """Refuse early, with a typed error, an address a server could not listen on (a port in
    use, or a host that is not this machine's): before services start, not after."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PortInUseError(f"cannot listen on {host}:{port}: {exc}") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise PortInUseError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "is another sohoa serve running? choose another port with --port"
            ) from exc


def run_server_command(fn, args: argparse.Namespace) -> int:
    """A command that runs a server (``serve``): its address checked first, and a server that
    could not start (uvicorn exits with 3, the code we use for a missing dependency) reported
    as the bad address it is."""
    check_listen_address(args.host, args.port)
    try:
        return int(fn(args))
    except SystemExit as exc:
        if exc.code in (None, 0):
            return ExitCode.ok
        if exc.code == 3:  # uvicorn's STARTUP_FAILURE: it could not bind (its log says why)
            raise PortInUseError(f"the server could not start on {args.host}:{args.port} (port taken meanwhile?)") from exc
        raise
