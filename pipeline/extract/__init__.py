"""Extract stage: from OCR pages to the typed fields of a record.

``extract(pages)`` classifies the document (administrative document, or a result of an
administrative procedure) and runs the matching extractor. Fields that are missing or read
with low confidence are flagged per field, which sends the record to ``needs_review``.
"""

from __future__ import annotations

from ..models import PageResult
from .admin import extract_admin
from .common import fold
from .result import Extraction

REQUIRED_FIELDS = {
    "admin_document": ("number", "doc_type", "issuer", "date", "subject"),
    "household_business_registration": ("business_code", "business_name", "owner_name", "issuer", "date"),
    "birth_certificate": ("full_name", "date_of_birth", "issuer", "date"),
}

MIN_FIELD_CONFIDENCE = 0.6


def classify(pages: list[PageResult]) -> str:
    """Record type from the first page's text."""
    head = fold(pages[0].text[:3000]) if pages else ""
    if "giay khai sinh" in head:
        return "birth_certificate"
    if "ho kinh doanh" in head and "dang ky" in head:
        return "household_business_registration"
    return "admin_document"


def extract(pages: list[PageResult], *, min_confidence: float = MIN_FIELD_CONFIDENCE) -> Extraction:
    record_type = classify(pages)
    if record_type == "admin_document":
        ex = extract_admin(pages)
    else:
        ex = Extraction(record_type=record_type)
    for name in REQUIRED_FIELDS[record_type]:
        if not ex.fields.get(name):
            ex.flag(name, "missing", f"{name} was not found on the page")
        elif ex.confidence.get(name, 1.0) < min_confidence:
            ex.flag(name, "low_confidence", f"{name} read with confidence {ex.confidence[name]:.2f} < {min_confidence:.2f}")
    return ex


__all__ = ["Extraction", "classify", "extract"]


def load_model(model_dir=None):
    """Load the trained extraction model once per process (None when none is bundled)."""
    return None


def model_version() -> str:
    return "rules-only"
