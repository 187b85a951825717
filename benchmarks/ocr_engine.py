"""Tesseract in process: the ctypes binding of a baseline commit vs ``tesserocr``, on the same pages,
in one process.

    OMP_THREAD_LIMIT=1 .venv/bin/python benchmarks/ocr_engine.py [--pages 12] [--reps 3] [--dpi 200]
        [--baseline e816fbe] [--quality-pages 18] [--real 15] [--fields | --fields-only [--only NAME]]

Engines:

* ``ctypes 5.3 PNM (baseline)``: ``pipeline/_exec/tesseract.py`` of the ``--baseline`` commit (the 379-line
  ctypes binding of Debian's libtesseract 5.3, whose import of ``pixWriteMem`` it redirected to
  PNM on load), taken from git and loaded next to this tree's modules;
* ``tesserocr 5.5 PNG (default)``: this tree's engine, Tesseract's own PNG round trip per line;
* ``tesserocr 5.5 PNM (opt-in)``: the same with ``OcrSettings.line_images_pnm``
  (:func:`pipeline._exec.tesseract.line_images_as_pnm`).

(1) CPU seconds a page: sohoa's own OCR input of the throughput benchmark's batch (load → deskew
    → clean-up, cached by benchmarks/throughput.py), downscaled to ``--dpi`` as
    ``pipeline.stages.ocr.ocr_input`` does. Each repetition reads every page once with each engine
    (order rotated every repetition); the figure is the least CPU time over the repetitions.
    PNG and PNM must read the same TSV byte for byte: the script says so, or fails.
(2) The same reading, baseline vs tesserocr: words (text and box) and their confidences, on
    those pages, on ``--quality-pages`` rendered pages of benchmarks/ocr_quality.py (clean /
    office / heavy) read at their own resolution, and on the first page of ``--real`` real
    scans (``../shared/real-scans``, load → deskew → clean-up).
(3) Character error rate of sohoa's page reading (``pipeline.runtime.document.read_page``, default
    settings) on the rendered pages against their truth, with each engine in ``pipeline.stages.ocr``.
(4) With ``--fields``: benchmarks/real_scans.py's per-document path and scoring on the real
    development set (right / flagged / silent fields), this tree vs this tree with the baseline's
    ``pipeline/_exec/tesseract.py`` (benchmarks/throughput.py's ``baseline_tree``), in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
REAL_SCANS = ROOT.parent / "shared" / "real-scans"
#: the last commit with the ctypes binding
DEFAULT_BASELINE = "e816fbe"


def baseline_binding(rev: str):
    """``pipeline/_exec/tesseract.py`` of ``rev``, loaded as ``pipeline._exec._baseline_tesseract`` (its relative imports rebased onto this layout)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:pipeline/tesseract.py"], check=True,
                            capture_output=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp(prefix="sohoa-baseline-")) / "tesseract.py"
    path.write_bytes(source.replace(b"from .errors import", b"from pipeline.runtime.errors import")
                     .replace(b"from . import linkpatch", b"from pipeline._exec import linkpatch"))
    spec = importlib.util.spec_from_file_location("pipeline._exec._baseline_tesseract", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def words(tsv: str) -> list[tuple[str, tuple[int, ...], float]]:
    """(text, box, confidence) of every word of a TSV."""
    out = []
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) == 12 and cells[0] == "5":
            out.append((cells[11], tuple(int(c) for c in cells[6:10]), float(cells[10])))
    return out


def compare(pairs: list[tuple[str, str]]) -> dict:
    """Words the same (text and box) and confidence differences over (baseline, tesserocr) TSVs."""
    total = same_text = same_box = 0
    diffs: list[float] = []
    pages_identical = 0
    for old, new in pairs:
        a, b = words(old), words(new)
        pages_identical += [(t, box) for t, box, _ in a] == [(t, box) for t, box, _ in b]
        import difflib

        matcher = difflib.SequenceMatcher(a=[(t, box) for t, box, _ in a], b=[(t, box) for t, box, _ in b],
                                          autojunk=False)  # fmt: skip
        total += max(len(a), len(b))
        for block in matcher.get_matching_blocks():
            same_box += block.size
            for k in range(block.size):
                diffs.append(abs(a[block.a + k][2] - b[block.b + k][2]))
        same_text += sum(block.size for block in difflib.SequenceMatcher(
            a=[t for t, _, _ in a], b=[t for t, _, _ in b], autojunk=False).get_matching_blocks())  # fmt: skip
    diffs.sort()
    return {
        "pages": len(pairs), "pages_identical": pages_identical, "words": total,
        "same_text": same_text, "same_text_and_box": same_box,
        "conf_mean": sum(diffs) / max(1, len(diffs)),
        "conf_p99": diffs[int(0.99 * (len(diffs) - 1))] if diffs else 0.0,
        "conf_max": diffs[-1] if diffs else 0.0,
    }  # fmt: skip


