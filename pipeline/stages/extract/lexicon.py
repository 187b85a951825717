"""Diacritics that OCR got wrong, restored from a Vietnamese dictionary — and still sent to review.

Tesseract's ``vie`` model reads a syllable's base letters far better than its marks: on the real
scans of the development set the printed fields that were wrong after every layout rule were
wrong by one mark or one stray letter ("bỗ nhiệm" for "bổ nhiệm", "Uy ban" for "Ủy ban", "Quảng
Nøgãi" for "Quảng Ngãi"), and only on words Tesseract itself read with low confidence.

(:func:`pipeline.stages.extract.model.restore_marks` already restores marks on words printed in
*capitals*, with a syllable lexicon counted from our generated training documents; this module
works on any word Tesseract itself doubted, with a dictionary of real Vietnamese.)

Two repairs, both conservative and both **flagged**: a repaired field gets an issue (``low_confidence`` or ``invalid``)
naming the old and the new word, so it goes to the review desk with the likely value filled in,
and a once-only lookup never hands it on unreviewed.

* :func:`restore_doubtful_marks`: a word read below :data:`MAX_WORD_CONF` that forms no dictionary word
  with either neighbour, where exactly one spelling with the same base letters (the same word
  without marks) does, is replaced by that spelling. The dictionary is pyvi's word list (31 157
  entries, 25 415 of them compounds of two or more syllables; pyvi is already the tokenizer
  dependency), not a list of our own. A word of the PDF's text layer (confidence 100) is never
  touched, nor a name (no dictionary holds names: "Tuẫn" stays for the steward).
* :func:`restore_provinces`: after "tỉnh", a province name with a stray letter ("Quảng Nøgãi") or
  with its first syllable lost under a seal ("tỉnh Ngãi", where "Ngãi" ends exactly one province)
  is replaced by the province (the 63 of Decree 30's era; Resolution 202/2025/QH15 kept these names
  for the 34 it retained).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.stages.extract.common import PROVINCES, fold, nfc

#: A word read at or above this OCR confidence (0–100) is left alone: the marks of confidently
#: read words were right on every real scan of the development set.
MAX_WORD_CONF = 90.0

#: Confidence of a word of the PDF's own text layer (:mod:`pipeline.stages.pdfsource`): never repaired.
TEXT_LAYER_CONF = 100.0

#: Old ("hoà, thuỷ") and new ("hòa, thủy") placement of a tone mark on oa/oe/uy: both are
#: correct Vietnamese; pyvi's list uses the old one, Decree 30 texts mostly the new one.
_OLD_TO_NEW = {
    "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa",
    "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe",
    "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy",
}  # fmt: skip
_OLD_RE = re.compile("|".join(_OLD_TO_NEW) + r"(?![a-zà-ỹ])")

#: Letters Tesseract puts in for a smudged glyph that Vietnamese never uses.
_FOREIGN = re.compile(r"[øØ†‡§¶ßþÞæÆœŒ¤¢£¥©®°±µ¿¡ƒ]")
_WORD = re.compile(r"^[A-Za-zÀ-ỹĐđ]+$")


def _new_tones(word: str) -> str:
    """A lower-case syllable with its tone mark in the new placement ("uỷ" → "ủy")."""
    return _OLD_RE.sub(lambda m: _OLD_TO_NEW[m.group(0)], word)


def letters_key(word: str) -> str:
    return _new_tones(nfc(word).lower())


@dataclass(frozen=True)
class _Dictionary:
    compounds: frozenset[str]  # "a b": two neighbouring syllables of an entry, new tone placement
    singles: frozenset[str]  # one-syllable entries: words that stand alone
    by_fold: dict[str, frozenset[str]]  # syllables by their letters without marks
    phrases: dict[str, frozenset[str]]  # entries of 3+ syllables by their letters without marks


@lru_cache(maxsize=1)
def dictionary() -> _Dictionary:
    compounds: set[str] = set()
    singles: set[str] = set()
    by_fold: dict[str, set[str]] = {}
    phrases: dict[str, set[str]] = {}
    for entry in _word_list():
        syllables = [letters_key(s) for s in entry.split()]
        if not syllables or not all(_WORD.match(s) for s in syllables):
            continue
        for s in syllables:
            by_fold.setdefault(fold(s), set()).add(s)
        if len(syllables) == 1:
            singles.add(syllables[0])
        for a, b in zip(syllables, syllables[1:], strict=False):
            compounds.add(f"{a} {b}")
        if len(syllables) >= 3:
            phrases.setdefault(fold(" ".join(syllables)), set()).add(" ".join(syllables))
    return _Dictionary(
        frozenset(compounds), frozenset(singles),
        {k: frozenset(v) for k, v in by_fold.items()}, {k: frozenset(v) for k, v in phrases.items()},
    )  # fmt: skip


def _word_list() -> list[str]:
    """pyvi's word list (``pyvi/models/words.txt``); empty when pyvi is not installed."""
    try:
        import pyvi  # the tokenizer dependency; its package data, not ours

        path = Path(pyvi.__file__).parent / "models" / "words.txt"
        return unicodedata.normalize("NFC", path.read_text(encoding="utf-8")).splitlines()
    except (ImportError, OSError):
        return []


