"""The trained model (``models/admin_ner``) and how it is combined with the rules.

Two trained parts, both built by ``models/train.py`` from generated training-split documents:

* a spaCy ``vi`` pipeline with one NER component. Its input is what Tesseract gives, in
  Tesseract's reading order: the words of the top of page 1 (header: columns merged, stamps and
  all) and of the signature block of the last page, one token per OCR word (syllable tokens,
  ``use_pyvi=False``: pyvi's word segmentation is unreliable on OCR noise, and one token per OCR
  word maps every entity back to word boxes exactly). Labels: ISSUER, PARENT, DOCTYPE, NUMBER,
  DATE, SUBJECT, PREFIX, TITLE, SIGNER.
* a syllable lexicon (``lexicon.json``: written forms of each diacritic-free syllable and syllable
  bigrams) that puts back the dấu thanh / dấu mũ Tesseract drops or changes on capitals
  ("HANH CHINH" → "HÀNH CHÍNH", "SỞ NỌI VỤ" → "SỞ NỘI VỤ", "PHƯỜNG BỀN NGHÉ" → "BẾN NGHÉ").

Combination (:func:`apply_model`), field by field:

* number, date: the rules (exact patterns) decide; the model only fills one they did not find;
* issuer, signer, signer_title, doc_type, subject, authority_prefix: the rules' value stands when
  it passes the field's check (an agency name starts with an agency word, a title is a known chức
  danh, a name is 2–6 capitalised syllables); a model span wins where the rules found nothing or
  their value fails the check and the model's passes — confidence 0.75 × OCR confidence of its
  words, evidence method ``model``;
* issuer, issuer_parent, signer_title, subject: the lexicon corrects syllables printed in capitals
  whose written form the context contradicts; a changed value gets evidence method ``model``.

A value the NER model alone gives (the rules found none, or none passing the field's check) is
named in ``review_reasons``: the model is trained on generated pages, and on real scans its spans
ran into the body.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.records.record import FieldEvidence
from pipeline.stages.extract.common import (
    DOC_TYPES,
    clean_spaces,
    find_date,
    find_number,
    fold,
    join_name_fragments,
    known_title,
    looks_like_person,
    match_doc_type,
    match_head_title,
    nfc,
    proper_case_agency,
    proper_case_person,
    proper_case_title,
    restore_surname,
)
from pipeline.stages.extract.result import Extraction

if TYPE_CHECKING:
    from spacy.tokens import Doc

LABELS = ("ISSUER", "PARENT", "DOCTYPE", "NUMBER", "DATE", "SUBJECT", "PREFIX", "TITLE", "SIGNER")
MODEL_WEIGHT = 0.75
_JOINED = ("ISSUER", "PARENT", "SUBJECT", "TITLE")
NEWLINE = "¶"  # line-break token between OCR lines
LEXICON_FILE = "lexicon.json"


# --- the syllable lexicon (dấu restoration) ----------------------------------------------------


@dataclass
class Lexicon:
    """Written forms of Vietnamese syllables seen in training text, keyed by their folded form.

    ``forms``: folded syllable → {lower-case written form: count}; ``left`` / ``right``: how often
    a written form follows / precedes a folded neighbour syllable (from syllable bigrams)."""

    forms: dict[str, dict[str, int]] = field(default_factory=dict)
    left: dict[tuple[str, str], int] = field(default_factory=dict)
    right: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, unigrams: dict[str, int], bigrams: dict[str, int]) -> Lexicon:
        lex = cls()
        for form, n in unigrams.items():
            lex.forms.setdefault(fold(form), {})[form] = n
        for pair, n in bigrams.items():
            a, b = pair.split(" ")
            lex.left[(fold(a), b)] = lex.left.get((fold(a), b), 0) + n
            lex.right[(a, fold(b))] = lex.right.get((a, fold(b)), 0) + n
        return lex


SYLLABLE_RE = re.compile(r"[a-zđà-ỹ]+")
_PUNCT = ".,;:()\"'“”"


def syllable_runs(text: str) -> list[list[str]]:
    """Runs of lower-case syllables of a text (punctuation, digits and symbols end a run): the
    units whose neighbours the lexicon counts, in training and at run time alike."""
    out: list[list[str]] = [[]]
    for tok in nfc(text).lower().split():
        core = tok.strip(_PUNCT)
        if not SYLLABLE_RE.fullmatch(core or "-"):
            out.append([])
            continue
        if tok[: 1] in _PUNCT and out[-1]:
            out.append([])
        out[-1].append(core)
        if tok[-1:] in _PUNCT:
            out.append([])
    return [r for r in out if r]


def load_lexicon(path: Path) -> Lexicon | None:
    f = path / LEXICON_FILE
    if not f.exists():
        return None
    data = json.loads(f.read_text(encoding="utf-8"))
    return Lexicon.from_counts(data["unigrams"], data["bigrams"])


_TOKEN_RE = re.compile(r"^(\W*)([^\W\d_]+)(\W*)$")


def _case_like(form: str, model: str) -> str:
    if model.isupper() and (len(model) > 1 or len(form) == 1):
        return form.upper()
    if model[:1].isupper():
        return form[:1].upper() + form[1:]
    return form


def restore_marks(text: str, lex: Lexicon | None) -> str:
    """Put back diacritics OCR lost or changed on words printed in capitals, where the lexicon's
    context says so (Tesseract reads the marks of lower-case text far more reliably).

    A syllable is changed only when (a) it is not a known written form and a known form of the
    same letters was seen next to its neighbours, or (b) it is a known form that neither
    neighbour was ever seen with while another form was seen with both. Words the lexicon does
    not know, or knows no context for, stay as OCR read them. Case follows the printed word."""
    if lex is None or not text:
        return text
    toks = text.split(" ")
    # (leading punctuation, letters, trailing punctuation) of each token that is one syllable
    parts: list[tuple[str, str, str] | None] = []
    for t in toks:
        m = _TOKEN_RE.match(nfc(t))
        parts.append((m.group(1), m.group(2), m.group(3)) if m else None)
    out = []
    for i, t in enumerate(toks):
        part = parts[i]
        if part is None:
            out.append(t)
            continue
        pre, core, post = part
        low = core.lower()
        if not core.isupper():
            out.append(t)
            continue
        # neighbours inside the same run of syllables (punctuation breaks the context)
        prev = parts[i - 1] if i > 0 else None
        nxt = parts[i + 1] if i + 1 < len(toks) else None
        kp = fold(prev[1].lower()) if prev is not None and not prev[2] and not pre else None
        kn = fold(nxt[1].lower()) if nxt is not None and not post and not nxt[0] else None
        best = _best_form(low, kp, kn, lex)
        out.append(pre + (_case_like(best, core) if best and best != low else core) + post)
    return " ".join(out)


def _ctx(form: str, kp: str | None, kn: str | None, lex: Lexicon) -> tuple[int, int]:
    return (lex.left.get((kp, form), 0) if kp else 0, lex.right.get((form, kn), 0) if kn else 0)


def _best_form(low: str, kp: str | None, kn: str | None, lex: Lexicon) -> str | None:
    key = fold(low)
    cands = lex.forms.get(key, {})
    if low in cands:
        here = _ctx(low, kp, kn, lex)
        if sum(here) > 0 or not (kp and kn):
            return None
        scored = [(f, _ctx(f, kp, kn, lex)) for f in cands if f != low]
        scored = [(f, c) for f, c in scored if c[0] > 0 and c[1] > 0]
        if not scored:
            return None
        return max(scored, key=lambda fc: (min(fc[1]), sum(fc[1])))[0]
    if not cands and len(key) >= 4:  # a doubled/extra letter ('PHỔỐ'): one letter deleted
        cands = {}
        for j in range(len(key)):
            for f, n in lex.forms.get(key[:j] + key[j + 1 :], {}).items():
                cands[f] = n
        cands = {f: n for f, n in cands.items() if sum(_ctx(f, kp, kn, lex)) > 0}
    if not cands:
        return None
    ranked = [(f, sum(_ctx(f, kp, kn, lex)), n) for f, n in cands.items()]
    f, c, _n = max(ranked, key=lambda x: (x[1], x[2]))
    return f if c > 0 else None


# --- loading -------------------------------------------------------------------------------


@dataclass
class AdminModel:
    """The loaded artifact: spaCy pipeline (NER) and syllable lexicon (either may be absent)."""

    nlp: object | None
    lexicon: Lexicon | None


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


def load(path: Path) -> AdminModel | None:
    if not (path / "meta.json").exists():
        return None
    try:
        import spacy  # deferred: loads spacy, thinc, urllib3

        nlp = spacy.load(path)
    except Exception:  # noqa: BLE001 - no model means rules only, never a failed document
        nlp = None
    try:
        lexicon = load_lexicon(path)
    except (OSError, ValueError, KeyError):
        lexicon = None
    if nlp is None and lexicon is None:
        return None
    return AdminModel(nlp=nlp, lexicon=lexicon)


# --- input text from OCR pages ---------------------------------------------------------------


def region_words(page, y0: float, y1: float) -> list:
    """OCR words whose top lies in [y0, y1), in Tesseract's reading order."""
    return [w for w in page.words if y0 <= w.bbox[1] < y1 and w.text.strip()]


