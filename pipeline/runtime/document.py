"""The per-document work, as plain functions that run as Dask tasks.

``prepare_document`` (probe the original) → ``process_page`` × pages (load, deskew, clean-up,
OCR; one task per page) → ``finalize_document`` (quality gate, extract, validate, searchable
PDF, sign, store). Stage errors never escape a task: they come back as
:class:`~pipeline.stages.models.ErrorItem` and end as a ``failed`` record for that document alone.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from PIL import Image

from pipeline import __version__
from pipeline.records.archive import image_check_issue
from pipeline.records.record import (
    SCHEMA_VERSIONS,
    FieldIssue,
    HistoryEntry,
    Provenance,
    Record,
    RecordType,
    StoredPage,
    schema_id,
    timestamp,
)
from pipeline.runtime.clients import engine_versions, runtime_for
from pipeline.runtime.config import OcrSettings, Settings
from pipeline.runtime.errors import SohoaError
from pipeline.stages.extract import extract
from pipeline.stages.load import PDF, probe, render_page
from pipeline.stages.models import DocumentInfo, ErrorItem, PageOutput, PageResult, SourceRef, Status
from pipeline.stages.pdfsource import page_source, read_signatures
from pipeline.stages.quality import assess_page_text


@dataclass
class DocumentOutcome:
    """What the driver learns about one document (and writes to the run manifest)."""

    document_id: str
    source_file: str
    status: Status | str  # "ok" | "needs_review" | "failed" | "skipped"
    pages: int = 0
    error: ErrorItem | None = None
    stored: bool = True
    review_reasons: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def manifest_line(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "source_file": self.source_file,
            "status": self.status,
            "pages": self.pages,
            "stored": self.stored,
            "error": self.error.model_dump() if self.error else None,
            "review_reasons": self.review_reasons,
            "seconds": round(self.seconds, 3),
        }


# --- tasks -------------------------------------------------------------------------------


def prepare_document(ref: SourceRef, settings: Settings) -> DocumentInfo | ErrorItem:
    try:
        data = runtime_for(settings).original(ref.document_id)
        return prepare_bytes(data, settings)
    except SohoaError as exc:
        return ErrorItem.from_exception(exc)
    except Exception as exc:  # noqa: BLE001 - one document's bug must not stop the batch
        return ErrorItem.from_exception(exc, stage="load")


def prepare_bytes(data: bytes, settings: Settings) -> DocumentInfo:
    """Probe the source, and read the signatures a PDF carries (evidence for issuer and date,
    kept in the record's provenance; :func:`pipeline.stages.pdfsource.read_signatures` never raises)."""
    info = probe(data, settings.limits)
    if info.media_type == PDF:
        info.signatures = [sig.to_json() for sig in read_signatures(data)]
    return info


def process_page(ref: SourceRef, info: DocumentInfo, page: int, settings: Settings) -> PageOutput | ErrorItem:
    """Load, deskew, clean up and OCR one page of a stored original."""
    try:
        t0 = time.perf_counter()
        data = runtime_for(settings).original(ref.document_id)
        fetch = time.perf_counter() - t0
    except SohoaError as exc:
        item = ErrorItem.from_exception(exc)
        item.page = item.page or page
        return item
    except Exception as exc:  # noqa: BLE001
        item = ErrorItem.from_exception(exc, stage="load")
        item.page = page
        return item
    return process_page_bytes(data, info, page, settings, fetch_seconds=fetch)


def process_page_bytes(
    data: bytes, info: DocumentInfo, page: int, settings: Settings, *, fetch_seconds: float = 0.0
) -> PageOutput | ErrorItem:
    """Load, deskew, clean up and OCR one page of ``data`` (the source bytes)."""
    from pipeline.stages.cleanup import cleanup_page  # deferred: loads cv2
    from pipeline.stages.deskew import deskew_page  # deferred: loads tesserocr, cv2, pytesseract

    stage = "load"
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter() - fetch_seconds
        raster = render_page(data, info, page, settings.limits)
        timings["load"] = time.perf_counter() - t0
        stamps: list[tuple[int, int, int, int]]  # pixels (pdfsource.Box): the PDF's e-signature stamps
        layer, stamps = None, []
        if info.media_type == PDF:
            t0 = time.perf_counter()
            layer, stamps = page_source(data, raster.page, raster.dpi)
            timings["pdf_text"] = time.perf_counter() - t0
        if layer is not None:
            born_digital = text_layer_page(layer, raster, settings, timings)
            if born_digital is not None:
                return born_digital
        stage = "deskew"
        t0 = time.perf_counter()
        processed = deskew_page(raster, settings.image)
        timings["deskew"] = time.perf_counter() - t0
        stage = "cleanup"
        t0 = time.perf_counter()
        processed = cleanup_page(processed, settings.image, settings.limits.max_working_pixels)
        timings["cleanup"] = time.perf_counter() - t0
        stage = "ocr"
        processed, (words, text, conf, text_pdf, secs), turn_secs = read_page(processed, settings)
        timings["ocr"] = secs
        if stamps:
            words, text, conf, dropped = without_stamp_text(stamps, raster, processed, words, text, conf)
            if dropped:
                processed.flags.append(f"stamp_text_removed:{dropped}")
        if turn_secs:
            timings["orientation"] = turn_secs
        stage = "store"
        t0 = time.perf_counter()
        jpeg = encode_jpeg(processed.color, processed.dpi, settings.image.jpeg_quality)
        timings["encode"] = time.perf_counter() - t0
        height, width = processed.color.shape[:2]
        result = PageResult(
            page=page,
            width=width,
            height=height,
            dpi=processed.dpi,
            skew_angle=round(float(processed.skew_angle), 3),
            orientation=int(processed.orientation),
            text=text,
            words=words,
            mean_confidence=round(conf, 2),
            image_sha256=raster.sha256,
            quality_flags=list(processed.flags),
            seconds={k: round(v, 3) for k, v in timings.items()},
        )
        return PageOutput(result=result, image_jpeg=jpeg, text_pdf=text_pdf)
    except SohoaError as exc:
        item = ErrorItem.from_exception(exc)
        if item.page is None:
            item.page = page
        return item
    except Exception as exc:  # noqa: BLE001
        item = ErrorItem.from_exception(exc, stage=stage)
        item.page = page
        return item


def text_layer_page(layer, raster, settings: Settings, timings: dict) -> PageOutput | None:
    """A PDF page that carries a real text layer (a Word/LibreOffice export, not only a signing
    stamp's text: :func:`pipeline.stages.pdfsource.text_layer_words`) is read from it, not OCR'd: its
    characters are exact (character error 0.02 % against poppler's reading of the development
    set's born-digital notice, where OCR of the same pages made 2.6 %) and its word boxes are in
    the pixels of the page as rendered, which is stored unchanged (no deskew: a born-digital page
    has no skew). None when the layer's geometry is not the rendered page's: the page is OCR'd."""
    from pipeline._exec.tesseract import glyphless_font_pdf  # deferred: loads tesserocr, pytesseract

    height, width = raster.image.shape[:2]
    if abs(layer.width - width) > 2 or abs(layer.height - height) > 2:
        return None  # a rotated or cropped box: OCR it
    t0 = time.perf_counter()
    jpeg = encode_jpeg(raster.image, raster.dpi, settings.image.jpeg_quality)
    timings["encode"] = time.perf_counter() - t0
    result = PageResult(
        page=raster.page,
        width=width,
        height=height,
        dpi=raster.dpi,
        text=layer.text,
        words=layer.words,
        mean_confidence=100.0,
        image_sha256=raster.sha256,
        text_source="text_layer",
        seconds={k: round(v, 3) for k, v in timings.items()},
    )
    return PageOutput(result=result, image_jpeg=jpeg, text_pdf=glyphless_font_pdf(settings.ocr.lang))


def without_stamp_text(stamps, raster, processed, words, text: str, conf: float):
    """OCR words without those of the PDF's e-signature stamps ("Ký bởi: …, Thời gian ký: …", the
    gazette centre's box): the stamps are metadata (the signatures themselves are read from the
    PDF), never text of the page, its issuer or its trích yếu. Their boxes come from the PDF
    (:func:`pipeline.stages.pdfsource.stamp_regions`) and are carried onto the deskewed page. A page
    turned by a quarter keeps its words (best effort). Returns (words, text, confidence, dropped)."""
    from pipeline.stages.deskew import map_box  # deferred: loads tesserocr, cv2, pytesseract
    from pipeline.stages.ocr import mean_confidence, words_to_text  # deferred: loads tesserocr, cv2, pytesseract

    if processed.orientation:
        return words, text, conf, 0
    h, w = raster.image.shape[:2]
    scale = processed.dpi / raster.dpi
    boxes = [map_box(b, (w, h), processed.skew_angle, scale) for b in stamps]

    def inside(word) -> bool:
        cx, cy = (word.bbox[0] + word.bbox[2]) / 2, (word.bbox[1] + word.bbox[3]) / 2
        return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in boxes)

    kept = [wd for wd in words if not inside(wd)]
    if len(kept) == len(words):
        return words, text, conf, 0
    return kept, words_to_text(kept), mean_confidence(kept), len(words) - len(kept)


