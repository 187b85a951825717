"""Deskew stage: dark scanner borders, page orientation (0/90/180/270) and skew.

Sign convention (the same as ``PIL.Image.rotate``): angles are in degrees, positive means
**counter-clockwise** as the image is displayed (x to the right, y down).

* :func:`estimate_skew` returns the skew of the *content*: a level page rotated by
  ``Image.rotate(+θ)`` gives ``+θ``.
* :class:`~pipeline.stages.models.ProcessedPage` ``skew_angle`` is the *correction applied*, so
  ``skew_angle == -estimate_skew(...)``, and ``orientation`` is the quarter turn applied,
  counter-clockwise, in {0, 90, 180, 270}. Orientation is applied first, then skew.

Skew estimation is Postl's projection-profile method on the ink pixels of a downscaled page:
for each candidate angle the ink is projected on the direction perpendicular to the text
lines and the profile's sharpness (sum of squared differences of neighbouring bins) is
scored; lines of text give the sharpest profile when they are level. A coarse search over
the whole range is refined on a finer grid at higher resolution, then by a parabola through
the best three angles.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from pipeline._exec import tesseract
from pipeline.runtime.config import ImageSettings
from pipeline.runtime.errors import ImageProcessingError, OcrError
from pipeline.stages.cleanup import seal_mask
from pipeline.stages.models import ProcessedPage, RasterPage

COARSE_LONG_SIDE = 900  # pixels of the long side for the coarse search
FINE_LONG_SIDE = 2000  # ... and for the refinement
COARSE_STEP = 0.25  # degrees
FINE_STEP = 0.05
MAX_POINTS_COARSE = 40_000
MAX_POINTS_FINE = 200_000
QUARTER_TURN_RATIO = 2.0  # vertical profile must be this much sharper to call a page turned
OSD_MIN_CONFIDENCE = 3.0  # Tesseract OSD orientation confidence to trust its verdict
OSD_LONG_SIDE = 2500
SEAL_MIN_CHROMA = 20  # looser than clean-up's: faded violet "ĐẾN" stamps; a text pixel lost costs nothing here
INK_MAX_LEVEL = 190  # normalised grey (paper = 255) above which a pixel is never ink
BORDER_DARK_LEVEL = 90  # grey level under which an edge region counts as scanner border
BORDER_MAX_FRACTION = 0.45  # a "border" covering more of the page is content, leave it


# --- helpers -----------------------------------------------------------------------------


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 view of an RGB (or already grey) image."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def resize_long_side(gray: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so that the long side is at most ``long_side``; also the scale."""
    h, w = gray.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    if scale >= 1.0:
        return gray, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), scale


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean mask of dark ink (text) pixels: background-normalised then Otsu thresholded.

    The threshold is at most :data:`INK_MAX_LEVEL`: on a page with (almost) no text — a last
    page with only a faded seal — Otsu splits the paper's noise in two and the "ink" is noise
    whose best projection angle is random.
    """
    h, w = gray.shape
    k = max(15, (min(h, w) // 30) | 1)
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    norm = cv2.divide(gray, background, scale=255)
    otsu, _ = cv2.threshold(norm, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return norm < min(otsu, INK_MAX_LEVEL)


def ink_points(mask: np.ndarray, max_points: int, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (x, y) as float32 of ink pixels, subsampled deterministically to ``max_points``.

    Each point is jittered uniformly within its pixel: without it, projections at exactly 0°
    fall on whole pixel rows and look artificially sharp, biasing small skews towards 0.
    """
    ys, xs = np.nonzero(mask)
    rng = np.random.default_rng(rng_seed)
    if len(xs) > max_points:
        idx = rng.choice(len(xs), size=max_points, replace=False)
        xs, ys = xs[idx], ys[idx]
    jitter = rng.random((2, len(xs)), dtype=np.float32)
    return xs.astype(np.float32) + jitter[0], ys.astype(np.float32) + jitter[1]


