"""Extract stage: from OCR pages to the typed fields of a record.

``extract(pages)`` classifies the document (administrative document, or a result of an
administrative procedure) and runs the matching extractor:

* rules (:mod:`.admin`, :mod:`.forms`) read the Decree-30 layout from word boxes — exact for the
  number and date, and their value stands wherever it passes the field's check;
* the trained model (``models/admin_ner``, :mod:`.model`): its NER spans (mapped back to word
  boxes) win where the rules found nothing or their value fails the check (layout cues broken:
  merged columns, garbled type line, stamp over the header, a signature block without cues), and
  its syllable lexicon puts back diacritics OCR dropped on capitals (issuer, cơ quan chủ quản,
  chức danh, trích yếu);
* references and tasks are read from the body text (:mod:`.references`);
* given the stored page images, the "Nơi nhận" block is OCR'd again on its own (:mod:`.reread`):
  on the page Tesseract reads it in lines shared with the signature block and garbles short
  entries.

Fields that are missing, invalid, inconsistent or read with low confidence are flagged per field,
which sends the record to ``needs_review``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..models import PageResult
from .admin import check_number_type, extract_admin
from .common import fold
from .result import Extraction

REQUIRED_FIELDS = {
    "admin_document": ("number", "doc_type", "issuer", "date", "subject"),
    "household_business_registration": ("business_code", "business_name", "owner_name", "issuer", "date"),
    "birth_certificate": ("full_name", "date_of_birth", "issuer", "date"),
}

MIN_FIELD_CONFIDENCE = 0.6

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "admin_ner"

_MODEL: Any = None
_MODEL_DIR: Path | None = None
_MODEL_LOADED = False


def classify(pages: list[PageResult]) -> str:
    """Record type from the first page's text (title of a procedure result, else admin document)."""
    head = fold(pages[0].text[:1500]) if pages else ""
    if "giay khai sinh" in head or ("khai sinh" in head and "ho, chu dem" in head):
        return "birth_certificate"
    if "ho kinh doanh" in head and ("dang ky" in head or "chung nhan" in head):
        return "household_business_registration"
    return "admin_document"


def load_model(model_dir: str | Path | None = None):
    """Load the trained extraction model once per process; None when it is not available.

    A Dask WorkerPlugin calls this on each worker at start-up so the first document does not pay
    for it. Loading failures (spaCy or pyvi missing, no model files) degrade to rules only.
    """
    global _MODEL, _MODEL_DIR, _MODEL_LOADED
    path = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    if _MODEL_LOADED and _MODEL_DIR == path:
        return _MODEL
    from .model import load

    _MODEL = load(path)
    _MODEL_DIR = path
    _MODEL_LOADED = True
    return _MODEL


def model_version(model_dir: str | Path | None = None) -> str:
    """'admin_ner-<version>+<sha256 of the model files, 12 hex>' or 'rules-only'."""
    from .model import version

    return version(Path(model_dir) if model_dir else (_MODEL_DIR or DEFAULT_MODEL_DIR))


def extract(
    pages: list[PageResult],
    *,
    min_confidence: float = MIN_FIELD_CONFIDENCE,
    use_model: bool = True,
    model_dir: str | Path | None = None,
    images: Sequence[Any] | None = None,
) -> Extraction:
    """Fields of the document read from its OCR ``pages``.

    ``images``: optionally the stored page images, one per page (``PageOutput.image_jpeg``: JPEG
    bytes of the deskewed colour page; or arrays; None for a page without one). With them the
    "Nơi nhận" block is read a second time on its own (:mod:`.reread`); without, from the page
    OCR only."""
    record_type = classify(pages)
    if record_type == "admin_document":
        ex = extract_admin(pages, images)
        if use_model:
            nlp = load_model(model_dir)
            if nlp is not None:
                from .model import apply_model

                apply_model(ex, pages, nlp)
                check_number_type(ex)
        from .references import extract_references, extract_tasks

        refs = extract_references(pages)
        tasks = extract_tasks(pages)
        ex.fields["references"] = refs
        ex.fields["tasks"] = tasks
    else:
        from .forms import extract_form

        ex = extract_form(record_type, pages)
    for name in REQUIRED_FIELDS[record_type]:
        if ex.has_issue(name):
            continue
        if not ex.fields.get(name):
            ex.flag(name, "missing", f"{name} was not found on the page")
        elif ex.confidence.get(name, 1.0) < min_confidence:
            ex.flag(name, "low_confidence", f"{name} read with confidence {ex.confidence[name]:.2f} < {min_confidence:.2f}")
    return ex


__all__ = ["Extraction", "REQUIRED_FIELDS", "classify", "extract", "load_model", "model_version"]
