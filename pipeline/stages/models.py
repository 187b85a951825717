"""Small typed models passed between the stages.

Stages are plain functions: ``load`` gives :class:`RasterPage` objects, ``deskew``/``cleanup``
give :class:`ProcessedPage`, ``ocr`` gives :class:`PageResult` (serialisable, kept in the
record) plus binary artefacts in :class:`PageOutput`. Record models (what is signed and
stored) live in :mod:`pipeline.records.record`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.runtime.errors import SohoaError

Status = Literal["ok", "needs_review", "failed"]

STAGES = (
    "ingest",
    "load",
    "deskew",
    "cleanup",
    "ocr",
    "quality",
    "extract",
    "validate",
    "sign",
    "store",
    "pipeline",
)


class ErrorItem(BaseModel):
    """What went wrong with one document, at which stage and page (cf. docling's ErrorItem)."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    code: str
    message: str
    page: int | None = None
    transient: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException, *, stage: str | None = None) -> ErrorItem:
        if isinstance(exc, SohoaError):
            return cls(
                stage=exc.stage,
                code=exc.code,
                message=exc.message,
                page=exc.page,
                transient=exc.transient,
            )
        return cls(
            stage=stage or "pipeline",
            code=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
        )


class SourceRef(BaseModel):
    """A document accepted into the warehouse: what a worker needs to fetch and name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    document_id: str = Field(description="SHA-256 (hex) of the source bytes")
    source_file: str = Field(description="Original file name, for display only; never a path")
    size: int
    original_key: str = Field(description="Warehouse key of the original bytes")
    unit: str | None = Field(default=None, description="Uploading unit (Bộ phận Một cửa), if any")
    dossier: str | None = Field(default=None, description="Dossier code (mã hồ sơ), if any")


class Word(BaseModel):
    """One OCR word with its box (pixels of the processed page image) and confidence 0–100."""

    model_config = ConfigDict(extra="forbid")

    text: str
    conf: float
    bbox: tuple[int, int, int, int]
    line: int = Field(description="Index of the text line on the page, in reading order")
    block: int = 0


class PageResult(BaseModel):
    """OCR result of one page, as kept in the record."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(description="1-based page number")
    width: int
    height: int
    dpi: int
    skew_angle: float = 0.0
    orientation: int = 0
    text: str = ""
    words: list[Word] = Field(default_factory=list)
    mean_confidence: float = 0.0
    image_sha256: str = Field(default="", description="SHA-256 of the page raster as rendered from the source")
    text_source: Literal["ocr", "text_layer"] = Field(
        default="ocr",
        description="Where the page's words come from: Tesseract OCR of the image, or the PDF's own text layer "
        "(a born-digital page: its text and positions as the PDF carries them)",
    )
    quality_flags: list[str] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


@dataclass
class RasterPage:
    """A page as rendered from the source file (colour, original resolution)."""

    page: int
    image: np.ndarray  # HxW uint8 grey (grey or bitonal source) or HxWx3 uint8 RGB
    dpi: int
    sha256: str
    #: what the load stage did to the pixels before anything else saw them, as page flags
    #: (``scan_lines_restored:<n>``); carried into :attr:`ProcessedPage.flags` by the deskew stage
    notes: tuple[str, ...] = ()


@dataclass
class ProcessedPage:
    """A page after deskew and clean-up: ``color`` is kept for storage, ``ocr_image`` is read."""

    page: int
    color: np.ndarray  # the page as stored, deskewed, borders removed: HxW grey or HxWx3 RGB, as loaded
    ocr_image: np.ndarray  # HxW uint8, cleaned for OCR, same geometry as ``color``
    dpi: int
    skew_angle: float
    orientation: int
    source_sha256: str
    flags: list[str] = field(default_factory=list)


@dataclass
class PageOutput:
    """What a page task returns: the serialisable result plus binary artefacts."""

    result: PageResult
    image_jpeg: bytes  # deskewed colour page, for the searchable PDF and the review desk
    text_pdf: bytes  # a text-only PDF page carrying Tesseract's glyphless font, for the text layer (may be empty)


@dataclass
class DocumentInfo:
    """What probing a source file tells before its pages are processed."""

    media_type: str
    page_count: int
    #: The PDF's embedded signatures (pipeline.stages.pdfsource.EmbeddedSignature.to_json), in file order.
    signatures: list[dict] = field(default_factory=list)
