"""Archives' standards (issue 23): metadata per Circular 02/2019/TT-BNV in every export format,
validated against the schema derived from the Circular, the scan image check, and the edXML
e-document exchange package (QCVN 102:2016) written, read back and digitized."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.records import archive, edxml
from pipeline.runtime.document import base_record
from pipeline.stages.models import PageResult, SourceRef
from pipeline.stages.validate import validate_record

ROOT = Path(__file__).resolve().parent.parent
AGENCY = "000.00.01.H53"


def _page(n: int, *, dpi: int = 300, flags=(), source: str = "ocr") -> PageResult:
    return PageResult(page=n, width=2480, height=3508, dpi=dpi, text="Quyết định về việc ban hành",
                      mean_confidence=91.0, image_sha256=hashlib.sha256(f"p{n}".encode()).hexdigest(),
                      quality_flags=list(flags), text_source=source)


def _record(spec, *, dossier=None, pages=None, status="ok", record_type="admin_document") -> dict:
    doc_id = hashlib.sha256(spec.number.encode()).hexdigest()
    ref = SourceRef(document_id=doc_id, source_file=f"{spec.number.replace('/', '-')}.pdf", size=1000,
                    original_key=f"originals/{doc_id[:2]}/{doc_id}", dossier=dossier)
    pages = pages or [_page(1), _page(2)]
    record = base_record(ref, len(pages), pages, status=status, record_type=record_type)
    if record_type == "admin_document":
        record.fields = {k: getattr(spec, k) for k in edxml.PACKAGE_FIELDS} | {"recipients": list(spec.recipients)}
    else:
        record.fields = {"business_code": "0388025909", "business_name": "Hộ kinh doanh Minh Anh",
                         "issuer": spec.issuer, "date": spec.date}
    assert validate_record(record) == []
    return record.to_json()  # as the archive reads it: the stored JSON form


@pytest.fixture(scope="module")
def generated():
    from samples.specs import synthetic_specs

    specs = synthetic_specs(6, seed=23)
    records = [
        _record(specs[0], dossier="G01.2024.01"),
        _record(specs[1], dossier="G01.2024.01", pages=[_page(1, dpi=200, flags=["resampled:150->200"])]),
        _record(specs[2], dossier="G01.2024.02", pages=[_page(1, source="text_layer")]),
        _record(specs[3], status="needs_review"),
        _record(specs[4], record_type="household_business_registration"),
        _record(specs[5], dossier="G01.2024.02", pages=[_page(1, source="text_layer"), _page(2)]),
    ]
    return specs, records


def test_the_committed_schema_is_derived_from_the_circulars_field_tables():
    committed = json.loads(archive.SCHEMA_PATH.read_text(encoding="utf-8"))
    assert committed == archive.archive_json_schema(), "stale: run archive.write_schema()"
    table = archive.field_table()
    for f in archive.DOCUMENT_FIELDS + archive.DOSSIER_FIELDS:
        assert f.label in table and f.source
    steward = {f.key for f in archive.DOCUMENT_FIELDS if f.source == "steward"}
    assert steward == {"ky_hieu_thong_tin", "tu_khoa", "che_do_su_dung", "but_tich", "tinh_trang_vat_ly"}


def _export(records, **kw):
    dossiers, documents = archive.archive_rows(records, agency_code=AGENCY, **kw)
    return archive.export_document(dossiers, documents, agency_code=AGENCY)


def _comparable(export: dict) -> dict:
    """What every format carries in full: the Circular's fields and the steward marks."""
    keep = lambda row, fields: {f.key: row[f.key] for f in fields} | {"steward": sorted(row["steward_fields"])}  # noqa: E731
    return {"dossiers": [keep(r, archive.DOSSIER_FIELDS) for r in export["dossiers"]],
            "documents": [keep(r, archive.DOCUMENT_FIELDS) for r in export["documents"]]}


