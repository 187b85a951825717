"""OCR stage: Tesseract ``vie`` on the cleaned page, words with boxes and confidences.

Output text is Unicode NFC (Tesseract may emit decomposed combining marks). Word boxes are
in pixels of the processed page (same geometry as the colour image kept for storage).

After Tesseract, two steps on the words (both switchable in :class:`~pipeline.runtime.config.OcrSettings`):

* words that are not text are dropped (:func:`drop_non_text`): what Tesseract reads into the
  signature scribble (chữ ký), the remains of a seal (con dấu) or specks — low confidence and
  either not a plausible Vietnamese token ("z/#", "Vv^*x", "phồnø") or drawn in coloured
  ink on the colour page. A page where that would drop more than
  :data:`NON_TEXT_MAX_DROP` of the characters is left as read: it is a bad page, for the
  quality gate to judge, not one with a few stray marks;
* words a capture systematically misreads are respelt where pyvi's dictionary decides
  (:func:`restore_by_compounds`): a typewriter's "l" read "t", a fax's hook above read as an acute;
* the words are put in the reading order of the physical layout (:mod:`pipeline.stages.layout`):
  the two header columns and the signature / "Nơi nhận" block are read block by block.
"""

from __future__ import annotations

import csv
import io
import re
import time
import unicodedata
from collections.abc import Callable

import cv2
import numpy as np

from pipeline._exec import tesseract
from pipeline.runtime.config import LimitSettings, OcrSettings
from pipeline.stages.deskew import capture_of
from pipeline.stages.extract.lexicon import dictionary, letters_key, match_case
from pipeline.stages.layout import reading_order
from pipeline.stages.models import ProcessedPage, Word
from pipeline.stages.quality import MIN_SYLLABLES_FOR_LANGUAGE, is_vietnamese_syllable, text_metrics

NON_TEXT_MAX_DROP = 0.15  # never drop more than this fraction of a page's characters
COLOURED_MIN_DISTANCE = 0.125  # chromaticity distance ink ↔ paper of a word in coloured ink
COLOURED_MIN_PIXELS = 80  # dark and light pixels needed to measure it (a "-" has too few)
COLOURED_MAX_CONF = 90.0  # coloured words Tesseract is sure of are kept (text printed in blue)
_PUNCT = ".,;:!?()[]\"'“”‘’…-–—/*+_"
_ALONE_OK = frozenset({"-", "–", "+", "*", "./.", "/.", "."})
_CODE = re.compile(r"[\w/\-.,:()%]+")
#: Tesseract's ``vie`` model reads a slash as U+2044 FRACTION SLASH where the glyph is upright or
#: thin (monospace type, fax): "https:⁄/nq68...", "5⁄421/TTr". Administrative text sets no
#: typographic fractions, so it is a slash; left as read, the character costs the comparison with
#: the truth and makes a web address or a document number an implausible token that
#: :func:`non_text_words` drops whole (benchmarks/ocr_quality.py, typewriter: the address
#: "https://nq68.baocaochinhphu.gov.vn," lost on a Liberation Mono page).
_SLASH_LOOKALIKES = str.maketrans({"\u2044": "/", "\u2215": "/"})


def parse_tsv(tsv: str) -> list[Word]:
    """Words (TSV level 5) in reading order with a running line index; a fraction or division
    slash read for "/" is a slash (:data:`_SLASH_LOOKALIKES`)."""
    words: list[Word] = []
    line_ids: dict[tuple[int, int, int], int] = {}
    reader = csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if not header:
        return words
    col = {name: i for i, name in enumerate(header)}
    for row in reader:
        if len(row) < len(header) or row[col["level"]] != "5":
            continue
        text = unicodedata.normalize("NFC", row[col["text"]]).strip().translate(_SLASH_LOOKALIKES)
        if not text:
            continue
        key = (int(row[col["block_num"]]), int(row[col["par_num"]]), int(row[col["line_num"]]))
        line = line_ids.setdefault(key, len(line_ids))
        left, top = int(row[col["left"]]), int(row[col["top"]])
        width, height = int(row[col["width"]]), int(row[col["height"]])
        conf = float(row[col["conf"]])
        words.append(
            Word(
                text=text,
                conf=max(conf, 0.0),
                bbox=(left, top, left + width, top + height),
                line=line,
                block=key[0],
            )
        )
    return words


