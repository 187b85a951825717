"""Clean-up stage: seal suppression, resolution normalisation, denoising, illumination."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.cleanup import cleanup_page, noise_fraction
from pipeline.config import ImageSettings
from pipeline.models import ProcessedPage

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


def test_cleanup_is_fast_on_an_a4_page():
    rgb = np.full((3508, 2480, 3), 250, np.uint8)
    rgb[::70, :] = 0
    page = page_from(rgb)
    start = time.perf_counter()
    cleanup_page(page, SETTINGS)
    assert time.perf_counter() - start < 1.5  # ~0.2 s on one core; slack for shared CI
