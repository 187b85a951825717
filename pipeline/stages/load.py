"""Load stage: recognise a scan (PDF, TIFF, JPEG, PNG) and rasterize its pages.

A PDF is always rasterized and OCRed, even when it carries a text layer or digital
signatures (real scans carry a thin layer made by the signing stamp); the original bytes
are never modified. Every failure is a typed :class:`~pipeline.runtime.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.runtime.config import LimitSettings
from pipeline.runtime.errors import (
    CorruptDocumentError,
    DecompressionBombError,
    EmptyFileError,
    EncryptedDocumentError,
    MissingDependencyError,
    NoPagesError,
    TooLargeError,
    TooManyPagesError,
    UnsupportedFormatError,
)
from pipeline.stages.models import DocumentInfo, RasterPage

PDF = "application/pdf"
TIFF = "image/tiff"
JPEG = "image/jpeg"
PNG = "image/png"
SUPPORTED_MEDIA_TYPES = (PDF, TIFF, JPEG, PNG)
SUPPORTED_SUFFIXES = (".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png")

A4_WIDTH_INCHES = 8.27


def sniff_media_type(data: bytes) -> str:
    """Media type from the file's magic bytes (never from its name)."""
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    head = data[:1024]
    if b"%PDF-" in head:
        return PDF
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    raise UnsupportedFormatError(
        "not a PDF, TIFF, JPEG or PNG scan (unrecognised file signature "
        f"{data[:8].hex(' ')})"
    )


def probe(data: bytes, limits: LimitSettings, *, decode: bool = False) -> DocumentInfo:
    """Check a source file and count its pages, without rasterizing it; ``decode``: also decode
    every frame of an image file, so that a truncated or damaged one (a TIFF cut in its image
    data: its header reads fine) is refused now, at the counter, rather than failing later as a
    stored document (the HTTP upload asks for it; a batch run finds it at the page task)."""
    if len(data) > limits.max_file_bytes:
        raise TooLargeError(
            f"file is {len(data) / 1e6:.1f} MB, above the limit of {limits.max_file_bytes / 1e6:.0f} MB"
        )
    media_type = sniff_media_type(data)
    if media_type == PDF:
        count = _pdf_page_count(data)
    else:
        count = _image_frame_count(data, limits)
        if decode:
            _decode_frames(data, count, limits)
    if count < 1:
        raise NoPagesError("the document has no pages")
    if count > limits.max_pages:
        raise TooManyPagesError(f"{count} pages, above the limit of {limits.max_pages} pages per document")
    return DocumentInfo(media_type=media_type, page_count=count)


#: Source modes whose pages stay one grey channel: grey and bitonal scans (most of an archive's
#: legacy records). Read as RGB, such a page would be carried, rotated, hashed and stored three
#: times over for the same pixels: hash, deskew, clean-up and JPEG of the throughput benchmark's
#: grey pages take 0.24 s of CPU a page kept grey, 0.43 s as RGB.
GREY_MODES = frozenset({"1", "L"})


def page_mode(image: Image.Image) -> Image.Image:
    """The page image in mode ``L`` for a grey or bitonal source (white 255), ``RGB`` for
    anything else; not copied when it already is."""
    if image.mode in GREY_MODES:
        return image if image.mode == "L" else image.convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


def render_page(data: bytes, info: DocumentInfo, page: int, limits: LimitSettings) -> RasterPage:
    """Rasterize one page (1-based) at its native or rendering resolution: grey for a grey or
    bitonal source image, RGB otherwise (:func:`page_mode`)."""
    if not 1 <= page <= info.page_count:
        raise ValueError(f"page {page} out of range 1..{info.page_count}")
    notes: tuple[str, ...] = ()
    if info.media_type == PDF:
        image, dpi = _render_pdf_page(data, page, limits)
    else:
        image, dpi, notes = _read_image_frame(data, page, limits)
    array = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    digest = hashlib.sha256(np.ascontiguousarray(array).data.cast("B")).hexdigest()  # no copy
    return RasterPage(page=page, image=array, dpi=dpi, sha256=digest, notes=notes)


# --- PDF -------------------------------------------------------------------------------


