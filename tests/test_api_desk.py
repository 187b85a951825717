"""What the review desk, the reception page and the dashboard need from the API, on a real S3
server and the real signer: every field of the type with Vietnamese labels and issues in words;
dates typed dd/mm/yyyy stored ISO, a day that does not exist refused in Vietnamese before
signing; ``ok`` only with the required fields; the crop of a field's evidence; the history with
changes and signature states; search of any record; a unit's dossiers; unit names, a grand
total, date range and trend on the dashboard; batches attributed to a unit; Vietnamese errors."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

from fastapi.testclient import TestClient
from PIL import Image

from pipeline.service.api.app import create_app
from test_api import (  # noqa: F401 - env, client, executor are fixtures
    DOSSIER_A,
    UNIT_A,
    UNIT_B,
    PendingExecutor,
    admin_lines,
    client,
    env,
    executor,
    make_record,
    mild_record,
    png_page,
    upload,
    worst_record,
)


class CountingSigner:
    def __init__(self, signer):
        self.signer, self.calls = signer, 0

    def sign_record_bytes(self, record):
        self.calls += 1
        return self.signer.sign_record_bytes(record)


def handwritten(env, unit=UNIT_A):
    """A record the pipeline stored with an empty handwritten number (its slot's box as evidence)."""
    return make_record(
        env.warehouse, env.signer, unit=unit, dossier=DOSSIER_A,
        lines=admin_lines("      /TB-UBND", "ngày 19 tháng 3 năm 2024", uuid.uuid4().hex[:8]),
        fields={"number": None, "date": "2024-03-18", "issuer": "Ủy ban nhân dân huyện Đông Anh", "doc_type": "Thông báo",
                "subject": "lịch tiếp công dân", "place": "Đông Anh"},
        confidence={"date": 0.5, "issuer": 0.97},
        reasons=[{"field": "number", "kind": "missing", "message": "number was not found on the page"},
                 {"field": "date", "kind": "low_confidence", "message": "date read with confidence 0.50 < 0.60"}],
        evidence={"number": {"line": "number", "method": "handwriting"}},
    )


def test_the_record_view_names_every_field_and_says_issues_in_vietnamese(client, env):
    doc = handwritten(env)["document_id"]
    body = client.get(f"/api/v1/documents/{doc}", headers=env.headers("steward")).json()
    specs = {s["name"]: s for s in body["field_specs"]}
    assert list(specs)[:3] == ["number", "doc_type", "issuer"] and "recipients" in specs and "tasks" in specs
    assert specs["date"] == {"name": "date", "label": "Ngày ban hành", "kind": "date", "required": True}
    assert specs["recipients"]["kind"] == "list" and specs["references"]["kind"] == "objects"
    assert body["status_label"] == "Chờ hiệu đính" and body["record_type_label"] == "Văn bản hành chính"
    words = {i["field"]: i["message_vi"] for i in body["issues"]}
    assert words["date"] == "Ngày ban hành: đọc với độ tin cậy 50 %, dưới ngưỡng 60 % — cần kiểm tra"
    assert "viết tay" in words["number"] and body["required_missing"] == ["number"]


def test_a_date_typed_dd_mm_yyyy_is_stored_iso_and_a_false_day_is_refused_before_signing(env):
    doc = handwritten(env)["document_id"]
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    spy = CountingSigner(app.state.service.signer())
    app.state.service.signer = lambda: spy
    with TestClient(app) as c:
        bad = c.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                     json={"fields": {"date": "30/02/2024"}, "reason": "sửa ngày"})
        assert bad.status_code == 422 and bad.json()["detail"] == "Ngày ban hành (date): ngày 30/02/2024 không có thật"
        assert spy.calls == 0 and len(env.warehouse.record_versions(doc)) == 1
        ok = c.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                    json={"fields": {"date": "19/03/2024", "number": "46/TB-UBND"}, "reason": "theo bản quét", "expected_version": 1})
        assert ok.status_code == 200, ok.text
        assert ok.json()["fields"]["date"] == "2024-03-19" and ok.json()["status"] == "ok"
    assert env.warehouse.get_record(doc)["fields"]["date"] == "2024-03-19"


