"""No memory of another library is patched by default: the libtesseract ``tesserocr`` loaded calls
Leptonica's own ``pixWriteMem`` (a PNG round trip per text line).
The opt-in (``OcrSettings.line_images_pnm``) points that import at ``pixWriteMemPnm``; the reading is
the same, and the rewrite is refused whenever the slot is not what it should be."""

import ctypes

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline._exec import linkpatch, tesseract

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"


@pytest.fixture(scope="module")
def lept():
    found = linkpatch.loaded_library("libleptonica") or linkpatch.loaded_library("liblept")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def slot():
    found = tesseract.line_image_writer()
    assert found is not None and "libtesseract" in found[0].path
    return found[0]


def _pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value


def _protection(address: int) -> str:
    """"r--p", "rw-p": the protection of the page holding ``address``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            bounds, perms = line.split()[:2]
            start, end = (int(x, 16) for x in bounds.split("-"))
            if start <= address < end:
                return perms
    raise AssertionError("address not mapped")


def _page() -> np.ndarray:
    im = Image.new("L", (1700, 500), 255)
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(FONT, 36)
    for i, line in enumerate(["Số: 5898/UBND-KSTT", "Thực hiện ý kiến chỉ đạo của Thủ tướng Chính phủ về việc",
                              "đẩy mạnh cải cách thủ tục hành chính, số hóa hồ sơ."]):  # fmt: skip
        draw.text((120, 80 + i * 90), line, font=font, fill=0)
    return np.asarray(im)


def _read(gray: np.ndarray) -> str:
    return tesseract.run(gray, dpi=200, lang="vie", psm=4, text_pdf=False).tsv


def test_by_default_libtesseract_calls_leptonicas_own_writer(slot, lept):
    assert "5898/UBND-KSTT" in _read(_page())  # a page read in process, with the default settings
    assert _pointer(slot.address) == linkpatch.address_of(lept.pixWriteMem)
    assert tesseract.line_images_redirected() is False


def test_the_opt_in_redirects_line_images_to_pnm_and_reads_the_same(slot, lept):
    png, pnm = linkpatch.address_of(lept.pixWriteMem), linkpatch.address_of(lept.pixWriteMemPnm)
    gray = _page()
    with_png = _read(gray)
    protection = _protection(slot.address)
    try:
        assert tesseract.line_images_as_pnm() is True
        assert _pointer(slot.address) == pnm and tesseract.line_images_redirected()
        assert _protection(slot.address) == protection  # a read-only page is writable only for the write
        with_pnm = _read(gray)
    finally:
        assert linkpatch.redirect_import(slot, pnm, png)  # back to the default for the other tests
    assert "5898/UBND-KSTT" in with_pnm
    assert with_pnm == with_png


def test_a_slot_that_does_not_hold_the_expected_function_is_left_alone(slot, lept):
    before = _pointer(slot.address)
    other = linkpatch.address_of(lept.pixWriteMemPng)
    assert linkpatch.redirect_import(slot, expected=other, replacement=other) is False
    assert _pointer(slot.address) == before
    assert linkpatch.redirect_import(slot, expected=before, replacement=0) is False
    assert _pointer(slot.address) == before


def test_an_address_outside_the_library_file_is_never_written(slot, lept):
    buffer = (ctypes.c_void_p * 1)(linkpatch.address_of(lept.pixWriteMem))
    elsewhere = linkpatch.Slot(path=slot.path, symbol="pixWriteMem", address=ctypes.addressof(buffer))
    assert linkpatch.redirect_import(elsewhere, buffer[0], linkpatch.address_of(lept.pixWriteMemPnm)) is False
    assert buffer[0] == linkpatch.address_of(lept.pixWriteMem)


def test_only_elf_libraries_with_one_import_slot_are_considered(tmp_path, slot):
    not_elf = tmp_path / "lib.so"
    not_elf.write_bytes(b"#!/bin/sh\n" * 20)
    assert linkpatch.got_offsets(str(not_elf), "pixWriteMem") == []
    assert linkpatch.got_offsets(slot.path, "no_such_function") == []
    assert len(linkpatch.got_offsets(slot.path, "pixWriteMem")) == 1