def profile_scores(xs: np.ndarray, ys: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Sharpness of the projection profile of points for each candidate skew angle.

    The profile at angle ``a`` bins ``y·cos a + x·sin a`` (the position across a line that
    rises by ``a`` counter-clockwise) in 1-pixel bins; its score is the sum of squared
    differences of neighbouring bins.
    """
    scores = np.zeros(len(angles_deg), dtype=np.float64)
    if len(xs) == 0:
        return scores
    for i, a in enumerate(np.deg2rad(angles_deg)):
        p = ys * np.float32(np.cos(a)) + xs * np.float32(np.sin(a))
        p = (p - p.min()).astype(np.int32)
        hist = np.bincount(p).astype(np.float64)
        d = np.diff(hist)
        scores[i] = float(np.dot(d, d))
    return scores


def _refine(xs: np.ndarray, ys: np.ndarray, centre: float, half_width: float, step: float) -> tuple[float, float]:
    """Best angle (with parabolic interpolation) and its score on a grid around ``centre``."""
    angles = centre + np.arange(-half_width, half_width + step / 2, step)
    scores = profile_scores(xs, ys, angles)
    i = int(np.argmax(scores))
    best = float(angles[i])
    if 0 < i < len(angles) - 1:
        s0, s1, s2 = scores[i - 1], scores[i], scores[i + 1]
        denom = s0 - 2 * s1 + s2
        if denom < 0:
            best += step * 0.5 * (s0 - s2) / denom
    return best, float(scores[i])


def _coarse_mask(gray: np.ndarray) -> np.ndarray:
    """Ink mask of the page at the coarse search's resolution."""
    small, _ = resize_long_side(gray, COARSE_LONG_SIDE)
    return ink_mask(small)


def _search(gray: np.ndarray, max_angle: float, *, transpose: bool = False,
            mask: np.ndarray | None = None) -> tuple[float, float]:
    """Coarse search over ±max_angle; returns (angle, normalised peak score). ``mask``: the
    page's :func:`_coarse_mask`, when the caller has it already."""
    mask = _coarse_mask(gray) if mask is None else mask
    if transpose:
        mask = np.ascontiguousarray(np.rot90(mask, -1))
    xs, ys = ink_points(mask, MAX_POINTS_COARSE)
    if len(xs) < 50:
        return 0.0, 0.0
    angles = np.arange(-max_angle, max_angle + COARSE_STEP / 2, COARSE_STEP)
    scores = profile_scores(xs, ys, angles)
    i = int(np.argmax(scores))
    return float(angles[i]), float(scores[i] / max(len(xs), 1) ** 2)


def text_gray(image: np.ndarray) -> np.ndarray:
    """Grey copy of a page for measuring text geometry: on an RGB page, red and magenta ink
    (con dấu đỏ — the seal — and the "ĐẾN" receipt stamp, dấu đến) is painted white.

    A seal's ring and a stamp's rectangle are strong straight or curved strokes at their own
    angle; on a page with few text lines (the last page: chữ ký and "Nơi nhận" only) they
    out-vote the text in the projection profile. Black, grey and blue-black text ink is kept.
    """
    if image.ndim == 2:
        return image

    gray = to_gray(image)
    mask = seal_mask(image, SEAL_MIN_CHROMA)
    if not mask.any():
        return gray
    gray = gray.copy()
    gray[mask] = 255
    return gray


def estimate_skew(image: np.ndarray, max_angle: float = 20.0, *, coarse_mask: np.ndarray | None = None,
                  coarse_search: tuple[float, float] | None = None) -> float:  # fmt: skip
    """Skew of the text lines in degrees, counter-clockwise positive, within ±``max_angle``.

    A page rotated with ``PIL.Image.rotate(θ)`` gives ``θ``; rotate by ``-θ`` to level it.
    ``image`` is grey or RGB; on RGB, seal and stamp ink is left out (:func:`text_gray`).
    When the caller has them already (:func:`deskew_page`): ``coarse_mask``, the grey page's
    :func:`_coarse_mask`, and ``coarse_search``, :func:`_search`'s result on it.
    Returns 0.0 when the page has no measurable ink.
    """
    gray = text_gray(image)
    coarse, score = coarse_search if coarse_search is not None else _search(gray, max_angle, mask=coarse_mask)
    if score == 0.0:
        return 0.0
    big, _ = resize_long_side(gray, FINE_LONG_SIDE)
    xs, ys = ink_points(ink_mask(big), MAX_POINTS_FINE)
    angle, _ = _refine(xs, ys, coarse, COARSE_STEP * 2, FINE_STEP)
    return float(np.clip(angle, -max_angle, max_angle))


def is_quarter_turned(gray: np.ndarray, max_angle: float = 20.0, *, mask: np.ndarray | None = None,
                      horizontal: float | None = None) -> bool:  # fmt: skip
    """Whether the text lines run vertically (page turned by 90 or 270 degrees). ``mask``: the
    page's :func:`_coarse_mask`, and ``horizontal``: the score of its coarse search, when the
    caller has them already."""
    mask = _coarse_mask(gray) if mask is None else mask
    if horizontal is None:
        _, horizontal = _search(gray, max_angle, mask=mask)
    _, vertical = _search(gray, max_angle, transpose=True, mask=mask)
    return vertical > QUARTER_TURN_RATIO * horizontal and vertical > 0


# --- rotation ---------------------------------------------------------------------------


def bound_matrix(w: int, h: int, angle: float) -> tuple[np.ndarray, int, int]:
    """The affine matrix of :func:`rotate_bound` for a ``w`` × ``h`` page, and the new canvas size
    (also what maps a point of the page as loaded onto the deskewed page)."""
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w = int(np.ceil(h * sin + w * cos))
    new_h = int(np.ceil(h * cos + w * sin))
    matrix[0, 2] += new_w / 2.0 - w / 2.0
    matrix[1, 2] += new_h / 2.0 - h / 2.0
    return matrix, new_w, new_h


def map_box(box: tuple[float, float, float, float], size: tuple[int, int], angle: float, scale: float = 1.0) -> tuple[int, int, int, int]:
    """A box of the page as loaded (``size`` = (w, h)) on the page deskewed by ``angle`` (as
    :func:`rotate_bound` turns it) and then resampled by ``scale``: the bounding box of its turned corners."""
    x0, y0, x1, y1 = box
    if abs(angle) < 1e-3:
        pts = np.array([[x0, y0], [x1, y1]], dtype=np.float64)
    else:
        matrix, _, _ = bound_matrix(size[0], size[1], angle)
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64)
        pts = corners @ matrix.T
    pts *= scale
    return (int(pts[:, 0].min()), int(pts[:, 1].min()), int(np.ceil(pts[:, 0].max())), int(np.ceil(pts[:, 1].max())))


