"""``sohoa find`` and ``sohoa catalog compact|rebuild`` (registered by :mod:`pipeline.cli`).

::

    sohoa find [--number N] [--subject ID] [--issuer TEXT] [--from DATE] [--to DATE]
               [--status S] [--doc-type T] [--limit N] [--json]
    sohoa catalog compact
    sohoa catalog rebuild
    sohoa report [--period day|month] [--unit U] [--csv]

Every ``find`` that returns documents is a reuse (khai thác, sử dụng lại): it is written to the
reuse log and the audit log (who: the OS user; when; the query; which documents), so the
reuse rate (documents reused ÷ documents received) can be reported (``sohoa report``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.common import Command, add_common_options, cli_actor, settings_from_args
from pipeline.embedded.services import running_services
from pipeline.runtime.errors import ExitCode


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    p = sub.add_parser("find", help="look records up in the catalog (số/ký hiệu, subject id, issuer, dates)")
    add_common_options(p)
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
    add_common_options(actions.add_parser("compact", help="merge the per-record deltas into the base Parquet files"))
    add_common_options(actions.add_parser("rebuild", help="rebuild the catalog from every record in the warehouse"))
    commands["catalog"] = cmd_catalog

    p = sub.add_parser("report", help="digitization and reuse indicators per unit and period (Decision 766/QĐ-TTg)")
    add_common_options(p)
    p.add_argument("--period", choices=("day", "month"), default="month")
    p.add_argument("--unit", metavar="U", help="one unit only")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")
    commands["report"] = cmd_report


def cache_dir_for(home: Path, endpoint: str, bucket: str) -> Path:
    """Local catalog cache of one warehouse: ``<home>/cache/catalog/<hash of endpoint/bucket>``."""
    tag = hashlib.sha256(f"{endpoint}/{bucket}".encode()).hexdigest()[:12]
    return Path(home) / "cache" / "catalog" / tag


def _keyring(path: Path | None):
    from pipeline.records.pii import KeyRing  # deferred: loads numpy, cryptography, pydantic

    return KeyRing.load(path) if path is not None and Path(path).exists() else None


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
    from pipeline.warehouse.catalog.index import Catalog  # deferred: loads minio, urllib3, duckdb
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    settings = settings_from_args(args)
    with running_services(settings, need_signer=False) as resolved:
        assert resolved.warehouse is not None  # running_services resolves the warehouse
        wh = Warehouse(resolved.warehouse)
        cache = cache_dir_for(resolved.home, resolved.warehouse.endpoint, resolved.warehouse.bucket)
        catalog = Catalog(wh, cache, keyring=_keyring(resolved.pii_keyring), max_age_s=None)
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
        if rows:
            log_reuse(wh, args, rows)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(format_table(rows))
        print(f"{len(rows)} record(s)", file=sys.stderr)
    return ExitCode.ok


def log_reuse(warehouse, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Write the reuse event and the audit entry of a lookup that returned ``rows``. The
    subject id itself is never logged (personal data): only that the query was by subject."""
    from pipeline.warehouse import audit  # deferred: loads minio, urllib3, stamina

    query = {k: str(v) for k, v in {
        "number": args.number, "issuer": args.issuer, "from": args.date_from, "to": args.date_to,
        "status": args.status, "doc_type": args.doc_type,
    }.items() if v}
    if args.subject:
        query["subject"] = "(by blind index)"
    actor = cli_actor()
    documents = {r["document_id"]: r.get("unit") for r in rows}
    audit.write_audit(warehouse, actor, "lookup", documents=list(documents), detail={"query": sorted(query)})
    audit.write_reuse(warehouse, actor, query, documents)


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.service import dashboard  # deferred: loads minio, urllib3, stamina
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    settings = settings_from_args(args)
    with running_services(settings, need_signer=False) as resolved:
        assert resolved.warehouse is not None  # running_services resolves the warehouse
        data = dashboard.dashboard(Warehouse(resolved.warehouse), period=args.period, unit=args.unit)
    if args.csv:
        sys.stdout.write(dashboard.to_csv(data["rows"]))
        return ExitCode.ok
    head = f"{'unit':<22}{'period':<12}{'received':>9}{'ok':>7}{'review':>8}{'failed':>8}{'reused':>8}{'reuse rate':>12}"
    print(head)
    for r in data["rows"] + data["totals"]:
        print(f"{r['unit'][:21]:<22}{r['period']:<12}{r['received']:>9}{r['ok']:>7}{r['needs_review']:>8}"
              f"{r['failed']:>8}{r['reused']:>8}{100 * r['reuse_rate']:>11.1f}%")
    return ExitCode.ok


def cmd_catalog(args: argparse.Namespace) -> int:
    from pipeline.warehouse.catalog.index import compact, rebuild  # deferred: loads minio, urllib3, duckdb
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    settings = settings_from_args(args)
    with running_services(settings, need_signer=False) as resolved:
        assert resolved.warehouse is not None  # running_services resolves the warehouse
        wh = Warehouse(resolved.warehouse)
        if args.catalog_action == "compact":
            merged = compact(wh)
            print(f"catalog: merged {merged} delta(s)")
        else:
            rows = rebuild(wh, keyring=_keyring(resolved.pii_keyring))
            print(f"catalog: rebuilt from records: {rows} document(s)")
    return ExitCode.ok