def is_plausible_token(text: str) -> bool:
    """Whether an OCR word looks like a token of Vietnamese administrative text.

    Plausible: a Vietnamese syllable (âm tiết, any case, with its punctuation), an
    abbreviation ("UBND", "TTHC", "VT,", "TTg", "PTTg"), syllables or abbreviations joined by "-" or "/"
    ("Hồ-Chí-Minh", "UBND-KSTT"), a number or code with digits ("541/TTr-UBND", "45/2020/NĐ-CP"),
    or a list dash. Not plausible: symbol soup ("z/#", "Vv^*x", "_1—`'-"), mangled letters
    ("phồnø", "niiỆm").
    """
    text = unicodedata.normalize("NFC", text)
    core = text.strip(_PUNCT)
    if not core:
        return text in _ALONE_OK
    if any(ch.isdigit() for ch in core):
        return bool(_CODE.fullmatch(core))
    parts = [p for p in re.split(r"[-/.]", core) if p]
    if not parts:
        return False
    for part in parts:
        if not part.isalpha():
            return False
        if not (_is_abbreviation(part) or is_vietnamese_syllable(part)):
            return False
    return True


def _is_abbreviation(part: str) -> bool:
    """"UBND", "VT", "TTg", "PTTg", "TTgCP", "NĐ": upper-case first, at least two capitals, and
    the capitals in at most two runs — initials with at most one small-letter run between them
    ("g" of "TTgCP"); case flipping back and forth, "SỏSsS", is a signature scribble read as
    letters (a fax's, benchmarks/ocr_quality.py)."""
    back_to_capital = sum(a.islower() and b.isupper() for a, b in zip(part, part[1:], strict=False))
    return len(part) >= 2 and part[0].isupper() and sum(ch.isupper() for ch in part) >= 2 and back_to_capital <= 1


