"""Deskew stage on synthetic pages rendered from the corpus: skew, orientation, borders."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pipeline.runtime.config import ImageSettings
from pipeline.stages.deskew import deskew_page, estimate_skew, remove_borders, text_gray, to_gray
from pipeline.stages.models import RasterPage

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FONTS = [
    Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
]
FALLBACK_TEXT = (
    "Thủ tướng Chính phủ yêu cầu các bộ, cơ quan ngang bộ, cơ quan thuộc Chính phủ, Ủy ban nhân dân "
    "các tỉnh, thành phố trực thuộc Trung ương tiếp tục đẩy mạnh cải cách thủ tục hành chính, "
    "nâng cao chất lượng cung cấp dịch vụ công trực tuyến phục vụ người dân và doanh nghiệp. "
) * 40
SETTINGS = ImageSettings()
OSD_SETTINGS = ImageSettings(orientation_osd="always")  # OSD in the deskew stage itself


def font_path() -> Path:
    for path in FONTS:
        if path.exists():
            return path
    pytest.skip("no TrueType font with Vietnamese glyphs installed")


@lru_cache(maxsize=1)
def corpus_words() -> tuple[str, ...]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")) if "bad-ocr" not in p.name]
    return tuple(" ".join(texts or [FALLBACK_TEXT]).split())


@lru_cache(maxsize=4)
def text_page(dpi: int = 200, lines: int | None = None) -> np.ndarray:
    """An A4 page of justified-ish body text (13 pt), RGB uint8."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path()), round(13 * dpi / 72))
    margin, step = round(25 / 25.4 * dpi), round(13 * dpi / 72 * 1.5)
    words, i, y, count = corpus_words(), 0, margin, 0
    while y < height - margin - step and (lines is None or count < lines):
        line = ""
        while i < len(words) and draw.textlength(f"{line} {words[i]}".strip(), font=font) < width - 2 * margin:
            line = f"{line} {words[i]}".strip()
            i += 1
        draw.text((margin, y), line, fill="black", font=font)
        y, count = y + step, count + 1
    return np.array(image)


def rotated(page: np.ndarray, angle: float) -> np.ndarray:
    """The page rotated counter-clockwise by ``angle`` degrees (PIL convention), white fill."""
    return np.array(Image.fromarray(page).rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor="white"))


