"""``sohoa schemas --check|--write``: the JSON Schemas in ``schemas/`` against the record models."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline.cli.common import Command
from pipeline.runtime.errors import ExitCode

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa schemas`` to the parser and its function to ``commands``."""
    p = sub.add_parser("schemas", help="check or write the JSON Schemas in schemas/")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")
    commands["schemas"] = cmd_schemas


def cmd_schemas(args: argparse.Namespace) -> int:
    from pipeline.stages.validate import (  # deferred: loads numpy, jsonschema, pydantic
        generate_schemas,
        schemas_dir,
        write_schemas,
    )

    if args.write:
        for path in write_schemas():
            print(f"wrote {path}")
        return ExitCode.ok
    stale = []
    for name, schema in generate_schemas().items():
        path = schemas_dir() / name
        if not path.exists() or json.loads(path.read_text(encoding="utf-8")) != schema:
            stale.append(name)
    if stale:
        print(f"schemas out of date: {', '.join(stale)} (run: sohoa schemas --write)", file=sys.stderr)
        return ExitCode.other_error
    print("schemas up to date")
    return ExitCode.ok
