"""The ``sohoa`` command. Builds configuration once, runs one command, maps errors to exit codes.

Commands::

    sohoa digitize PATH... [--warehouse URL] [--scheduler ADDRESS] [--workers N]   (PATH may be an edXML package)
    sohoa export [--warehouse URL] [--output FILE]
    sohoa export --format archive-csv|archive-xlsx|archive-xml|archive-json|edxml [--agency CODE] [-o DIR]
    sohoa verify RECORD.json [--trust CA.pem]
    sohoa get ID [-o DIR]                     (record.json as stored, searchable.pdf, original.<ext>)
    sohoa signer [--state DIR] [--host 127.0.0.1] [--port 8700]
    sohoa schemas [--check | --write]
    sohoa services status|stop [--force]     (the embedded S3 server and signer)
    sohoa serve | apikey | catalog | pii ...  (the HTTP service, API keys, the catalog, the PII key ring)

One module per command (``pipeline/cli/<command>.py``), each with ``register(subparsers, commands)``;
what they share is in :mod:`pipeline.cli.common`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline import __version__
from pipeline.cli import catalog, digitize, export, get, pii, schemas, serve, services, signer, verify
from pipeline.cli.common import Command, run_server_command
from pipeline.runtime.errors import ExitCode, SohoaError, exit_code_for

#: the command modules, in the order ``sohoa --help`` lists them
COMMAND_MODULES = (digitize, export, verify, get, signer, schemas, serve, catalog, services, pii)

#: commands that listen on ``args.host``/``args.port``
SERVER_COMMANDS = ("serve", "signer")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser of every command, and the function each command name runs."""
    parser = argparse.ArgumentParser(prog="sohoa", description="Digitize Vietnamese administrative records into signed, reusable data.")
    parser.add_argument("--version", action="version", version=f"sohoa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, Command] = {}
    for module in COMMAND_MODULES:
        module.register(sub, commands)
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command in SERVER_COMMANDS:
            return run_server_command(commands[args.command], args)
        return int(commands[args.command](args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.ctrl_c
    except SohoaError as exc:
        print(f"sohoa: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
