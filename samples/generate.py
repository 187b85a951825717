"""Generate sample scans with ground truth.

    python -m samples.generate --out DIR [--count N] [--seed S] [--corpus] [--split train|test]
    python -m samples.generate --committed            # rewrite samples/scans + samples/truth

Each document is rendered (:mod:`samples.render`), degraded page by page (:mod:`samples.degrade`)
and written as a multi-page PDF or TIFF, or (one-page documents) a JPEG or PNG, next to
``<stem>.json``::

    {"source_file", "spec": {...}, "fields": {...}, "text", "page_texts", "pages", "degradation": [...],
     "font", "dpi", "format", "split"}

``text`` is the text as laid out (wrapped lines in reading order, page numbers included). The output
is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from .degrade import degrade
from .io import page_count, write_jpeg, write_pdf, write_png, write_tiff
from .render import Rendered, available_fonts, render
from .specs import DocumentSpec, corpus_specs, synthetic_specs, to_truth

FORMATS = ("pdf", "tiff", "jpeg", "png")
EXT = {"pdf": ".pdf", "tiff": ".tif", "jpeg": ".jpg", "png": ".png"}
SAMPLES_DIR = Path(__file__).resolve().parent


def truth_record(spec: DocumentSpec, rendered: Rendered, *, source_file: str, fmt: str, degradation: list[dict],
                 pages: list[int] | None = None) -> dict:
    """The truth JSON of one scan. ``pages``: 1-based page numbers of the rendering the scan holds
    (all by default); a partial scan keeps only the fields printed on its pages."""
    t = to_truth(spec)
    n_total = len(rendered.pages)
    pages = pages or list(range(1, n_total + 1))
    page_texts = [rendered.page_texts[i - 1] for i in pages]
    fields = dict(t["fields"])
    rec = {"source_file": source_file, "spec": spec.to_dict(), "fields": fields, "text": "\n".join(page_texts),
           "page_texts": page_texts, "pages": len(pages), "degradation": degradation, "font": rendered.font,
           "dpi": rendered.dpi, "format": fmt, "split": spec.split}
    if pages != list(range(1, n_total + 1)):
        rec["partial"] = {"pages": pages, "of": n_total}
        if n_total not in pages:  # the signature block and Nơi nhận are on the last page
            for k in ("signer", "signer_title", "authority_prefix"):
                fields[k] = None
            fields["recipients"] = []
    return rec


def write_scan(pages, path: Path, fmt: str, dpi: int, *, quality: int = 75, grayscale: bool = False,
               tiff_compression: str = "tiff_lzw") -> Path:
    if fmt == "pdf":
        return write_pdf(pages, path, dpi=dpi, quality=quality, grayscale=grayscale)
    if fmt == "tiff":
        return write_tiff(pages, path, dpi=dpi, compression=tiff_compression, grayscale=grayscale, quality=quality)
    if len(pages) != 1:
        raise ValueError(f"{fmt} holds one page")
    if fmt == "jpeg":
        return write_jpeg(pages[0], path, dpi=dpi, quality=quality, grayscale=grayscale)
    return write_png(pages[0], path, dpi=dpi, grayscale=grayscale)


def generate_one(spec: DocumentSpec, out: Path, rng: random.Random, *, stem: str | None = None) -> dict:
    """Render, degrade and write one document with random settings drawn from ``rng``."""
    fonts = available_fonts()
    font = rng.choices(fonts, weights=[6 if f == "serif" else 1 for f in fonts])[0]
    dpi = rng.choice([200, 300, 300])
    body_pt = rng.choice([13.0, 14.0])
    rendered = render(spec, font=font, dpi=dpi, body_pt=body_pt, seal=rng.random() < 0.85,
                      signature=rng.random() < 0.9)
    level = rng.choices(["clean", "office", "heavy"], weights=[2, 5, 3])[0]
    fmt = rng.choice(FORMATS)
    if fmt in ("jpeg", "png") and len(rendered.pages) > 1:
        fmt = "pdf" if fmt == "jpeg" else "tiff"
    pages, metas = [], []
    for p in rendered.pages:
        im, meta = degrade(p, level, rng)
        pages.append(im)
        metas.append(meta)
    grayscale = fmt in ("pdf", "tiff") and rng.random() < 0.7
    # TIFF: CCITT G4 (bilevel office scans) or JPEG-in-TIFF; LZW only for clean pages (noise bloats it)
    tiff_compression = rng.choice(["group4", "tiff_lzw"] if level == "clean" else ["group4", "jpeg"])
    stem = stem or spec.stem
    path = out / f"{stem}{EXT[fmt]}"
    write_scan(pages, path, fmt, dpi, quality=rng.randint(60, 85), grayscale=grayscale,
               tiff_compression=tiff_compression)
    rec = truth_record(spec, rendered, source_file=path.name, fmt=fmt, degradation=metas)
    (out / f"{stem}.json").write_text(json.dumps(rec, ensure_ascii=False, indent=1), encoding="utf-8")
    return rec


def generate(out: str | Path, count: int = 10, seed: int = 0, *, include_corpus: bool = False,
             split: str | None = None) -> list[dict]:
    """Write ``count`` synthetic documents (plus the corpus ones with ``include_corpus``) to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs: list[DocumentSpec] = list(corpus_specs()) if include_corpus else []
    specs += synthetic_specs(count, seed)
    if split:
        specs = [s for s in specs if s.split == split]
    records = []
    for i, spec in enumerate(specs):
        rng = random.Random(f"sohoa-generate-{seed}-{i}-{spec.number}")
        records.append(generate_one(spec, out, rng, stem=f"{i:04d}-{spec.stem}"))
    return records


