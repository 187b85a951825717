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

Hard captures (issue 18), rendered from the ``test`` split (``--split``: the corpus text
516/TTg-KSTT and the synthetic documents whose sentences come from it; the clean-up was tuned on
``train`` pages) with this module's own degradations, ``--capture-pages`` (default 6) each:

* ``fax``: bitonal TIFF (CCITT G4) at 200 × 100 dpi (every other scan line), speckle, dropped
  scan lines, slight skew (Liberation Serif, DejaVu Serif);
* ``photocopy``: grey toner on blotchy grey paper, dark bands along the edges (copier lid), the
  red seal left red, JPEG q 60–75 at 200 dpi (Liberation Serif, Noto Serif);
* ``photo``: an 8-megapixel phone photo of the page on a wooden desk, in perspective, uneven
  light with a shadow band, warm light, JPEG declaring 72 dpi (Liberation Serif, DejaVu Serif);
* ``typewriter``: monospace (Liberation Mono, Courier-metric; Noto Mono, one weight) in a worn
  ribbon's uneven grey, grey PNG at 300 dpi.

sohoa reads a capture file through the load stage (its own x and y resolution, its header's dpi);
the three flatbed conditions are read as before (the PNG's pixels, the dpi of the plan). The sohoa
column includes the plain second reading :func:`pipeline.stages.ocr.needs_plain_reading` asks for
(fax and photo pages, and doubtful readings): its cost is in the seconds per page printed, and the
share of pages read twice is printed too.

The ground truth of a page is ``Rendered.page_texts`` — exactly what the renderer drew as text
(page numbers included; seal ring text, signature and the receipt stamp are drawings and are not
in the truth, so reading them costs insertions). Both texts are normalised the same way (NFC, every
run of whitespace → one space, stripped) and CER = Levenshtein distance / truth length.

Methods, all on the same degraded PNG (its dpi written in the file):

* ``sohoa``: the real per-page path — ``RasterPage`` → ``deskew_page`` → ``cleanup_page`` →
  ``read_page`` (default :class:`pipeline.runtime.config.Settings`, or the ``--set`` overrides);
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
SOURCES = ("pipeline/stages/deskew.py", "pipeline/stages/cleanup.py", "pipeline/stages/ocr.py", "pipeline/stages/layout.py",
           "pipeline/stages/quality.py", "pipeline/_exec/tesseract.py", "pipeline/runtime/document.py", "pipeline/_exec/data/vie.user-patterns")


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


# --- hard captures (issue 18): fax, photocopy, phone photo, typewriter -----------------------

CAPTURES = ("fax", "photocopy", "photo", "typewriter")
CAPTURE_VERSION = "2"  # bump when a capture recipe below changes (2: Noto Mono for DejaVu Sans Mono)
#: monospace families for the typewriter capture, added to ``samples.render.FONT_FAMILIES`` here
MONO_FAMILIES = {
    "mono": tuple([Path("/usr/share/fonts/truetype/liberation2") / f"LiberationMono-{s}.ttf"]
                  for s in ("Regular", "Bold", "Italic", "BoldItalic")),
    # A typewriter has one weight: Noto Mono's regular face stands for every style. DejaVu Sans
    # Mono, used before, lacks 21 stacked Vietnamese letters (ồ ế ể ấ ầ ...): its pages printed the
    # tone mark in the next cell ("Vê`việc"), so their truth was not what the page showed.
    "noto-mono": tuple([Path("/usr/share/fonts/truetype/noto/NotoMono-Regular.ttf")] for _ in range(4)),
}
CAPTURE_FONTS = {"fax": ("serif", "dejavu-serif"), "photocopy": ("serif", "noto-serif"),
                 "photo": ("serif", "dejavu-serif"), "typewriter": ("mono", "noto-mono")}
#: resolution each capture is rendered at (the photo is rendered fine, then photographed)
CAPTURE_RENDER_DPI = {"fax": 200, "photocopy": 200, "photo": 300, "typewriter": 300}


@dataclasses.dataclass(frozen=True)
class CaptureJob:
    index: int
    doc: str
    font: str
    capture: str
    page: int
    seed: int

    @property
    def condition(self) -> str:
        return self.capture

    @property
    def dpi(self) -> int:  # what the file declares (the photo's header says 72)
        return {"fax": 200, "photocopy": 200, "photo": 72, "typewriter": 300}[self.capture]

    @property
    def ext(self) -> str:
        return {"fax": "tif", "photocopy": "jpg", "photo": "jpg", "typewriter": "png"}[self.capture]

    @property
    def key(self) -> str:
        raw = f"c{CAPTURE_VERSION}|{self.doc}|{self.font}|{self.capture}|{self.page}|{self.seed}"
        slug = f"{self.index:03d}-{self.capture}-{self.font}-{self.doc.replace(':', '')}-p{self.page}"
        return f"{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def split_docs(split: str) -> list[str]:
    """Documents of one split (``samples.specs.CORPUS_SPLITS``; a synthetic document's split comes
    from its number): the clean-up was tuned on ``train`` pages, the benchmark reports ``test``."""
    from samples.specs import corpus_specs, synthetic_specs

    docs = [f"corpus:{i}" for i, s in enumerate(corpus_specs()) if s.split == split]
    docs += [f"synthetic:{i}" for i, s in enumerate(synthetic_specs(N_SYNTHETIC, seed=3)) if s.split == split]
    return docs


def capture_plan(per_capture: int, split: str) -> list[CaptureJob]:
    docs = split_docs(split)
    jobs = []
    for c, capture in enumerate(CAPTURES):
        for k in range(per_capture):
            fonts = CAPTURE_FONTS[capture]
            jobs.append(CaptureJob(index=100 + c * per_capture + k, doc=docs[(k + 2 * c) % len(docs)],
                                   font=fonts[k % len(fonts)], capture=capture, page=k // 2,
                                   seed=(7000 if split == "test" else 9000) + 31 * c + k))  # fmt: skip
    return jobs


def _smooth_noise(g, shape: tuple[int, int], cell: float, low: float, high: float):
    """A low-frequency random field in [low, high] with features about ``cell`` pixels wide."""
    import cv2
    import numpy as np

    h, w = shape
    small = g.random((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    field = (field - field.min()) / max(1e-6, float(field.max() - field.min()))
    return low + (high - low) * field


def _jpeg_bytes(arr, quality: int, dpi: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), dpi=dpi)
    return buf.getvalue()


def degrade_fax(page, g) -> tuple[bytes, dict]:
    """A fax as received: bitonal, 200 × 100 dpi (standard resolution: every other scan line),
    thresholded grey, speckle (isolated dots and small clusters of 1–3 pixels), dropped scan
    lines (a line lost to white, or repeated), slight skew. TIFF, CCITT group 4."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    from samples.degrade import rotate

    arr = np.asarray(page.convert("L"), dtype=np.uint8)
    angle = float(g.uniform(-1.5, 1.5))
    arr = rotate(np.dstack([arr] * 3), angle, (255, 255, 255))[..., 0]
    arr = cv2.GaussianBlur(arr, (0, 0), 0.6)
    h, w = arr.shape
    half = cv2.resize(arr, (w, h // 2), interpolation=cv2.INTER_AREA)  # 100 dpi vertically
    level = int(g.integers(135, 170))
    bits = half < level  # ink
    rows = bits.shape[0]
    dropped = g.choice(rows, size=max(1, int(rows * g.uniform(0.004, 0.01))), replace=False)
    for r in dropped:
        if g.random() < 0.5:
            bits[r] = False
        elif r > 0:
            bits[r] = bits[r - 1]
    n = int(bits.size * g.uniform(0.0004, 0.0010))
    ys, xs = g.integers(0, bits.shape[0], n), g.integers(0, bits.shape[1], n)
    for y, x in zip(ys, xs, strict=True):
        sy, sx = int(g.integers(1, 3)), int(g.integers(1, 4))
        bits[y:y + sy, x:x + sx] = True
    image = Image.fromarray(np.where(bits, 0, 255).astype(np.uint8)).convert("1")
    buf = io.BytesIO()
    image.save(buf, format="TIFF", compression="group4", dpi=(200, 100))
    return buf.getvalue(), {"angle": angle, "threshold": level, "dropped_lines": len(dropped), "speckles": n}


def degrade_photocopy(page, g) -> tuple[bytes, dict]:
    """A photocopy of a photocopy with the receiving office's red seal: the text in grey toner
    (ink not black, blotchy grey paper with toner grain), dark bands along one or two edges (the
    copier's lid), slight skew; the red seal stays red. 200 dpi, JPEG q 60–75."""
    import numpy as np

    from samples.degrade import rotate

    rgb = np.asarray(page.convert("RGB"), dtype=np.float32)
    r, gg, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r - np.minimum(gg, b)) > 60  # the seal: kept in colour
    grey = 0.299 * r + 0.587 * gg + 0.114 * b
    h, w = grey.shape
    paper = _smooth_noise(g, (h, w), 60, g.uniform(196, 212), g.uniform(222, 236))
    ink = g.uniform(35, 70)
    cover = 1.0 - grey / 255.0
    grain = g.normal(0.0, g.uniform(6, 10), (h, w)).astype(np.float32)
    toner = paper * (1 - cover) + ink * cover + grain
    out = np.dstack([toner] * 3)
    out[red] = rgb[red] * (paper[red] / 255.0)[:, None]
    out = out.clip(0, 255).astype(np.uint8)
    angle = float(g.uniform(-1.0, 1.0))
    out = rotate(out, angle, (int(paper.mean()),) * 3)
    h, w = out.shape[:2]
    for side in g.choice(4, size=int(g.integers(1, 3)), replace=False):
        t = int(g.uniform(0.015, 0.04) * min(h, w))
        profile = np.linspace(g.uniform(15, 40), g.uniform(60, 110), t)[:, None]  # dark edge fading inwards
        if side == 0:
            out[:t] = np.minimum(out[:t], profile[:, :, None])
        elif side == 1:
            out[-t:] = np.minimum(out[-t:], profile[::-1][:, :, None])
        elif side == 2:
            out[:, :t] = np.minimum(out[:, :t], profile.T[:, :, None])
        else:
            out[:, -t:] = np.minimum(out[:, -t:], profile.T[:, ::-1][:, :, None])
    q = int(g.integers(60, 76))
    return _jpeg_bytes(out, q, (200, 200)), {"angle": angle, "ink": round(float(ink), 1), "jpeg_quality": q}


def degrade_photo(page, g) -> tuple[bytes, dict]:
    """A phone photo of the page lying on a desk: the page (seen at ~190–230 dpi) in perspective
    on a wooden desk, an uneven light with a soft shadow band across the page, warm light, slight
    blur and noise; JPEG q 85 declaring 72 dpi (what phones write)."""
    import cv2
    import numpy as np

    src = np.asarray(page.convert("RGB"), dtype=np.uint8)
    ph, pw = src.shape[:2]
    cw, ch = 2448, 3264  # an 8-megapixel phone photo, portrait
    page_w = g.uniform(0.70, 0.80) * cw
    scale = page_w / pw
    page_h = ph * scale
    x0, y0 = (cw - page_w) / 2 + g.uniform(-60, 60), (ch - page_h) / 2 + g.uniform(-60, 60)
    j = 0.045 * page_w
    quad = np.float32([
        [x0 + g.uniform(-j, j), y0 + g.uniform(-j, j)],
        [x0 + page_w + g.uniform(-j, j), y0 + g.uniform(-j, j)],
        [x0 + page_w + g.uniform(-j, j), y0 + page_h + g.uniform(-j, j)],
        [x0 + g.uniform(-j, j), y0 + page_h + g.uniform(-j, j)],
    ])  # fmt: skip
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]]), quad)
    warped = cv2.warpPerspective(src, matrix, (cw, ch), flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
    inside = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (cw, ch), flags=cv2.INTER_LINEAR)
    alpha = (inside.astype(np.float32) / 255.0)[..., None]
    wood = np.array([g.uniform(110, 150), g.uniform(75, 100), g.uniform(45, 65)], np.float32)
    grain = _smooth_noise(g, (ch, cw), 25, 0.8, 1.15)[..., None]
    desk = wood[None, None, :] * grain
    img = warped.astype(np.float32) * alpha + desk * (1 - alpha)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    light = 1.0 - g.uniform(0.15, 0.3) * (np.hypot(xx - g.uniform(0, cw), yy - g.uniform(0, ch)) / np.hypot(cw, ch))
    theta = g.uniform(0, np.pi)
    d = (xx - cw / 2) * np.cos(theta) + (yy - ch / 2) * np.sin(theta) - g.uniform(-0.25, 0.25) * ch
    band_w = g.uniform(0.08, 0.16) * ch
    shadow = 1.0 - g.uniform(0.3, 0.45) / (1.0 + np.exp(-d / (0.03 * ch))) * (np.abs(d) < band_w * 3)
    shadow = cv2.GaussianBlur(shadow.astype(np.float32), (0, 0), 25)
    warm = np.array([1.0, g.uniform(0.88, 0.94), g.uniform(0.70, 0.80)], np.float32)
    img = img * (light * shadow)[..., None] * warm[None, None, :]
    img = cv2.GaussianBlur(img, (0, 0), g.uniform(0.6, 1.0))
    img = img + g.normal(0, 4, img.shape[:2]).astype(np.float32)[..., None]
    out = img.clip(0, 255).astype(np.uint8)
    return _jpeg_bytes(out, 85, (72, 72)), {"quad": quad.round(1).tolist(), "page_dpi": round(300 * scale, 1)}


