"""Train the handwritten-digit recogniser shipped as ``models/digits/digits.npz``.

    .venv/bin/python models/digits/train.py            # ~2 min on one core

Everything is generated here, nothing is downloaded:

* ``sklearn``: scikit-learn's bundled copy of the UCI handwritten digits (1,797 real 8×8
  digits), upscaled to 32×32 and contrast-stretched;
* ``font``: the digits rendered with the TrueType fonts on this machine (DejaVu, Liberation,
  Noto: sans, serif, mono, condensed; regular, bold, italic);
* ``stroke``: synthetic handwriting: per digit several polyline/arc skeletons (closed and open
  4, 7 with and without a crossbar, 1 with a flag — long enough to look like 'ʌ' — and with a
  foot, 2 with a loop, flat-topped 3, …) with jittered control points, slant, rotation, width
  and stroke thickness, drawn anti-aliased;
* ``reject`` ("not a digit"): printed letters and punctuation ("/", "T", "S", "ố", ":", …),
  random windows of printed words (slivers of neighbouring glyphs), blobs, seal-like arcs and
  speckle, rules, dashes, dot leaders, the top or bottom of a digit, and the left or right
  25–60 % of a digit cut along a slanted line (what a bad cut between touching digits leaves).

All of them go through the same augmentation (random affine, elastic distortion, thickening
or thinning, blur, low resolution, noise, slight clipping; for digits also a short stroke of
a neighbour left at one side, as a cut between touching digits leaves it), then the
binarise-and-normalise step :func:`pipeline.extract.handwriting.normalize_glyph` that
inference uses, then :func:`pipeline.extract.handwriting.glyph_features`. The model is an
ensemble of ``--members`` scikit-learn ``MLPClassifier`` (one hidden ReLU layer, different
seeds) whose weights are exported as plain numpy arrays (float16 weights, float32 biases); at
inference the probability is the mean over the members and over the glyph's test-time views
(:data:`pipeline.extract.handwriting.VIEWS`), and the softmax temperature of that mean is
fitted on a validation split. Each source keeps a held-out test split (sklearn: 20 % of the
images; font: four whole font files; stroke and reject: samples from another seed), and the
script ends by reading generated slot images (printed "Số:" / "/TB-UBND" in a held-out font
around synthetic handwritten numbers, one pen per number, held-out seed) with ``read_slot``
to report how many trusted readings are right and wrong by threshold.

Deterministic: fixed seeds, one BLAS thread.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.extract import handwriting as hw  # noqa: E402

cv2.setNumThreads(1)
OUT = ROOT / "models" / "digits" / "digits.npz"

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2", "/usr/share/fonts/truetype/liberation", "/usr/share/fonts/truetype/noto"]
FONT_PREFIXES = ("DejaVuSans", "DejaVuSerif", "Liberation", "NotoSans-", "NotoSerif-")
#: Held out from training (the ``font`` test split).
HELD_OUT_FONTS = ("DejaVuSerifCondensed-Italic.ttf", "LiberationSans-BoldItalic.ttf", "NotoSerif-Regular.ttf", "DejaVuSansMono-Bold.ttf")
#: Printed non-digits. Left out: shapes a hand writes for a digit — O o Q D (0), l I i j | ! ( ) [ ] (1),
#: Z z ? (2), s (5), b G (6), f F t + ^ ~ (a crossed or flagged 7, an open 4, a 1 drawn 'ʌ'), B & (8), g q (9).
REJECT_CHARS = list("/\\TSốỐấ:;-–_,.NUCKHrnhmyàáăâươêeacvVxXkpPRWMwEéAĐđ#%=<>\"'")
WORDS = ["UBND", "TTr", "ngày", "tháng", "Số:", "/TB", "CT-UBND", "Quảng", "Ngãi,", "/QĐ", "KTTH", "năm", "/BC", "HĐND"]


# ---------------------------------------------------------------------------------------------
# sources


def fonts() -> list[Path]:
    out = []
    for d in FONT_DIRS:
        p = Path(d)
        if p.is_dir():
            out += sorted(f for f in p.glob("*.ttf") if f.name.startswith(FONT_PREFIXES) and "Math" not in f.name)
    return out


def render_text(font: Path, text: str, px: int) -> np.ndarray:
    """Ink in [0, 1] of ``text`` rendered at ``px`` pixels, cropped with a small margin."""
    f = ImageFont.truetype(str(font), px)
    left, t, r, b = f.getbbox(text)
    im = Image.new("L", (r - left + 8, b - t + 8), 0)
    ImageDraw.Draw(im).text((4 - left, 4 - t), text, fill=255, font=f)
    return np.asarray(im, np.float32) / 255.0


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def sklearn_ink(img8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(28, 44))
    up = cv2.resize(np.pad(img8, 1), (size, size), interpolation=cv2.INTER_CUBIC)
    lo = rng.uniform(0.2, 0.4)
    return np.clip((up - lo) / 0.35, 0, 1)


def _arc(cx, cy, rx, ry, a0, a1, n=None):
    n = n or max(6, int(abs(a1 - a0) / 12))
    a = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _bez(p0, p1, p2, n=14):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.array(p, float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t * t * p2


def _pl(*pts):
    return np.array(pts, float)


class Strokes(list):
    """A skeleton that limits the slant it may be drawn with."""

    def __init__(self, strokes, max_slant: float = 0.45):
        super().__init__(strokes)
        self.max_slant = max_slant


def skeleton(d: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes (lists of points, x in ~[0, .6], y in [0, 1] downwards) of one digit variant."""
    u = rng.uniform
    v = int(rng.integers(0, 4))
    if d == 0:
        a0 = u(230, 300)
        rx = u(0.16, 0.3)
        return [_arc(0.3, 0.5, rx, 0.5, a0, a0 + 360 + u(-10, 25))]
    if d == 1:
        top = (u(0.3, 0.42), 0.0)
        v = int(rng.integers(0, 5))
        if v == 0:  # a plain bar: not slanted like a printed "/" (that is the reject class)
            return Strokes([_pl((0.35, 0), (0.35, 1))], max_slant=0.22)
        if v == 1:  # short flag
            return [_pl((u(0.1, 0.22), u(0.18, 0.3)), top, (top[0], 1))]
        if v == 2:  # flag and foot (upright: slanted, it would be a Z)
            return Strokes([_pl((u(0.1, 0.22), u(0.18, 0.3)), top, (top[0], 1)), _pl((u(0.1, 0.2), 1), (u(0.5, 0.6), 1))], max_slant=0.25)
        if v == 3:  # long flag from well down the left
            return [_pl((u(-0.3, 0.1), u(0.2, 0.55)), top, (top[0] + u(-0.05, 0.12), 1))]
        # the lead-in nearly as long as the stem: 'ʌ'
        return [_pl((u(-0.35, 0.0), u(0.6, 0.9)), (u(0.25, 0.4), 0.0), (top[0] + u(0.0, 0.15), 1))]
    if d == 2:
        head = _arc(0.3, 0.28, 0.27, 0.26, u(170, 210), u(370, 395))
        if v == 0:
            return [np.vstack([head, _pl((0.02, 1.0), (u(0.5, 0.65), u(0.95, 1.02)))])]
        if v == 1:  # loop at the bottom left
            return [np.vstack([head, _pl((0.08, 0.86), (0.04, 0.96), (0.13, 0.99), (0.18, 0.91), (0.1, 0.87), (0.2, 0.98), (u(0.5, 0.65), u(0.93, 1.0)))])]
        if v == 2:  # angular
            return [_pl((0.04, 0.1), (0.3, 0.0), (0.55, 0.12), (0.5, 0.35), (0.02, 1.0), (0.6, 1.0))]
        if u() < 0.5:  # cursive: the diagonal runs into a loop, then the tail
            r = u(0.12, 0.22)
            cx, cy = u(0.15, 0.3), 1.0 - r
            loop = _arc(cx, cy, r * u(0.8, 1.3), r, 140, 140 - 330)
            return [np.vstack([head, loop, _pl((u(0.5, 0.68), u(0.9, 1.02)))])]
        return [np.vstack([head, _bez((0.56, 0.4), (0.3, 0.75), (0.02, 0.98)), _pl((u(0.5, 0.65), 0.96))])]
    if d == 3:
        if v in (0, 1):
            top = _arc(0.28, 0.26, 0.25, 0.24, u(190, 215), 450)
        else:  # flat top
            top = _pl((0.04, 0.02), (0.55, 0.02), (0.24, 0.45))
        bottom = _arc(0.28, 0.73, 0.29, 0.26, 270, 270 + u(190, 230))
        return [np.vstack([top, bottom])]
    if d == 4:
        stem_x = u(0.38, 0.5)
        if v == 0:  # closed
            return [_pl((stem_x, 1.0), (stem_x, 0.0), (0.0, 0.66), (0.6, 0.66))]
        if v == 1:
            return [_pl((stem_x, 0.0), (0.0, 0.66), (0.6, 0.66)), _pl((stem_x, 0.05), (stem_x, 1.0))]
        if v == 2:  # open top
            return [_pl((u(0.1, 0.22), 0.0), (0.02, 0.62), (u(0.55, 0.68), 0.6)), _pl((stem_x + 0.05, u(0.15, 0.3)), (stem_x, 1.0))]
        return [_pl((u(0.12, 0.2), 0.0), (u(0.0, 0.06), 0.55), (0.62, 0.52)), _pl((stem_x, 0.0), (stem_x - 0.04, 1.0))]
    if d == 5:
        bowl = _arc(0.27, 0.7, 0.28, 0.29, u(215, 240), u(480, 500))
        if v in (0, 1):
            return [np.vstack([_pl((u(0.5, 0.6), 0.02), (0.14, 0.02), (0.1, 0.45)), bowl])]
        return [np.vstack([_pl((0.14, 0.0), (0.1, 0.45)), bowl]), _pl((0.14, 0.0), (u(0.5, 0.62), u(-0.04, 0.04)))]
    if d == 6:
        stem = _bez((u(0.42, 0.58), 0.0), (u(0.0, 0.1), u(0.15, 0.3)), (0.04, 0.72))
        loop = _arc(0.3, 0.72, 0.26, 0.27, 180, 180 + u(330, 370))
        return [np.vstack([stem, loop])]
    if d == 7:
        bar_y = u(0.0, 0.05)
        stem = rng.choice(["diagonal", "diagonal", "upright", "curved"])
        end = (u(0.12, 0.32), 1.0) if stem == "diagonal" else (u(0.3, 0.62), 1.0)
        if stem == "curved":
            body = np.vstack([_pl((0.0, bar_y), (0.6, bar_y)), _bez((0.6, bar_y), (0.5, 0.5), end)])
        else:
            body = _pl((0.0, bar_y), (0.6, bar_y), end)
        if u() < 0.3:  # a tick down at the bar's left end
            body = np.vstack([_pl((u(-0.02, 0.08), u(0.1, 0.4))), body])
        strokes = [body]
        if u() < 0.5:  # European crossbar
            mx = 0.6 + (end[0] - 0.6) * 0.5
            strokes.append(_pl((mx - u(0.12, 0.3), 0.5 + u(-0.06, 0.06)), (mx + u(0.12, 0.3), 0.5 + u(-0.06, 0.06))))
        return strokes
    if d == 8:
        if v in (0, 1):
            return [_arc(0.3, 0.25, 0.21, 0.24, 90, 450), _arc(0.3, 0.74, 0.27, 0.26, 270, 630)]
        # one stroke: an S down, then back up
        return [np.vstack([_bez((0.52, 0.12), (0.3, -0.08), (0.08, 0.2)), _bez((0.08, 0.2), (0.1, 0.42), (0.35, 0.52)), _bez((0.35, 0.52), (0.62, 0.66), (0.5, 0.9)), _bez((0.5, 0.9), (0.3, 1.06), (0.06, 0.88)), _bez((0.06, 0.88), (0.0, 0.66), (0.3, 0.5)), _bez((0.3, 0.5), (0.56, 0.34), (0.52, 0.12))])]
    # 9
    head = _arc(0.3, 0.28, 0.26, 0.27, u(-10, 10), u(355, 370))
    if v in (0, 1):
        return [np.vstack([head, _pl((u(0.54, 0.58), 0.3), (u(0.42, 0.56), 1.0))])]
    return [np.vstack([head, _bez((0.56, 0.3), (0.6, 0.9), (u(0.1, 0.25), 0.95))])]


