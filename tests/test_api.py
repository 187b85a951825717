"""The HTTP service on a real S3 server and the real signer: receipts, idempotency, dossier
codes, limits, status, reuse lookups (logged and audited), corrections (signed version 2, the
old version kept), dashboard. Helpers here are shared with the access and browser tests."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from pipeline.records.pii import KeyRing, encrypt_fields, keyring_path
from pipeline.records.record import FIELD_MODELS, FieldEvidence, record_bytes
from pipeline.runtime.config import LimitSettings, Settings
from pipeline.runtime.document import DocumentOutcome, base_record
from pipeline.service.api.app import create_app
from pipeline.service.api.auth import KeyStore
from pipeline.signing.sign import RemoteSigner
from pipeline.stages.models import PageResult, SourceRef, Word
from pipeline.stages.validate import validate_record
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.store import write_indexes

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
UNIT_A = "000.00.01.H53"
UNIT_B = "000.00.02.H53"
DOSSIER_A = "000.00.01.H53-230101-0001"


# --- scans and records -------------------------------------------------------------------------


@dataclass
class Scan:
    png: bytes
    jpeg: bytes
    width: int
    height: int
    words: list[Word]
    line_boxes: dict[str, tuple[int, int, int, int]]  # line key -> box


def render_scan(lines: dict[str, str], *, size: tuple[int, int] = (1000, 1400), font_size: int = 30) -> Scan:
    """A white page with Vietnamese text lines; words and line boxes measured with PIL."""
    font = ImageFont.truetype(FONT, font_size)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    words: list[Word] = []
    boxes: dict[str, tuple[int, int, int, int]] = {}
    y = 80
    for index, (key, text) in enumerate(lines.items()):
        x = 80
        draw.text((x, y), text, font=font, fill="black")
        line_box = draw.textbbox((x, y), text, font=font)
        boxes[key] = tuple(int(v) for v in line_box)
        cursor = x
        for token in text.split(" "):
            box = draw.textbbox((cursor, y), token, font=font)
            words.append(Word(text=token, conf=91.0, bbox=tuple(int(v) for v in box), line=index))
            cursor += draw.textlength(token + " ", font=font)
        y += int(font_size * 1.8)
    png, jpeg = io.BytesIO(), io.BytesIO()
    image.save(png, format="PNG")
    image.save(jpeg, format="JPEG", quality=80)
    return Scan(png.getvalue(), jpeg.getvalue(), size[0], size[1], words, boxes)


def admin_lines(number: str, date_text: str, serial: str) -> dict[str, str]:
    return {
        "issuer": "ỦY BAN NHÂN DÂN HUYỆN ĐÔNG ANH",
        "number": f"Số: {number}",
        "date": f"Đông Anh, {date_text}",
        "subject": "V/v số hóa hồ sơ, giấy tờ, kết quả giải quyết thủ tục hành chính",
        "body": "Kính gửi: Bộ phận Một cửa các xã, thị trấn",
        "signer": "Nguyễn Văn Bình",
        "serial": f"(bản quét {serial})",
    }


def make_record(
    warehouse: Warehouse,
    signer: RemoteSigner,
    *,
    keyring: KeyRing | None = None,
    unit: str | None,
    fields: dict[str, Any],
    confidence: dict[str, float],
    reasons: list[dict[str, str]] = (),
    record_type: str = "admin_document",
    dossier: str | None = None,
    lines: dict[str, str] | None = None,
    evidence: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Store a realistic signed record (with its original and page image) as the pipeline would:
    personal data encrypted with ``keyring``, then signed, indexed and stored (``store.write_indexes``)."""
    scan = render_scan(lines or admin_lines(fields.get("number") or "?", fields.get("date") or "", uuid.uuid4().hex[:8]))
    document_id = hashlib.sha256(scan.png).hexdigest()
    ref = SourceRef(document_id=document_id, source_file=f"scan-{document_id[:6]}.png", size=len(scan.png),
                    original_key=Warehouse.original_key(document_id), unit=unit, dossier=dossier)
    warehouse.put_original(document_id, scan.png, source_file=ref.source_file)
    page = PageResult(page=1, width=scan.width, height=scan.height, dpi=150, text="\n".join((lines or {}).values()),
                      words=scan.words, mean_confidence=91.0, image_sha256=hashlib.sha256(scan.png).hexdigest())
    record = base_record(ref, 1, [page], status="ok", record_type=record_type)
    record.fields = {**FIELD_MODELS[record_type]().model_dump(mode="json"), **fields}
    record.field_confidence = confidence
    evidences = {name: FieldEvidence(page=1, boxes=[scan.line_boxes[name]]) for name in fields if name in scan.line_boxes}
    for name, ev in (evidence or {}).items():  # e.g. a handwritten slot: the box of a line, method handwriting
        box = scan.line_boxes[ev["line"]] if "line" in ev else ev["box"]
        evidences[name] = FieldEvidence(page=1, boxes=[tuple(box)], method=ev.get("method", "rule"), source=ev.get("source"))
    record.field_evidence = evidences
    record.validation_errors = validate_record(record)
    record.review_reasons = list(reasons)
    record.status = "needs_review" if record.validation_errors or record.review_reasons else "ok"
    if keyring is not None:
        record = encrypt_fields(record, keyring)
    signed = signer.sign_record(record)
    warehouse.put_page_image(document_id, 1, scan.jpeg)
    write_indexes(warehouse, signed, keyring)
    warehouse.put_record(document_id, record_bytes(signed), status=signed.status)
    return signed.to_json()