def read_page(processed, settings: Settings):
    """OCR a processed page. A poor reading (confidence below the setting) may be an upside-down
    or sideways page: ask Tesseract OSD, read the turned page, keep the better reading.

    Returns ``(page, ocr_result, seconds spent on orientation)``.
    """
    from pipeline.stages.deskew import detect_orientation, reorient  # deferred: loads tesserocr, cv2, pytesseract
    from pipeline.stages.ocr import ocr_page  # deferred: loads tesserocr, cv2, pytesseract

    result = ocr_page(processed, settings.ocr, settings.limits)
    image = settings.image
    if not image.fix_orientation or image.orientation_osd == "always" or result[2] >= image.orientation_retry_below_conf:
        return processed, result, 0.0
    t0 = time.perf_counter()
    turn = detect_orientation(processed.ocr_image)
    if turn:
        turned = reorient(processed, turn)
        second = ocr_page(turned, settings.ocr, settings.limits)
        if second[2] > result[2]:
            processed, result = turned, second
    return processed, result, time.perf_counter() - t0


def encode_jpeg(rgb: np.ndarray, dpi: int, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, dpi=(dpi, dpi), optimize=False)
    return buf.getvalue()


def finalize_document(
    ref: SourceRef,
    info: DocumentInfo | ErrorItem,
    pages: list[PageOutput | ErrorItem],
    settings: Settings,
) -> DocumentOutcome:
    """Everything after OCR for one document, ending with the record stored (the commit point)."""
    from pipeline.warehouse.store import store_document, store_failed  # deferred: loads pikepdf, cryptography

    started = time.perf_counter()
    runtime = runtime_for(settings)
    error = info if isinstance(info, ErrorItem) else next((p for p in pages if isinstance(p, ErrorItem)), None)
    page_count = info.page_count if isinstance(info, DocumentInfo) else 0

    def failed(error: ErrorItem, results: list[PageResult]) -> DocumentOutcome:
        """The document ends as a ``failed`` record (with the pages read, if any)."""
        stored = store_failed(runtime, ref, base_record(ref, page_count, results, status="failed", error=error))
        return DocumentOutcome(document_id=ref.document_id, source_file=ref.source_file, status="failed",
                               pages=page_count, error=error, stored=stored, seconds=time.perf_counter() - started)

    if error is not None:
        return failed(error, [])
    assert isinstance(info, DocumentInfo)  # an ErrorItem is the error above
    try:
        outputs = [p for p in pages if isinstance(p, PageOutput)]
        record = build_record(ref, outputs, settings=settings, info=info)
        # S3 or the signer briefly unavailable: each call retries itself (pipeline.runtime.retry), the
        # document is signed once
        store_document(runtime, ref, record, outputs)
    except SohoaError as exc:
        error = ErrorItem.from_exception(exc)
    except Exception as exc:  # noqa: BLE001
        error = ErrorItem.from_exception(exc, stage="pipeline")
    if error is not None:
        return failed(error, [p.result for p in pages if isinstance(p, PageOutput)])
    return DocumentOutcome(
        document_id=ref.document_id,
        source_file=ref.source_file,
        status=record.status,
        pages=page_count,
        review_reasons=[f"{i.field}: {i.message}" for i in record.review_reasons + record.validation_errors],
        fields=record.fields,
        seconds=time.perf_counter() - started,
    )