def coloured_ink(word: Word, gray: np.ndarray, color: np.ndarray | None) -> float:
    """How far the word's ink is from the paper's hue: L1 distance between the chromaticities
    (r, g, b) / (r + g + b) of its mean dark pixel and of the paper around it (colour page).

    Black or grey print multiplies the paper colour, so on white as on yellowed paper (giấy ố
    vàng) it keeps the paper's chromaticity (≤ 0.08 on the benchmark's pages); the blue ink of
    a signature (chữ ký) or red seal ink (con dấu) does not (≥ 0.12). 0.0 when it cannot be
    measured (no colour page, too few dark or light pixels).
    """
    if color is None or color.ndim != 3 or color.shape[:2] != gray.shape[:2]:
        return 0.0
    x0, y0, x1, y1 = word.bbox
    pad = max(2, (y1 - y0) // 4)
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    box = gray[y0 : y1 + pad, x0 : x1 + pad]
    dark, light = box < 128, box > 200
    if np.count_nonzero(dark) < COLOURED_MIN_PIXELS or np.count_nonzero(light) < COLOURED_MIN_PIXELS:
        return 0.0
    rgb = color[y0 : y1 + pad, x0 : x1 + pad].astype(np.float32)
    ink = rgb[dark].mean(axis=0)
    paper = np.median(rgb[light], axis=0)
    return float(np.abs(ink / max(float(ink.sum()), 1.0) - paper / max(float(paper.sum()), 1.0)).sum())


#: a word with letters or digits, read unsure, whose box is lower than this share of the median
#: box of the page's sure words is a speck Tesseract made letters of ("ác", "SN" on a fax, 3–7 px
#: against 45); a word of small letters without ascender or mark ("ca", "an") is about half a
#: word box. A dash or a full stop has no letter or digit and is not concerned.
LETTER_MIN_HEIGHT = 0.3
#: ... and one taller than this many times that median is a stroke of a drawing read as a word:
#: a signature's loop ("v42", 112 px against 45 on a fax; "v2" on photocopies). Ascenders,
#: descenders, stacked marks and a heading's larger type stay well under it. Both checked on the
#: train and test pages of benchmarks/ocr_quality.py (issue 18): no condition rose.
WORD_MAX_HEIGHT = 2.2
#: ... and a single letter read unsure with no other word of its line within this many of those
#: median boxes is a speck or a seal's remnant, not a word: "ị" (47 %, 11 px wide) in the
#: gutter between the recipients list and the signature block cut the closing table in two, and
#: the signer's name was read after the recipients (benchmarks/ocr_quality.py, fax, page 111 of
#: ``--capture-pages 12``). A one-letter word of text ("ở", "ý") sits a word space from its line.
LONE_LETTER_GAP = 3.0


def non_text_words(
    words: list[Word], max_conf: float, gray: np.ndarray | None = None, color: np.ndarray | None = None
) -> list[Word]:
    """The words that are not text (see the module docstring).

    A word is not text when its confidence is below ``max_conf`` and it is not a plausible
    token (:func:`is_plausible_token`) or is a speck read as letters (:data:`LETTER_MIN_HEIGHT`)
    or a drawing's stroke (:data:`WORD_MAX_HEIGHT`), or when its confidence is below
    :data:`COLOURED_MAX_CONF` and it is drawn mostly in coloured ink
    (:func:`coloured_ink`, when the page images are given: Tesseract reads syllables
    into a scribble, "lồ dên", with middling confidence). None are returned when
    they would make more than :data:`NON_TEXT_MAX_DROP` of the page's characters.
    """
    in_line = words_in_text_lines(words)
    sure = [w.bbox[3] - w.bbox[1] for w in words if w.conf >= TEXT_LINE_MIN_CONF and len(w.text) >= 2]
    height = float(np.median(sure)) if len(sure) >= TEXT_LINE_MIN_WORDS else 0.0
    flat, tall = LETTER_MIN_HEIGHT * height, WORD_MAX_HEIGHT * height
    lone = _lone_letters(words, LONE_LETTER_GAP * height) if height else set()
    found = [
        w for w in words
        if (w.conf < max_conf and not is_plausible_token(w.text) and id(w) not in in_line)
        or (w.conf < max_conf and id(w) in lone)
        or (w.conf < max_conf and w.bbox[3] - w.bbox[1] < flat and any(ch.isalnum() for ch in w.text))
        or (w.conf < max_conf and height and w.bbox[3] - w.bbox[1] > tall)
        or (w.conf < COLOURED_MAX_CONF and gray is not None
            and coloured_ink(w, gray, color) >= COLOURED_MIN_DISTANCE)
    ]
    total = sum(len(w.text) for w in words)
    if total and sum(len(w.text) for w in found) > NON_TEXT_MAX_DROP * total:
        return []
    return found


def lines_of(words: list[Word]) -> list[list[Word]]:
    """``words`` grouped by their Tesseract line, in order of first appearance."""
    by_line: dict[int, list[Word]] = {}
    for w in words:
        by_line.setdefault(w.line, []).append(w)
    return list(by_line.values())


def _lone_letters(words: list[Word], gap: float) -> set[int]:
    """Ids of the one-letter words with no other word of their Tesseract line within ``gap``
    pixels (:data:`LONE_LETTER_GAP`)."""
    out: set[int] = set()
    for line in lines_of(words):
        for w in line:
            core = w.text.strip(_PUNCT)
            if len(core) == 1 and core.isalpha() and not any(
                    o is not w and max(o.bbox[0] - w.bbox[2], w.bbox[0] - o.bbox[2]) <= gap for o in line):
                out.add(id(w))
    return out


#: a line of text: at least this many other words read with this confidence or more ...
TEXT_LINE_MIN_WORDS = 4
TEXT_LINE_MIN_CONF = 80.0
#: ... and a word whose height is within these factors of theirs is a word of that line
TEXT_LINE_HEIGHT = (0.7, 1.5)
#: ... and no farther from the nearest of them than this many line heights (a word space is
#: less than one; Tesseract's line may run on across the page to a scribble in the other column)
TEXT_LINE_MAX_GAP = 1.5


def words_in_text_lines(words: list[Word]) -> set[int]:
    """Ids of the letter-only words that sit in a line of text: the line holds at least
    :data:`TEXT_LINE_MIN_WORDS` other words read with :data:`TEXT_LINE_MIN_CONF` or more, and the
    word is as tall as they are (:data:`TEXT_LINE_HEIGHT`) and next to one of them
    (:data:`TEXT_LINE_MAX_GAP`). Such a word is misread text, never
    a scribble or a speck, however low its confidence: a typewriter's glyphs (stacked
    diacritics read as "thôíág", "kêtft") cost a letter or two when kept, the whole word when
    dropped (benchmarks/ocr_quality.py, typewriter)."""
    out: set[int] = set()
    for line in lines_of(words):
        sure = [w for w in line if w.conf >= TEXT_LINE_MIN_CONF]
        if len(sure) < TEXT_LINE_MIN_WORDS:
            continue
        height = float(np.median([w.bbox[3] - w.bbox[1] for w in sure]))
        for w in line:
            core = w.text.strip(_PUNCT)
            h = w.bbox[3] - w.bbox[1]
            gap = min(max(s.bbox[0] - w.bbox[2], w.bbox[0] - s.bbox[2]) for s in sure)
            if (w.conf < TEXT_LINE_MIN_CONF and core.isalpha() and gap <= TEXT_LINE_MAX_GAP * height
                    and TEXT_LINE_HEIGHT[0] * height <= h <= TEXT_LINE_HEIGHT[1] * height):
                out.add(id(w))
    return out


#: on a fax a Tesseract line whose words are all read with less than :data:`TEXT_LINE_MIN_CONF`
#: and are this much lower (median box height) than the page's sure words is no text: at 100 dpi
#: vertically the marks above a line of capitals ("THỦ TƯỚNG CHÍNH PHỦ") come apart from their
#: letters and Tesseract reads them as a line of their own, "my 9/2 m4 1y" (benchmarks/ocr_quality.py,
#: fax; the letters below are read in full on their own line). A real line, a page number ("2")
#: included, is at least as tall as a capital, well over half the median word box.
MARK_ROW_MAX_HEIGHT = 0.5


def mark_rows(words: list[Word]) -> set[int]:
    """Ids of the words of the fax lines that are rows of marks (:data:`MARK_ROW_MAX_HEIGHT`)."""
    sure = [w.bbox[3] - w.bbox[1] for w in words if w.conf >= TEXT_LINE_MIN_CONF and len(w.text) >= 2]
    if len(sure) < TEXT_LINE_MIN_WORDS:
        return set()
    height = float(np.median(sure))
    out: set[int] = set()
    for line in lines_of(words):
        if (all(w.conf < TEXT_LINE_MIN_CONF for w in line)
                and float(np.median([w.bbox[3] - w.bbox[1] for w in line])) < MARK_ROW_MAX_HEIGHT * height):
            out.update(id(w) for w in line)
    return out


def drop_non_text(
    words: list[Word], max_conf: float, gray: np.ndarray | None = None, color: np.ndarray | None = None
) -> list[Word]:
    """``words`` without :func:`non_text_words`, in their order."""
    dropped = {id(w) for w in non_text_words(words, max_conf, gray, color)}
    return [w for w in words if id(w) not in dropped]


def arrange_words(
    words: list[Word], settings: OcrSettings, gray: np.ndarray | None = None, color: np.ndarray | None = None
) -> list[Word]:
    """Tesseract's words without those that are not text, in reading order (as configured)."""
    dropped = {id(w) for w in non_text_words(words, settings.non_text_max_conf, gray, color)} if settings.drop_non_text else set()
    if settings.layout_order:
        return reading_order(words, dropped)
    return [w for w in words if id(w) not in dropped]


def words_to_text(words: list[Word]) -> str:
    """Page text: one output line per OCR line, a blank line between blocks."""
    lines: list[str] = []
    current_line = None
    current_block = None
    buf: list[str] = []
    for w in words:
        if w.line != current_line:
            if buf:
                lines.append(" ".join(buf))
            if current_block is not None and w.block != current_block:
                lines.append("")
            buf = []
            current_line = w.line
            current_block = w.block
        buf.append(w.text)
    if buf:
        lines.append(" ".join(buf))
    return unicodedata.normalize("NFC", "\n".join(lines))


def mean_confidence(words: list[Word]) -> float:
    """Character-weighted mean word confidence (0–100); 0 for an empty page."""
    total = sum(len(w.text) for w in words)
    if not total:
        return 0.0
    return sum(w.conf * len(w.text) for w in words) / total


#: A page within this fraction above ``ocr_dpi`` is read as it is.
OCR_DPI_TOLERANCE = 0.1


def ocr_input(image: np.ndarray, dpi: int, ocr_dpi: int) -> tuple[np.ndarray, int, float]:
    """The image Tesseract reads, its resolution and the factor from page to OCR pixels.

    Tesseract's cost grows with the page's pixels, not only with its text: the cleaned pages of
    benchmarks/throughput.py take 1.99 s of CPU a page at 300 dpi and 1.39 s at 200 dpi, reading
    the same characters; and benchmarks/ocr_quality.py reads as well or better at 200 dpi
    (x-height ≈ 16 px for 13 pt Times). Area averaging keeps thin strokes and diacritics. The
    header's small bold capitals are the exception (number "2384/SSTP-HCTP" at 200 dpi), hence
    ``OcrSettings.full_resolution_pages``."""
    if not ocr_dpi or not dpi or dpi <= ocr_dpi * (1 + OCR_DPI_TOLERANCE):
        return image, dpi, 1.0

    factor = ocr_dpi / dpi
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), ocr_dpi, factor