def prepared(data: bytes, page: int = 1):
    from pipeline.runtime.config import Settings
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.load import probe, render_page

    settings = Settings(home=Path(tempfile.gettempdir()))
    raster = render_page(data, probe(data, settings.limits), page, settings.limits)
    return cleanup_page(deskew_page(raster, settings.image), settings.image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision with the ctypes binding")
    parser.add_argument("--quality-pages", type=int, default=18)
    parser.add_argument("--real", type=int, default=15, help="real scans (first page each); 0: none")
    parser.add_argument("--fields", action="store_true", help="(4): fields of the real development set")
    parser.add_argument("--fields-only", action="store_true", help="(4) alone")
    parser.add_argument("--only", action="append", default=[], help="(4): only these real documents (substring)")
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"
    if args.fields_only:
        fields(args)
        return 0

    import numpy as np
    from PIL import Image
    from throughput import make_batch, prepared_images

    from pipeline._exec import linkpatch, tesseract
    from pipeline.stages.ocr import ocr_input
    from workers.memory import keep_page_buffers

    keep_page_buffers()  # the allocator as in a worker (workers/memory.py)
    old = baseline_binding(args.baseline)
    _, pdfs = make_batch(40, 4)
    images = [ocr_input(np.asarray(Image.open(p)), 300, args.dpi)[0] for p in prepared_images(pdfs)[: args.pages]]
    kwargs = {"dpi": args.dpi, "lang": "vie", "psm": 4, "user_patterns": tesseract.PATTERNS_FILE, "text_pdf": False}

    writer = tesseract.line_image_writer()
    if writer is None or tesseract.line_images_redirected():
        print("the tesserocr libtesseract's pixWriteMem import is not found, or already redirected")
        return 1
    slot, png, pnm = writer
    current = png

    def read_new(target: int) -> list[str]:
        nonlocal current
        if not linkpatch.redirect_import(slot, current, target):
            raise SystemExit("could not switch the redirect")
        current = target
        return [tesseract.run(img, **kwargs).tsv for img in images]

    engines = {
        "ctypes 5.3 PNM (baseline)": lambda: [old.run(img, **kwargs).tsv for img in images],
        "tesserocr 5.5 PNG (default)": lambda: read_new(png),
        "tesserocr 5.5 PNM (opt-in)": lambda: read_new(pnm),
    }
    best = {name: float("inf") for name in engines}
    readings: dict[str, list[str]] = {}
    names = list(engines)
    for rep in range(args.reps):
        for name in names[rep % 3 :] + names[: rep % 3]:
            t0 = time.process_time()
            tsv = engines[name]()
            best[name] = min(best[name], (time.process_time() - t0) / len(images))
            if readings.setdefault(name, tsv) != tsv:
                print(f"{name}: the reading changed between repetitions")
                return 1
    linkpatch.redirect_import(slot, current, png)  # leave the default
    base = best[names[0]]
    print(f"tesserocr {tesseract.tesseract_version('library')} vs the ctypes binding of {args.baseline} "
          f"(Debian libtesseract {tesseract.tesseract_version('cli')})")  # fmt: skip
    print(f"(1) {len(images)} pages of the throughput batch at {args.dpi} dpi, {args.reps} repetitions; "
          "CPU seconds a page (least of the repetitions)")  # fmt: skip
    for name, secs in best.items():
        print(f"  {name:<30} {secs:6.3f} s   {100 * (secs / base - 1):+6.1f} % of the baseline")
    png_pnm_same = readings[names[1]] == readings[names[2]]
    print(f"  PNG vs PNM line images (tesserocr): {'identical' if png_pnm_same else 'DIFFERENT'} TSV, byte for byte;"
          f" the opt-in saves {100 * (1 - best[names[2]] / best[names[1]]):.1f} % of the default's CPU")  # fmt: skip

    # (2) the same reading
    sets = {f"throughput batch, {args.dpi} dpi": list(zip(readings[names[0]], readings[names[1]], strict=True))}
    from ocr_quality import cer, make_page, plan

    quality = [make_page(job, cache=True) | {"job": job} for job in plan(args.quality_pages)]
    pairs = []
    for q in quality:
        gray = np.asarray(Image.open(q["png"]).convert("L"))
        opts = dict(kwargs, dpi=q["job"].dpi)
        pairs.append((old.run(gray, **opts).tsv, tesseract.run(gray, **opts).tsv))
    sets[f"rendered pages (ocr_quality), {len(pairs)}"] = pairs
    real = sorted(REAL_SCANS.glob("*.pdf"))[: args.real] if REAL_SCANS.is_dir() else []
    pairs = []
    for pdf in real:
        page = prepared(pdf.read_bytes())
        opts = dict(kwargs, dpi=page.dpi)
        pairs.append((old.run(page.ocr_image, **opts).tsv, tesseract.run(page.ocr_image, **opts).tsv))
    if pairs:
        sets[f"real scans, first page, {len(pairs)}"] = pairs
    print("(2) baseline vs tesserocr: words the same (text / text and box), confidence difference (points)")
    for label, pairs in sets.items():
        c = compare(pairs)
        print(f"  {label:<38} pages identical in words and boxes {c['pages_identical']}/{c['pages']}; "
              f"words {c['words']}: same text {100 * c['same_text'] / max(1, c['words']):.2f} %, "
              f"same text and box {100 * c['same_text_and_box'] / max(1, c['words']):.2f} %; "
              f"confidence |Δ| mean {c['conf_mean']:.2f}, p99 {c['conf_p99']:.2f}, max {c['conf_max']:.2f}")

    # (3) character error of the page reading, each engine in pipeline.stages.ocr
    from pipeline.runtime.config import Settings
    from pipeline.runtime.document import read_page
    from pipeline.stages import ocr
    from pipeline.stages.models import RasterPage

    settings = Settings(home=Path(tempfile.gettempdir()))
    errors: dict[str, dict[str, list[float]]] = {"baseline": {}, "tesserocr": {}}
    for q in quality:
        rgb = np.ascontiguousarray(np.asarray(Image.open(q["png"]).convert("RGB")))
        from pipeline.stages.cleanup import cleanup_page
        from pipeline.stages.deskew import deskew_page

        page = cleanup_page(deskew_page(RasterPage(page=1, image=rgb, dpi=q["job"].dpi, sha256="0" * 64),
                                        settings.image), settings.image)  # fmt: skip
        for label, module in (("baseline", old), ("tesserocr", tesseract)):
            ocr.tesseract = module
            try:
                text = read_page(page, settings)[1][1]
            finally:
                ocr.tesseract = tesseract
            errors[label].setdefault(q["job"].condition, []).append(cer(text, q["truth"]))
    print(f"(3) character error rate, sohoa's page reading, {len(quality)} rendered pages (mean per condition)")
    for label, by in errors.items():
        cells = ", ".join(f"{c} {100 * sum(v) / len(v):.2f} %" for c, v in by.items())
        everything = [x for v in by.values() for x in v]
        print(f"  {label:<10} {cells}; all {100 * sum(everything) / max(1, len(everything)):.2f} %")
    if args.fields:
        fields(args)
    return 0 if png_pnm_same else 1


def fields(args) -> None:
    """(4) right / flagged / silent fields of the real development set, baseline engine vs this tree."""
    import json
    import shutil

    import real_scans
    from throughput import baseline_tree

    truth = json.loads((real_scans.REAL / "truth.json").read_text(encoding="utf-8"))
    truth = {k: v for k, v in truth.items() if not args.only or any(o in k for o in args.only)}
    files = [real_scans.REAL / name for name in truth]
    tree = baseline_tree(args.baseline)
    try:
        columns = {f"ctypes {args.baseline}": real_scans.run(tree, files, 2), "tesserocr": real_scans.run(ROOT, files, 2)}
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    print(f"(4) {len(truth)} real documents × {len(real_scans.FIELDS)} fields: right / flagged / SILENT")
    for label, results in columns.items():
        s = real_scans.score(truth, results)
        print(f"  {label:<16} {s['total']['right']} / {s['total']['flagged']} / {s['total']['silent']}; "
              f"ok records {s['ok']} (with a wrong field {s['ok_wrong']}); trusted values {s['trusted_right']}/"
              f"{s['trusted']} right")  # fmt: skip
        for line in s["wrong"]:
            if line.startswith("silent"):
                print(f"    {line[:160]}")


if __name__ == "__main__":
    sys.exit(main())