def degraded(page: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian noise, a slight blur and JPEG at quality 40 on a yellowish paper tint."""
    rng = np.random.default_rng(seed)
    tinted = page.astype(np.float32) * np.array([1.0, 0.96, 0.85], np.float32)
    noisy = np.clip(tinted + rng.normal(0, 18, page.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(1.0)).save(buf, format="JPEG", quality=40)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("angle", [-15.0, -3.5, 0.0, 2.0, 12.0, 19.0])
def test_estimate_skew_sign_and_accuracy(angle):
    estimate = estimate_skew(to_gray(rotated(text_page(), angle)))
    assert abs(estimate - angle) <= 0.3, estimate


def test_estimate_skew_on_degraded_page():
    estimate = estimate_skew(to_gray(degraded(rotated(text_page(), -7.3))))
    assert abs(estimate + 7.3) <= 0.3, estimate


def test_estimate_skew_blank_page():
    assert estimate_skew(np.full((800, 600), 255, np.uint8)) == 0.0


def test_deskew_page_levels_a_rotated_page():
    raster = RasterPage(page=1, image=rotated(text_page(), 6.0), dpi=200, sha256="ab" * 32)
    page = deskew_page(raster, SETTINGS)
    assert abs(page.skew_angle + 6.0) <= 0.3  # the correction applied is the opposite rotation
    assert abs(estimate_skew(page.ocr_image)) <= 0.3
    assert page.orientation == 0
    assert page.ocr_image.shape == page.color.shape[:2] and page.ocr_image.dtype == np.uint8
    assert page.color.dtype == np.uint8 and page.color.shape[2] == 3
    assert page.source_sha256 == raster.sha256 and page.dpi == 200
    # expand: no text is cut, the page grew to hold the rotated content
    assert page.color.shape[0] >= text_page().shape[0] and page.color.shape[1] >= text_page().shape[1]


def test_a_grey_page_is_deskewed_and_cleaned_as_one_channel_with_the_same_ocr_image():
    """A grey scan goes through deskew and clean-up as one channel; what OCR reads is exactly
    what the same page read as RGB would give, and the stored page is its grey version."""
    from pipeline.stages.cleanup import cleanup_page

    grey = to_gray(degraded(rotated(text_page(), 4.0)))
    # at the clean-up's target resolution: resampling the stored page up from 200 dpi (cubic)
    # rounds a few pixels in a million one level apart between one and three channels
    as_grey = cleanup_page(deskew_page(RasterPage(page=1, image=grey, dpi=300, sha256="0" * 64), SETTINGS), SETTINGS)
    rgb = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    as_rgb = cleanup_page(deskew_page(RasterPage(page=1, image=rgb, dpi=300, sha256="0" * 64), SETTINGS), SETTINGS)
    assert as_grey.color.ndim == 2 and as_rgb.color.ndim == 3
    assert abs(as_grey.skew_angle + 4.0) <= 0.3 and as_grey.skew_angle == as_rgb.skew_angle
    assert np.array_equal(as_grey.ocr_image, as_rgb.ocr_image)
    assert np.array_equal(as_grey.color, as_rgb.color[..., 0]) and as_grey.flags == as_rgb.flags


def test_upside_down_and_skewed_page_comes_back_upright():
    image = rotated(text_page(), 183.0)
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), OSD_SETTINGS)
    assert page.orientation == 180
    assert "orientation_corrected:180" in page.flags
    assert abs(page.skew_angle + 3.0) <= 0.3


def test_quarter_turned_page_comes_back_upright():
    original = text_page()
    image = np.ascontiguousarray(np.rot90(original, 1))  # turned 90° counter-clockwise
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), OSD_SETTINGS)
    assert page.orientation == 270  # corrected by a further 270° counter-clockwise
    assert page.skew_angle == 0.0
    assert np.array_equal(page.color, original)


def test_page_with_little_text_keeps_orientation():
    image = np.ascontiguousarray(np.rot90(text_page(lines=1), 2))  # one line, upside down
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), SETTINGS)
    assert page.orientation in (0, 180)  # never a quarter turn from a single line
    assert page.color.shape == image.shape


def test_orientation_can_be_disabled():
    image = np.ascontiguousarray(np.rot90(text_page(), 2))
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), ImageSettings(fix_orientation=False))
    assert page.orientation == 0 and np.array_equal(page.color, image)


def test_black_scanner_border_is_removed():
    page = text_page().copy()
    h, w = page.shape[:2]
    page[:, : w // 25] = 15  # left band
    page[: h // 40, :] = 30  # top band
    wedge = np.tri(h, w // 15, k=-(h // 2), dtype=bool)[:, ::-1]  # a skewed wedge on the right
    page[:, w - w // 15 :][wedge] = 10
    cleaned, removed = remove_borders(page)
    assert removed
    gray = to_gray(cleaned)
    assert gray[:, : w // 25].min() > 200 and gray[: h // 40].min() > 200
    assert gray[:, w - w // 15 :].min() > 200
    # body text survives
    body = (slice(h // 10, h - h // 10), slice(w // 10, w - w // 10))
    assert np.count_nonzero(gray[body] < 128) > 0.9 * np.count_nonzero(to_gray(text_page())[body] < 128)


def test_deskew_page_flags_border_removal():
    image = text_page().copy()
    image[:, :40] = 0
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), SETTINGS)
    assert "borders_removed" in page.flags
    assert page.ocr_image[:, :40].min() > 200


def test_an_upside_down_page_is_turned_when_its_reading_is_poor():
    """Without OSD in the deskew stage, a poor OCR reading triggers OSD, and the better of the
    two readings is kept."""
    from pipeline.runtime.config import Settings
    from pipeline.runtime.document import read_page

    image = rotated(text_page(), 180.0)
    settings = Settings(home=Path("/nonexistent"))
    page = deskew_page(RasterPage(page=1, image=image, dpi=200, sha256="0" * 64), settings.image)
    assert page.orientation == 0  # the deskew stage did not spend OSD time on it
    page, (words, text, conf, _pdf, _secs), spent = read_page(page, settings)
    assert page.orientation == 180 and spent > 0
    assert conf > 70


# --- seals, stamps, yellowed paper and dark canvas (issue #3: a heavy scan's last page) -----------


def last_page(dpi: int = 200) -> np.ndarray:
    """A Decree-30 last page: five short "Nơi nhận" lines, a big red seal ring and a red receipt
    stamp ("ĐẾN") rectangle tilted by its own 8°, on yellowed paper."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    image = Image.new("RGB", (width, height), (236, 226, 196))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path()), round(12 * dpi / 72))
    words = corpus_words()
    for i in range(5):
        draw.text((width // 7, height // 8 + i * round(12 * dpi / 72 * 1.4)), " ".join(words[6 * i : 6 * i + 6]),
                  fill=(30, 30, 30), font=font)
    r = width // 9
    cx, cy = width * 2 // 3, height // 5
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(205, 35, 40), width=max(4, dpi // 30))
    stamp = Image.new("L", (width // 3, height // 10), 0)
    ImageDraw.Draw(stamp).rectangle((2, 2, stamp.width - 3, stamp.height - 3), outline=255, width=max(4, dpi // 30))
    stamp = stamp.rotate(8, expand=True)
    red = Image.new("RGB", stamp.size, (200, 40, 45))
    image.paste(red, (width // 8, height // 3), stamp)
    return np.array(image)


def test_seal_and_stamp_do_not_decide_the_skew_of_a_sparse_page():
    page = rotated(last_page(), 12.5)
    assert abs(estimate_skew(page) - 12.5) <= 0.3  # colour page: seal and stamp ink left out
    raster = RasterPage(page=1, image=page, dpi=200, sha256="0" * 64)
    assert abs(deskew_page(raster, SETTINGS).skew_angle + 12.5) <= 0.3


def test_text_gray_whitens_red_ink_only():
    page = last_page()
    gray = text_gray(page)
    assert gray.shape == page.shape[:2]
    seal = (page[..., 0].astype(int) - page[..., 1] > 120)
    assert gray[seal].min() == 255
    text = to_gray(page) < 80
    assert np.array_equal(gray[text], to_gray(page)[text])


def test_page_with_only_a_faint_seal_is_not_rotated():
    """A real last page may carry nothing but a faded seal (dấu giáp lai): no text, no skew."""
    rng = np.random.default_rng(3)
    page = np.clip(np.full((1600, 1200, 3), 238.0) + rng.normal(0, 6, (1600, 1200, 1)), 0, 255).astype(np.uint8)
    image = Image.fromarray(page)
    ImageDraw.Draw(image).ellipse((300, 1000, 560, 1260), outline=(235, 120, 150), width=6)
    page = np.array(image)
    assert estimate_skew(page) == 0.0
    assert deskew_page(RasterPage(page=1, image=page, dpi=150, sha256="0" * 64), SETTINGS).skew_angle == 0.0


def test_rotation_fills_the_new_corners_with_the_paper_colour():
    paper = (236, 226, 196)
    page = np.array(Image.fromarray(text_page()).point(lambda v: v))  # copy
    page = np.where(page > 128, np.array(paper, np.uint8), page).astype(np.uint8)
    tilted = np.array(Image.fromarray(page).rotate(7, resample=Image.BICUBIC, expand=True, fillcolor=paper))
    out = deskew_page(RasterPage(page=1, image=tilted, dpi=200, sha256="0" * 64), SETTINGS)
    corner = out.color[:20, :20].reshape(-1, 3)
    assert np.abs(corner.astype(int) - paper).max() <= 3  # not white wedges on yellow paper


@pytest.mark.parametrize("seed", range(6))
def test_paper_colour_is_the_median_of_the_light_pixels(seed):
    """The histogram median gives what ``np.median`` gives (an even count averages the two
    middle values, rounded down), per channel, on RGB and grey pages alike."""
    from pipeline.stages.deskew import BORDER_DARK_LEVEL, paper_colour

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (701 + seed, 503), dtype=np.uint8).repeat(3).reshape(701 + seed, 503, 3)
    rgb = np.ascontiguousarray(rgb + rng.integers(0, 3, rgb.shape, dtype=np.uint8) * (rgb < 250))
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    sample = rgb[::step, ::step].reshape(-1, 3)
    light = sample[sample.min(axis=1) >= BORDER_DARK_LEVEL]
    assert paper_colour(rgb) == tuple(int(v) for v in np.median(light, axis=0))
    grey = np.ascontiguousarray(rgb[..., 1])
    assert paper_colour(grey) == int(np.median(grey[::step, ::step][grey[::step, ::step] >= BORDER_DARK_LEVEL]))


def test_text_near_the_edge_of_a_rotated_scan_on_dark_canvas_survives_border_removal():
    """The canvas of a rotated scan is a dark wedge on each side; the page's corners, with the
    ends of text lines, reach into the columns and rows where the wedge is widest."""
    page = np.ascontiguousarray(text_page()[150:-150, 170:-170])  # text up to ~3 mm from the paper edge
    tilted = np.array(Image.fromarray(page).rotate(-14, resample=Image.BICUBIC, expand=True, fillcolor=(60, 60, 60)))
    cleaned, removed = remove_borders(tilted)
    assert removed
    assert to_gray(cleaned)[:10, -10:].min() > 200  # the dark canvas is gone
    text = lambda rgb: np.count_nonzero(to_gray(rgb) < 30)  # noqa: E731 - black print, not the canvas
    assert text(cleaned) >= 0.99 * text(tilted)
