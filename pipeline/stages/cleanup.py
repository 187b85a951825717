"""Clean-up stage: the grey OCR copy of a deskewed page.

Steps, each cheap (the whole stage stays well under half a second for an A4 page at 300 dpi):

1. resolution normalised to ``ImageSettings.target_dpi`` — scans arrive at 100–300 dpi and
   Tesseract reads best at ~300 dpi. ``color`` is resampled with ``ocr_image`` so that word
   boxes (pixels of ``ocr_image``) stay valid on the stored colour page;
2. red seals and stamps (con dấu đỏ) suppressed: strongly red or magenta pixels become
   background in the OCR copy only — ``color`` keeps the seal, it is part of the record;
3. salt-and-pepper noise removed with a 3×3 median, only when measured;
4. uneven illumination and low contrast normalised by dividing by the background (a
   morphological close of a downscaled copy) and stretching the result.

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


def remove_speckle(ink: np.ndarray, dpi: int) -> tuple[np.ndarray, int]:
    """Bitonal ink mask (True = ink) without speckle, decided by connected-component size — not
    by blurring, which on a bitonal page thins every glyph's strokes as much as it removes dots:
    a component smaller than :data:`SPECKLE_TINY_MM` (squared) goes; one smaller than
    :data:`SPECKLE_MAX_MM` goes when it is isolated, farther than :data:`SPECKLE_ISOLATION_MM`
    from any larger component (diacritics, full stops and the dots of i sit next to their letter).
    Returns the mask and the number of components removed."""
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
    drop = (area > 0) & ((area <= tiny) | ((area <= small) & ~touched))
    drop[0] = False
    if not drop.any():
        return ink, 0
    return ink & ~drop[labels], int(np.count_nonzero(drop))


def repair_dropped_lines(ink: np.ndarray, dpi: int) -> tuple[np.ndarray, int]:
    """Scan lines a fax lost (a row — two at squared 200 × 100 dpi — of white across the text):
    an empty run of rows at most 0.3 mm tall between two rows that both carry ink (a row inside
    a line of text is never empty) is filled where the rows on either side are both ink."""
    counts = np.count_nonzero(ink, axis=1)
    h, w = ink.shape
    gap = max(1, round(0.3 * dpi / 25.4))
    busy = max(4, w // 100)
    out, fixed = ink, 0
    y = 1
    while y < h - 1:
        if counts[y] == 0 and counts[y - 1] >= busy:
            end = y
            while end < h and counts[end] == 0 and end - y < gap:
                end += 1
            if end < h and counts[end] >= busy and counts[end] > 0 and end - y <= gap:
                if out is ink:
                    out = ink.copy()
                out[y:end] = ink[y - 1] & ink[end]
                fixed += 1
            y = end
        y += 1
    return out, fixed


def clean_bitonal(page: ProcessedPage, settings: ImageSettings, max_pixels: int | None, flags: list[str]) -> ProcessedPage:
    """Clean-up of a bitonal page (a fax, a bitonal TIFF): no median (it erodes thin strokes of a
    bitonal glyph), no illumination (the paper is white already): speckle removed by component
    size (:func:`remove_speckle`), lost scan lines repaired, then the page smoothed a little
    (:data:`BITONAL_SMOOTH_SIGMA`) and resampled to ``target_dpi`` with a cubic kernel, which
    gives the glyph edges grey levels Tesseract reads better than jagged black and white
    (benchmarks/ocr_quality.py, fax)."""
    ink = page.ocr_image < 128
    if settings.denoise:
        ink, lines = repair_dropped_lines(ink, page.dpi)
        if lines:
            flags.append(f"scan_lines_repaired:{lines}")
        ink, specks = remove_speckle(ink, page.dpi)
        if specks:
            flags.append(f"despeckled:{specks}")
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
    return replace(page, ocr_image=np.ascontiguousarray(gray), flags=flags)
