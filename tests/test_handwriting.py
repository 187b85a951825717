"""The handwritten-digit slot reader (pipeline.stages.extract.handwriting) on images the test draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.stages.extract import handwriting as hw

FONT_DIR = Path("/usr/share/fonts/truetype")
SERIF = FONT_DIR / "liberation2" / "LiberationSerif-Regular.ttf"
HAND = FONT_DIR / "dejavu" / "DejaVuSans-Bold.ttf"

needs_fonts = pytest.mark.skipif(not (SERIF.exists() and HAND.exists()), reason="fonts not installed")


def _text_ink(font: Path, text: str, px: int, shear: float = 0.0) -> np.ndarray:
    """Ink in [0, 1] of ``text``, slanted by ``shear`` (x shift per unit height, top to the right)."""
    f = ImageFont.truetype(str(font), px)
    left, t, r, b = f.getbbox(text)
    w, h = r - left + 8, b - t + 8
    pad = int(abs(shear) * h) + 4
    im = Image.new("L", (w + 2 * pad, h), 0)
    ImageDraw.Draw(im).text((pad + 4 - left, 4 - t), text, fill=255, font=f)
    if shear:
        im = im.transform(im.size, Image.AFFINE, (1, shear, -shear * h / 2, 0, 1, 0), resample=Image.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    xs = np.nonzero(a.max(axis=0) > 0.1)[0]
    return a[:, xs.min() : xs.max() + 1] if xs.size else a


def _page(middle: np.ndarray | None, pen=(20, 20, 20), gap: int = 18) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A strip of page: printed "Số:", the ``middle`` ink in ``pen`` colour, printed
    "/TB-UBND"; and the slot box a caller would take from the printed words' boxes."""
    left = _text_ink(SERIF, "Số:", 46)
    right = _text_ink(SERIF, "/TB-UBND", 46)
    mid_w = middle.shape[1] if middle is not None else 60
    H, W = 200, 40 + left.shape[1] + mid_w + right.shape[1] + 2 * gap + 40
    img = np.full((H, W, 3), 250, np.float32)
    base = 130

    def put(ink, x, colour):
        y0 = base - ink.shape[0]
        region = img[y0 : y0 + ink.shape[0], x : x + ink.shape[1]]
        region[:] = region * (1 - ink[..., None]) + np.array(colour, np.float32) * ink[..., None]

    x = 20
    put(left, x, (15, 15, 15))
    x0 = x + left.shape[1] + 2
    if middle is not None:
        put(middle, x0 + gap, pen)
    x1 = x0 + gap + mid_w + gap
    put(right, x1 + 2, (15, 15, 15))
    box = (x0, base - 80, x1, base + 25)
    return np.clip(img, 0, 255).astype(np.uint8), box


def test_model_file_loads_with_documented_shapes():
    path = hw.DEFAULT_MODEL_PATH
    assert path.exists()
    assert path.stat().st_size < 2_000_000
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickle
        assert int(z["feature_version"]) == hw.FEATURE_VERSION
        n_feat = 196 + 441 + 2
        assert z["mean"].shape == (n_feat,) and z["scale"].shape == (n_feat,)
        assert int(z["n_layers"]) == 2
        members = int(z["n_members"])
        assert members >= 1
        for j in range(members):
            hidden = z[f"m{j}_W1"].shape[1]
            assert z[f"m{j}_W1"].shape == (n_feat, hidden)
            assert z[f"m{j}_b1"].shape == (hidden,)
            assert z[f"m{j}_W2"].shape == (hidden, 11)
            assert z[f"m{j}_b2"].shape == (11,)
        assert list(z["labels"]) == [str(i) for i in range(10)] + ["reject"]
        assert float(z["temperature"]) > 0
    model = hw.load_model()
    assert model is hw.load_model()  # once per process
    p = model.predict_proba(np.zeros((2, n_feat), np.float32))
    assert p.shape == (2, 11) and np.allclose(p.sum(axis=1), 1)


@needs_fonts
@pytest.mark.parametrize("digits,shear", [("46", 0.25), ("07", 0.15), ("53", 0.35), ("239", 0.2)])
def test_slanted_digits_are_read_and_trusted(digits, shear):
    ink = _text_ink(HAND, digits, 52, shear=shear)
    page, box = _page(ink)
    r = hw.read_slot(page, box)
    assert r.text == digits, r
    assert r.trusted, r
    assert len(r.digits) == len(digits)
    for _label, _prob, (bx0, by0, bx1, by1) in r.digits:
        assert box[0] <= bx0 < bx1 <= box[2] + 2 and by0 < by1


@needs_fonts
def test_grey_page_and_single_digit_crops():
    ink = _text_ink(HAND, "8", 60, shear=0.2)
    crop = (255 - ink * 230).astype(np.uint8)
    blank = np.full((40, 30), 250, np.uint8)
    out = hw.classify_digits([crop, blank])
    assert out[0][0] == "8" and out[0][1] >= hw.TRUST_THRESHOLD
    assert out[1][0] is None


def test_empty_slot_reads_nothing():
    page = np.full((200, 500), 248, np.uint8)
    page += np.random.default_rng(0).integers(0, 4, page.shape, dtype=np.uint8)  # paper grain
    r = hw.read_slot(page, (100, 50, 300, 150))
    assert r.text is None and r.confidence == 0.0 and not r.trusted
    assert r.ink == "none" and r.digits == []


@needs_fonts
def test_empty_slot_between_printed_words():
    page, box = _page(None)
    r = hw.read_slot(page, box)
    assert r.text is None and not r.trusted


@needs_fonts
@pytest.mark.parametrize("text", ["/T", "/", "ố", "TS"])
def test_letters_and_slash_are_not_digits(text):
    ink = _text_ink(SERIF, text, 46)
    page, box = _page(ink, pen=(15, 15, 15))
    r = hw.read_slot(page, box)
    assert r.text is None, r
    assert not r.trusted


@needs_fonts
def test_blue_ink_is_handwritten():
    ink = _text_ink(HAND, "24", 52, shear=0.2)
    page, box = _page(ink, pen=(30, 60, 200))
    r = hw.read_slot(page, box)
    assert r.ink == "blue"
    assert r.handwritten
    assert r.text == "24"


@needs_fonts
def test_typed_number_in_the_printed_font_is_not_handwritten():
    ink = _text_ink(SERIF, "565", 46)
    page, box = _page(ink, pen=(15, 15, 15))
    r = hw.read_slot(page, box)
    assert r.ink == "black"
    assert not r.handwritten
    assert r.text in (None, "565")  # a typed number may be read; never another value


def test_box_outside_the_image_is_clamped():
    page = np.full((100, 100), 250, np.uint8)
    r = hw.read_slot(page, (90, 90, 400, 400))
    assert r.text is None and r.box == (90, 90, 100, 100)