def signature_region_top(page, multi_page: bool) -> float:
    """Where the signature block's region starts on the last page: the line ending the body
    ("…./."), else the "Nơi nhận" line, else the top of a short last page, else 35 % (50 % on a
    one-page document) down the page. (A signature page of its own has the block at the top.)"""
    lines: dict[int, list] = {}
    for w in page.words:
        if w.text.strip():
            lines.setdefault(w.line, []).append(w)
    tops = []
    for ws in lines.values():
        text = " ".join(w.text for w in sorted(ws, key=lambda w: w.bbox[0])).rstrip()
        if text.endswith(("./.", "/.")) or fold(text).startswith("noi nhan"):
            tops.append((text.endswith(("./.", "/.")), min(w.bbox[1] for w in ws)))
    ends = [t for is_end, t in tops if is_end]
    if ends:
        return max(ends)
    if tops:
        return max(0.0, min(t for _, t in tops) - 0.02 * page.height)
    if multi_page and len(lines) <= 15:  # a short last page: the block is all there is
        return 0.0
    return page.height * (0.35 if multi_page else 0.5)


def make_doc(nlp, words) -> tuple[Doc, list]:
    """A Doc with one token per OCR word and a ¶ token between OCR lines; returns (doc, token→word)."""
    from spacy.tokens import Doc  # deferred: loads spacy, thinc, urllib3

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


