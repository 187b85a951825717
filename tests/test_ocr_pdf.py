"""OCR keeps words with boxes and confidences in NFC; the searchable PDF is PDF/A-2b with the
invisible text laid over the words."""

import io
import re
import subprocess
import unicodedata

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.config import LimitSettings, OcrSettings
from pipeline.models import ProcessedPage
from pipeline.ocr import mean_confidence, ocr_page, parse_tsv, words_to_text
from pipeline.pdf import build_searchable_pdf, pdf_text

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
    pdf = build_searchable_pdf([(buf.getvalue(), im.width, im.height, 300, text_pdf)], title="t", producer="sohoa test")
    assert pdfa.validate_written(io.BytesIO(pdf), "2b").passed
    assert "5898/UBND-KSTT" in pdf_text(pdf)
    # Word boxes in the PDF (points) sit where OCR found the words (pixels at 300 dpi).
    proc = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True)
    boxes = re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)<', proc.stdout.decode())
    target = next(w for w in words if "5898" in w.text)
    x_pt, y_pt = target.bbox[0] * 72 / 300, target.bbox[1] * 72 / 300
    found = [(float(x), float(y)) for x, y, t in boxes if "5898" in t]
    assert found, "the number is in the text layer"
    assert abs(found[0][0] - x_pt) < 6 and abs(found[0][1] - y_pt) < 6
