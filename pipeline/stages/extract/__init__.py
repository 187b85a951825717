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
  entries; so are the signature block (always) and the title zone (when the page's reading gave
  no type name: a stamp beside it) — values only a second reading gave are named for review.

Fields that are missing, invalid, inconsistent or read with low confidence are flagged per field,
which sends the record to ``needs_review``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.stages.extract.admin import check_number_type, extract_admin, strip_ve_viec
from pipeline.stages.extract.common import fold, unknown_province
from pipeline.stages.extract.lexicon import apply_lexicon
from pipeline.stages.extract.result import Extraction
from pipeline.stages.models import PageResult

REQUIRED_FIELDS = {
    "admin_document": ("number", "doc_type", "issuer", "date", "subject"),
    "household_business_registration": ("business_code", "business_name", "owner_name", "issuer", "date"),
    "birth_certificate": ("full_name", "date_of_birth", "issuer", "date"),
}

MIN_FIELD_CONFIDENCE = 0.6

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "admin_ner"

_MODEL: Any = None
_MODEL_DIR: Path | None = None
_MODEL_LOADED = False


#: Field labels that only a procedure result's form prints (its structure, not its words):
#: a document that prints two of them is that form.
FORM_LABELS = {
    "birth_certificate": ("ho, chu dem, ten", "ngay, thang, nam sinh", "noi sinh", "so dinh danh ca nhan",
                          "noi dang ky khai sinh", "ho, chu dem, ten nguoi me", "ho, chu dem, ten nguoi cha"),
    "household_business_registration": ("ten ho kinh doanh", "ma so ho kinh doanh", "dia diem kinh doanh",
                                        "nganh, nghe kinh doanh", "von kinh doanh", "chu ho kinh doanh"),
}  # fmt: skip


def classify(pages: list[PageResult]) -> str:
    """Record type from the first page's heading, else its form's structure; an administrative
    document otherwise.

    The heading is the capitals of the page's top part ("GIẤY KHAI SINH", "GIẤY CHỨNG NHẬN ĐĂNG KÝ
    HỘ KINH DOANH"); words of a body ("… xử phạt hộ kinh doanh …") never decide the type. A form
    without a readable heading is known by two or more of its printed field labels."""
    if not pages:
        return "admin_document"
    from pipeline.stages.extract.common import (
        uppercase_ratio,  # deferred: import cycle (pipeline.stages.extract.common imports pipeline.stages.extract)
    )
    from pipeline.stages.extract.layout import (
        page_lines,  # deferred: import cycle (pipeline.stages.extract.layout imports pipeline.stages.extract)
    )

    page = pages[0]
    top = [ln for ln in page_lines(page) if ln.top < page.height * 0.45] if page.words else []
    heading = " ".join(fold(ln.text) for ln in top if uppercase_ratio(ln.text) > 0.7)
    if not page.words:  # text only (no word boxes): its first lines stand for the heading
        heading = " ".join(fold(line) for line in page.text.splitlines()[:12] if uppercase_ratio(line) > 0.7)
    if "khai sinh" in heading:
        return "birth_certificate"
    if "ho kinh doanh" in heading and ("dang ky" in heading or "chung nhan" in heading):
        return "household_business_registration"
    text = fold(page.text[:4000])
    for record_type, labels in FORM_LABELS.items():
        if sum(label in text for label in labels) >= 2:
            return record_type
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
    from pipeline.stages.extract.model import (
        load,  # deferred: import cycle (pipeline.stages.extract.model imports pipeline.stages.extract)
    )

    _MODEL = load(path)
    _MODEL_DIR = path
    _MODEL_LOADED = True
    return _MODEL


def model_version(model_dir: str | Path | None = None) -> str:
    """'admin_ner-<version>+<sha256 of the model files, 12 hex>' or 'rules-only'."""
    from pipeline.stages.extract.model import (
        version,  # deferred: import cycle (pipeline.stages.extract.model imports pipeline.stages.extract)
    )

    return version(Path(model_dir) if model_dir else (_MODEL_DIR or DEFAULT_MODEL_DIR))