def scale_words(words: list[Word], factor: float, shape: tuple[int, ...]) -> list[Word]:
    """Word boxes read at ``factor`` × the page's resolution, in page pixels (clipped to ``shape``)."""
    if factor == 1.0:
        return words
    height, width = shape[:2]
    inv = 1.0 / factor
    out = []
    for w in words:
        x0, y0, x1, y1 = w.bbox
        box = (min(width, int(x0 * inv)), min(height, int(y0 * inv)),
               min(width, int(round(x1 * inv))), min(height, int(round(y1 * inv))))  # fmt: skip
        out.append(w.model_copy(update={"bbox": box}))
    return out


def ocr_page(
    page: ProcessedPage, settings: OcrSettings, limits: LimitSettings, *, text_pdf: bool = True
) -> tuple[list[Word], str, float, bytes, float]:
    """Run Tesseract on ``page.ocr_image``: downscaled to ``settings.ocr_dpi`` (:func:`ocr_input`),
    except the first ``settings.full_resolution_pages`` pages of the document (the header).

    Returns ``(words, text, mean_confidence, text_only_pdf, seconds)``; word boxes are in pixels
    of the page.

    No reading worse than doing nothing (issue 18): when :func:`needs_plain_reading` says so,
    the page is read a second time as it is, without clean-up (the grey of ``page.color``,
    deskewed and rectified, same geometry), and that plain reading is kept when
    :func:`plain_is_better`: :func:`reading_score` — Tesseract's confidence and the share of
    Vietnamese syllables — rates it higher without it losing text, or the cleaned reading lost
    text. The cost is one more Tesseract pass (~2.2 s a page with ``OMP_THREAD_LIMIT=1``)
    on those pages only. Which reading was kept is appended to ``page.flags``:
    ``reading:cleaned`` (read once), ``reading:cleaned_over_plain`` or ``reading:plain``.

    Then the misreadings a capture makes systematically are respelt where the dictionary decides
    (:func:`restore_by_compounds`): on a monospaced page "L"/"t" for "l" (:func:`typewriter_ell`,
    :func:`typewriter_tee`), on a fax an acute for a hook above (:func:`fax_hook_acute`), and on
    a fax a speck read as a full stop in mid-sentence goes (:func:`stray_full_stops`);
    ``respelt:<n>`` in ``page.flags`` counts them.
    """
    started = time.perf_counter()
    words, text, conf, pdf = _read(page.ocr_image, page, settings, limits, text_pdf)
    reading = "cleaned"
    if needs_plain_reading(page, text, conf):
        plain = page.color if page.color.ndim == 2 else cv2.cvtColor(page.color[..., :3], cv2.COLOR_RGB2GRAY)
        second = _read(np.ascontiguousarray(plain), page, settings, limits, text_pdf)
        if plain_is_better(text, conf, second[1], second[2]):
            words, text, conf, pdf = second
            reading = "plain"
        else:
            reading = "cleaned_over_plain"
    flags = [f for f in page.flags if not f.startswith(("reading:", "respelt:")) and f != "monospace"]
    restored = 0
    if is_monospaced(words):
        flags.append("monospace")
        words, changed = typewriter_ell(words)
        restored += changed
        words, changed = restore_by_compounds(words, typewriter_tee)
        restored += changed
    if capture_of(page) == "fax":
        words, changed = restore_by_compounds(words, fax_misreadings)
        restored += changed
        words, stops = stray_full_stops(words)
        restored += stops
    if restored:
        text = words_to_text(words)
        flags.append(f"respelt:{restored}")
    page.flags[:] = [*flags, f"reading:{reading}"]
    return words, text, conf, pdf, time.perf_counter() - started