def worst_record(warehouse, signer, unit=UNIT_A, number="125/UBND-VP", keyring=None):
    """Invalid date (30 February) and a low-confidence number: two issues."""
    return make_record(
        warehouse, signer, unit=unit, dossier=DOSSIER_A, keyring=keyring,
        fields={"number": number, "date": "2023-02-30", "issuer": "Ủy ban nhân dân huyện Đông Anh",
                "doc_type": "Công văn", "place": "Đông Anh", "signer": "Nguyễn Văn Bình",
                "subject": "số hóa hồ sơ, giấy tờ, kết quả giải quyết thủ tục hành chính"},
        confidence={"number": 0.41, "date": 0.55, "issuer": 0.97, "subject": 0.9, "signer": 0.95},
        reasons=[{"field": "number", "kind": "low_confidence", "message": "số, ký hiệu đọc với độ tin cậy thấp (0.41)"}],
        lines=admin_lines(number, "ngày 30 tháng 02 năm 2023", uuid.uuid4().hex[:8]),
    )


def mild_record(warehouse, signer, unit=UNIT_A, keyring=None):
    """One low-confidence subject: one issue."""
    return make_record(
        warehouse, signer, unit=unit, keyring=keyring,
        fields={"number": "88/UBND-TP", "date": "2023-03-01", "issuer": "Ủy ban nhân dân huyện Đông Anh",
                "subject": "báo cáo tình hình tiếp nhận hồ sơ"},
        confidence={"number": 0.9, "date": 0.92, "subject": 0.62},
        reasons=[{"field": "subject", "kind": "low_confidence", "message": "trích yếu đọc với độ tin cậy thấp"}],
    )


def birth_record(warehouse, signer, unit=UNIT_B, personal_id="001203012345", keyring=None):
    return make_record(
        warehouse, signer, unit=unit, record_type="birth_certificate", keyring=keyring,
        fields={"number": "45", "full_name": "Trần Thị Hồng Nhung", "date_of_birth": "2003-05-17",
                "personal_id": personal_id, "date": "2003-05-20"},
        confidence={"number": 0.95, "full_name": 0.93, "personal_id": 0.97},
        lines={"full_name": "Họ, chữ đệm, tên: Trần Thị Hồng Nhung", "personal_id": f"Số định danh cá nhân: {personal_id}",
               "serial": uuid.uuid4().hex},
    )


# --- executors ---------------------------------------------------------------------------------


