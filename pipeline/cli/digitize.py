"""``sohoa digitize PATH...``: accept scans (files, folders, ``s3://`` prefixes, edXML packages) and run
the pipeline on them as Dask tasks (a LocalCluster by default, any scheduler by address)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from pipeline.cli.common import Command, add_common_options, settings_from_args
from pipeline.embedded.services import running_services
from pipeline.runtime.config import Settings
from pipeline.runtime.errors import ExitCode, SohoaError
from pipeline.runtime.executor import DaskExecutor, InlineExecutor, dask_client
from pipeline.service.api.auth import UNIT_PATTERN

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa digitize`` to the parser and its function to ``commands``."""
    p = sub.add_parser("digitize", help="deskew, OCR, extract, sign and store scans (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or s3://KEY:SECRET@host:port/bucket/prefix")
    add_common_options(p)
    p.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: a LocalCluster)")
    p.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--inline", action="store_true", help="run in this process without Dask (debugging)")
    p.add_argument("--force", action="store_true", help="process again documents already in the warehouse")
    p.add_argument("--unit", metavar="CODE", help="unit (mã đơn vị) the batch digitizes for: its records count under it on the dashboard")
    p.add_argument("--no-pdf-signature", action="store_true", help="do not PAdES-sign the searchable PDFs")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--s3-secure", action="store_true", default=None,
                   help="read s3:// inputs over HTTPS (also ?secure=true in the URL; port 443 implies it)")
    commands["digitize"] = cmd_digitize


def cmd_digitize(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # deferred: loads tqdm

    from pipeline.runtime.inputs import InputFile, iter_inputs  # deferred: loads numpy, PIL, pydantic
    from pipeline.runtime.orchestrate import BatchRunner  # deferred: loads minio, urllib3, numpy
    from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

    os.environ["OMP_THREAD_LIMIT"] = "1"  # the process edge: inline OCR runs here too
    settings = settings_from_args(args)
    if args.unit is not None:
        if not UNIT_PATTERN.match(args.unit):
            print(f"sohoa: --unit {args.unit!r}: a unit code is letters, digits, '.', '-', '_' (e.g. 000.00.01.H53)", file=sys.stderr)
            return ExitCode.bad_args
    inputs = list(iter_inputs(args.paths, s3_secure=getattr(args, "s3_secure", None)))
    missing = [i.path for i in inputs if isinstance(i, InputFile) and i.explicit and not i.path.exists()]
    if missing:
        raise SohoaError(f"no such file or folder: {', '.join(map(str, missing))}")

    unpacked = tempfile.TemporaryDirectory(prefix="sohoa-edxml-")
    inputs, packages = unpack_packages(inputs, Path(unpacked.name))
    if not inputs:
        print("sohoa: no scans found (PDF, TIFF, JPEG, PNG) in the given paths", file=sys.stderr)
        return ExitCode.input_file

    bar = tqdm(total=len(inputs), unit="doc", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)

    def progress(outcome) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{outcome.status}: {outcome.source_file}"[:60])
        if outcome.status == "failed" and outcome.error:
            bar.write(f"  failed  {outcome.source_file}: [{outcome.error.stage}/{outcome.error.code}] {outcome.error.message}")

    with running_services(settings) as resolved:
        warehouse = Warehouse(resolved.resolved_warehouse())
        if args.inline:
            runner = BatchRunner(resolved, InlineExecutor(), warehouse, progress=progress, manifest_dir=resolved.home / "runs", unit=args.unit)
            summary = runner.run(inputs)
        else:
            with dask_client(resolved.cluster, resolved) as client:
                runner = BatchRunner(resolved, DaskExecutor(client), warehouse, progress=progress, manifest_dir=resolved.home / "runs", unit=args.unit)
                summary = runner.run(inputs)
        if packages:
            updated = attach_packages(resolved, warehouse, packages)
            bar.write(f"edXML: metadata of {updated} package(s) attached to their records (source: package)")
    unpacked.cleanup()
    bar.close()
    data = summary.as_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(
            f"documents: {data['documents']}  ok: {data['ok']}  needs review: {data['needs_review']}  "
            f"failed: {data['failed']}  skipped (already stored): {data['skipped']}\n"
            f"pages: {data['pages']}  time: {data['seconds']:.1f} s  pages/second: {data['pages_per_second']:.2f}\n"
            f"warehouse: {resolved.resolved_warehouse().url()}  manifest: {resolved.home / 'runs' / (summary.run_id + '.jsonl')}"
        )
    if data["failed"]:
        return ExitCode.some_documents_failed
    return ExitCode.ok


def unpack_packages(inputs: list, folder: Path) -> tuple[list, dict]:
    """Explicitly named edXML packages among ``inputs``, recognised by content: each replaced by its
    attachment (written to ``folder``); returns the inputs and {document id of the attachment: package}."""
    from pipeline.records import edxml  # deferred: loads numpy, pydantic
    from pipeline.runtime.inputs import InputFile, document_id_of  # deferred: loads numpy, PIL, pydantic

    out: list = []
    packages: dict[str, edxml.Package] = {}
    for item in inputs:
        path = getattr(item, "path", None)
        if not (isinstance(item, InputFile) and item.explicit and path is not None and path.is_file()):
            out.append(item)
            continue
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if not edxml.is_package(head):
            out.append(item)
            continue
        try:
            package = edxml.read_package(path.read_bytes())
        except edxml.PackageError as exc:
            raise SohoaError(f"{path}: {exc}") from exc
        attachment = package.document()
        if attachment is None:
            raise SohoaError(f"{path}: the edXML package carries no PDF or image to digitize")
        target = folder / f"{len(packages):03d}" / Path(attachment.name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(attachment.data)
        packages[document_id_of(attachment.data)] = package
        out.append(InputFile(target, explicit=True))
    return out, packages


def attach_packages(resolved: Settings, warehouse, packages: dict) -> int:
    """Fill the records digitized from packages' attachments with the packages' metadata
    (``source: package``): a new version, signed and stored. Returns how many were updated."""
    from pipeline.records import edxml  # deferred: loads numpy, pydantic
    from pipeline.records.pii import (  # deferred: loads numpy, cryptography, pydantic
        KeyRing,
        decrypt_fields,
        encrypt_fields,
    )
    from pipeline.signing.sign import RemoteSigner  # deferred: loads numpy, cryptography, pydantic
    from pipeline.warehouse.store import write_indexes  # deferred: loads minio, urllib3, pikepdf

    keyring = KeyRing.load(resolved.pii_keyring) if resolved.pii_keyring else None
    signer = RemoteSigner(resolved.resolved_signer())
    updated = 0
    try:
        for document_id, package in packages.items():
            record = warehouse.get_record(document_id)
            if record is None or record.get("status") == "failed" or record.get("record_type") != "admin_document":
                continue
            if all(((record.get("field_evidence") or {}).get(k) or {}).get("source") == edxml.PACKAGE_SOURCE
                   and record["fields"].get(k) == v for k, v in package.fields.items()):
                continue  # already applied (a re-run)
            current = decrypt_fields(record, keyring, role="steward") if record.get("pii") and keyring else record
            new = edxml.apply_package(current, package)
            if record.get("pii") and keyring:
                new = encrypt_fields(new, keyring)
            signed, data = signer.sign_record_bytes(new)
            write_indexes(warehouse, signed, keyring)
            warehouse.put_record(document_id, data, status=signed.status)
            updated += 1
    finally:
        signer.close()
    return updated