def draw_strokes(strokes: list[np.ndarray], rng: np.random.Generator, height: int | None = None, pen: float | None = None) -> np.ndarray:
    """Jitter, slant, rotate and draw the skeleton; ink in [0, 1]."""
    u = rng.uniform
    height = height or int(rng.integers(30, 72))
    sx = u(0.75, 1.35)
    slant = u(-0.15, getattr(strokes, "max_slant", 0.45))
    rot = np.radians(u(-7, 7))
    thick = max(1, int(round(height * (pen if pen is not None else u(0.05, 0.17)))))
    pts_all = []
    widths = []
    for s in strokes:
        s = s.copy()
        if u() < 0.25:  # an entry or exit tick
            end = 0 if u() < 0.5 else -1
            a = u(0, 2 * np.pi)
            tick = s[end] + u(0.05, 0.15) * np.array([np.cos(a), np.sin(a)])
            s = np.vstack([tick[None], s]) if end == 0 else np.vstack([s, tick[None]])
        s += rng.normal(0, 0.03, size=s.shape)
        # a smooth wobble along the stroke
        t = np.linspace(0, 1, len(s))[:, None]
        s += 0.02 * np.sin(2 * np.pi * (t * u(0.5, 2) + u(0, 1))) * rng.normal(0, 1, size=(1, 2))
        x = (s[:, 0] - 0.3) * sx
        y = s[:, 1] - 0.5
        x = x - slant * y
        xr = x * np.cos(rot) - y * np.sin(rot)
        yr = x * np.sin(rot) + y * np.cos(rot)
        pts_all.append(np.stack([xr, yr], 1) * height)
        widths.append(max(1, int(round(thick * (u(0.55, 1.0) if u() < 0.3 else 1.0)))))
    allp = np.vstack(pts_all)
    off = -allp.min(0) + thick + 3
    size = (allp.max(0) - allp.min(0) + 2 * thick + 6).astype(int) + 1
    canvas = np.zeros((size[1], size[0]), np.uint8)
    for p, t in zip(pts_all, widths, strict=True):
        q = np.round((p + off) * 4).astype(np.int32)
        cv2.polylines(canvas, [q], False, 255, thickness=t, lineType=cv2.LINE_AA, shift=2)
    return canvas.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# augmentation


