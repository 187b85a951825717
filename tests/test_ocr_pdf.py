"""OCR keeps words with boxes and confidences in NFC; the searchable PDF is PDF/A-2b with the
invisible text laid over the words."""

import io
import re
import subprocess
import unicodedata

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.runtime.config import LimitSettings, OcrSettings
from pipeline.stages.models import ProcessedPage, Word
from pipeline.stages.ocr import mean_confidence, ocr_page, parse_tsv, words_to_text
from pipeline.stages.pdf import build_searchable_pdf, pdf_text

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
LINES = [
    "Số: 5898/UBND-KSTT",
    "Hà Nội, ngày 22 tháng 4 năm 2021",
    "Thực hiện ý kiến chỉ đạo của Thủ tướng Chính phủ về việc",
    "đẩy mạnh cải cách thủ tục hành chính, số hóa hồ sơ.",
]


@pytest.fixture(scope="module")
def page_and_ocr():
    dpi = 300
    im = Image.new("RGB", (2480, 1200), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(FONT, 54)
    for i, line in enumerate(LINES):
        draw.text((250, 200 + i * 110), line, font=font, fill="black")
    arr = np.asarray(im)
    page = ProcessedPage(page=1, color=arr, ocr_image=np.asarray(im.convert("L")), dpi=dpi, skew_angle=0.0, orientation=0, source_sha256="0" * 64)
    words, text, conf, text_pdf, _ = ocr_page(page, OcrSettings(), LimitSettings())
    return im, words, text, conf, text_pdf


def test_ocr_reads_vietnamese_in_nfc_with_boxes_and_confidences(page_and_ocr):
    _, words, text, conf, _ = page_and_ocr
    assert text == unicodedata.normalize("NFC", text)
    assert "5898/UBND-KSTT" in text
    assert "Hà Nội, ngày 22 tháng 4 năm 2021" in text
    assert conf > 85
    number = next(w for w in words if "5898" in w.text)
    x0, y0, x1, y1 = number.bbox
    assert 150 < x0 < x1 < 1200 and 180 < y0 < y1 < 300  # first line, left side
    assert len({w.line for w in words}) == len(LINES)


def _page(im: Image.Image, dpi: int = 300, page: int = 1) -> ProcessedPage:
    return ProcessedPage(page=page, color=np.asarray(im), ocr_image=np.asarray(im.convert("L")), dpi=dpi,
                         skew_angle=0.0, orientation=0, source_sha256="0" * 64)  # fmt: skip


def test_the_library_engine_reads_the_words_and_boxes_the_executable_reads(page_and_ocr):
    """tesserocr's Tesseract 5.5 and Debian's executable (5.3): the same words in the same boxes;
    confidences a little apart (tests/test_tesseract_engine.py, benchmarks/ocr_engine.py)."""
    from pipeline._exec import tesseract

    gray = np.asarray(page_and_ocr[0].convert("L"))
    kwargs = {"dpi": 300, "lang": "vie", "psm": 4, "user_patterns": tesseract.PATTERNS_FILE, "text_pdf": True}
    cli = tesseract.run(gray, engine_kind="cli", **kwargs)
    library = tesseract.run(gray, engine_kind="library", **kwargs)
    cli_words, library_words = parse_tsv(cli.tsv), parse_tsv(library.tsv)
    assert [(w.text, w.bbox, w.line) for w in library_words] == [(w.text, w.bbox, w.line) for w in cli_words]
    assert [w.conf for w in library_words] == pytest.approx([w.conf for w in cli_words], abs=5)
    assert "5898/UBND-KSTT" in library.tsv
    assert b"GlyphLessFont" in library.text_pdf


def test_the_engine_and_ocr_resolution_are_set_at_the_edge(tmp_path):
    from pipeline.runtime.config import settings_from_env
    from pipeline.runtime.errors import ConfigurationError

    assert settings_from_env({}, home=tmp_path).ocr.engine == "library"
    ocr = settings_from_env({"SOHOA_OCR_ENGINE": "cli", "SOHOA_OCR_DPI": "0"}, home=tmp_path).ocr
    assert (ocr.engine, ocr.ocr_dpi) == ("cli", 0)
    with pytest.raises(ConfigurationError, match="SOHOA_OCR_ENGINE"):
        settings_from_env({"SOHOA_OCR_ENGINE": "gpu"}, home=tmp_path)


def test_a_page_past_its_deadline_is_a_typed_timeout_and_the_engine_reads_on(page_and_ocr):
    from pipeline._exec import tesseract
    from pipeline.runtime.errors import OcrTimeoutError

    gray = np.asarray(page_and_ocr[0].convert("L"))
    with pytest.raises(OcrTimeoutError) as err:
        tesseract.run(gray, dpi=300, lang="vie", psm=4, timeout_s=0.001, page=3)
    assert err.value.page == 3
    again = tesseract.run(gray, dpi=300, lang="vie", psm=4, timeout_s=60)
    assert "5898/UBND-KSTT" in again.tsv


def test_a_later_page_is_read_at_the_ocr_resolution_with_boxes_in_page_pixels(page_and_ocr):
    im, words, text, _, _ = page_and_ocr  # page 1 (the header page): read at its own 300 dpi
    settings = OcrSettings()
    assert settings.ocr_dpi == 200 and settings.full_resolution_pages == 1
    full, full_text, _, _, _ = ocr_page(_page(im), OcrSettings(ocr_dpi=0), LimitSettings())
    assert [w.bbox for w in full] == [w.bbox for w in words] and full_text == text
    later, later_text, _, _, _ = ocr_page(_page(im, page=2), settings, LimitSettings())  # read at 200 dpi
    assert later_text == text
    for low, high in zip(later, words, strict=True):
        assert low.text == high.text
        assert all(abs(a - b) <= 4 for a, b in zip(low.bbox, high.bbox, strict=True)), (low, high)
    assert any(low.bbox != high.bbox for low, high in zip(later, words, strict=True)), "page 2 was read at another resolution"


def test_a_page_at_or_near_the_ocr_resolution_is_read_as_it_is():
    from pipeline.stages.ocr import ocr_input, scale_words

    image = np.zeros((100, 80), dtype=np.uint8)
    assert ocr_input(image, 210, 200)[0] is image
    small, dpi, factor = ocr_input(np.zeros((3000, 2400), dtype=np.uint8), 300, 200)
    assert small.shape == (2000, 1600) and dpi == 200 and factor == pytest.approx(2 / 3)
    word = Word(text="Số", conf=90.0, bbox=(100, 200, 160, 230), line=0)
    assert scale_words([word], 0.5, (1000, 1000))[0].bbox == (200, 400, 320, 460)


def test_page_text_keeps_one_line_per_ocr_line():
    tsv = (
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
        "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96\tSo\u0302\u0301\n"  # decomposed 'Số'
        "5\t1\t1\t1\t1\t2\t70\t10\t50\t20\t90\t1\n"
        "5\t1\t1\t1\t2\t1\t10\t40\t50\t20\t-1\t \n"
        "5\t1\t2\t1\t1\t1\t10\t80\t50\t20\t80\tKính\n"
    )
    words = parse_tsv(tsv)
    assert [w.text for w in words] == ["Số", "1", "Kính"]
    assert words_to_text(words) == "Số 1\n\nKính"
    assert mean_confidence(words) == pytest.approx((96 * 2 + 90 * 1 + 80 * 4) / 7)


def test_searchable_pdf_is_pdfa_2b_with_text_over_the_words(page_and_ocr):
    import pikepdf.pdfa as pdfa

    im, words, _, _, text_pdf = page_and_ocr
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    pages = [(buf.getvalue(), im.width, im.height, 300, text_pdf)]
    pdf = build_searchable_pdf(pages, title="t", producer="sohoa test", words=[words])
    assert pdfa.validate_written(io.BytesIO(pdf), "2b").passed
    text = pdf_text(pdf)
    assert "5898/UBND-KSTT" in text and "Chính phủ" in text
    # the layer is sohoa's words: a word the OCR stage dropped is not in it
    kept = [w for w in words if "5898" not in w.text]
    assert "5898/UBND-KSTT" not in pdf_text(build_searchable_pdf(pages, title="t", producer="t", words=[kept]))
    # Word boxes in the PDF (points) sit where OCR found the words (pixels at 300 dpi).
    proc = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True)
    boxes = re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)<', proc.stdout.decode())
    target = next(w for w in words if "5898" in w.text)
    x_pt, y_pt = target.bbox[0] * 72 / 300, target.bbox[1] * 72 / 300
    found = [(float(x), float(y)) for x, y, t in boxes if "5898" in t]
    assert found, "the number is in the text layer"
    assert abs(found[0][0] - x_pt) < 6 and abs(found[0][1] - y_pt) < 6