def match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def restore_doubtful_marks(tokens: list[str], confs: list[float]) -> tuple[list[str], list[tuple[str, str]]]:
    """``tokens`` with wrongly marked low-confidence words replaced; and the (old, new) pairs.

    ``confs``: each token's OCR confidence (0–100; 100 for text-layer words). Two rules, in order:

    1. **Phrases**: a run of 3–5 OCR tokens whose letters without marks are those of exactly one
       dictionary entry ("Uy ban nhân dân" → "Ủy ban nhân dân") takes the entry's marks, however
       confidently Tesseract read them (Tesseract 5.5 reads that "Uy" at 90+). Runs that long do
       not collide by accident (30 of 2 679 such entries share their letters with another, all
       reduplicatives, and those are left alone).
    2. **Pairs**: a low-confidence word that is no word on its own (no one-syllable entry: "bỗ")
       and joins neither neighbour, where exactly one spelling with the same letters joins one
       ("bổ nhiệm"), takes that spelling. A word that stands alone ("tỉnh", "bãi", "uy") is never
       changed: "dân tình" is a word, and so is "dân tỉnh" read in "Ủy ban nhân dân tỉnh".

    Trailing punctuation of a token is kept; tokens of other characters than letters are left alone."""
    d = dictionary()
    if not d.compounds:
        return tokens, []
    out = list(tokens)
    changes: list[tuple[str, str]] = []
    cores = [re.sub(r"[,.;:!?)\"”]+$", "", t) for t in tokens]
    keys = [letters_key(_FOREIGN.sub("", c)) for c in cores]
    done: set[int] = set()
    for n in (5, 4, 3):
        for i in range(len(tokens) - n + 1):
            span = range(i, i + n)
            if done.intersection(span) or not all(_WORD.match(keys[j]) for j in span):
                continue
            if min(confs[j] for j in span) >= TEXT_LAYER_CONF:
                continue  # the PDF's own text: as written
            entry = d.phrases.get(fold(" ".join(keys[j] for j in span)))
            if entry is None or len(entry) != 1:
                continue
            for j, syl in zip(span, next(iter(entry)).split(), strict=True):
                new = match_case(_FOREIGN.sub("", cores[j]), syl)
                if keys[j] != syl or new != cores[j]:
                    out[j] = tokens[j].replace(cores[j], new, 1)
                    changes.append((cores[j], new))
            done.update(span)
    for i, (core, conf) in enumerate(zip(cores, confs, strict=True)):
        if i in done or conf >= MAX_WORD_CONF or not core:
            continue
        word = _FOREIGN.sub("", core)
        if not _WORD.match(word) or keys[i] in d.singles:
            continue
        spellings = _pair_spellings(d, keys, i, misread=word != core)
        new = match_case(word, next(iter(spellings))) if len(spellings) == 1 else core
        if new != core:
            out[i] = tokens[i].replace(core, new, 1)
            changes.append((core, new))
    return out, changes


