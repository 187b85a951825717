"""Misread marks restored from the Vietnamese dictionary — only where OCR doubted, always reviewed.

The cases are the misreadings seen on the real scans of ``../shared/real-scans`` ("bỗ nhiệm",
"Uy ban", "Quảng Nøgãi", "TỈNH NGÃI" under a seal) and the corrections that must *not* happen
("dân tỉnh" → "dân tình", "tỉnh bãi bỏ" → "tỉnh Yên Bái"), which an earlier draft made.
"""

from __future__ import annotations

from pipeline.records.record import FieldEvidence
from pipeline.stages.extract.lexicon import (
    MAX_WORD_CONF,
    SUSPECT_FIELDS,
    apply_lexicon,
    restore_doubtful_marks,
    restore_provinces,
    suspect_marks,
)
from pipeline.stages.extract.result import Extraction
from pipeline.stages.models import PageResult, Word

LOW, HIGH = 60.0, 96.0


def _marks(text: str, low: set[str]) -> str:
    tokens = text.split(" ")
    fixed, _ = restore_doubtful_marks(tokens, [LOW if t in low else HIGH for t in tokens])
    return " ".join(fixed)


def test_a_doubtful_syllable_that_forms_no_word_takes_the_one_spelling_that_does():
    assert _marks("bỗ nhiệm vào ngạch Thanh tra viên", {"bỗ"}) == "bổ nhiệm vào ngạch Thanh tra viên"


def test_a_confidently_read_word_is_never_changed():
    assert _marks("bỗ nhiệm vào ngạch", set()) == "bỗ nhiệm vào ngạch"
    assert HIGH >= MAX_WORD_CONF


def test_a_word_that_stands_alone_is_kept_even_when_a_neighbour_would_make_another_word():
    # "dân tình" is a word, but "tỉnh" stands alone: the issuer line must not become "dân tình"
    assert _marks("Ủy ban nhân dân tỉnh Quảng Ngãi", {"tỉnh"}) == "Ủy ban nhân dân tỉnh Quảng Ngãi"


def test_a_long_fixed_phrase_takes_its_marks_from_the_dictionary_however_confidently_read():
    assert _marks("Ủy viên Uy ban nhân dân tỉnh", {"Uy"}) == "Ủy viên Ủy ban nhân dân tỉnh"
    assert _marks("Ủy viên Uy ban nhân dân tỉnh", set()) == "Ủy viên Ủy ban nhân dân tỉnh"


def test_the_text_layer_of_a_pdf_is_never_repaired():
    tokens = "Uy ban nhân dân".split()
    assert restore_doubtful_marks(tokens, [100.0] * 4) == (tokens, [])


def test_trailing_punctuation_and_capitals_are_kept():
    assert _marks("việc bỗ nhiệm, miễn nhiệm", {"bỗ"}) == "việc bổ nhiệm, miễn nhiệm"
    assert _marks("BỖ NHIỆM", {"BỖ"}) == "BỔ NHIỆM"


def test_a_province_with_a_stray_letter_is_restored():
    assert restore_provinces("trên địa bàn tỉnh Quảng Nøgãi nhiệm kỳ")[0] == "trên địa bàn tỉnh Quảng Ngãi nhiệm kỳ"


def test_a_province_that_lost_its_first_syllable_is_restored_only_when_one_province_ends_so():
    assert restore_provinces("ỦY BAN NHÂN DÂN TỈNH NGÃI")[0] == "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI"
    assert restore_provinces("Ủy ban nhân dân tỉnh Nam")[0] == "Ủy ban nhân dân tỉnh Nam"  # Hà Nam or Quảng Nam


def test_ordinary_words_after_tinh_are_not_taken_for_provinces():
    for text in ("Nghị quyết của HĐND tỉnh bãi bỏ Nghị quyết số 24", "Thường trực Tỉnh ủy", "tỉnh Quảng Ngãi",
                 "tỉnh Thừa Thiên Huế", "các sở, ngành tỉnh"):  # fmt: skip
        assert restore_provinces(text) == (text, [])


