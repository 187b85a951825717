"""Clean-up stage: the grey OCR copy of a deskewed page.

Steps, each cheap (the whole stage stays well under half a second for an A4 page at 300 dpi):

1. resolution normalised to ``ImageSettings.target_dpi`` — scans arrive at 100–300 dpi and
   Tesseract reads best at ~300 dpi. ``color`` is resampled with ``ocr_image`` so that word
   boxes (pixels of ``ocr_image``) stay valid on the stored colour page;
2. red seals and stamps (con dấu đỏ) suppressed: strongly red or magenta pixels become
   background in the OCR copy only — ``color`` keeps the seal, it is part of the record;
3. salt-and-pepper noise removed with a 3×3 median, only when measured;
4. uneven illumination and low contrast normalised by dividing by the background (a
   morphological close of a downscaled copy) and stretching the result;
5. on a page with no colour to tell a seal by (grey, bitonal: a typewriter page, a fax), the
   round seal found by its ring and blanked (:func:`round_seal`).

The OCR copy stays grayscale: Tesseract's LSTM engine reads clean grey better than a blind
binarisation.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from pipeline.runtime.config import ImageSettings, LimitSettings
from pipeline.stages.models import ProcessedPage

DPI_TOLERANCE = 0.1  # no resampling within ±10 % of the target
SEAL_MIN_CHROMA = 40
SEAL_MIN_VALUE = 90
SEAL_MIN_AREA_300DPI = 40  # pixels: smaller red components (tinted specks on text) are left alone
NOISE_LEVEL = 128  # grey level separating dark from light for the noise measure
NOISE_MIN_FRACTION = 0.0003  # isolated-pixel fraction above which the page is called noisy
BACKGROUND_SCALE = 8  # downscale factor of the background estimate
STRETCH_MAX_LOW = 100.0  # contrast stretch: grey level mapped to black is at most this
#: pixels a page is never enlarged beyond (``LimitSettings.max_working_pixels``; clean-up is not
#: handed the run's limits, so the default applies)
MAX_WORKING_PIXELS = LimitSettings().max_working_pixels
HUE_OF_CANDIDATES_BELOW = 20  # seal_mask: hue of the candidate pixels alone while they are under 1/20 of the page


def resample(page: ProcessedPage, target_dpi: int, max_pixels: int | None = None) -> ProcessedPage:
    """Resample ``color`` and ``ocr_image`` together to ``target_dpi``, never enlarging a page
    beyond ``max_pixels`` (default: :data:`MAX_WORKING_PIXELS`): a page too large for its
    target resolution is enlarged only up to that many pixels, or left as it is. The load stage
    decides every page's working resolution within the same limit; this is the backstop that
    keeps a page claiming a low resolution (a 72 dpi poster) from growing to gigabytes."""
    if not page.dpi or target_dpi <= 0 or abs(page.dpi - target_dpi) <= DPI_TOLERANCE * target_dpi:
        return page
    limit = MAX_WORKING_PIXELS if max_pixels is None else max_pixels
    h, w = page.color.shape[:2]
    if target_dpi > page.dpi and w * h * (target_dpi / page.dpi) ** 2 > limit:
        target_dpi = int(page.dpi * (limit / (w * h)) ** 0.5)  # the largest that fits
        if target_dpi - page.dpi <= DPI_TOLERANCE * page.dpi:
            return replace(page, flags=[*page.flags, f"not_resampled:{page.dpi}dpi_above_{limit // 1_000_000}MP"])
    factor = target_dpi / page.dpi
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    color = cv2.resize(page.color, size, interpolation=interpolation)
    ocr = cv2.resize(page.ocr_image, size, interpolation=interpolation)
    return replace(page, color=color, ocr_image=ocr, dpi=target_dpi, flags=[*page.flags, f"resampled:{page.dpi}->{target_dpi}"])


def seal_mask(rgb: np.ndarray, min_chroma: int | None = None) -> np.ndarray:
    """Boolean mask of red/magenta seal ink (con dấu, dấu đến): hue near red or magenta, a
    chroma (max − min channel) of at least ``min_chroma`` (default :data:`SEAL_MIN_CHROMA`)
    and not dark.

    Chroma rather than HSV saturation: the dark, slightly tinted pixels of black text on
    yellowed paper and the colour fringes JPEG leaves on them have a high saturation but a
    small chroma, and must not be taken for seal ink (painting them white breaks the letters).
    """
    r, g, b = cv2.split(rgb)
    high = cv2.max(cv2.max(r, g), b)
    chroma = cv2.subtract(high, cv2.min(cv2.min(r, g), b))
    candidate = (chroma >= (SEAL_MIN_CHROMA if min_chroma is None else min_chroma)) & (high >= SEAL_MIN_VALUE)
    count = int(np.count_nonzero(candidate))
    if count == 0:
        return candidate
    if count > candidate.size // HUE_OF_CANDIDATES_BELOW:  # tinted paper: convert the whole page
        return candidate & _seal_hue(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 0])
    # a seal on white paper is a few per cent of the page: the hue of those pixels only, the
    # same values as converting the whole page at a fraction of the cost
    where = np.flatnonzero(candidate)
    hue = cv2.cvtColor(rgb.reshape(-1, 3)[where].reshape(-1, 1, 3), cv2.COLOR_RGB2HSV)[:, 0, 0]
    mask = np.zeros(candidate.shape, dtype=bool)
    mask.ravel()[where[_seal_hue(hue)]] = True
    return mask


def _seal_hue(hue: np.ndarray) -> np.ndarray:
    """Red or magenta on OpenCV's hue scale (0–179): red wraps around 0, 140+ is magenta–red."""
    return (hue <= 12) | (hue >= 140)


