"""``sohoa export``: every record as JSON Lines, or archive exports (Circular 02/2019/TT-BNV) and edXML
packages (QCVN 102:2016)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pipeline.cli.common import Command, add_common_options, cli_actor, settings_from_args
from pipeline.embedded.services import running_services
from pipeline.runtime.config import Settings
from pipeline.runtime.errors import ExitCode, SohoaError

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa export`` to the parser and its function to ``commands``."""
    p = sub.add_parser("export", help="print every record as JSON Lines, or export for an archive (Circular 02/2019) "
                                      "or as edXML packages")
    add_common_options(p)
    p.add_argument("--output", "-o", type=Path, help="jsonl: write to this file instead of stdout; other formats: the "
                                                     "folder to write (default ./sohoa-export)")
    p.add_argument("--format", default="jsonl", choices=EXPORT_FORMATS,
                   help="jsonl (default); archive-csv/-xlsx/-xml/-json: metadata per Circular 02/2019/TT-BNV, one row per "
                        "dossier and per document, with the PDF/A files named by identifier; edxml: one e-document "
                        "exchange package (QCVN 102:2016) per administrative document, its PDF and signed record attached")
    p.add_argument("--agency", metavar="CODE", help="identifier code of the archiving / sending agency (e.g. 000.00.01.H53): "
                                                     "prefix of the document identifiers; the edXML sender")
    p.add_argument("--agency-name", metavar="NAME", help="edxml: the sender's name where a record has no issuer")
    p.add_argument("--to", action="append", default=[], metavar="CODE[:NAME]", help="edxml: a recipient agency (repeatable)")
    p.add_argument("--strict-colour", action="store_true", help="archive: only colour scans meet the image requirements")
    p.add_argument("--table", action="store_true", help="a short human-readable table instead of JSON Lines")
    p.add_argument("--decrypt", action="store_true",
                   help="personal data in clear (needs the PII key ring; written to the audit log)")
    commands["export"] = cmd_export


def export_line(record: dict, *, stored: dict | None = None) -> dict:
    """The export view of a record: identity, status, fields, text (JSON Lines, one per record).
    ``stored``: the record as stored when ``record`` is its decrypted view."""
    stored = record if stored is None else stored
    return {
        "document_id": record["document_id"],
        "source_file": record["source_file"],
        "record_type": record["record_type"],
        "version": record.get("version", 1),
        "status": record["status"],
        "error": record.get("error"),
        "fields": record.get("fields", {}),
        "field_confidence": record.get("field_confidence", {}),
        "review_reasons": record.get("review_reasons", []),
        "validation_errors": record.get("validation_errors", []),
        "page_count": record.get("page_count"),
        "text": record.get("text", ""),
        "signed": bool(stored.get("signature")),
        "encrypted_fields": [] if stored is not record else (stored.get("pii") or {}).get("fields", []),
    }


EXPORT_FORMATS = ("jsonl", "archive-csv", "archive-xlsx", "archive-xml", "archive-json", "edxml")


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    settings = settings_from_args(args)
    if getattr(args, "format", "jsonl") != "jsonl":
        return export_archive(args, settings)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    count = 0
    decrypted: list[str] = []
    try:
        with running_services(settings, need_signer=False) as resolved:
            warehouse = Warehouse(resolved.resolved_warehouse())
            keyring = None
            if args.decrypt:
                from pipeline.records.pii import KeyRing  # deferred: loads numpy, cryptography, pydantic

                keyring = KeyRing.load(resolved.resolved_pii_keyring())
                from pipeline.warehouse.audit import write_audit  # deferred: loads minio, urllib3, stamina

                # fail closed: no personal data leaves before the access is logged
                write_audit(warehouse, cli_actor(), "export.decrypt", detail={"scope": "every record", "phase": "start"})
            for record in warehouse.iter_records():
                view = record
                if keyring is not None and record.get("pii"):
                    from pipeline.records.pii import decrypt_fields  # deferred: loads numpy, cryptography, pydantic

                    view = decrypt_fields(record, keyring, role="admin")
                    decrypted.append(record["document_id"])
                line = export_line(view, stored=record)
                if args.table:
                    from pipeline.warehouse.catalog.index import (
                        RECORD_TYPE_NAMES,  # deferred: loads minio, urllib3, duckdb
                    )

                    f = line["fields"]
                    number = f.get("number") or f.get("business_code")
                    kind = f.get("doc_type") or RECORD_TYPE_NAMES.get(line["record_type"])
                    out.write(
                        f"{line['status']:<13}{line['source_file'][:38]:<40}number={number!s:<16} "
                        f"date={f.get('date')!s:<11}type={kind!s:<11} issuer={f.get('issuer')}\n"
                    )
                else:
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
            if keyring is not None:
                write_audit(warehouse, cli_actor(), "export.decrypt", documents=decrypted, detail={"phase": "done"})
    finally:
        if args.output:
            out.close()
    print(f"exported {count} records" + (f" ({len(decrypted)} with personal data decrypted)" if decrypted else ""),
          file=sys.stderr)
    return ExitCode.ok