# --- field checks: is a value plausible for its field? ---------------------------------------

_AGENCY_STARTS = tuple(fold(w) + " " for w in (
    "Ủy ban nhân dân", "Hội đồng nhân dân", "Bộ", "Sở", "Cục", "Tổng cục", "Vụ", "Văn phòng", "Ban", "Phòng",
    "Chi cục", "Trung tâm", "Thanh tra", "Viện", "Học viện", "Trường", "Bệnh viện", "Kho bạc", "Ngân hàng",
    "Bảo hiểm xã hội", "Công an", "Tòa án nhân dân", "Viện kiểm sát nhân dân", "Đài", "Tổng công ty", "Công ty",
    "Chính phủ", "Thủ tướng Chính phủ", "Quốc hội", "Chủ tịch nước", "Mặt trận", "Đoàn", "Hội", "Liên đoàn",
))  # fmt: skip


def agency_ok(value: str | None) -> bool:
    """An agency name (tên cơ quan): starts with an agency word and has a specific name after it."""
    if not value:
        return False
    f = fold(value) + " "
    return any(f.startswith(a) for a in _AGENCY_STARTS) and len(value.split()) >= 2 and len(value) <= 120


def title_ok(value: str | None) -> bool:
    """A chức danh of a signer ('Phó Chủ tịch', 'Vụ trưởng Vụ …')."""
    if not value:
        return False
    return known_title(value) or match_head_title(value) is not None


def signer_ok(value: str | None) -> bool:
    if not value:
        return False
    return looks_like_person(value)


def prefix_ok(value: str | None) -> bool:
    """'KT. Chủ tịch', 'TM. Ủy ban nhân dân' (thẩm quyền ký: a head title or a collective body)."""
    if not value:
        return False
    body = value.split(" ", 1)[-1].split(";")[0]
    return title_ok(body) or fold(body).startswith(("uy ban", "hoi dong", "chinh phu"))


def doc_type_ok(value: str | None) -> bool:
    return value in DOC_TYPES


def subject_ok(value: str | None) -> bool:
    if not value:
        return False
    return len(value) > 8 and value[:1].isupper()


CHECKS = {
    "issuer": agency_ok,
    "issuer_parent": agency_ok,
    "signer_title": title_ok,
    "signer": signer_ok,
    "authority_prefix": prefix_ok,
    "doc_type": doc_type_ok,
    "subject": subject_ok,
}


# --- the combination -------------------------------------------------------------------------


def apply_model(ex: Extraction, pages, model) -> None:
    """Combine the model with the rules' extraction ``ex`` (see the module docstring)."""
    if not pages or not pages[0].words:
        return
    if not isinstance(model, AdminModel):  # a bare spaCy pipeline
        model = AdminModel(nlp=model, lexicon=None)
    lex = model.lexicon
    if model.nlp is not None:
        _apply_ner(ex, pages, model.nlp, lex)
    if lex is not None:
        _apply_lexicon(ex, lex)


