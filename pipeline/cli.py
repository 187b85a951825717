"""The ``sohoa`` command. Builds configuration once, runs one command, maps errors to exit codes.

Commands::

    sohoa digitize PATH... [--warehouse URL] [--scheduler ADDRESS] [--workers N]   (PATH may be an edXML package)
    sohoa export [--warehouse URL] [--output FILE]
    sohoa export --format archive-csv|archive-xlsx|archive-xml|archive-json|edxml [--agency CODE] [-o DIR]
    sohoa verify RECORD.json [--trust CA.pem]
    sohoa get ID [-o DIR]                     (record.json as stored, searchable.pdf, original.<ext>)
    sohoa signer [--state DIR] [--host 127.0.0.1] [--port 8700]
    sohoa schemas [--check | --write]
    sohoa services status|stop [--force]     (the embedded S3 server and signer: pipeline.supervise)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import ClusterSettings, Settings, settings_from_env
from .errors import ExitCode, SohoaError, exit_code_for

log = logging.getLogger("sohoa")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, help="state directory of embedded services (default: $SOHOA_HOME or ~/.local/share/sohoa)")
    parser.add_argument("--warehouse", metavar="URL", help="S3 warehouse, http(s)://KEY:SECRET@host:port/bucket (default: embedded SeaweedFS)")
    parser.add_argument("--signer", metavar="URL", help="remote signer base URL (default: embedded signer); credentials from SOHOA_SIGNER_USER/PASSWORD")
    parser.add_argument("-v", "--verbose", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sohoa", description="Digitize Vietnamese administrative records into signed, reusable data.")
    parser.add_argument("--version", action="version", version=f"sohoa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("digitize", help="deskew, OCR, extract, sign and store scans (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or s3://KEY:SECRET@host:port/bucket/prefix")
    _common(p)
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

    p = sub.add_parser("export", help="print every record as JSON Lines, or export for an archive (Circular 02/2019) "
                                      "or as edXML packages")
    _common(p)
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

    p = sub.add_parser("verify", help="verify a record's signature, its searchable PDF's PAdES signature and its "
                                      "original, offline, and their chain to the CA")
    p.add_argument("record", type=Path, nargs="?", help="a record file (JSON as stored)")
    p.add_argument("--pdf", type=Path, help="its searchable PDF: PAdES signature, chain, and the hash the record binds")
    p.add_argument("--original", type=Path, help="its original scan: the hash the record binds")
    p.add_argument("--document", metavar="ID", help="verify the stored record, PDF and original of this document id "
                                                     "in the warehouse instead of files")
    p.add_argument("--trust", type=Path, action="append", help="trusted CA certificate (PEM); default: the embedded signer's CA")
    p.add_argument("--crl", type=Path, action="append",
                   help="CRL (DER or PEM) to check revocation against; default: the embedded signer's CRLs")
    p.add_argument("--home", type=Path)
    p.add_argument("--warehouse", metavar="URL", help="with --document: the S3 warehouse (default: embedded)")

    p = sub.add_parser("get", help="take a stored document out: its record exactly as stored (record.json), its "
                                   "searchable PDF and its original, for `sohoa verify` anywhere")
    p.add_argument("document_id", metavar="ID", help="document id (SHA-256 of the original, 64 hex digits)")
    p.add_argument("--output", "-o", type=Path, metavar="DIR", help="folder to write (default ./<ID>); created")
    _common(p)

    p = sub.add_parser("signer", help="run the remote-signing service (CSC API)")
    p.add_argument("--state", type=Path, help="state directory (keys, certificates, users)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--home", type=Path)

    p = sub.add_parser("schemas", help="check or write the JSON Schemas in schemas/")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")

    for module_name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not module_name.startswith(str(exc.name)):
                raise
            continue
        module.register(sub, COMMANDS, common=_common)
    return parser


#: Modules that add sub-commands: each has ``register(subparsers, commands, common=...)``
#: adding its parsers and ``commands[name] = fn(args) -> int``.
EXTENSION_MODULES = ("pipeline.api.commands", "pipeline.catalog.commands", "pipeline.supervise",  # supervise: `sohoa services`
                     "pipeline.pii_commands")  # `sohoa pii init|rotate|show`


def cli_actor():
    """Who acts from the command line, for the audit and reuse logs: the OS user."""
    import getpass

    from .audit import Actor

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container
        user = str(os.getuid())
    return Actor(key_id=f"cli:{user}", unit="cli", role="admin")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Public for extension modules: the same settings every command builds."""
    return _settings(args)


def _settings(args: argparse.Namespace) -> Settings:
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


# --- commands -------------------------------------------------------------------------------