#: a page is monospaced (typewritten, or set in a monospace font) when the width per character of
#: its confidently read words varies less than this (coefficient of variation) — measured on
#: benchmarks/ocr_quality.py pages: 0.02–0.05 in Liberation Mono and DejaVu Sans Mono, 0.11–0.15
#: in Liberation Serif, DejaVu Serif, Liberation Sans, scanned, photographed or faxed
MONOSPACE_MAX_PITCH_CV = 0.07
MONOSPACE_MIN_WORDS = 30
_ELL = re.compile(r"L([^\W\d_]+)([.,;:]?)")


def is_monospaced(words: list[Word]) -> bool:
    """Whether the page's text is monospaced (:data:`MONOSPACE_MAX_PITCH_CV`), from the words
    of four letters or more read with 80 or more."""
    pitch = [(w.bbox[2] - w.bbox[0]) / len(w.text) for w in words
             if w.conf >= 80 and len(w.text) >= 4 and w.text.isalpha()]  # fmt: skip
    if len(pitch) < MONOSPACE_MIN_WORDS:
        return False
    values = np.asarray(pitch, dtype=np.float64)
    return float(values.std() / max(values.mean(), 1e-6)) <= MONOSPACE_MAX_PITCH_CV


def typewriter_ell(words: list[Word]) -> tuple[list[Word], int]:
    """A monospace "l" has a foot and Tesseract reads it "L" ("Lập", "Liên", "xử Lý" for "lập",
    "liên", "xử lý": most of the typewriter pages' character errors). On a monospaced page a
    word "L…" whose other letters are lower case is given back its "l" when it is a Vietnamese
    syllable so spelt, follows a word ending in a lower-case letter or a comma (mid-sentence)
    and comes before no capitalised word (a proper name: "tỉnh Lâm Đồng", "ông Lê Văn Ba").
    A capitalised common noun mid-sentence ("theo Luật này") is lowered too: the price of the
    rule, on monospaced pages only. Returns the words and how many were changed."""
    out = list(words)
    changed = 0
    for i, w in enumerate(words):
        m = _ELL.fullmatch(w.text)
        if not m or not m.group(1).islower() or not is_vietnamese_syllable("l" + m.group(1)):
            continue
        prev = words[i - 1].text if i else ""
        nxt = words[i + 1].text if i + 1 < len(words) else ""
        if not prev or not (prev[-1] == "," or prev[-1].islower()):
            continue
        if nxt[:1].isupper():
            continue
        out[i] = w.model_copy(update={"text": "l" + m.group(1) + m.group(2)})
        changed += 1
    return out, changed


