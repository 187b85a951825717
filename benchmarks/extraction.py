"""Field extraction benchmark: rules alone vs rules + trained model, on unseen rendered scans.

Documents: the test split of :func:`samples.specs.synthetic_specs` (bodies from test-split corpus
texts only, numbers never seen by ``models/train.py``) plus the test corpus document
516/TTg-KSTT, rendered with :func:`samples.render.render` in rotating fonts (serif, sans,
DejaVu, Noto) and degraded to office grade with :func:`samples.degrade.degrade` ("office": ±3°
skew, toned paper, blur, noise, JPEG 70–85; every fifth document also gets an incoming-mail
"ĐẾN" stamp from the heavy level's stamp painter). Pages go through the real stages —
``deskew_page`` → ``cleanup_page`` → ``ocr_page`` (Tesseract vie, OMP_THREAD_LIMIT=1) — and the
OCR results are cached under ``benchmarks/out/extraction/`` (keyed by spec, font, level, and a
fingerprint of the pipeline settings and of the OCR-stage sources in :data:`SOURCES`), so reruns
only re-extract and a change to deskew/clean-up/OCR/layout re-OCRs; ``--no-cache`` forces it.
Only the first and last page are OCR'd: they hold every header and signature field. Beside each
page's OCR the cache keeps the page image as the pipeline stores it (``PageOutput.image_jpeg``:
deskewed colour page, JPEG), and extraction gets it as ``extract(pages, images=…)``: the
"Nơi nhận" block is read a second time from it (:mod:`pipeline.stages.extract.reread`; one more
Tesseract call a document, in both columns, counted in "extract ms/doc"). ``--no-reread``
extracts from the page OCR alone.

Prints exact-match accuracy per field for rules alone and rules + model in one run, and the
review rate (documents the pipeline would send to a steward). Values are compared after
:func:`norm_text` (Unicode NFC, spacing around , ; :, trailing punctuation — not case, marks or
wording); Nơi nhận matches entry by entry, in order. A second table counts, per field, the values
the model decided (NER span or lexicon correction) and how many of them it fixed or broke against
rules alone. ``--docs N`` makes it smaller; ``--level heavy`` benchmarks heavy-grade scans
(the issue's targets are for office grade).

Run: ``OMP_THREAD_LIMIT=1 .venv/bin/python benchmarks/extraction.py [--docs 45] [--jobs 1] [--show-errors]
[--no-cache] [--no-reread]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pipeline.stages.models import PageResult, RasterPage  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "extraction"
FONTS = ("serif", "sans", "dejavu-serif", "dejavu-sans", "noto-serif", "noto-sans")
FIELDS = ("number", "date", "doc_type", "issuer", "issuer_parent", "place", "subject", "signer", "signer_title",
          "authority_prefix", "recipients")  # fmt: skip
CACHE_VERSION = "1"
# The OCR stages: their source is part of the cache key, so changing any of them re-OCRs
# instead of scoring extraction on stale text (as benchmarks/ocr_quality.py does).
SOURCES = ("pipeline/stages/deskew.py", "pipeline/stages/cleanup.py", "pipeline/stages/ocr.py", "pipeline/stages/layout.py",
           "pipeline/_exec/tesseract.py", "pipeline/_exec/data/vie.user-patterns")  # fmt: skip


def ocr_settings():
    """The OCR settings of the run: the defaults, with ``SOHOA_OCR_ENGINE`` (library | cli)
    honoured so the two Tesseract versions can be compared on the same documents."""
    from pipeline.runtime.config import OcrSettings

    return OcrSettings(engine=os.environ.get("SOHOA_OCR_ENGINE", OcrSettings().engine))


def ocr_fingerprint() -> str:
    """Hash of the OCR-stage sources and settings (everything that decides what OCR gives)."""
    from pipeline.runtime.config import ImageSettings, LimitSettings

    h = hashlib.sha256(repr((ImageSettings(), ocr_settings(), LimitSettings())).encode())
    for rel in SOURCES:
        path = ROOT / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.exists() else b"<missing>")
    return h.hexdigest()[:12]


def process_image(img, page: int, dpi: int):
    """Deskew → clean-up of a PIL image (the stages before OCR)."""
    from pipeline.runtime.config import ImageSettings
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page

    arr = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    raster = RasterPage(page=page, image=arr, dpi=dpi, sha256=hashlib.sha256(arr.tobytes()).hexdigest())
    return cleanup_page(deskew_page(raster, ImageSettings()), ImageSettings())


def page_jpeg(processed) -> bytes:
    """The stored page image, as the pipeline keeps it (``PageOutput.image_jpeg``: deskewed colour
    page, JPEG at the configured quality); extraction may read a region of it again."""
    import io

    from PIL import Image

    from pipeline.runtime.config import ImageSettings

    buf = io.BytesIO()
    Image.fromarray(processed.color).save(buf, format="JPEG", quality=ImageSettings().jpeg_quality,
                                          dpi=(processed.dpi, processed.dpi), optimize=False)  # fmt: skip
    return buf.getvalue()


def ocr_image(img, page: int, dpi: int) -> tuple[PageResult, bytes]:
    """The real page stages on a PIL image: deskew → clean-up → OCR; with the stored page JPEG."""
    from pipeline.runtime.config import LimitSettings
    from pipeline.stages.ocr import ocr_page

    processed = process_image(img, page, dpi)
    words, text, conf, _, _ = ocr_page(processed, ocr_settings(), LimitSettings(), text_pdf=False)
    h, w = processed.color.shape[:2]
    result = PageResult(page=page, width=w, height=h, dpi=processed.dpi, skew_angle=float(processed.skew_angle),
                        text=text, words=words, mean_confidence=round(conf, 2))  # fmt: skip
    return result, page_jpeg(processed)


def benchmark_specs(n: int):
    """(spec, font, stamp) for ``n`` unseen documents: the test corpus text, then synthetic test specs."""
    from samples.specs import corpus_specs, synthetic_specs

    specs = [s for s in corpus_specs() if s.split == "test"]
    specs += [s for s in synthetic_specs(400, seed=0) if s.split == "test"]
    out = []
    for i, spec in enumerate(specs[:n]):
        out.append((spec, FONTS[i % len(FONTS)], i % 5 == 4))
    return out


def _stamp(img, seed: int):
    from samples.degrade import _np_rng  # the heavy level's receipt stamp
    from samples.degrade import _stamp as paint

    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    from PIL import Image

    return Image.fromarray(paint(arr, _np_rng(seed)))


def ocr_document(job) -> tuple[str, list[dict], list[str]]:
    """(cache file, OCR'd pages as JSON, their stored page JPEGs) of one benchmark document."""
    spec, font, stamp, dpi, level, fingerprint, use_cache = job
    from samples.degrade import degrade
    from samples.render import render

    extra = "" if level == "office" else f"|{level}"  # office keys predate --level
    # The degradation seed stays independent of the OCR fingerprint: the same scans are re-OCR'd.
    key = hashlib.sha256(f"{CACHE_VERSION}|{spec.number}|{spec.date}|{font}|{stamp}|{dpi}{extra}".encode()).hexdigest()[:16]
    path = OUT / f"{spec.stem}-{key}-{fingerprint}.json"

    def jpeg_path(page_no: int) -> Path:
        return path.with_name(f"{path.stem}.p{page_no}.jpg")

    cached = json.loads(path.read_text(encoding="utf-8")) if use_cache and path.exists() else None
    if cached is not None and all(jpeg_path(p["page"]).exists() for p in cached):
        return str(path), cached, [str(jpeg_path(p["page"])) for p in cached]
    pages = render(spec, font=font, dpi=dpi).pages
    keep = sorted({0, len(pages) - 1})
    results = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for idx in keep:
        img = pages[idx]
        seed = int(key, 16) % (1 << 31) + idx
        if stamp and idx == 0:
            img = _stamp(img, seed)
        img, _meta = degrade(img, level, seed)
        if cached is not None:  # OCR cached, page image not yet (an older cache): no OCR needed
            jpeg = page_jpeg(process_image(img, idx + 1, dpi))
        else:
            result, jpeg = ocr_image(img, idx + 1, dpi)
            results.append(result.model_dump(mode="json"))
        jpeg_path(idx + 1).write_bytes(jpeg)
    if cached is not None:
        results = cached
    else:
        path.write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return str(path), results, [str(jpeg_path(p["page"])) for p in results]


def norm_text(value: str) -> str:
    """What a reader takes as the same text: NFC, one space between words and after , ; : (none
    before them), no trailing ; . , — case, diacritics and wording still count."""
    value = unicodedata.normalize("NFC", value)
    value = re.sub(r"\s*([,;:])\s*", r"\1 ", value)
    return " ".join(value.split()).rstrip(" ;.,")


def score(spec, fields: dict) -> dict[str, bool]:
    """Exact match per field after :func:`norm_text`; a list (Nơi nhận) matches item by item, in order."""
    out = {}
    for name in FIELDS:
        truth = getattr(spec, name)
        if name == "subject" and truth:  # the record holds the trích yếu without "Về việc"
            from pipeline.stages.extract.admin import strip_ve_viec

            truth = strip_ve_viec(truth)
        got = fields.get(name)
        if name == "recipients":
            out[name] = [norm_text(t) for t in truth or []] == [norm_text(g) for g in got or []]
        else:
            out[name] = (norm_text(truth) if truth else None) == (norm_text(got) if got else None)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=45)
    ap.add_argument("--jobs", type=int, default=1, help="OCR processes (the machine is shared: keep it small)")
    ap.add_argument("--dpi", type=int, default=300)
    ap.add_argument("--level", default="office", choices=("clean", "office", "heavy"),
                    help="degradation level (the issue's targets are for office grade)")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--no-cache", action="store_true", help="re-OCR every page (the cache is rewritten)")
    ap.add_argument("--no-reread", action="store_true",
                    help="extract from the page OCR only (no second OCR of the Nơi nhận block from the page image)")
    args = ap.parse_args(argv)

    from pipeline.stages.extract import extract, load_model, model_version

    fingerprint = ocr_fingerprint()
    jobs = [(spec, font, stamp, args.dpi, args.level, fingerprint, not args.no_cache)
            for spec, font, stamp in benchmark_specs(args.docs)]  # fmt: skip
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            docs = list(pool.map(ocr_document, jobs))
    else:
        docs = [ocr_document(j) for j in jobs]
    t_ocr = time.perf_counter() - t0
    load_model()
    print(f"{len(docs)} documents ({args.level}), OCR {t_ocr:.0f} s (cached under {OUT.relative_to(ROOT)}, "
          f"OCR fingerprint {fingerprint}); model {model_version()}")

    totals = {mode: {f: 0 for f in FIELDS} for mode in ("rules", "model")}
    review = {"rules": 0, "model": 0}
    wrong_ok = {"rules": 0, "model": 0}
    t_ex = {"rules": 0.0, "model": 0.0}
    errors = []
    # Per field: documents whose final value the model decided (NER span or lexicon correction),
    # and of those how many it fixed (rules wrong → right) or broke (rules right → wrong).
    decided = {f: {"ner": 0, "lexicon": 0, "fixed": 0, "broke": 0} for f in FIELDS}
    from collections import Counter

    flagged_by: Counter = Counter()  # documents sending a field to review (rules + model)
    silent_fields: Counter = Counter()  # wrong values no review reason names
    for (spec, font, *_), (path, pages_json, jpegs) in zip(jobs, docs, strict=True):
        pages = [PageResult(**p) for p in pages_json]
        images = None if args.no_reread else [Path(j).read_bytes() for j in jpegs]
        scores = {}
        for mode in ("rules", "model"):
            t = time.perf_counter()
            ex = extract(pages, use_model=(mode == "model"), images=images)
            t_ex[mode] += time.perf_counter() - t
            s = scores[mode] = score(spec, ex.fields)
            if mode == "model":
                for f, src in ex.hints.get("model_fields", {}).items():
                    if f in decided:
                        decided[f]["ner" if src.startswith("ner") else "lexicon"] += 1
                        decided[f]["fixed"] += s[f] and not scores["rules"][f]
                        decided[f]["broke"] += scores["rules"][f] and not s[f]
            for f, ok in s.items():
                totals[mode][f] += ok
            review[mode] += bool(ex.issues)
            if mode == "model":
                named = {i.field for i in ex.issues}
                flagged_by.update(named)
                silent_fields.update(f for f, ok in s.items() if not ok and f not in named)
            if not ex.issues and not all(s[f] for f in ("number", "date", "doc_type", "issuer", "subject")):
                wrong_ok[mode] += 1
            if mode == "model":
                for f, ok in s.items():
                    if not ok:
                        errors.append((Path(path).name, font, f, getattr(spec, f), ex.fields.get(f)))
    n = len(docs)
    print(f"\n{'field':18} {'rules':>8} {'rules+model':>12}")
    for f in FIELDS:
        print(f"{f:18} {totals['rules'][f] / n:8.1%} {totals['model'][f] / n:12.1%}")
    overall = {m: sum(totals[m].values()) / (n * len(FIELDS)) for m in totals}
    print(f"{'overall':18} {overall['rules']:8.1%} {overall['model']:12.1%}")
    print(f"{'sent to review':18} {review['rules'] / n:8.1%} {review['model'] / n:12.1%}")
    print(f"{'wrong but ok':18} {wrong_ok['rules']:8d} {wrong_ok['model']:12d}   (a required field wrong, no review flag)")
    print(f"{'wrong and silent':18} {'':8} {sum(silent_fields.values()):12d}   (any field wrong, not named for review: "
          f"{dict(silent_fields) or 'none'})")
    print("fields sent to review (rules + model), documents: " + (", ".join(f"{f} {n}" for f, n in flagged_by.most_common()) or "none"))
    print(f"{'extract ms/doc':18} {1000 * t_ex['rules'] / n:8.1f} {1000 * t_ex['model'] / n:12.1f}")
    print("\nwhere the model decided the value (rules + model run):")
    print(f"{'field':18} {'ner':>5} {'lexicon':>8} {'fixed':>6} {'broke':>6}")
    for f in FIELDS:
        d = decided[f]
        if d["ner"] or d["lexicon"]:
            print(f"{f:18} {d['ner']:5d} {d['lexicon']:8d} {d['fixed']:6d} {d['broke']:6d}")
    if args.show_errors:
        print("\nerrors (rules + model):")
        for e in errors:
            print("  ", *e, sep=" | ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