def cmd_digitize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .executor import DaskExecutor, InlineExecutor, dask_client
    from .inputs import InputFile, iter_inputs
    from .orchestrate import BatchRunner
    from .services import running_services
    from .warehouse import Warehouse

    os.environ["OMP_THREAD_LIMIT"] = "1"  # the process edge: inline OCR runs here too
    settings = _settings(args)
    if args.unit is not None:
        from .api.auth import UNIT_PATTERN

        if not UNIT_PATTERN.match(args.unit):
            print(f"sohoa: --unit {args.unit!r}: a unit code is letters, digits, '.', '-', '_' (e.g. 000.00.01.H53)", file=sys.stderr)
            return ExitCode.bad_args
    inputs = list(iter_inputs(args.paths, s3_secure=getattr(args, "s3_secure", None)))
    missing = [i.path for i in inputs if isinstance(i, InputFile) and i.explicit and not i.path.exists()]
    if missing:
        raise SohoaError(f"no such file or folder: {', '.join(map(str, missing))}")
    import tempfile

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
    from .services import running_services
    from .warehouse import Warehouse

    settings = _settings(args)
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
                from .pii import KeyRing

                keyring = KeyRing.load(resolved.resolved_pii_keyring())
                from .audit import write_audit

                # fail closed: no personal data leaves before the access is logged
                write_audit(warehouse, cli_actor(), "export.decrypt", detail={"scope": "every record", "phase": "start"})
            for record in warehouse.iter_records():
                view = record
                if keyring is not None and record.get("pii"):
                    from .pii import decrypt_fields

                    view = decrypt_fields(record, keyring, role="admin")
                    decrypted.append(record["document_id"])
                line = export_line(view, stored=record)
                if args.table:
                    from .catalog.index import RECORD_TYPE_NAMES

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
    from . import archive, edxml
    from .services import running_services
    from .warehouse import Warehouse

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


def unpack_packages(inputs: list, folder: Path) -> tuple[list, dict]:
    """Explicitly named edXML packages among ``inputs``, recognised by content: each replaced by its
    attachment (written to ``folder``); returns the inputs and {document id of the attachment: package}."""
    from . import edxml
    from .inputs import InputFile, document_id_of

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
    from . import edxml
    from .pii import KeyRing, decrypt_fields, encrypt_fields
    from .sign import RemoteSigner
    from .store import write_indexes

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
            warehouse.put_record(document_id, data, status=signed["status"])
            updated += 1
    finally:
        signer.close()
    return updated


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_original, verify_pdf, verify_record_bytes

    settings = _settings(args)
    configured = settings.signer.trust_anchor if settings.signer is not None else None  # SOHOA_TRUST_ANCHOR
    trust = args.trust or [configured or settings.home / "signer" / "ca" / "ca.pem"]
    anchors = []
    for path in trust:
        if not Path(path).exists():
            raise SohoaError(f"trusted CA certificate not found: {path} (give --trust CA.pem)")
        anchors.append(Path(path).read_bytes())
    ca_dir = Path(configured).parent if configured and not args.trust else settings.home / "signer" / "ca"
    # the embedded signer's CRLs only go with its own CA: another --trust CA brings its own --crl
    default_crls = [p for p in (ca_dir / "root.crl", ca_dir / "issuing.crl") if p.exists()] if not args.trust else []
    crl_files = args.crl or default_crls
    crls = []
    for path in crl_files:
        if not Path(path).exists():
            raise SohoaError(f"CRL not found: {path}")
        crls.append(Path(path).read_bytes())
    if args.document:
        label, data, pdf, original = _stored_artefacts(settings, args.document)
    elif args.record:
        label, data = str(args.record), args.record.read_bytes()
        pdf = args.pdf.read_bytes() if args.pdf else None
        original = args.original.read_bytes() if args.original else None
    else:
        raise SohoaError("give a record file (RECORD.json [--pdf FILE] [--original FILE]) or --document ID")
    report = verify_record_bytes(data, anchors, crls)
    reports = [("record", report)]
    record = None
    try:
        record = json.loads(data)
    except ValueError:
        pass  # the record report says why
    if pdf is not None:
        reports.append(("searchable PDF", verify_pdf(pdf, record, anchors, crls)))
    if original is not None and record is not None:
        reports.append(("original", verify_original(original, record)))
    if all(r.ok for _, r in reports):
        checked = ", ".join(name for name, _ in reports)
        print(f"OK: {label} ({checked}) signed by {report.signer} at {report.signed_at}")
        return ExitCode.ok
    print(f"FAILED: {label}", file=sys.stderr)
    for name, r in reports:
        for problem in r.problems:
            print(f"  - {name}: {problem}", file=sys.stderr)
    return ExitCode.verification_failed


