"""Handwritten digits in the printed slots of a Decree-30 header.

At registration the clerk writes the document number and the day of the date by hand into
gaps the printed page leaves for them: "Số: 46 /TB-UBND", "…, ngày 24 tháng 01 năm 2025".
Tesseract reads those digits badly. This module reads them with a small digit recogniser of
our own (``models/digits``, trained by ``models/digits/train.py`` from generated data only):

* :func:`classify_digits` — one image per glyph → ``(label, probability)``; the label is None
  when the glyph is not a digit (the model has an 11th "not a digit" class: letters, "/", ":",
  rules, blobs, seal speckle, fragments).
* :func:`read_slot` — a page image and the pixel box of one slot → :class:`SlotReading`: finds
  the ink, drops printed rules, dots and the neighbours' glyphs, segments digit candidates,
  classifies them and says how sure it is.

Confidence is the product of the per-digit probabilities, times the penalties described in
:func:`read_slot`. A digit's probability is the mean over an ensemble of small MLPs and over
seven test-time views of the glyph (sheared, narrowed, widened, thinned, thickened), at a
fitted temperature: a glyph the model reads one way only from one angle gets a low
probability. A caller trusts a reading only when ``reading.trusted`` (text present and
confidence ≥ :data:`TRUST_THRESHOLD`); below it the value is a hint for a reviewer, never a
field value. Inference is numpy matmuls over a fixed feature vector (:func:`glyph_features`);
``models/digits/digits.npz`` holds plain arrays, no pickle (layout in ``models/digits/README.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[3] / "models" / "digits" / "digits.npz"

#: A reading is trusted (used as a field value) only at or above this confidence. Chosen on
#: generated held-out slots (the lowest round value with no wrong trusted reading and a margin:
#: 0.8 was already clean there), then checked on the real scans (``models/digits/README.md``).
TRUST_THRESHOLD = 0.9
#: A handwritten day read at or above this (but below TRUST_THRESHOLD) is kept only when a second,
#: independent reading agrees: the issuing body's e-signature dated that day or up to
#: ``signatures.HANDWRITTEN_DAY_WINDOW`` days later (:func:`pipeline.stages.extract.signatures.apply_signatures`).
#: On the development set, of the recogniser's readings at 0.7–0.9, 5 of 6 were right; the wrong one
#: ('1' for '04') was a number, which nothing else corroborates.
CORROBORATED_MIN_CONF = 0.7

#: Side of the normalised glyph, and of the box its longer side is scaled into (MNIST-like).
GLYPH = 28
GLYPH_BOX = 20
#: Index of the "not a digit" class; labels 0–9 are the digits themselves.
REJECT = 10
#: Feature layout version: the npz records it and loading refuses a mismatch.
FEATURE_VERSION = 2

_MODEL: DigitModel | None = None
_MODEL_PATH: Path | None = None
_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# glyph normalisation and features (shared by training and inference)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grey from grey or RGB(A) uint8 (or bool/float in [0, 1]); white paper stays white."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = np.where(img, 0, 255).astype(np.uint8)  # a mask: True is ink
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        if f.size and f.max() <= 1.0:
            f = f * 255.0
        img = np.clip(f, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[..., :3]
        if img.shape[2] == 1:
            img = img[..., 0]
        else:
            img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return img


def ink_from_crop(crop: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] (1 = full ink) of a glyph crop on white paper."""
    g = to_gray(crop).astype(np.float32)
    if g.size == 0:
        return np.zeros((1, 1), np.float32)
    paper = float(np.percentile(g, 95))
    dark = float(g.min())
    span = max(paper - dark, 60.0)
    return np.clip((paper - g) / span, 0.0, 1.0)