def _pair_spellings(d: _Dictionary, keys: list[str], i: int, *, misread: bool = False) -> set[str]:
    """The spellings with the letters of ``keys[i]`` that form a dictionary word with a
    neighbour, when ``keys[i]`` as read forms none (``misread``: a stray letter was dropped from
    it, so its own spelling is a candidate too); empty otherwise."""
    prev = keys[i - 1] if i > 0 else None
    nxt = keys[i + 1] if i + 1 < len(keys) else None

    def joins(s: str) -> bool:
        return (prev is not None and f"{prev} {s}" in d.compounds) or (nxt is not None and f"{s} {nxt}" in d.compounds)

    if not misread and joins(keys[i]):
        return set()  # it forms a word as read
    candidates = {s for s in d.by_fold.get(fold(keys[i]), ()) if joins(s)}
    if misread and joins(keys[i]):
        candidates.add(keys[i])
    return candidates


def suspect_marks(tokens: list[str], confs: list[float]) -> list[tuple[str, list[str]]]:
    """Words read below :data:`MAX_WORD_CONF` that stand alone as words (so
    :func:`restore_doubtful_marks` leaves them) but form no word with either neighbour, where
    spellings with the same letters do: (as read, those spellings) — "chuyển đôi số", read for
    "chuyển đổi số" at 87 % by Tesseract 5.5 ("chuyển dời", "chuyển đổi", "đối số"). Nothing is
    changed: the field is sent to review with the suggestions."""
    d = dictionary()
    cores = [re.sub(r"[,.;:!?)\"”]+$", "", t) for t in tokens]
    keys = [letters_key(c) for c in cores]
    out = []
    for i, (core, conf) in enumerate(zip(cores, confs, strict=True)):
        if conf >= MAX_WORD_CONF or not _WORD.match(core) or keys[i] not in d.singles:
            continue
        spellings = sorted(_pair_spellings(d, keys, i) - {keys[i]})
        if spellings:
            out.append((core, [match_case(core, s) for s in spellings]))
    return out


#: Fields checked for :func:`suspect_marks`: free text only. In names of bodies "dân tỉnh" forms
#: no word and "dân tình" does, so every "Ủy ban nhân dân tỉnh …" would be suspect.
SUSPECT_FIELDS = ("subject",)


_PROVINCE_BY_FOLD = {re.sub(r"[^a-z ]", "", fold(p)): p for p in PROVINCES}
_PROVINCE_BY_LAST: dict[str, list[str]] = {}
for _p in PROVINCES:
    _PROVINCE_BY_LAST.setdefault(letters_key(_p.split()[-1]), []).append(_p)
_TINH = re.compile(r"\b(tỉnh|Tỉnh|TỈNH)\s+")