def test_a_grey_page_is_stored_as_a_grey_image_in_the_pdfa(page_and_ocr):
    import pikepdf
    import pikepdf.pdfa as pdfa

    im, words, _, _, text_pdf = page_and_ocr
    images = {}
    for mode in ("L", "RGB"):
        buf = io.BytesIO()
        im.convert(mode).save(buf, "JPEG", quality=80)
        images[mode] = buf.getvalue()
    pdf = build_searchable_pdf([(images["L"], im.width, im.height, 300, text_pdf), (images["RGB"], im.width, im.height, 300, text_pdf)],
                               title="t", producer="sohoa test", words=[words, words])  # fmt: skip
    assert pdfa.validate_written(io.BytesIO(pdf), "2b").passed
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        spaces = [next(iter(p.images.values())).ColorSpace for p in doc.pages]
    assert spaces == [pikepdf.Name.DeviceGray, pikepdf.Name.DeviceRGB]


# --- words that are not text, reading order of a Decree 30 page (issue #3) ------------------------

from pipeline.stages.layout import reading_order  # noqa: E402
from pipeline.stages.ocr import arrange_words, is_plausible_token, non_text_words  # noqa: E402


def tesseract_lines(rows: list[list[tuple[str, int, int]]], h: int = 45) -> list[Word]:
    """Words as ``--psm 4`` gives them: one Tesseract line per row, ``(text, x, y)`` each."""
    words = []
    for line, row in enumerate(rows):
        for text, x, y in row:
            words.append(Word(text=text, conf=95.0, bbox=(x, y, x + 28 * len(text), y + h), line=line, block=1))
    return words


