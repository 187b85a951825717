"""The trained span model (models/admin_ner): loads once, is versioned, and fills what rules miss."""

from __future__ import annotations

import pytest

from pipeline.stages.extract import DEFAULT_MODEL_DIR, extract, load_model, model_version
from pipeline.stages.models import PageResult, Word

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "meta.json").exists(), reason="model not trained")


def test_model_loads_once_and_is_versioned():
    nlp = load_model()
    assert nlp is not None and load_model() is nlp
    v = model_version()
    assert v.startswith("admin_ner-") and "+" in v and len(v.split("+")[1]) == 12


def _page(rows: list[list[tuple[int, str]]]) -> PageResult:
    """rows of (x, text) runs (x < 0: centred on the text block); each row one Tesseract line.
    Rows after the body jump to the lower half of the page, where a signature block sits."""
    words = []
    y = 200
    for i, row in enumerate(rows):
        if row and row[0][1] == "BỘ TRƯỞNG":
            y = 2300
        if row and row[0][1].startswith("Bộ Tư pháp báo cáo"):
            y += 120  # the gap between the trích yếu and the body
        for x, text in row:
            if x < 0:
                x = int(1330 - 26 * len(text) / 2)
            for tok in text.split():
                w = 26 * len(tok)
                words.append(Word(text=tok, conf=93, bbox=(x, y, x + w, y + 48), line=i))
                x += w + 26
        y += 64
    text = "\n".join(" ".join(t for _, t in row) for row in rows)
    return PageResult(page=1, width=2480, height=3508, dpi=300, text=text, words=words, mean_confidence=93)


