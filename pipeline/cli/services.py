"""``sohoa services status|stop``: the embedded S3 server and signer of a home
(:mod:`pipeline.embedded.supervise`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.common import Command
from pipeline.embedded.supervise import service_states, stop_services
from pipeline.runtime.config import settings_from_env
from pipeline.runtime.errors import ExitCode


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa services status|stop`` to the parser and its function to ``commands``."""
    p = sub.add_parser("services", help="the embedded S3 server and signer of this home: status, stop")
    p.add_argument("action", choices=("status", "stop"))
    p.add_argument("--home", type=Path)
    p.add_argument("--force", action="store_true", help="stop: also end services a running command owns")
    p.add_argument("--json", action="store_true", help="status as JSON")
    commands["services"] = cmd_services


def cmd_services(args: argparse.Namespace) -> int:
    home = settings_from_env(**({"home": args.home} if args.home else {})).home
    if args.action == "status":
        states = service_states(home)
        if args.json:
            print(json.dumps(states, indent=1, sort_keys=True))
        elif not states:
            print(f"no embedded service recorded under {home}")
        for svc in states if not args.json else ():
            where = svc.get("endpoint") or svc.get("url") or "?"
            owner = svc.get("owner_pid")
            print(f"{svc['service']:7} {svc['state']:10} pid {svc.get('pid')}  {where}  owner {owner}  "
                  f"started {svc.get('started_at', '?')}  restarts {svc.get('restarts', 0)}")
        return ExitCode.ok
    lines = stop_services(home, force=args.force)
    for line in lines or [f"no embedded service running under {home}"]:
        print(line)
    left = [s for s in service_states(home) if s["state"] in ("owned", "orphan", "restarting")]
    return ExitCode.ok if not left else ExitCode.bad_args
