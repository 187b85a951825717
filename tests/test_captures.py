"""Hard captures (issue 18): fax, photocopy, phone photo, typewriter — capture detection,
anisotropic resampling, speckle removal by component size, quadrilateral rectification and the
choice between the cleaned and the plain reading, on rendered pages read by real Tesseract."""

from __future__ import annotations

import io
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from pipeline.runtime.config import ImageSettings, LimitSettings, OcrSettings
from pipeline.stages.cleanup import cleanup_page, remove_speckle
from pipeline.stages.deskew import capture_of, deskew_page, detect_capture, page_quadrilateral, rectify
from pipeline.stages.layout import reading_order
from pipeline.stages.load import probe, render_page
from pipeline.stages.models import ProcessedPage, RasterPage, Word
from pipeline.stages.ocr import non_text_words, ocr_page, plain_is_better, reading_score, score_noise

SERIF = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
MONO = "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf"
LINES = [
    "Ủy ban nhân dân tỉnh Quảng Ninh quyết định",
    "Số: 476/TB-VPCP ngày 20 tháng 11 năm 2023",
    "thực hiện thủ tục hành chính trên môi trường điện tử",
    "đẩy mạnh cải cách, nâng cao chất lượng phục vụ",
]
TRUTH = " ".join(LINES)
IMAGE, OCR, LIMITS = ImageSettings(), OcrSettings(), LimitSettings()