def suppress_seals(gray: np.ndarray, rgb: np.ndarray, min_area: int = 40) -> tuple[np.ndarray, bool]:
    """Grey image with seal pixels (and their two-pixel fringe) set to white; and whether a
    seal was found. Run on the illumination-normalised copy, where white is the paper: done
    before, the white seal would brighten the background estimate around it and leave a dark
    halo that Tesseract reads as characters."""
    mask: np.ndarray = seal_mask(rgb).astype(np.uint8)  # widened: OpenCV's stubs type results as any Mat
    if mask.mean() < 1e-4:
        return gray, False
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # uneven ink: join the dots
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, np.uint8)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area  # lone tinted specks on text are not a seal
    mask = keep[labels]
    if mask.mean() < 1e-4:
        return gray, False
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)
    out = gray.copy()
    out[mask] = 255
    return out, True


def noise_fraction(gray: np.ndarray) -> float:
    """Fraction of isolated pixels (salt-and-pepper): dark with no dark 8-neighbour or light
    with no light one, measured on a centre crop. Clean text scores ~0: strokes, diacritics
    and dots are several pixels wide at scanning resolutions."""
    h, w = gray.shape
    crop = gray[h // 4 : h - h // 4, w // 4 : w - w // 4]
    if crop.size == 0:
        return 0.0
    dark = (crop < NOISE_LEVEL).astype(np.float32)
    neighbours = cv2.boxFilter(dark, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REPLICATE) - dark
    isolated = ((dark == 1) & (neighbours == 0)) | ((dark == 0) & (neighbours == 8))
    return float(np.count_nonzero(isolated)) / crop.size


def denoise(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """3×3 median when the page is measurably noisy; the image and whether it was applied."""
    if noise_fraction(gray) < NOISE_MIN_FRACTION:
        return gray, False
    return cv2.medianBlur(gray, 3), True


def normalise_illumination(gray: np.ndarray, dpi: int) -> np.ndarray:
    """Divide by the paper background and stretch contrast (ink dark, paper white)."""
    h, w = gray.shape
    small = cv2.resize(gray, (max(1, w // BACKGROUND_SCALE), max(1, h // BACKGROUND_SCALE)), interpolation=cv2.INTER_AREA)
    k = max(3, int(round(dpi / 25 / BACKGROUND_SCALE * 4)) | 1)  # ~4 mm: wider than any stroke
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    background = cv2.GaussianBlur(background, (0, 0), k)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    norm = cv2.divide(gray, np.maximum(background, 1), scale=255)
    low = min(float(np.percentile(norm[:: 4, :: 4], 0.5)), STRETCH_MAX_LOW)
    if low >= 250 or low <= 0:
        return norm
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * 255.0 / (255.0 - low), 0, 255).astype(np.uint8)
    return cv2.LUT(norm, lut)


#: speckle (fax): a component of ink at most this wide (mm, as a square's side) is removed when
#: no larger ink lies within :data:`SPECKLE_ISOLATION_MM`; one under :data:`SPECKLE_TINY_MM` always.
#: A full stop or the dot of a dấu nặng at 10 pt is ~0.35 mm across and sits next to its letter.
SPECKLE_MAX_MM = 0.5
SPECKLE_TINY_MM = 0.18
SPECKLE_ISOLATION_MM = 0.7
#: Gaussian smoothing (pixels at 200 dpi) of a bitonal page before it is resampled, so that glyph
#: edges are grey rather than jagged: 0.6 read best on the training fax pages of
#: benchmarks/ocr_quality.py (--split train: 2.13 % character error; none 2.26 %, 1.0 2.47 %)
BITONAL_SMOOTH_SIGMA = 0.6
#: ... but a component at least this wide (mm) and :data:`SPECKLE_DASH_MIN_ELONGATION` times as
#: wide as it is tall is a dash, never speckle, however small its area: the "-" of the "Nơi nhận"
#: list (Decree 30/2020/NĐ-CP, 11 pt: ~1 mm × 0.25 mm) is 8 × 2 pixels on a 200 × 100 dpi fax,
#: less than speckle's area, and isolated by a word space; speckle (a fax line's noise) is a dot
#: or a short vertical run, never a horizontal bar 0.7 mm long
SPECKLE_DASH_MIN_MM = 0.7
SPECKLE_DASH_MIN_ELONGATION = 2.0
#: ... and the marks of a colon or a semicolon (:func:`colon_dots`) are no speckle: the upper at
#: most this far above the lower (mm; 0.8–1.2 mm at 11–14 pt), which is at most this wide (a
#: comma's square), the pair clear of letters above and below by this much
COLON_GAP_MM = 1.5
COLON_MARK_MAX_MM = 1.0
COLON_CLEAR_MM = 1.0
COLON_AFTER_MM = 1.5  # a colon follows its word closely, wider after a digit ("tháng 11;")


def remove_speckle(ink: np.ndarray, dpi: int) -> tuple[np.ndarray, int]:
    """Bitonal ink mask (True = ink) without speckle, decided by connected-component size — not
    by blurring, which on a bitonal page thins every glyph's strokes as much as it removes dots:
    a component smaller than :data:`SPECKLE_TINY_MM` (squared) goes; one smaller than
    :data:`SPECKLE_MAX_MM` goes when it is isolated, farther than :data:`SPECKLE_ISOLATION_MM`
    from any larger component (diacritics, full stops and the dots of i sit next to their letter).
    A horizontal bar (:data:`SPECKLE_DASH_MIN_MM`, :data:`SPECKLE_DASH_MIN_ELONGATION`) is a dash
    and stays, whatever its area. Returns the mask and the number of components removed."""
    px = dpi / 25.4
    tiny, small = max(2, round((SPECKLE_TINY_MM * px) ** 2)), max(3, round((SPECKLE_MAX_MM * px) ** 2))
    mask = ink.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return ink, 0
    area = stats[:, cv2.CC_STAT_AREA]
    area[0] = 0
    big = (area > small).astype(np.uint8)
    big[0] = 0
    r = max(1, round(SPECKLE_ISOLATION_MM * px))
    near = cv2.dilate(big[labels], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    touched = np.zeros(n, bool)
    touched[np.unique(labels[near.astype(bool) & (labels > 0)])] = True
    width, height = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    dash = (width >= SPECKLE_DASH_MIN_MM * px) & (width >= SPECKLE_DASH_MIN_ELONGATION * height)
    drop = (area > 0) & ~dash & ((area <= tiny) | ((area <= small) & ~touched))
    drop[0] = False
    if drop.any():
        mark = (area > 0) & (area <= max(small + 1, round((COLON_MARK_MAX_MM * px) ** 2)))
        drop &= ~colon_dots(stats, drop, mark, area > small, px)
    if not drop.any():
        return ink, 0
    return ink & ~drop[labels], int(np.count_nonzero(drop))


def colon_dots(stats: np.ndarray, dropped: np.ndarray, mark: np.ndarray, big: np.ndarray, px: float) -> np.ndarray:
    """The marks of colons and semicolons among the ``dropped`` components: an upper dot above a
    lower ``mark`` (a dot, or a semicolon's comma: :data:`COLON_MARK_MAX_MM`), overlapping it
    horizontally at most :data:`COLON_GAP_MM` above it; the pair right of a letter (a ``big``
    component ending at most :data:`COLON_AFTER_MM` to its left, level with it) and neither over
    nor under one (no ``big`` component overlaps it horizontally within :data:`COLON_CLEAR_MM`).
    A semicolon's dot on a fax is as small as a speck — one or two scan lines at 100 dpi — and
    went with the speckle ("trấn;" read "trấn,", "Lưu:" read "Lưu.": benchmarks/ocr_quality.py,
    fax --split train); a speck stacked over another right after a letter and clear of any
    letter above and below is rare."""
    out = np.zeros(len(stats), bool)
    uppers, lowers = np.flatnonzero(dropped), np.flatnonzero(mark)
    if not len(uppers) or not len(lowers):
        return out
    left, top = stats[:, cv2.CC_STAT_LEFT].astype(np.int64), stats[:, cv2.CC_STAT_TOP].astype(np.int64)
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    letters = np.flatnonzero(big)
    gap, clear, after = COLON_GAP_MM * px, COLON_CLEAR_MM * px, COLON_AFTER_MM * px
    for u in uppers:
        below = lowers[(left[lowers] < right[u]) & (right[lowers] > left[u])
                       & (top[lowers] - bottom[u] > 0) & (top[lowers] - bottom[u] <= gap)]  # fmt: skip
        for low in below:
            others = letters[letters != low]
            x0, x1 = min(left[u], left[low]), max(right[u], right[low])
            y0, y1 = top[u], bottom[low]
            over = (left[others] < x1) & (right[others] > x0) & (top[others] < y1 + clear) & (bottom[others] > y0 - clear)
            beside = (right[others] <= x0) & (right[others] >= x0 - after) & (top[others] < y1) & (bottom[others] > y0)
            if beside.any() and not over.any():
                out[u] = out[low] = True
                break
    return out


def clean_bitonal(page: ProcessedPage, settings: ImageSettings, max_pixels: int | None, flags: list[str]) -> ProcessedPage:
    """Clean-up of a bitonal page (a fax, a bitonal TIFF): no median (it erodes thin strokes of a
    bitonal glyph), no illumination (the paper is white already): speckle removed by component
    size (:func:`remove_speckle`; lost scan lines were restored as the page was loaded:
    :func:`pipeline.stages.load.restore_lost_scan_lines`), then the page smoothed a little
    (:data:`BITONAL_SMOOTH_SIGMA`) and resampled to ``target_dpi`` with a cubic kernel, which
    gives the glyph edges grey levels Tesseract reads better than jagged black and white
    (benchmarks/ocr_quality.py, fax)."""
    ink = page.ocr_image < 128
    if settings.denoise:
        ink, specks = remove_speckle(ink, page.dpi)
        if specks:
            flags.append(f"despeckled:{specks}")
    if settings.suppress_seals:
        seal = round_seal(np.where(ink, 0, 255).astype(np.uint8), page.dpi)
        if seal is not None:
            ink = ink & ~round_seal_mask(ink.shape, seal, page.dpi)
            flags.append("round_seal_blanked")
    gray: np.ndarray = np.where(ink, 0, 255).astype(np.uint8)  # widened: GaussianBlur returns any Mat
    if BITONAL_SMOOTH_SIGMA > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), BITONAL_SMOOTH_SIGMA * page.dpi / 200)
    page = resample(replace(page, ocr_image=gray, flags=flags), settings.target_dpi, max_pixels)
    return replace(page, ocr_image=np.ascontiguousarray(page.ocr_image))


def cleanup_page(page: ProcessedPage, settings: ImageSettings, max_pixels: int | None = None) -> ProcessedPage:
    """The cleaned grey OCR copy of a deskewed page (``color`` only resampled, never altered);
    ``max_pixels``: the run's working-pixel limit (``LimitSettings.max_working_pixels``).

    The clean-up follows the capture :func:`pipeline.stages.deskew.deskew_page` recorded: a fax or
    bitonal page gets :func:`clean_bitonal`; a photo, a photocopy and a scan the grey clean-up
    below (a photo's sheet is rectified already; dividing by the background flattens its light
    and shadows)."""
    from pipeline.stages.deskew import (
        capture_of,  # deferred: import cycle (pipeline.stages.deskew imports pipeline.stages.cleanup)
    )

    if capture_of(page) in ("fax", "bitonal"):
        return clean_bitonal(page, settings, max_pixels, list(page.flags))
    page = resample(page, settings.target_dpi, max_pixels)
    gray = page.ocr_image
    flags = list(page.flags)
    if settings.denoise:
        gray, applied = denoise(gray)
        if applied:
            flags.append("denoised")
    gray = normalise_illumination(gray, page.dpi)
    if settings.suppress_seals and page.color.ndim == 3:  # a grey page carries no colour to tell a seal by
        gray, found = suppress_seals(gray, page.color, max(4, round(SEAL_MIN_AREA_300DPI * (page.dpi / 300) ** 2)))
        if found:
            flags.append("seal_suppressed")
    if settings.suppress_seals and "seal_suppressed" not in flags:  # no colour to tell a seal by: its ring
        seal = round_seal(gray, page.dpi)
        if seal is not None:
            gray = gray.copy()
            gray[round_seal_mask(gray.shape, seal, page.dpi)] = 255
            flags.append("round_seal_blanked")
    return replace(page, ocr_image=np.ascontiguousarray(gray), flags=flags)


#: round seal (con dấu) on a page without colour to tell it by: a ring this many mm in radius —
#: an agency's round seal is 30–42 mm across (Decree 99/2016/NĐ-CP, Circular 29/2016/TT-BCA model
#: seals; 31 mm in samples.render) — whose circumference is inked on at least
#: :data:`RING_MIN_INK` of its length (the signature crosses it, uneven ink breaks it)
RING_RADIUS_MM = (13.0, 23.0)
RING_MIN_INK = 0.85
RING_SEARCH_DPI = 75  # the ring is looked for on a copy this coarse (a 0.9 mm ring is 2.7 px)
RING_INK_BELOW_PAPER = 25  # grey levels under the paper's (the median) that count as ink on the ring
RING_MARGIN_MM = 1.0  # blanked beyond the ring's centre line: the ring's half width, its fringe and the search's error


def ring_ink_level(gray: np.ndarray) -> int:
    """Grey level below which a pixel is ink, for the seal: :data:`RING_INK_BELOW_PAPER` under
    the paper's (the median grey of the page)."""
    return int(np.median(gray[::4, ::4])) - RING_INK_BELOW_PAPER


def round_seal(gray: np.ndarray, dpi: int) -> tuple[float, float, float] | None:
    """The round seal of a page whose ink has no colour (a grey typewriter page, a photocopy, a
    fax): ``(x, y, radius)`` in pixels, or ``None``.

    On a colour page the seal is found by its red (:func:`suppress_seals`); without colour it is
    grey or black like the text, and Tesseract's layout analysis (one column, ``psm 4``) joins
    its ring to the lines beside it — the "Nơi nhận" list reads "1U? VF¿" — and loses the
    signer's name under it (benchmarks/ocr_quality.py, typewriter and fax --split train). Found
    by its shape: Hough circles of :data:`RING_RADIUS_MM` on a :data:`RING_SEARCH_DPI` copy, kept
    when the circumference is ink on :data:`RING_MIN_INK` of its length (no line of text is)."""
    if not dpi:
        return None
    scale = RING_SEARCH_DPI / dpi
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    s = scale if scale < 1 else 1.0
    px = RING_SEARCH_DPI / 25.4 if scale < 1 else dpi / 25.4
    rmin, rmax = int(RING_RADIUS_MM[0] * px), int(np.ceil(RING_RADIUS_MM[1] * px))
    blurred = cv2.GaussianBlur(small, (0, 0), 1.0)
    circles = cv2.HoughCircles(blurred, cv2.HOUGH_GRADIENT, dp=1, minDist=rmin, param1=100, param2=25,
                               minRadius=rmin, maxRadius=rmax)  # fmt: skip
    if circles is None:
        return None
    ink = small < ring_ink_level(small)
    angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    best = None
    for x, y, r in circles[0][:10]:
        for dr in (-1.5, -0.75, 0.0, 0.75, 1.5):
            xs = np.round(x + (r + dr) * np.cos(angles)).astype(int)
            ys = np.round(y + (r + dr) * np.sin(angles)).astype(int)
            inside = (xs >= 1) & (ys >= 1) & (xs < small.shape[1] - 1) & (ys < small.shape[0] - 1)
            if inside.mean() < 0.99:
                continue
            near = ink[ys, xs] | ink[ys - 1, xs] | ink[ys + 1, xs] | ink[ys, xs - 1] | ink[ys, xs + 1]
            share = float(near.mean())
            if share >= RING_MIN_INK and (best is None or share > best[0]):
                best = (share, float(x), float(y), float(r + dr))
    if best is None:
        return None
    return best[1] / s, best[2] / s, best[3] / s


def round_seal_mask(shape: tuple[int, ...], seal: tuple[float, float, float], dpi: int) -> np.ndarray:
    """What to blank of a round seal (:func:`round_seal`): its disc, :data:`RING_MARGIN_MM` beyond
    the ring's centre line — the ring, its lettering, the star, the faint grey of uneven seal ink
    and whatever the seal covers. A letter of the signer's name that the seal overlaps loses its
    part inside — the price of the rule, which :func:`pipeline.stages.ocr.needs_plain_reading` bounds by
    reading such a page plain too: keeping the strokes that cross the disc kept pieces of ring
    lettering glued to them, blanking only out to the ring's outer edge left its grey fringe, and
    blanking the signature's strokes too took letters joined to them; each read worse
    (benchmarks/ocr_quality.py, typewriter --split train: 4.84 %, 5.22 % and 4.86 % character
    error, against 4.64 % for the disc)."""
    x, y, r = seal
    mask = np.zeros(shape[:2], np.uint8)
    cv2.circle(mask, (int(round(x)), int(round(y))), int(round(r + RING_MARGIN_MM * dpi / 25.4)), 1, thickness=-1)
    return mask.astype(bool)
