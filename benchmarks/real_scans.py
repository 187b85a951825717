"""Real documents: fields right, wrong-but-flagged and wrong-and-silent, on ``../shared/real-scans``.

The development set is 15 real documents of the Quảng Ngãi People's Committee (signed scans
with handwritten numbers and days, red seals, an incoming-mail stamp, one born-digital PDF) with
``truth.json``, every field read by eye. Each document goes through the pipeline's own per-document
path — probe (``prepare_document``), every page through load → deskew → clean-up → OCR (or the PDF's
text layer) (``process_page``), then ``build_record`` (quality gate, extraction, validation) — in
worker processes, without the warehouse and signer (they do not change a field).

The same documents go through the code of a **baseline commit** (default: the last commit before
issue 17, ``aed6b9a``), checked out with ``git worktree`` into a temporary folder and run in the
same way in the same run, so both columns are measured on this machine at the same time.

For every field of the truth (number, doc_type, issuer, place, date, subject, signer, signer_title,
authority_prefix, recipients) a value is:

* **right**: equal to the truth after :func:`norm_text` (NFC, spacing, trailing punctuation, case,
  old/new tone placement "uỷ/ủy");
* **flagged**: wrong or missing, and the field is named in ``review_reasons`` or
  ``validation_errors`` (a steward is sent to it);
* **silent**: wrong or missing and not named — the worst outcome: a steward trusts it.

Also printed: records marked ``ok`` that hold a wrong field; **trusted values** — values present
and not named for review, what a once-only lookup would hand on — and how many are right; and the
character error of the text of born-digital pages (``text_layer: full`` in the truth) against
poppler's ``pdftotext`` of the same page (another PDF library than the one the pipeline reads
with), order-independent (:func:`cer`), the e-signature stamps' lines left out of the reference.

Run: ``OMP_THREAD_LIMIT=1 .venv/bin/python benchmarks/real_scans.py [--jobs 2] [--baseline REV | --no-baseline]
[--show] [--only NAME]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-scans"
FIELDS = ("number", "doc_type", "issuer", "place", "date", "subject", "signer", "signer_title",
          "authority_prefix", "recipients")  # fmt: skip
#: The last commit before issue 17 (real documents).
DEFAULT_BASELINE = "aed6b9a"

_TONE = {"uỷ": "ủy", "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa", "uý": "úy", "uỳ": "ùy",
         "uỹ": "ũy", "uỵ": "ụy", "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe"}  # fmt: skip


def norm_text(value: str) -> str:
    """What a reader takes as the same text: NFC, one space between words and after , ; : (none
    before them), no trailing ; . , , case-insensitive, old and new tone placement alike."""
    value = unicodedata.normalize("NFC", value).lower()
    for old, new in _TONE.items():
        value = value.replace(old, new)
    value = re.sub(r"\s*([,;:])\s*", r"\1 ", value)
    value = re.sub(r"\s*-\s*", " - ", value)
    return " ".join(value.split()).rstrip(" ;.,")


def comparable(field: str, value):
    """The part of a record value that the truth defines. ``authority_prefix``: the truth holds the
    prefix on the line just above the signer's own title ("KT."); a record keeps the whole
    authority line(s) with what they apply to ("TM. Ủy ban nhân dân; KT. Chủ tịch"), whose last
    prefix is that one."""
    if field == "authority_prefix" and value:
        return value.split(";")[-1].strip().split(" ")[0]
    return value


def same(truth, got) -> bool:
    if isinstance(truth, list) or isinstance(got, list):
        return [norm_text(t) for t in truth or []] == [norm_text(g) for g in got or []]
    return (norm_text(truth) if truth else None) == (norm_text(got) if got else None)


# --- worker: one document through the pipeline of ``root`` -----------------------------------


def _digitize(args) -> dict:
    root, path = args
    sys.path.insert(0, root)
    try:
        from pipeline.runtime import document as doc
        from pipeline.runtime.config import Settings
        from pipeline.stages.models import ErrorItem, PageOutput, SourceRef
    except ImportError:  # a tree before the layout by role (issue 21 item 7), e.g. the baseline
        from pipeline.config import Settings
        from pipeline.models import ErrorItem, PageOutput, SourceRef

        from pipeline import document as doc

    data = Path(path).read_bytes()
    home = tempfile.mkdtemp(prefix="sohoa-real-")
    settings = Settings(home=Path(home))
    import hashlib

    ref = SourceRef(document_id=hashlib.sha256(data).hexdigest(), source_file=Path(path).name, size=len(data),
                    original_key="originals/none")  # fmt: skip

    class _Runtime:  # the original from memory instead of the warehouse
        def original(self, _document_id):
            return data

    doc.runtime_for = lambda _settings: _Runtime()
    t0 = time.perf_counter()
    info = doc.prepare_document(ref, settings)
    if isinstance(info, ErrorItem):
        return {"file": ref.source_file, "status": "failed", "error": info.message, "seconds": 0}
    pages = [doc.process_page(ref, info, p, settings) for p in range(1, info.page_count + 1)]
    errors = [p for p in pages if isinstance(p, ErrorItem)]
    if errors:
        return {"file": ref.source_file, "status": "failed", "error": errors[0].message, "seconds": 0}
    outputs = [p for p in pages if isinstance(p, PageOutput)]
    kwargs = {"settings": settings}
    if "info" in inspect.signature(doc.build_record).parameters:
        kwargs["info"] = info
    record = doc.build_record(ref, outputs, **kwargs)
    if not isinstance(record, dict):  # the model (issue 21 item 5); older trees return its JSON object
        record = record.to_json()
    return {
        "file": ref.source_file,
        "status": record["status"],
        "fields": record["fields"],
        "confidence": record["field_confidence"],
        "flagged": sorted({i["field"] for i in record["review_reasons"] + record["validation_errors"]}),
        "reasons": [f"{i['field']}: {i['message']}" for i in record["review_reasons"] + record["validation_errors"]],
        "pii": bool(record.get("pii")),
        "page_text": [p["text"] for p in record["pages"]],
        "page_source": [p.get("text_source", "ocr") for p in record["pages"]],
        "seconds": time.perf_counter() - t0,
        "code": str(Path(doc.__file__).parents[len(doc.__name__.split(".")) - 1]),  # the tree that ran
    }


def run(root: Path, files: list[Path], jobs: int) -> dict[str, dict]:
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return {r["file"]: r for r in pool.map(_digitize, [(str(root), str(f)) for f in files])}


# --- scoring -------------------------------------------------------------------------------


def cer(ref: str, hyp: str) -> float:
    """Character error between two readings of a page, independent of reading order and of
    where lines break: the characters (whitespace aside) one reading has and the other lacks, as
    multisets, over the reference's characters; a substitution counts twice. (pdftotext reads the
    two header columns one after the other, the pipeline row by row; an order-sensitive distance
    would count that as error.)"""
    from collections import Counter

    a, b = Counter("".join(ref.split())), Counter("".join(hyp.split()))
    return sum(((a - b) + (b - a)).values()) / max(1, sum(a.values()))


#: Lines of the e-signature stamps (signer, e-mail, '18.11.2024 07:25:14 +07:00', the gazette centre's
#: name): metadata, not the page's text (the pipeline keeps them out of the text layer on purpose).
_STAMP_LINE = re.compile(r"@|\+07:00|^\d\d\.\d\d\.\d{4} \d\d:\d\d|^(TRUNG TÂM CÔNG|BÁO VÀ TIN HỌC)|Ký bởi|Thời gian ký|^Cơ quan:", re.IGNORECASE)


def pdftotext_page(path: Path, page: int) -> str:
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"], capture_output=True)
    text = unicodedata.normalize("NFC", out.stdout.decode("utf-8", "replace"))
    return "\n".join(line for line in text.splitlines() if not _STAMP_LINE.search(line))


def score(truth: dict, results: dict[str, dict]) -> dict:
    per_field = {f: {"right": 0, "flagged": 0, "silent": 0} for f in FIELDS}
    ok_wrong = ok = failed = 0
    trusted = trusted_right = 0  # values present and not named for review: what a lookup hands on
    wrong: list[str] = []
    for name, t in truth.items():
        r = results.get(name)
        if r is None or r["status"] == "failed":
            failed += 1
            for f in FIELDS:
                per_field[f]["flagged"] += 1
            continue
        bad = False
        for f in FIELDS:
            tv, gv = t["fields"].get(f), comparable(f, r["fields"].get(f))
            if gv not in (None, "", []) and f not in r["flagged"]:
                trusted += 1
                trusted_right += same(tv, gv)
            if same(tv, gv):
                per_field[f]["right"] += 1
                continue
            bad = True
            kind = "flagged" if f in r["flagged"] else "silent"
            per_field[f][kind] += 1
            wrong.append(f"{kind:7} {name} {f}: got {gv!r}, truth {tv!r}")
        if r["status"] == "ok":
            ok += 1
            ok_wrong += bad
    total = {k: sum(v[k] for v in per_field.values()) for k in ("right", "flagged", "silent")}
    return {"fields": per_field, "total": total, "ok": ok, "ok_wrong": ok_wrong, "failed": failed, "wrong": wrong,
            "trusted": trusted, "trusted_right": trusted_right}  # fmt: skip


def born_digital_cer(truth: dict, results: dict[str, dict]) -> tuple[float, int] | None:
    errs, chars = 0.0, 0
    for name, t in truth.items():
        if t.get("text_layer") != "full" or name not in results or results[name]["status"] == "failed":
            continue
        for i, text in enumerate(results[name]["page_text"], start=1):
            ref = pdftotext_page(REAL / name, i)
            n = len(" ".join(ref.split()))
            errs += cer(ref, text) * n
            chars += n
    return (errs / chars, chars) if chars else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of the code to compare with")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--show", action="store_true", help="print every wrong value and every reason")
    ap.add_argument("--only", action="append", default=[], help="only these files (repeatable, substring)")
    ap.add_argument("--json", type=Path, help="write the results of both runs here")
    args = ap.parse_args(argv)

    if not (REAL / "truth.json").exists():
        print(f"no development set at {REAL}", file=sys.stderr)
        return 2
    truth = json.loads((REAL / "truth.json").read_text(encoding="utf-8"))
    if args.only:
        truth = {k: v for k, v in truth.items() if any(o in k for o in args.only)}
    files = [REAL / name for name in truth]

    columns: dict[str, dict[str, dict]] = {}
    timings: dict[str, float] = {}
    worktree = None
    try:
        if not args.no_baseline:
            worktree = Path(tempfile.mkdtemp(prefix="sohoa-baseline-"))
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.baseline],
                           check=True, capture_output=True)  # fmt: skip
            t0 = time.perf_counter()
            columns[f"baseline {args.baseline}"] = run(worktree, files, args.jobs)
            timings[f"baseline {args.baseline}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        columns["sohoa (this tree)"] = run(ROOT, files, args.jobs)
        timings["sohoa (this tree)"] = time.perf_counter() - t0
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], capture_output=True)

    scores = {name: score(truth, res) for name, res in columns.items()}
    names = list(columns)
    print(f"\n{len(truth)} real documents, {len(FIELDS)} fields each; right / wrong-but-flagged / wrong-and-SILENT")
    print(f"{'field':18}" + "".join(f"{n:>30}" for n in names))
    for f in FIELDS:
        cells = [f"{s['fields'][f]['right']:>2} / {s['fields'][f]['flagged']:>2} / {s['fields'][f]['silent']:>2}" for s in scores.values()]
        print(f"{f:18}" + "".join(f"{c:>30}" for c in cells))
    n = len(truth) * len(FIELDS)
    cells = [f"{s['total']['right']}/{n} ({100 * s['total']['right'] / n:.1f} %) silent {s['total']['silent']}" for s in scores.values()]
    print(f"{'all fields':18}" + "".join(f"{c:>30}" for c in cells))
    printed = ("doc_type", "issuer", "subject", "signer", "signer_title")
    cells = []
    for s in scores.values():
        right = sum(s["fields"][f]["right"] for f in printed)
        cells.append(f"{right}/{len(truth) * len(printed)} ({100 * right / (len(truth) * len(printed)):.1f} %)")
    print(f"{'printed 5 fields':18}" + "".join(f"{c:>30}" for c in cells))
    cells = [f"{s['ok']} ok, {s['ok_wrong']} with a wrong field" for s in scores.values()]
    print(f"{'ok records':18}" + "".join(f"{c:>30}" for c in cells))
    cells = [f"{s['trusted_right']}/{s['trusted']} right" for s in scores.values()]
    print(f"{'trusted values':18}" + "".join(f"{c:>30}" for c in cells))
    cells = [str(s["failed"]) for s in scores.values()]
    print(f"{'failed documents':18}" + "".join(f"{c:>30}" for c in cells))
    cells = []
    for res in columns.values():
        b = born_digital_cer(truth, res)
        cells.append(f"{100 * b[0]:.2f} % of {b[1]} chars" if b else "-")
    print(f"{'born-digital CER':18}" + "".join(f"{c:>30}" for c in cells))
    cells = [f"{timings[nm]:.0f} s" for nm in names]
    print(f"{'wall time':18}" + "".join(f"{c:>30}" for c in cells))
    if args.show:
        for nm, s in scores.items():
            print(f"\n== {nm}: wrong values")
            for line in s["wrong"]:
                print("  " + line)
        last = columns[names[-1]]
        print(f"\n== {names[-1]}: review reasons")
        for name in truth:
            r = last.get(name, {})
            print(f"  {name} [{r.get('status')}] sources {r.get('page_source')}")
            for reason in r.get("reasons", []):
                print(f"      {reason}")
    if args.json:
        args.json.write_text(json.dumps(columns, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