def rotate_bound(image: np.ndarray, angle: float, fill: int | tuple[int, int, int] = 255) -> np.ndarray:
    """Rotate counter-clockwise by ``angle`` degrees, enlarging the canvas so nothing is cut."""
    if abs(angle) < 1e-3:
        return image
    h, w = image.shape[:2]
    matrix, new_w, new_h = bound_matrix(w, h, angle)
    if image.ndim == 3 and isinstance(fill, int):
        fill = (fill,) * image.shape[2]
    return cv2.warpAffine(
        image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )


def rotate_quarter(image: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate counter-clockwise by a multiple of 90 degrees (exact, no resampling)."""
    return np.ascontiguousarray(np.rot90(image, (orientation // 90) % 4))


# --- orientation --------------------------------------------------------------------------


def osd_rotation(gray: np.ndarray) -> tuple[int, float] | None:
    """Tesseract OSD's counter-clockwise correction (0/90/180/270) and its confidence.

    ``None`` when OSD gives no verdict (too few characters, error). Tesseract's "Rotate"
    field is the clockwise rotation that makes the page upright.
    """
    small, _ = resize_long_side(gray, OSD_LONG_SIDE)
    try:
        fields = tesseract.osd(small)
    except OcrError:
        return None
    try:
        rotate_cw = int(float(fields["Rotate"]))
        confidence = float(fields["Orientation confidence"])
    except (KeyError, ValueError):
        return None
    return (-rotate_cw) % 360, confidence


def detect_orientation(gray: np.ndarray) -> int:
    """Counter-clockwise quarter turn (0/90/180/270) that makes the page upright.

    Tesseract OSD is trusted only above :data:`OSD_MIN_CONFIDENCE`; without a confident
    verdict (little text, OSD error) the page is left as it is (0). :func:`deskew_page`
    first turns pages whose lines run vertically (:func:`is_quarter_turned`), so OSD mostly
    decides between 0 and 180.
    """
    verdict = osd_rotation(gray)
    if verdict is not None and verdict[1] >= OSD_MIN_CONFIDENCE:
        return verdict[0]
    return 0


# --- borders --------------------------------------------------------------------------------


def border_mask(gray: np.ndarray) -> np.ndarray | None:
    """Mask (full resolution) of dark scanner borders touching the page edge, or ``None``.

    Dark regions thick enough to survive an opening of ~1.5 % of the page (text strokes do
    not) and touching the edge, plus dark full-length strips along the edges.
    """
    small, scale = resize_long_side(gray, 1000)
    h, w = small.shape
    dark = (small < BORDER_DARK_LEVEL).astype(np.uint8)
    if not dark.any():
        return None
    k = max(5, int(0.015 * max(h, w)))
    opened = cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    mask: np.ndarray = np.zeros_like(dark)  # uint8; widened: OpenCV's stubs type results as any Mat
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    for label in range(1, n):
        x, y, bw, bh, _ = stats[label]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            mask[labels == label] = 1
    # thin strips and wedges: dark pixels of the outer tenth of the page connected to the edge.
    # Only the dark pixels: a column at the edge of a rotated scan may be mostly dark canvas
    # and still carry the corner of the page with its text.
    outer = np.zeros_like(dark)
    limit_r, limit_c = max(1, h // 10), max(1, w // 10)
    outer[:limit_r] = outer[-limit_r:] = 1
    outer[:, :limit_c] = outer[:, -limit_c:] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark & outer, connectivity=8)
    for label in range(1, n):
        x, y, bw, bh, _ = stats[label]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            mask[labels == label] = 1
    if not mask.any():
        return None
    # grow into the dark fringe (blur, JPEG) next to the border body — a few pixels only: text
    # near the page edge of a rotated scan is dark too and must survive
    g = max(3, k // 3)
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (g, g)))
    mask = mask | (grown & (small < BORDER_DARK_LEVEL + 60).astype(np.uint8))
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    if mask.mean() > BORDER_MAX_FRACTION:
        return None
    full = cv2.resize(mask, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
    return full.astype(bool)


def reorient(page: ProcessedPage, turn: int) -> ProcessedPage:
    """``page`` turned counter-clockwise by ``turn`` (a multiple of 90) — colour and OCR copy alike."""
    orientation = (page.orientation + turn) % 360
    flags = [f for f in page.flags if not f.startswith("orientation_corrected")]
    if orientation:
        flags.append(f"orientation_corrected:{orientation}")
    return replace(
        page,
        color=rotate_quarter(page.color, turn),
        ocr_image=rotate_quarter(page.ocr_image, turn),
        orientation=orientation,
        flags=flags,
    )


def paper_colour(image: np.ndarray) -> int | tuple[int, int, int]:
    """The paper's colour (màu giấy): per-channel median of the pixels lighter than a scanner
    border, on a subsample; one grey level for a grey page. Canvas added by rotation and
    removed borders are painted with it, so that the clean-up stage sees one even background
    rather than white wedges on yellowed paper (their edges would read as ink after background
    normalisation).

    The medians come from per-channel histograms of the light pixels: the value
    ``np.median`` gives, truncated to an integer, at a fifth of its cost."""
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 250_000)))
    sample = np.ascontiguousarray(image[::step, ::step])
    channels = 1 if sample.ndim == 2 else sample.shape[2]
    light = cv2.inRange(sample, (BORDER_DARK_LEVEL,) * channels, (255,) * channels)  # every channel ≥ the level
    n = cv2.countNonZero(light)
    if n < 100:
        return 255 if channels == 1 else (255, 255, 255)
    medians = tuple(_histogram_median(cv2.calcHist([sample], [c], light, [256], [0, 256]).ravel(), n)
                    for c in range(channels))
    return medians[0] if channels == 1 else medians  # type: ignore[return-value]


def _histogram_median(hist: np.ndarray, n: int) -> int:
    """``int(np.median(values))`` of ``n`` integers 0–255 given by their histogram: the middle
    value, or the mean of the two middle values (rounded down) when ``n`` is even."""
    cumulative = np.cumsum(hist)
    upper = int(np.searchsorted(cumulative, n // 2 + 1))  # the value of rank n // 2 (0-based)
    if n % 2:
        return upper
    lower = int(np.searchsorted(cumulative, n // 2))  # rank n // 2 - 1
    return (lower + upper) // 2


def remove_borders(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Paint dark scanner borders with the paper colour (grey or RGB page); the image and
    whether anything was removed."""
    mask = border_mask(to_gray(image))
    if mask is None:
        return image, False
    out = image.copy()
    out[mask] = paper_colour(image)
    return out, True


# --- capture: what kind of page this is (issue 18) -------------------------------------------

#: Captures :func:`detect_capture` tells apart. The clean-up and the choice of reading depend on it.
CAPTURES = ("scan", "bitonal", "fax", "photocopy", "photo")
FAX_MAX_DPI = 240  # a bitonal page at most this fine is a fax (204 × 98 or 204 × 196 dpi, squared by load)
PHOTOCOPY_MAX_PAPER = 232  # neutral paper darker than this is a copier's grey toner ...
PHOTOCOPY_MAX_PAPER_CHROMA = 10  # ... when it has no colour of its own (yellowed paper has)
PHOTO_MIN_PAGE, PHOTO_MAX_PAGE = 0.2, 0.93  # share of a photo the page's quadrilateral covers
PHOTO_MIN_BACKGROUND_GREY = 60  # a desk; a scanner's lid or canvas is darker and colourless
PHOTO_MIN_BACKGROUND_CHROMA = 25
PHOTO_MAX_BACKGROUND_SHARE = 0.8  # the background is at most this bright relative to the paper
QUAD_LONG_SIDE = 800  # pixels of the long side the page outline is looked for at
A4_SHORT_INCHES, A4_LONG_INCHES = 8.27, 11.69
A4_ASPECT_TOLERANCE = 0.1


def is_bitonal(image: np.ndarray) -> bool:
    """Whether a page holds only black and white (a bitonal TIFF, a fax): measured on a
    subsample, every grey level is 0 or 255."""
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 250_000)))
    sample = image[::step, ::step]
    if sample.ndim == 3:
        if not (np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 0], sample[..., 2])):
            return False
        sample = sample[..., 0]
    hist = cv2.calcHist([np.ascontiguousarray(sample)], [0], None, [256], [0, 256]).ravel()
    return float(hist[0] + hist[255]) >= 0.999 * sample.size