#: A word's trailing punctuation (kept as read when the word is respelt) and what breaks a phrase
_TRAIL = re.compile(r"^([^\W\d_]+)([.,;:!?)]*)$")
_BREAK = frozenset(".,;:!?)")
#: Two-syllable administrative terms pyvi's word list lacks (free combinations, not lexicalised
#: words), which a respelling must not break: the levels of local government (Law on the
#: Organisation of Local Government 2015: cấp tỉnh, cấp huyện, cấp xã) — "cấp tỉnh" is otherwise
#: taken for "cấp tính" (acute), a dictionary word, on a fax
ADMIN_COMPOUNDS = frozenset({"cấp tỉnh", "cấp huyện", "cấp xã", "cấp bộ"})


def typewriter_tee(syllable: str) -> list[str]:
    """Monospace "l" read "t" (:func:`restore_by_compounds`): Liberation Mono's and a typewriter's
    "l" has a flag at the top and a foot, and Tesseract reads it "t" ("chất tượng", "kỷ tuật",
    "ngành tĩnh vực" for "chất lượng", "kỷ luật", "lĩnh vực": benchmarks/ocr_quality.py,
    typewriter --split train)."""
    return ["l" + syllable[1:]] if syllable.startswith("t") and not syllable.startswith(("th", "tr")) else []


_ACUTE, _HOOK = "\u0301", "\u0309"


def fax_hook_acute(syllable: str) -> list[str]:
    """Hỏi (hook above) read as sắc (acute) and back on a fax (:func:`restore_by_compounds`): at
    100 dpi vertically ("standard" fax resolution) the hook above a letter is one or two scan
    lines, the shape of an acute ("tố chức", "thú tục", "đấy mạnh" for "tổ chức", "thủ tục",
    "đẩy mạnh": most of the fax pages' mark errors, benchmarks/ocr_quality.py, fax --split train)."""
    nfd = unicodedata.normalize("NFD", syllable)
    if _ACUTE in nfd:
        return [unicodedata.normalize("NFC", nfd.replace(_ACUTE, _HOOK))]
    if _HOOK in nfd:
        return [unicodedata.normalize("NFC", nfd.replace(_HOOK, _ACUTE))]
    return []


def fax_misreadings(syllable: str) -> list[str]:
    """The spellings a syllable read on a fax may have been misread from: a hook above read as an
    acute and back (:func:`fax_hook_acute`), and "d" and "đ" for each other — at 100 dpi
    vertically the bar of an "đ" is one scan line, often lost ("diện", "dịnh", "dối" for "điện",
    "định", "đối"), and a speck on the stem of a "d" reads as one ("xây đựng", "đân cư" for "xây
    dựng", "dân cư": benchmarks/ocr_quality.py, fax) — alone or with the hook."""
    marks = fax_hook_acute(syllable)
    swap = {"d": "đ", "đ": "d"}.get(syllable[:1])
    if swap is None:
        return marks
    return [*marks, swap + syllable[1:], *(swap + x[1:] for x in marks)]


def stray_full_stops(words: list[Word]) -> tuple[list[Word], int]:
    """A full stop that is a speck: on a fax a speck right after a word, at its foot, is kept as a
    full stop's dot would be (:func:`pipeline.stages.cleanup.remove_speckle`) and read as one
    ("quyền.", "phòng." in mid-sentence). In Vietnamese a sentence begins with a capital: a "."
    after a syllable followed on the same line by a word in small letters is no full stop, and
    goes. Never in the texts of benchmarks/ocr_quality.py nor of the shared corpus (470 full stops
    before a word on the same line; the 4 followed by a small letter are all in the bad OCR
    output). Abbreviations and numbers ("v.v.", "TP.", "2021.") are not syllables and keep theirs.
    Returns the words and how many lost a stop."""
    out, changed = list(words), 0
    for i in range(len(words) - 1):
        this, that = words[i], words[i + 1]
        if this.line != that.line or not this.text.endswith(".") or this.text.endswith(".."):
            continue
        core = this.text[:-1]
        if core.isalpha() and is_vietnamese_syllable(core) and that.text[:1].islower():
            out[i] = this.model_copy(update={"text": core})
            changed += 1
    return out, changed


