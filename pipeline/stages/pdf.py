"""Searchable PDF: the page images with an invisible, word-aligned text layer, as PDF/A-2b.

Each page is the deskewed page image (JPEG: grey for a grey or bitonal scan, else colour) drawn
full-page with an invisible text layer (render mode 3) over it at the same physical size, so
text selection and search land on the words. The layer is written from sohoa's own words — in
its reading order, without the words the OCR stage dropped as non-text (signature scribble, seal
remains) — in Tesseract's glyphless font, taken from a text-only PDF page of Tesseract's
(:func:`pipeline._exec.tesseract.glyphless_font_pdf`; CIDs are UTF-16 code units, every glyph 500
units wide, so ``Tz`` stretches a word over its box). Prepared and written by ``pikepdf.pdfa``
as PDF/A-2b (the tests validate what it writes).
"""

from __future__ import annotations

import io
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Name
from PIL import Image

from pipeline.runtime.errors import SohoaError
from pipeline.stages.models import Word


class PdfAssemblyError(SohoaError):
    stage = "store"
    code = "pdf_assembly_failed"


def _jpeg_colour_space(jpeg: bytes) -> Name:
    """DeviceGray for a one-component JPEG (a grey page), DeviceRGB otherwise: read from its header."""
    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            mode = im.mode
    except Exception as exc:  # noqa: BLE001 - PIL raises several types on garbage
        raise PdfAssemblyError(f"a page image is not a readable JPEG: {exc}") from exc
    return Name.DeviceGray if mode == "L" else Name.DeviceRGB


def _image_page(pdf: pikepdf.Pdf, jpeg: bytes, width_px: int, height_px: int, dpi: int) -> pikepdf.Page:
    width_pt = width_px * 72.0 / dpi
    height_pt = height_px * 72.0 / dpi
    image = pikepdf.Stream(pdf, jpeg)
    image.Type = Name.XObject
    image.Subtype = Name.Image
    image.Width = width_px
    image.Height = height_px
    image.ColorSpace = _jpeg_colour_space(jpeg)
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


GLYPH_WIDTH = 0.5  # the glyphless font's advance (DW 500 of 1000 units)


def text_layer(words: Sequence[Word], height_px: int, dpi: int, font: str) -> bytes:
    """Content stream of invisible text: each word at its box, in the order given."""
    scale = 72.0 / dpi
    height_pt = height_px * scale
    out = ["BT", "3 Tr"]
    for w in words:
        text = w.text.strip()
        x0, y0, x1, y1 = w.bbox
        if not text or x1 <= x0 or y1 <= y0:
            continue
        size = max(1.0, (y1 - y0) * scale)
        width = (x1 - x0) * scale
        stretch = 100.0 * width / (len(text) * GLYPH_WIDTH * size)
        codes = (text + " ").encode("utf-16-be").hex().upper()
        out.append(f"1 0 0 1 {x0 * scale:.2f} {height_pt - y1 * scale:.2f} Tm /{font} {size:.2f} Tf "
                   f"{stretch:.2f} Tz <{codes}> Tj")
    out.append("ET")
    return "\n".join(out).encode("ascii")


def _add_text_layer(out: pikepdf.Pdf, page: pikepdf.Page, text_pdf: bytes, words: Sequence[Word],
                    height_px: int, dpi: int) -> None:
    with pikepdf.open(io.BytesIO(text_pdf)) as layer:
        source = layer.pages[0]
        resources = source.obj.get("/Resources")
        fonts = resources.get("/Font") if resources is not None else None
        if not fonts or len(fonts.keys()) != 1:
            raise PdfAssemblyError("the text-only PDF page carries no single glyphless font")
        name = next(iter(fonts.keys()))
        page.obj.Resources.Font = Dictionary({name: out.copy_foreign(fonts[name])})
        stream = pikepdf.Stream(out, zlib.compress(text_layer(words, height_px, dpi, name[1:])), Filter=Name.FlateDecode)
        page.contents_add(stream, prepend=False)


def build_searchable_pdf(
    pages: list[tuple[bytes, int, int, int, bytes]],
    *,
    title: str,
    producer: str,
    created: datetime | None = None,
    words: Sequence[Sequence[Word] | None] | None = None,
) -> bytes:
    """Assemble a PDF/A-2b from ``(jpeg, width_px, height_px, dpi, font_pdf)`` per page (``font_pdf``:
    a text-only PDF page carrying the glyphless font; empty: no text layer); ``words``: per page,
    the words of the text layer."""
    created = created or datetime.now(UTC)
    out = pikepdf.new()
    try:
        for index, (jpeg, width_px, height_px, dpi, text_pdf) in enumerate(pages):
            page = _image_page(out, jpeg, width_px, height_px, dpi)
            out.pages.append(page)
            appended = out.pages[-1]
            page_words = words[index] if words is not None else None
            if text_pdf and page_words:
                _add_text_layer(out, appended, text_pdf, page_words, height_px, dpi)
        with out.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:title"] = title
            meta["pdf:Producer"] = producer
            meta["xmp:CreatorTool"] = producer
            meta["xmp:CreateDate"] = created.isoformat()
        out.docinfo[Name.Title] = title
        out.docinfo[Name.Producer] = producer
        import pikepdf.pdfa as pdfa  # deferred: loads jsonschema, lxml, fontTools

        # pdfa.save would also re-open and walk the written file to validate it (0.11 s a
        # document); every document here has the same structure, which the tests validate
        # (tests/test_ocr_pdf.py, tests/test_end_to_end.py), so prepare and write only.
        pdfa.prepare(out, "2b")
        buf = io.BytesIO()
        out.save(buf, **pdfa.resolve_save_kwargs("2b"))
        return buf.getvalue()
    except SohoaError:
        raise
    except Exception as exc:
        raise PdfAssemblyError(f"searchable PDF could not be built: {exc}") from exc
    finally:
        out.close()


def pdf_text(data: bytes) -> str:
    """Extract the text layer of a PDF (``pdftotext``), for tests and checks."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(data)
        proc = subprocess.run(["pdftotext", "-layout", str(src), "-"], capture_output=True, check=True)
    return proc.stdout.decode("utf-8", "replace")
