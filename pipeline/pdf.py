"""Searchable PDF: the page images with an invisible, word-aligned text layer, as PDF/A-2b.

Each page is the deskewed colour image (JPEG) drawn full-page, with Tesseract's text-only PDF
page (glyphless font, render mode 3) laid over it at the same physical size, so text selection
and search land on the words. The file is written and validated by ``pikepdf.pdfa`` (PDF/A-2b).
"""

from __future__ import annotations

import io
import zlib
from datetime import datetime, timezone

import pikepdf
from pikepdf import Dictionary, Name

from .errors import SohoaError


class PdfAssemblyError(SohoaError):
    stage = "store"
    code = "pdf_assembly_failed"


def _image_page(pdf: pikepdf.Pdf, jpeg: bytes, width_px: int, height_px: int, dpi: int) -> pikepdf.Page:
    width_pt = width_px * 72.0 / dpi
    height_pt = height_px * 72.0 / dpi
    image = pikepdf.Stream(pdf, jpeg)
    image.Type = Name.XObject
    image.Subtype = Name.Image
    image.Width = width_px
    image.Height = height_px
    image.ColorSpace = Name.DeviceRGB
    image.BitsPerComponent = 8
    image.Filter = Name.DCTDecode
    content = f"q {width_pt:.4f} 0 0 {height_pt:.4f} 0 0 cm /Im0 Do Q".encode()
    page_dict = Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, round(width_pt, 4), round(height_pt, 4)],
        Resources=Dictionary(XObject=Dictionary(Im0=image)),
        Contents=pikepdf.Stream(pdf, zlib.compress(content), Filter=Name.FlateDecode),
    )
    return pikepdf.Page(page_dict)


def build_searchable_pdf(
    pages: list[tuple[bytes, int, int, int, bytes]],
    *,
    title: str,
    producer: str,
    created: datetime | None = None,
) -> bytes:
    """Assemble a PDF/A-2b from ``(jpeg, width_px, height_px, dpi, text_only_pdf)`` per page."""
    created = created or datetime.now(timezone.utc)
    out = pikepdf.new()
    try:
        for jpeg, width_px, height_px, dpi, text_pdf in pages:
            page = _image_page(out, jpeg, width_px, height_px, dpi)
            out.pages.append(page)
            appended = out.pages[-1]
            if text_pdf:
                with pikepdf.open(io.BytesIO(text_pdf)) as layer:
                    overlay = out.copy_foreign(layer.pages[0].obj)
                    appended.add_overlay(pikepdf.Page(overlay), rect=None)
        with out.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:title"] = title
            meta["pdf:Producer"] = producer
            meta["xmp:CreatorTool"] = producer
            meta["xmp:CreateDate"] = created.isoformat()
        out.docinfo[Name.Title] = title
        out.docinfo[Name.Producer] = producer
        import pikepdf.pdfa as pdfa

        buf = io.BytesIO()
        pdfa.save(out, buf, "2b")
        return buf.getvalue()
    except SohoaError:
        raise
    except Exception as exc:
        raise PdfAssemblyError(f"searchable PDF could not be built: {exc}") from exc
    finally:
        out.close()


def pdf_text(data: bytes) -> str:
    """Extract the text layer of a PDF (``pdftotext``), for tests and checks."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(data)
        proc = subprocess.run(["pdftotext", "-layout", str(src), "-"], capture_output=True, check=True)
    return proc.stdout.decode("utf-8", "replace")
