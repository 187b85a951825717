"""OCR quality benchmark (issue #3): character error rate of sohoa, raw Tesseract and OCRmyPDF.

    .venv/bin/python benchmarks/ocr_quality.py [--pages 36] [--no-cache] [--worst 5]
        [--methods sohoa,tesseract,ocrmypdf] [--set ocr.psm=6 --set image.target_dpi=400 ...]

Pages are rendered from the corpus texts and synthetic specs (``samples.specs``) in several fonts
(``serif`` = Liberation Serif, Times-metric as Decree 30/2020/NĐ-CP prescribes; ``dejavu-serif``,
``noto-serif``, ``sans``) at 150, 200 and 300 dpi, then degraded with ``samples.degrade`` in three
conditions: ``clean`` (as rendered), ``office`` (±3° skew, light blur/noise, JPEG 70–85) and
``heavy`` (skew up to ±15°, yellowed paper, uneven light, faded ink, blur, noise, JPEG 30–50,
sometimes a dark scanner border and a red "ĐẾN" receipt stamp). Every page carries the red seal
and the signature scribble the renderer draws. Page *k* gets condition ``k % 3``, dpi ``(k // 3) % 3``
and font ``(k // 9) % 4``, so 36 pages cover every condition × dpi cell with each of the four fonts.

The ground truth of a page is ``Rendered.page_texts`` — exactly what the renderer drew as text
(page numbers included; seal ring text, signature and the receipt stamp are drawings and are not
in the truth, so reading them costs insertions). Both texts are normalised the same way (NFC, every
run of whitespace → one space, stripped) and CER = Levenshtein distance / truth length.

Methods, all on the same degraded PNG (its dpi written in the file):

* ``sohoa``: the real per-page path — ``RasterPage`` → ``deskew_page`` → ``cleanup_page`` →
  ``read_page`` (default :class:`pipeline.config.Settings`, or the ``--set`` overrides);
* ``tesseract``: ``tesseract IMG - -l vie`` (default page segmentation);
* ``ocrmypdf``: ``ocrmypdf -l vie --deskew --rotate-pages --clean --force-ocr --image-dpi D
  --sidecar out.txt IMG out.pdf`` (plus ``--jobs 1 --optimize 0 --output-type pdf``, which only
  skip PDF/A conversion and optimisation of the output PDF and do not change the text).

Rendered pages and each method's text are cached under ``benchmarks/out/ocr_quality/``: pages by
their parameters, OCR text by page and method — for ``sohoa`` also by a fingerprint of the
settings and of the pipeline source files involved, so any change to them is re-measured. A
re-run with a warm cache only recomputes the table. Tesseract runs with ``OMP_THREAD_LIMIT=1``,
two pages at a time (``--jobs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "out" / "ocr_quality"

CONDITIONS = ("clean", "office", "heavy")
DPIS = (150, 200, 300)
FONTS = ("serif", "dejavu-serif", "noto-serif", "sans")
METHODS = ("sohoa", "tesseract", "ocrmypdf")
N_SYNTHETIC = 10
PAGE_VERSION = "1"  # bump when the page recipe below changes
SOURCES = ("pipeline/deskew.py", "pipeline/cleanup.py", "pipeline/ocr.py", "pipeline/layout.py",
           "pipeline/quality.py", "pipeline/tesseract.py", "pipeline/document.py", "pipeline/data/vie.user-patterns")


# --- pages ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PageJob:
    index: int
    doc: str  # "corpus:<i>" or "synthetic:<i>"
    font: str
    dpi: int
    condition: str
    page: int  # 0-based page of the rendered document (resolved modulo its page count)
    seed: int

    @property
    def key(self) -> str:
        raw = f"v{PAGE_VERSION}|{self.doc}|{self.font}|{self.dpi}|{self.condition}|{self.page}|{self.seed}"
        slug = f"{self.index:03d}-{self.condition}-{self.dpi}-{self.font}-{self.doc.replace(':', '')}-p{self.page}"
        return f"{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def plan(n: int) -> list[PageJob]:
    """Deterministic page list: every condition × dpi cell, fonts rotating, documents spread."""
    from samples.specs import corpus_specs

    docs = [f"corpus:{i}" for i in range(len(corpus_specs()))] + [f"synthetic:{i}" for i in range(N_SYNTHETIC)]
    jobs = []
    for k in range(n):
        jobs.append(
            PageJob(
                index=k,
                doc=docs[(5 * k + k // len(docs)) % len(docs)],
                font=FONTS[(k // 9) % len(FONTS)],
                dpi=DPIS[(k // 3) % len(DPIS)],
                condition=CONDITIONS[k % len(CONDITIONS)],
                page=k // 3,  # modulo the page count: varied first / middle / last pages
                seed=1000 + k,
            )
        )
    return jobs


def _spec(doc: str):
    from samples.specs import corpus_specs, synthetic_specs

    kind, i = doc.split(":")
    return corpus_specs()[int(i)] if kind == "corpus" else synthetic_specs(N_SYNTHETIC, seed=3)[int(i)]


def make_page(job: PageJob, cache: bool) -> dict:
    """Render + degrade one page (cached): ``{"png": path, "truth": str, "meta": {...}}``."""
    from samples.degrade import degrade
    from samples.render import render

    folder = OUT / "pages"
    png, meta_path = folder / f"{job.key}.png", folder / f"{job.key}.json"
    if cache and png.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return {"png": png, "truth": meta["truth"], "meta": meta}
    folder.mkdir(parents=True, exist_ok=True)
    spec = _spec(job.doc)
    rendered = render(spec, font=job.font, dpi=job.dpi)
    p = job.page % len(rendered.pages)
    image, degradation = degrade(rendered.pages[p], job.condition, job.seed)
    image.save(png, format="PNG", dpi=(job.dpi, job.dpi), compress_level=3)
    meta = {
        **dataclasses.asdict(job),
        "number": spec.number,
        "rendered_page": p + 1,
        "rendered_pages": len(rendered.pages),
        "degradation": degradation,
        "truth": rendered.page_texts[p],
    }
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"png": png, "truth": meta["truth"], "meta": meta}


# --- settings overrides (experiments) --------------------------------------------------------


def _coerce(value: str, current):
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return value


def apply_overrides(overrides: list[str]):
    """``section.field=value``: ``ocr.*``/``image.*``/``limits.*`` settings, or ``cleanup.CONST`` /
    ``deskew.CONST`` module constants (monkeypatched in this process). Returns Settings."""
    from pipeline import cleanup, deskew
    from pipeline.config import Settings

    settings = Settings(home=Path(tempfile.gettempdir()) / "sohoa-bench-home")
    for item in overrides:
        name, _, value = item.partition("=")
        section, _, attr = name.partition(".")
        if section in ("cleanup", "deskew"):
            module = cleanup if section == "cleanup" else deskew
            setattr(module, attr, _coerce(value, getattr(module, attr)))
        else:
            sub = getattr(settings, section)
            settings = settings.replace(**{section: dataclasses.replace(sub, **{attr: _coerce(value, getattr(sub, attr))})})
    return settings


def sohoa_fingerprint(overrides: list[str]) -> str:
    settings = apply_overrides(overrides)
    h = hashlib.sha256()
    h.update(repr((settings.image, settings.ocr, settings.limits, sorted(overrides))).encode())
    for rel in SOURCES:
        path = ROOT / rel
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


# --- methods ---------------------------------------------------------------------------------


def run_sohoa(png: Path, dpi: int, overrides: list[str]) -> dict:
    import numpy as np
    from PIL import Image

    from pipeline.cleanup import cleanup_page
    from pipeline.deskew import deskew_page
    from pipeline.document import read_page
    from pipeline.models import RasterPage

    settings = apply_overrides(overrides)
    with Image.open(png) as im:
        array = np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    raster = RasterPage(page=1, image=array, dpi=dpi, sha256=hashlib.sha256(array.tobytes()).hexdigest())
    t0 = time.perf_counter()
    page = deskew_page(raster, settings.image)
    t1 = time.perf_counter()
    page = cleanup_page(page, settings.image)
    t2 = time.perf_counter()
    page, (words, text, conf, _pdf, _secs), _turn = read_page(page, settings)
    t3 = time.perf_counter()
    return {
        "text": text,
        "confidence": round(conf, 2),
        "skew": round(float(page.skew_angle), 3),
        "orientation": int(page.orientation),
        "flags": list(page.flags),
        "seconds": {"deskew": round(t1 - t0, 3), "cleanup": round(t2 - t1, 3), "ocr": round(t3 - t2, 3)},
    }


def run_tesseract(png: Path, dpi: int, overrides: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(["tesseract", str(png), "-", "-l", "vie"], capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode("utf-8", "replace")[-500:])
    return {"text": proc.stdout.decode("utf-8", "replace"), "seconds": {"ocr": round(time.perf_counter() - t0, 3)}}


def run_ocrmypdf(png: Path, dpi: int, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ocrmypdf-") as tmp:
        sidecar, out_pdf = Path(tmp) / "out.txt", Path(tmp) / "out.pdf"
        cmd = ["ocrmypdf", "-l", "vie", "--deskew", "--rotate-pages", "--clean", "--force-ocr",
               "--image-dpi", str(dpi), "--sidecar", str(sidecar), "--jobs", "1", "--optimize", "0",
               "--output-type", "pdf", "--quiet", str(png), str(out_pdf)]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.decode("utf-8", "replace")[-800:])
        return {"text": sidecar.read_text(encoding="utf-8", errors="replace"),
                "seconds": {"ocr": round(time.perf_counter() - t0, 3)}}


RUNNERS = {"sohoa": run_sohoa, "tesseract": run_tesseract, "ocrmypdf": run_ocrmypdf}


def _task(method: str, png: str, dpi: int, overrides: list[str], out: str) -> tuple[str, str, dict]:
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        result = RUNNERS[method](Path(png), dpi, overrides)
    except Exception as exc:  # noqa: BLE001 - a failure is a result (CER 1.0), recorded as such
        result = {"text": "", "error": f"{type(exc).__name__}: {exc}"}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return method, png, result


# --- scoring ----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).strip()


def cer(ocr: str, truth: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ocr, truth = normalise(ocr), normalise(truth)
    return Levenshtein.distance(ocr, truth) / max(1, len(truth))


def bag_error(ocr: str, truth: str) -> float:
    """Order-free word error: words missing + words extra (multisets) over the truth's word count."""
    from collections import Counter

    a, b = Counter(normalise(truth).split()), Counter(normalise(ocr).split())
    return (sum((a - b).values()) + sum((b - a).values())) / max(1, sum(a.values()))