def test_every_archive_format_of_generated_records_validates_against_the_schema(generated):
    specs, records = generated
    export = _export(records)
    assert archive.validate_export(export) == []
    by_id = {d["document_id"]: d for d in export["documents"]}
    first = by_id[records[0]["document_id"]]
    assert first["ma_dinh_danh"] == f"{AGENCY}.{records[0]['document_id'][:16].upper()}"
    assert first["tep_tin"] == first["ma_dinh_danh"] + ".pdf"
    assert (first["so_van_ban"] + "/" + first["ky_hieu_van_ban"]) == specs[0].number
    assert first["ngay_van_ban"] == specs[0].date and first["co_quan_ban_hanh"] == specs[0].issuer
    assert first["trich_yeu"] == specs[0].subject and first["so_luong_trang"] == 2
    assert first["muc_do_tin_cay"] == "Số hóa" and first["ngon_ngu"] == "Tiếng Việt"
    assert {"ky_hieu_thong_tin", "tu_khoa", "but_tich"} <= set(first["steward_fields"])
    assert first["ky_hieu_thong_tin"] is None
    assert by_id[records[2]["document_id"]]["muc_do_tin_cay"] == "Gốc điện tử"
    assert by_id[records[5]["document_id"]]["muc_do_tin_cay"] == "Hỗn hợp"
    assert "needs_review" in by_id[records[3]["document_id"]]["ghi_chu"]
    assert by_id[records[3]["document_id"]]["so_thu_tu"] is None  # no dossier: for the steward
    hkd = by_id[records[4]["document_id"]]
    assert hkd["ten_loai_van_ban"] == "Giấy chứng nhận đăng ký hộ kinh doanh" and hkd["so_van_ban"] == "0388025909"
    # the 150 dpi scan falls short, and says so
    low = by_id[records[1]["document_id"]]
    assert not low["image_check"]["meets_requirements"] and "150 dpi" in low["ghi_chu"]
    # dossiers: one row each, with the dossier-level fields
    dossiers = {d["ma_ho_so"]: d for d in export["dossiers"]}
    assert set(dossiers) == {"G01.2024.01", "G01.2024.02"}
    one = dossiers["G01.2024.01"]
    assert one["tong_so_van_ban"] == 2 and one["so_luong_trang"] == 3
    assert one["thoi_gian_bat_dau"] == min(specs[0].date, specs[1].date)
    assert one["thoi_gian_ket_thuc"] == max(specs[0].date, specs[1].date)
    assert one["tieu_de_ho_so"] is None and "tieu_de_ho_so" in one["steward_fields"]
    ranks = sorted(d["so_thu_tu"] for d in export["documents"] if d["ma_ho_so"] == "G01.2024.01")
    assert ranks == [1, 2]

    json_back = json.loads(archive.FORMATS["archive-json"][1](export))
    xml_back = archive.read_xml(archive.write_xml(export))
    csv_back = archive.read_csv(archive.write_csv(export))
    xlsx_back = archive.read_xlsx(archive.write_xlsx(export))
    for name, back in (("json", json_back), ("xml", xml_back), ("csv", csv_back), ("xlsx", xlsx_back)):
        assert archive.validate_export(back) == [], name
        assert _comparable(back) == _comparable(export), name
    assert xml_back["documents"][0]["image_check"] == export["documents"][0]["image_check"]
    # a row that breaks the Circular's limits fails the schema
    broken = json.loads(json.dumps(export))
    broken["documents"][0]["so_van_ban"] = "1" * 12
    broken["documents"][1]["ngay_van_ban"] = "27/10/2023"
    assert len(archive.validate_export(broken)) == 2


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def test_the_image_check_tells_resolution_and_colour_mode(generated):
    _, records = generated
    rng = np.random.default_rng(0)
    bitonal = np.full((400, 300), 255, np.uint8)  # a page of black 'text lines' on white
    for y in range(40, 360, 24):
        bitonal[y:y + 8, 30:270] = 0
    grey = rng.integers(60, 200, (400, 300), dtype=np.uint8)
    colour = np.stack([grey, grey // 2, np.full_like(grey, 30)], axis=2)
    assert archive.colour_mode_of_jpeg(_jpeg(bitonal)) == "bitonal"
    assert archive.colour_mode_of_jpeg(_jpeg(grey)) == "grey"
    assert archive.colour_mode_of_jpeg(_jpeg(colour)) == "colour"
    assert archive.colour_mode_of_jpeg(_jpeg(np.stack([grey] * 3, axis=2))) == "grey"  # RGB-coded grey

    record = records[0]
    check = archive.check_images(record, [_jpeg(grey), _jpeg(colour)])
    assert check["meets_requirements"] and [p["colour_mode"] for p in check["pages"]] == ["grey", "colour"]
    strict = archive.check_images(record, [_jpeg(grey), _jpeg(colour)], strict_colour=True)
    assert not strict["meets_requirements"] and "chế độ màu grey" in strict["problems"][0]
    assert archive.check_images(records[1])["pages"][0]["dpi"] == 150  # the scan's own, not the resampled
    issue = archive.image_check_issue(records[1])
    assert issue["kind"] == "quality" and "150 dpi" in issue["message"]
    assert archive.image_check_issue(record) is None


def test_an_edxml_package_round_trips_the_fields_and_fills_a_record(generated):
    specs, records = generated
    record = records[0]
    pdf = b"%PDF-1.7\n% a searchable PDF/A\n"
    package = edxml.write_package(record, pdf, sender=edxml.Agency(AGENCY, "Văn phòng UBND"),
                                  recipients=[edxml.Agency("000.00.02.H53", "Sở Nội vụ")],
                                  record_bytes=json.dumps(record).encode(), pdf_name="a.pdf")
    assert edxml.is_package(package) and not edxml.is_package(pdf)
    read = edxml.read_package(package)
    assert read.fields == {k: v for k, v in record["fields"].items() if k in edxml.PACKAGE_FIELDS and v}
    assert read.fields["issuer"] == specs[0].issuer  # From/OrganName: the record's issuer when no --agency-name
    assert read.sender.code == AGENCY and [a.code for a in read.recipients] == ["000.00.02.H53"]
    assert read.document().data == pdf and read.document().name == "a.pdf"
    assert json.loads(read.attachments[1].data)["document_id"] == record["document_id"]
    assert read.document_id.startswith(f"{AGENCY},{specs[0].date.replace('-', '/')},")
    assert all(e["source"] == "package" for e in read.field_evidence.values())

    # the metadata fills a record read from the attachment, overriding what OCR got wrong
    ocr = json.loads(json.dumps(record))
    ocr["fields"]["number"] = None
    ocr["fields"]["subject"] = "Về việc bị đọc sai"
    ocr["review_reasons"] = [{"field": "number", "kind": "missing", "message": "no number"}]
    ocr["status"] = "needs_review"
    filled = edxml.apply_package(ocr, read)  # the stored record, loaded into the model
    assert {k: filled.fields[k] for k in read.fields} == read.fields
    assert filled.field_evidence["number"].source == "package" and filled.status == "ok"
    assert filled.version == 2 and filled.history[-1].by == f"edxml:{AGENCY}"
    assert set(filled.history[-1].changed_fields) == {"number", "subject"}

    # gateways zip the attachment and write dd/mm/yyyy: read both; a bad agency code is refused
    import base64
    import zipfile

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("x.pdf", pdf)
    text = package.decode()
    text = text.replace(base64.b64encode(pdf).decode(), base64.b64encode(zipped.getvalue()).decode())
    y, m, d = specs[0].date.split("-")
    text = text.replace(f"<edXML:PromulgationDate>{specs[0].date}", f"<edXML:PromulgationDate>{d}/{m}/{y}")
    again = edxml.read_package(text.encode())
    assert again.document().data == pdf and again.fields["date"] == specs[0].date
    with pytest.raises(edxml.PackageError):
        edxml.Agency("H53")
    with pytest.raises(edxml.PackageError):
        edxml.write_package(records[4], pdf, sender=edxml.Agency(AGENCY))


# --- on the bundled samples, through a real digitize ----------------------------------------------

SAMPLES = ("cong-van-2632-skhdt-vp.jpg", "ho-kinh-doanh-0388025909.pdf")


@pytest.mark.slow
def test_samples_digitize_export_every_format_and_read_the_package_back(
        s3_server, warehouse_settings, signer_service, tmp_path, capsys, monkeypatch):
    from pipeline.cli import main as sohoa
    from pipeline.warehouse.layout import Warehouse

    s = warehouse_settings
    url = f"http://{s.access_key}:{s.secret_key}@{s.endpoint}/{s.bucket}"
    monkeypatch.setenv("SOHOA_SIGNER_USER", signer_service.settings.username)
    monkeypatch.setenv("SOHOA_SIGNER_PASSWORD", signer_service.settings.password)
    monkeypatch.setenv("SOHOA_SIGNER_PIN", signer_service.settings.pin)
    common = ["--home", str(tmp_path), "--warehouse", url, "--signer", signer_service.url]
    scans = [str(ROOT / "samples" / "scans" / name) for name in SAMPLES]
    assert sohoa(["digitize", *scans, *common, "--inline", "--no-progress"]) == 0
    capsys.readouterr()
    wh = Warehouse(s)
    records = {r["source_file"]: r for r in wh.iter_records()}
    assert set(records) == set(SAMPLES)

    # each archive format: the metadata file validates, the PDF/A files are named by identifier
    exports = {}
    for fmt in ("archive-json", "archive-xml", "archive-csv", "archive-xlsx"):
        out = tmp_path / fmt
        assert sohoa(["export", *common, "--format", fmt, "--agency", AGENCY, "-o", str(out)]) == 0
        name = archive.FORMATS[fmt][0]
        data = (out / name).read_bytes()
        back = {"archive-json": json.loads, "archive-xml": archive.read_xml, "archive-csv": archive.read_csv,
                "archive-xlsx": archive.read_xlsx}[fmt](data)
        assert archive.validate_export(back) == [], fmt
        exports[fmt] = _comparable(back)
        files = sorted(p.name for p in (out / "pdf").iterdir())
        assert files == sorted(d["tep_tin"] for d in back["documents"])
        assert all((out / "pdf" / f).read_bytes().startswith(b"%PDF") for f in files)
    assert all(e == exports["archive-json"] for e in exports.values())
    letter = records["cong-van-2632-skhdt-vp.jpg"]
    row = next(d for d in exports["archive-json"]["documents"] if d["ma_dinh_danh"].endswith(letter["document_id"][:16].upper()))
    assert row["so_van_ban"] + "/" + row["ky_hieu_van_ban"] == letter["fields"]["number"]
    assert row["ngay_van_ban"] == letter["fields"]["date"] and row["so_luong_trang"] == letter["page_count"]
    truth = json.loads((ROOT / "samples" / "truth" / "cong-van-2632-skhdt-vp.json").read_text(encoding="utf-8"))
    assert row["so_van_ban"] + "/" + row["ky_hieu_van_ban"] == truth["fields"]["number"]

    # edXML: one package per văn bản (the household business certificate is not one), fields read back
    out = tmp_path / "edxml"
    assert sohoa(["export", *common, "--format", "edxml", "--agency", AGENCY, "--to", "000.00.02.H53:Sở Nội vụ",
                  "-o", str(out)]) == 0
    packages = sorted(out.glob("*.edxml"))
    assert len(packages) == 1
    read = edxml.read_package(packages[0].read_bytes())
    assert read.fields == {k: v for k, v in letter["fields"].items() if k in edxml.PACKAGE_FIELDS and v}
    assert read.document().data == wh.get_pdf(letter["document_id"])
    assert json.loads(read.attachments[1].data)["signature"]

    # read as input: the attachment is digitized and the package's metadata fills its record
    text = packages[0].read_bytes().replace(letter["fields"]["subject"].encode(), "Trích yếu theo gói tin".encode())
    incoming = tmp_path / "incoming.edxml"
    incoming.write_bytes(text)
    assert sohoa(["digitize", str(incoming), *common, "--inline", "--no-progress"]) == 0
    capsys.readouterr()
    doc_id = hashlib.sha256(read.document().data).hexdigest()
    record = wh.get_record(doc_id)
    assert record["fields"]["subject"] == "Trích yếu theo gói tin"
    assert record["field_evidence"]["subject"]["source"] == "package"
    assert {k: record["fields"][k] for k in read.fields if k != "subject"} == {k: v for k, v in read.fields.items() if k != "subject"}
    assert record["signature"] and record["history"][-1]["by"] == f"edxml:{AGENCY}"
    from pipeline.signing.verify import verify_record_bytes

    assert verify_record_bytes(wh.get_record_bytes(doc_id), [signer_service.settings.trust_anchor.read_bytes()]).ok


def test_an_archive_xml_document_without_its_image_check_is_refused_by_name():
    ns = archive.XML_NS
    missing = f'<X xmlns="{ns}"><VanBan documentId="doc-1"/></X>'.encode()
    with pytest.raises(ValueError, match="doc-1 without KiemTraAnh"):
        archive.read_xml(missing)
    no_dpi = (f'<X xmlns="{ns}"><VanBan documentId="doc-2"><KiemTraAnh dat="true" doPhanGiaiToiThieu="200">'
              f'<Trang so="1"/></KiemTraAnh></VanBan></X>').encode()
    with pytest.raises(ValueError, match="without 'dpi'"):
        archive.read_xml(no_dpi)