def normalize_glyph(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """The glyph's ink, binarised at 0.5 (the edge profile of a scan, a printer or a renderer
    does not reach the model), cropped to its bounding box, its longer side scaled to GLYPH_BOX
    pixels (aspect kept, area-averaged), centred in a GLYPH×GLYPH square; and log(height/width)
    of the box."""
    ink = np.asarray(ink, np.float32)
    out = np.zeros((GLYPH, GLYPH), np.float32)
    ys, xs = np.nonzero(ink >= 0.5)
    if len(ys) == 0:
        return out, 0.0
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    g: np.ndarray = (ink[y0:y1, x0:x1] >= 0.5).astype(np.float32)
    h, w = g.shape
    s = GLYPH_BOX / max(h, w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    g = cv2.resize(g, (nw, nh), interpolation=interp)
    oy, ox = (GLYPH - nh) // 2, (GLYPH - nw) // 2
    out[oy : oy + nh, ox : ox + nw] = np.clip(g, 0, 1)
    return out, float(np.log(h / w))


_HOG_BINS = 9
_CELL = 4


def glyph_features(glyphs: np.ndarray, log_aspect: np.ndarray) -> np.ndarray:
    """Feature vectors (N, 196 + 441 + 2) of normalised glyphs (N, 28, 28):

    * the glyph pooled to 14×14 (mean of 2×2);
    * a HOG-like descriptor: gradient orientation (unsigned, 9 bins, linear interpolation
      between bins) weighted by magnitude, summed over 4×4-pixel cells (7×7 cells) of the
      slightly blurred glyph, L2-normalised then square-rooted (insensitive to stroke width);
    * log aspect of the glyph's box (clipped to ±2.5) and its ink mass.
    """
    g = np.asarray(glyphs, np.float32).reshape(-1, GLYPH, GLYPH)
    n = g.shape[0]
    pooled = g.reshape(n, GLYPH // 2, 2, GLYPH // 2, 2).mean(axis=(2, 4)).reshape(n, -1)
    hog = np.concatenate([_hog(g[i : i + 1024]) for i in range(0, n, 1024)]) if n else np.zeros((0, 441), np.float32)
    la = np.clip(np.asarray(log_aspect, np.float32).reshape(n, 1), -2.5, 2.5)
    extra = np.concatenate([la, g.reshape(n, -1).mean(axis=1, keepdims=True) * 4], axis=1)
    return np.concatenate([pooled, hog, extra], axis=1).astype(np.float32)


#: Test-time views of a glyph (shear, horizontal scale, 3×3 erode −1 / dilate +1), on the
#: binarised glyph scaled to VIEW_HEIGHT pixels. The probability is the mean over the views
#: (and the ensemble's members): a glyph the model reads one way only from one angle gets
#: a low probability.
VIEWS: tuple[tuple[float, float, int], ...] = (
    (0.0, 1.0, 0),
    (-0.15, 1.0, 0),
    (0.15, 1.0, 0),
    (0.0, 0.85, 0),
    (0.0, 1.15, 0),
    (0.0, 1.0, -1),
    (0.0, 1.0, 1),
)
VIEW_HEIGHT = 48


def glyph_views(ink: np.ndarray) -> list[np.ndarray]:
    """The glyph's binarised ink under each of :data:`VIEWS` (the first is the glyph itself)."""
    b = (np.asarray(ink, np.float32) >= 0.5).astype(np.float32)
    ys, xs = np.nonzero(b)
    if ys.size == 0:
        return [b] * len(VIEWS)
    b = b[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = b.shape
    s = VIEW_HEIGHT / h
    nw = max(1, int(round(w * s)))
    b = (cv2.resize(b, (nw, VIEW_HEIGHT), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR) >= 0.5).astype(np.uint8)
    pad = VIEW_HEIGHT // 4
    b = np.pad(b, pad)
    H, W = b.shape
    out = []
    k = np.ones((3, 3), np.uint8)
    for shear, sx, morph in VIEWS:
        v: np.ndarray = b
        if shear or sx != 1.0:
            M = np.array([[sx, shear, (1 - sx) * W / 2 - shear * H / 2], [0, 1, 0]], np.float32)
            v = cv2.warpAffine(b.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR)
            v = (v >= 0.5).astype(np.uint8)
        if morph > 0:
            v = cv2.dilate(v, k)
        elif morph < 0:
            e = cv2.erode(v, k)
            v = e if e.sum() >= 0.5 * v.sum() else v
        out.append(v.astype(np.float32))
    return out


def inks_features(inks: Sequence[np.ndarray], views: bool = True) -> np.ndarray:
    """Features of each glyph (N, F), or of each of its views (N × len(VIEWS), F), glyph-major."""
    all_inks = [v for i in inks for v in glyph_views(i)] if views else list(inks)
    if not all_inks:
        return np.zeros((0, 196 + 441 + 2), np.float32)
    norm = [normalize_glyph(i) for i in all_inks]
    return glyph_features(np.stack([g for g, _ in norm]), np.array([a for _, a in norm], np.float32))


def _hog(g: np.ndarray) -> np.ndarray:
    n = g.shape[0]
    b = np.stack([cv2.GaussianBlur(x, (3, 3), 0.8) for x in g])
    gx = np.zeros_like(b)
    gy = np.zeros_like(b)
    gx[:, :, 1:-1] = b[:, :, 2:] - b[:, :, :-2]
    gy[:, 1:-1, :] = b[:, 2:, :] - b[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi) / np.pi * _HOG_BINS  # [0, 9)
    lo = np.floor(ang).astype(np.int64) % _HOG_BINS
    wh = (ang - np.floor(ang)).astype(np.float32)
    bins = np.arange(_HOG_BINS)
    hist = (lo[..., None] == bins) * (mag * (1 - wh))[..., None]
    hist += (((lo + 1) % _HOG_BINS)[..., None] == bins) * (mag * wh)[..., None]
    c = GLYPH // _CELL
    hog = hist.reshape(n, c, _CELL, c, _CELL, _HOG_BINS).sum(axis=(2, 4)).reshape(n, -1)
    hog = hog / (np.linalg.norm(hog, axis=1, keepdims=True) + 1e-6)
    return np.sqrt(hog).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class DigitModel:
    """The exported ensemble of MLPs: standardise, ReLU hidden layer(s), softmax at a fitted
    temperature, probabilities averaged over members (and a glyph's views)."""

    mean: np.ndarray
    scale: np.ndarray
    members: tuple[tuple[tuple[np.ndarray, np.ndarray], ...], ...]
    temperature: float
    labels: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> DigitModel:
        with np.load(path, allow_pickle=False) as z:
            if int(z["feature_version"]) != FEATURE_VERSION:
                raise ValueError(f"{path}: feature version {int(z['feature_version'])}, code expects {FEATURE_VERSION}")
            layers = int(z["n_layers"])
            members = tuple(
                tuple((z[f"m{j}_W{i}"].astype(np.float32), z[f"m{j}_b{i}"].astype(np.float32)) for i in range(1, layers + 1))
                for j in range(int(z["n_members"]))
            )
            return cls(
                mean=z["mean"].astype(np.float32),
                scale=z["scale"].astype(np.float32),
                members=members,
                temperature=float(z["temperature"]),
                labels=tuple(str(x) for x in z["labels"]),
            )

    def logits(self, feats: np.ndarray) -> np.ndarray:
        """(members, N, classes)."""
        x = (np.asarray(feats, np.float32) - self.mean) / self.scale
        out = []
        for layers in self.members:
            h = x
            for i, (w, b) in enumerate(layers):
                h = h @ w + b
                if i < len(layers) - 1:
                    h = np.maximum(h, 0.0)
            out.append(h)
        return np.stack(out)

    def predict_proba(self, feats: np.ndarray, n_views: int = 1, temperature: float | None = None) -> np.ndarray:
        """(N, classes) from features (N × n_views, F), glyph-major."""
        z = self.logits(feats) / (self.temperature if temperature is None else temperature)
        z = z - z.max(axis=2, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=2, keepdims=True)
        m, nv, k = p.shape
        return p.reshape(m, nv // n_views, n_views, k).mean(axis=(0, 2))


def load_model(path: str | Path | None = None) -> DigitModel:
    """The digit model, loaded once per process (per path)."""
    global _MODEL, _MODEL_PATH
    p = Path(path) if path is not None else DEFAULT_MODEL_PATH
    with _LOCK:
        if _MODEL is None or _MODEL_PATH != p:
            _MODEL = DigitModel.load(p)
            _MODEL_PATH = p
        return _MODEL


def _proba_of_inks(inks: Sequence[np.ndarray], model_path: str | Path | None = None) -> np.ndarray:
    if not inks:
        return np.zeros((0, REJECT + 1), np.float32)
    return load_model(model_path).predict_proba(inks_features(inks), n_views=len(VIEWS))


def _label(p: np.ndarray) -> tuple[str | None, float]:
    k = int(np.argmax(p))
    return (None if k == REJECT else str(k)), float(p[k])


def classify_digits(crops: list[np.ndarray], model_path: str | Path | None = None) -> list[tuple[str | None, float]]:
    """Label ("0"–"9", or None for "not a digit") and its probability for each glyph crop
    (grey or RGB uint8, dark ink on white paper, one glyph per crop, any size)."""
    inks = [ink_from_crop(c) for c in crops]
    out: list[tuple[str | None, float]] = []
    for ink, p in zip(inks, _proba_of_inks(inks, model_path), strict=True):
        if not (ink > 0.3).any():
            out.append((None, 1.0))  # blank: certainly not a digit
        else:
            out.append(_label(p))
    return out


# ---------------------------------------------------------------------------------------------
# reading a slot

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SlotReading:
    """What :func:`read_slot` found in one slot.

    ``text``: the digits, or None (no ink, a glyph that is not a digit, too many glyphs).
    ``confidence``: in [0, 1]; 0 when ``text`` is None. ``digits``: per candidate glyph
    (label or None, probability, box in page pixels x0, y0, x1, y1). ``ink``: "blue", "black",
    "other" or "none". ``handwritten``: see :func:`read_slot`. ``box``: the slot box read.
    ``notes``: why confidence was lowered (for the review desk and the evaluation)."""

    text: str | None
    confidence: float
    digits: list[tuple[str | None, float, Box]]
    ink: str
    handwritten: bool
    box: Box
    notes: tuple[str, ...] = field(default=())

    @property
    def trusted(self) -> bool:
        return self.text is not None and self.confidence >= TRUST_THRESHOLD


#: Blue ballpoint / gel ink: hue 190–260° with some saturation.
BLUE_HUE = (190.0, 260.0)
MIN_SATURATION = 0.25
#: Contrast (paper minus darkest ink, grey levels) below which a slot counts as empty.
MIN_CONTRAST = 70
MAX_DIGITS = 4
#: A first/last glyph whose stroke is thinner than this × the other glyphs' is print.
THIN_EDGE = 0.65
#: A candidate at least this much wider than tall is also tried as two (or three) glyphs.
SPLIT_RATIO = 0.9


@dataclass
class _Group:
    """A digit candidate: a set of connected components (labels in the region's label map)."""

    ids: list[int]
    x0: int
    y0: int
    x1: int
    y1: int
    area: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0


def _hue_sat(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    return hsv[..., 0] * (360.0 / 256.0), hsv[..., 1] / 255.0, hsv[..., 2] / 255.0


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: twice the mean distance-transform value on its
    ridge (pixels not smaller than any neighbour's distance)."""
    m = mask.astype(np.uint8)
    if m.sum() == 0:
        return 0.0
    d = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ridge = (d >= cv2.dilate(d, np.ones((3, 3), np.uint8)) - 1e-6) & (m > 0)
    v = d[ridge]
    return float(2 * v.mean()) if v.size else 0.0


def read_slot(image: np.ndarray, box: Box, model_path: str | Path | None = None) -> SlotReading:
    """Read the handwritten digits in ``box`` (x0, y0, x1, y1 in page pixels) of a page image
    (H×W grey or H×W×3 RGB uint8, white paper). The box is the gap between the printed words
    (e.g. from the end of "Số:" to the start of "/TB-UBND"), the full line height plus a margin.

    1. Ink: pixels darker than the paper by at least 45 % of the slot's contrast, plus
       saturated blue pixels; saturated red pixels (seal) are not ink unless very dark. No ink
       (contrast < MIN_CONTRAST) → text None. ``ink`` is "blue" when ≥ 35 % of the ink pixels
       (those dark enough to have a reliable hue) are blue-hued and saturated, "black" when
       most are unsaturated, else "other".
    2. Printed rules (thin horizontal runs longer than 0.8 × box height) are removed.
    3. Connected components are taken on the box plus a margin: a component with less than
       half its ink inside the box belongs to a neighbour and is dropped; when such a
       neighbour still has a digit-sized part inside the box (the digit may touch the next
       printed word) the reading is marked ``overlap`` and its confidence halved.
    4. Specks (area < (0.1 h)², h the tallest component) are dropped; components that overlap
       horizontally (≥ 40 % of the narrower) and are vertically close are merged (broken
       strokes, the bar of a 5 or a 7; two glyphs both ≥ 0.75 h tall only when they overlap
       by ≥ 70 %: slanted neighbours); what is then shorter than 0.4 h is dropped (dots,
       dashes, colons, dot leaders).
    5. A candidate at least SPLIT_RATIO × its height wide (touching digits) is also tried cut
       in two (three when ≥ 1.6) along slanted lines through the emptiest sheared columns
       (:func:`_cut_variants`); the hypothesis whose product of "best digit" probabilities is
       highest wins (a cut must pay for itself: a part that is no digit scores low). The
       reading's confidence is multiplied by the agreement: the share of all hypotheses'
       scores that read the same digits as the winner (two cuts that read "06" and "66"
       equally well leave about half).
    6. Each candidate is classified. A first or last candidate whose stroke is thinner than
       THIN_EDGE × the other candidates' (a printed "/" or letter stem next to a pen's digits,
       when the box is a little too wide) is dropped and the confidence halved. A first or
       last candidate touching the box's left/right edge that the model says is not a digit
       is taken as a sliver of the printed neighbour and dropped, the confidence times its
       "not a digit" probability. Any other non-digit → text None. More than MAX_DIGITS
       candidates → text None.

    ``handwritten`` is True when the ink is blue; otherwise when the digits' shapes are
    irregular the way a hand is and type is not: their heights differ by more than 8 % or
    their bottoms by more than 8 % of the height (two or more digits), or their stroke width
    differs from that of the printed text just left and right of the box by more than 35 %
    (thicker pen, or a thin ballpoint next to bold type), or, with one digit and no printed
    reference, its stroke width varies along the stroke (coefficient of variation > 0.35).
    """
    img = np.asarray(image)
    H, W = img.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, min(x0, x1)), min(W, max(x0, x1))
    y0, y1 = max(0, min(y0, y1)), min(H, max(y0, y1))
    obox = (x0, y0, x1, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return SlotReading(None, 0.0, [], "none", False, obox, ("empty box",))
    bh = y1 - y0
    m = max(4, bh // 2)
    ex0, ey0, ex1, ey1 = max(0, x0 - m), max(0, y0 - m // 2), min(W, x1 + m), min(H, y1 + m // 2)
    region = img[ey0:ey1, ex0:ex1]
    rgb = region if (region.ndim == 3 and region.shape[2] >= 3) else None
    if rgb is not None:
        rgb = np.ascontiguousarray(rgb[..., :3]).astype(np.uint8)
    gray = to_gray(region)
    ix0, iy0, ix1, iy1 = x0 - ex0, y0 - ey0, x1 - ex0, y1 - ey0  # box inside the region
    inner = gray[iy0:iy1, ix0:ix1]
    paper = float(np.percentile(gray, 90))
    darkest = float(np.percentile(inner, 0.5))
    contrast = paper - darkest
    notes: list[str] = []

    # 1. ink mask
    ink = gray.astype(np.float32) < paper - 0.45 * max(contrast, MIN_CONTRAST)
    blue_px = np.zeros_like(ink)
    colour = "black"
    if rgb is not None:
        hue, sat, val = _hue_sat(rgb)
        coloured = (sat >= MIN_SATURATION) & (val < 0.95 * paper / 255.0 + 0.05)
        blue_px = coloured & (hue >= BLUE_HUE[0]) & (hue <= BLUE_HUE[1])
        red_px = coloured & ((hue <= 25) | (hue >= 300))
        ink = (ink & ~(red_px & (gray > 60))) | (blue_px & (gray < paper - 40))
    if contrast < MIN_CONTRAST or not ink[iy0:iy1, ix0:ix1].any():
        return SlotReading(None, 0.0, [], "none", False, obox, ("no ink",))

    # 2. printed rules: long thin horizontal runs
    rule_len = max(8, int(0.8 * bh))
    rules: np.ndarray = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, rule_len), np.uint8))
    if rules.any():
        thick = cv2.morphologyEx(rules, cv2.MORPH_OPEN, np.ones((max(3, bh // 8), 1), np.uint8))
        rules = rules & (1 - thick)  # a solid blot is not a rule
        ink = ink & ~rules.astype(bool)

    # 3. components and ownership
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    inside = np.zeros(labels.shape, bool)
    inside[iy0:iy1, ix0:ix1] = True
    area_in = np.bincount(labels[inside].ravel(), minlength=n)
    comps: list[int] = []
    overlap = False
    for k in range(1, n):
        a = stats[k, cv2.CC_STAT_AREA]
        if area_in[k] == 0:
            continue
        if area_in[k] * 2 >= a:
            comps.append(k)
        else:
            ys, xs = np.nonzero((labels == k) & inside)
            if ys.size and (ys.max() - ys.min() + 1) >= 0.3 * bh and area_in[k] >= (0.1 * bh) ** 2:
                overlap = True
    if not comps:
        return SlotReading(None, 0.0, [], "none", False, obox, ("no ink inside the box",))

    def bbox(k: int) -> tuple[int, int, int, int]:
        left, t, w, h = (int(v) for v in stats[k, :4])
        return left, t, left + w, t + h

    tallest = max(bbox(k)[3] - bbox(k)[1] for k in comps)
    comps = [k for k in comps if stats[k, cv2.CC_STAT_AREA] >= (0.1 * tallest) ** 2]
    if not comps:
        return SlotReading(None, 0.0, [], "none", False, obox, ("specks only",))
    groups = [_Group([k], *bbox(k), int(stats[k, cv2.CC_STAT_AREA])) for k in comps]

    # 4. merge horizontally overlapping, vertically close components
    merged = True
    while merged:
        merged = False
        groups.sort(key=lambda g: g.x0)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                ov = min(a.x1, b.x1) - max(a.x0, b.x0)
                gap = max(a.y0, b.y0) - min(a.y1, b.y1)
                both_tall = min(a.h, b.h) >= 0.75 * tallest  # two whole glyphs side by side, slanted
                if ov >= (0.7 if both_tall else 0.4) * min(a.w, b.w) and gap <= 0.25 * tallest:
                    groups[i] = _Group(a.ids + b.ids, min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1), a.area + b.area)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    top = max(g.h for g in groups)
    groups = [g for g in groups if g.h >= 0.4 * top]
    groups.sort(key=lambda g: g.x0)

    def ink_of(g: _Group, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Box]:
        """Soft ink of a candidate (its components only, or ``mask`` in its box), the mask
        cropped to its ink, and that box in region pixels."""
        if mask is None:
            mask = np.isin(labels[g.y0 : g.y1, g.x0 : g.x1], g.ids)
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            return np.zeros((1, 1), np.float32), mask, (g.x0, g.y0, g.x1, g.y1)
        by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        mask = mask[by0:by1, bx0:bx1]
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        gsub = gray[g.y0 + by0 : g.y0 + by1, g.x0 + bx0 : g.x0 + bx1].astype(np.float32)
        soft = np.clip((paper - gsub) / max(contrast, MIN_CONTRAST), 0, 1) * grown
        soft = np.maximum(soft, mask * 0.5)
        return soft.astype(np.float32), mask, (g.x0 + bx0, g.y0 + by0, g.x0 + bx1, g.y0 + by1)

    # 5. hypotheses for wide candidates: whole, or cut in two / three along slanted lines
    cands: list[tuple[np.ndarray, np.ndarray, Box]] = []
    agreement = 1.0
    for g in groups:
        ratio = g.w / max(1, g.h)
        whole = ink_of(g)
        if ratio < SPLIT_RATIO:
            cands.append(whole)
            continue
        gmask = np.isin(labels[g.y0 : g.y1, g.x0 : g.x1], g.ids)
        hyps: list[list[tuple[np.ndarray, np.ndarray, Box]]] = []
        if ratio < 1.6:
            hyps.append([whole])
        for parts in (2, 3):
            if parts == 3 and ratio < 1.6:
                continue
            for pieces in _cut_variants(gmask, parts):
                hyps.append([ink_of(g, pc) for pc in pieces])
        if not hyps:
            hyps.append([whole])
        flat = [h[0] for hyp in hyps for h in hyp]
        p_all = _proba_of_inks(flat, model_path)
        scores, readings, i = [], [], 0
        for hyp in hyps:
            p = p_all[i : i + len(hyp)]
            i += len(hyp)
            scores.append(float(np.prod(p[:, :REJECT].max(axis=1))))  # every cut must pay for itself
            readings.append("".join(str(int(k)) for k in p[:, :REJECT].argmax(axis=1)))
        k = int(np.argmax(scores))
        total = sum(scores)
        if total > 0:
            agree = sum(sc for sc, rd in zip(scores, readings, strict=True) if rd == readings[k]) / total
            agreement *= agree
            if agree < 0.999:
                notes.append(f"segmentation agreement {agree:.2f}")
        if len(hyps[k]) > 1:
            notes.append("split")
        cands.extend(hyps[k])

    # 6. classify
    probs = _proba_of_inks([c[0] for c in cands], model_path)
    digits: list[tuple[str | None, float, Box]] = []
    conf = (0.5 if overlap else 1.0) * agreement
    if overlap:
        notes.append("overlap")
    widths = [_stroke_width(c[1]) for c in cands]
    for idx, ((_soft, _mask, (bx0, by0, bx1, by1)), p) in enumerate(zip(cands, probs, strict=True)):
        label, prob = _label(p)
        page_box = (int(bx0 + ex0), int(by0 + ey0), int(bx1 + ex0), int(by1 + ey0))
        at_edge = bx0 <= ix0 + 1 or bx1 >= ix1 - 1
        outer = idx == 0 or idx == len(cands) - 1
        if outer and len(cands) > 1:
            others = float(np.median([w for j, w in enumerate(widths) if j != idx]))
            if widths[idx] < THIN_EDGE * others:  # a printed "/" or letter stem, not the pen's digits
                conf *= 0.5
                notes.append("thin outer glyph dropped")
                continue
        if label is None and at_edge and outer and len(cands) > 1:
            conf *= prob
            notes.append("edge sliver dropped")
            continue
        digits.append((label, prob, page_box))

    # ink colour
    inkmask = np.zeros_like(ink)
    for g in groups:
        inkmask[g.y0 : g.y1, g.x0 : g.x1] |= np.isin(labels[g.y0 : g.y1, g.x0 : g.x1], g.ids)
    if rgb is not None:
        reliable = inkmask & (gray > 40) & (gray < paper - 40)  # near-black pixels have no usable hue
        nrel = int(reliable.sum())
        if nrel >= 20:
            blue_frac = float((blue_px & reliable).sum()) / nrel
            grey_frac = float((sat[reliable] < MIN_SATURATION).mean())
            colour = "blue" if blue_frac >= 0.35 else ("black" if grey_frac >= 0.5 else "other")
    hand = _looks_handwritten(colour, [d[2] for d in digits], gray, ink, labels, groups, (ix0, iy0, ix1, iy1), (ex0, ey0))

    text: str | None = None
    if not digits:
        notes.append("only slivers")
    elif len(digits) > MAX_DIGITS:
        notes.append("too many glyphs")
    elif any(d[0] is None for d in digits):
        notes.append("not a digit")
    else:
        text = "".join(d[0] for d in digits)  # type: ignore[misc]
        for d in digits:
            conf *= d[1]
    return SlotReading(text, float(conf) if text is not None else 0.0, digits, colour, hand, obox, tuple(notes))


#: Slants (x shift per unit of height, rightward at the top positive) tried for the cuts.
CUT_SHEARS = (-0.15, 0.0, 0.15, 0.3, 0.45, 0.6)


def _cut_variants(mask: np.ndarray, parts: int, keep: int = 4) -> list[list[np.ndarray]]:
    """Ways to cut a candidate's mask into ``parts`` glyphs: for each slant in CUT_SHEARS the
    emptiest sheared column near each even division (±15 % of the width); the ``keep`` variants
    that cross the least ink, each piece without the specks the cut left (< 8 % of its area).
    Cuts that leave a piece narrower than 0.18 × the height, shorter than 0.6 × the height or
    with less than 15 % of the ink are not tried: a digit is as tall as its neighbours."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return []
    ymid = (h - 1) / 2.0
    grid_x = np.arange(w, dtype=np.float32)[None, :]
    grid_y = np.arange(h, dtype=np.float32)[:, None] - ymid
    out: list[tuple[float, float, list[np.ndarray]]] = []
    seen: set[tuple[int, ...]] = set()
    for s in CUT_SHEARS:
        xp = xs - s * (ys - ymid)
        off = float(xp.min())
        width = int(np.ceil(xp.max() - off)) + 1
        col: np.ndarray = np.bincount(np.floor(xp - off).astype(np.int64), minlength=width).astype(np.float32)
        col = np.convolve(col, np.ones(3) / 3, mode="same")
        cuts: list[int] = []
        cost = 0.0
        for p in range(1, parts):
            c = p * width / parts
            lo, hi = max(1, int(c - 0.15 * width)), min(width - 1, int(c + 0.15 * width))
            if hi <= lo:
                break
            k = lo + int(np.argmin(col[lo:hi]))
            cuts.append(k)
            cost += float(col[k])
        if len(cuts) != parts - 1:
            continue
        edges = [0, *cuts, width]
        if min(b - a for a, b in zip(edges, edges[1:], strict=False)) < 0.18 * h:
            continue
        xpf = grid_x - s * grid_y - off
        pieces = []
        for i in range(parts):
            lo_e = -np.inf if i == 0 else edges[i]
            hi_e = np.inf if i == parts - 1 else edges[i + 1]
            pc = mask & (xpf >= lo_e) & (xpf < hi_e)
            n, lab, st, _ = cv2.connectedComponentsWithStats(pc.astype(np.uint8), connectivity=8)
            if n > 2:
                big = st[1:, cv2.CC_STAT_AREA].max()
                keep_ids = np.zeros(n, bool)
                keep_ids[1:] = st[1:, cv2.CC_STAT_AREA] >= 0.08 * big
                pc = keep_ids[lab]
            pieces.append(pc)
        key = tuple(int(pc.sum()) for pc in pieces)
        if key in seen or any(not pc.any() for pc in pieces):
            continue
        total = float(mask.sum())
        rows = [np.nonzero(pc.any(axis=1))[0] for pc in pieces]
        if any(r[-1] - r[0] + 1 < 0.6 * h for r in rows) or min(key) < 0.15 * total:
            continue  # a sliver (the tail of a 5, a bar), not a digit's worth of ink
        seen.add(key)
        out.append((cost / max(1.0, float(col.max())), abs(s), pieces))
    out.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in out[:keep]]


def _looks_handwritten(colour, boxes, gray, ink, labels, groups, inner, origin) -> bool:
    """See :func:`read_slot`: blue ink, or shapes irregular the way a hand is."""
    if colour == "blue":
        return True
    if not boxes:
        return False
    ox, oy = origin
    hs = np.array([b[3] - b[1] for b in boxes], np.float32)
    bottoms = np.array([b[3] for b in boxes], np.float32)
    if len(boxes) >= 2:
        if (hs.max() - hs.min()) > 0.08 * hs.max() or (bottoms.max() - bottoms.min()) > 0.08 * hs.max():
            return True
    digit_mask = np.zeros(ink.shape, bool)
    for b in boxes:
        digit_mask[b[1] - oy : b[3] - oy, b[0] - ox : b[2] - ox] = ink[b[1] - oy : b[3] - oy, b[0] - ox : b[2] - ox]
    sw_digit = _stroke_width(digit_mask)
    ix0, iy0, ix1, iy1 = inner
    # printed reference: ink left and right of the box on the same rows
    ref = np.zeros(ink.shape, bool)
    ref[iy0:iy1, :ix0] = ink[iy0:iy1, :ix0]
    ref[iy0:iy1, ix1:] = ink[iy0:iy1, ix1:]
    if ref.sum() >= 0.02 * (iy1 - iy0) ** 2:
        sw_print = _stroke_width(ref)
        if sw_print > 0 and abs(sw_digit / sw_print - 1) > 0.35:
            return True
        return False
    # one glyph, nothing printed beside it: variation of the stroke width along the stroke
    d = cv2.distanceTransform(np.pad(digit_mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ridge = (d >= cv2.dilate(d, np.ones((3, 3), np.uint8)) - 1e-6) & digit_mask
    v = d[ridge]
    return bool(v.size > 5 and v.std() / max(v.mean(), 1e-6) > 0.35)