def degrade_typewriter(page, g) -> tuple[bytes, dict]:
    """A faded typewritten page: monospace glyphs in a worn ribbon's grey, each stroke unevenly
    struck (ink strength varying within a few characters, fine ribbon grain), yellowed grey
    paper; grey PNG at 300 dpi."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    from samples.degrade import rotate

    grey = np.asarray(page.convert("L"), dtype=np.float32)
    h, w = grey.shape
    cover = 1.0 - grey / 255.0
    strike = _smooth_noise(g, (h, w), 18, 0.55, 1.0) * g.uniform(0.55, 0.75)
    ribbon = g.uniform(0.75, 1.0, (h, w)).astype(np.float32)
    paper = g.uniform(220, 238)
    out = paper * (1 - cover * strike * ribbon)
    out = cv2.GaussianBlur(out, (0, 0), 0.7) + g.normal(0, 4, (h, w)).astype(np.float32)
    angle = float(g.uniform(-1.0, 1.0))
    arr = rotate(np.dstack([out.clip(0, 255).astype(np.uint8)] * 3), angle, (int(paper),) * 3)[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, format="PNG", dpi=(300, 300))
    return buf.getvalue(), {"angle": angle, "paper": round(float(paper))}


DEGRADE_CAPTURE = {"fax": degrade_fax, "photocopy": degrade_photocopy, "photo": degrade_photo,
                   "typewriter": degrade_typewriter}


def make_capture_page(job: CaptureJob, cache: bool) -> dict:
    """Render + capture one page (cached): ``{"png": path, "truth": str, "meta": {...}}``."""
    import numpy as np

    from samples import render as render_module

    for name, styles in MONO_FAMILIES.items():
        render_module.FONT_FAMILIES.setdefault(name, styles)
    folder = OUT / "pages"
    path, meta_path = folder / f"{job.key}.{job.ext}", folder / f"{job.key}.json"
    if cache and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return {"png": path, "truth": meta["truth"], "meta": meta}
    folder.mkdir(parents=True, exist_ok=True)
    spec = _spec(job.doc)
    rendered = render_module.render(spec, font=job.font, dpi=CAPTURE_RENDER_DPI[job.capture],
                                    body_pt=13.0 if job.capture == "typewriter" else 14.0)
    p = job.page % len(rendered.pages)
    data, degradation = DEGRADE_CAPTURE[job.capture](rendered.pages[p], np.random.default_rng(job.seed))
    path.write_bytes(data)
    meta = {**dataclasses.asdict(job), "dpi": job.dpi, "condition": job.capture, "number": spec.number,
            "rendered_page": p + 1, "rendered_pages": len(rendered.pages), "degradation": degradation,
            "truth": rendered.page_texts[p]}  # fmt: skip
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"png": path, "truth": meta["truth"], "meta": meta}


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
    ``deskew.CONST`` / ``stages.<module>.CONST`` module constants (monkeypatched in this process).
    Returns Settings."""
    import importlib

    from pipeline.runtime.config import Settings
    from pipeline.stages import cleanup, deskew

    settings = Settings(home=Path(tempfile.gettempdir()) / "sohoa-bench-home")
    for item in overrides:
        name, _, value = item.partition("=")
        section, _, attr = name.partition(".")
        if section == "stages":
            module_name, _, attr = attr.rpartition(".")
            module = importlib.import_module(f"pipeline.stages.{module_name}")
            setattr(module, attr, _coerce(value, getattr(module, attr)))
        elif section in ("cleanup", "deskew"):
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

    from pipeline.runtime.document import read_page
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.load import probe, render_page
    from pipeline.stages.models import RasterPage

    settings = apply_overrides(overrides)
    t0 = time.perf_counter()
    if not any(f"-{c}-" in png.name for c in CAPTURES):
        with Image.open(png) as im:  # the rendered conditions, as measured since issue 3
            array = np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
        raster = RasterPage(page=1, image=array, dpi=dpi, sha256=hashlib.sha256(array.tobytes()).hexdigest())
    else:  # a capture file goes through the load stage: its own dpi (fax 200 × 100, photo "72")
        data = png.read_bytes()
        raster = render_page(data, probe(data, settings.limits), 1, settings.limits)
    t_load = time.perf_counter() - t0
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
        "seconds": {"load": round(t_load, 3), "deskew": round(t1 - t0, 3), "cleanup": round(t2 - t1, 3), "ocr": round(t3 - t2, 3)},
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
    for cap in CAPTURES:
        sel = [r for r in rows if r["condition"] == cap]
        if sel:
            out.append(line(f"{cap}", sel))
    if any(r["condition"] in CAPTURES for r in rows):
        out.append("")
    for font in FONTS + tuple(MONO_FAMILIES):
        sel = [r for r in rows if r["font"] == font]
        if sel:
            out.append(line(f"font {font}", sel))
    out.append(line("all pages", rows))
    return "\n".join(out)