def test_model_fills_the_signature_block_when_layout_cues_are_missing():
    # No "Nơi nhận", no authority prefix, no "./." end of body: the rules find no signature block.
    page = _page([
        [(300, "BỘ TƯ PHÁP"), (1250, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")],
        [(1400, "Độc lập - Tự do - Hạnh phúc")],
        [(330, "Số: 12/BC-BTP"), (1300, "Hà Nội, ngày 05 tháng 3 năm 2024")],
        [(-1, "BÁO CÁO")],
        [(-1, "Kết quả cải cách thủ tục hành chính quý I năm 2024")],
        [(350, "Bộ Tư pháp báo cáo kết quả cải cách thủ tục hành chính quý I như sau")],
        [(350, "Đề nghị các cơ quan, đơn vị nghiêm túc triển khai thực hiện")],
        [(1500, "BỘ TRƯỞNG")],
        [(1450, "BỘ TƯ PHÁP *")],
        [(1450, "Nguyễn Hải Ninh")],
    ])
    rules = extract([page], use_model=False)
    assert rules.fields["subject"] == "Kết quả cải cách thủ tục hành chính quý I năm 2024"
    assert "signer" not in rules.fields
    both = extract([page])
    assert both.fields["number"] == "12/BC-BTP" and both.fields["issuer"] == "Bộ Tư pháp"  # rules still win
    assert both.evidence["number"].method == "rule"
    assert both.fields.get("signer") == "Nguyễn Hải Ninh"
    assert both.evidence["signer"].method == "model" and both.evidence["signer"].boxes
    assert 0 < both.confidence["signer"] <= 0.75
    # a value the model alone gives is shown to a steward, never handed on unreviewed
    assert any(i.field == "signer" and "model alone" in i.message for i in both.issues)
    assert not any(i.field == "number" for i in both.issues)


def _header_page(issuer_rows: list[str], number: str = "Số: 1742/QĐ-KSTT") -> PageResult:
    rows = [[(300, issuer_rows[0]), (1250, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")],
            [(300, issuer_rows[1]), (1400, "Độc lập - Tự do - Hạnh phúc")]]
    rows += [[(300, r)] for r in issuer_rows[2:]]
    rows += [[(330, number), (1300, "Hà Nội, ngày 28 tháng 10 năm 2023")],
             [(-1, "QUYẾT ĐỊNH")], [(-1, "Về việc thành lập Tổ công tác kiểm soát thủ tục hành chính")],
             [(350, "Bộ Tư pháp báo cáo kết quả cải cách thủ tục hành chính quý I như sau")]]  # fmt: skip
    return _page(rows)


@pytest.mark.parametrize(
    "printed,want_rules,want",
    [
        (["VĂN PHÒNG CHÍNH PHỦ", "CỤC KIỂM SOÁT THỦ TỤC", "HANH CHINH"],
         "Cục Kiểm soát thủ tục hanh chinh", "Cục Kiểm soát thủ tục hành chính"),
        (["ỦY BAN NHÂN DÂN", "THÀNH PHỐ HÀ NỘI", "SƠ NỌI VỤ"], "Sở Nọi vụ", "Sở Nội vụ"),
        (["ỦY BAN NHÂN DÂN", "PHƯỜNG BỀN NGHÉ"], "Ủy ban nhân dân phường Bền Nghé", "Ủy ban nhân dân phường Bến Nghé"),
    ],
)  # fmt: skip
def test_lexicon_restores_marks_ocr_dropped_in_the_issuer(printed, want_rules, want):
    page = _header_page(printed)
    assert extract([page], use_model=False).fields["issuer"] == want_rules
    ex = extract([page])
    assert ex.fields["issuer"] == want
    assert ex.evidence["issuer"].method == "model" and ex.evidence["issuer"].boxes  # boxes kept for the desk


def test_lexicon_changes_only_what_the_context_contradicts():
    from pipeline.stages.extract.model import restore_marks

    lex = load_model().lexicon
    assert lex is not None
    for ok in ("Ủy ban nhân dân phường Bến Nghé", "Hạnh phúc", "Sở Tư pháp", "Kế hoạch thực hiện năm 2024",
               "Phòng Xyz Abc", "bền vững"):  # fmt: skip
        assert restore_marks(ok, lex) == ok
    # capitals only ('Y' → 'Ý'); Tesseract's marks on lower-case words are trusted ('cach' stays)
    assert restore_marks("Y kiến chỉ đạo về cải cach thủ tục hành chính", lex) == "Ý kiến chỉ đạo về cải cach thủ tục hành chính"
    assert restore_marks("THÀNH PHỔỐ HÀ NỘI", lex) == "THÀNH PHỐ HÀ NỘI"  # a doubled letter
    assert restore_marks("VỤ CAI CACH HANH CHÍNH", lex) == "VỤ CẢI CÁCH HÀNH CHÍNH"


def test_model_reads_a_signature_page_of_its_own():
    # Page 2 holds only the signature block, at the top, without "Nơi nhận", prefix or "./.":
    # the rules find no block; the model's region starts at the top of such a short last page.
    first = _header_page(["BỘ TƯ PHÁP", "", ""], number="Số: 12/BC-BTP")
    words, y = [], 300
    for i, (x, text) in enumerate([(1500, "BỘ TRƯỞNG"), (1450, "BỘ TƯ PHÁP *"), (1450, ""), (1450, "Nguyễn Hải Ninh")]):
        for tok in text.split():
            words.append(Word(text=tok, conf=93, bbox=(x, y, x + 26 * len(tok), y + 48), line=i))
            x += 26 * len(tok) + 26
        y += 64
    second = PageResult(page=2, width=2480, height=3508, dpi=300, text="", words=words, mean_confidence=93)
    assert "signer" not in extract([first, second], use_model=False).fields
    both = extract([first, second])
    assert both.fields.get("signer") == "Nguyễn Hải Ninh" and both.evidence["signer"].page == 2
    assert both.evidence["signer"].method == "model"


def test_model_span_must_pass_the_field_check():
    from pipeline.stages.extract.model import agency_ok, signer_ok, title_ok

    assert title_ok("Chủ tịch") and title_ok("Vụ trưởng Vụ Cải cách hành chính") and not title_ok("Tạm sg")
    assert signer_ok("Trần Văn Lan") and not signer_ok("đế LUẬN")
    assert agency_ok("Sở Tư pháp") and not agency_ok("Độc lập") and not agency_ok("Sở")
