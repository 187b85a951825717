"""Quality gate on OCR text: real corpus files (good and bad OCR) and synthetic cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.runtime.config import OcrSettings
from pipeline.stages.quality import QualityReport, assess_page_text, is_marked, is_vietnamese_syllable

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
BAD_OCR = "bao-cao-8244-bc-vpcp.bad-ocr.txt"
SETTINGS = OcrSettings()

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.txt")) if CORPUS.is_dir() else []


def good_files() -> list[Path]:
    return [p for p in corpus_files() if p.name != BAD_OCR]


@needs_corpus
def test_bad_ocr_report_is_not_credible():
    text = (CORPUS / BAD_OCR).read_text(encoding="utf-8")
    report = assess_page_text(text, 91.0, SETTINGS)
    assert not report.credible
    assert any(r.startswith("diacritics") for r in report.reasons)
    assert report.metrics["marked_ratio"] < 0.35


@needs_corpus
def test_bad_ocr_is_caught_page_by_page():
    """Each page-sized window (40 lines) of the bad OCR is flagged on its own."""
    lines = (CORPUS / BAD_OCR).read_text(encoding="utf-8").splitlines()
    windows = ["\n".join(lines[i : i + 40]) for i in range(0, len(lines), 40)]
    flagged = [not assess_page_text(w, 91.0, SETTINGS).credible for w in windows if len(w) > 200]
    assert flagged and all(flagged)


@needs_corpus
def test_correct_corpus_texts_pass():
    files = good_files()
    assert files, "corpus holds no correct text"
    for path in files:
        text = path.read_text(encoding="utf-8")
        report = assess_page_text(text, 91.0, SETTINGS)
        assert report.credible, (path.name, report.reasons)
        lines = text.splitlines()
        for i in range(0, len(lines), 40):
            window = "\n".join(lines[i : i + 40])
            assert assess_page_text(window, 91.0, SETTINGS).credible, (path.name, i)


def test_low_confidence_is_flagged():
    report = assess_page_text("Thủ tướng Chính phủ yêu cầu các bộ, ngành thực hiện nghiêm.", 42.0, SETTINGS)
    assert not report.credible
    assert report.reasons == ["low OCR confidence: 42 (minimum 70)"]


def test_good_sentence_passes():
    text = "Căn cứ Luật Tổ chức Chính phủ ngày 19 tháng 6 năm 2015; theo đề nghị của Bộ trưởng Bộ Nội vụ."
    report = assess_page_text(text, 88.0, SETTINGS)
    assert report.credible, report.reasons
    assert isinstance(report, QualityReport)


def test_stripped_diacritics_are_flagged():
    text = "Can cu Luat To chuc Chinh phu ngay 19 thang 6 nam 2015; theo de nghi cua Bo truong Bo Noi vu."
    report = assess_page_text(text, 90.0, SETTINGS)
    assert not report.credible
    assert any("diacritics missing" in r for r in report.reasons)


def test_garbage_symbols_are_flagged():
    text = "~|}{ ¥#@ ^^ ¦¦ »« Thủ ~~ tướng ¤¤ @@ ]|[ ## chính ‡‡ phủ ¶¶ ©© ®® ~~ ^^ |||| ¬¬ ¢¢"
    report = assess_page_text(text, 90.0, SETTINGS)
    assert not report.credible
    assert any("stray symbols" in r for r in report.reasons)


def test_single_letter_noise_is_flagged():
    text = "i l . t r i , l I i n h ụ ố a c ị l t i . l r"
    report = assess_page_text(text, 90.0, SETTINGS)
    assert not report.credible
    assert any("single letters" in r for r in report.reasons)


def test_short_text_not_judged_on_diacritics():
    report = assess_page_text("Trang 2", 90.0, SETTINGS)
    assert report.credible
    report = assess_page_text("Hop dong so 15", 90.0, SETTINGS)
    assert report.credible


def test_empty_page_is_credible():
    report = assess_page_text("", 0.0, SETTINGS)
    assert report.credible and report.reasons == []
    assert report.metrics["chars"] == 0


def test_diacritic_rules_only_for_vietnamese():
    text = "This page was written in English and carries no Vietnamese marks at all, by design."
    assert assess_page_text(text, 90.0, OcrSettings(lang="eng")).credible
    assert not assess_page_text(text, 90.0, OcrSettings(lang="vie")).credible


@pytest.mark.parametrize("word", ["thực", "hiện", "nghiêng", "quyết", "đường", "khuỷu", "Thuc", "gì", "ngoài"])
def test_valid_syllables(word):
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize("word", ["hién", "méi", "thwe", "dugc", "chirc", "ctia", "hiiện", "sáng̃"])
def test_mangled_syllables(word):
    assert not is_vietnamese_syllable(word)


def test_marked():
    assert is_marked("đi") and is_marked("ăn") and not is_marked("ban")
