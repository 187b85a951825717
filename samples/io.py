"""Writers for scans: multi-page PDF (JPEG pages, correct physical size), multi-page TIFF, JPEG, PNG.

Every writer records the resolution so that readers see the right DPI (PDF: the page size in points
is ``pixels / dpi * 72``; TIFF/JPEG/PNG: the resolution tags).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pikepdf
from PIL import Image


def _mode(img: Image.Image, grayscale: bool) -> Image.Image:
    if grayscale:
        return img if img.mode == "L" else img.convert("L")
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def binarize(img: Image.Image) -> Image.Image:
    """1-bit page like a B&W scanner makes it: local-mean threshold, robust to uneven paper tone."""
    import cv2
    import numpy as np

    gray = np.asarray(_mode(img, True))
    block = max(15, (gray.shape[1] // 60) | 1)
    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 18)
    bw[gray > 200] = 255
    bw[gray < 60] = 0
    return Image.fromarray(bw).convert("1")


def write_pdf(pages: Sequence[Image.Image], path: str | Path, *, dpi: int = 300, quality: int = 75,
              grayscale: bool = True) -> Path:
    """A PDF with one DCT (JPEG) image per page, each page sized ``pixels / dpi`` inches.

    ``grayscale`` stores the pages as 8-bit gray JPEGs (small, like most office scanners' PDFs).
    """
    path = Path(path)
    if not pages:
        raise ValueError("no pages")
    pdf = pikepdf.new()
    for img in pages:
        im = _mode(img, grayscale)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality, optimize=True, dpi=(dpi, dpi))
        w, h = im.size
        xobj = pikepdf.Stream(pdf, buf.getvalue())
        xobj.Type = pikepdf.Name.XObject
        xobj.Subtype = pikepdf.Name.Image
        xobj.Width = w
        xobj.Height = h
        xobj.ColorSpace = pikepdf.Name.DeviceGray if im.mode == "L" else pikepdf.Name.DeviceRGB
        xobj.BitsPerComponent = 8
        xobj.Filter = pikepdf.Name.DCTDecode
        pw, ph = w * 72.0 / dpi, h * 72.0 / dpi
        content = f"q {pw:.4f} 0 0 {ph:.4f} 0 0 cm /Im0 Do Q".encode()
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, round(pw, 4), round(ph, 4)],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobj)),
            Contents=pikepdf.Stream(pdf, content),
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.docinfo["/Producer"] = "sohoa samples"
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path, deterministic_id=True, compress_streams=True)
    return path


def write_tiff(pages: Sequence[Image.Image], path: str | Path, *, dpi: int = 300, compression: str = "tiff_lzw",
               grayscale: bool = True, quality: int = 75) -> Path:
    """A multi-page TIFF. ``compression``: "tiff_lzw", "tiff_adobe_deflate", "jpeg" (8-bit pages)
    or "group4" (pages binarised to 1 bit, like a fax/B&W office scan)."""
    path = Path(path)
    if not pages:
        raise ValueError("no pages")
    if compression == "group4":
        ims = [binarize(p) for p in pages]
    else:
        ims = [_mode(p, grayscale) for p in pages]
    kw: dict = dict(dpi=(dpi, dpi), compression=compression)
    if compression == "jpeg":
        kw["quality"] = quality
    path.parent.mkdir(parents=True, exist_ok=True)
    ims[0].save(path, format="TIFF", save_all=True, append_images=ims[1:], **kw)
    return path


def write_jpeg(img: Image.Image, path: str | Path, *, dpi: int = 300, quality: int = 80, grayscale: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _mode(img, grayscale).save(path, format="JPEG", quality=quality, optimize=True, dpi=(dpi, dpi))
    return path


def write_png(img: Image.Image, path: str | Path, *, dpi: int = 300, grayscale: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _mode(img, grayscale).save(path, format="PNG", optimize=True, dpi=(dpi, dpi))
    return path


def write_pages(pages: Sequence[Image.Image], path: str | Path, *, dpi: int = 300, **kw) -> Path:
    """Write by extension: .pdf / .tif(f) (all pages); .jpg/.jpeg/.png (single page only)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".pdf":
        return write_pdf(pages, path, dpi=dpi, **kw)
    if ext in (".tif", ".tiff"):
        return write_tiff(pages, path, dpi=dpi, **kw)
    if len(pages) != 1:
        raise ValueError(f"{ext} holds one page, got {len(pages)}")
    if ext in (".jpg", ".jpeg"):
        return write_jpeg(pages[0], path, dpi=dpi, **kw)
    if ext == ".png":
        return write_png(pages[0], path, dpi=dpi, **kw)
    raise ValueError(f"unsupported extension {ext!r}")


def page_count(path: str | Path) -> int:
    """Pages in a PDF/TIFF/JPEG/PNG file."""
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        with pikepdf.open(path) as pdf:
            return len(pdf.pages)
    with Image.open(path) as im:
        return getattr(im, "n_frames", 1)


def read_pages(path: str | Path) -> list[Image.Image]:
    """Page images of a TIFF/JPEG/PNG, or the embedded page images of a PDF written by :func:`write_pdf`."""
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        out = []
        with pikepdf.open(path) as pdf:
            for page in pdf.pages:
                imgs = page.get_images() if hasattr(page, "get_images") else page.images
                for _, raw in imgs.items():
                    out.append(pikepdf.PdfImage(raw).as_pil_image())
                    break
        return out
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            out.append(im.copy())
    return out
