"""Hostile and odd inputs (issue 19): a page's working resolution is decided, and its pixels
bounded, before anything is allocated; transparent pages are white paper, not black."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from pipeline.runtime.config import ImageSettings, LimitSettings
from pipeline.runtime.errors import DecompressionBombError
from pipeline.stages.cleanup import cleanup_page, resample
from pipeline.stages.deskew import deskew_page
from pipeline.stages.load import probe, render_page
from pipeline.stages.models import ProcessedPage

LIMITS = LimitSettings()
GiB = 1024**3


# --- inputs, generated without allocating their pixels --------------------------------------


def pdf_with_huge_image(px: int = 20000, page_pt: float = 4800) -> bytes:
    """One page painted by one grey ``px`` x ``px`` image (400 MB decoded, ~400 kB of Flate),
    streamed through zlib a few rows at a time."""
    co = zlib.compressobj(9)
    white = b"\xff" * px
    ink = b"\xff" * 1000 + b"\x00" * (px - 2000) + b"\xff" * 1000
    chunks = [co.compress(b"".join(ink if (y // 200) % 10 == 3 and y % 200 < 60 else white for y in range(y0, min(px, y0 + 256))))
              for y0 in range(0, px, 256)]
    chunks.append(co.flush())
    pdf = pikepdf.new()
    img = pikepdf.Stream(pdf, b"".join(chunks))
    img.Type, img.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    img.Width, img.Height, img.BitsPerComponent = px, px, 8
    img.ColorSpace, img.Filter = pikepdf.Name.DeviceGray, pikepdf.Name.FlateDecode
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, page_pt, page_pt],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=img)))))
    pdf.pages[0].Contents = pikepdf.Stream(pdf, f"q {page_pt} 0 0 {page_pt} 0 0 cm /Im0 Do Q".encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def poster_pdf(page_pt: float = 4800, angle_deg: float = 5.0) -> bytes:
    """A vector page of ``page_pt`` points square (66 inches: 400 Mpx at 300 dpi) with slightly
    skewed lines of "words" (bars: no text layer, so the page goes through deskew, clean-up and OCR)."""
    pdf = pikepdf.new()
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    ops = [f"q {c:.4f} {s:.4f} {-s:.4f} {c:.4f} 300 300 cm 0 g"]
    for i in range(50):
        y = page_pt - 900 - i * 70
        ops += [f"{100 + j * 260} {y} {200 + (i * 37 + j * 53) % 40} 30 re f" for j in range(14)]
    ops.append("Q")
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, page_pt, page_pt])))
    pdf.pages[0].Contents = pikepdf.Stream(pdf, "\n".join(ops).encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def png_declaring_72_dpi(size: int = 3000) -> bytes:
    """A small PNG (~35 kB) of 3000 x 3000 pixels that says 72 dpi: a 42-inch page, which
    resampled to 300 dpi would be 12500 x 12500 (156 Mpx, 1.9 GB in a worker)."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    for y in range(100, size - 100, 60):
        d.rectangle([100, y, size - 200, y + 20], fill="black")
    buf = io.BytesIO()
    im.save(buf, format="PNG", dpi=(72, 72))
    return buf.getvalue()


def _working_page(data: bytes) -> ProcessedPage:
    info = probe(data, LIMITS)
    raster = render_page(data, info, 1, LIMITS)
    assert raster.image.shape[0] * raster.image.shape[1] <= LIMITS.max_working_pixels
    return cleanup_page(deskew_page(raster, ImageSettings()), ImageSettings())


# --- 1. resolution decided first, pixels bounded ----------------------------------------------


def test_a_pdf_page_painted_by_a_20000px_image_is_refused_before_it_is_decoded():
    data = pdf_with_huge_image()
    info = probe(data, LIMITS)
    with pytest.raises(DecompressionBombError) as err:
        render_page(data, info, 1, LIMITS)
    assert err.value.stage == "load" and err.value.page == 1
    assert "20000x20000" in err.value.message


def test_a_hostile_mediabox_is_refused_at_load():
    data = poster_pdf(page_pt=20000)  # 278 inches square
    with pytest.raises(DecompressionBombError, match="too large to rasterize"):
        render_page(data, probe(data, LIMITS), 1, LIMITS)


def test_a_poster_page_is_rendered_at_a_capped_resolution_and_never_enlarged():
    page = _working_page(poster_pdf())
    h, w = page.color.shape[:2]
    assert page.dpi < 300  # rendered below render_dpi to fit; clean-up did not bring it to 300 dpi
    # deskew may add the corners of the turned page; clean-up never enlarges beyond the limit
    assert w * h <= LIMITS.max_working_pixels * 1.25
    assert page.ocr_image.shape == page.color.shape[:2]


def test_a_png_declaring_72_dpi_is_read_at_its_real_size_not_enlarged_to_156_megapixels():
    data = png_declaring_72_dpi()
    assert len(data) < 200_000
    raster = render_page(data, probe(data, LIMITS), 1, LIMITS)
    assert raster.dpi >= 300  # 3000 px across a page: not a 42-inch page at 72 dpi
    page = cleanup_page(deskew_page(raster, ImageSettings()), ImageSettings())
    h, w = page.color.shape[:2]
    assert w * h <= 3000 * 3000


