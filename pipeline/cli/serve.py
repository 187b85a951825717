"""``sohoa serve`` and ``sohoa apikey`` (registered by :mod:`pipeline.cli`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from pipeline.cli.common import Command, add_common_options, settings_from_args
from pipeline.embedded.services import running_services
from pipeline.runtime.errors import ExitCode
from pipeline.runtime.executor import DaskExecutor, dask_client
from pipeline.service.api.auth import ROLES, KeyStore, UnitNames


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    p = sub.add_parser("serve", help="run the HTTP service: uploads, review desk, lookups, dashboard")
    add_common_options(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: a LocalCluster)")
    p.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--no-pdf-signature", action="store_true", help="do not PAdES-sign the searchable PDFs")
    p.add_argument("--max-request-mb", type=float, metavar="MB",
                   help="cap of one upload request (default: twice the per-file limit, plus 1 MB)")
    commands["serve"] = cmd_serve

    p = sub.add_parser("apikey", help="create, list or revoke API keys of the HTTP service")
    p.add_argument("--home", type=Path, help="state directory (default: $SOHOA_HOME or ~/.local/share/sohoa)")
    actions = p.add_subparsers(dest="apikey_action", required=True)
    c = actions.add_parser("create", help="create a key (printed once)")
    c.add_argument("--unit", required=True, help="unit code (mã đơn vị), e.g. 000.00.01.H53")
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--unit-name", metavar="NAME", help="the unit's name (tên đơn vị), shown on the pages and the dashboard")
    actions.add_parser("list", help="list keys (ids, units, roles; never the keys)")
    r = actions.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    commands["apikey"] = cmd_apikey


class _Terminated(BaseException):
    """SIGTERM (or SIGHUP) reached ``sohoa serve``: unwind, stopping what it started.

    A BaseException, so that no ``except Exception`` on the way swallows it."""


def _terminate_by_unwinding(signum, _frame) -> None:
    # once: a second SIGTERM must not interrupt the stopping of the embedded services
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise _Terminated(signum)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service; on SIGTERM/SIGHUP/SIGINT stop it and then the embedded S3 server,
    signer and Dask cluster it started.

    uvicorn handles SIGINT/SIGTERM itself while it runs (graceful shutdown), then restores the
    previous handlers and raises the signal again. With the default SIGTERM handler that
    killed the process there and then, skipping the ``with`` blocks below, and the embedded
    services (own sessions, so they did not get the signal) lived on. Our handler turns the
    re-raised signal (or one that comes before or after uvicorn runs) into an exception that
    unwinds those blocks; SIGINT already does so (KeyboardInterrupt)."""

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _terminate_by_unwinding) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _serve(args, settings_from_args(args))
    except _Terminated as exc:
        print(f"sohoa serve: stopped (signal {exc.args[0]})", file=sys.stderr, flush=True)
        return ExitCode.ok
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace, settings) -> int:
    import uvicorn  # deferred: loads uvicorn

    from pipeline.service.api.app import create_app  # deferred: loads minio, urllib3, fastapi

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    keys = KeyStore.for_home(settings.home)
    if not keys.list():
        print(f"sohoa: no API keys yet; create one with: sohoa apikey --home {settings.home} create --unit UNIT --role admin",
              file=sys.stderr)
    with running_services(settings) as resolved, dask_client(resolved.cluster, resolved) as client:
        assert resolved.warehouse is not None  # running_services resolves the warehouse
        cap = int(args.max_request_mb * 1_000_000) if getattr(args, "max_request_mb", None) else None
        app = create_app(resolved, executor=DaskExecutor(client), keys=keys, max_request_bytes=cap)
        print(f"sohoa serve: http://{args.host}:{args.port}/openapi.json  review desk: /review  dashboard: /dashboard  "
              f"warehouse: {resolved.warehouse.url()}", file=sys.stderr, flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning")
    return ExitCode.ok


def cmd_apikey(args: argparse.Namespace) -> int:

    logging.getLogger().setLevel(logging.WARNING)
    keys = KeyStore.for_home(settings_from_args(args).home)
    if args.apikey_action == "create":
        try:
            stored, token = keys.create(args.unit, args.role)
        except ValueError as exc:
            print(f"sohoa: {exc}", file=sys.stderr)
            return ExitCode.bad_args
        if getattr(args, "unit_name", None):
            UnitNames.for_home(settings_from_args(args).home).set(args.unit, args.unit_name)
        print(token)
        print(f"key id {stored.key_id}, unit {stored.unit}, role {stored.role}: keep the key now, it is not shown again",
              file=sys.stderr)
        return ExitCode.ok
    if args.apikey_action == "list":
        for k in keys.list():
            print(f"{k.key_id}  {k.role:<8} {k.unit:<24} {k.created_at}{'  revoked' if k.revoked else ''}")
        return ExitCode.ok
    if not keys.revoke(args.key_id):
        print(f"sohoa: no key {args.key_id}", file=sys.stderr)
        return ExitCode.other_error
    print(f"revoked {args.key_id}")
    return ExitCode.ok
