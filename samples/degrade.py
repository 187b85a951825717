"""Scanner / office-copy degradations for rendered pages.

``degrade(img, level, rng, angle=None) -> (img, meta)``:

* ``clean`` — untouched (rotated only when ``angle`` is given).
* ``office`` — slight skew (±3°), grayish/yellowish paper, mild blur, light noise, JPEG q 70–85.
* ``heavy`` — skew up to ±15°, yellowed paper, uneven illumination, faded ink, blur, stronger noise,
  JPEG q 30–50; optionally a dark scanner border and a red "ĐẾN" receipt stamp (dấu đến).

``meta["angle"]`` is the rotation applied to the content in degrees, counter-clockwise positive
(PIL's ``Image.rotate`` convention); deskewing means rotating by ``-angle``. The canvas is expanded
so nothing is cropped; the new corners are filled with the paper colour (or dark, for a border).
Deterministic for a given ``rng`` state (``int`` seed, ``random.Random`` or ``numpy.random.Generator``).
"""

from __future__ import annotations

import io
import math
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LEVELS = ("clean", "office", "heavy")


def _np_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.default_rng(rng.getrandbits(64))
    return np.random.default_rng(rng)


def rotate(img: np.ndarray, angle: float, fill: tuple[int, int, int]) -> np.ndarray:
    """Rotate an HxWx3 uint8 array counter-clockwise by ``angle`` degrees, expanding the canvas."""
    if abs(angle) < 1e-6:
        return img
    h, w = img.shape[:2]
    a = math.radians(angle)
    nw = int(math.ceil(abs(w * math.cos(a)) + abs(h * math.sin(a))))
    nh = int(math.ceil(abs(w * math.sin(a)) + abs(h * math.cos(a))))
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, M, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(int(c) for c in fill))


