"""Load stage: every supported scan type opens; every kind of bad input fails with a typed error."""

import io

import numpy as np
import pikepdf
import pytest
from PIL import Image

from pipeline.runtime.config import LimitSettings
from pipeline.runtime.errors import (
    CorruptDocumentError,
    DecompressionBombError,
    EmptyFileError,
    EncryptedDocumentError,
    TooManyPagesError,
    UnsupportedFormatError,
)
from pipeline.stages.load import JPEG, PDF, PNG, TIFF, probe, render_page, sniff_media_type

LIMITS = LimitSettings(render_dpi=100)


def _page(text_value: int = 0, size=(827, 1169)) -> Image.Image:
    im = Image.new("RGB", size, "white")
    arr = np.asarray(im).copy()
    arr[100:120, 100 + text_value : 400 + text_value] = 0
    return Image.fromarray(arr)


def _pdf(pages: int = 2) -> bytes:
    buf = io.BytesIO()
    imgs = [_page(i * 10) for i in range(pages)]
    imgs[0].save(buf, format="PDF", save_all=True, append_images=imgs[1:], resolution=100)
    return buf.getvalue()


def _image(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    _page().save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_media_type_comes_from_magic_bytes_not_the_name():
    assert sniff_media_type(_pdf(1)) == PDF
    assert sniff_media_type(_image("PNG")) == PNG
    assert sniff_media_type(_image("JPEG")) == JPEG
    assert sniff_media_type(_image("TIFF")) == TIFF


def test_empty_file_is_rejected_as_empty():
    with pytest.raises(EmptyFileError, match="empty"):
        probe(b"", LIMITS)


def test_a_text_file_is_not_a_scan():
    with pytest.raises(UnsupportedFormatError, match="not a PDF, TIFF, JPEG or PNG"):
        probe("Kính gửi: Ủy ban nhân dân".encode(), LIMITS)


def test_truncated_pdf_is_reported_as_corrupt():
    data = _pdf(2)
    with pytest.raises(CorruptDocumentError):
        info = probe(data[: len(data) // 3], LIMITS)
        render_page(data[: len(data) // 3], info, 1, LIMITS)


def test_password_protected_pdf_is_reported_as_encrypted():
    src = pikepdf.open(io.BytesIO(_pdf(1)))
    buf = io.BytesIO()
    src.save(buf, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    with pytest.raises(EncryptedDocumentError, match="password"):
        probe(buf.getvalue(), LIMITS)


def test_multi_page_pdf_pages_are_rasterized_one_at_a_time():
    data = _pdf(3)
    info = probe(data, LIMITS)
    assert info.page_count == 3
    page = render_page(data, info, 2, LIMITS)
    assert page.page == 2 and page.dpi == 100
    assert page.image.ndim == 3 and page.image.shape[2] == 3
    assert len(page.sha256) == 64


def test_a_scanner_pdf_page_is_its_own_image_at_native_resolution():
    """A page that only paints one image is decoded from the PDF, not re-rasterized: the
    pixels and resolution of the scan, whatever render_dpi says."""
    buf = io.BytesIO()
    _page(30).save(buf, format="PDF", resolution=150)  # 827 px over 5.5 in: 150 dpi
    data = buf.getvalue()
    page = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert page.dpi == 150 and page.image.shape[:2] == (1169, 827)
    assert (page.image[102:118, 132:428] < 40).all() and (page.image[200:300, 100:400] > 235).all()  # JPEG in the PDF


def _scanner_pdf(im: Image.Image, dpi: int = 150) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PDF", resolution=dpi)
    return buf.getvalue()


def test_a_grey_or_bitonal_scan_stays_one_grey_channel_and_a_colour_scan_rgb():
    """Most legacy records are grey or black-and-white scans: their pages are carried as one
    channel (white 255), not as three copies of it; colour scans stay RGB."""
    grey = _page(30).convert("L")
    for source in (grey, grey.point(lambda v: 255 if v > 128 else 0).convert("1")):
        data = _scanner_pdf(source)
        page = render_page(data, probe(data, LIMITS), 1, LIMITS)
        assert page.image.ndim == 2 and page.image.dtype == np.uint8, source.mode
        assert page.dpi == 150 and page.image.shape == (1169, 827)
        assert (page.image[102:118, 132:428] < 40).all() and (page.image[200:300, 100:400] > 235).all()
    tiff = io.BytesIO()
    grey.point(lambda v: 255 if v > 128 else 0).convert("1").save(tiff, format="TIFF", compression="group4", dpi=(200, 200))
    page = render_page(tiff.getvalue(), probe(tiff.getvalue(), LIMITS), 1, LIMITS)
    assert page.image.ndim == 2 and set(np.unique(page.image)) == {0, 255}
    data = _scanner_pdf(_page(30))
    colour = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert colour.image.ndim == 3 and colour.image.shape[2] == 3


def test_a_pdf_page_with_more_than_an_image_is_rasterized():
    """Text, vectors or annotations (a visible signature) on top of the scan: rendered whole."""
    buf = io.BytesIO()
    _page().save(buf, format="PDF", resolution=150)
    with pikepdf.open(io.BytesIO(buf.getvalue())) as pdf:
        page = pdf.pages[0]
        page.contents_add(pikepdf.Stream(pdf, b"0 0 0 rg 10 10 50 50 re f"), prepend=False)
        out = io.BytesIO()
        pdf.save(out)
    data = out.getvalue()
    raster = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert raster.dpi == 100  # LIMITS.render_dpi: rasterized, with the drawn square
    h = raster.image.shape[0]
    assert (raster.image[h - 60 * 100 // 72 : h - 14 * 100 // 72, 15:60] < 10).all()


def test_multi_page_tiff_counts_frames_and_reads_each():
    buf = io.BytesIO()
    _page(0).save(buf, format="TIFF", save_all=True, append_images=[_page(50)], dpi=(200, 200))
    info = probe(buf.getvalue(), LIMITS)
    assert info.page_count == 2
    first = render_page(buf.getvalue(), info, 1, LIMITS)
    second = render_page(buf.getvalue(), info, 2, LIMITS)
    assert first.dpi == 200
    assert first.sha256 != second.sha256


def test_image_without_resolution_gets_one_inferred_from_a4_width():
    info = probe(_image("PNG"), LIMITS)
    page = render_page(_image("PNG"), info, 1, LIMITS)
    assert 95 <= page.dpi <= 105  # 827 px across an A4 page ≈ 100 dpi


def test_decompression_bomb_is_refused_before_decoding():
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, format="PNG")  # 144 Mpx, a few kB on disk
    with pytest.raises(DecompressionBombError):
        probe(bomb.getvalue(), LIMITS)


def test_too_many_pages_is_refused():
    with pytest.raises(TooManyPagesError, match="limit of 2 pages"):
        probe(_pdf(3), LimitSettings(max_pages=2))


def test_truncated_jpeg_fails_on_decoding_with_page_number():
    data = _image("JPEG", quality=95)
    cut = data[: int(len(data) * 0.6)]
    info = probe(cut, LIMITS)  # the header is intact
    with pytest.raises(CorruptDocumentError) as err:
        render_page(cut, info, 1, LIMITS)
    assert err.value.page == 1