def extract(
    pages: list[PageResult],
    *,
    min_confidence: float = MIN_FIELD_CONFIDENCE,
    use_model: bool = True,
    model_dir: str | Path | None = None,
    images: Sequence[Any] | None = None,
    signatures: list[dict[str, Any]] | None = None,
) -> Extraction:
    """Fields of the document read from its OCR ``pages``.

    ``images``: optionally the stored page images, one per page (``PageOutput.image_jpeg``: JPEG
    bytes of the deskewed colour page; or arrays; None for a page without one). With them the
    "Nơi nhận" block is read a second time on its own (:mod:`.reread`); without, from the page
    OCR only. ``signatures``: the PDF's embedded signatures (``DocumentInfo.signatures``), evidence
    for issuer, signer and date (:mod:`.signatures`)."""
    record_type = classify(pages)
    if record_type == "admin_document":
        ex = extract_admin(pages, images)
        if use_model:
            nlp = load_model(model_dir)
            if nlp is not None:
                from pipeline.stages.extract.model import (
                    apply_model,  # deferred: import cycle (pipeline.stages.extract.model imports pipeline.stages.extract)
                )

                apply_model(ex, pages, nlp)
                check_number_type(ex)
        if ex.fields.get("subject"):  # the content only, as for a công văn's "V/v …"
            ex.fields["subject"] = strip_ve_viec(ex.fields["subject"])
        apply_lexicon(ex, pages)
        from pipeline.stages.extract.signatures import (
            apply_signatures,  # deferred: import cycle (pipeline.stages.extract.signatures imports pipeline.stages.extract)
        )

        apply_signatures(ex, signatures or [])
        from pipeline.stages.extract.references import (  # deferred: import cycle (pipeline.stages.extract.references imports pipeline.stages.extract)
            extract_references,
            extract_tasks,
        )

        refs = extract_references(pages)
        tasks = extract_tasks(pages)
        ex.fields["references"] = refs
        ex.fields["tasks"] = tasks
    else:
        from pipeline.stages.extract.forms import (
            extract_form,  # deferred: import cycle (pipeline.stages.extract.forms imports pipeline.stages.extract)
        )

        ex = extract_form(record_type, pages)
    if record_type == "admin_document" and not ex.fields.get("signer_title") and not ex.fields.get("authority_prefix"):
        # no signature block read: whether a prefix (KT./TL./TM.) stands above the title is unknown
        ex.flag("authority_prefix", "missing", "the signature block was not read: check whether the signer signs "
                "for the head (KT./TL./TM.)")  # fmt: skip
    for name in REQUIRED_FIELDS[record_type] + EXPECTED_FIELDS.get(record_type, ()):
        if ex.has_issue(name):
            continue
        if not ex.fields.get(name):
            ex.flag(name, "missing", f"{name} was not found on the page")
    for name, value in ex.fields.items():
        if ex.has_issue(name) or value in (None, "", []):
            continue
        floor = FIELD_MIN_CONFIDENCE.get(name, min_confidence)
        if ex.confidence.get(name, 1.0) < floor:
            ex.flag(name, "low_confidence", f"{name} read with confidence {ex.confidence[name]:.2f} < {floor:.2f}")
        elif name in ("issuer", "issuer_parent") and unknown_province(value):
            ex.flag(name, "invalid", f"'{unknown_province(value)}' after 'tỉnh' is no province: a word was lost or misread")
        elif isinstance(value, str) and _FOREIGN.search(value):
            ex.flag(name, "low_confidence", f"{name} holds characters that are not Vietnamese text "
                    f"({', '.join(sorted(set(_FOREIGN.findall(value))))}): a word was misread")  # fmt: skip
    return ex


#: Fields every document of the type carries although a record may be stored without them: a
#: missing one is named in ``review_reasons`` (Decree 30: địa danh, chức vụ and họ tên of the signer).
EXPECTED_FIELDS: dict[str, tuple[str, ...]] = {"admin_document": ("place", "signer", "signer_title", "recipients")}

#: Per-field review thresholds where the default does not fit. Recipients: a list of 5–17 OCR'd
#: entries whose weakest line is read below 0.92 held at least one wrong entry on every real scan
#: of the development set; the signer: the weakest syllable of a name.
FIELD_MIN_CONFIDENCE: dict[str, float] = {"recipients": 0.92, "signer": 0.85, "signer_title": 0.6}

#: Letters that are no part of Vietnamese text (Tesseract's guesses for a syllable under a seal or
#: a stroke: 'Nøgãi', '0†'); a field holding one was misread somewhere.
_FOREIGN = re.compile(r"[øØ†‡§¶ßþÞæÆœŒ¤¢£¥©®°±µ¿¡ƒ]")


__all__ = ["Extraction", "REQUIRED_FIELDS", "classify", "extract", "load_model", "model_version"]