def _jpeg(arr: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(q))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _stamp(arr: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """A rectangular receipt stamp ("ĐẾN / Số: … / Ngày: …") in red or violet ink, top-left area."""
    h, w = arr.shape[:2]
    s = w / 2480.0  # scale vs 300 dpi A4
    sw, sh = int(560 * s), int(260 * s)
    tile = Image.new("L", (sw, sh), 0)
    d = ImageDraw.Draw(tile)
    d.rectangle([2, 2, sw - 3, sh - 3], outline=255, width=max(2, int(6 * s)))
    try:
        f_big = ImageFont.truetype("/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", max(8, int(70 * s)))
        f_sm = ImageFont.truetype("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf", max(8, int(42 * s)))
    except OSError:  # pragma: no cover
        f_big = f_sm = ImageFont.load_default()
    d.text((sw * 0.06, sh * 0.08), "ĐẾN", font=f_big, fill=255)
    d.text((sw * 0.06, sh * 0.45), f"Số: {int(g.integers(100, 9999))}", font=f_sm, fill=255)
    d.text((sw * 0.06, sh * 0.70), f"Ngày: {int(g.integers(1, 29))}/{int(g.integers(1, 13))}", font=f_sm, fill=255)
    tile = tile.rotate(float(g.uniform(-8, 8)), expand=True, resample=Image.BICUBIC)
    cov = np.asarray(tile, dtype=np.float32) / 255.0 * g.uniform(0.55, 0.85)
    cov *= g.uniform(0.6, 1.0, cov.shape).astype(np.float32)
    ink = np.array([(200, 40, 45), (110, 50, 150)][int(g.integers(0, 2))], dtype=np.float32)
    x0 = int(g.uniform(0.05, 0.25) * w)
    y0 = int(g.uniform(0.17, 0.26) * h)
    th, tw = cov.shape
    th, tw = min(th, h - y0), min(tw, w - x0)
    if th <= 0 or tw <= 0:
        return arr
    region = arr[y0:y0 + th, x0:x0 + tw].astype(np.float32)
    c = cov[:th, :tw, None]
    arr = arr.copy()
    arr[y0:y0 + th, x0:x0 + tw] = (region * (1 - c) + region * ink / 255.0 * c).clip(0, 255).astype(np.uint8)
    return arr


def degrade(img: Image.Image, level: str = "office", rng=0, *, angle: float | None = None) -> tuple[Image.Image, dict]:
    """Degrade one page image; returns (RGB image, meta with the applied parameters and ``angle``)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    g = _np_rng(rng)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    meta: dict = {"level": level}
    if level == "clean":
        a = 0.0 if angle is None else float(angle)
        out = rotate(arr, a, (255, 255, 255))
        meta.update(angle=a)
        return Image.fromarray(out), meta

    heavy = level == "heavy"
    h, w = arr.shape[:2]
    scale = w / 2480.0  # parameters are tuned for 300 dpi A4 pages
    a = float(angle) if angle is not None else float(g.uniform(-15, 15) if heavy else g.uniform(-3, 3))
    if heavy:
        paper = np.array([g.uniform(228, 242), g.uniform(218, 232), g.uniform(180, 205)])
    else:
        tone = g.uniform(236, 252)
        paper = np.array([tone, tone - g.uniform(0, 3), tone - g.uniform(0, 10)])
    ink_strength = g.uniform(0.72, 0.9) if heavy else g.uniform(0.88, 1.0)
    f = arr.astype(np.float32) / 255.0
    f = 1.0 - (1.0 - f) * ink_strength  # faded toner
    f = f * (paper / 255.0)[None, None, :]
    illum = False
    if heavy or g.random() < 0.3:
        illum = True
        yy, xx = np.mgrid[0:h:16, 0:w:16].astype(np.float32)
        cx, cy = g.uniform(0, w), g.uniform(0, h)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / math.hypot(w, h)
        depth = g.uniform(0.18, 0.35) if heavy else g.uniform(0.04, 0.1)
        small = (1.0 - depth * dist).astype(np.float32)
        gain = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        f *= gain[:, :, None]
    arr = (f * 255.0).clip(0, 255).astype(np.uint8)
    stamp = bool(heavy and g.random() < 0.5)
    if stamp:
        arr = _stamp(arr, g)
    border = bool(heavy and g.random() < 0.5)
    fill = tuple(int(c) for c in (paper * (0.97 if heavy else 1.0)))
    arr = rotate(arr, a, (25, 25, 25) if border else fill)
    if border:
        # the scanner lid / platen edge: dark bands of uneven width on a couple of sides
        bh, bw = arr.shape[:2]
        for side in g.choice(4, size=int(g.integers(1, 3)), replace=False):
            t = int(g.uniform(0.01, 0.035) * min(bh, bw))
            shade = int(g.uniform(10, 45))
            if side == 0:
                arr[:t] = shade
            elif side == 1:
                arr[-t:] = shade
            elif side == 2:
                arr[:, :t] = shade
            else:
                arr[:, -t:] = shade
    sigma = (g.uniform(0.8, 1.5) if heavy else g.uniform(0.3, 0.7)) * max(scale, 0.3)
    arr = cv2.GaussianBlur(arr, (0, 0), sigmaX=sigma)
    noise_sigma = g.uniform(8, 15) if heavy else g.uniform(2, 5)
    noise = g.normal(0.0, noise_sigma, size=arr.shape[:2]).astype(np.float32)
    arr = (arr.astype(np.float32) + noise[:, :, None]).clip(0, 255).astype(np.uint8)
    q = int(g.integers(30, 51) if heavy else g.integers(70, 86))
    arr = _jpeg(arr, q)
    meta.update(angle=a, paper=[int(c) for c in paper], ink_strength=round(float(ink_strength), 3),
                blur_sigma=round(float(sigma), 3), noise_sigma=round(float(noise_sigma), 2), jpeg_quality=q,
                illumination=illum, border=border, stamp=stamp)
    return Image.fromarray(arr), meta