def _page(words: list[tuple[str, float]], source: str = "ocr") -> PageResult:
    out, x = [], 100
    for text, conf in words:
        out.append(Word(text=text, conf=conf, bbox=(x, 500, x + 20 * len(text), 540), line=0, block=0))
        x += 20 * len(text) + 15
    return PageResult(page=1, width=2480, height=3508, dpi=300, words=out, text_source=source)


def _extraction(page: PageResult, value: str) -> Extraction:
    ex = Extraction(record_type="admin_document")
    box = (0, 480, 2480, 560)
    ex.set("subject", value, 0.9, FieldEvidence(page=1, boxes=[box], source=page.text_source))
    return ex


def test_a_repaired_field_is_sent_to_review_with_both_spellings():
    page = _page([("bỗ", 62.0), ("nhiệm", 95.0), ("ông", 96.0)])
    ex = _extraction(page, "bỗ nhiệm ông")
    apply_lexicon(ex, [page])
    assert ex.fields["subject"] == "bổ nhiệm ông"
    (issue,) = [i for i in ex.issues if i.field == "subject"]
    assert issue.kind == "low_confidence" and "'bỗ' → 'bổ'" in issue.message


def test_text_from_a_pdf_text_layer_is_never_repaired():
    page = _page([("bỗ", 100.0), ("nhiệm", 100.0)], source="text_layer")
    ex = _extraction(page, "bỗ nhiệm")
    apply_lexicon(ex, [page])
    assert ex.fields["subject"] == "bỗ nhiệm" and not ex.issues


def test_a_doubtful_word_that_stands_alone_but_joins_no_neighbour_is_flagged_not_changed():
    """'chuyển đôi số' (Tesseract 5.5 read 'đổi' as 'đôi' at 87 %): 'đôi' is a word, so it is
    not replaced — 'chuyển dời', 'chuyển đổi' and 'đối số' all exist — but the trích yếu goes
    to review with the suggestions; its names-of-bodies twin 'dân tỉnh' is never suspected."""
    assert suspect_marks("chuyển đôi số".split(), [95.0, 87.0, 96.0]) == [("đôi", ["dời", "đối", "đổi"])]
    assert suspect_marks("chuyển đôi số".split(), [95.0, 96.0, 96.0]) == []  # read confidently
    page = _page([("trong", 95.0), ("chuyển", 95.0), ("đôi", 87.0), ("số", 96.0)])
    ex = _extraction(page, "trong chuyển đôi số")
    apply_lexicon(ex, [page])
    assert ex.fields["subject"] == "trong chuyển đôi số"
    (issue,) = [i for i in ex.issues if i.field == "subject"]
    assert "'đôi'" in issue.message and "'đổi'" in issue.message
    assert "subject" in SUSPECT_FIELDS and "issuer" not in SUSPECT_FIELDS


def test_a_field_read_again_takes_its_word_confidences_from_that_reading():
    """The title zone read a second time (pipeline.stages.extract.admin._reread_title_zone): the words of
    its trích yếu are not the page's — under its boxes the page holds a stamp's words, or none —
    so the confidences come from the re-read ('thỉ' at 70 %), and the doubtful mark is repaired."""
    page = _page([("HỌC", 93.0), ("0.NG", 76.0)])  # what the page OCR has under the re-read's boxes
    ex = _extraction(page, "tăng cường công tác thỉ hành án hành chính")
    ex.hints["word_conf"] = {"subject": {"tăng": 97.0, "cường": 97.0, "công": 97.0, "tác": 97.0, "thỉ": 70.0,
                                         "hành": 97.0, "án": 97.0, "chính": 96.0}}  # fmt: skip
    apply_lexicon(ex, [page])
    assert ex.fields["subject"] == "tăng cường công tác thi hành án hành chính"
    assert any("'thỉ' → 'thi'" in i.message for i in ex.issues if i.field == "subject")