def run(text: str, x: int, y: int) -> list[tuple[str, int, int]]:
    """The words of ``text`` set from ``x`` with one space (a word is 28 px a character)."""
    out = []
    for word in text.split():
        out.append((word, x, y))
        x += 28 * len(word) + 16
    return out


def test_reading_order_reads_header_columns_then_signature_before_recipients():
    rows = [
        [("ỦY", 560, 270), ("BAN", 660, 270), ("NHÂN", 780, 270), ("DÂN", 950, 270),
         ("CỘNG", 1250, 270), ("HÒA", 1420, 270), ("XÃ", 1550, 270), ("HỘI", 1640, 270)],
        [("TỈNH", 600, 330), ("LÂM", 750, 330), ("ĐỒNG", 880, 330), ("Độc", 1450, 340), ("lập", 1560, 340)],
        [("Số:", 600, 450), ("541/TTr-UBND", 690, 450), ("Lâm", 1360, 450), ("Đồng,", 1470, 450), ("ngày", 1630, 450)],
        [("TỜ", 1230, 600), ("TRÌNH", 1320, 600)],
        run("Thực hiện chỉ đạo của Chính phủ, Thủ tướng Chính phủ về cải cách thủ tục", 400, 830),
        [("hợp", 400, 2040), ("thực", 500, 2040), ("hiện./.", 620, 2040)],
        [("Nơi", 400, 2160), ("nhận:", 490, 2160), ("KT.", 1670, 2150), ("CHỦ", 1770, 2150), ("TỊCH", 1910, 2150)],
        [("-", 400, 2220), ("UBND", 430, 2220), ("các", 570, 2220), ("xã;", 640, 2220),
         ("PHÓ", 1650, 2218), ("CHỦ", 1790, 2218), ("TỊCH", 1920, 2218)],
        [("-", 400, 2275), ("Lưu:", 430, 2275), ("VT.", 540, 2275)],
        [("Phan", 1655, 2625), ("Hoàng", 1790, 2625), ("Nam", 1960, 2625)],
    ]
    text = words_to_text(reading_order(tesseract_lines(rows)))
    assert " ".join(text.split()) == (
        "ỦY BAN NHÂN DÂN TỈNH LÂM ĐỒNG CỘNG HÒA XÃ HỘI Độc lập Số: 541/TTr-UBND Lâm Đồng, ngày TỜ TRÌNH "
        "Thực hiện chỉ đạo của Chính phủ, Thủ tướng Chính phủ về cải cách thủ tục hợp thực hiện./. "
        "KT. CHỦ TỊCH PHÓ CHỦ TỊCH "
        "Phan Hoàng Nam Nơi nhận: - UBND các xã; - Lưu: VT."
    )
    ordered = reading_order(tesseract_lines(rows))
    assert [w.line for w in ordered] == sorted(w.line for w in ordered)  # lines renumbered in order


