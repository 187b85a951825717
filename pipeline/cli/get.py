"""``sohoa get ID``: a stored document taken out (record as stored, searchable PDF, original)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from pipeline.cli.common import Command, add_common_options, cli_actor, settings_from_args
from pipeline.embedded.services import running_services
from pipeline.runtime.config import Settings
from pipeline.runtime.errors import DocumentNotFoundError, ExitCode, SohoaError, WarehouseError

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa get`` to the parser and its function to ``commands``."""
    p = sub.add_parser("get", help="take a stored document out: its record exactly as stored (record.json), its "
                                   "searchable PDF and its original, for `sohoa verify` anywhere")
    p.add_argument("document_id", metavar="ID", help="document id (SHA-256 of the original, 64 hex digits)")
    p.add_argument("--output", "-o", type=Path, metavar="DIR", help="folder to write (default ./<ID>); created")
    add_common_options(p)
    commands["get"] = cmd_get


def stored_artefacts(settings: Settings, document_id: str) -> tuple[str, bytes, bytes | None, bytes | None]:
    """Record bytes, searchable PDF and original of a stored document. The original is the
    retained version whose hash matches; when none does, the current bytes (which then fail)."""
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.resolved_warehouse())
        data = wh.get_record_bytes(document_id)
        if data is None:
            raise SohoaError(f"no record for document {document_id} in {resolved.resolved_warehouse().url()}")
        original: bytes | None
        try:
            original = wh.get_original(document_id)
        except WarehouseError:
            original = wh.objects.get(wh.original_key(document_id))  # what is stored, to be reported
        return f"document {document_id}", data, wh.get_pdf(document_id), original


#: names ``sohoa get`` writes the original under, by its media type (never the source file's
#: name, which may name a person)
ORIGINAL_NAMES = {"application/pdf": "original.pdf", "image/tiff": "original.tif", "image/jpeg": "original.jpg",
                  "image/png": "original.png"}


def cmd_get(args: argparse.Namespace) -> int:
    """``sohoa get ID -o DIR``: DIR/record.json (the stored bytes, any changed byte fails its
    signature), DIR/searchable.pdf and DIR/original.<ext> exactly as stored. Audited: the PDF
    and the original show the person a record concerns."""
    from pipeline.warehouse.audit import write_audit  # deferred: loads minio, urllib3, stamina
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    document_id = args.document_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", document_id):
        raise DocumentNotFoundError(f"{args.document_id!r} is no document id (the SHA-256 of an original: 64 hex digits)")
    settings = settings_from_args(args)
    out_dir = Path(args.output or document_id)
    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.resolved_warehouse())
        data = wh.get_record_bytes(document_id)
        if data is None:
            raise DocumentNotFoundError(f"no record for document {document_id} in {resolved.resolved_warehouse().url()}")
        # fail closed: nothing leaves before the access is logged
        write_audit(wh, cli_actor(), "document.get", documents=[document_id], detail={"to": str(out_dir)})
        pdf = wh.get_pdf(document_id)
        original: bytes | None
        try:
            original = wh.get_original(document_id)
        except WarehouseError as exc:  # no retained version has its hash: what is stored, which verify names
            original = wh.objects.get(wh.original_key(document_id))
            print(f"sohoa: warning: {exc}", file=sys.stderr)
    written = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in (("record.json", data), ("searchable.pdf", pdf), ("original", original)):
        if content is None:
            continue
        if name == "original":
            from pipeline.stages.load import sniff_media_type  # deferred: loads numpy, PIL, pydantic

            try:
                name = ORIGINAL_NAMES.get(sniff_media_type(content), "original.bin")
            except SohoaError:
                name = "original.bin"
        path = out_dir / name
        path.write_bytes(content)
        written[name] = path
    print(f"wrote {', '.join(str(p) for p in written.values())}", file=sys.stderr)
    pdf_opt = f" --pdf {written['searchable.pdf']}" if "searchable.pdf" in written else ""
    original_path = next((p for n, p in written.items() if n.startswith("original")), None)
    orig_opt = f" --original {original_path}" if original_path else ""
    print(f"verify with: sohoa verify {written['record.json']}{pdf_opt}{orig_opt} --trust CA.pem", file=sys.stderr)
    return ExitCode.ok
