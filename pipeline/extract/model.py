"""The trained span model (``models/admin_ner``) and how it is combined with the rules.

The model is a spaCy ``vi`` pipeline with one NER component. Its input is what Tesseract gives,
in Tesseract's reading order: the words of the top of page 1 (header: columns merged, stamps and
all) and of the bottom of the signature page, one token per OCR word (syllable tokens,
``use_pyvi=False``: pyvi's word segmentation is unreliable on OCR noise, and one token per OCR word
maps every entity back to word boxes exactly). Labels: ISSUER, PARENT, DOCTYPE, NUMBER, DATE,
SUBJECT, PREFIX, TITLE, SIGNER.

Combination: the rules win wherever they matched; a model span fills a field the rules left
empty (layout cues broken: no Quốc hiệu to split columns on, a garbled type line, a signature
block without "Nơi nhận"), normalised by the same functions as the rules, with confidence =
0.75 × OCR confidence of its words and evidence method ``model``. Required fields it fills stay
subject to the usual review threshold.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..records import FieldEvidence
from .common import (
    clean_spaces,
    find_date,
    find_number,
    fold,
    match_doc_type,
    proper_case_agency,
    proper_case_person,
    proper_case_title,
)
from .result import Extraction

LABELS = ("ISSUER", "PARENT", "DOCTYPE", "NUMBER", "DATE", "SUBJECT", "PREFIX", "TITLE", "SIGNER")
MODEL_WEIGHT = 0.75
_JOINED = ("ISSUER", "PARENT", "SUBJECT", "TITLE")
NEWLINE = "¶"  # line-break token between OCR lines


def model_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


def version(path: Path) -> str:
    files = model_files(path)
    if not files:
        return "rules-only"
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    meta = {}
    if (path / "meta.json").exists():
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    return f"{meta.get('name', 'admin_ner')}-{meta.get('version', '0')}+{h.hexdigest()[:12]}"


def load(path: Path):
    if not (path / "meta.json").exists():
        return None
    try:
        import spacy

        return spacy.load(path)
    except Exception:  # noqa: BLE001 - no model means rules only, never a failed document
        return None


# --- input text from OCR pages ---------------------------------------------------------------


def region_words(page, y0: float, y1: float) -> list:
    """OCR words whose top lies in [y0, y1), in Tesseract's reading order."""
    return [w for w in page.words if y0 <= w.bbox[1] < y1 and w.text.strip()]


def make_doc(nlp, words) -> tuple[object, list]:
    """A Doc with one token per OCR word and a ¶ token between OCR lines; returns (doc, token→word)."""
    from spacy.tokens import Doc

    tokens, mapping = [], []
    prev_line = None
    for w in words:
        if prev_line is not None and w.line != prev_line:
            tokens.append(NEWLINE)
            mapping.append(None)
        tokens.append(w.text)
        mapping.append(w)
        prev_line = w.line
    return Doc(nlp.vocab, words=tokens or [NEWLINE]), mapping


def predict(nlp, words) -> dict[str, list[tuple[str, list]]]:
    """label → [(text, words)] for the entities the model finds in ``words``."""
    doc, mapping = make_doc(nlp, words)
    for _name, proc in nlp.pipeline:
        doc = proc(doc)
    out: dict[str, list[tuple[str, list]]] = {}
    for ent in doc.ents:
        ws = [mapping[i] for i in range(ent.start, ent.end) if mapping[i] is not None]
        if not ws:
            continue
        out.setdefault(ent.label_, []).append((" ".join(w.text for w in ws), ws))
    return out


def _conf(ws) -> float:
    total = sum(len(w.text) for w in ws) or 1
    return sum(w.conf * len(w.text) for w in ws) / total / 100.0


def _ev(page_no: int, ws) -> FieldEvidence:
    by_line: dict[int, list] = {}
    for w in ws:
        by_line.setdefault(w.line, []).append(w)
    boxes = [(min(w.bbox[0] for w in g), min(w.bbox[1] for w in g), max(w.bbox[2] for w in g), max(w.bbox[3] for w in g))
             for g in by_line.values()]  # fmt: skip
    return FieldEvidence(page=page_no, boxes=boxes, method="model")


def apply_model(ex: Extraction, pages, nlp) -> None:
    """Fill fields the rules missed from the model's spans."""
    if not pages or not pages[0].words:
        return
    first = pages[0]
    head = predict(nlp, region_words(first, 0, first.height * 0.45))

    def fill(name: str, label: str, normalise, src=head, page_no=first.page) -> None:
        if name in ex.fields or ex.has_issue(name) and name in ("number", "date"):
            return
        found = src.get(label, [])
        if label in _JOINED and found:  # a name wrapped over lines / split by the other column
            found = [(" ".join(t for t, _ in found), [w for _, ws in found for w in ws])]
        for text, ws in found:
            value = normalise(clean_spaces(text))
            if value:
                ex.set(name, value, MODEL_WEIGHT * _conf(ws), _ev(page_no, ws))
                return

    rules_issuer = "issuer" in ex.fields
    fill("issuer", "ISSUER", proper_case_agency)
    if not rules_issuer:  # the rules' issuer lines already decided whether a parent is printed
        fill("issuer_parent", "PARENT", proper_case_agency)
    fill("doc_type", "DOCTYPE", lambda t: (match_doc_type(t, min_score=60) or (None,))[0])

    def _number(t: str):
        m = find_number(t if fold(t).startswith("s") else f"Số: {t}")
        return m.number if m else None

    fill("number", "NUMBER", _number)

    def _date(t: str):
        m = find_date(t)
        return m.value.isoformat() if m and m.value else None

    fill("date", "DATE", _date)
    fill("subject", "SUBJECT", lambda t: clean_spaces(t.replace("V/v ", "", 1)) if len(t) > 8 else None)

    last = pages[-1]
    sig = predict(nlp, region_words(last, last.height * 0.35 if len(pages) > 1 else last.height * 0.5, last.height))
    fill("authority_prefix", "PREFIX", _prefix, sig, last.page)
    fill("signer_title", "TITLE", proper_case_title, sig, last.page)
    fill("signer", "SIGNER", lambda t: proper_case_person(t) if 2 <= len(t.split()) <= 6 else None, sig, last.page)


def _prefix(text: str) -> str | None:
    parts = text.split(None, 1)
    if len(parts) != 2:
        return None
    p = parts[0].rstrip(".,:").upper()
    if p not in ("KT", "TL", "TM", "Q", "TUQ"):
        return None
    return f"{p}. {proper_case_title(parts[1])}"