def restore_by_compounds(words: list[Word], alternatives: Callable[[str], list[str]]) -> tuple[list[Word], int]:
    """Words a capture systematically misreads, respelt where the dictionary decides.

    ``alternatives(syllable)`` gives the spellings a lower-case syllable may have been misread
    from on this capture (:func:`typewriter_tee`, :func:`fax_misreadings`). A word is respelt
    when, as read, it forms no two-syllable dictionary word with its neighbour on either side
    (within the phrase: no punctuation between; a line of the same block wrapping to the next is
    no break), and exactly one of its alternatives — a Vietnamese syllable — does ("chất tượng" →
    "chất lượng": "chất lượng" is a word, "chất tượng" is not). Two neighbours of which neither
    forms a word, alone or respelt alone, are respelt together when exactly one pair of their
    spellings is a word ("diện tứ" → "điện tử"). The dictionary is pyvi's word list
    (:mod:`pipeline.stages.extract.lexicon`). Words that stand alone ("để", "tại") and names are
    never touched: they form no compound either way. Case and trailing punctuation are kept.
    Returns the words and how many were respelt."""

    compounds = dictionary().compounds
    if not compounds:
        return words, 0
    parsed = [_TRAIL.match(w.text) for w in words]
    keys = [letters_key(m.group(1)) if m else "" for m in parsed]

    def linked(a: int) -> bool:  # words a and a + 1 are neighbours within a phrase
        if a < 0 or a + 1 >= len(words):
            return False
        if words[a].line != words[a + 1].line and not (  # a line wrapped within its paragraph
                words[a + 1].line == words[a].line + 1 and words[a + 1].block == words[a].block):
            return False
        this, that = parsed[a], parsed[a + 1]
        if this is None or that is None or set(this.group(2)) & _BREAK:
            return False
        # a capitalised word after a lower-case one starts a name or a title ("đánh giá Bộ Tư pháp")
        return not (this.group(1).islower() and that.group(1)[:1].isupper())

    def pair(a: str, b: str) -> bool:
        return f"{a} {b}" in compounds or f"{a} {b}" in ADMIN_COMPOUNDS

    def forms(i: int, syllable: str) -> bool:
        """``syllable`` in place of word i makes a two-syllable word with a neighbour that is
        not already part of a word on its other side ("hiệu lực kể": "lực" belongs to "hiệu lực")."""
        left = (linked(i - 1) and pair(keys[i - 1], syllable)
                and not (linked(i - 2) and pair(keys[i - 2], keys[i - 1])))  # fmt: skip
        right = (linked(i) and pair(syllable, keys[i + 1])
                 and not (linked(i + 1) and pair(keys[i + 1], keys[i + 2])))  # fmt: skip
        return left or right

    out = list(words)

    def options(i: int) -> list[str]:
        return [a for a in alternatives(keys[i]) if a != keys[i] and is_vietnamese_syllable(a)]

    def respell(i: int, spelt: str) -> None:
        m = parsed[i]
        assert m is not None
        keys[i] = spelt  # the next word pairs with the word as respelt
        out[i] = words[i].model_copy(update={"text": match_case(m.group(1), spelt) + m.group(2)})

    changed = 0
    for i, m in enumerate(parsed):
        if not m:
            continue
        alone = options(i)
        if not alone or forms(i, keys[i]):
            continue
        hits = [a for a in alone if forms(i, a)]
        if len(hits) == 1:
            respell(i, hits[0])
            changed += 1
    # two neighbours both misread ("diện tứ" for "điện tử"): neither forms a word with anything as
    # read nor alone respelt; respelt together when exactly one pair of their spellings is a word
    i = 0
    while i + 1 < len(words):
        if not linked(i) or forms(i, keys[i]) or forms(i + 1, keys[i + 1]):
            i += 1
            continue
        combos = [(x, y) for x in [keys[i], *options(i)] for y in [keys[i + 1], *options(i + 1)] if pair(x, y)]
        if len(combos) != 1 or combos[0][0] == keys[i] or combos[0][1] == keys[i + 1]:
            i += 1
            continue
        respell(i, combos[0][0])
        respell(i + 1, combos[0][1])
        changed += 2
        i += 2
    return out, changed


#: Captures whose clean-up changes the page most (:func:`pipeline.stages.deskew.detect_capture`): their
#: plain reading is always made too.
PLAIN_READING_CAPTURES = frozenset({"fax", "photo"})
#: Any other page is read plain too when the cleaned reading's confidence is below this, or its
#: share of Vietnamese syllables below :data:`PLAIN_READING_BELOW_VALID`.
PLAIN_READING_BELOW_CONF = 85.0
PLAIN_READING_BELOW_VALID = 0.93
#: The plain reading is kept when its score (:func:`reading_score`) is higher by more than this,
#: and by more than the sampling error of the cleaned reading's share of syllables
#: (:func:`score_noise`).
PLAIN_MIN_GAIN = 0.01


def reading_score(text: str, conf: float) -> float:
    """How credible a page's reading is, by Tesseract's own confidence (0–1) plus the share of
    its words that are Vietnamese syllables (:func:`pipeline.stages.quality.text_metrics`; 1.0 for a
    page with too few syllables to judge); 0–2."""
    metrics = text_metrics(text)
    valid = metrics["valid_syllable_ratio"] if metrics["syllables"] >= MIN_SYLLABLES_FOR_LANGUAGE else 1.0
    return conf / 100.0 + valid


#: A reading with less than this share of the other's characters lost text (a block left
#: unread reads with high confidence: the confidence of what was read)
PLAIN_MIN_COVERAGE = 0.95