class PendingExecutor:
    """Accepts tasks and leaves them pending until :meth:`finish` (counts what was submitted)."""

    def __init__(self):
        self.submitted: list[tuple[str, tuple]] = []
        self.finalize: list[Future] = []

    def submit(self, fn, *args, key=None, resources=None):
        self.submitted.append((fn.__name__, args))
        fut: Future = Future()
        if fn.__name__ == "finalize_document":
            self.finalize.append(fut)
        return fut

    def wait_any(self, futures):
        return [f for f in futures if f.done()]

    def worker_count(self) -> int:
        return 1

    def finish(self, status: str = "ok") -> None:
        for (_name, args), fut in zip([s for s in self.submitted if s[0] == "finalize_document"], self.finalize, strict=True):
            if not fut.done():
                ref = args[0]
                fut.set_result(DocumentOutcome(document_id=ref.document_id, source_file=ref.source_file, status=status))


# --- the service ---------------------------------------------------------------------------------


@dataclass
class Env:
    settings: Settings
    warehouse: Warehouse
    keys: KeyStore
    signer: RemoteSigner
    tokens: dict[str, str]  # "unit_a", "unit_b", "steward", "reader", "admin"
    keyring: KeyRing  # the deployment's PII key ring (settings.pii_keyring)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def make_env(s3_server, signer_service, home: Path, **settings_changes) -> Env:
    wh_settings = replace(s3_server.settings, bucket=f"api-{uuid.uuid4().hex[:12]}", retention_days=1)
    s3_server.ensure_bucket(wh_settings.bucket)  # the setup identity makes buckets, as in a deployment
    warehouse = Warehouse(wh_settings)
    warehouse.ensure_bucket()
    keyring = KeyRing.generate()
    keyring.save(keyring_path(home))
    settings = Settings(home=home, warehouse=wh_settings, signer=signer_service.settings, sign_pdf=False,
                        pii_keyring=keyring_path(home), **settings_changes)
    keys = KeyStore.for_home(home)
    tokens = {
        "unit_a": keys.create(UNIT_A, "unit")[1],
        "unit_b": keys.create(UNIT_B, "unit")[1],
        "steward": keys.create("SO-TTTT", "steward")[1],
        "reader": keys.create("SO-TP", "reader")[1],
        "admin": keys.create("SO-NV", "admin")[1],
    }
    return Env(settings, warehouse, keys, RemoteSigner(signer_service.settings), tokens, keyring)


@pytest.fixture(scope="module")
def env(s3_server, signer_service, tmp_path_factory) -> Env:
    return make_env(s3_server, signer_service, tmp_path_factory.mktemp("api-home"))


@pytest.fixture(scope="module")
def executor() -> PendingExecutor:
    return PendingExecutor()


@pytest.fixture(scope="module")
def client(env, executor):
    with TestClient(create_app(env.settings, executor=executor, keys=env.keys)) as c:
        yield c


def png_page(text: str) -> bytes:
    return render_scan({"line": text}, size=(600, 300), font_size=24).png


def upload(client, env, files: list[tuple[str, bytes]], *, who: str = "unit_a", dossier: str = DOSSIER_A):
    return client.post(f"/api/v1/dossiers/{dossier}/documents", headers=env.headers(who),
                       files=[("files", (name, data, "image/png")) for name, data in files])


# --- tests ---------------------------------------------------------------------------------------


