"""Skew estimation benchmark: sohoa ``estimate_skew`` against the ``deskew`` and ``jdeskew`` packages.

Renders synthetic A4 administrative pages (Vietnamese text from the shared corpus, several
fonts and sizes, a Decree 30/2020/NĐ-CP-like header, body paragraphs), rotates each by a known
angle (uniform in ±15°, every sixth page near ±19°), degrades some (Gaussian noise, blur,
JPEG, salt-and-pepper, tinted paper with coloured ink and a red seal; a noisy page with only
six lines; a ruled table under JPEG), and reports per method
the median and worst absolute error in degrees and the mean time per page.

Then ``--scans`` pages (default 12) made the way ``ocr_quality.py`` makes its heavy pages:
Decree 30 documents rendered by ``samples.render`` (red seal, blue signature scribble) and
degraded by ``samples.degrade`` at the ``heavy`` level (yellowed paper, uneven light, faded ink,
noise, JPEG 30–50, sometimes a dark scanner border and a red "ĐẾN" receipt stamp) with a known
angle: ``scan-heavy`` is a first or middle page, ``scan-last`` the last page of a document — a
few lines, the signature block, "Nơi nhận" and the seal, where the seal's ring and the stamp's
rectangle weigh most against the text. sohoa gets the colour page (as ``deskew_page`` does, so
that seal ink can be left out); the other methods get the grey page.

Sign conventions, fixed once per method (never per page): the truth is the counter-clockwise
rotation applied with ``PIL.Image.rotate``. sohoa's ``estimate_skew`` returns that skew
directly; ``deskew.determine_skew`` and ``jdeskew.get_angle`` return the *correction* (the
counter-clockwise angle to rotate by, skimage / OpenCV convention), so their skew is the
negated value.

Run: ``.venv/bin/python benchmarks/deskew.py [--pages N] [--scans 12] [--dpi 300] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
# this file is named deskew.py: keep its folder off the path so "import deskew" finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from pipeline.stages.deskew import estimate_skew, to_gray  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
FONT_DIRS = [Path("/usr/share/fonts/truetype/liberation2"), Path("/usr/share/fonts/truetype/dejavu")]
FONT_NAMES = [
    "LiberationSerif-Regular.ttf",
    "DejaVuSerif.ttf",
    "LiberationSans-Regular.ttf",
    "DejaVuSans.ttf",
    "DejaVuSerifCondensed.ttf",
]
FALLBACK_TEXT = (
    "Thủ tướng Chính phủ yêu cầu các bộ, cơ quan ngang bộ, Ủy ban nhân dân các tỉnh tiếp tục đẩy mạnh "
    "cải cách thủ tục hành chính, nâng cao chất lượng dịch vụ công trực tuyến phục vụ người dân. "
) * 200
VARIANTS = ("clean", "noise", "blur", "jpeg", "colour", "saltpepper", "noise+blur+jpeg", "sparse", "table")


@dataclass
class Sample:
    angle: float
    variant: str
    font: str
    image: np.ndarray  # RGB uint8


def fonts() -> list[Path]:
    found = [d / n for n in FONT_NAMES for d in FONT_DIRS if (d / n).exists()]
    if not found:
        raise SystemExit("no TrueType fonts found")
    return found


def corpus_words() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")) if "bad-ocr" not in p.name]
    return " ".join(texts or [FALLBACK_TEXT]).split()


def render_document(
    words: list[str], start: int, font_path: Path, pt: float, dpi: int, rng: np.random.Generator, layout: str = "body"
) -> Image.Image:
    """An A4 page: two-column header (cơ quan ban hành / Quốc hiệu), title, then body paragraphs
    (``layout="body"``), a ruled table (``"table"``) or only a few lines (``"sparse"``)."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    px = round(pt * dpi / 72)
    body = ImageFont.truetype(str(font_path), px)
    bold = ImageFont.truetype(str(font_path), round(px * 1.1))
    left, right = round(30 / 25.4 * dpi), width - round(20 / 25.4 * dpi)
    y = round(20 / 25.4 * dpi)
    draw.text((left, y), "BỘ NỘI VỤ", font=bold, fill="black")
    draw.text((width // 2, y), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", font=bold, fill="black")
    y += round(px * 1.5)
    draw.text((left, y), "Số: 123/QĐ-BNV", font=body, fill="black")
    draw.text((width // 2 + px * 2, y), "Độc lập - Tự do - Hạnh phúc", font=body, fill="black")
    y += round(px * 3)
    title = "QUYẾT ĐỊNH"
    draw.text(((width - draw.textlength(title, font=bold)) / 2, y), title, font=bold, fill="black")
    y += round(px * 2.5)
    i = start % max(1, len(words) - 2000)
    step = round(px * rng.uniform(1.35, 1.7))
    bottom = height - round(25 / 25.4 * dpi) - step
    if layout == "sparse":
        bottom = y + step * 6
    if layout == "table":
        return render_table(image, words, i, body, px, left, right, y, bottom)
    while y < bottom:
        indent = px * 2 if rng.random() < 0.15 else 0
        line = ""
        while i < len(words) and draw.textlength(f"{line} {words[i]}".strip(), font=body) < right - left - indent:
            line = f"{line} {words[i]}".strip()
            i += 1
        if rng.random() < 0.08:  # short last line of a paragraph
            line = " ".join(line.split()[: max(2, len(line.split()) // 3)])
        draw.text((left + indent, y), line, font=body, fill="black")
        y += step
    return image


def render_table(
    image: Image.Image, words: list[str], i: int, font: ImageFont.FreeTypeFont, px: int, left: int, right: int, y: int, bottom: int
) -> Image.Image:
    """A ruled four-column table (thành phần hồ sơ) filling the page below ``y``."""
    draw = ImageDraw.Draw(image)
    cols = [left, left + (right - left) // 10, left + (right - left) // 2, left + 3 * (right - left) // 4, right]
    row_h = round(px * 2.2)
    top = y
    while y + row_h < bottom:
        for c0, c1 in zip(cols, cols[1:], strict=False):
            text = ""
            while i < len(words) and draw.textlength(f"{text} {words[i]}".strip(), font=font) < c1 - c0 - px:
                text = f"{text} {words[i]}".strip()
                i += 1
            draw.text((c0 + px // 3, y + px // 2), text, font=font, fill="black")
        y += row_h
        draw.line((left, y, right, y), fill="black", width=max(2, px // 12))
    for c in cols:
        draw.line((c, top, c, y), fill="black", width=max(2, px // 12))
    draw.line((left, top, right, top), fill="black", width=max(2, px // 12))
    return image


def degrade(image: Image.Image, variant: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one degradation variant to a rotated page."""
    if variant in ("blur", "noise+blur+jpeg"):
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0)))
    arr = np.asarray(image).astype(np.float32)
    if variant == "colour":
        arr = arr / 255.0
        paper = np.array([1.0, 0.95, 0.82], np.float32) * rng.uniform(0.85, 1.0)
        ink = np.array([0.10, 0.15, 0.55], np.float32)  # blue-black ink
        arr = (arr * paper + (1 - arr) * ink) * 255
        h, w = arr.shape[:2]
        seal = Image.new("L", (w, h), 0)
        cx, cy, r = w * 0.65, h * 0.8, w * 0.1
        ImageDraw.Draw(seal).ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=max(4, w // 150))
        mask = np.asarray(seal)[..., None] / 255.0
        arr = arr * (1 - mask) + mask * np.array([200, 30, 40], np.float32)
    if variant in ("noise", "noise+blur+jpeg", "colour", "sparse"):
        arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(10, 30))
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if variant == "saltpepper":
        draw = rng.random(arr.shape[:2])
        arr[draw < 0.01] = 0
        arr[draw > 0.99] = 255
    if variant in ("jpeg", "noise+blur+jpeg", "colour", "table"):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(25, 60)))
        arr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return arr


def make_samples(n: int, dpi: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    words, font_list = corpus_words(), fonts()
    samples = []
    for k in range(n):
        if k % 6 == 5:
            angle = float(rng.choice([-1, 1]) * rng.uniform(18.5, 19.5))
        else:
            angle = float(rng.uniform(-15, 15))
        font = font_list[k % len(font_list)]
        variant = VARIANTS[k % len(VARIANTS)]
        layout = variant if variant in ("sparse", "table") else "body"
        page = render_document(words, int(rng.integers(0, 10_000)), font, float(rng.uniform(11, 14)), dpi, rng, layout)
        rotated = page.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor="white")
        samples.append(Sample(angle=angle, variant=variant, font=font.stem, image=degrade(rotated, variant, rng)))
    return samples


def make_scan_samples(n: int, dpi: int, seed: int) -> list[Sample]:
    """Rendered Decree 30 pages degraded at the ``heavy`` level with a known angle (see above)."""
    from samples.degrade import degrade as degrade_scan
    from samples.render import available_fonts, render
    from samples.specs import synthetic_specs

    rng = np.random.default_rng(seed + 1)
    specs = synthetic_specs(max(1, n), seed=seed)
    families = [f for f in ("serif", "sans", "dejavu-serif", "noto-serif") if f in available_fonts()] or ["serif"]
    out = []
    for k in range(n):
        rendered = render(specs[k % len(specs)], font=families[k % len(families)], dpi=dpi)
        last = k % 2 == 1
        page = len(rendered.pages) - 1 if last else int(rng.integers(0, max(1, len(rendered.pages) - 1)))
        angle = float(rng.uniform(-15, 15))
        image, _ = degrade_scan(rendered.pages[page], "heavy", int(rng.integers(0, 1 << 30)), angle=angle)
        out.append(Sample(angle=angle, variant="scan-last" if last else "scan-heavy",
                          font=families[k % len(families)], image=np.asarray(image.convert("RGB"))))
    return out


def method_sohoa(gray: np.ndarray) -> float:
    return estimate_skew(gray, max_angle=20.0)


def method_deskew(gray: np.ndarray) -> float:
    from deskew import determine_skew

    angle = determine_skew(gray)  # package defaults (min_deviation 1°); returns the correction
    return -float(angle) if angle is not None else 0.0


def method_deskew_fine(gray: np.ndarray) -> float:
    from deskew import determine_skew

    angle = determine_skew(gray, min_deviation=0.1)
    return -float(angle) if angle is not None else 0.0


def method_jdeskew(gray: np.ndarray) -> float:
    from jdeskew.estimator import get_angle

    # angle_max above the range: jdeskew returns 0 at exactly -angle_max; returns the correction
    return -float(get_angle(gray, angle_max=25.0))


def available_methods() -> dict[str, Callable[[np.ndarray], float]]:
    methods: dict[str, Callable[[np.ndarray], float]] = {"sohoa.estimate_skew": method_sohoa}
    try:
        import deskew  # noqa: F401

        methods["deskew.determine_skew (default 1°)"] = method_deskew
        methods["deskew.determine_skew (min_deviation=0.1)"] = method_deskew_fine
    except ImportError:
        print("deskew not installed: skipped", file=sys.stderr)
    try:
        import jdeskew  # noqa: F401

        methods["jdeskew.get_angle (angle_max=25)"] = method_jdeskew
    except ImportError:
        print("jdeskew not installed: skipped", file=sys.stderr)
    return methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--scans", type=int, default=12, help="rendered Decree 30 pages, heavy degradation")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", default="", help="comma-separated substrings selecting methods")
    parser.add_argument("--details", action="store_true", help="print every page's errors")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    samples = make_samples(args.pages, args.dpi, args.seed) + make_scan_samples(args.scans, args.dpi, args.seed)
    grays = [to_gray(s.image) for s in samples]
    print(f"rendered {len(samples)} pages at {args.dpi} dpi in {time.perf_counter() - t0:.1f} s "
          f"(angles ±15°, {sum(abs(s.angle) > 18 for s in samples)} near ±19°; variants: {', '.join(VARIANTS)}; "
          f"{args.scans} rendered scans: scan-heavy, scan-last)")
    methods = available_methods()
    if args.methods:
        keys = [k.strip() for k in args.methods.split(",")]
        methods = {n: f for n, f in methods.items() if any(k in n for k in keys)}

    # sign sanity check on one clean page: each method's skew must have the sign of the truth
    probe = samples[0]
    for name, fn in methods.items():
        est = fn(probe.image if fn is method_sohoa else grays[0])
        if abs(probe.angle) > 1 and np.sign(est) != np.sign(probe.angle):
            print(f"WARNING: {name} sign disagrees on the probe page ({est:+.2f} vs {probe.angle:+.2f})")

    rows = []
    per_page: dict[str, list[float]] = {}
    for name, fn in methods.items():
        errors, times = [], []
        for sample, gray in zip(samples, grays, strict=True):
            start = time.perf_counter()
            est = fn(sample.image if fn is method_sohoa else gray)  # sohoa: colour, as deskew_page
            times.append(time.perf_counter() - start)
            errors.append(abs(est - sample.angle))
        per_page[name] = errors
        worst = int(np.argmax(errors))
        rows.append((name, statistics.median(errors), max(errors), float(np.mean(errors)),
                     sum(e <= 0.3 for e in errors), statistics.mean(times),
                     f"{samples[worst].variant}/{samples[worst].font} {samples[worst].angle:+.2f}°"))

    print("\nSign: truth = CCW rotation applied (PIL); deskew/jdeskew return the correction, negated once.")
    header = f"{'method':44} {'median°':>8} {'worst°':>8} {'mean°':>7} {'≤0.3°':>7} {'s/page':>7}  worst page"
    print(header)
    print("-" * len(header))
    for name, med, worst, mean, ok, secs, where in rows:
        print(f"{name:44} {med:8.3f} {worst:8.3f} {mean:7.3f} {ok:4d}/{len(samples):<2d} {secs:7.3f}  {where}")
    groups = {"synthetic": [k for k, s in enumerate(samples) if not s.variant.startswith("scan")],
              "scan-heavy": [k for k, s in enumerate(samples) if s.variant == "scan-heavy"],
              "scan-last": [k for k, s in enumerate(samples) if s.variant == "scan-last"]}
    print("\nby page set (median° / worst°):")
    for name, errors in per_page.items():
        cells = [f"{g} {statistics.median([errors[k] for k in ks]):.3f} / {max(errors[k] for k in ks):.3f}"
                 for g, ks in groups.items() if ks]
        print(f"  {name:44} " + "   ".join(cells))
    if args.details:
        print("\npage variant          font                       truth   " + "  ".join(n.split()[0][:12] for n in per_page))
        for k, s in enumerate(samples):
            errs = "  ".join(f"{per_page[n][k]:12.3f}" for n in per_page)
            print(f"{k:4d} {s.variant:16} {s.font:26} {s.angle:+7.2f} {errs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