def _pdf_page_count(data: bytes) -> int:
    import pikepdf  # deferred: loads pikepdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pikepdf.open(io.BytesIO(data)) as pdf:
                count = len(pdf.pages)
                # Touch the page tree so that a truncated file fails here, not later.
                for p in pdf.pages:
                    _ = p.mediabox
    except pikepdf.PasswordError as exc:
        raise EncryptedDocumentError("the PDF is encrypted with a password; it cannot be read") from exc
    except pikepdf.PdfError as exc:
        raise CorruptDocumentError(f"the PDF is damaged or truncated: {_first_line(exc)}") from exc
    except Exception as exc:  # pikepdf can raise plain errors on garbage
        raise CorruptDocumentError(f"the PDF cannot be parsed: {_first_line(exc)}") from exc
    return count


def _pdf_page_size_points(data: bytes, page: int) -> tuple[float, float]:
    import pikepdf  # deferred: loads pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        box = pdf.pages[page - 1].mediabox
        width = abs(float(box[2]) - float(box[0]))
        height = abs(float(box[3]) - float(box[1]))
        rotate = int(pdf.pages[page - 1].obj.get("/Rotate", 0)) % 180
    return (height, width) if rotate else (width, height)


#: Content-stream operators of a page that only paints one image (what scanners write).
_IMAGE_ONLY_OPERATORS = frozenset({"q", "Q", "cm", "Do", "gs"})


def _scanned_page_image(data: bytes, page: int, limits: LimitSettings) -> tuple[Image.Image, int] | None:
    """The page's own scan, when the page is nothing but one image covering it (how scanners
    write PDFs): decoded straight from the PDF at its native resolution, which is faster than
    rasterizing and loses nothing. None when the page holds anything else (text, vectors,
    annotations such as a visible signature, several images, masks, rotation): rasterize it."""
    import pikepdf  # deferred: loads pikepdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pikepdf.open(io.BytesIO(data)) as pdf:
                pg = pdf.pages[page - 1]
                if "/Annots" in pg.obj or int(pg.obj.get("/Rotate", 0)) % 360:
                    return None
                images = list(pg.images.values())
                if len(images) != 1 or not isinstance(images[0], pikepdf.Stream):
                    return None
                ops = pikepdf.parse_content_stream(pg)
                if any(str(inst.operator) not in _IMAGE_ONLY_OPERATORS for inst in ops):
                    return None
                draws = [inst.operands for inst in ops if str(inst.operator) == "cm"]
                xobj = images[0]
                if any(k in xobj for k in ("/SMask", "/Mask", "/ImageMask", "/Decode")):
                    return None
                width, height = int(xobj.get("/Width", 0)), int(xobj.get("/Height", 0))
                if width * height > limits.max_page_pixels or not width or not height:
                    return None  # refused before (_refuse_huge_pdf_images), or no size: rasterize
                box = pg.mediabox
                page_w = abs(float(box[2]) - float(box[0]))
                page_h = abs(float(box[3]) - float(box[1]))
                if len(draws) != 1:
                    return None
                a, b, c, d, e, f = (float(x) for x in draws[0])
                covers = abs(b) < 1e-6 and abs(c) < 1e-6 and abs(a - page_w) <= 0.02 * page_w \
                    and abs(d - page_h) <= 0.02 * page_h and abs(e) <= 2 and abs(f) <= 2
                if not covers:
                    return None
                image = page_mode(pikepdf.PdfImage(xobj).as_pil_image())
                image.load()  # a damaged stream fails here, and the rasterizer reports it
    except Exception:  # noqa: BLE001 - any doubt: the rasterizer decides (and reports damage)
        return None
    dpi = int(round(image.width / (page_w / 72)))
    if not 70 <= dpi <= 1200:
        return None
    return fit_working_resolution(image, dpi, limits)