# --- record building -----------------------------------------------------------------------


def base_record(
    ref: SourceRef,
    page_count: int,
    page_results: list[PageResult],
    *,
    status: Status,
    error: ErrorItem | None = None,
    record_type: RecordType = "admin_document",
    lang: str = "vie",
    ocr_engine: str = "library",
) -> Record:
    """The record of a document before extraction (and the whole record of a failed one)."""
    now = datetime.now(UTC).replace(microsecond=0)
    provenance = Provenance(
        source_sha256=ref.document_id,
        source_size=ref.size,
        page_sha256=[p.image_sha256 for p in page_results],
        pipeline_version=__version__,
        engines=engine_versions(lang, ocr_engine),
        processed_at=timestamp(now, zulu=True),
        unit=ref.unit,
        dossier=ref.dossier,
    )
    return Record(
        schema_=schema_id(record_type),
        record_type=record_type,
        schema_version=SCHEMA_VERSIONS[record_type],
        document_id=ref.document_id,
        version=1,
        source_file=ref.source_file,
        page_count=page_count,
        status=status,
        error=error.model_copy() if error else None,
        text="\n\n".join(p.text for p in page_results),
        pages=stored_pages(page_results),
        provenance=provenance,
        history=[HistoryEntry(version=1, at=timestamp(now), by=f"sohoa {__version__}", action="digitized")],
    )