def test_upload_returns_a_receipt_at_once_and_is_idempotent(client, env, executor):
    one, two = png_page("Giấy khai sinh — bản sao"), png_page("Đơn đề nghị cấp bản sao")
    resp = upload(client, env, [("../../etc/Giấy khai sinh.png", one), ("C:\\scans\\don.png", two)])
    assert resp.status_code == 202, resp.text
    receipt = resp.json()
    assert receipt["dossier_code"] == DOSSIER_A and receipt["unit"] == UNIT_A
    docs = receipt["documents"]
    assert [d["document_id"] for d in docs] == [hashlib.sha256(one).hexdigest(), hashlib.sha256(two).hexdigest()]
    assert [d["file_name"] for d in docs] == ["Giấy khai sinh.png", "don.png"]  # display only, no path
    assert all(d["status"] == "processing" and d["pages"] == 1 for d in docs)
    assert env.warehouse.has_original(docs[0]["document_id"])
    finalizes = lambda: sum(1 for name, _ in executor.submitted if name == "finalize_document")  # noqa: E731
    assert finalizes() == 2
    ref = next(args[0] for name, args in executor.submitted if name == "finalize_document")
    assert ref.unit == UNIT_A and ref.dossier == DOSSIER_A  # records will carry provenance.unit

    again = upload(client, env, [("copy.png", one)])
    assert again.status_code == 202
    assert again.json()["documents"][0]["document_id"] == docs[0]["document_id"]
    assert finalizes() == 2  # in flight already: processed once

    status = client.get(f"/api/v1/dossiers/{DOSSIER_A}", headers=env.headers("unit_a")).json()
    assert {d["document_id"] for d in status["documents"]} == {d["document_id"] for d in docs}
    assert not status["complete"]

    executor.finish("ok")  # the collector thread takes the outcomes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/documents/{docs[0]['document_id']}", headers=env.headers("unit_a")).json()
        if body["status"] == "ok":
            break
        time.sleep(0.05)
    assert body["status"] == "ok"


@pytest.mark.parametrize("code", ["000.00.01.H53-230101-001", "H53-230101-0001", "000.00.01.h53-230101-0001",
                                  "000.00.01.H53_230101_0001", "000.00.01.H53-230101-0001x"])
def test_dossier_code_is_validated(client, env, code):
    resp = upload(client, env, [("a.png", png_page("x"))], dossier=code)
    assert resp.status_code == 422
    assert "mã hồ sơ" in resp.json()["detail"] and "000.00.01.H53-230101-0001" in resp.json()["detail"]
    assert client.get(f"/api/v1/dossiers/{code}", headers=env.headers("unit_a")).status_code == 422


