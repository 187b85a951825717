"""What a source PDF carries (:mod:`pipeline.stages.pdfsource`): its text layer and its signatures.

Specifications, on PDFs made here (a born-digital page with a signing stamp, a scan-like page
whose only text is the stamp, an OCRed page with invisible text, a rotated page, signed and
tampered files) and on the real signed files in ``../shared/real-scans`` when present: the
born-digital notice yields its text with separate header columns, every scan yields no text
layer, and the first signature's time is the truth's (/M, +07:00 — not the gazette centre's
"UTC" signingTime, which is local time).
"""

from __future__ import annotations

import ctypes
import io
import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from pipeline.stages.pdfsource import EmbeddedSignature, read_signatures, stamp_regions, text_layer_words

REAL_SCANS = Path(__file__).resolve().parents[1].parent / "shared" / "real-scans"
REAL_PDFS = sorted(REAL_SCANS.glob("*.pdf")) if REAL_SCANS.is_dir() else []
needs_real = pytest.mark.skipif(not REAL_PDFS, reason=f"real scans not present in {REAL_SCANS}")
BORN_DIGITAL = "qn-565-tb-born-digital.pdf"

FONTS = [
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
    Path("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"),
]
VIETNAM = timezone(timedelta(hours=7))
DPI = 144  # 2 pixels per point: expected boxes are easy to compute

BODY = [
    "Thực hiện chỉ đạo của Ủy ban nhân dân tỉnh về việc triển khai",
    "các nhiệm vụ trọng tâm trong năm, các sở, ngành và địa phương",
    "khẩn trương rà soát, tổng hợp, báo cáo kết quả thực hiện trước",
    "ngày 30 tháng 11 năm 2024 để tổng hợp, báo cáo cấp trên theo quy định.",
    "Giao Trung tâm Công báo và Tin học đăng tải văn bản này.",
]
STAMP = ["TRUNG TÂM CÔNG BÁO", "VÀ TIN HỌC", "ttcbth@quangngai.gov.vn", "18.11.2024 07:25:14 +07:00"]


# --- PDFs made here ------------------------------------------------------------------------


def _font() -> Path:
    for f in FONTS:
        if f.is_file():
            return f
    pytest.skip("no TrueType font with Vietnamese glyphs installed")


