"""Clean-up stage: seal suppression, resolution normalisation, denoising, illumination."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.runtime.config import ImageSettings
from pipeline.stages.cleanup import cleanup_page, noise_fraction
from pipeline.stages.models import ProcessedPage

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
LINE = "Ủy ban nhân dân tỉnh Quảng Ninh quyết định"
SETTINGS = ImageSettings()


def font(size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        pytest.skip("font not installed")


def page_from(rgb: np.ndarray, dpi: int = 300) -> ProcessedPage:
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    return ProcessedPage(page=1, color=rgb, ocr_image=gray.copy(), dpi=dpi, skew_angle=0.0, orientation=0, source_sha256="0" * 64)


def text_image(width: int, height: int, dpi: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    size = round(13 * dpi / 72)
    for i, y in enumerate(range(size, height - 2 * size, 2 * size)):
        draw.text((size, y), f"{LINE} {i}", fill="black", font=font(size))
    return np.array(image)


def test_red_seal_is_suppressed_for_ocr_and_kept_in_colour():
    rgb = text_image(1200, 900, 300)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 150, 800, 650), outline=(210, 30, 40), width=18)  # con dấu đỏ
    draw.text((380, 380), "CỤC THUẾ", fill=(220, 40, 60), font=font(70))
    rgb = np.array(image)
    ring = (slice(392, 408), slice(300, 318))  # left side of the seal ring, off the text lines
    out = cleanup_page(page_from(rgb), SETTINGS)
    assert "seal_suppressed" in out.flags
    assert out.ocr_image[ring].min() > 200  # gone from the OCR copy
    assert np.array_equal(out.color, rgb)  # kept in the stored colour page
    # black text is still there where the seal was
    assert np.count_nonzero(out.ocr_image < 100) > 0.8 * np.count_nonzero(np.asarray(Image.fromarray(text_image(1200, 900, 300)).convert("L")) < 100)


def test_low_dpi_page_is_normalised_with_colour():
    rgb = text_image(620, 877, 150)  # A5-ish at 150 dpi
    out = cleanup_page(page_from(rgb, dpi=150), SETTINGS)
    assert out.dpi == 300
    assert out.color.shape[:2] == out.ocr_image.shape == (1754, 1240)
    assert out.color.dtype == np.uint8 and out.ocr_image.dtype == np.uint8
    assert any(f.startswith("resampled:150->300") for f in out.flags)


def test_page_at_target_dpi_keeps_geometry():
    rgb = text_image(800, 600, 300)
    out = cleanup_page(page_from(rgb, dpi=300), SETTINGS)
    assert out.ocr_image.shape == rgb.shape[:2] and out.dpi == 300


def test_salt_and_pepper_noise_is_reduced():
    clean = np.asarray(Image.fromarray(text_image(1200, 900, 300)).convert("L"))
    rng = np.random.default_rng(1)
    noisy_gray = clean.copy()
    draw = rng.random(clean.shape)
    noisy_gray[draw < 0.01] = 0
    noisy_gray[draw > 0.99] = 255
    rgb = np.repeat(noisy_gray[..., None], 3, axis=2)
    out = cleanup_page(page_from(rgb), SETTINGS)
    assert "denoised" in out.flags
    assert noise_fraction(out.ocr_image) < 0.2 * noise_fraction(noisy_gray)
    clean_out = cleanup_page(page_from(np.repeat(clean[..., None], 3, axis=2)), SETTINGS)
    assert "denoised" not in clean_out.flags  # a clean page is not blurred


def test_uneven_illumination_is_flattened():
    rgb = text_image(1200, 900, 300).astype(np.float32)
    shade = np.linspace(0.55, 1.0, rgb.shape[1], dtype=np.float32)[None, :, None]
    out = cleanup_page(page_from((rgb * shade).astype(np.uint8)), SETTINGS)
    background = out.ocr_image[out.ocr_image > 128]
    left_paper = out.ocr_image[:, :100][out.ocr_image[:, :100] > 100]
    assert background.mean() > 240 and left_paper.mean() > 235

def yellowed_scan(rgb: np.ndarray, seed: int = 0, quality: int = 35) -> np.ndarray:
    """Faded toner on yellowed paper, noise and a low JPEG quality (a heavy office scan)."""
    import io

    rng = np.random.default_rng(seed)
    f = 1.0 - (1.0 - rgb.astype(np.float32) / 255.0) * 0.8
    f *= np.array([239, 218, 184], np.float32) / 255.0
    noisy = np.clip(f * 255.0 + rng.normal(0, 10, rgb.shape[:2])[..., None], 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_seal_suppression_does_not_punch_holes_in_text_on_yellowed_paper():
    """JPEG leaves reddish fringes on black text on yellow paper; they are no seal."""
    rgb = yellowed_scan(text_image(1200, 900, 300))
    with_seals = cleanup_page(page_from(rgb), SETTINGS)
    without = cleanup_page(page_from(rgb), ImageSettings(suppress_seals=False))
    ink = lambda g: np.count_nonzero(g < 128)  # noqa: E731
    assert ink(with_seals.ocr_image) >= 0.98 * ink(without.ocr_image)


def test_seal_on_yellowed_paper_leaves_no_dark_halo():
    rgb = text_image(1200, 900, 300)
    image = Image.fromarray(rgb)
    ImageDraw.Draw(image).ellipse((300, 150, 800, 650), outline=(205, 30, 35), width=18)
    out = cleanup_page(page_from(yellowed_scan(np.array(image), quality=60)), SETTINGS)
    ring = out.ocr_image[445:480, 270:350]  # left side of the ring and around it, between two text lines
    assert "seal_suppressed" in out.flags
    assert np.count_nonzero(ring < 128) <= 0.01 * ring.size


def test_noise_of_a_nearly_blank_page_is_not_stretched_into_grey():
    """A last page with two lines: the contrast stretch must not take paper noise for ink."""
    rgb = np.full((1754, 1240, 3), 255, np.uint8)
    image = Image.fromarray(rgb)
    ImageDraw.Draw(image).text((120, 120), LINE, fill="black", font=font(54))
    out = cleanup_page(page_from(yellowed_scan(np.array(image)), dpi=300), SETTINGS)
    paper = out.ocr_image[600:1600, 100:1100]
    assert np.median(paper) >= 240 and np.count_nonzero(paper < 128) <= 0.001 * paper.size


@pytest.mark.parametrize("tinted", [False, True])
@pytest.mark.parametrize("min_chroma", [20, 40])
def test_seal_mask_is_the_red_or_magenta_chromatic_ink(tinted, min_chroma):
    """Seal ink is a hue near red or magenta with enough chroma and not dark, as OpenCV's HSV
    tells it: the mask is the same whether the hue is taken of the few candidate pixels of a
    seal on white paper or of the whole page (yellowed paper, where most pixels have chroma)."""
    import cv2

    from pipeline.stages.cleanup import SEAL_MIN_VALUE, seal_mask

    rgb = text_image(900, 700, 300)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 100, 600, 500), outline=(210, 30, 40), width=14)
    draw.text((260, 280), "ĐẾN", fill=(200, 40, 160), font=font(70))  # magenta receipt stamp
    draw.rectangle((650, 50, 800, 120), fill=(40, 60, 200))  # blue ink: not a seal
    rgb = yellowed_scan(np.array(image), quality=60) if tinted else np.array(image)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    chroma = rgb.max(axis=2).astype(int) - rgb.min(axis=2)
    expected = (chroma >= min_chroma) & (rgb.max(axis=2) >= SEAL_MIN_VALUE) & ((hsv[..., 0] <= 12) | (hsv[..., 0] >= 140))
    mask = seal_mask(rgb, min_chroma)
    assert mask.dtype == bool and mask.shape == rgb.shape[:2]
    assert np.array_equal(mask, expected) and mask[300, 205:213].any()