def _text_characters(text: str) -> int:
    """Characters of the words of ``text`` that are plausible tokens (:func:`is_plausible_token`):
    speckle read as punctuation or a desk's grain read as letters adds none."""
    return sum(len(t) for t in text.split() if is_plausible_token(t))


def score_noise(text: str) -> float:
    """The standard error of a reading's share of Vietnamese syllables, ``sqrt(p (1 - p) / n)``
    for ``n`` syllables of which a share ``p`` are valid: what one misread word more or less moves
    it by chance. On a page of 30 syllables (a last page: signature block and Nơi nhận list) one
    signature stroke read as a word moves the share by 0.03, and such a flip had the plain
    reading kept — its blocks in another order, the signer after the recipients (benchmarks/
    ocr_quality.py, fax --split train, page 105: 7 % → 40 % character error); on a full page of
    400 syllables it is ~0.01."""
    metrics = text_metrics(text)
    n = metrics["syllables"]
    if n < MIN_SYLLABLES_FOR_LANGUAGE:
        return 0.0
    p = float(metrics["valid_syllable_ratio"])
    return float(np.sqrt(max(p * (1.0 - p), 0.0) / n))


def plain_is_better(cleaned: str, cleaned_conf: float, plain: str, plain_conf: float) -> bool:
    """Whether the plain reading beats the cleaned one: a higher :func:`reading_score` by more
    than :data:`PLAIN_MIN_GAIN` and than chance (:func:`score_noise`) without losing text
    (:data:`PLAIN_MIN_COVERAGE` of the cleaned reading's characters), or the cleaned reading
    lost text the plain one has (less than :data:`PLAIN_MIN_COVERAGE` of its characters);
    characters of plausible tokens only (:func:`_text_characters`)."""
    n_cleaned, n_plain = _text_characters(cleaned), _text_characters(plain)
    if n_cleaned < PLAIN_MIN_COVERAGE * n_plain:
        return True
    margin = max(PLAIN_MIN_GAIN, score_noise(cleaned))
    return (n_plain >= PLAIN_MIN_COVERAGE * n_cleaned
            and reading_score(plain, plain_conf) > reading_score(cleaned, cleaned_conf) + margin)


def needs_plain_reading(page: ProcessedPage, text: str, conf: float) -> bool:
    """Whether to read the page a second time without clean-up (Tesseract on the grey page as
    deskewed, ~2.2 s with ``OMP_THREAD_LIMIT=1``): always for the captures the clean-up changes
    most (:data:`PLAIN_READING_CAPTURES`), otherwise when the cleaned reading is doubtful by its
    confidence or its share of Vietnamese syllables. Clean flatbed scans — all of the clean,
    office and most heavy pages of benchmarks/ocr_quality.py — are read once, and so is a page
    whose round seal was blanked without colour (:func:`pipeline.stages.cleanup.round_seal_mask`)
    when its reading is not doubtful: reading every such page twice cost 35–50 % more OCR time
    on them (benchmarks/throughput.py: grey office pages, 9 of 16 with a seal) and the plain
    reading was kept on none of them, nor on any page of benchmarks/ocr_quality.py."""
    if capture_of(page) in PLAIN_READING_CAPTURES:
        return True
    if not text.strip() or conf < PLAIN_READING_BELOW_CONF:  # nothing read: the clean-up may have erased it
        return True
    metrics = text_metrics(text)
    return metrics["syllables"] >= MIN_SYLLABLES_FOR_LANGUAGE and metrics["valid_syllable_ratio"] < PLAIN_READING_BELOW_VALID


def _read(
    image: np.ndarray, page: ProcessedPage, settings: OcrSettings, limits: LimitSettings, text_pdf: bool
) -> tuple[list[Word], str, float, bytes]:
    """One Tesseract reading of ``image`` (the page's geometry): words, text, confidence, PDF."""
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., :3])
    target = 0 if page.page <= settings.full_resolution_pages else settings.ocr_dpi
    small, ocr_dpi, factor = ocr_input(image, page.dpi, target)
    out = tesseract.run(
        small,
        dpi=ocr_dpi,
        lang=settings.lang,
        psm=settings.psm,
        oem=settings.oem,
        preserve_interword_spaces=settings.preserve_interword_spaces,
        user_patterns=tesseract.PATTERNS_FILE if settings.user_patterns else None,
        text_pdf=text_pdf,
        timeout_s=limits.ocr_timeout_s,
        page=page.page,
        engine_kind=settings.engine,
    )
    words = scale_words(parse_tsv(out.tsv), factor, image.shape)
    if settings.drop_non_text and capture_of(page) == "fax":
        marks = mark_rows(words)
        words = [w for w in words if id(w) not in marks]
    words = arrange_words(words, settings, image if image.ndim == 2 else None, page.color)
    text = words_to_text(words)
    return words, text, mean_confidence(words), out.text_pdf