def diff_excerpt(ocr: str, truth: str, limit: int = 12) -> list[str]:
    """Word-level differences ``truth → ocr`` (at most ``limit``), for looking at errors."""
    a, b = normalise(truth).split(" "), normalise(ocr).split(" ")
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        out.append(f"{tag:7s} «{' '.join(a[i1:i2])[:80]}» → «{' '.join(b[j1:j2])[:80]}»")
        if len(out) >= limit:
            break
    return out


def table(rows: list[dict], methods: list[str], metric: str = "cer") -> str:
    def line(label: str, sel: list[dict]) -> str:
        cells = [f"{label:<16s}", f"{len(sel):>5d}"]
        for m in methods:
            values = [r[metric][m] for r in sel if m in r[metric]]
            cells.append(f"{100 * statistics.fmean(values):>9.2f}%" if values else f"{'-':>10s}")
        return " ".join(cells)

    head = " ".join([f"{'condition / dpi':<16s}", f"{'pages':>5s}"] + [f"{m:>10s}" for m in methods])
    out = [head, "-" * len(head)]
    for cond in CONDITIONS:
        for dpi in DPIS:
            sel = [r for r in rows if r["condition"] == cond and r["dpi"] == dpi]
            if sel:
                out.append(line(f"{cond} {dpi}", sel))
        sel = [r for r in rows if r["condition"] == cond]
        if sel:
            out.append(line(f"{cond} (all)", sel))
        out.append("")
    for font in FONTS:
        sel = [r for r in rows if r["font"] == font]
        if sel:
            out.append(line(f"font {font}", sel))
    out.append(line("all pages", rows))
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=36, help="number of pages (default 36: 4 per condition × dpi)")
    ap.add_argument("--no-cache", action="store_true", help="re-render and re-OCR everything")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="sohoa experiment: ocr.psm=6, ocr.preserve_interword_spaces=false, image.target_dpi=400, "
                         "cleanup.NOISE_MIN_FRACTION=0.001 ... (repeatable; cached separately)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="only these conditions")
    ap.add_argument("--jobs", type=int, default=2, help="parallel OCR processes (default 2)")
    ap.add_argument("--worst", type=int, default=5, help="print the N worst sohoa pages with a diff excerpt")
    ap.add_argument("--json", type=Path, help="also write the per-page results here")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown method(s): {', '.join(sorted(unknown))}")
    cache = not args.no_cache
    conditions = set(args.conditions.split(","))

    started = time.perf_counter()
    jobs = [j for j in plan(args.pages) if j.condition in conditions]
    pages = {j.key: make_page(j, cache) for j in jobs}
    fingerprint = sohoa_fingerprint(args.overrides)
    out_of = {
        "sohoa": OUT / "ocr" / f"sohoa-{fingerprint}",
        "tesseract": OUT / "ocr" / "tesseract",
        "ocrmypdf": OUT / "ocr" / "ocrmypdf",
    }
    results: dict[tuple[str, str], dict] = {}
    todo = []
    for j in jobs:
        for m in methods:
            path = out_of[m] / f"{j.key}.json"
            if cache and path.exists():
                results[(j.key, m)] = json.loads(path.read_text(encoding="utf-8"))
            else:
                todo.append((m, j, path))
    if todo:
        print(f"OCR: {len(todo)} page × method runs to do ({len(results)} cached), {args.jobs} at a time", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {
                pool.submit(_task, m, str(pages[j.key]["png"]), j.dpi, args.overrides, str(path)): (m, j)
                for m, j, path in todo
            }
            for n, fut in enumerate(as_completed(futures), 1):
                m, j = futures[fut]
                results[(j.key, m)] = fut.result()[2]
                err = results[(j.key, m)].get("error")
                print(f"  [{n}/{len(todo)}] {m:9s} {j.key}" + (f"  ERROR {err[:120]}" if err else ""), file=sys.stderr)

    rows = []
    for j in jobs:
        truth = pages[j.key]["truth"]
        row = {**dataclasses.asdict(j), "key": j.key, "truth_chars": len(normalise(truth)), "cer": {}, "bag": {},
               "seconds": {}}
        for m in methods:
            r = results[(j.key, m)]
            row["cer"][m] = cer(r.get("text", ""), truth)
            row["bag"][m] = bag_error(r.get("text", ""), truth)
            row["seconds"][m] = sum(r.get("seconds", {}).values())
            if m == "sohoa":
                row["sohoa"] = {k: r.get(k) for k in ("confidence", "skew", "orientation", "flags")}
                row["sohoa"]["angle_applied"] = pages[j.key]["meta"]["degradation"].get("angle")
        rows.append(row)

    print(f"\nOCR quality: mean character error rate (CER), {len(rows)} pages, "
          f"fonts {', '.join(FONTS)}; sohoa settings {fingerprint}"
          + (f" with {' '.join(args.overrides)}" if args.overrides else " (defaults)"))
    print(table(rows, methods))
    print("\nOrder-free word error (words missing + extra, as multisets, / truth words): reading order aside")
    print(table(rows, methods, "bag"))
    print("\nmean seconds per page: " + ", ".join(
        f"{m} {statistics.fmean(r['seconds'][m] for r in rows):.1f}" for m in methods))
    targets = {"clean": 0.01, "office": 0.01, "heavy": 0.03}
    if "sohoa" in methods:
        print("\ntargets (sohoa): " + "; ".join(
            f"{c} {100 * statistics.fmean(r['cer']['sohoa'] for r in rows if r['condition'] == c):.2f}% "
            f"(≤ {100 * t:.0f}%"
            + (", < ocrmypdf " + f"{100 * statistics.fmean(r['cer']['ocrmypdf'] for r in rows if r['condition'] == c):.2f}%"
               if "ocrmypdf" in methods else "") + ")"
            for c, t in targets.items() if any(r["condition"] == c for r in rows)))
        worst = sorted(rows, key=lambda r: r["cer"]["sohoa"], reverse=True)[: args.worst]
        for r in worst:
            res = results[(r["key"], "sohoa")]
            print(f"\n--- worst: {r['key']}  CER {100 * r['cer']['sohoa']:.2f}%  "
                  f"(tesseract {100 * r['cer'].get('tesseract', float('nan')):.2f}%, "
                  f"ocrmypdf {100 * r['cer'].get('ocrmypdf', float('nan')):.2f}%)  "
                  f"applied {r['sohoa']['angle_applied']:+.2f}°, corrected {r['sohoa']['skew']:+.2f}°, "
                  f"conf {r['sohoa']['confidence']}, flags {r['sohoa']['flags']}")
            if res.get("error"):
                print("  ERROR", res["error"])
            for d in diff_excerpt(res.get("text", ""), pages[r["key"]]["truth"]):
                print("  " + d)
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\n({time.perf_counter() - started:.0f} s; cache {OUT.relative_to(ROOT)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