def augment(ink: np.ndarray, rng: np.random.Generator, strength: float = 1.0, residue: bool = True) -> np.ndarray:
    u = rng.uniform
    pad = max(4, int(0.25 * max(ink.shape)))
    g = np.pad(ink, pad)
    h, w = g.shape
    # affine
    ang = u(-8, 8) * strength
    shear = u(-0.2, 0.25) * strength
    sx = np.exp(u(-0.3, 0.3) * strength)
    c = np.array([w / 2, h / 2])
    a = np.radians(ang)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[sx, -shear], [0, 1]])
    M = np.hstack([R, (c - R @ c)[:, None]])
    g = cv2.warpAffine(g, M, (w, h), flags=cv2.INTER_LINEAR)
    # elastic
    if u() < 0.6 * strength:
        sigma = u(0.08, 0.16) * max(h, w)
        alpha = u(0.02, 0.06) * max(h, w) * strength
        dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        nrm = max(np.abs(dx).max(), np.abs(dy).max(), 1e-6)
        xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        g = cv2.remap(g, xx + dx / nrm * alpha, yy + dy / nrm * alpha, cv2.INTER_LINEAR)
    # thickness
    r = u()
    k = max(2, int(round(max(h, w) / 40)))
    if r < 0.2:
        g = cv2.dilate(g, np.ones((k, k), np.uint8))
    elif r < 0.35:
        eroded = cv2.erode(g, np.ones((2, 2), np.uint8))
        if (eroded > 0.5).sum() > 0.4 * (g > 0.5).sum():
            g = eroded
    # low resolution
    if u() < 0.3:
        f = u(0.3, 0.6)
        small = cv2.resize(g, (max(4, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA)
        g = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if u() < 0.5:
        g = cv2.GaussianBlur(g, (0, 0), u(0.4, 1.2))
    # noise
    if u() < 0.4:
        g = g + rng.normal(0, u(0.03, 0.12), g.shape).astype(np.float32)
    # slight clipping of one side
    if u() < 0.15 * strength:
        ys, xs = np.nonzero(g > 0.3)
        if ys.size:
            side = int(rng.integers(0, 4))
            f = u(0.02, 0.12)
            if side == 0:
                g[: ys.min() + int(f * (ys.max() - ys.min())), :] = 0
            elif side == 1:
                g[ys.max() - int(f * (ys.max() - ys.min())) :, :] = 0
            elif side == 2:
                g[:, : xs.min() + int(f * (xs.max() - xs.min()))] = 0
            else:
                g[:, xs.max() - int(f * (xs.max() - xs.min())) :] = 0
    if residue and u() < 0.2:
        g = add_residue(g, rng)
    g = np.clip(g, 0, 1)
    return binarise_like_inference(g, rng)


def add_residue(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A short stroke of the neighbouring glyph left at the left or right edge, as a cut
    between touching digits leaves it (the label stays)."""
    ys, xs = np.nonzero(g > 0.4)
    if ys.size < 10:
        return g
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    hgt = y1 - y0 + 1
    d = cv2.distanceTransform((g > 0.4).astype(np.uint8), cv2.DIST_L2, 3)
    width = max(1, int(round(2 * np.median(d[d > 0])))) if (d > 0).any() else 2
    right = rng.uniform() < 0.5
    ln = rng.uniform(0.1, 0.3) * hgt
    ang = np.radians(rng.uniform(-35, 35) + (180 if right else 0))
    yy = y0 + rng.uniform(0.2, 0.85) * hgt
    xx = (x1 if right else x0) + rng.uniform(-0.05, 0.05) * hgt
    p0 = (xx, yy)
    p1 = (xx - np.cos(ang) * ln, yy - np.sin(ang) * ln)  # pointing away from the glyph
    canvas = np.zeros(g.shape, np.uint8)
    cv2.line(canvas, (int(p0[0] * 4), int(p0[1] * 4)), (int(p1[0] * 4), int(p1[1] * 4)), 255, width, cv2.LINE_AA, shift=2)
    return np.maximum(g, canvas.astype(np.float32) / 255.0)


def binarise_like_inference(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What read_slot hands the classifier: the soft ink inside the (dilated) thresholded
    mask of the component(s), at least 0.5 on the mask; specks outside the largest parts gone."""
    mask = (g > rng.uniform(0.35, 0.55)).astype(np.uint8)
    if not mask.any():
        return g * 0
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n > 2:
        big = st[1:, cv2.CC_STAT_AREA].max()
        keep = np.zeros(n, bool)
        keep[1:] = st[1:, cv2.CC_STAT_AREA] >= max(4, 0.05 * big)
        mask = keep[lab].astype(np.uint8)
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(np.float32)
    return np.maximum(g * grown, mask * 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# reject class


def reject_sample(rng: np.random.Generator, font_list: list[Path], digit_fn) -> np.ndarray:
    u = rng.uniform
    kind = rng.choice(["char", "char", "char", "window", "blob", "arc", "speckle", "line", "line", "dots", "clipped", "clipped"])
    if kind == "char":
        f = font_list[int(rng.integers(len(font_list)))]
        ch = REJECT_CHARS[int(rng.integers(len(REJECT_CHARS)))]
        return render_text(f, ch, int(rng.integers(28, 64)))
    if kind == "window":
        f = font_list[int(rng.integers(len(font_list)))]
        word = WORDS[int(rng.integers(len(WORDS)))]
        im = render_text(f, word, int(rng.integers(30, 60)))
        h, w = im.shape
        ww = max(3, int(h * u(0.35, 0.9)))
        x = int(rng.integers(0, max(1, w - ww)))
        return im[:, x : x + ww]
    size = int(rng.integers(24, 64))
    canvas = np.zeros((size, size), np.uint8)
    if kind == "blob":
        for _ in range(int(rng.integers(1, 3))):
            rx = u(0.1, 0.45) * size
            ry = min(u(0.05, 0.45) * size, 1.8 * rx)  # not a bar (that would be a 1)
            cv2.ellipse(canvas, (int(u(0.3, 0.7) * size), int(u(0.3, 0.7) * size)), (int(rx), int(ry)), u(-40, 40), 0, 360, 255, -1, cv2.LINE_AA)
    elif kind == "arc":  # seal ring / show-through
        r = int(size * u(1.0, 3.0))
        c = (int(size / 2 + r * np.cos(a := u(0, 2 * np.pi))), int(size / 2 + r * np.sin(a)))
        cv2.circle(canvas, c, r, 255, int(rng.integers(1, 4)), cv2.LINE_AA)
        for _ in range(int(rng.integers(0, 12))):
            cv2.circle(canvas, (int(rng.integers(0, size)), int(rng.integers(0, size))), int(rng.integers(1, 3)), 255, -1)
    elif kind == "speckle":
        for _ in range(int(rng.integers(4, 30))):
            cv2.circle(canvas, (int(rng.integers(0, size)), int(rng.integers(0, size))), int(rng.integers(1, 4)), 255, -1)
    elif kind == "line":  # rules, dashes, strokes flatter than a slanted 1
        ang = np.radians(u(-55, 55))
        ln = u(0.4, 1.0) * size
        c = np.array([size / 2, size / 2])
        d = np.array([np.cos(ang), np.sin(ang)]) * ln / 2
        cv2.line(canvas, tuple(int(v) for v in c - d), tuple(int(v) for v in c + d), 255, int(rng.integers(1, max(2, size // 8))), cv2.LINE_AA)
    elif kind == "dots":  # leaders and colons
        n = int(rng.integers(2, 7))
        vertical = u() < 0.4
        for i in range(n):
            p = int((i + 0.5) / n * size)
            q = size // 2 + int(rng.integers(-2, 3))
            cv2.circle(canvas, (q, p) if vertical else (p, q), int(rng.integers(1, 4)), 255, -1)
    else:  # part of a digit: the top or bottom, or the left or right of a (slanted) cut
        d = int(rng.choice([0, 2, 3, 4, 5, 6, 8, 9]))
        im = digit_fn(d)
        ys, xs = np.nonzero(im > 0.3)
        if ys.size == 0:
            return im
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = int(rng.integers(0, 4))
        if side == 0:
            return im[y0 : y0 + max(2, int(u(0.25, 0.45) * (y1 - y0))), x0:x1]
        if side == 1:
            return im[y1 - max(2, int(u(0.25, 0.45) * (y1 - y0))) : y1, x0:x1]
        # a cut as read_slot makes between touching digits: a slanted line through the glyph
        f = u(0.25, 0.6)
        shear = u(-0.15, 0.6)
        hh, ww = im.shape
        gx = np.arange(ww)[None, :] - shear * (np.arange(hh)[:, None] - (y0 + y1) / 2)
        cut = x0 + f * (x1 - x0) if side == 2 else x1 - f * (x1 - x0)
        keep = gx < cut if side == 2 else gx >= cut
        return im * keep
    return canvas.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# data sets


def build(seed: int, n_stroke: int, n_font: int, n_sk_aug: int, n_reject: int, font_list: list[Path], sk_idx: np.ndarray, sk: tuple[np.ndarray, np.ndarray], aug: bool = True, views: bool = False):
    """Features (of each glyph, or of each of its test-time views), labels and source tags
    for one split."""
    rng = np.random.default_rng(seed)
    inks: list[np.ndarray] = []
    ys: list[int] = []
    src: list[str] = []

    def maybe_aug(i):
        return augment(i, rng) if aug else binarise_like_inference(np.pad(i, 4), rng)

    for d in range(10):
        for _ in range(n_stroke):
            inks.append(maybe_aug(draw_strokes(skeleton(d, rng), rng)))
            ys.append(d)
            src.append("stroke")
    for d in range(10):
        for _ in range(n_font):
            f = font_list[int(rng.integers(len(font_list)))]
            inks.append(maybe_aug(render_text(f, str(d), int(rng.integers(24, 72)))))
            ys.append(d)
            src.append("font")
    imgs, tg = sk
    for i in sk_idx:
        for _ in range(n_sk_aug):
            inks.append(maybe_aug(sklearn_ink(imgs[i], rng)))
            ys.append(int(tg[i]))
            src.append("sklearn")

    def digit_fn(d):
        if rng.uniform() < 0.5:
            return draw_strokes(skeleton(d, rng), rng)
        return render_text(font_list[int(rng.integers(len(font_list)))], str(d), int(rng.integers(30, 64)))

    for _ in range(n_reject):
        inks.append(augment(reject_sample(rng, font_list, digit_fn), rng, residue=False) if aug else binarise_like_inference(np.pad(reject_sample(rng, font_list, digit_fn), 4), rng))
        ys.append(hw.REJECT)
        src.append("reject")
    return hw.inks_features(inks, views=views), np.array(ys), np.array(src)


# ---------------------------------------------------------------------------------------------
# generated slots (end-to-end check of read_slot)


def synthetic_slot(rng: np.random.Generator, font_list: list[Path]) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
    """A strip of page: printed "Số:" and "/TB-UBND" (a serif font), a handwritten number
    between them; returns the RGB image, the slot box and the true digits."""
    n = int(rng.choice([1, 2, 2, 2, 3]))
    digits = "".join(str(int(rng.integers(0, 10))) for _ in range(n))
    fp = font_list[int(rng.integers(len(font_list)))]
    size = int(rng.integers(40, 56))
    left = render_text(fp, "Số:", size)
    right = render_text(fp, "/TB-UBND", size)
    dh = int(size * rng.uniform(0.8, 1.3))
    pen = rng.uniform(0.05, 0.17)  # one pen for the whole number
    glyphs = [draw_strokes(skeleton(int(c), rng), rng, height=dh, pen=pen * rng.uniform(0.9, 1.1)) for c in digits]
    gap = int(rng.integers(2, 12))
    H = int(size * 2.6)
    W = left.shape[1] + right.shape[1] + sum(g.shape[1] for g in glyphs) + gap * (n + 1) + 60
    ink = np.zeros((H, W), np.float32)
    base = int(H * 0.62)
    x = 10
    ink[base - left.shape[0] + 8 : base + 8, x : x + left.shape[1]] = np.maximum(ink[base - left.shape[0] + 8 : base + 8, x : x + left.shape[1]], left)
    x += left.shape[1]
    box_x0 = x
    x += gap
    for g in glyphs:
        yb = base + int(rng.integers(-4, 6))
        y0 = max(0, yb - g.shape[0] + 4)
        gg = g[: H - y0]
        ink[y0 : y0 + gg.shape[0], x : x + gg.shape[1]] = np.maximum(ink[y0 : y0 + gg.shape[0], x : x + gg.shape[1]], gg)
        x += g.shape[1] - int(rng.integers(0, max(1, g.shape[1] // 6))) + gap
    x += int(rng.integers(0, 10))
    box_x1 = x
    ink[base - right.shape[0] + 8 : base + 8, x : x + right.shape[1]] = np.maximum(ink[base - right.shape[0] + 8 : base + 8, x : x + right.shape[1]], right)
    ink = ink[:, : x + right.shape[1] + 10]
    blue = rng.uniform() < 0.5
    pen = np.array([30, 50, 160] if blue else [20, 20, 20], np.float32)
    img = 255 - ink[..., None] * (255 - pen)
    img += rng.normal(0, 4, img.shape)
    box = (box_x0, int(base - size * 1.25), box_x1, int(base + size * 0.55))
    return np.clip(img, 0, 255).astype(np.uint8), box, digits


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stroke", type=int, default=1300, help="stroke samples per digit (train)")
    ap.add_argument("--font", type=int, default=700, help="font samples per digit (train)")
    ap.add_argument("--sk-aug", type=int, default=5, help="augmented copies per sklearn digit (train)")
    ap.add_argument("--reject", type=int, default=9000, help="reject samples (train)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--members", type=int, default=3, help="MLPs in the ensemble")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--slots", type=int, default=400, help="generated slots for the end-to-end check")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report", type=Path, default=None, help="also write the scores as JSON here")
    args = ap.parse_args(argv)
    t0 = time.time()

    all_fonts = fonts()
    train_fonts = [f for f in all_fonts if f.name not in HELD_OUT_FONTS]
    test_fonts = [f for f in all_fonts if f.name in HELD_OUT_FONTS]
    sk = sklearn_digits()
    perm = np.random.default_rng(0).permutation(len(sk[1]))
    n_test = len(perm) // 5
    sk_test, sk_train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    print(f"fonts: {len(train_fonts)} train, {len(test_fonts)} held out; sklearn digits: {len(sk_train)} train, {len(sk_test)} held out")

    X, y, src = build(1, args.stroke, args.font, args.sk_aug, args.reject, train_fonts, sk_train, sk)
    print(f"train: {len(y)} samples ({time.time() - t0:.0f}s)")
    # validation (temperature) and test splits: other seeds, held-out fonts and sklearn images
    Xv, yv, sv = build(2, 120, 0, 0, 900, train_fonts, np.array([], int), sk, views=True)
    Xt, yt, st = build(3, 150, 100, 1, 1200, test_fonts, sk_test, sk, views=True)
    Xr, yr, sr = build(4, 0, 0, 1, 0, test_fonts, sk_test, sk, aug=False, views=True)  # raw held-out sklearn
    V = len(hw.VIEWS)
    print(f"val {len(yv)}, test {len(yt)} ({time.time() - t0:.0f}s)")

    import warnings

    from sklearn.neural_network import MLPClassifier

    mean = X.mean(0)
    scale = X.std(0) + 1e-3
    Xs = (X - mean) / scale
    arrays: dict[str, np.ndarray] = {}
    for j in range(args.members):
        clf = MLPClassifier(hidden_layer_sizes=(args.hidden,), alpha=3e-4, batch_size=256, learning_rate_init=1e-3, max_iter=args.epochs, random_state=j, tol=1e-5, n_iter_no_change=50)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(Xs, y)
        for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True)):
            arrays[f"m{j}_W{i + 1}"] = w.astype(np.float16)  # half the bytes; inference casts to float32
            arrays[f"m{j}_b{i + 1}"] = b.astype(np.float32)
        n_layers = len(clf.coefs_)
        print(f"member {j} fit ({time.time() - t0:.0f}s)")

    labels = np.array([str(i) for i in range(10)] + ["reject"])
    members = tuple(tuple((arrays[f"m{j}_W{i}"].astype(np.float32), arrays[f"m{j}_b{i}"]) for i in range(1, n_layers + 1)) for j in range(args.members))
    model = hw.DigitModel(mean.astype(np.float32), scale.astype(np.float32), members, 1.0, tuple(labels))

    # temperature: minimise the NLL of the shipped prediction (members × views) on validation
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.4), np.log(4), 50)):
        p = model.predict_proba(Xv, n_views=V, temperature=float(t))
        nll = -np.mean(np.log(np.maximum(p[np.arange(len(yv)), yv], 1e-12)))
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        feature_version=np.int64(hw.FEATURE_VERSION),
        n_members=np.int64(args.members),
        n_layers=np.int64(n_layers),
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        temperature=np.float64(best_t),
        labels=labels,
        **arrays,
    )
    model = hw.DigitModel.load(args.out)

    scores: dict = {"temperature": round(best_t, 3), "train_samples": int(len(y)), "members": args.members, "views": V}

    def report(name, Xs, ys):
        p = model.predict_proba(Xs, n_views=V)
        pred = p.argmax(1)
        conf = p.max(1)
        acc = float((pred == ys).mean())
        hi = conf >= hw.TRUST_THRESHOLD
        err_hi = float(((pred != ys) & hi).sum() / max(1, hi.sum()))
        scores[name] = {"n": int(len(ys)), "accuracy": round(acc, 4), "coverage_at_threshold": round(float(hi.mean()), 4), "error_at_threshold": round(err_hi, 4)}
        print(f"{name:16s} n={len(ys):5d} acc={acc:.4f}  ≥{hw.TRUST_THRESHOLD}: coverage {hi.mean():.3f} error {err_hi:.4f}")

    for s in ("stroke", "font", "sklearn", "reject"):
        sel = np.repeat(st == s, V)
        report(f"test_{s}", Xt[sel], yt[st == s])
    report("test_sklearn_raw", Xr, yr)

    # end-to-end: generated slots through read_slot
    hw._MODEL = None
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(args.slots):
        img, box, truth = synthetic_slot(rng, test_fonts)
        r = hw.read_slot(img, box, model_path=args.out)
        rows.append((truth, r.text, r.confidence))
    slot = {}
    for thr in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
        trusted = [(t, x) for t, x, c in rows if x is not None and c >= thr]
        wrong = sum(t != x for t, x in trusted)
        slot[str(thr)] = {"trusted": len(trusted), "wrong": wrong, "right": len(trusted) - wrong}
    exact = sum(t == x for t, x, _ in rows) / max(1, len(rows))
    scores["slots"] = {"n": len(rows), "exact_any_confidence": round(exact, 4), "by_threshold": slot}
    print(f"slots: exact {exact:.3f}; " + "; ".join(f"≥{k}: {v['trusted']} trusted, {v['wrong']} wrong" for k, v in slot.items()))

    sha = hashlib.sha256(args.out.read_bytes()).hexdigest()
    scores["sha256"] = sha
    scores["bytes"] = args.out.stat().st_size
    scores["seconds"] = round(time.time() - t0, 1)
    if args.report:
        args.report.write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {sha}) in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