def _render_pdf_page(data: bytes, page: int, limits: LimitSettings) -> tuple[Image.Image, int]:
    _refuse_huge_pdf_images(data, page, limits)
    scanned = _scanned_page_image(data, page, limits)
    if scanned is not None:
        return scanned
    width_pt, height_pt = _pdf_page_size_points(data, page)
    dpi = pdf_working_dpi(width_pt, height_pt, page, limits)
    with tempfile.TemporaryDirectory(prefix="sohoa-pdf-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(data)
        out_prefix = Path(tmp) / "page"
        cmd = [
            "pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page),
            "-singlefile", str(src), str(out_prefix),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120)
        except FileNotFoundError as exc:  # pragma: no cover - install problem

            raise MissingDependencyError("pdftoppm (poppler-utils) is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise CorruptDocumentError(f"rasterizing page {page} took too long", page=page) from exc
        out = out_prefix.with_suffix(".ppm")  # uncompressed: no PNG encode+decode
        if proc.returncode != 0 or not out.exists():
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CorruptDocumentError(
                f"page {page} cannot be rasterized: {msg[-1] if msg else 'pdftoppm failed'}", page=page
            )
        with Image.open(out) as im:
            w, h = im.size
            if w * h > limits.max_working_pixels * 1.01:  # rounding of the page box: a pixel row or two
                raise DecompressionBombError(
                    f"page {page} rasterized to {w}x{h} pixels, above the working limit", page=page
                )
            image = im.convert("RGB")
    return image, dpi


def pdf_working_dpi(width_pt: float, height_pt: float, page: int, limits: LimitSettings) -> int:
    """The resolution a PDF page is rasterized at: ``render_dpi`` (at most ``max_working_dpi``),
    lowered so that the page stays within ``max_working_pixels``; a page so large that this
    would take it under ``min_working_dpi`` (a poster, or a hostile MediaBox) is refused,
    before anything is allocated."""
    dpi = min(limits.render_dpi, limits.max_working_dpi)
    pixels = (width_pt / 72 * dpi) * (height_pt / 72 * dpi)
    if pixels > limits.max_working_pixels:
        dpi = int(dpi * (limits.max_working_pixels / pixels) ** 0.5)
        if dpi < limits.min_working_dpi:
            raise DecompressionBombError(
                f"page {page} is {width_pt / 72:.0f}x{height_pt / 72:.0f} inches; too large to rasterize "
                f"(it would need less than {limits.min_working_dpi} dpi to stay within "
                f"{limits.max_working_pixels / 1e6:.0f} megapixels)",
                page=page,
            )
    return dpi


def _refuse_huge_pdf_images(data: bytes, page: int, limits: LimitSettings) -> None:
    """Refuse a page that paints an image declaring more than ``max_page_pixels`` (a 20000x20000
    scan, or a few kB of Flate that inflate to gigabytes): neither it nor the rasterizer decodes
    it. Images of the page's own resources and of its forms, one level down."""
    import pikepdf  # deferred: loads pikepdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pikepdf.open(io.BytesIO(data)) as pdf:
                pg = pdf.pages[page - 1]
                sizes = []
                none = pikepdf.Dictionary()  # an absent /Resources or /XObject: nothing painted
                xobjects = pg.obj.get("/Resources", none).get("/XObject", none)
                for _, xobj in xobjects.items():
                    if xobj.get("/Subtype") == "/Image":
                        sizes.append((xobj.get("/Width", 0), xobj.get("/Height", 0)))
                    elif xobj.get("/Subtype") == "/Form":
                        inner = xobj.get("/Resources", none).get("/XObject", none)
                        sizes.extend((x.get("/Width", 0), x.get("/Height", 0)) for _, x in inner.items()
                                     if x.get("/Subtype") == "/Image")
    except Exception:  # noqa: BLE001 - a damaged file: the rasterizer reports it
        return
    for w, h in sizes:
        try:
            w, h = int(w), int(h)
        except (TypeError, ValueError):
            continue
        if w * h > limits.max_page_pixels:
            raise DecompressionBombError(
                f"page {page} holds an image of {w}x{h} pixels, above the limit of "
                f"{limits.max_page_pixels / 1e6:.0f} megapixels",
                page=page,
            )


def fit_working_resolution(image: Image.Image, dpi: int, limits: LimitSettings) -> tuple[Image.Image, int]:
    """``image`` reduced, when needed, to its working resolution: at most ``max_working_dpi``
    and ``max_working_pixels`` (the resolution scaled down with it). Unchanged when it fits."""
    w, h = image.size
    factor = 1.0
    if dpi > limits.max_working_dpi:
        factor = limits.max_working_dpi / dpi
    if w * h * factor * factor > limits.max_working_pixels:
        factor = (limits.max_working_pixels / (w * h)) ** 0.5
    if factor >= 1.0:
        return image, dpi
    size = (max(1, int(w * factor)), max(1, int(h * factor)))
    reduced = image.resize(size, Image.Resampling.BOX if image.mode in ("L", "RGB") else Image.Resampling.NEAREST)
    return reduced, max(1, int(round(dpi * size[0] / w)))


# --- images ----------------------------------------------------------------------------


def _open_image(data: bytes, limits: LimitSettings) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBombError(f"image declares too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise CorruptDocumentError("the image file is damaged: its header cannot be read") from exc
    except Exception as exc:
        raise CorruptDocumentError(f"the image cannot be opened: {_first_line(exc)}") from exc
    if w * h > limits.max_page_pixels:
        raise DecompressionBombError(
            f"image is {w}x{h} pixels, above the limit of {limits.max_page_pixels / 1e6:.0f} megapixels"
        )
    return im


def _decode_frames(data: bytes, count: int, limits: LimitSettings) -> None:
    im = _open_image(data, limits)
    for frame in range(min(count, limits.max_pages)):
        try:
            im.seek(frame)
            im.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CorruptDocumentError(
                f"page {frame + 1} of the image cannot be decoded (truncated or damaged): {_first_line(exc)}",
                page=frame + 1,
            ) from exc


def _image_frame_count(data: bytes, limits: LimitSettings) -> int:
    im = _open_image(data, limits)
    return int(getattr(im, "n_frames", 1))


def _read_image_frame(data: bytes, page: int, limits: LimitSettings) -> tuple[Image.Image, int, tuple[str, ...]]:
    im = _open_image(data, limits)
    notes: tuple[str, ...] = ()
    try:
        im.seek(page - 1)
        w, h = im.size
        if w * h > limits.max_page_pixels:
            raise DecompressionBombError(f"page {page} is {w}x{h} pixels; too large", page=page)
        dpi = _image_dpi(im, limits)  # the working resolution is decided before decoding
        xy = _declared_dpi_xy(im)
        bitonal = im.mode == "1"
        if im.format == "JPEG" and w * h > limits.max_working_pixels:
            # libjpeg decodes at 1/2, 1/4, 1/8 directly: the full-size page is never allocated
            scale = (limits.max_working_pixels / (w * h)) ** 0.5
            im.draft(im.mode, (max(1, int(w * scale)), max(1, int(h * scale))))
            dpi = max(1, int(round(dpi * im.size[0] / w)))
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float32)
            arr = (arr / max(float(arr.max()), 1.0) * 255).astype(np.uint8)
            im = Image.fromarray(arr, "L")
        if bitonal:
            im, restored = restore_lost_scan_lines(im)
            notes = (f"scan_lines_restored:{restored}",) if restored else ()
        im, dpi = square_pixels(page_mode(im) if bitonal else im, xy, dpi, limits, bitonal=bitonal)
        im = page_mode(on_white(ImageOps.exif_transpose(im)))
        im, dpi = fit_working_resolution(im, dpi, limits)
    except DecompressionBombError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptDocumentError(
            f"page {page} of the image cannot be decoded (truncated or damaged): {_first_line(exc)}",
            page=page,
        ) from exc
    return im, dpi, notes


#: a lost scan line is restored where at least this share of the ink of the thinner of the two
#: rows around it lines up across it (:func:`restore_lost_scan_lines`)
LOST_LINE_MIN_CONTINUITY = 0.3


def restore_lost_scan_lines(im: Image.Image) -> tuple[Image.Image, int]:
    """A bitonal page (a fax) with the scan lines lost in transmission restored, as a fax
    receiver's error concealment does (ITU-T T.4 reception: a line received in error is replaced
    from its neighbour): a row with (almost) no ink — at most speckle — between two rows that both
    carry text's ink, at least :data:`LOST_LINE_MIN_CONTINUITY` of which lines up across it (the
    strokes of the letters it cut), gets ink where both neighbours have it. In its own scan lines,
    before the pixels are squared and the page deskewed: a row turned white across a line of
    letters (at 100 dpi one row is a tenth of their height) cut every letter in two, and the line
    was read as nonsense (benchmarks/ocr_quality.py, fax page 100 of the test split: "động kinh
    doanh theo yêu cầu ... thiết" read "1-1 ÿ©"); after deskewing the white row is no longer one row
    of pixels and cannot be told from the space between lines. Between two lines of text the rows
    either side of an empty one do not line up (a descender over an accent), and nothing changes."""
    ink = np.asarray(im.convert("L"), dtype=np.uint8) < 128
    counts = np.count_nonzero(ink, axis=1)
    height, width = ink.shape
    busy = max(4, width // 100)
    lost = np.flatnonzero((counts[1:-1] * 2 < busy) & (counts[:-2] >= busy) & (counts[2:] >= busy)) + 1
    restored = 0
    for y in lost:
        across = ink[y - 1] & ink[y + 1]
        if np.count_nonzero(across) >= LOST_LINE_MIN_CONTINUITY * min(counts[y - 1], counts[y + 1]):
            ink[y] |= across
            restored += 1
    if not restored:
        return im, 0
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L").convert("1"), restored


#: x and y resolutions closer than this (relative) are taken as square pixels
ANISOTROPY_TOLERANCE = 0.1


def _declared_dpi_xy(im: Image.Image) -> tuple[float, float] | None:
    """The (x, y) resolution the file declares, when both are plausible (70–1200 dpi)."""
    declared = im.info.get("dpi")
    try:
        x, y = float(declared[0]), float(declared[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if 70 <= x <= 1200 and 70 <= y <= 1200 else None


def square_pixels(im: Image.Image, xy: tuple[float, float] | None, dpi: int, limits: LimitSettings, *,
                  bitonal: bool = False) -> tuple[Image.Image, int]:  # fmt: skip
    """A page with unequal x and y resolutions (a fax: 200 × 100 dpi, "standard" resolution, or
    204 × 196) resampled to square pixels at the finer of the two: read as it is, its letters
    are half as tall as they should be and Tesseract reads a squashed page (benchmarks/
    ocr_quality.py, fax: 40 % character error for raw ``tesseract``). A bitonal page is resampled
    by repeating lines (nearest neighbour), so that it stays bitonal and its capture is still
    recognised (:func:`pipeline.stages.deskew.detect_capture`); the clean-up smooths it. Never beyond
    ``max_working_pixels``: the finer axis is reduced instead. Returns the image and its dpi."""
    if xy is None or abs(xy[0] - xy[1]) <= ANISOTROPY_TOLERANCE * max(xy):
        return im, dpi
    x, y = xy
    target = max(x, y)
    w, h = im.size
    size = (max(1, round(w * target / x)), max(1, round(h * target / y)))
    if size[0] * size[1] > limits.max_working_pixels:
        shrink = (limits.max_working_pixels / (size[0] * size[1])) ** 0.5
        size = (max(1, int(size[0] * shrink)), max(1, int(size[1] * shrink)))
        target *= shrink
    if im.mode not in ("1", "L", "RGB"):
        im = page_mode(im)
    resample = Image.Resampling.NEAREST if bitonal or im.mode == "1" else Image.Resampling.BICUBIC
    return im.resize(size, resample), max(1, int(round(dpi * target / x)))  # dpi: x's, or the one inferred


def _image_dpi(im: Image.Image, limits: LimitSettings | None = None) -> int:
    """Declared resolution, or one inferred from the width of an A4 page when missing, absurd,
    or implausible: a declared resolution whose page, brought to ``render_dpi`` (the resolution
    pages are cleaned and read at), would exceed ``max_working_pixels`` describes no document
    (a 3000x3000 PNG "at 72 dpi" is a 42-inch page, 156 megapixels at 300 dpi), and the page's
    real size is taken instead."""
    declared = im.info.get("dpi")
    if declared:
        try:
            value = int(round(float(declared[0])))
        except (TypeError, ValueError, IndexError):
            value = 0
        if 70 <= value <= 1200:
            if limits is None:
                return value
            w, h = im.size
            grow = limits.render_dpi / value
            if grow <= 1.0 or w * h * grow * grow <= limits.max_working_pixels:
                return value  # a fine scan is reduced to the working limit, never enlarged
    width = min(im.size)  # portrait width even for landscape scans
    return int(max(72, min(600, round(width / A4_WIDTH_INCHES))))


def on_white(im: Image.Image) -> Image.Image:
    """A page with transparency (RGBA, LA, PA, a palette or grey/RGB with a transparent colour)
    composited on white paper: taken as it is, its transparent background reads as black and
    the text drawn on it is lost. Grey stays grey. Other pages are returned unchanged."""
    transparent = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode in ("P", "L", "RGB", "1") and "transparency" in im.info
    )
    if not transparent:
        return im
    grey = im.mode in ("L", "LA", "La", "1")
    page = Image.new("RGBA", im.size, (255, 255, 255, 255))
    page.alpha_composite(im.convert("RGBA"))
    return page.convert("L" if grey else "RGB")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
