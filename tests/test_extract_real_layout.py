"""Issue 17: what real documents do to the rules, as specifications on synthetic OCR pages.

Real registration copies get their number and day written in by hand, seals cover the
signature block, attachments follow the signature, and the PDF carries signatures that say who
signed and when. A value the rules cannot trust is left empty and named in the issues (with the
box of the slot), never guessed.
"""

from __future__ import annotations

from pipeline.records.record import FieldEvidence
from pipeline.stages.extract import classify, extract
from pipeline.stages.extract.common import deputy_title, unknown_province
from pipeline.stages.extract.result import Extraction
from pipeline.stages.extract.signatures import apply_signatures
from tests.test_extract import C, PageBuilder, body, header, signature


def _issues(ex) -> set[tuple[str, str]]:
    return {(i.field, i.kind) for i in ex.issues}


def _qn_header(number_runs, date_text="Quảng Ngãi, ngày 06 tháng 01 năm 2025") -> PageBuilder:
    """The header of a provincial people's committee with the number line given as runs."""
    b = header(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI"], "Số: 1/TTr-UBND", date_text)
    b.words = [w for w in b.words if w.line != b.line - 1 or w.bbox[0] > 1200]  # drop the stock number
    for x, text, conf in number_runs:
        y = b.words[-1].bbox[1]
        b.words.append(b.words[-1].model_copy(update={"text": text, "conf": conf, "bbox": (x, y, x + 26 * len(text), y + 48)}))
    return b


def _page(number_runs, date_text="Quảng Ngãi, ngày 06 tháng 01 năm 2025", sig=("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH")):
    b = _qn_header(number_runs, date_text)
    y = b.y + 80
    b.row(y, (C, "TỜ TRÌNH"))
    b.row(y + 66, (C, "Về việc miễn nhiệm chức danh Ủy viên"))
    y = body(b, y + 300)
    signature(b, y + 80, sig[0], sig[1], "Trần Hoàng Tuấn", ["Như trên", "Lưu: VT, NC"])
    return b


def test_handwritten_digits_apart_from_the_symbol_are_not_taken_for_the_number():
    # 'Số: O4 /TTr-UBND': the handwritten 01 read as 'O4' at 20 %, apart from the printed symbol
    ex = extract([_page([(451, "Số:", 78), (560, "O4", 20), (700, "/TTr-UBND", 85)]).result()], use_model=False)
    assert "number" not in ex.fields
    assert ("number", "missing") in _issues(ex)
    ev = ex.evidence["number"]
    assert ev.method == "handwriting" and ev.boxes
    x0, _, x1, _ = ev.boxes[0]
    assert x0 <= 560 and x1 >= 560 + 2 * 26  # the slot covers the handwritten digits, for the review desk
    assert ex.hints["number_symbol"] == "TTr-UBND"


def test_printed_digits_apart_from_the_symbol_read_with_confidence_stand():
    ex = extract([_page([(451, "Số:", 96), (560, "46", 95), (640, "/TB-UBND", 95)]).result()], use_model=False)
    assert ex.fields["number"] == "46/TB-UBND"


def test_a_day_left_for_the_hand_keeps_the_place_and_sends_the_date_to_review():
    b = _page([(451, "Số:", 96), (560, "46", 95), (640, "/TTr-UBND", 95)], date_text="Quảng Ngãi, ngày tháng 01 năm 2025")
    ex = extract([b.result()], use_model=False)
    assert ex.fields["place"] == "Quảng Ngãi"
    assert "date" not in ex.fields and ("date", "missing") in _issues(ex)
    assert ex.evidence["date"].method == "handwriting"


def test_kt_is_followed_by_the_deputy_title_even_when_the_seal_hides_pho():
    # the seal covers 'PHÓ': OCR reads the deputy's title line as the head's
    ex = extract([_page([(451, "Số:", 96), (560, "46", 95), (640, "/TTr-UBND", 95)], sig=("KT. CHỦ TỊCH", "CHỦ TỊCH")).result()],
                 use_model=False)  # fmt: skip
    assert ex.fields["authority_prefix"] == "KT. Chủ tịch"
    assert ex.fields["signer_title"] == "Phó Chủ tịch"
    assert deputy_title("Bộ trưởng") == "Thứ trưởng" and deputy_title("Chánh Văn phòng") == "Phó Chánh Văn phòng"


def test_a_garbled_kt_still_makes_a_deputy():
    ex = extract([_page([(451, "Số:", 96), (560, "46", 95), (640, "/TTr-UBND", 95)], sig=("TT. CHỦ TỊCH", "PO CHỦ TỊCH")).result()],
                 use_model=False)  # fmt: skip
    assert ex.fields["authority_prefix"].startswith("KT.")
    assert ex.fields["signer_title"] == "Phó Chủ tịch"


def test_the_signer_is_the_main_documents_not_an_attached_drafts():
    main = _page([(451, "Số:", 96), (560, "09", 95), (640, "/TTr-UBND", 95)]).result()
    draft = PageBuilder(page=2)
    draft.row(240, (0.27, "HỘI ĐỒNG NHÂN DÂN"), (0.70, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"))
    y = body(draft, 600)
    signature(draft, y + 80, None, "CHỦ TỊCH", "Bùi Thị Quỳnh Vân", ["Như trên", "Lưu: VT"])
    ex = extract([main, draft.result()], use_model=False)
    assert ex.fields["signer"] == "Trần Hoàng Tuấn"
    assert ex.evidence["signer"].page == 1


def test_a_name_without_family_name_or_too_short_goes_to_review():
    b = _page([(451, "Số:", 96), (560, "46", 95), (640, "/TTr-UBND", 95)])
    for w in b.words:
        if w.text == "Trần":
            b.words.remove(w)
            break
    ex = extract([b.result()], use_model=False)
    assert ex.fields["signer"] == "Hoàng Tuấn"
    assert ("signer", "low_confidence") in _issues(ex)


def test_the_issuer_never_carries_the_numbers_symbol_and_names_a_real_province():
    b = header(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI /CT-UBND"], "Số: 16/CT-UBND", "Quảng Ngãi, ngày 27 tháng 12 năm 2021")
    ex = extract([b.result()], use_model=False)
    assert ex.fields["issuer"] == "Ủy ban nhân dân tỉnh Quảng Ngãi"
    assert unknown_province("Ủy ban nhân dân tỉnh Ngãi") == "Ngãi"
    assert unknown_province("Ủy ban nhân dân tỉnh Quảng Ngãi") is None
    lost = header(["ỦY BAN NHÂN DÂN", "TỈNH NGÃI"], "Số: 16/CT-UBND", "Quảng Ngãi, ngày 27 tháng 12 năm 2021")
    assert ("issuer", "invalid") in _issues(extract([lost.result()], use_model=False))


def test_missing_expected_fields_are_named():
    b = header(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI"], "Số: 16/CT-UBND", "Quảng Ngãi, ngày 27 tháng 12 năm 2021")
    ex = extract([b.result()], use_model=False)  # no signature block on the page
    for name in ("signer", "signer_title", "recipients", "authority_prefix"):
        assert name in {i.field for i in ex.issues}, name


# --- the PDF's own signatures as evidence ------------------------------------------------------


def _sig(org="ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI", cn="Ủy ban nhân dân tỉnh Quảng Ngãi", at="2025-01-26T11:12:09+07:00", **kw):
    return {"signer_cn": cn, "signer_org": org, "signing_time": at, "intact": True, "error": None, **kw}


def _ex(**fields) -> Extraction:
    ex = Extraction(record_type="admin_document")
    for k, v in fields.items():
        ex.set(k, v, 0.9, FieldEvidence(page=1, boxes=[(0, 0, 10, 10)]))
    return ex


def test_a_date_far_before_the_issuers_signature_goes_to_review():
    ex = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngãi", date="2025-01-04")  # the day '24' read as '04'
    apply_signatures(ex, [_sig()])
    assert ("date", "inconsistent") in _issues(ex)
    assert "date" not in ex.fields and ex.evidence["date"].boxes  # not handed on; the box stays for review
    assert "2025-01-04" in next(i.message for i in ex.issues if i.field == "date")
    ok = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngãi", date="2025-01-24")
    apply_signatures(ok, [_sig()])
    assert not ok.issues


def test_a_date_after_any_signing_time_goes_to_review():
    ex = _ex(issuer="Sở Nội vụ", date="2025-02-01")
    apply_signatures(ex, [_sig(org="TRUNG TÂM CÔNG BÁO VÀ TIN HỌC", cn="Trung tâm Công báo và Tin học")])
    assert ("date", "inconsistent") in _issues(ex)


def test_a_later_copys_signature_is_no_evidence_of_the_date():
    ex = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngãi", date="2018-03-20")
    apply_signatures(ex, [_sig(at="2024-06-01T09:00:00+07:00")])  # digitized six years later
    assert not ex.issues


def test_the_issuers_certificate_spells_the_issuer_and_a_broken_signature_is_ignored():
    ex = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngăi")
    apply_signatures(ex, [_sig()])
    assert ex.fields["issuer"] == "Ủy ban nhân dân tỉnh Quảng Ngãi"
    assert ex.evidence["issuer"].source == "signature"
    broken = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngăi")
    apply_signatures(broken, [_sig(intact=False)])
    assert broken.fields["issuer"] == "Ủy ban nhân dân tỉnh Quảng Ngăi"


def _doubtful_day(day: str) -> Extraction:
    """The day slot read by the digit recogniser below its trust threshold: empty, flagged, kept as a hint."""
    ex = _ex(issuer="Ủy ban nhân dân tỉnh Quảng Ngãi")
    ex.flag("date", "missing", "date of issue unreadable (the day is not printed (handwritten?))")
    ex.hints["date_candidate"] = (day, 0.8, 1, [(1600, 360, 1700, 460)])
    return ex


def test_a_doubtful_handwritten_day_is_kept_only_where_the_issuers_signature_corroborates_it():
    near = _doubtful_day("2025-01-24")  # signed on 26 January: two days later
    apply_signatures(near, [_sig()])
    assert near.fields["date"] == "2025-01-24" and not near.issues
    assert near.evidence["date"].source == "handwriting" and near.evidence["date"].boxes
    far = _doubtful_day("2025-01-04")  # '24' read as '04': 22 days before the signature
    apply_signatures(far, [_sig()])
    assert "date" not in far.fields and ("date", "missing") in _issues(far)
    unsigned = _doubtful_day("2025-01-24")  # only the gazette centre signed: no issuer's date
    apply_signatures(unsigned, [_sig(org="TRUNG TÂM CÔNG BÁO VÀ TIN HỌC", cn="Trung tâm Công báo và Tin học")])
    assert "date" not in unsigned.fields and ("date", "missing") in _issues(unsigned)


def test_a_persons_certificate_spells_the_signer():
    ex = _ex(signer="Phùng Tô Lông")
    apply_signatures(ex, [_sig(cn="Phùng Tô Long")])
    assert ex.fields["signer"] == "Phùng Tô Long" and ex.evidence["signer"].source == "signature"


# --- the type from the heading -----------------------------------------------------------------


def test_type_comes_from_the_heading_not_from_words_in_the_body():
    b = header(["ỦY BAN NHÂN DÂN", "HUYỆN TƯ NGHĨA"], "Số: 12/QĐ-XPHC", "Tư Nghĩa, ngày 02 tháng 3 năm 2024")
    b.row(b.y + 80, (C, "QUYẾT ĐỊNH"))
    b.row(b.y + 146, (C, "Xử phạt vi phạm hành chính"))
    b.left(b.y + 300, "Xử phạt hộ kinh doanh Nguyễn Văn A, đã đăng ký hộ kinh doanh số 4300123456")
    assert classify([b.result()]) == "admin_document"
    form = PageBuilder()
    form.row(900, (0.3, "Tên hộ kinh doanh: Tạp hóa Minh An"))
    form.row(960, (0.3, "Mã số hộ kinh doanh: 4300123456"))
    assert classify([form.result()]) == "household_business_registration"  # no heading read: its labels


# --- handwritten slots read by the digit recogniser (pipeline.stages.extract.handwriting) -------------


def _recogniser_reads(monkeypatch, text: str, confidence: float):
    import numpy as np

    from pipeline.stages.extract import handwriting

    def fake(image, box, model_path=None):
        return handwriting.SlotReading(text=text, confidence=confidence, digits=[], ink="blue", handwritten=True, box=box)

    monkeypatch.setattr(handwriting, "read_slot", fake)
    return np.full((3508, 2480, 3), 255, np.uint8)


def test_a_trusted_handwritten_number_needs_ocr_to_agree(monkeypatch):
    image = _recogniser_reads(monkeypatch, "46", 0.97)
    agree = _page([(451, "Số:", 96), (560, "46", 60), (640, "/TB-UBND", 95)]).result()
    ex = extract([agree], use_model=False, images=[image])
    assert ex.fields["number"] == "46/TB-UBND"
    assert ex.evidence["number"].method == "handwriting" and ex.evidence["number"].source == "handwriting"
    differ = _page([(451, "Số:", 96), (560, "O4", 20), (640, "/TB-UBND", 95)]).result()
    ex = extract([differ], use_model=False, images=[image])
    assert "number" not in ex.fields and ("number", "missing") in _issues(ex)
    assert "'46'" in next(i.message for i in ex.issues if i.field == "number")  # the guess, for the steward


def test_an_untrusted_reading_is_only_a_hint(monkeypatch):
    image = _recogniser_reads(monkeypatch, "46", 0.5)
    page = _page([(451, "Số:", 96), (560, "46", 60), (640, "/TB-UBND", 95)]).result()
    ex = extract([page], use_model=False, images=[image])
    assert "number" not in ex.fields and ("number", "missing") in _issues(ex)


def test_a_handwritten_day_stands_only_next_to_the_issuers_signing_day(monkeypatch):
    image = _recogniser_reads(monkeypatch, "06", 0.97)
    page = _page([(451, "Số:", 96), (560, "46", 95), (640, "/TTr-UBND", 95)],
                 date_text="Quảng Ngãi, ngày tháng 01 năm 2025").result()  # fmt: skip
    signed = [_sig(at="2025-01-07T10:09:57+07:00")]
    ex = extract([page], use_model=False, images=[image], signatures=signed)
    assert ex.fields["date"] == "2025-01-06" and ex.evidence["date"].source == "handwriting"
    late = extract([page], use_model=False, images=[image], signatures=[_sig(at="2025-01-20T10:00:00+07:00")])
    assert "date" not in late.fields and ("date", "inconsistent") in _issues(late)
    unsigned = extract([page], use_model=False, images=[image])
    assert "date" not in unsigned.fields and ("date", "inconsistent") in _issues(unsigned)


# --- "Nơi nhận": two readings that agree are trusted ------------------------------------------


def test_two_readings_of_a_block_disagree_line_by_line():
    from pipeline.stages.extract.layout import Line
    from pipeline.stages.extract.reread import disagreements
    from pipeline.stages.models import Word

    def line(y, text):
        return Line(1, [Word(text=t, conf=90, bbox=(100 + 80 * k, y, 170 + 80 * k, y + 40), line=0) for k, t in enumerate(text.split())])

    page = [line(100, "- Như trên;"), line(160, "- Sở Tài chính;")]
    assert disagreements(page, [line(101, "- Như trên;"), line(161, "- Sở Tài chính;")]) == 0
    assert disagreements(page, [line(101, "- Như trên;"), line(161, "- Bệ Tài chính:")]) == 1
    assert disagreements(page, [line(101, "- Như trên;")]) == 1  # a line one reading lacks


def test_the_e_portal_is_cong_not_cong():
    b = _qn_header([(451, "Số:", 96), (560, "46", 95), (640, "/TB-UBND", 95)])
    y = body(b, b.y + 300)
    signature(b, y + 80, "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Trần Phước Hiền", ["Như trên", "Công TTĐT tỉnh", "Lưu: VT, NC"])
    ex = extract([b.result()], use_model=False)
    assert ex.fields["recipients"] == ["Như trên", "Cổng TTĐT tỉnh", "Lưu: VT, NC"]


def test_a_header_whose_number_and_day_are_handwritten_ends_above_the_type_name():
    """No printed number or date ends the header ('Số:' lost beside the handwritten digits, the day
    and 'tháng' written in by hand, as on a real Chỉ thị): the header band
    must still end above 'CHỈ THỊ', or the trích yếu under it is cut at the header's column edge
    (and a model span running into the body took its place, unflagged, on two real scans)."""
    b = header(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI"], "/CT-UBND", "Quảng Ngãi, ngày 12 năm 2021")
    y = b.y + 80
    b.row(y, (C, "CHỈ THỊ"))
    b.row(y + 66, (C, "Về việc tăng cường các biện pháp bảo đảm đón Tết Nguyên đán"))
    b.row(y + 132, (C, "Nhâm Dần năm 2022 đầm ấm, an toàn và tiết kiệm"))
    b.row(y + 198, (C, "trên địa bàn tỉnh"))
    y = body(b, y + 330)
    signature(b, y + 80, "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Trần Hoàng Tuấn", ["Như trên", "Lưu: VT, NC"])
    ex = extract([b.result()], use_model=False)
    assert ex.fields["subject"] == ("tăng cường các biện pháp bảo đảm đón Tết Nguyên đán Nhâm Dần năm 2022 "
                                    "đầm ấm, an toàn và tiết kiệm trên địa bàn tỉnh")  # fmt: skip


def test_a_recipient_list_without_its_luu_line_goes_to_review():
    """Decree 30 ends the Nơi nhận with 'Lưu: VT, …': a list read without it lost a line."""
    whole = _qn_header([(451, "Số:", 96), (560, "46", 95), (640, "/TB-UBND", 95)])
    y = whole.y + 80
    whole.row(y, (C, "THÔNG BÁO"))
    whole.row(y + 66, (C, "Về việc miễn nhiệm chức danh Ủy viên"))
    y = body(whole, y + 300)
    signature(whole, y + 80, "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Trần Hoàng Tuấn", ["Như trên", "Sở Nội vụ"])
    ex = extract([whole.result()], use_model=False)
    assert ex.fields["recipients"] == ["Như trên", "Sở Nội vụ"]
    assert ("recipients", "missing") in _issues(ex)
    complete = extract([_page([(451, "Số:", 96), (560, "46", 95), (640, "/TB-UBND", 95)]).result()], use_model=False)
    assert complete.fields["recipients"][-1].startswith("Lưu") and ("recipients", "missing") not in _issues(complete)
