"""``sohoa find`` and ``sohoa catalog compact|rebuild`` (registered by :mod:`pipeline.cli`).

::

    sohoa find [--number N] [--subject ID] [--issuer TEXT] [--from DATE] [--to DATE]
               [--status S] [--doc-type T] [--limit N] [--json]
    sohoa catalog compact
    sohoa catalog rebuild
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import ExitCode


def register(
    sub: argparse._SubParsersAction,
    commands: dict[str, Callable[[argparse.Namespace], int]],
    *,
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = sub.add_parser("find", help="look records up in the catalog (số/ký hiệu, subject id, issuer, dates)")
    common(p)
    p.add_argument("--number", metavar="N", help="số, ký hiệu, e.g. 5898/UBND-KSTT (case and spacing ignored)")
    p.add_argument("--subject", metavar="ID", help="personal identification number or tax code (matched by blind index)")
    p.add_argument("--issuer", metavar="TEXT", help="part of the issuer's name (case and diacritics ignored)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="issued on or after (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="issued on or before (YYYY-MM-DD)")
    p.add_argument("--status", choices=("ok", "needs_review", "failed"))
    p.add_argument("--doc-type", metavar="T", help="tên loại văn bản, e.g. 'Quyết định'")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N rows (default 100)")
    p.add_argument("--json", action="store_true", help="JSON Lines instead of a table")
    commands["find"] = cmd_find

    p = sub.add_parser("catalog", help="maintain the catalog: merge deltas, or rebuild from the records")
    actions = p.add_subparsers(dest="catalog_action", required=True)
    common(actions.add_parser("compact", help="merge the per-record deltas into the base Parquet files"))
    common(actions.add_parser("rebuild", help="rebuild the catalog from every record in the warehouse"))
    commands["catalog"] = cmd_catalog


def cache_dir_for(home: Path, endpoint: str, bucket: str) -> Path:
    """Local catalog cache of one warehouse: ``<home>/cache/catalog/<hash of endpoint/bucket>``."""
    tag = hashlib.sha256(f"{endpoint}/{bucket}".encode()).hexdigest()[:12]
    return Path(home) / "cache" / "catalog" / tag


def _keyring(home: Path):
    from ..pii import KeyRing, keyring_path

    path = keyring_path(home)
    return KeyRing.load(path) if path.exists() else None


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of result rows."""
    head = f"{'status':<13}{'date':<11} {'number':<22}{'doc_type':<16}{'issuer':<36}{'document':<14}source_file"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['status'] or '':<13}{r['date'] or '':<11} {(r['number'] or '')[:21]:<22}{(r['doc_type'] or '')[:15]:<16}"
            f"{(r['issuer'] or '')[:35]:<36}{r['document_id'][:12]:<14}{r['source_file'] or ''}"
        )
    return "\n".join(lines)


def cmd_find(args: argparse.Namespace) -> int:
    from ..cli import settings_from_args
    from ..services import running_services
    from ..warehouse import Warehouse
    from .index import Catalog

    settings = settings_from_args(args)
    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.warehouse)
        cache = cache_dir_for(resolved.home, resolved.warehouse.endpoint, resolved.warehouse.bucket)
        catalog = Catalog(wh, cache, keyring=_keyring(resolved.home), max_age_s=None)
        try:
            catalog.refresh()
            rows = catalog.find(
                number=args.number,
                subject=args.subject,
                issuer=args.issuer,
                date_from=args.date_from,
                date_to=args.date_to,
                status=args.status,
                doc_type=args.doc_type,
                limit=args.limit,
            )
        finally:
            catalog.close()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(format_table(rows))
        print(f"{len(rows)} record(s)", file=sys.stderr)
    return ExitCode.ok


def cmd_catalog(args: argparse.Namespace) -> int:
    from ..cli import settings_from_args
    from ..services import running_services
    from ..warehouse import Warehouse
    from .index import compact, rebuild

    settings = settings_from_args(args)
    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.warehouse)
        if args.catalog_action == "compact":
            merged = compact(wh)
            print(f"catalog: merged {merged} delta(s)")
        else:
            rows = rebuild(wh, keyring=_keyring(resolved.home))
            print(f"catalog: rebuilt from records: {rows} document(s)")
    return ExitCode.ok