def restore_provinces(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with a damaged province name after "tỉnh" restored; and the (old, new) pairs."""
    changes: list[tuple[str, str]] = []
    for m in list(_TINH.finditer(text))[::-1]:
        rest = text[m.end():]
        words = rest.split()
        fixed = None
        for n in (3, 2, 1):
            if len(words) < n:
                continue
            phrase = " ".join(words[:n]).rstrip(",.;:")
            if phrase in PROVINCES or (phrase.isupper() and phrase.title() in PROVINCES):
                break  # already a province
            key = re.sub(r"[^a-z ]", "", fold(_FOREIGN.sub("", phrase)))
            if key in _PROVINCE_BY_FOLD and _FOREIGN.search(phrase):
                fixed = (phrase, _PROVINCE_BY_FOLD[key])
                break
        else:
            if words:
                last = words[0].rstrip(",.;:")
                owners = _PROVINCE_BY_LAST.get(letters_key(last), [])
                if last[:1].isupper() and len(owners) == 1 and len(owners[0].split()) > 1 and last not in PROVINCES:
                    fixed = (last, owners[0])
        if fixed:
            old, new = fixed
            if old.isupper():
                new = new.upper()
            text = text[: m.end()] + rest.replace(old, new, 1)
            changes.append((old, new))
    return text, changes


#: The free-text and name-of-body fields the two repairs apply to (not names of people, numbers,
#: dates or lists: no dictionary vouches for those).
FIELDS = ("subject", "issuer", "issuer_parent")


def _word_confs(ex, pages) -> dict[str, dict[str, float]]:
    """Per field: each word's OCR confidence (lower-case key), from the page words inside the
    field's evidence boxes; a word of a text-layer page counts as 100. A field read by a second
    OCR of its zone (``ex.hints["word_conf"]``, e.g. the title zone's re-read: its words are not
    the page's) takes the confidences of that reading."""
    by_page = {p.page: p for p in pages}
    out: dict[str, dict[str, float]] = {}
    for name in FIELDS:
        reread_confs = ex.hints.get("word_conf", {}).get(name)
        if reread_confs is not None:
            out[name] = {letters_key(re.sub(r"[,.;:!?)\"”]+$", "", k)): v for k, v in reread_confs.items()}
            continue
        ev = ex.evidence.get(name)
        page = by_page.get(ev.page) if ev is not None else None
        if page is None or page.text_source == "text_layer":
            continue
        confs: dict[str, float] = {}
        for w in page.words:
            cx, cy = (w.bbox[0] + w.bbox[2]) / 2, (w.bbox[1] + w.bbox[3]) / 2
            if any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in ev.boxes):
                k = letters_key(re.sub(r"[,.;:!?)\"”]+$", "", w.text))
                confs[k] = min(confs.get(k, 100.0), float(w.conf))
        out[name] = confs
    return out


def apply_lexicon(ex, pages) -> None:
    """Restore marks and province names in :data:`FIELDS` of ``ex`` (OCR pages only), and flag
    every field changed so that a steward confirms the repair (kind ``invalid`` for a province that
    was none as read, ``low_confidence`` for marks of words read below :data:`MAX_WORD_CONF`); a
    field with a :func:`suspect_marks` word is flagged with the suggestion, unchanged."""
    for name, confs in _word_confs(ex, pages).items():
        value = ex.fields.get(name)
        if not isinstance(value, str) or not value:
            continue
        text, provinces = restore_provinces(value)
        tokens = text.split(" ")
        word_confs = [confs.get(letters_key(re.sub(r"[,.;:!?)\"”]+$", "", t)), 100.0) for t in tokens]
        tokens, marks = restore_doubtful_marks(tokens, word_confs)
        ex.fields[name] = " ".join(tokens)
        if provinces:
            pairs = ", ".join(f"'{a}' → '{b}'" for a, b in provinces)
            ex.flag(name, "invalid", f"no province after 'tỉnh' as read: restored as the only province it can be "
                    f"({pairs}): confirm against the page")  # fmt: skip
        if marks:
            pairs = ", ".join(f"'{a}' → '{b}'" for a, b in marks)
            ex.flag(name, "low_confidence", f"misread words restored from the Vietnamese dictionary ({pairs}): "
                    "confirm against the page")  # fmt: skip
        suspects = suspect_marks(tokens, word_confs) if name in SUSPECT_FIELDS else []
        if suspects:
            pairs = ", ".join(f"'{a}' (perhaps {' or '.join(repr(b) for b in bs)})" for a, bs in suspects)
            ex.flag(name, "low_confidence", f"words read with doubt that form no word with their neighbours: {pairs}: "
                    "check them against the page")  # fmt: skip