def make_pdf(lines: list[tuple[str, float, float, float]], *, rotate: int = 0, mode: int = 0) -> bytes:
    """A one-page A4 PDF (PDFium writes it) drawing ``(text, x, baseline y, size)`` in points."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(595, 842)
    font_bytes = _font().read_bytes()
    buf = (ctypes.c_uint8 * len(font_bytes)).from_buffer_copy(font_bytes)
    font = raw.FPDFText_LoadFont(pdf, buf, len(font_bytes), raw.FPDF_FONT_TRUETYPE, True)
    for text, x, y, size in lines:
        obj = raw.FPDFPageObj_CreateTextObj(pdf, font, size)
        utf16 = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
        raw.FPDFText_SetText(obj, ctypes.cast(utf16, ctypes.POINTER(raw.FPDF_WCHAR)))
        if mode:
            raw.FPDFTextObj_SetTextRenderMode(obj, mode)
        raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, y)
        raw.FPDFPage_InsertObject(page, obj)
    raw.FPDFPage_GenerateContent(page)
    if rotate:
        page.set_rotation(rotate)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def notice_lines() -> list[tuple[str, float, float, float]]:
    """A Decree 30 first page: header table in two columns, number, body, a small stamp on top."""
    lines = [
        ("ỦY BAN NHÂN DÂN", 60, 760, 12),
        ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 250, 760, 12),
        ("TỈNH QUẢNG NGÃI", 62, 745, 12),
        ("Độc lập - Tự do - Hạnh phúc", 300, 745, 12),
        ("Số: 12/TB-UBND", 70, 715, 12),
        ("THÔNG BÁO", 250, 670, 13),
    ]
    lines += [(t, 60, 620 - 20 * i, 12) for i, t in enumerate(BODY)]
    lines += [("Nơi nhận:", 60, 300, 11), ("- Như trên;", 60, 285, 11)]
    lines += [(t, 430, 825 - 9 * i, 7) for i, t in enumerate(STAMP)]
    return lines


def render(data: bytes, dpi: int = DPI) -> np.ndarray:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    image = pdf[0].render(scale=dpi / 72).to_pil().convert("L")
    return np.asarray(image)


def ink_outside(gray: np.ndarray, boxes: list[tuple[int, int, int, int]], pad: int = 2) -> float:
    """Share of the dark pixels of the page that no box covers."""
    dark = gray < 128
    covered = np.zeros_like(dark)
    for x0, y0, x1, y1 in boxes:
        covered[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = True
    return float((dark & ~covered).sum()) / max(1, int(dark.sum()))


# --- text layer ----------------------------------------------------------------------------


def test_born_digital_page_gives_its_words_in_pixels_in_reading_order():
    data = make_pdf(notice_lines())
    layer = text_layer_words(data, 1, DPI)
    assert layer is not None
    assert (layer.width, layer.height) == (1190, 1684)
    texts = [w.text for w in layer.words]
    assert all(w.conf == 100.0 and w.block == 0 for w in layer.words)
    assert all(w.text == unicodedata.normalize("NFC", w.text) for w in layer.words)
    for line in BODY:
        assert line in layer.text
    # header columns: separate words, "DÂN" (left) and "CỘNG" (right) never merged, read left to right
    assert "DÂN" in texts and "CỘNG" in texts and not any("DÂN" in t and "CỘNG" in t for t in texts)
    dan, cong = layer.words[texts.index("DÂN")], layer.words[texts.index("CỘNG")]
    assert dan.bbox[2] < cong.bbox[0] and dan.line == cong.line
    assert texts.index("ỦY") < texts.index("CỘNG") < texts.index("TỈNH") < texts.index("Số:")
    assert [w.line for w in layer.words] == sorted(w.line for w in layer.words)
    # boxes: pixels at DPI, origin top-left — "ỦY" starts at x = 60 pt, its baseline at y = 842 - 760 pt
    uy = layer.words[0]
    assert uy.text == "ỦY" and abs(uy.bbox[0] - 120) <= 3 and abs(uy.bbox[3] - 164) <= 3
    # every inked pixel lies in a word box or a stamp box
    assert ink_outside(render(data), [w.bbox for w in layer.words] + layer.stamp_boxes) < 0.01


def test_stamp_text_is_left_out_and_boxed_but_body_mentions_stay():
    data = make_pdf(notice_lines())
    layer = text_layer_words(data, 1, DPI)
    assert layer is not None
    assert "ttcbth@quangngai.gov.vn" not in layer.text and "07:25:14" not in layer.text
    assert "VÀ TIN HỌC" not in layer.text.split("\n")[0]
    assert "Giao Trung tâm Công báo và Tin học đăng tải văn bản này." in layer.text  # body size: not a stamp
    # the stamp block (x ≥ 430 pt, top of the page) is covered by the stamp boxes
    assert layer.stamp_boxes and all(b[0] >= 2 * 430 - 4 and b[3] <= 2 * 60 for b in layer.stamp_boxes)
    assert len(layer.stamp_boxes) == len(STAMP)
    assert stamp_regions(data, 1, DPI) == layer.stamp_boxes


def test_rotated_page_boxes_follow_the_rendering():
    data = make_pdf(notice_lines(), rotate=90)
    layer = text_layer_words(data, 1, DPI)
    assert layer is not None
    assert (layer.width, layer.height) == (1684, 1190)
    gray = render(data)
    assert gray.shape == (layer.height, layer.width)
    assert ink_outside(gray, [w.bbox for w in layer.words] + layer.stamp_boxes) < 0.01


def test_scan_like_page_with_only_stamp_text_has_no_text_layer_but_stamps():
    stamp = [
        "Ký bởi: Ủy ban nhân dân tỉnh Quảng Ngãi",
        "Cơ quan: Tỉnh Quảng Ngãi",
        "Thời gian ký: 07.01.2025 10:09:57 +07:00",
    ]
    data = make_pdf([(t, 430, 825 - 9 * i, 7) for i, t in enumerate(stamp)])
    assert text_layer_words(data, 1, DPI) is None
    boxes = stamp_regions(data, 1, DPI)
    assert len(boxes) == 3 and all(b[0] >= 2 * 430 - 4 for b in boxes)


def test_invisible_ocr_text_is_not_a_text_layer():
    data = make_pdf(notice_lines(), mode=3)  # render mode 3: an OCRed scan's hidden layer
    assert text_layer_words(data, 1, DPI) is None


def test_unmapped_glyphs_are_not_a_text_layer():
    # enough letters, lines and height, but most glyphs map to private-use code points
    garbage = "Thực hiện " + "".join(chr(0xE000 + i) for i in range(40))
    data = make_pdf([(garbage, 60, 760 - 20 * i, 10) for i in range(30)])
    assert text_layer_words(data, 1, DPI) is None
    readable = make_pdf([(garbage[:10] + "chỉ đạo của tỉnh", 60, 760 - 20 * i, 10) for i in range(30)])
    assert text_layer_words(readable, 1, DPI) is not None


def test_a_few_words_are_not_a_text_layer():
    data = make_pdf([("BẢN SAO", 250, 800, 12), ("Trang 1", 280, 30, 10)])
    assert text_layer_words(data, 1, DPI) is None


def test_garbage_and_missing_pages_never_raise():
    assert text_layer_words(b"not a pdf at all", 1, DPI) is None
    assert stamp_regions(b"not a pdf at all", 1, DPI) == []
    assert read_signatures(b"not a pdf at all") == []
    assert read_signatures(b"%PDF-1.7\n%%EOF\n") == []
    data = make_pdf(notice_lines())
    assert text_layer_words(data, 2, DPI) is None and text_layer_words(data, 0, DPI) is None
    truncated = data[: len(data) // 2]  # whatever PDFium recovers of it: no exception
    text_layer_words(truncated, 1, DPI), stamp_regions(truncated, 1, DPI), read_signatures(truncated)


# --- signatures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer_material():
    """A self-signed certificate with a Vietnamese subject (CN, O, UID "MST:…") and its key."""
    from asn1crypto import keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tỉnh Quảng Ngãi"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Ủy ban nhân dân tỉnh Thử nghiệm"),
            x509.NameAttribute(NameOID.USER_ID, "MST:0123456789"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return asn1_x509.Certificate.load(der), keys.PrivateKeyInfo.load(key_der), cert.fingerprint(hashes.SHA256()).hex()


def sign(pdf: bytes, material, monkeypatch, *, utc_labelled_local: bool = False) -> bytes:
    """Sign ``pdf`` (adbe.pkcs7.detached, with a signingTime attribute) at local time +07:00.

    ``utc_labelled_local``: write the local wall-clock time into signingTime labelled UTC,
    as the provincial gazette centre's signer does.
    """
    import tzlocal
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert, key, _ = material
    monkeypatch.setattr(tzlocal, "get_localzone", lambda: VIETNAM)

    class Signer(signers.SimpleSigner):
        async def async_sign(self, data_digest, digest_algorithm, *args, signed_attr_settings=None, **kwargs):
            if utc_labelled_local and signed_attr_settings is not None and signed_attr_settings.signing_time:
                local = signed_attr_settings.signing_time.astimezone(VIETNAM).replace(tzinfo=UTC)
                signed_attr_settings = replace(signed_attr_settings, signing_time=local)
            return await super().async_sign(
                data_digest, digest_algorithm, *args, signed_attr_settings=signed_attr_settings, **kwargs
            )

    signer = Signer(signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore.from_certs([cert]))
    meta = signers.PdfSignatureMetadata(field_name="Signature1", reason="Ký số văn bản", location="Quảng Ngãi")
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer)
    return out.getvalue()


def test_unsigned_pdf_has_no_signatures():
    assert read_signatures(make_pdf(notice_lines())) == []


def test_signature_is_read_with_signer_time_and_integrity(signer_material, monkeypatch):
    before = datetime.now(UTC).replace(microsecond=0)
    signed = sign(make_pdf(notice_lines()), signer_material, monkeypatch)
    (sig,) = read_signatures(signed)
    assert isinstance(sig, EmbeddedSignature)
    assert sig.field_name == "Signature1"
    assert sig.signer_cn == "Ủy ban nhân dân tỉnh Thử nghiệm" and sig.signer_org == "Tỉnh Quảng Ngãi"
    assert sig.signer_ids == ["MST:0123456789"]
    assert sig.issuer_cn == sig.signer_cn  # self-signed
    assert sig.serial == "1234abcd" and sig.sha256 == signer_material[2]
    assert sig.time_source == "M" and sig.pdf_m and sig.pdf_m.endswith("+07'00'")
    assert sig.signing_time.utcoffset() == timedelta(hours=7)
    assert before <= sig.signing_time <= datetime.now(UTC) + timedelta(seconds=1)
    assert sig.cms_signing_time == sig.signing_time and sig.time_note is None
    assert sig.intact is True and sig.valid is True and sig.coverage == "entire_file"
    assert sig.reason == "Ký số văn bản" and sig.location == "Quảng Ngãi"
    record = json.loads(json.dumps(sig.to_json()))
    assert record["signing_time"] == sig.signing_time.isoformat() and record["signer_ids"] == ["MST:0123456789"]


def test_local_time_labelled_utc_is_noted_and_m_wins(signer_material, monkeypatch):
    signed = sign(make_pdf(notice_lines()), signer_material, monkeypatch, utc_labelled_local=True)
    (sig,) = read_signatures(signed)
    assert sig.signing_time.utcoffset() == timedelta(hours=7) and sig.time_source == "M"
    assert sig.cms_signing_time.utcoffset() == timedelta(0)
    assert sig.cms_signing_time - sig.signing_time == timedelta(hours=7)
    assert "+7 h" in sig.time_note and "local time labelled UTC" in sig.time_note
    assert sig.intact is True


def test_tampered_signed_file_is_reported_not_raised(signer_material, monkeypatch):
    signed = bytearray(sign(make_pdf(notice_lines()), signer_material, monkeypatch))
    at = signed.index(b"/MediaBox")
    signed[at + 1 : at + 9] = b"Mediabox"  # a byte inside the signed range
    (sig,) = read_signatures(bytes(signed))
    assert sig.intact is False
    assert sig.signer_cn == "Ủy ban nhân dân tỉnh Thử nghiệm" and sig.signing_time is not None


def test_when_validation_itself_fails_the_byte_range_digest_still_decides_integrity(signer_material, monkeypatch):
    """pyHanko's validation can raise on a certificate or algorithm it will not handle; the
    signature's integrity is then the comparison of the byte range's digest with the signed one."""
    import pyhanko.sign.validation as validation

    def refuse(*args, **kwargs):
        raise ValueError("validation refused")

    signed = sign(make_pdf(notice_lines()), signer_material, monkeypatch)
    tampered = bytearray(signed)
    at = tampered.index(b"/MediaBox")
    tampered[at + 1 : at + 9] = b"Mediabox"
    monkeypatch.setattr(validation, "validate_pdf_signature", refuse)
    (good,) = read_signatures(signed)
    (bad,) = read_signatures(bytes(tampered))
    assert good.intact is True and good.coverage == "entire_file"
    assert bad.intact is False


def test_damaged_signature_container_is_listed_with_its_error(signer_material, monkeypatch):
    signed = bytearray(sign(make_pdf(notice_lines()), signer_material, monkeypatch))
    at = signed.index(b"/Contents <") + len(b"/Contents <")
    signed[at : at + 64] = b"0" * 64  # the CMS container is no longer DER
    (sig,) = read_signatures(bytes(signed))
    assert sig.field_name == "Signature1" and sig.error
    assert sig.signing_time is not None and sig.signing_time.utcoffset() == timedelta(hours=7)  # from /M
    assert json.dumps(sig.to_json())


def test_signatures_are_checked_inside_a_running_event_loop(signer_material, monkeypatch):
    import asyncio

    signed = sign(make_pdf(notice_lines()), signer_material, monkeypatch)

    async def handler() -> list[EmbeddedSignature]:  # e.g. an async web endpoint
        return read_signatures(signed)

    (sig,) = asyncio.run(handler())
    assert sig.intact is True and sig.valid is True and sig.error is None


def test_revision_appended_after_signing_shows_in_coverage(signer_material, monkeypatch):
    from pyhanko.pdf_utils.generic import NameObject, TextStringObject
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    signed = sign(make_pdf(notice_lines()), signer_material, monkeypatch)
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root[NameObject("/Lang")] = TextStringObject("vi")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    (sig,) = read_signatures(out.getvalue())
    assert sig.intact is True and sig.coverage == "entire_revision"


# --- real signed files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((REAL_SCANS / "truth.json").read_text(encoding="utf-8"))


@needs_real
def test_born_digital_notice_text_layer():
    data = (REAL_SCANS / BORN_DIGITAL).read_bytes()
    layer = text_layer_words(data, 1, 300)
    assert layer is not None
    assert "Kết luận của Phó Chủ tịch UBND tỉnh Võ Phiên" in layer.text
    flat = " ".join(layer.text.split())
    assert "Quảng Ngãi, ngày 15 tháng 11 năm 2024" in flat  # "15" is drawn by a widget: its own word
    texts = [w.text for w in layer.words]
    assert "565" in texts and "15" in texts  # the number and day the e-office system signed in
    assert texts.index("Số:") < texts.index("565") < texts.index("/TB-UBND")
    for left, right in (("DÂN", "CỘNG"), ("NGÃI", "Độc")):
        a, b = layer.words[texts.index(left)], layer.words[texts.index(right)]
        assert a.bbox[2] < b.bbox[0]  # distinct words, left column before right column
    assert not any("DÂN" in t and "CỘNG" in t for t in texts)
    assert "ttcbth@quangngai.gov.vn" not in layer.text and "TRUNG TÂM CÔNG" not in layer.text
    assert layer.stamp_boxes  # the gazette centre's stamp, top right
    assert all(b[1] < 300 and b[0] > 1500 for b in layer.stamp_boxes)


@needs_real
@pytest.mark.parametrize("path", REAL_PDFS, ids=lambda p: p.name)
def test_real_file_text_layer_and_first_signature(path, truth):
    import pypdfium2 as pdfium

    data = path.read_bytes()
    entry = truth[path.name]
    pages = len(pdfium.PdfDocument(data))
    layers = [text_layer_words(data, p, 150) for p in range(1, pages + 1)]
    if entry["text_layer"] == "full":
        assert all(layer is not None for layer in layers)
    else:
        assert layers == [None] * pages  # the stamp is the only text: OCR the page
        assert stamp_regions(data, 1, 150)  # … and its boxes are known
    sigs = read_signatures(data)
    assert sigs and all(s.intact for s in sigs)
    assert sigs[0].signing_time.isoformat() == entry["sig_time"]
    assert all(json.dumps(s.to_json()) for s in sigs)


@needs_real
def test_gazette_centre_signing_time_is_local_time_labelled_utc():
    sigs = read_signatures((REAL_SCANS / BORN_DIGITAL).read_bytes())
    gazette = [s for s in sigs if s.signer_cn == "TRUNG TÂM CÔNG BÁO VÀ TIN HỌC"]
    assert gazette and gazette[0].signing_time.isoformat() == "2024-11-18T07:25:14+07:00"
    assert gazette[0].cms_signing_time.isoformat() == "2024-11-18T07:25:14+00:00"
    assert "local time labelled UTC" in gazette[0].time_note
    assert gazette[0].signer_ids and any(i.startswith("MST:") for i in gazette[0].signer_ids)
    assert gazette[0].coverage == "entire_file"


# --- the page task takes a born-digital page's text from its layer (pipeline.runtime.document) --------


def test_the_page_task_reads_a_born_digital_page_from_its_text_layer_and_says_so(tmp_path):
    from pipeline.runtime.config import Settings
    from pipeline.runtime.document import build_record, prepare_bytes, process_page_bytes
    from pipeline.stages.models import PageOutput, SourceRef

    data = make_pdf(notice_lines())
    settings = Settings(home=tmp_path)
    info = prepare_bytes(data, settings)
    out = process_page_bytes(data, info, 1, settings)
    assert isinstance(out, PageOutput)
    page = out.result
    assert page.text_source == "text_layer" and page.mean_confidence == 100.0
    assert page.text == text_layer_words(data, 1, page.dpi).text  # the layer's own characters, no OCR
    assert out.image_jpeg[:2] == b"\xff\xd8" and out.text_pdf.startswith(b"%PDF")  # stored and searchable
    ref = SourceRef(document_id="0" * 64, source_file="notice.pdf", size=len(data), original_key="originals/00/0")
    record = build_record(ref, [out], settings=settings, info=info).to_json()  # as stored
    assert record["pages"][0]["text_source"] == "text_layer"
    assert record["provenance"]["signatures"] == []
    assert all(ev["source"] == "text_layer" for ev in record["field_evidence"].values() if ev["method"] != "handwriting")