def test_reading_order_knows_the_labels_with_a_mark_a_capture_changed():
    # a fax reads "Nơi nhận" as "Nởi nhận": still the recipients list, read after the signature
    rows = [
        [("hợp", 400, 2040), ("thực", 500, 2040), ("hiện./.", 620, 2040)],
        [("Nởi", 400, 2160), ("nhận:", 490, 2160), ("KT.", 1670, 2150), ("CHỦ", 1770, 2150), ("TỊCH", 1910, 2150)],
        [("-", 400, 2220), ("UBND", 430, 2220), ("các", 570, 2220), ("xã;", 640, 2220),
         ("PHÓ", 1650, 2218), ("CHỦ", 1790, 2218), ("TỊCH", 1920, 2218)],
        [("-", 400, 2275), ("Lưu:", 430, 2275), ("VT.", 540, 2275)],
        [("Phan", 1655, 2625), ("Hoàng", 1790, 2625), ("Nam", 1960, 2625)],
    ]
    text = " ".join(words_to_text(reading_order(tesseract_lines(rows))).split())
    assert text == "hợp thực hiện./. KT. CHỦ TỊCH PHÓ CHỦ TỊCH Phan Hoàng Nam Nởi nhận: - UBND các xã; - Lưu: VT."


def test_reading_order_keeps_a_single_column_page_as_read():
    rows = [[("Thực", 400, 100 + 70 * i), ("hiện", 560, 100 + 70 * i), (f"dòng{i}", 700, 100 + 70 * i)] for i in range(6)]
    words = tesseract_lines(rows)
    assert words_to_text(reading_order(words)).split("\n") == words_to_text(words).split("\n")


@pytest.mark.parametrize("token", ["Thực", "hiện,", "UBND", "TTg", "PTTg", "VT,", "541/TTr-UBND", "45/2020/NĐ-CP", "-", "./.", "(để"])
def test_plausible_tokens(token):
    assert is_plausible_token(token)


@pytest.mark.parametrize("token", ["z/#", "Vv^*x", "_1—`'-", "phồnø", "niiỆm", "`", "⁄^x"])
def test_implausible_tokens(token):
    assert not is_plausible_token(token)


def test_low_confidence_garbage_is_dropped_but_not_low_confidence_words():
    words = tesseract_lines([run("Thủ tướng Chính phủ yêu cầu các bộ, cơ quan ngang bộ", 10, 100)]) + [
        Word(text="Bộ", conf=97, bbox=(10, 10, 60, 50), line=1), Word(text="Nội", conf=96, bbox=(70, 10, 130, 50), line=1),
        Word(text="vụ;", conf=95, bbox=(140, 10, 200, 50), line=1), Word(text="PTTg", conf=4, bbox=(210, 10, 300, 50), line=1),
        Word(text="Vv^*x", conf=20, bbox=(900, 10, 990, 60), line=1), Word(text="XE", conf=95, bbox=(1000, 10, 1050, 60), line=1),
    ]
    assert [w.text for w in non_text_words(words, 60.0)] == ["Vv^*x"]
    assert "Vv^*x" not in words_to_text(arrange_words(words, OcrSettings()))
    assert "Vv^*x" in words_to_text(arrange_words(words, OcrSettings(drop_non_text=False)))


def test_a_page_of_garbage_is_left_for_the_quality_gate():
    words = [Word(text=t, conf=20, bbox=(10 + 60 * i, 10, 60 + 60 * i, 50), line=0) for i, t in enumerate(["z/#", "Vv^", "ok", "là"])]
    assert non_text_words(words, 60.0) == []  # more than NON_TEXT_MAX_DROP: keep all, the gate judges


def test_words_in_signature_ink_are_dropped():
    """A word Tesseract reads into the blue signature scribble, with middling confidence."""
    gray = np.full((100, 400), 255, np.uint8)
    color = np.full((100, 400, 3), (236, 226, 196), np.uint8)
    gray[30:70, 20:120] = 40
    color[30:70, 20:120] = (40, 38, 33)  # black print on yellowed paper
    gray[30:70, 220:320] = 60
    color[30:70, 220:320] = (25, 35, 110)  # blue ink
    words = [Word(text="Trần Văn Sơn", conf=70, bbox=(20, 30, 120, 70), line=0), Word(text="lồ", conf=70, bbox=(220, 30, 320, 70), line=0)]
    assert [w.text for w in non_text_words(words, 60.0, gray, color)] == ["lồ"]
    assert non_text_words(words, 60.0) == []  # plausible syllables: only the ink tells