def export_archive(args: argparse.Namespace, settings: Settings) -> int:
    """``sohoa export --format archive-*|edxml``: files under the output folder (see the parser's help)."""
    from pipeline.records import archive, edxml  # deferred: loads numpy, pydantic
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    if args.decrypt:
        raise SohoaError("--decrypt applies to JSON Lines only: archive and edXML exports use no personal data")
    agency = args.agency
    if agency and not archive.AGENCY_CODE.match(agency):
        raise SohoaError(f"--agency {agency!r} does not follow the identifier structure 000.00.01.H53")
    try:
        recipients = [edxml.Agency.parse(t) for t in args.to]
    except edxml.PackageError as exc:
        raise SohoaError(str(exc)) from exc
    if args.format == "edxml" and not agency:
        raise SohoaError("--format edxml needs --agency CODE (the sender's identifier code)")
    out_dir = Path(args.output or "sohoa-export")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.resolved_warehouse())
        records = [r for r in wh.iter_records() if r.get("status") != "failed"]
        if args.format == "edxml":
            for record in records:
                if record.get("record_type") != "admin_document":
                    skipped += 1
                    continue
                pdf = wh.get_pdf(record["document_id"])
                if pdf is None:
                    skipped += 1
                    continue
                identifier = archive.document_identifier(record, agency)
                package = edxml.write_package(
                    record, pdf, sender=edxml.Agency(agency, args.agency_name), recipients=recipients,
                    record_bytes=wh.get_record_bytes(record["document_id"]), pdf_name=f"{identifier}.pdf")
                (out_dir / f"{identifier}.edxml").write_bytes(package)
                written += 1
            print(f"exported {written} edXML packages to {out_dir}" + (f" ({skipped} records skipped: not a "
                  "văn bản or no PDF)" if skipped else ""), file=sys.stderr)
            return ExitCode.ok
        images = {r["document_id"]: [wh.get_page_image(r["document_id"], p.get("page", i + 1))
                                     for i, p in enumerate(r.get("pages") or [])] for r in records}
        dossiers, documents = archive.archive_rows(records, agency_code=agency, page_images=images,
                                                   strict_colour=args.strict_colour)
        export = archive.export_document(dossiers, documents, agency_code=agency)
        problems = archive.validate_export(export)
        if problems:
            raise SohoaError("archive export does not follow its schema: " + "; ".join(problems[:5]))
        name, write = archive.FORMATS[args.format]
        (out_dir / name).write_bytes(write(export))
        pdf_dir = out_dir / "pdf"
        pdf_dir.mkdir(exist_ok=True)
        for row in documents:
            pdf = wh.get_pdf(row["document_id"])
            if pdf is not None:
                (pdf_dir / row["tep_tin"]).write_bytes(pdf)
    print(f"exported {len(documents)} documents and {len(dossiers)} dossiers ({args.format}) to {out_dir}",
          file=sys.stderr)
    return ExitCode.ok