def _stored_artefacts(settings: Settings, document_id: str) -> tuple[str, bytes, bytes | None, bytes | None]:
    """Record bytes, searchable PDF and original of a stored document. The original is the
    retained version whose hash matches; when none does, the current bytes (which then fail)."""
    from .errors import WarehouseError
    from .services import running_services
    from .warehouse import Warehouse

    with running_services(settings, need_signer=False) as resolved:
        wh = Warehouse(resolved.resolved_warehouse())
        data = wh.get_record_bytes(document_id)
        if data is None:
            raise SohoaError(f"no record for document {document_id} in {resolved.resolved_warehouse().url()}")
        original: bytes | None
        try:
            original = wh.get_original(document_id)
        except WarehouseError:
            original = wh._get(wh.original_key(document_id))  # noqa: SLF001 - what is stored, to be reported
        return f"document {document_id}", data, wh.get_pdf(document_id), original


#: names ``sohoa get`` writes the original under, by its media type (never the source file's
#: name, which may name a person)
ORIGINAL_NAMES = {"application/pdf": "original.pdf", "image/tiff": "original.tif", "image/jpeg": "original.jpg",
                  "image/png": "original.png"}


def cmd_get(args: argparse.Namespace) -> int:
    """``sohoa get ID -o DIR``: DIR/record.json (the stored bytes, any changed byte fails its
    signature), DIR/searchable.pdf and DIR/original.<ext> exactly as stored. Audited: the PDF
    and the original show the person a record concerns."""
    import re

    from .audit import write_audit
    from .errors import DocumentNotFoundError, WarehouseError
    from .services import running_services
    from .warehouse import Warehouse

    document_id = args.document_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", document_id):
        raise DocumentNotFoundError(f"{args.document_id!r} is no document id (the SHA-256 of an original: 64 hex digits)")
    settings = _settings(args)
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
            original = wh._get(wh.original_key(document_id))  # noqa: SLF001
            print(f"sohoa: warning: {exc}", file=sys.stderr)
    written = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in (("record.json", data), ("searchable.pdf", pdf), ("original", original)):
        if content is None:
            continue
        if name == "original":
            from .load import sniff_media_type

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


def check_listen_address(host: str, port: int) -> None:
    """Refuse early, with a typed error, an address a server could not listen on (a port in
    use, or a host that is not this machine's): before services start, not after."""
    import socket

    from .errors import PortInUseError

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


def _run_server_command(fn, args: argparse.Namespace) -> int:
    """A command that runs a server (``serve``): its address checked first, and a server that
    could not start (uvicorn exits with 3, the code we use for a missing dependency) reported
    as the bad address it is."""
    from .errors import PortInUseError

    check_listen_address(args.host, args.port)
    try:
        return int(fn(args))
    except SystemExit as exc:
        if exc.code in (None, 0):
            return ExitCode.ok
        if exc.code == 3:  # uvicorn's STARTUP_FAILURE: it could not bind (its log says why)
            raise PortInUseError(f"the server could not start on {args.host}:{args.port} (port taken meanwhile?)") from exc
        raise


def cmd_signer(args: argparse.Namespace) -> int:
    from .signer import serve

    settings = _settings(args)
    state = Path(args.state or (settings.home / "signer"))
    passphrase = os.environ.get("SOHOA_SIGNER_PASSPHRASE") or None
    user, password, pin = (os.environ.get(k) for k in ("SOHOA_SIGNER_USER", "SOHOA_SIGNER_PASSWORD", "SOHOA_SIGNER_PIN"))
    if password and pin:
        # first start of a deployment: create the state with the configured client credentials
        from .signer import keystore

        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = keystore.resolve_passphrase(state, passphrase)
        keystore.init_state(state, secret, username=user or "sohoa", password=password, pin=pin)
    logging.getLogger().setLevel(logging.INFO)
    serve(state, host=args.host, port=args.port, passphrase=passphrase)
    return ExitCode.ok


def cmd_schemas(args: argparse.Namespace) -> int:
    from .validate import generate_schemas, schemas_dir, write_schemas

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


COMMANDS = {
    "digitize": cmd_digitize,
    "export": cmd_export,
    "verify": cmd_verify,
    "get": cmd_get,
    "signer": cmd_signer,
    "schemas": cmd_schemas,
}


#: commands that listen on ``args.host``/``args.port``
SERVER_COMMANDS = ("serve", "signer")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command in SERVER_COMMANDS:
            return _run_server_command(COMMANDS[args.command], args)
        return int(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.ctrl_c
    except SohoaError as exc:
        print(f"sohoa: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