def _order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    pts = pts.reshape(4, 2).astype(np.float32)
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], dtype=np.float32)


def page_quadrilateral(image: np.ndarray) -> np.ndarray | None:
    """The corners (top-left, top-right, bottom-right, bottom-left; full-resolution pixels) of a
    sheet of paper photographed on a background — a desk, a counter — or ``None``.

    The sheet's outline is the convex hull of the edges (Canny on the blurred brightest channel
    of a downscaled copy: the paper's edge against the desk stays an edge in a shadow, where a
    global threshold loses the shaded part of the sheet), simplified to four corners, covering
    :data:`PHOTO_MIN_PAGE`–:data:`PHOTO_MAX_PAGE` of the picture. Its surroundings must be a
    background: clearly darker than the paper inside (a scan's white margins around its text are
    not), and not a scanner's black lid or canvas (lighter than
    :data:`PHOTO_MIN_BACKGROUND_GREY` or coloured, :data:`PHOTO_MIN_BACKGROUND_CHROMA`). A scan
    (paper to the edges, or a rotated scan on black canvas) gives ``None``."""
    small, scale = resize_long_side(image, QUAD_LONG_SIDE)
    value = small if small.ndim == 2 else small.max(axis=2)  # white paper in a shadow stays lighter than a desk
    blurred = cv2.GaussianBlur(value, (5, 5), 0)
    edges = cv2.dilate(cv2.Canny(blurred, 40, 120), np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    hull = cv2.convexHull(max(contours, key=lambda c: cv2.contourArea(cv2.convexHull(c))))
    share = cv2.contourArea(hull) / float(value.size)
    if not PHOTO_MIN_PAGE <= share <= PHOTO_MAX_PAGE:
        return None
    quad = None
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = approx
            break
    if quad is None:
        return None
    k = max(5, (max(value.shape) // 40) | 1)
    inside = np.zeros(value.shape, np.uint8)
    cv2.fillConvexPoly(inside, quad.reshape(4, 2).astype(np.int32), 1)
    outside = cv2.erode(1 - inside, np.ones((k, k), np.uint8)).astype(bool)
    inside = cv2.erode(inside, np.ones((k, k), np.uint8)).astype(bool)
    if np.count_nonzero(outside) < 0.05 * value.size or not inside.any():
        return None
    paper = float(np.percentile(value[inside], 90))
    background = float(np.median(value[outside]))
    if background > PHOTO_MAX_BACKGROUND_SHARE * paper:
        return None  # the margins of a scan around its text: the same paper
    rgb = small if small.ndim == 3 else np.dstack([small] * 3)
    chroma = float(np.median((rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2))[outside]))
    if background < PHOTO_MIN_BACKGROUND_GREY and chroma < PHOTO_MIN_BACKGROUND_CHROMA:
        return None  # black canvas around a rotated scan: borders and skew are dealt with as ever
    return _order_corners(quad.astype(np.float32) / scale)


def rectify(image: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, int]:
    """The page inside ``quad`` warped flat (perspective transform) and its real resolution:
    the rectified page's width over an A4 sheet's (8.27 in portrait, 11.69 in landscape) — a
    phone writes 72 dpi in every photo, whatever the distance to the page."""
    tl, tr, br, bl = quad
    width = int(round((np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    height = int(round((np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    # the mean side lengths of a sheet seen in perspective foreshorten its far side; a sheet
    # within A4_ASPECT_TOLERANCE of A4's proportions (Decree 30/2020/NĐ-CP prints on A4) is given them
    a4 = A4_LONG_INCHES / A4_SHORT_INCHES
    if width <= height and abs(height / width / a4 - 1) <= A4_ASPECT_TOLERANCE:
        height = int(round(width * a4))
    elif width > height and abs(width / height / a4 - 1) <= A4_ASPECT_TOLERANCE:
        height = int(round(width / a4))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    flat = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    dpi = width / (A4_SHORT_INCHES if width <= height else A4_LONG_INCHES)
    return np.ascontiguousarray(flat), int(round(min(600, max(100, dpi))))


def detect_capture(image: np.ndarray, dpi: int) -> str:
    """What kind of capture a page is (one of :data:`CAPTURES`), from its pixels and resolution:

    * ``fax``: bitonal (:func:`is_bitonal`) at :data:`FAX_MAX_DPI` or less — a fax's 200 × 100
      dpi is squared by the load stage; ``bitonal``: a finer bitonal scan;
    * ``photo``: a sheet photographed on a background (:func:`page_quadrilateral`);
    * ``photocopy``: neutral grey paper (toner), darker than :data:`PHOTOCOPY_MAX_PAPER`;
    * ``scan``: anything else (a grey or colour flatbed scan).
    """
    if is_bitonal(image):
        return "fax" if dpi <= FAX_MAX_DPI else "bitonal"
    if page_quadrilateral(image) is not None:
        return "photo"
    return _paper_kind(image)


def _paper_kind(image: np.ndarray) -> str:
    """``photocopy`` or ``scan`` by the paper's colour (:func:`detect_capture`)."""
    paper = paper_colour(image)
    grey = paper if isinstance(paper, int) else int(round(0.299 * paper[0] + 0.587 * paper[1] + 0.114 * paper[2]))
    chroma = 0 if isinstance(paper, int) else max(paper) - min(paper)
    if grey < PHOTOCOPY_MAX_PAPER and chroma <= PHOTOCOPY_MAX_PAPER_CHROMA:
        return "photocopy"
    return "scan"


def capture_of(page: ProcessedPage) -> str:
    """The capture :func:`deskew_page` recorded in the page's flags (``capture:<kind>``)."""
    return next((f.split(":", 1)[1] for f in page.flags if f.startswith("capture:")), "scan")


# --- the stage ----------------------------------------------------------------------------


def deskew_page(raster: RasterPage, settings: ImageSettings) -> ProcessedPage:
    """Remove borders, fix orientation and skew of one page (grey or RGB, kept as it came);
    ``ocr_image`` is its grey version — the page itself when it is grey (neither is ever
    modified in place)."""
    image = raster.image
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageProcessingError(f"expected a grey or RGB uint8 page, got {image.shape} {image.dtype}",
                                   page=raster.page)  # fmt: skip
    flags: list[str] = list(raster.notes)
    dpi = raster.dpi
    quad = None
    if is_bitonal(image):
        capture = "fax" if dpi <= FAX_MAX_DPI else "bitonal"
    else:
        quad = page_quadrilateral(image)
        capture = "photo" if quad is not None else _paper_kind(image)
    flags.append(f"capture:{capture}")
    if quad is not None:  # a phone photo: the sheet warped flat first, at its real resolution
        image, dpi = rectify(image, quad)
        flags.append(f"rectified:{raster.dpi}->{dpi}dpi")
    if settings.remove_borders:
        image, removed = remove_borders(image)
        if removed:
            flags.append("borders_removed")
    orientation = 0
    gray = text_gray(image)  # seal and stamp ink left out of the geometry measures
    coarse: np.ndarray | None  # None: measured again on a turned page (below)
    search: tuple[float, float] | None
    coarse = _coarse_mask(gray)  # shared by the quarter-turn test and the skew search
    search = _search(gray, settings.max_skew_deg, mask=coarse)  # ... and so is its coarse search
    if settings.fix_orientation:
        if is_quarter_turned(gray, settings.max_skew_deg, mask=coarse, horizontal=search[1]):
            image, gray = rotate_quarter(image, 90), rotate_quarter(gray, 90)
            orientation = 90
        turn = detect_orientation(to_gray(image)) if settings.orientation_osd == "always" else 0
        if turn:
            image, gray = rotate_quarter(image, turn), rotate_quarter(gray, turn)
            orientation = (orientation + turn) % 360
        if orientation:
            flags.append(f"orientation_corrected:{orientation}")
            coarse = search = None  # measured on the page as it was
    skew = 0.0
    if settings.deskew:
        skew = estimate_skew(gray, settings.max_skew_deg, coarse_mask=coarse, coarse_search=search)
        if abs(skew) >= 0.05:
            image = rotate_bound(image, -skew, fill=paper_colour(image))
        else:
            skew = 0.0
    image = np.ascontiguousarray(image)
    return ProcessedPage(
        page=raster.page,
        color=image,
        ocr_image=to_gray(image),  # a new array from RGB; the page itself when grey
        dpi=dpi,
        skew_angle=-skew,
        orientation=orientation,
        source_sha256=raster.sha256,
        flags=flags,
    )
