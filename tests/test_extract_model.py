"""The trained span model (models/admin_ner): loads once, is versioned, and fills what rules miss."""

from __future__ import annotations

import pytest

from pipeline.extract import DEFAULT_MODEL_DIR, extract, load_model, model_version
from pipeline.models import PageResult, Word

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