def test_a_plausible_low_resolution_scan_keeps_its_declared_dpi():
    im = Image.new("L", (827, 1169), 255)  # A4 at 100 dpi
    buf = io.BytesIO()
    im.save(buf, format="PNG", dpi=(100, 100))
    raster = render_page(buf.getvalue(), probe(buf.getvalue(), LIMITS), 1, LIMITS)
    assert raster.dpi == 100


def test_an_image_above_the_working_limit_is_reduced_at_load():
    limits = LimitSettings(max_working_pixels=1_000_000)
    im = Image.new("L", (2000, 2000), 255)
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        im.save(buf, format=fmt, dpi=(300, 300))
        raster = render_page(buf.getvalue(), probe(buf.getvalue(), limits), 1, limits)
        h, w = raster.image.shape[:2]
        assert w * h <= 1_000_000, fmt
        assert raster.dpi == pytest.approx(300 * w / 2000, abs=1), fmt


def test_resample_never_enlarges_a_page_beyond_the_pixel_limit():
    grey = np.full((1000, 1000), 255, np.uint8)
    page = ProcessedPage(page=1, color=grey, ocr_image=grey, dpi=72, skew_angle=0.0, orientation=0,
                         source_sha256="x", flags=[])
    out = resample(page, 300, max_pixels=4_000_000)
    assert out.color.shape[0] * out.color.shape[1] <= 4_000_000
    assert out.dpi == 144 and out.color.shape == (2000, 2000)
    assert resample(page, 300, max_pixels=1_050_000).color.shape == (1000, 1000)  # nothing to gain
    assert resample(page, 300, max_pixels=10**9).color.shape == (4167, 4167)  # within the limit: as before


_MEASURE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from pipeline.runtime.config import Settings
    from pipeline.runtime.document import process_page_bytes
    from pipeline.stages.load import probe
    settings = Settings(home=Path(sys.argv[2]))
    data = Path(sys.argv[1]).read_bytes()
    try:
        out = process_page_bytes(data, probe(data, settings.limits), 1, settings)
        kind = type(out).__name__
    except Exception as exc:  # noqa: BLE001
        kind = type(exc).__name__
    # this process's own high-water mark from /proc (per address space: reset by exec), not
    # RUSAGE_SELF, whose ru_maxrss keeps the forking parent's (a grown pytest's) from before exec
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    peak = max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"kind": kind, "peak_kib": peak, "code": getattr(out, "code", None)}))
""")


@pytest.mark.parametrize("name, make", [("poster.pdf", poster_pdf), ("huge-image.pdf", pdf_with_huge_image),
                                        ("72dpi.png", png_declaring_72_dpi)])
def test_peak_memory_of_one_worst_case_page_stays_under_1_gib(tmp_path, name, make):
    """The whole page task (load, deskew, clean-up, OCR) in a fresh process: before issue 19 the
    poster-sized PDF reached 4.9 GB and the 72 dpi PNG 1.9 GB."""
    src = tmp_path / name
    src.write_bytes(make())
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(src), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["peak_kib"] * 1024 < 1 * GiB, result
    if name == "huge-image.pdf":
        assert result["kind"] == "ErrorItem" and result["code"] == "decompression_bomb", result
    else:
        assert result["kind"] == "PageOutput", result


# --- 6. transparent pages -------------------------------------------------------------------


def _transparent_page(mode: str) -> bytes:
    im = Image.new("RGBA", (800, 1000), (0, 0, 0, 0))  # transparent black: what most tools write
    d = ImageDraw.Draw(im)
    for i in range(12):
        d.text((60, 60 + i * 70), f"UY BAN NHAN DAN TINH - So {i}/QD-UBND", fill=(20, 20, 20, 255),
               font_size=36)
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":
        im = im.convert("P")  # the alpha becomes transparent palette entries (tRNS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", dpi=(300, 300))
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_transparent_png_page_is_white_paper_with_dark_text(mode):
    data = _transparent_page(mode)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == mode and (im.mode != "P" or "transparency" in im.info)
    raster = render_page(data, probe(data, LIMITS), 1, LIMITS)
    grey = raster.image if raster.image.ndim == 2 else raster.image.mean(axis=2)
    paper = np.count_nonzero(grey > 200) / grey.size
    ink = np.count_nonzero(grey < 100) / grey.size
    assert paper > 0.9, f"{paper:.2%} of the page is paper: the transparent background turned dark"
    assert 0.002 < ink < 0.1, f"{ink:.2%} of the page is ink"
    assert grey[0:40, :].min() > 200 and grey[-40:, :].min() > 200  # margins are white


def test_an_opaque_page_is_left_as_it_is():
    im = Image.new("RGB", (400, 300), (240, 230, 200))
    buf = io.BytesIO()
    im.save(buf, format="PNG", dpi=(300, 300))
    raster = render_page(buf.getvalue(), probe(buf.getvalue(), LIMITS), 1, LIMITS)
    assert tuple(raster.image[0, 0]) == (240, 230, 200)