def font(path: str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        pytest.skip("font not installed")


def text_page(dpi: int, width_mm: float = 150, height_mm: float = 60, path: str = SERIF,
              lines: list[str] = LINES) -> np.ndarray:  # fmt: skip
    """White grey page, ``lines`` at 13 pt: a small crop of a document."""
    px = dpi / 25.4
    image = Image.new("L", (round(width_mm * px), round(height_mm * px)), 255)
    draw = ImageDraw.Draw(image)
    size = round(13 * dpi / 72)
    for i, line in enumerate(lines):
        draw.text((round(8 * px), round(6 * px) + i * round(size * 1.6)), line, fill=0, font=font(path, size))
    return np.asarray(image)


def cer(text: str) -> float:
    return Levenshtein.distance(" ".join(text.split()), TRUTH) / len(TRUTH)


def read(raster: RasterPage) -> tuple[ProcessedPage, str]:
    page = cleanup_page(deskew_page(raster, IMAGE), IMAGE)
    _words, text, _conf, _pdf, _secs = ocr_page(page, OCR, LIMITS, text_pdf=False)
    return page, text


def raster(image: np.ndarray, dpi: int) -> RasterPage:
    return RasterPage(page=1, image=np.ascontiguousarray(image), dpi=dpi, sha256="0" * 64)


def on_desk(page: np.ndarray, corners: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey page photographed on a brown desk: warped onto ``corners`` of a ``size`` photo,
    warm light."""
    h, w = page.shape[:2]
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), corners.astype(np.float32))
    rgb = np.dstack([page] * 3)
    warped = cv2.warpPerspective(rgb, matrix, size, flags=cv2.INTER_AREA)
    inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, size)[..., None] / 255.0
    rng = np.random.default_rng(5)
    desk = np.array([130, 92, 58], np.float32) * rng.uniform(0.85, 1.1, (size[1], size[0], 1)).astype(np.float32)
    photo = warped * inside + desk * (1 - inside)
    return (photo * np.array([1.0, 0.92, 0.78])).clip(0, 255).astype(np.uint8)


# --- capture detection ------------------------------------------------------------------------


def test_each_capture_is_told_apart_by_its_pixels_and_resolution():
    grey = text_page(200)
    bitonal = np.where(grey < 128, 0, 255).astype(np.uint8)
    assert detect_capture(bitonal, 200) == "fax"  # bitonal at fax resolution
    assert detect_capture(bitonal, 300) == "bitonal"
    assert detect_capture(np.dstack([grey] * 3), 200) == "scan"  # white paper, colour file
    toner = (grey.astype(np.float32) * (212 / 255)).astype(np.uint8)  # neutral grey paper of a copier
    assert detect_capture(toner, 200) == "photocopy"
    yellowed = (np.dstack([grey] * 3) * np.array([0.93, 0.88, 0.72])).astype(np.uint8)
    assert detect_capture(yellowed, 200) == "scan"  # old paper is not toner
    page = text_page(150, 210, 297)
    photo = on_desk(page, np.float32([[180, 160], [1150, 120], [1220, 1500], [140, 1560]]), (1400, 1700))
    assert detect_capture(photo, 72) == "photo"
    # a rotated scan on a scanner's black canvas is no photo: borders and skew are handled as ever
    canvas = cv2.warpAffine(np.dstack([page] * 3), cv2.getRotationMatrix2D((620, 877), 8, 0.8), (1240, 1754),
                            borderValue=(25, 25, 25))  # fmt: skip
    assert detect_capture(canvas, 150) != "photo"


def test_the_capture_and_the_reading_kept_are_recorded_in_the_page_flags():
    page, text = read(raster(np.dstack([text_page(300)] * 3), 300))
    assert capture_of(page) == "scan" and "capture:scan" in page.flags
    assert page.flags[-1] == "reading:cleaned"  # a clean scan, read with confidence: read once
    assert cer(text) < 0.02


# --- anisotropic resolution (fax) ----------------------------------------------------------------


def test_a_fax_at_200_by_100_dpi_is_loaded_with_square_pixels_and_reads():
    grey = text_page(200)
    squashed = cv2.resize(grey, (grey.shape[1], grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
    fax = Image.fromarray(np.where(squashed < 140, 0, 255).astype(np.uint8)).convert("1")
    buf = io.BytesIO()
    fax.save(buf, format="TIFF", compression="group4", dpi=(200, 100))
    data = buf.getvalue()
    loaded = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert loaded.dpi == 200
    assert loaded.image.shape == (2 * squashed.shape[0], squashed.shape[1])  # lines repeated: square pixels
    assert set(np.unique(loaded.image)) <= {0, 255}  # still bitonal, so still recognised as a fax
    page, text = read(loaded)
    assert capture_of(page) == "fax"
    assert cer(text) < 0.03, text
    # read as the file has it (squashed), Tesseract does far worse
    as_is = ProcessedPage(page=1, color=np.asarray(fax.convert("L")), ocr_image=np.asarray(fax.convert("L")), dpi=200,
                          skew_angle=0.0, orientation=0, source_sha256="0" * 64)  # fmt: skip
    _w, squashed_text, *_ = ocr_page(as_is, replace(OCR, full_resolution_pages=1), LIMITS, text_pdf=False)
    assert cer(squashed_text) > 2 * cer(text) + 0.02


def fax_file(grey: np.ndarray, level: int = 140) -> tuple[bytes, np.ndarray]:
    """``grey`` (200 dpi) sent as a standard-resolution fax: every other scan line, bitonal, CCITT
    group 4 at 200 × 100 dpi. Returns the file and its ink rows (True = ink)."""
    squashed = cv2.resize(grey, (grey.shape[1], grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
    ink = squashed < level
    return _g4(ink), ink


def _g4(ink: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).convert("1").save(
        buf, format="TIFF", compression="group4", dpi=(200, 100))
    return buf.getvalue()


def test_a_scan_line_a_fax_lost_across_a_line_of_text_is_restored_as_the_page_loads():
    # a fax sent a little askew (as every fax is) lost one scan line across the middle of the second
    # line of text: every letter of it cut in two. Restored in the file's own scan lines, before the
    # page is squared and deskewed (after deskewing the white row is no longer one row of pixels)
    tilted = np.asarray(Image.fromarray(text_page(200)).rotate(0.8, resample=Image.Resampling.BILINEAR,
                                                               fillcolor=255, expand=True))  # fmt: skip
    data, ink = fax_file(tilted)
    counts = np.count_nonzero(ink, axis=1)
    second = [y for y in range(len(counts)) if counts[y] > 0]
    rows = np.split(np.array(second), np.flatnonzero(np.diff(second) > 1) + 1)  # the lines of text, as rows
    cut = int(rows[1][len(rows[1]) // 2])  # mid x-height of the number's line
    lost = ink.copy()
    lost[cut] = False
    loaded = render_page(_g4(lost), probe(_g4(lost), LIMITS), 1, LIMITS)
    assert loaded.notes == ("scan_lines_restored:1",)
    restored = loaded.image[::2] < 128  # the file's own rows (each repeated once when squared)
    sent = np.count_nonzero(ink[cut])
    assert np.count_nonzero(restored[cut] & ink[cut]) >= 0.5 * sent  # most of the strokes it cut ...
    assert np.count_nonzero(restored[cut] & ~ink[cut]) <= 0.05 * sent  # ... and next to nothing else
    assert np.array_equal(np.delete(restored, cut, axis=0), np.delete(ink, cut, axis=0))  # the rest untouched
    page, text = read(loaded)
    assert "scan_lines_restored:1" in page.flags
    assert "476/TB-VPCP" in text and cer(text) < 0.03, text
    # the same fax with nothing lost: nothing restored (the white rows between lines stay white)
    intact = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert intact.notes == ()
    assert np.array_equal(intact.image[::2] < 128, ink)


# --- speckle ------------------------------------------------------------------------------------


def test_speckle_is_removed_by_component_size_and_every_glyph_pixel_is_kept():
    ink = text_page(200) < 128
    rng = np.random.default_rng(3)
    noisy = ink.copy()
    h, w = ink.shape
    for y, x in zip(rng.integers(0, h - 2, 400), rng.integers(0, w - 3, 400), strict=True):
        noisy[y : y + rng.integers(1, 3), x : x + rng.integers(1, 4)] = True
    speckle = noisy & ~ink
    far = speckle & ~cv2.dilate(ink.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    out, removed = remove_speckle(noisy, 200)
    assert removed > 250
    assert np.count_nonzero(out & far) <= 0.02 * np.count_nonzero(far)  # isolated specks gone
    # every pixel of the text — diacritics, the dots of i, full stops — is still there: by size
    # and isolation, not by blurring
    assert np.count_nonzero(ink & ~out) <= 0.002 * np.count_nonzero(ink)


def test_a_speckled_fax_reads_and_speckle_is_not_read_as_punctuation():
    grey = text_page(200)
    bitonal = grey < 140
    rng = np.random.default_rng(11)
    h, w = bitonal.shape
    for y, x in zip(rng.integers(0, h - 2, 600), rng.integers(0, w - 3, 600), strict=True):
        bitonal[y : y + rng.integers(1, 3), x : x + rng.integers(1, 4)] = True
    page, text = read(raster(np.where(bitonal, 0, 255).astype(np.uint8), 200))
    assert any(f.startswith("despeckled:") for f in page.flags)
    assert "Số: 476/TB-VPCP" in text
    assert cer(text) < 0.03, text


RECIPIENTS = ["Nơi nhận:", "- Như trên;", "- Bộ Nội vụ;", "- Lưu: VT, VP."]


def fax_ink(lines: list[str], pt: float, level: int) -> np.ndarray:
    """``lines`` at ``pt`` as a 200 × 100 dpi fax brings them, squared by the load stage (every
    scan line twice): the ink mask at 200 dpi."""
    px = 200 / 25.4
    image = Image.new("L", (round(90 * px), round(40 * px)), 255)
    draw = ImageDraw.Draw(image)
    size = round(pt * 200 / 72)
    for i, line in enumerate(lines):
        draw.text((round(8 * px), round(5 * px) + i * round(size * 1.3)), line, fill=0, font=font(SERIF, size))
    grey = cv2.GaussianBlur(np.asarray(image), (0, 0), 0.6)
    half = cv2.resize(grey, (grey.shape[1], grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return np.repeat(half < level, 2, axis=0)


@pytest.mark.parametrize("level", [135, 150])
def test_the_dashes_of_the_recipient_list_on_a_fax_are_no_speckle(level):
    # Decree 30's "Nơi nhận" list at 11 pt: each "-" is a bar about 8 × 2 pixels on a fax,
    # smaller in area than speckle and a word space from its line; it is a dash by its shape
    ink = fax_ink(RECIPIENTS, 11, level)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    margin = round(8.5 * 200 / 25.4)
    dashes = [i for i in range(1, n) if stats[i, cv2.CC_STAT_LEFT] < margin and stats[i, cv2.CC_STAT_HEIGHT] <= 4]
    assert len(dashes) == 3
    out, _removed = remove_speckle(ink, 200)
    for i in dashes:
        assert out[labels == i].all()
    # specks of the same area, scattered, still go
    rng = np.random.default_rng(level)
    specks = np.zeros_like(ink)
    for y, x in zip(rng.integers(0, ink.shape[0] - 4, 200), rng.integers(0, ink.shape[1] - 3, 200), strict=True):
        specks[y : y + 2 * rng.integers(1, 3), x : x + rng.integers(1, 4)] = True  # 1–2 fax lines, doubled
    specks &= ~cv2.dilate(ink.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    out, _removed = remove_speckle(ink | specks, 200)
    assert np.count_nonzero(out & specks) <= 0.02 * np.count_nonzero(specks)


@pytest.mark.parametrize(("pt", "level"), [(11, 150), (11, 165), (13, 135), (13, 150), (13, 165)])
def test_the_dots_of_colons_and_semicolons_on_a_fax_are_no_speckle(pt, level):
    # a semicolon's dot is one or two scan lines on a 200 × 100 dpi fax, as small as a speck and,
    # after a digit, farther from its letter than a speck near a letter: "11;" read "11,"
    ink = fax_ink(["Số: 476/TB-VPCP; ngày 20 tháng 11;", "sau: thực hiện; báo cáo: ngay;"], pt, level)
    out, removed = remove_speckle(ink, 200)
    assert removed == 0 and np.array_equal(out, ink)


# --- phone photo -----------------------------------------------------------------------------


def test_a_photographed_page_is_found_rectified_at_its_real_resolution_and_read():
    page = text_page(150, 210, 297)  # a whole A4 sheet at 150 dpi, the text at its top
    corners = np.float32([[260, 210], [1430, 150], [1500, 1840], [190, 1900]])
    photo = on_desk(page, corners, (1700, 2100))
    found = page_quadrilateral(photo)
    assert found is not None
    assert np.abs(found - corners).max() < 0.015 * 1700
    flat, dpi = rectify(photo, found)
    assert abs(flat.shape[1] / flat.shape[0] - 210 / 297) < 0.02
    assert 130 <= dpi <= 160  # the sheet's width over A4's, not the 72 a phone declares
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=90, dpi=(72, 72))
    data = buf.getvalue()
    loaded = render_page(data, probe(data, LIMITS), 1, LIMITS)
    processed, text = read(replace(loaded, image=loaded.image))
    assert capture_of(processed) == "photo"
    assert any(f.startswith("rectified:") for f in processed.flags)
    assert cer(text) < 0.03, text


# --- the fallback ------------------------------------------------------------------------------


def peppered(grey: np.ndarray) -> np.ndarray:
    """A clean-up gone wrong: 8 % of the pixels turned black (Tesseract reads nothing)."""
    out = grey.copy()
    out[np.random.default_rng(1).random(grey.shape) < 0.08] = 0
    return out



def test_a_page_the_cleanup_spoilt_falls_back_to_the_plain_reading():
    grey = text_page(300)
    spoilt = peppered(grey)
    page = ProcessedPage(page=1, color=grey, ocr_image=spoilt, dpi=300, skew_angle=0.0, orientation=0,
                         source_sha256="0" * 64, flags=["capture:fax"])  # fmt: skip
    _w, text, conf, *_ = ocr_page(page, OCR, LIMITS, text_pdf=False)
    assert page.flags[-1] == "reading:plain"
    assert cer(text) < 0.02, text
    # the other way round: the plain page is the bad one, the cleaned reading is kept
    page = ProcessedPage(page=1, color=spoilt, ocr_image=grey, dpi=300, skew_angle=0.0, orientation=0,
                         source_sha256="0" * 64, flags=["capture:fax"])  # fmt: skip
    _w, text, *_ = ocr_page(page, OCR, LIMITS, text_pdf=False)
    assert page.flags[-1] == "reading:cleaned_over_plain"
    assert cer(text) < 0.02, text


def test_a_plain_reading_better_by_less_than_chance_is_not_kept():
    # a last page — signature block and recipients, ~30 syllables: the cleaned reading has two
    # signature strokes read as words, the plain one one; its score is higher by 0.013, under the
    # sampling error of a share of 30 syllables (~0.05): the cleaned reading (in its own order) stays
    body = "Nơi nhận: các xã, phường, thị trấn; Bộ Nội vụ; các phòng, đơn vị trực thuộc; Trung tâm Phục vụ hành chính công; Lưu: VT, VP"
    cleaned, plain = f"BỘ TRƯỞNG TNh Đôö Đức Hoài Hạnh {body}", f"{body} BỘ TRƯỞNG Đỗ Đức Hoài Hạnh"
    assert reading_score(plain, 91.0) > reading_score(cleaned, 92.3) + 0.01
    assert not plain_is_better(cleaned, 92.3, plain, 91.0)
    # on a full page the same words are a small share: a clearly better plain reading is kept
    page = " ".join([body] * 12)
    assert score_noise(f"TNh Đôö {page}") < 0.015 < score_noise(cleaned)
    assert plain_is_better(f"TNh Đôö xyq {page}", 90.0, f"Đỗ {page}", 92.0)


def test_a_doubtful_scan_is_read_plain_too_and_a_confident_one_is_not():
    grey = text_page(300)
    spoilt = peppered(grey)
    page = ProcessedPage(page=1, color=grey, ocr_image=spoilt, dpi=300, skew_angle=0.0, orientation=0,
                         source_sha256="0" * 64, flags=["capture:scan"])  # fmt: skip
    _w, text, *_ = ocr_page(page, OCR, LIMITS, text_pdf=False)
    assert page.flags[-1] == "reading:plain"  # nothing read on the cleaned copy: read plain, kept
    assert cer(text) < 0.02, text


# --- typewriter ------------------------------------------------------------------------------


TYPED = [
    "Thực hiện chỉ đạo của Thủ tướng Chính phủ, các cơ quan",
    "chủ động rà soát, xử lý kịp thời những vướng mắc trong",
    "việc lập hồ sơ, tiếp nhận và giải quyết thủ tục hành",
    "chính; bảo đảm thống nhất, liên thông giữa các cấp,",
    "công khai, minh bạch thông tin theo đúng quy định.",
    "Trường hợp phát sinh khó khăn, vướng mắc, kịp thời",
    "báo cáo Thủ tướng Chính phủ xem xét, quyết định.",
]


def test_typewritten_text_reads_is_kept_and_passes_the_quality_gate():
    from pipeline.stages.quality import assess_page_text

    grey = text_page(300, 170, 95, path=MONO, lines=TYPED)
    faded = (255 - (255 - grey.astype(np.float32)) * 0.55).astype(np.uint8)  # a worn ribbon
    page, text = read(raster(faded, 300))
    assert "monospace" in page.flags
    truth = " ".join(TYPED)
    assert Levenshtein.distance(" ".join(text.split()), truth) / len(truth) < 0.015, text
    for word in ("xử lý", "lập hồ sơ", "liên thông"):  # a monospace "l" is no "L"
        assert word in text
    _w, text, conf, *_ = ocr_page(page, OCR, LIMITS, text_pdf=False)
    assert assess_page_text(text, conf, OCR).credible
    serif, _ = read(raster(text_page(300, 170, 95, lines=TYPED), 300))
    assert "monospace" not in serif.flags


def test_a_misread_word_in_a_line_of_text_is_kept_and_a_scribble_is_dropped():
    def word(text: str, conf: float, x: int, line: int = 0, h: int = 40) -> Word:
        return Word(text=text, conf=conf, bbox=(x, 100 * line, x + 80, 100 * line + h), line=line)

    body = 2 * "Quyết định của Thủ tướng Chính phủ về việc cải cách thủ tục hành chính trong năm".split()
    line = [word(t, 95, 100 * (i % 8), line=i // 8) for i, t in enumerate(body)]
    misread = word("thôíág", 40, 800)  # a typewriter's stacked diacritics: "thống"
    far = word("lồdên", 40, 2000)  # letters, but far out on the line: a scribble in the other column
    scribble = word("Vv^*x", 20, 100, line=3, h=90)  # a signature, alone on its line
    soup = word("z/#", 30, 700)  # not letters: not text, wherever it is
    dropped = non_text_words([*line, misread, far, soup, scribble], 60.0)
    assert misread not in dropped
    assert scribble in dropped and soup in dropped and far in dropped


# --- a seal without colour -------------------------------------------------------------------


def grey_seal(page: np.ndarray, dpi: int, centre_mm: tuple[float, float], level: int = 140) -> np.ndarray:
    """``page`` with a round seal multiplied on in grey (a grey scan, a photocopy, a fax: no red to
    tell it by): a 31 mm double ring, lettering around, a star."""
    px = dpi / 25.4
    cx, cy, r = round(centre_mm[0] * px), round(centre_mm[1] * px), 15.5 * px
    layer = np.zeros(page.shape, np.uint8)
    cv2.circle(layer, (cx, cy), round(r), 255, max(2, round(0.9 * px)))
    cv2.circle(layer, (cx, cy), round(0.62 * r), 255, max(1, round(0.45 * px)))
    for k in range(24):  # lettering: short strokes around the ring
        a = 2 * np.pi * k / 24
        p0 = (round(cx + 0.76 * r * np.cos(a)), round(cy + 0.76 * r * np.sin(a)))
        p1 = (round(cx + 0.88 * r * np.cos(a + 0.05)), round(cy + 0.88 * r * np.sin(a + 0.05)))
        cv2.line(layer, p0, p1, 255, max(1, round(0.4 * px)))
    star = [(cx + (0.28 if k % 2 == 0 else 0.11) * r * np.cos(-np.pi / 2 + k * np.pi / 5),
             cy + (0.28 if k % 2 == 0 else 0.11) * r * np.sin(-np.pi / 2 + k * np.pi / 5)) for k in range(10)]  # fmt: skip
    cv2.fillPoly(layer, [np.round(star).astype(np.int32)], 255)
    cover = layer.astype(np.float32) / 255.0
    return (page * (1 - cover) + np.minimum(page, level) * cover).astype(np.uint8)


def test_a_round_seal_without_colour_is_found_by_its_ring_and_text_is_no_seal():
    from pipeline.stages.cleanup import round_seal

    page = text_page(300, 170, 95)
    assert round_seal(page, 300) is None  # lines of text, an "O", a "Q": no ring of seal size
    for dpi, level in ((300, 150), (200, 0)):
        sealed = grey_seal(text_page(dpi, 170, 95), dpi, (120, 45), level)
        if level == 0:  # a fax: bitonal
            sealed = np.where(sealed < 128, 0, 255).astype(np.uint8)
        found = round_seal(sealed, dpi)
        assert found is not None
        x, y, r = (v * 25.4 / dpi for v in found)
        assert abs(x - 120) < 1.5 and abs(y - 45) < 1.5 and abs(r - 15.5) < 1.5


def _ribbon(page: Image.Image, seed: int) -> np.ndarray:
    """A typewritten page in a worn ribbon's uneven grey: strike strength varying within a few
    characters, ribbon grain, grey paper (a grey PNG: the seal has no colour left)."""
    grey = np.asarray(page.convert("L"), dtype=np.float32)
    rng = np.random.default_rng(seed)
    h, w = grey.shape
    small = rng.random((h // 18 + 2, w // 18 + 2)).astype(np.float32)
    strike = 0.35 + 0.3 * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    out = 228 * (1 - (1 - grey / 255) * strike * rng.uniform(0.75, 1.0, (h, w)).astype(np.float32))
    return (cv2.GaussianBlur(out, (0, 0), 0.7) + rng.normal(0, 4, (h, w))).clip(0, 255).astype(np.uint8)


def test_the_signature_block_of_a_grey_page_reads_with_its_seal_blanked():
    from pathlib import Path

    from samples import render as render_module
    from samples.specs import synthetic_specs

    mono = tuple([Path("/usr/share/fonts/truetype/liberation2") / f"LiberationMono-{s}.ttf"]
                 for s in ("Regular", "Bold", "Italic", "BoldItalic"))  # fmt: skip
    if not all(p[0].exists() for p in mono):
        pytest.skip("Liberation Mono not installed")
    render_module.FONT_FAMILIES.setdefault("mono", mono)
    spec = next(s for s in synthetic_specs(10, seed=3) if s.number == "890/TB-BTC")  # a train document
    rendered = render_module.render(spec, font="mono", dpi=300, body_pt=13.0)
    last, truth = rendered.pages[-1], " ".join(rendered.page_texts[-1].split())
    sealed = RasterPage(page=len(rendered.pages), image=_ribbon(last, 1), dpi=300, sha256="0" * 64)
    page, text = read(sealed)
    # the ring joined the title and the recipient list into lines of its own; without it the
    # block reads (the seal's grey lettering and star are not read as words either)
    assert "BỘ TRƯỞNG" in text and "- Lưu: VT, VP." in text, text
    assert Levenshtein.distance(" ".join(text.split()), truth) / len(truth) < 0.05, text
    assert "round_seal_blanked" in page.flags
    # a colour page's seal is told by its red, and never blanked as a ring
    colour = cleanup_page(deskew_page(raster(np.asarray(last.convert("RGB")), 300), IMAGE), IMAGE)
    assert "seal_suppressed" in colour.flags and "round_seal_blanked" not in colour.flags


# --- misreadings a capture makes, respelt by the dictionary ---------------------------------------


def _words(text: str) -> list[Word]:
    return [Word(text=t, conf=95.0, bbox=(60 * i, 0, 60 * i + 50, 40), line=0) for i, t in enumerate(text.split())]


def _respell(text: str, alternatives) -> str:
    from pipeline.stages.ocr import restore_by_compounds

    words, _n = restore_by_compounds(_words(text), alternatives)
    return " ".join(w.text for w in words)


def test_a_fax_hook_above_read_as_an_acute_is_respelt_where_the_dictionary_decides():
    from pipeline.stages.ocr import fax_hook_acute

    assert _respell("Thú tướng Chính phú giao", fax_hook_acute) == "Thủ tướng Chính phủ giao"
    assert _respell("đạo và tố chức thực hiện", fax_hook_acute) == "đạo và tổ chức thực hiện"
    assert _respell("dài, đùn đấy trách nhiệm", fax_hook_acute) == "dài, đùn đẩy trách nhiệm"
    assert _respell("THÔNG BẢO Kết luận", fax_hook_acute) == "THÔNG BÁO Kết luận"
    # never: a word that forms a word as read, stands alone, or pairs only with a neighbour
    # already taken by its other side or across punctuation or a name
    for text in ("Ủy ban nhân dân cấp tỉnh quy định", "có hiệu lực kể từ ngày ký", "để thực hiện",
                 "kết quả đánh giá Bộ Tư pháp", "số lượng"):  # fmt: skip
        assert _respell(text, fax_hook_acute) == text


def test_a_lost_bar_of_d_and_two_misread_neighbours_are_respelt_where_the_dictionary_decides():
    from pipeline.stages.ocr import fax_misreadings

    assert _respell("quy dịnh kinh doanh", fax_misreadings) == "quy định kinh doanh"
    assert _respell("Cổng thông tin diện tứ của", fax_misreadings) == "Cổng thông tin điện tử của"  # both, together
    assert _respell("xây đựng cơ sở đữ liệu về đân cư", fax_misreadings) == "xây dựng cơ sở dữ liệu về dân cư"  # a speck on a d
    for text in ("dự án đầu tư", "doanh nghiệp dân doanh", "đi du lịch", "để thực hiện"):  # words as read: untouched
        assert _respell(text, fax_misreadings) == text


def test_a_word_is_respelt_with_its_neighbour_across_a_line_wrap_not_across_blocks():
    from pipeline.stages.ocr import fax_misreadings, restore_by_compounds

    def respelt(block_of_second_line: int) -> str:
        words = [w.model_copy(update={"line": 0 if i < 4 else 1, "block": 0 if i < 4 else block_of_second_line})
                 for i, w in enumerate(_words("giao cho các tố chức thực hiện"))]  # fmt: skip
        return " ".join(w.text for w in restore_by_compounds(words, fax_misreadings)[0])

    assert respelt(0) == "giao cho các tổ chức thực hiện"  # "tố | chức": a paragraph's line wrapped
    assert respelt(1) == "giao cho các tố chức thực hiện"  # another block: no phrase across it


def test_a_speck_read_as_a_full_stop_in_mid_sentence_on_a_fax_goes():
    from pipeline.stages.ocr import stray_full_stops

    def unstopped(text: str, lines: list[int] | None = None) -> str:
        words = _words(text)
        if lines:
            words = [w.model_copy(update={"line": n}) for w, n in zip(words, lines, strict=True)]
        return " ".join(w.text for w in stray_full_stops(words)[0])

    assert unstopped("bảo đảm quyền. lợi của phòng. ban") == "bảo đảm quyền lợi của phòng ban"
    # a sentence's end (a capital next), an abbreviation, a number, an ellipsis, the end of a line
    for text in ("được giao. Các bộ", "v.v. và các", "TP. hồ", "năm 2021. các", "như sau... các"):
        assert unstopped(text) == text
    assert unstopped("đến nay. thực hiện", [0, 0, 1, 1]) == "đến nay. thực hiện"


def test_a_monospace_l_read_as_t_is_respelt_where_the_dictionary_decides():
    from pipeline.stages.ocr import typewriter_tee

    assert _respell("nâng cao chất tượng cung cấp", typewriter_tee) == "nâng cao chất lượng cung cấp"
    assert _respell("tăng cường kỷ tuật, kỷ cương", typewriter_tee) == "tăng cường kỷ luật, kỷ cương"
    assert _respell("các ngành tĩnh vực còn", typewriter_tee) == "các ngành lĩnh vực còn"
    for text in ("thực hiện tại Bộ", "người tiên phong", "tên gọi"):
        assert _respell(text, typewriter_tee) == text


# --- a slash read as a fraction slash -------------------------------------------------------------

URL_LINES = [
    "Tổ chức lấy ý kiến người dân, doanh nghiệp",
    "tại địa chỉ https://nq68.baocaochinhphu.gov.vn, phản",
    "ánh kịp thời theo Công văn số 541/TTr-UBND và",
    "Nghị định số 45/2020/NĐ-CP về thủ tục điện tử.",
]
URL = "https://nq68.baocaochinhphu.gov.vn,"


def test_a_typewritten_slash_is_read_as_a_slash_and_a_web_address_is_kept():
    from pipeline.stages.ocr import is_plausible_token, parse_tsv
    from samples.degrade import rotate

    grey = Image.fromarray(text_page(300, 190, 70, path=MONO, lines=URL_LINES))
    texts = []
    for seed in range(6):  # worn ribbons, slightly skewed sheets
        typed = _ribbon(grey, seed)
        typed = rotate(np.dstack([typed] * 3), 0.8 if seed % 2 else -0.6, (228,) * 3)[..., 0]
        texts.append(read(raster(typed, 300))[1])
    # Tesseract reads a monospace "/" as U+2044 FRACTION SLASH on some of these ("https:⁄/nq68")
    assert not any("\u2044" in t for t in texts), texts
    assert sum(URL in t.split() for t in texts) >= 3, texts
    assert all("541/TTr-UBND" in t and "45/2020/NĐ-CP" in t for t in texts), texts
    # a word read so with a low confidence is a web address, not symbol soup to drop
    row = "5\t1\t1\t1\t1\t1\t100\t200\t900\t50\t54.3\thttps:\u2044/nq68.baocaochinhphu.gov.vn,"
    (word,) = parse_tsv("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n" + row)
    assert word.text == URL and is_plausible_token(word.text)
    assert non_text_words([word], 60.0) == []


# --- reading order of a page whose rules and marks a capture lost ---------------------------------


def _decree_page(dpi: int, gap: float, recipients_label: str) -> np.ndarray:
    """The header and closing tables of a Decree 30 page, 13 pt, no rules under the issuing
    body's name and the motto, header lines ``gap`` line heights apart."""
    px = dpi / 25.4
    image = Image.new("L", (round(190 * px), round(150 * px)), 255)
    draw = ImageDraw.Draw(image)
    size = round(13 * dpi / 72)
    face, bold = font(SERIF, size), font(SERIF.replace("Regular", "Bold"), size)

    def centred(text: str, x_mm: float, y: int, f: ImageFont.FreeTypeFont = face) -> None:
        draw.text((round(x_mm * px - draw.textlength(text, font=f) / 2), y), text, fill=0, font=f)

    step = round(size * gap)
    top = round(8 * px)
    for i, (left, right) in enumerate([("ỦY BAN NHÂN DÂN", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
                                       ("TỈNH LÂM ĐỒNG", "Độc lập - Tự do - Hạnh phúc"),
                                       ("Số: 541/TTr-UBND", "Lâm Đồng, ngày 01 tháng 4 năm 2025")]):  # fmt: skip
        centred(left, 45, top + i * step)
        centred(right, 130, top + i * step)
    y = top + 3 * step + round(size * 1.5)
    for line in ("Ủy ban nhân dân tỉnh Lâm Đồng đề nghị các cơ quan, đơn vị quan tâm,",
                 "phối hợp thực hiện cải cách thủ tục hành chính theo kế hoạch./."):  # fmt: skip
        draw.text((round(15 * px), y), line, fill=0, font=face)
        y += round(size * 1.5)
    y += round(size * 0.8)
    for i, line in enumerate((recipients_label, "- UBND các xã, phường;", "- Lưu: VT, VX.")):
        draw.text((round(15 * px), y + i * round(size * 1.3)), line, fill=0, font=bold if i == 0 else face)
    centred("KT. CHỦ TỊCH", 135, y, bold)
    centred("PHÓ CHỦ TỊCH", 135, y + round(size * 1.3), bold)
    centred("Phan Hoàng Nam", 135, y + round(size * 5), bold)
    return np.asarray(image)


@pytest.mark.parametrize("gap", [1.15, 1.3])
def test_number_date_and_signature_are_read_in_order_when_rules_and_marks_are_lost(gap):
    # a fax loses the rules under the name and the motto (the number line comes close under the
    # name, the date under the motto) and turns "Nơi" into "Nởi": Decree 30's order still holds
    _page, text = read(raster(_decree_page(300, gap, "Nởi nhận:"), 300))
    flat = " ".join(text.split())
    order = ["ỦY BAN NHÂN DÂN", "CỘNG HÒA XÃ HỘI", "Hạnh phúc", "Số: 541/TTr-UBND",
             "Lâm Đồng, ngày 01", "Ủy ban nhân dân tỉnh", "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Phan Hoàng Nam",
             "Nởi nhận:", "- UBND các xã", "- Lưu: VT, VX."]  # fmt: skip
    at = [flat.find(part) for part in order]
    assert -1 not in at and at == sorted(at), (at, text)


# --- a row of marks a fax tore off its capitals ----------------------------------------------------


def test_a_row_of_marks_on_a_fax_is_not_read_as_a_line_of_text(monkeypatch):
    """On a fax (100 dpi vertically) Tesseract reads the marks above a line of capitals, come
    apart from their letters, and specks as a line of their own ("my 9/2 m4 1y", "ca"): that
    line goes (:func:`mark_rows`, :data:`LETTER_MIN_HEIGHT`, :data:`LONE_LETTER_GAP`), nothing
    else does. The page: the benchmark's third fax page of the ``train`` split (Liberation Serif,
    rendered and faxed by benchmarks/ocr_quality.py; on the first, since lost scan lines are
    restored as the page loads, no marks come apart any more)."""
    import importlib.util
    import sys
    from pathlib import Path

    import pipeline.stages.ocr as ocr_module
    from samples import render as render_module

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ocr_quality.py"
    spec = importlib.util.spec_from_file_location("ocr_quality_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    job = [j for j in bench.capture_plan(6, "train") if j.capture == "fax"][2]
    rendered = render_module.render(bench._spec(job.doc), font=job.font, dpi=200, body_pt=14.0)
    p = job.page % len(rendered.pages)
    data, _ = bench.degrade_fax(rendered.pages[p], np.random.default_rng(job.seed))
    truth = " ".join(rendered.page_texts[p].split())
    loaded = render_page(data, probe(data, LIMITS), 1, LIMITS)

    def page_cer(text: str) -> float:
        return Levenshtein.distance(" ".join(text.split()), truth) / len(truth)

    page, text = read(loaded)
    assert capture_of(page) == "fax"
    monkeypatch.setattr(ocr_module, "MARK_ROW_MAX_HEIGHT", 0.0)  # every line kept ...
    monkeypatch.setattr(ocr_module, "LETTER_MIN_HEIGHT", 0.0)  # ... and every speck read as letters
    monkeypatch.setattr(ocr_module, "_lone_letters", lambda words, gap: set())  # ... and every lone letter
    _page, kept = read(loaded)
    assert page_cer(text) < page_cer(kept), (text, kept)
    lines, kept_lines = text.splitlines(), kept.splitlines()
    gone = [line for line in kept_lines if line not in lines]
    assert gone and all(len(line.split()) <= 8 and len(line) <= 30 for line in gone), gone  # short rows only
    assert [line for line in lines if line not in kept_lines] == [], text  # nothing else changed


def test_a_signature_scribble_or_a_speck_read_as_letters_is_no_text():
    from pipeline.stages.ocr import is_plausible_token

    # "SỏSsS" is no abbreviation: its case flips back and forth; initials with one run of small
    # letters are, and so is one a speck gave a mark
    assert not is_plausible_token("——.SỏSsS")
    for token in ("VẶX.", "TTg", "PTTg,", "TTgCP", "HĐND", "NĐ-CP", "541/TTr-UBND", "UBND"):
        assert is_plausible_token(token), token

    def word(text: str, conf: float, x: int, h: int = 45, line: int = 0) -> Word:
        return Word(text=text, conf=conf, bbox=(x, 100 * line + 45 - h, x + 60, 100 * line + 45), line=line)

    body = 3 * "Thủ tướng các Phó Thủ tướng Chính phủ Văn phòng Chính phủ các Vụ Cục".split()
    page = [word(t, 95, 100 * (i % 8), line=i // 8) for i, t in enumerate(body)]
    scribble = word("——.SỏSsS", 0.0, 1800, h=31, line=8)
    specks = [word("ác", 1.4, 1183, h=3, line=9), word("SN", 17.2, 928, h=7, line=10),  # 3–7 px on a 45 px page
              word("v42", 46.6, 1835, h=112, line=11)]  # a signature's loop
    kept = [word("-", 20.0, 400, h=3, line=12), word(".", 19.5, 500, h=7, line=12), word("ác", 30.0, 600, line=13),
            word("CHỈ", 40.0, 700, h=60, line=14)]  # a larger heading
    dropped = non_text_words([*page, scribble, *specks, *kept], 60.0)
    assert scribble in dropped and all(w in dropped for w in specks)
    assert not any(w in dropped for w in kept) and not any(w in dropped for w in page)


def test_a_lone_unsure_letter_in_a_gutter_is_no_text_and_keeps_the_closing_table_whole():
    # page 111 of the fax captures: "ị" (47 %, one glyph) read on a row of its own in the gutter
    # between the recipients list and the signature block, near the page's centre like a page
    # number, ended the closing table's band: the signer's name was read after the recipients
    def word(text: str, conf: float, x: int, y: int, line: int, w: int = 60) -> Word:
        return Word(text=text, conf=conf, bbox=(x, y, x + w, y + 45), line=line)

    recipients = ["Nơi nhận:", "- UBND các xã;", "- Bộ Nội vụ;", "- Lưu: VT, VP."]
    words = []
    for n, text in enumerate(recipients):
        words += [word(t, 95, 100 + 100 * i, 100 * n, n) for i, t in enumerate(text.split())]
    words += [word(t, 95, 1600 + 100 * i, 0, 0) for i, t in enumerate(["KT.", "CHỦ", "TỊCH"])]
    speck = word("ị", 47.0, 970, 250, 9, w=11)  # its own row, at the centre of the text width
    name = [word(t, 95, 1550 + 100 * i, 600, 6) for i, t in enumerate(["Phan", "Hoàng", "Nam"])]
    kept = [word("ở", 40.0, 100, 800, 7), word("đây", 95, 160, 800, 7)]  # a word space from its line
    page = [*words, speck, *name, *kept]
    assert non_text_words(page, 60.0) == [speck]
    for dropped, right in (({id(speck)}, True), (set(), False)):
        order = [w.text for w in reading_order(page, dropped)]
        assert (order.index("Nam") < order.index("Nơi")) is right, order  # signature block first


def test_a_line_of_low_unsure_marks_on_a_fax_is_a_row_of_marks_and_a_page_number_is_not():
    from pipeline.stages.ocr import mark_rows

    def word(text: str, conf: float, x: int, line: int, h: int = 45) -> Word:
        return Word(text=text, conf=conf, bbox=(x, 100 * line + 45 - h, x + 60, 100 * line + 45), line=line)

    marks = [word("1y", 0.0, 460, 0, h=12), word("my", 42.4, 586, 0, h=22), word("9/2", 23.2, 652, 0, h=35),
             word("m4", 39.6, 990, 0, h=13)]  # fmt: skip
    capitals = [word(t, 92.0, 460 + 150 * i, 1) for i, t in enumerate("THỦ TƯỚNG CHÍNH PHỦ".split())]
    body = [word(t, 95.0, 100 * i, 2) for i, t in enumerate("các bộ cơ quan ngang bộ thực hiện".split())]
    number = [word("2", 70.0, 1200, 3, h=33)]  # a page number: a digit, as tall as a capital
    short = [word("giao./.", 55.0, 100, 4, h=40)]  # a paragraph's last word, read unsure
    found = mark_rows([*marks, *capitals, *body, *number, *short])
    assert found == {id(w) for w in marks}


def test_a_page_whose_seal_was_blanked_is_read_once_unless_its_reading_is_doubtful():
    """Blanking a colourless seal does not by itself cost a second Tesseract pass (it was +35–50 %
    OCR time on such pages, and the plain reading won on none); a fax still gets one, and so does
    a seal page whose cleaned reading is doubtful."""
    import numpy as np

    from pipeline.stages.models import ProcessedPage
    from pipeline.stages.ocr import needs_plain_reading

    def page(*flags: str) -> ProcessedPage:
        grey = np.full((100, 100), 255, np.uint8)
        return ProcessedPage(page=1, color=grey, ocr_image=grey, dpi=300, skew_angle=0.0, orientation=0,
                             source_sha256="0" * 64, flags=list(flags))  # fmt: skip

    confident = ("Ủy ban nhân dân tỉnh Quảng Ngãi thông báo kết quả thực hiện nhiệm vụ phát triển "
                 "kinh tế xã hội năm 2024 và kế hoạch công tác của các sở, ban, ngành trên địa bàn tỉnh. ") * 3
    assert not needs_plain_reading(page("capture:scan", "round_seal_blanked"), confident, 95.0)
    assert needs_plain_reading(page("capture:fax", "round_seal_blanked"), confident, 95.0)
    assert needs_plain_reading(page("capture:scan", "round_seal_blanked"), confident, 40.0)
    assert needs_plain_reading(page("capture:scan", "round_seal_blanked"), "Thz qxw brrk zzt " * 20, 95.0)
