"""Issue 17: zones of a real page that the page's OCR lost, read again from the stored page image.

A stamp beside the title joins its lines to the trích yếu; a seal over the signature block hides
'KT.' and the name; one reading of a name drops a tone mark. Each value read again is kept with
its evidence marked and named for review: a second reading is a better guess, not a certainty.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from pipeline.stages.extract import extract
from pipeline.stages.extract.admin import restore_dropped_tones
from pipeline.stages.models import Word
from tests.test_extract import LH, C, H, W, _signature_page_on_its_own, _tesseract_vie, _with_header, body, header


def _issues(ex) -> set[tuple[str, str]]:
    return {(i.field, i.kind) for i in ex.issues}


# --- the title zone -------------------------------------------------------------------------

FONTS = Path("/usr/share/fonts/truetype/liberation2")


def _stamped_title_page():
    """Page 1 of a chỉ thị as the page OCR read it with an incoming-mail stamp in the left margin
    beside the trích yếu (the development set's black-and-white scan): 'CHỈ' lost, the first
    trích yếu line joined to the stamp's words and 'thi' lost with them."""
    b = header(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI"], "Số: 07/CT-UBND", "Quảng Ngãi, ngày 20 tháng 3 năm 2018")
    y = b.y + 80
    b.row(y, (C + 0.02, "THỊ"))
    b.words += [Word(text="HỌC", conf=93, bbox=(500, y + 66, 600, y + 66 + LH), line=b.line),
                Word(text="0.NG", conf=76, bbox=(620, y + 66, 720, y + 66 + LH), line=b.line)]  # fmt: skip
    b.row(y + 66, (C, "Về việc tăng cường công tác hành án hành chính"))
    b.row(y + 126, (C, "trên địa bàn tỉnh Quảng Ngãi"))
    body(b, y + 300)
    return b.result(), y


def _render_title_zone(y: int) -> bytes:
    """The stored page image: the type name and the trích yếu centred, the stamp in the margin."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (W, H), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    bold = ImageFont.truetype(str(FONTS / "LiberationSerif-Bold.ttf"), 46)
    small = ImageFont.truetype(str(FONTS / "LiberationSerif-Bold.ttf"), 30)

    def centred(text: str, top: int) -> None:
        width = draw.textlength(text, font=bold)
        draw.text((C * W - width / 2, top), text, font=bold, fill=(15, 15, 15))

    centred("CHỈ THỊ", y)
    centred("Về việc tăng cường công tác thi hành án hành chính", y + 66)
    centred("trên địa bàn tỉnh Quảng Ngãi", y + 126)
    # the "CV ĐẾN" stamp: its heading struck through by the stamp's rule, the number written in
    draw.rectangle((40, y + 50, 560, y + 300), outline=(15, 15, 15), width=4)
    draw.text((60, y + 60), "TRUNG TÂM CÔNG BÁO", font=small, fill=(15, 15, 15))
    draw.line((40, y + 78, 560, y + 78), fill=(15, 15, 15), width=5)
    draw.text((60, y + 130), "CV", font=small, fill=(15, 15, 15))
    draw.line([(200, y + 150), (240, y + 120), (270, y + 160), (320, y + 118), (350, y + 158), (420, y + 125)],
              fill=(20, 20, 20), width=6)  # fmt: skip
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@pytest.mark.skipif(not _tesseract_vie(), reason="needs tesseract with vie")
def test_a_title_zone_joined_to_a_stamp_is_read_again_and_sent_to_review():
    if not (FONTS / "LiberationSerif-Bold.ttf").exists():
        pytest.skip("Liberation Serif not installed")
    page, y = _stamped_title_page()
    plain = extract([page], use_model=False)  # page OCR only: no type name read, so no trích yếu
    assert "subject" not in plain.fields and plain.fields["doc_type"] == "Chỉ thị"  # (from the number's symbol)
    ex = extract([page], use_model=False, images=[_render_title_zone(y)])  # real Tesseract on the title zone
    assert ex.fields["subject"] == "tăng cường công tác thi hành án hành chính trên địa bàn tỉnh Quảng Ngãi"
    assert ex.evidence["subject"].method == "reread" and ex.confidence["subject"] <= 0.5
    assert ("subject", "low_confidence") in _issues(ex)  # one reading of free text: for the steward
    assert ex.fields["doc_type"] == "Chỉ thị" and ex.evidence["doc_type"].method == "reread"


# --- the signature block --------------------------------------------------------------------

NAME_Y = 1000  # the name's top on the signature page: 13 list lines under "Nơi nhận" (350)


def _sealed_block_page():
    """Page 2: "Nơi nhận" and its list; the page OCR read nothing of the signature block beside it
    (a black seal over it on a black-and-white scan)."""
    return _signature_page_on_its_own([
        [(420, "Nơi", 97), (511, "nhận:", 97)],
        [(422, "-", 93), (449, "Như", 96), (560, "trên;", 97)],
        [(422, "-", 93), (449, "Lưu:", 93), (548, "VT,", 90), (630, "NC.", 90)],
    ])  # fmt: skip


def _fake_block_reread(monkeypatch, name_y: int, calls: list):
    """The block as Tesseract reads it from the image: the ring of the seal through 'KT.', 'PHÓ'
    lost, and the name — when the box reaches down to it."""
    from pipeline.stages.extract import reread

    def fake(rgb, box, dpi, **kw):
        calls.append(box)
        if box[0] < W * 0.45:  # the "Nơi nhận" list: nothing better than the page's reading
            return None
        words = [Word(text="ce=J{T.", conf=29, bbox=(1425, 351, 1560, 399), line=0),
                 Word(text="CHỦ", conf=97, bbox=(1580, 351, 1700, 399), line=0),
                 Word(text="TỊCH", conf=96, bbox=(1720, 351, 1888, 399), line=0),
                 Word(text="ÈỳCHỦ", conf=0, bbox=(1400, 410, 1600, 458), line=1),
                 Word(text="TỊCH", conf=97, bbox=(1720, 410, 1888, 458), line=1)]  # fmt: skip
        if box[3] >= name_y + LH:
            words += [Word(text=t, conf=96, bbox=(x, name_y, x + 150, name_y + LH), line=2)
                      for x, t in ((1500, "Phạm"), (1670, "Trường"), (1840, "Thọ"))]  # fmt: skip
        return words

    monkeypatch.setattr(reread, "reread_block", fake)


def test_kt_under_a_seal_ring_still_makes_a_deputy_but_only_for_review(monkeypatch):
    calls: list = []
    _fake_block_reread(monkeypatch, 600, calls)  # the name within the first box
    ex = extract(_with_header(_sealed_block_page()), use_model=False, images=[None, np.full((H, W, 3), 255, np.uint8)])
    assert ex.fields["signer"] == "Phạm Trường Thọ"
    assert ex.fields["authority_prefix"] == "KT. Chủ tịch" and ex.fields["signer_title"] == "Phó Chủ tịch"
    assert {("authority_prefix", "low_confidence"), ("signer_title", "low_confidence")} <= _issues(ex)
    assert ex.confidence["authority_prefix"] <= 0.5 and ex.confidence["signer_title"] < 0.6
    assert not ex.has_issue("signer")  # the name itself was read whole, where the first box reached


def test_a_name_below_the_first_box_is_read_by_a_deeper_reread_and_sent_to_review(monkeypatch):
    calls: list = []
    _fake_block_reread(monkeypatch, NAME_Y, calls)
    ex = extract(_with_header(_sealed_block_page()), use_model=False, images=[None, np.full((H, W, 3), 255, np.uint8)])
    block_boxes = [c for c in calls if c[0] >= W * 0.45]
    assert len(block_boxes) == 2 and block_boxes[0][3] < NAME_Y + LH <= block_boxes[1][3]
    assert ex.fields["signer"] == "Phạm Trường Thọ"
    assert ex.evidence["signer"].method == "reread" and ("signer", "low_confidence") in _issues(ex)


# --- the name's tone marks ------------------------------------------------------------------


def _named_block_page(last: str, conf: float):
    return _signature_page_on_its_own([
        [(420, "Nơi", 97), (511, "nhận:", 97), (1569, "KT.", 97), (1660, "CHỦ", 96), (1790, "TỊCH", 96)],
        [(422, "-", 93), (449, "Như", 96), (560, "trên;", 97), (1689, "PHÓ", 95), (1800, "CHỦ", 96), (1930, "TỊCH", 96)],
        [(422, "-", 93), (449, "Lưu:", 93), (548, "VT,", 90), (630, "NC.", 90)],
        [], [], [],
        [(1533, "Trần", 90), (1660, "Hoàng", 96), (1820, last, conf)],
    ])  # fmt: skip


def _reread_name(monkeypatch, last: str, conf: float):
    from pipeline.stages.extract import reread

    def fake(rgb, box, dpi, **kw):
        if box[0] < W * 0.45:
            return None
        y = 350 + 6 * 54
        return [Word(text="KT.", conf=96, bbox=(1569, 350, 1640, 398), line=0),
                Word(text="CHỦ", conf=97, bbox=(1660, 350, 1770, 398), line=0),
                Word(text="TỊCH", conf=97, bbox=(1790, 350, 1900, 398), line=0),
                Word(text="PHÓ", conf=93, bbox=(1689, 404, 1780, 452), line=1),
                Word(text="CHỦ", conf=96, bbox=(1800, 404, 1910, 452), line=1),
                Word(text="TỊCH", conf=97, bbox=(1930, 404, 2040, 452), line=1),
                Word(text="Trần", conf=96, bbox=(1533, y, 1640, y + LH), line=2),
                Word(text="Hoàng", conf=96, bbox=(1660, y, 1800, y + LH), line=2),
                Word(text=last, conf=conf, bbox=(1820, y, 1930, y + LH), line=2)]  # fmt: skip

    monkeypatch.setattr(reread, "reread_block", fake)


def test_a_tone_mark_one_reading_dropped_is_restored_and_sent_to_review(monkeypatch):
    # the page read 'Tuân' at 86 %, the block read again 'Tuấn' at 23 % (stacked marks read weakly)
    _reread_name(monkeypatch, "Tuấn", 23)
    image = [None, np.full((H, W, 3), 255, np.uint8)]
    ex = extract(_with_header(_named_block_page("Tuân", 86)), use_model=False, images=image)
    assert ex.fields["signer"] == "Trần Hoàng Tuấn"
    assert ("signer", "low_confidence") in _issues(ex) and ex.confidence["signer"] <= 0.5
    # the other way round (a tone mark in the reading taken, none in the other) nothing changes
    _reread_name(monkeypatch, "Tuân", 90)
    ex = extract(_with_header(_named_block_page("Tuấn", 95)), use_model=False, images=image)
    assert ex.fields["signer"] == "Trần Hoàng Tuấn" and not ex.has_issue("signer")


def test_only_a_missing_tone_mark_is_taken_from_the_other_reading():
    assert restore_dropped_tones("Trần Hoàng Tuân", "Trần Hoàng Tuấn") == "Trần Hoàng Tuấn"
    assert restore_dropped_tones("Trần Phước Hiên", "Trần Phước Hiền") == "Trần Phước Hiền"
    assert restore_dropped_tones("Trần Hoàng Tuấn", "Trần Hoàng Tuân") is None  # OCR does not add a mark
    assert restore_dropped_tones("Trần Hoàng Tuần", "Trần Hoàng Tuấn") is None  # two marks: no evidence
    assert restore_dropped_tones("Trần Hoàng Tuan", "Trần Hoàng Tuấn") is None  # a vowel mark differs too
    assert restore_dropped_tones("Thị Lê Vân", "Hà Thị Lê Vân") is None  # another syllable count
    assert restore_dropped_tones("Nguyễn Hoàng Giang", "Nguyễn Hoàng Giang") is None


# --- "Nơi nhận": marks that no entry starts or ends with ----------------------------------


def test_stray_marks_at_the_edges_of_a_recipient_entry_are_dropped():
    # a stroke of the signature beside the list read as '`' and '~'; ';' read as ':'
    page2 = _signature_page_on_its_own([
        [(420, "Nơi", 97), (511, "nhận:", 97), (1750, "CHỦ", 96), (1880, "TỊCH", 96)],
        [(400, "~", 40), (449, "Như", 96), (560, "trên;", 97)],
        [(422, "-", 93), (449, "CT,", 93), (540, "PCT", 92), (640, "UBND", 93), (780, "tỉnh:", 90)],
        [(422, "-", 93), (449, "Cổng", 90), (580, "TTĐT", 91), (720, "tỉnh;", 96), (850, "`", 20)],
        [(422, "-", 93), (449, "Lưu:", 93), (548, "VT,", 90), (630, "KTTH.", 90)],
        [],
        [(1700, "Nguyễn", 96), (1880, "Hoàng", 96), (2040, "Giang", 96)],
    ])  # fmt: skip
    ex = extract(_with_header(page2), use_model=False)
    assert ex.fields["recipients"] == ["Như trên", "CT, PCT UBND tỉnh", "Cổng TTĐT tỉnh", "Lưu: VT, KTTH"]


def test_a_list_whose_heading_was_not_read_is_still_the_list_but_for_review():
    # "Nơi nhận:" crossed by a stroke of the signature, read as 'TH' at 9 %
    rows = [
        [(357, "TH", 9), (1513, "KT.", 97), (1610, "CHỦ", 97), (1740, "TỊCH", 97)],
        [(360, "-", 93), (390, "Như", 97), (500, "trên;", 97), (1500, "PHÓ", 95), (1610, "CHỦ", 96), (1740, "TỊCH", 97)],
        [(360, "-", 92), (390, "CT,", 88), (480, "PCT", 93), (580, "UBND", 90), (720, "tỉnh;", 97)],
        [(358, "-", 93), (390, "Lưu:", 93), (500, "VT,", 85), (590, "TTHC.", 91)],
        [],
        [(1488, "Trần", 90), (1620, "Hoàng", 96), (1790, "Tuấn", 97)],
    ]  # fmt: skip
    ex = extract(_with_header(_signature_page_on_its_own(rows)), use_model=False)
    assert ex.fields["recipients"] == ["Như trên", "CT, PCT UBND tỉnh", "Lưu: VT, TTHC"]
    assert ("recipients", "low_confidence") in _issues(ex)
    assert ex.fields["signer_title"] == "Phó Chủ tịch" and ex.fields["signer"] == "Trần Hoàng Tuấn"
    # without its "Lưu:" line the bulleted lines beside the block are not taken for the list
    ex = extract(_with_header(_signature_page_on_its_own(rows[:3] + rows[4:])), use_model=False)
    assert "recipients" not in ex.fields and ("recipients", "missing") in _issues(ex)