# --- committed samples ---------------------------------------------------------------------

def _committed_synthetic() -> tuple[DocumentSpec, DocumentSpec]:
    """A one-page công văn with a parent agency (JPEG) and a one-page quyết định (PNG)."""
    letter = decision = None
    for spec in synthetic_specs(120, seed=2024):
        if spec.split != "train":
            continue
        if letter is None and spec.is_letter and spec.issuer_parent and spec.authority_prefix and len(spec.body) <= 5 \
                and len(render(spec, dpi=72).pages) == 1:
            letter = spec
        if decision is None and spec.doc_type == "Quyết định" and len(render(spec, dpi=72).pages) == 1:
            decision = spec
        if letter and decision:
            return letter, decision
    raise RuntimeError("no suitable synthetic specs")


def write_committed_samples(root: str | Path = SAMPLES_DIR) -> list[Path]:
    """(Re)write the committed samples under ``root/scans`` with their truth under ``root/truth``.

    * ``cong-van-516-ttg-kstt.pdf`` — 3 pages, office-grade, 300 dpi, gray JPEG pages.
    * ``thong-bao-476-tb-vpcp.tif`` — 3 pages, 300 dpi bilevel (CCITT G4), ~1° skew.
    * ``chi-thi-27-ct-ttg-p1.png`` — first page of 6 (partial truth: header fields only), 200 dpi gray.
    * ``<synthetic công văn>.jpg`` — one page, office-grade, skewed 4°, 300 dpi colour.
    * ``<synthetic quyết định>.png`` — one page, clean, 200 dpi.
    * a Giấy khai sinh (JPEG) and a Giấy chứng nhận đăng ký hộ kinh doanh (PDF): :func:`write_committed_forms`.
    """
    root = Path(root)
    scans, truth = root / "scans", root / "truth"
    scans.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    for old in list(scans.iterdir()) + list(truth.iterdir()):
        if old.is_file():
            old.unlink()
    corpus = {s.number: s for s in corpus_specs()}
    written: list[Path] = []

    def emit(spec, rendered, fmt, pages, metas, name, dpi, *, page_numbers=None, **kw):
        path = write_scan(pages, scans / name, fmt, dpi, **kw)
        rec = truth_record(spec, rendered, source_file=name, fmt=fmt, degradation=metas, pages=page_numbers)
        (truth / f"{path.stem}.json").write_text(json.dumps(rec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(path)

    # 1. multi-page PDF, office-grade
    spec = corpus["516/TTg-KSTT"]
    r = render(spec, font="serif", dpi=300)
    outs = [degrade(p, "office", random.Random(f"516-{i}"), angle=a) for i, (p, a) in enumerate(zip(r.pages, (0.8, -1.2, 0.5), strict=True))]
    emit(spec, r, "pdf", [o[0] for o in outs], [o[1] for o in outs], "cong-van-516-ttg-kstt.pdf", 300,
         quality=55, grayscale=True)
    # 2. multi-page TIFF, bilevel
    spec = corpus["476/TB-VPCP"]
    r = render(spec, font="serif", dpi=300)
    outs = [degrade(p, "clean", 0, angle=a) for p, a in zip(r.pages, (1.0, -0.6, 0.3), strict=True)]
    emit(spec, r, "tiff", [o[0] for o in outs], [o[1] for o in outs], "thong-bao-476-tb-vpcp.tif", 300,
         tiff_compression="group4")
    # 3. first page of the directive as PNG (partial)
    spec = corpus["27/CT-TTg"]
    r = render(spec, font="serif", dpi=200)
    im, meta = degrade(r.pages[0], "clean", 0)
    emit(spec, r, "png", [im], [meta], "chi-thi-27-ct-ttg-p1.png", 200, page_numbers=[1], grayscale=True)
    # 4./5. synthetic
    letter, decision = _committed_synthetic()
    r = render(letter, font="serif", dpi=300)
    im, meta = degrade(r.pages[0], "office", random.Random("committed-jpeg"), angle=4.0)
    emit(letter, r, "jpeg", [im], [meta], f"{letter.stem}.jpg", 300, quality=70)
    r = render(decision, font="dejavu-serif", dpi=200)
    im, meta = degrade(r.pages[0], "clean", 0)
    emit(decision, r, "png", [im], [meta], f"{decision.stem}.png", 200, grayscale=True)
    written += write_committed_forms(root)
    for p in written:
        rec = json.loads((truth / f"{p.stem}.json").read_text(encoding="utf-8"))
        assert page_count(p) == rec["pages"], p
    return written


def write_committed_forms(root: str | Path = SAMPLES_DIR) -> list[Path]:
    """The committed results of procedures (:mod:`samples.forms`), office-grade, 300 dpi:
    a Giấy khai sinh as a gray JPEG and a Giấy chứng nhận đăng ký hộ kinh doanh as a PDF."""
    from .forms import form_specs, form_truth, render_form

    root = Path(root)
    written = []
    birth, business = form_specs(2, seed=2026)
    for spec, fmt, font, angle in ((birth, "jpeg", "serif", -1.5), (business, "pdf", "noto-serif", 0.9)):
        rendered = render_form(spec, font=font, dpi=300, seed=7)
        im, meta = degrade(rendered.pages[0], "office", random.Random(f"committed-{spec.stem}"), angle=angle)
        name = f"{spec.stem}{EXT[fmt]}"
        path = write_scan([im], root / "scans" / name, fmt, 300, quality=70, grayscale=True)
        rec = form_truth(spec, rendered, source_file=name, degradation=[meta])
        (root / "truth" / f"{path.stem}.json").write_text(json.dumps(rec, ensure_ascii=False, indent=1) + "\n",
                                                          encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samples.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="output directory")
    ap.add_argument("--count", type=int, default=10, help="synthetic documents (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", action="store_true", help="also render the real corpus documents")
    ap.add_argument("--split", choices=["train", "test"], help="only documents of this split")
    ap.add_argument("--committed", action="store_true", help="rewrite samples/scans and samples/truth")
    args = ap.parse_args(argv)
    if args.committed:
        for p in write_committed_samples(args.out or SAMPLES_DIR):
            print(f"{p}  {p.stat().st_size / 1024:.0f} KiB")
        return 0
    if not args.out:
        ap.error("--out is required (or --committed)")
    for rec in generate(args.out, args.count, args.seed, include_corpus=args.corpus, split=args.split):
        print(f"{rec['source_file']}\t{rec['pages']}p\t{rec['degradation'][0]['level']}\t{rec['split']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