def _apply_ner(ex: Extraction, pages, nlp, lex: Lexicon | None) -> None:
    first = pages[0]
    head = predict(nlp, region_words(first, 0, first.height * 0.45))

    def offer(name: str, label: str, normalise, src=head, page_no=first.page, exact: bool = False) -> None:
        """Set ``name`` from the model unless the rules' value stands (found and, unless the
        rules are exact for this field, passing the field's check)."""
        have = name in ex.fields
        if exact and (have or ex.has_issue(name)):
            return
        check = CHECKS.get(name, bool)
        if have and check(ex.fields[name]):
            return
        found = src.get(label, [])
        if label in _JOINED and found:  # a name wrapped over lines / split by the other column
            found = [(" ".join(t for t, _ in found), [w for _, ws in found for w in ws])]
        for text, ws in found:
            text = clean_spaces(text)
            value = normalise(restore_marks(text, lex) if lex else text)
            if value and check(value):
                ex.set(name, value, MODEL_WEIGHT * _conf(ws), _ev(page_no, ws))
                ex.hints.setdefault("model_fields", {})[name] = "ner"
                # trained on generated pages only: on real scans its spans ran into the body
                # (two trích yếu of the development set), so a value it alone gives is reviewed
                ex.flag(name, "low_confidence", "read by the trained model alone (no layout rule gave a value "
                        "that passes its check): confirm against the page")  # fmt: skip
                return

    rules_issuer = "issuer" in ex.fields
    offer("issuer", "ISSUER", proper_case_agency)
    if not rules_issuer:  # the rules' issuer lines already decided whether a parent is printed
        offer("issuer_parent", "PARENT", proper_case_agency)
    offer("doc_type", "DOCTYPE", lambda t: (match_doc_type(t, min_score=60) or (None,))[0])

    def _number(t: str):
        m = find_number(t if fold(t).startswith("s") else f"Số: {t}")
        return m.number if m else None

    offer("number", "NUMBER", _number, exact=True)

    def _date(t: str):
        m = find_date(t)
        return m.value.isoformat() if m and m.value else None

    offer("date", "DATE", _date, exact=True)
    offer("subject", "SUBJECT", lambda t: clean_spaces(re.sub(r"^V\s*/\s*v\s+", "", t)) if len(t) > 8 else None)

    last = pages[-1]
    sig = predict(nlp, region_words(last, signature_region_top(last, len(pages) > 1), last.height))
    offer("authority_prefix", "PREFIX", _prefix, sig, last.page)
    offer("signer_title", "TITLE", lambda t: match_head_title(t) if not known_title(t) else proper_case_title(t),
          sig, last.page)  # fmt: skip
    offer("signer", "SIGNER", _person, sig, last.page)


def _person(text: str) -> str | None:
    """A signer's name from a SIGNER span (họ và tên: 2–6 syllables, each capitalised)."""
    name = join_name_fragments(clean_spaces(re.sub(r"[^\wÀ-ỹ ]", " ", nfc(text))))
    if not 2 <= len(name.split()) <= 6:
        return None
    return restore_surname(proper_case_person(name))


#: Fields whose words the lexicon may correct, with the normaliser to re-apply after it (the
#: rules keep the printed text of these in ``ex.hints["raw"]``; the trích yếu keeps its case).
_LEXICON_FIELDS = {
    "issuer": proper_case_agency,
    "issuer_parent": proper_case_agency,
    "signer_title": lambda t: (None if known_title(t) else match_head_title(t)) or proper_case_title(t),
    "subject": None,
}


def _apply_lexicon(ex: Extraction, lex: Lexicon) -> None:
    raw = ex.hints.get("raw", {})
    src = ex.hints.get("model_fields", {})
    for name, normalise in _LEXICON_FIELDS.items():
        value = ex.fields.get(name)
        if not isinstance(value, str) or src.get(name) == "ner":  # NER spans were restored already
            continue
        printed = raw.get(name, value) if normalise is not None else value
        fixed = restore_marks(printed, lex)
        if fixed != printed:
            fixed = normalise(fixed) if normalise is not None else fixed
            if fixed != value:
                _changed(ex, name, fixed)


def _changed(ex: Extraction, name: str, value) -> None:
    ev = ex.evidence.get(name)
    ev = ev.model_copy(update={"method": "model"}) if ev is not None else FieldEvidence(method="model")
    ex.set(name, value, ex.confidence.get(name, 1.0), ev)
    src = ex.hints.setdefault("model_fields", {})
    src[name] = "ner+lexicon" if src.get(name) == "ner" else "lexicon"


def _prefix(text: str) -> str | None:
    parts = text.split(None, 1)
    if len(parts) != 2:
        return None
    p = parts[0].rstrip(".,:").upper()
    if p not in ("KT", "TL", "TM", "Q", "TUQ"):
        return None
    return f"{p}. {proper_case_title(parts[1])}"