def test_limits_are_enforced_before_anything_is_stored(s3_server, signer_service, tmp_path):
    env = make_env(s3_server, signer_service, tmp_path, limits=LimitSettings(max_file_bytes=60_000, max_pages=2))
    with TestClient(create_app(env.settings, executor=PendingExecutor(), keys=env.keys)) as client:
        big = render_scan({"l": "Hồ sơ quá lớn"}, size=(1800, 1800)).png + b"\0" * 60_000
        resp = upload(client, env, [("ok.png", png_page("nhỏ")), ("lớn.png", big)])
        assert resp.status_code == 413 and "lớn.png" in resp.json()["detail"] and "MB" in resp.json()["detail"]
        assert not env.warehouse.has_original(hashlib.sha256(png_page("nhỏ")).hexdigest())  # all or nothing

        frames = [Image.new("L", (200, 200), 255) for _ in range(3)]
        tiff = io.BytesIO()
        frames[0].save(tiff, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
        resp = upload(client, env, [("ba-trang.tif", tiff.getvalue())])
        assert resp.status_code == 413 and "3 pages" in resp.json()["detail"]

        resp = upload(client, env, [("ghi-chú.png", "không phải ảnh".encode())])
        assert resp.status_code == 422 and "ghi-chú.png" in resp.json()["detail"]
        resp = client.post(f"/api/v1/dossiers/{DOSSIER_A}/documents", headers=env.headers("unit_a"), data={"x": "1"})
        assert resp.status_code == 422 and "không có tệp" in resp.json()["detail"]


def test_status_comes_from_the_warehouse_and_reads_are_audited(client, env):
    from pipeline.warehouse.audit import iter_audit

    record = worst_record(env.warehouse, env.signer)
    doc = record["document_id"]
    body = client.get(f"/api/v1/documents/{doc}", headers=env.headers("unit_a")).json()
    assert body["status"] == "needs_review" and body["version"] == 1 and body["unit"] == UNIT_A
    assert body["fields"]["issuer"] == "Ủy ban nhân dân huyện Đông Anh"
    assert {i["field"] for i in body["validation_errors"]} == {"date"}
    assert body["field_evidence"]["number"]["boxes"] and body["pages"][0]["width"] == 1000
    image = client.get(f"/api/v1/documents/{doc}/pages/1.jpg", headers=env.headers("unit_a"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content[:3] == b"\xff\xd8\xff"
    assert client.get(f"/api/v1/documents/{doc}/pages/2.jpg", headers=env.headers("unit_a")).status_code == 404

    # an original without a record is "processing"; an unknown id is 404
    scan = png_page("chưa xử lý")
    pending = hashlib.sha256(scan).hexdigest()
    env.warehouse.put_original(pending, scan, source_file="x.png")
    assert client.get(f"/api/v1/documents/{pending}", headers=env.headers("steward")).json()["status"] == "processing"
    assert client.get(f"/api/v1/documents/{'0' * 64}", headers=env.headers("admin")).status_code == 404

    entries = [e for e in iter_audit(env.warehouse) if doc in e["documents"]]
    actions = {(e["action"], e["unit"], e["role"]) for e in entries}
    assert ("record.read", UNIT_A, "unit") in actions and ("page.read", UNIT_A, "unit") in actions
    assert all(e["key_id"] and e["at"] for e in entries)


def test_lookup_logs_reuse_and_audits(client, env):
    from pipeline.warehouse.audit import iter_audit, iter_reuse

    letter = mild_record(env.warehouse, env.signer, keyring=env.keyring)
    birth = birth_record(env.warehouse, env.signer, personal_id="079190000001", keyring=env.keyring)
    resp = client.get("/api/v1/lookup", params={"number": "88/ubnd-tp"}, headers=env.headers("reader"))
    assert resp.status_code == 200
    found = resp.json()
    assert letter["document_id"] in {d["document_id"] for d in found["documents"]}
    resp = client.post("/api/v1/lookup", json={"personal_id": "079190000001"}, headers=env.headers("reader"))
    assert resp.status_code == 200, resp.text
    by_id = resp.json()
    assert [d["document_id"] for d in by_id["documents"]] == [birth["document_id"]]
    assert by_id["documents"][0]["unit"] == UNIT_B

    events = list(iter_reuse(env.warehouse))
    reused = {d["document_id"] for e in events for d in e["documents"]}
    assert {letter["document_id"], birth["document_id"]} <= reused
    assert all(e["role"] == "reader" and e["unit"] == "SO-TP" for e in events)
    assert any(e["action"] == "lookup" and birth["document_id"] in e["documents"] for e in iter_audit(env.warehouse))

    before = len(events)
    nothing = client.post("/api/v1/lookup", json={"tax_code": "0100109106"}, headers=env.headers("reader")).json()
    assert nothing["count"] == 0 and len(list(iter_reuse(env.warehouse))) == before  # no documents, no reuse
    assert client.post("/api/v1/lookup", json={"number": "1", "tax_code": "2"}, headers=env.headers("reader")).status_code == 422
    refused = client.get("/api/v1/lookup", params={"personal_id": "079190000001"}, headers=env.headers("reader"))
    assert refused.status_code == 400 and "POST /api/v1/lookup" in refused.json()["detail"]  # ids never in a URL
    assert client.get("/api/v1/lookup", params={"number": "88/UBND-TP"}, headers=env.headers("unit_a")).status_code == 403


def test_personal_data_is_encrypted_at_rest_and_readable_only_by_permitted_roles(s3_server, signer_service, tmp_path):
    env = make_env(s3_server, signer_service, tmp_path)
    with TestClient(create_app(env.settings, executor=PendingExecutor(), keys=env.keys)) as client:
        _check_personal_data(client, env)


def _check_personal_data(client, env):
    from pipeline.signing.verify import verify_record_bytes

    pid, name = "001190000777", "Trần Thị Hồng Nhung"
    birth = birth_record(env.warehouse, env.signer, personal_id=pid, keyring=env.keyring)
    doc = birth["document_id"]
    data = env.warehouse.get_record_bytes(doc)
    stored = json.loads(data)
    assert stored["pii"]["kid"] == env.keyring.current_kid and "full_name" in stored["pii"]["fields"]
    assert stored["fields"]["full_name"] is None and stored["fields"]["personal_id"] is None
    assert name.encode() not in data and pid.encode() not in data  # OCR text and words blanked too
    assert verify_record_bytes(data, [env.settings.signer.trust_anchor.read_bytes()]).ok  # verifiable without keys
    # no object key (subject area, indexes, catalog) and no catalog file holds the id in clear
    keys = list(env.warehouse.objects.list(""))
    assert not [k for k in keys if pid in k]
    assert any(k.startswith("subjects/") and doc in k for k in keys)
    for key in (k for k in keys if k.startswith("catalog/")):
        assert pid.encode() not in (env.warehouse.objects.get(key) or b"")

    own = client.get(f"/api/v1/documents/{doc}", headers=env.headers("unit_b")).json()
    assert own["fields"]["full_name"] == name and own["fields"]["personal_id"] == pid
    assert own["personal_data"]["encrypted_at_rest"] and own["personal_data"]["readable"]
    steward = client.get(f"/api/v1/documents/{doc}", headers=env.headers("steward")).json()
    assert steward["fields"]["full_name"] == name
    assert client.get(f"/api/v1/documents/{doc}", headers=env.headers("unit_a")).status_code == 404  # another unit
    found = client.post("/api/v1/lookup", json={"personal_id": pid}, headers=env.headers("reader")).json()
    assert [d["document_id"] for d in found["documents"]] == [doc]

    # a steward's correction of a personal field: decrypted, corrected, encrypted again, signed anew
    resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                       json={"fields": {"full_name": "Trần Thị Hồng Nhung Anh"}, "reason": "Sửa tên theo bản gốc"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["fields"]["full_name"] == "Trần Thị Hồng Nhung Anh"
    data2 = env.warehouse.get_record_bytes(doc)
    v2 = json.loads(data2)
    assert v2["version"] == 2 and v2["fields"]["full_name"] is None and "Hồng Nhung Anh".encode() not in data2
    assert verify_record_bytes(data2, [env.settings.signer.trust_anchor.read_bytes()]).ok
    again = client.post("/api/v1/lookup", json={"personal_id": pid}, headers=env.headers("reader")).json()
    assert [d["document_id"] for d in again["documents"]] == [doc]


def test_correction_creates_a_signed_version_2_and_keeps_version_1(client, env):
    from pipeline.signing.verify import verify_record_bytes

    record = worst_record(env.warehouse, env.signer, number="7/UBND-VP")
    doc = record["document_id"]
    queue = client.get("/api/v1/review/queue", headers=env.headers("steward")).json()["documents"]
    assert queue[0]["issues"] >= queue[-1]["issues"] and doc in [q["document_id"] for q in queue]

    bad = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                      json={"fields": {"colour": "đỏ"}, "reason": "thử"})
    assert bad.status_code == 422 and "colour" in bad.json()["detail"]

    resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                       json={"fields": {"date": "2023-02-28", "number": "7/UBND-VP"}, "reason": "Sửa ngày theo bản gốc",
                             "expected_version": 1})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["version"] == 2 and view["status"] == "ok"  # date fixed, number confirmed
    assert view["validation_errors"] == [] and view["review_reasons"] == []

    data = env.warehouse.get_record_bytes(doc)
    stored = json.loads(data)
    entry = stored["history"][-1]
    steward_key = next(k for k in env.keys.list() if k.role == "steward")
    assert entry["action"] == "corrected" and entry["version"] == 2 and entry["by"] == f"steward:{steward_key.key_id}"
    assert entry["changed_fields"] == ["date"] and entry["reason"].startswith("Sửa ngày theo bản gốc")
    assert stored["fields"]["date"] == "2023-02-28" and stored["field_evidence"]["date"]["method"] == "steward"
    assert env.warehouse.record_status(doc) == "ok"
    assert verify_record_bytes(data, [env.settings.signer.trust_anchor.read_bytes()]).ok

    versions = client.get(f"/api/v1/documents/{doc}/versions", headers=env.headers("steward")).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    old = client.get(f"/api/v1/documents/{doc}", params={"version_id": versions[1]["version_id"]},
                     headers=env.headers("steward")).json()
    assert old["version"] == 1 and old["fields"]["date"] == "2023-02-30" and old["status"] == "needs_review"
    old_bytes = env.warehouse.get_record_bytes(doc, versions[1]["version_id"])
    assert verify_record_bytes(old_bytes, [env.settings.signer.trust_anchor.read_bytes()]).ok

    stale = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                        json={"fields": {"place": "Hà Nội"}, "reason": "x", "expected_version": 1})
    assert stale.status_code == 409
    queue = client.get("/api/v1/review/queue", headers=env.headers("steward")).json()["documents"]
    assert doc not in [q["document_id"] for q in queue]  # the queue shrank


def test_dashboard_counts_per_unit_and_period(client, env):
    from pipeline.service.dashboard import COLUMNS

    data = client.get("/api/v1/dashboard", params={"period": "day"}, headers=env.headers("admin")).json()
    rows = {r["unit"]: r for r in data["totals"]}
    assert rows[UNIT_A]["received"] >= 3 and rows[UNIT_A]["needs_review"] >= 1 and rows[UNIT_A]["ok"] >= 1
    assert rows[UNIT_B]["reused"] == 1 and rows[UNIT_B]["reuse_rate"] == pytest.approx(rows[UNIT_B]["reused"] / rows[UNIT_B]["received"])
    assert all(len(r["period"]) == 10 for r in data["rows"])
    csv = client.get("/api/v1/dashboard.csv", headers=env.headers("admin"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == ",".join(COLUMNS)
    assert client.get("/api/v1/dashboard", headers=env.headers("steward")).status_code == 403


def test_pages_are_utf8_and_local(client):
    for path in ("/review", "/dashboard", "/upload", "/docs"):
        resp = client.get(path)
        assert resp.status_code == 200 and "charset=utf-8" in resp.headers["content-type"]
        assert '<meta charset="utf-8">' in resp.text and "http" not in resp.text.replace("http://www.w3.org", "")
    assert "DejaVu Sans" in client.get("/static/style.css").text
    assert client.get("/openapi.json").json()["paths"]["/api/v1/dossiers/{dossier_code}/documents"]["post"]["requestBody"]


@pytest.mark.slow
def test_a_real_scan_uploaded_becomes_a_record(s3_server, signer_service, dask_cluster, tmp_path):
    """Through the real Dask cluster: upload a rendered Vietnamese page, poll until its record exists."""
    from distributed import Client

    from pipeline.runtime.executor import DaskExecutor

    env = make_env(s3_server, signer_service, tmp_path)
    scan = render_scan(admin_lines("516/UBND-VP", "ngày 12 tháng 3 năm 2024", "e2e"), size=(1240, 1754), font_size=34).png
    with Client(dask_cluster) as dask, TestClient(create_app(env.settings, executor=DaskExecutor(dask), keys=env.keys)) as client:
        resp = upload(client, env, [("cong-van-516.png", scan)])
        assert resp.status_code == 202
        doc = resp.json()["documents"][0]["document_id"]
        deadline = time.monotonic() + 300
        status = "processing"
        while status == "processing" and time.monotonic() < deadline:
            time.sleep(1)
            status = client.get(f"/api/v1/documents/{doc}", headers=env.headers("unit_a")).json()["status"]
        assert status in ("ok", "needs_review"), status
        record = env.warehouse.get_record(doc)
        assert record["provenance"]["unit"] == UNIT_A and record["provenance"]["dossier"] == DOSSIER_A
        assert record["signature"]["value"]