def stored_pages(results: list[PageResult]) -> list[StoredPage]:
    """The pages as the record keeps them (the OCR results, words shared, not copied)."""
    return [StoredPage.model_validate(p, from_attributes=True) for p in results]


def build_record(
    ref: SourceRef, outputs: list[PageOutput], *, settings: Settings | None = None, info: DocumentInfo | None = None
) -> Record:
    """Quality gate, extraction and validation over the pages of one document; ``info`` brings the
    PDF's embedded signatures (kept in the provenance, and evidence for issuer, signer and date).
    The record comes back as the model (its envelope's types checked as it is built); the JSON
    Schema of its type is checked on its JSON form (:func:`pipeline.stages.validate.validate_record`)."""
    from pipeline.stages.validate import validate_record  # deferred: loads jsonschema

    ocr_settings = settings.ocr if settings else OcrSettings()
    results = [o.result for o in outputs]
    signatures = info.signatures if info is not None else []
    # the "Nơi nhận" block is read again from the image of OCR'd pages only: a text layer is exact
    images = [o.image_jpeg if o.result.text_source == "ocr" else None for o in outputs]
    extraction = extract(results, images=images, model_dir=settings.model_dir if settings else None,
                         signatures=signatures)  # fmt: skip
    sources = {p.page: p.text_source for p in results}
    for ev in extraction.evidence.values():
        if ev.source is None:
            ev.source = "handwriting" if ev.method == "handwriting" else sources.get(ev.page or 0, "ocr")
    review: list[FieldIssue] = list(extraction.issues)
    for page in results:
        report = assess_page_text(page.text, page.mean_confidence, ocr_settings)
        if not report.credible:
            page.quality_flags.extend(r for r in report.reasons if r not in page.quality_flags)
            review.append(
                FieldIssue(field="text", kind="quality", message=f"page {page.page}: " + "; ".join(report.reasons))
            )
    record_type = cast(RecordType, extraction.record_type)
    record = base_record(ref, len(results), results, status="ok", record_type=record_type,
                         ocr_engine=settings.ocr.engine if settings is not None else "library")  # fmt: skip
    record.provenance.signatures = signatures
    record.fields = extraction.fields
    record.field_confidence = extraction.confidence
    record.field_evidence = dict(extraction.evidence)

    document = record.to_json()  # one JSON form for both checks (neither reads review_reasons)
    shortfall = image_check_issue(document)  # Circular 02/2019/TT-BNV: the scan's resolution (colour: at export)
    if shortfall is not None:
        review.append(FieldIssue.model_validate(shortfall))
    record.validation_errors = validate_record(document)
    record.review_reasons = review
    record.status = "needs_review" if (record.validation_errors or review) else "ok"
    return record


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