def _reading(row: dict) -> str:
    """Which reading sohoa kept on a page (``reading:`` flag of pipeline.stages.ocr.ocr_page)."""
    flags = (row.get("sohoa") or {}).get("flags") or []
    return next((f.split(":", 1)[1] for f in flags if f.startswith("reading:")), "cleaned")


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=36, help="number of pages (default 36: 4 per condition × dpi)")
    ap.add_argument("--no-cache", action="store_true", help="re-render and re-OCR everything")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="sohoa experiment: ocr.psm=6, ocr.preserve_interword_spaces=false, image.target_dpi=400, "
                         "cleanup.NOISE_MIN_FRACTION=0.001 ... (repeatable; cached separately)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS + CAPTURES),
                    help="only these conditions / captures (default: all of " + ",".join(CONDITIONS + CAPTURES) + ")")
    ap.add_argument("--capture-pages", type=int, default=6, help="pages per hard capture (default 6)")
    ap.add_argument("--split", default="test", choices=("test", "train"),
                    help="documents the captures are rendered from: test (held out, reported) or train (tuning)")
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
    captures = [j for j in capture_plan(args.capture_pages, args.split) if j.capture in conditions]
    pages.update({j.key: make_capture_page(j, cache) for j in captures})
    jobs = [*jobs, *captures]
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
        row = {**dataclasses.asdict(j), "condition": j.condition, "dpi": j.dpi, "key": j.key, "truth_chars": len(normalise(truth)), "cer": {}, "bag": {},
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
    if "sohoa" in methods:
        print("sohoa: pages read twice (cleaned and plain; the plain reading kept): " + "; ".join(
            f"{c} {sum(1 for r in sel if _reading(r) != 'cleaned')}/{len(sel)} "
            f"({sum(1 for r in sel if _reading(r) == 'plain')})"
            for c in CONDITIONS + CAPTURES if (sel := [r for r in rows if r["condition"] == c])))
    targets = {"clean": 0.01, "office": 0.01, "heavy": 0.03, "fax": 0.02, "photocopy": 0.01, "photo": 0.02,
               "typewriter": 0.01}
    if "sohoa" in methods:
        print("\ntargets (sohoa ≤ target and ≤ every peer, per condition):")
        for c, t in targets.items():
            sel = [r for r in rows if r["condition"] == c]
            if not sel:
                continue
            mean = {m: statistics.fmean(r["cer"][m] for r in sel) for m in methods}
            peers = [m for m in methods if m != "sohoa"]
            met = mean["sohoa"] <= t and all(mean["sohoa"] <= mean[m] for m in peers)
            print(f"  {c:<11s} sohoa {100 * mean['sohoa']:.2f}% (target ≤ {100 * t:.0f}%"
                  + "".join(f", {m} {100 * mean[m]:.2f}%" for m in peers) + f")  {'met' if met else 'NOT met'}")
        peers = [m for m in methods if m != "sohoa"]
        if peers:
            behind = [(r["key"], r["cer"]["sohoa"] - min(r["cer"][m] for m in peers)) for r in rows
                      if r["cer"]["sohoa"] > min(r["cer"][m] for m in peers)]  # fmt: skip
            print(f"\npages sohoa reads worse than a peer: {len(behind)}/{len(rows)}"
                  + (f" (by at most {100 * max(d for _k, d in behind):.2f} points: "
                     + ", ".join(k.split("-")[0] for k, _d in behind) + ")" if behind else ""))
        worst = sorted(rows, key=lambda r: r["cer"]["sohoa"], reverse=True)[: args.worst]
        for r in worst:
            res = results[(r["key"], "sohoa")]
            print(f"\n--- worst: {r['key']}  CER {100 * r['cer']['sohoa']:.2f}%  "
                  f"(tesseract {100 * r['cer'].get('tesseract', float('nan')):.2f}%, "
                  f"ocrmypdf {100 * r['cer'].get('ocrmypdf', float('nan')):.2f}%)  "
                  f"applied {r['sohoa']['angle_applied'] or 0.0:+.2f}°, corrected {r['sohoa']['skew']:+.2f}°, "
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