def test_accepting_an_empty_required_field_does_not_make_the_record_ok(client, env):
    doc = handwritten(env)["document_id"]
    resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                       json={"fields": {}, "accepted": ["number", "date"], "reason": "chấp nhận"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "needs_review" and body["required_missing"] == ["number"]
    assert [i["message_vi"] for i in body["issues"]] == ["Số, ký hiệu: Số, ký hiệu còn trống: trường bắt buộc, cần nhập"]
    assert env.warehouse.record_status(doc) == "needs_review"


def test_the_crop_of_a_handwritten_slot(client, env):
    record = handwritten(env)
    doc = record["document_id"]
    resp = client.get(f"/api/v1/documents/{doc}/fields/number/crop.jpg", headers=env.headers("steward"))
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    crop = Image.open(io.BytesIO(resp.content))
    x0, y0, x1, y1 = record["field_evidence"]["number"]["boxes"][0]
    assert x1 - x0 < crop.width < 1000 and y1 - y0 < crop.height < 300  # the slot with a margin, not the page
    assert client.get(f"/api/v1/documents/{doc}/fields/signer/crop.jpg", headers=env.headers("steward")).status_code == 404
    assert client.get(f"/api/v1/documents/{doc}/fields/number/crop.jpg", headers=env.headers("unit_b")).status_code == 404
    assert client.get(f"/api/v1/documents/{doc}/fields/number/crop.jpg", headers=env.headers("unit_a")).status_code == 200


def test_history_says_who_when_why_what_changed_and_the_signature_state(client, env):
    doc = worst_record(env.warehouse, env.signer, number=f"{uuid.uuid4().hex[:4]}/UBND-VP")["document_id"]
    client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                json={"fields": {"date": "28/02/2023"}, "reason": "Sửa ngày theo bản gốc"})
    versions = client.get(f"/api/v1/documents/{doc}/history", headers=env.headers("steward")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["reason"] == "Sửa ngày theo bản gốc" and versions[1]["by"].startswith("steward:")
    assert versions[1]["by_label"].startswith("cán bộ hiệu đính (steward) · SO-TTTT (khóa ")
    assert versions[1]["changes"] == [{"field": "date", "label": "Ngày ban hành", "before": "2023-02-30", "after": "2023-02-28"}]
    assert all(v["signature"]["valid"] is True for v in versions)
    assert client.get(f"/api/v1/documents/{doc}/history", headers=env.headers("reader")).status_code == 403


def test_search_finds_any_record_by_number_dossier_issuer_or_date(client, env):
    number = f"{uuid.uuid4().int % 9000 + 1000}/QĐ-UBND"
    record = make_record(env.warehouse, env.signer, unit=UNIT_B, dossier="000.00.02.H53-231105-0003",
                         fields={"number": number, "date": "2023-11-05", "issuer": "Ủy ban nhân dân xã Tiên Dương",
                                 "doc_type": "Quyết định", "subject": "khen thưởng"},
                         confidence={"number": 0.99})
    doc = record["document_id"]
    assert record["status"] == "ok"
    from pipeline.warehouse.audit import write_receipt  # as an upload into that dossier writes it

    write_receipt(env.warehouse, UNIT_B, "000.00.02.H53-231105-0003",
                  {"document_id": doc, "source_file": record["source_file"], "size": 1, "pages": 1,
                   "media_type": "image/png", "received_at": "2023-11-05T08:00:00+00:00", "key_id": "x"})
    for q in (number.lower(), "000.00.02.H53-231105-0003", "uy ban nhan dan xa tien duong", "05/11/2023"):
        hits = client.get("/api/v1/review/search", params={"q": q}, headers=env.headers("steward")).json()["documents"]
        assert doc in [h["document_id"] for h in hits], q
    hit = next(h for h in hits if h["document_id"] == doc)
    assert hit["status"] == "ok" and hit["status_label"] == "Hợp lệ, đã ký số"
    assert client.get("/api/v1/review/search", params={"q": number}, headers=env.headers("unit_b")).status_code == 403


def test_a_unit_lists_its_own_dossiers(client, env):
    code = f"{UNIT_B}-240501-{uuid.uuid4().int % 9000 + 1000}"
    resp = upload(client, env, [("a.png", png_page(f"Hồ sơ {code}"))], who="unit_b", dossier=code)
    assert resp.status_code == 202, resp.text
    mine = client.get("/api/v1/dossiers", headers=env.headers("unit_b")).json()
    assert mine["unit"] == UNIT_B and code in [d["dossier_code"] for d in mine["dossiers"]]
    entry = next(d for d in mine["dossiers"] if d["dossier_code"] == code)
    assert entry["documents"] == 1 and entry["statuses"] == {"processing": 1} and entry["status_labels"] == {"processing": "Đang xử lý"}
    theirs = client.get("/api/v1/dossiers", params={"unit": UNIT_B}, headers=env.headers("unit_a")).json()
    assert code not in [d["dossier_code"] for d in theirs["dossiers"]]  # a unit key sees its own unit only


def test_errors_are_vietnamese_and_a_browser_link_leads_to_the_page(client, env):
    resp = client.get(f"/api/v1/dossiers/{DOSSIER_A}")
    assert resp.status_code == 401 and resp.json()["detail"].startswith("thiếu khóa API")
    page = client.get(f"/api/v1/dossiers/{DOSSIER_A}", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == f"/upload?dossier={DOSSIER_A}"
    role = client.get("/api/v1/review/queue", headers=env.headers("unit_a"))
    assert role.status_code == 403 and "vai trò" in role.json()["detail"]
    bad = client.get("/api/v1/review/queue", params={"limit": "x"}, headers=env.headers("steward"))
    assert bad.status_code == 422 and bad.json()["detail"].startswith("dữ liệu gửi lên không hợp lệ")
    assert client.get("/khong-co", headers=env.headers("steward")).json()["detail"] == "không có trang hoặc địa chỉ này"


def test_dashboard_names_units_totals_filters_and_trend(client, env):
    mild_record(env.warehouse, env.signer, unit=UNIT_A)
    assert client.put(f"/api/v1/units/{UNIT_A}", json={"name": "UBND xã Tiên Dương"}, headers=env.headers("admin")).status_code == 200
    assert client.put(f"/api/v1/units/{UNIT_A}", json={"name": "x"}, headers=env.headers("steward")).status_code == 403
    data = client.get("/api/v1/dashboard", headers=env.headers("admin")).json()
    assert {"unit": UNIT_A, "name": "UBND xã Tiên Dương"} in data["units"]
    assert all(r["unit_name"] == "UBND xã Tiên Dương" for r in data["rows"] if r["unit"] == UNIT_A)
    grand = data["grand_total"]
    assert grand["received"] == sum(r["received"] for r in data["rows"]) > 0 and grand["unit_name"] == "Tổng cộng"
    this_month = date.today().strftime("%Y-%m")
    assert data["trend"][-1]["month"] == this_month and sum(m["received"] for m in data["trend"]) == grand["received"]
    assert [m["month"] for m in data["trend"]] == sorted(m["month"] for m in data["trend"])
    only_a = client.get("/api/v1/dashboard", params={"unit": UNIT_A}, headers=env.headers("admin")).json()
    assert {r["unit"] for r in only_a["rows"]} == {UNIT_A} and only_a["grand_total"]["received"] < grand["received"]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    future = client.get("/api/v1/dashboard", params={"from": tomorrow}, headers=env.headers("admin")).json()
    assert future["rows"] == [] and future["grand_total"]["received"] == 0


def test_a_batch_run_counts_under_the_unit_it_names(env, tmp_path):
    from pipeline.runtime.executor import InlineExecutor
    from pipeline.runtime.inputs import InputFile
    from pipeline.runtime.orchestrate import BatchRunner
    from pipeline.service.dashboard import collect

    scan = tmp_path / "cong-van.png"
    scan.write_bytes(png_page(f"Công văn số {uuid.uuid4().hex[:6]}"))
    summary = BatchRunner(env.settings, InlineExecutor(), env.warehouse, unit="000.00.07.H53").run([InputFile(scan, True)])
    outcome = summary.outcomes[0]
    assert outcome.status in ("ok", "needs_review"), outcome
    assert env.warehouse.get_record(outcome.document_id)["provenance"]["unit"] == "000.00.07.H53"
    received, _ = collect(env.warehouse)
    assert [r.unit for r in received if r.document_id == outcome.document_id] == ["000.00.07.H53"]


def test_cli_refuses_a_bad_unit_code():
    from pipeline.cli import main

    assert main(["digitize", "--unit", "../x", "/nonexistent"]) == 1


def test_the_extractors_reasons_are_said_in_vietnamese_with_value_and_threshold():
    from pipeline.service.review import explain

    said = {m: explain({"field": f, "kind": k, "message": m}) for f, k, m in [
        ("signer", "low_confidence", "signer read with confidence 0.71 < 0.85"),
        ("number", "missing", "only the symbol '/TB-UBND' of the number was read: digits written by hand "
                              "(the digit recogniser reads '46' with confidence 0.52, not enough to trust)"),
        ("date", "invalid", "'2023-02-30' is not a 'date'"),
        ("issuer", "invalid", "'Hà Nộii' after 'tỉnh' is no province: a word was lost or misread"),
        ("place", "missing", "place was not found on the page"),
    ]}
    assert list(said.values()) == [
        "Người ký: đọc với độ tin cậy 71 %, dưới ngưỡng 85 % — cần kiểm tra",
        "Số, ký hiệu: chỉ đọc được ký hiệu '/TB-UBND', chưa có phần số — nhập theo vùng ảnh (máy đoán '46', độ tin cậy 52 %)",
        "Ngày ban hành: giá trị '2023-02-30' không phải ngày hợp lệ (ngày/tháng/năm)",
        "Cơ quan ban hành: tên sau 'tỉnh' không phải tỉnh nào — có chữ bị mất hoặc đọc sai",
        "Địa danh: không tìm thấy trên trang — cần nhập",
    ]
