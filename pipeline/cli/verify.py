"""``sohoa verify``: a record's signature, its searchable PDF's PAdES signature and its original, offline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pipeline.cli.common import Command, settings_from_args
from pipeline.cli.get import stored_artefacts
from pipeline.runtime.errors import ExitCode, SohoaError

log = logging.getLogger("sohoa")


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    """Add ``sohoa verify`` to the parser and its function to ``commands``."""
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
    commands["verify"] = cmd_verify


def cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.signing.verify import (  # deferred: loads numpy, cryptography, pydantic
        verify_original,
        verify_pdf,
        verify_record_bytes,
    )

    settings = settings_from_args(args)
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
        label, data, pdf, original = stored_artefacts(settings, args.document)
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
