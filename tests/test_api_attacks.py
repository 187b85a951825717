"""Issue 19: hostile or careless requests against the HTTP service, on the real S3 server and
the real signer (and over real HTTP, uvicorn on loopback, where the transport matters).

* an upload above the cap of a request is refused (413) from its Content-Length before the
  body is read, or while it streams in, and nothing is stored;
* a lookup by personal id leaves the id in clear in no reuse event and no audit entry (only
  its blind index), and never travels in a URL;
* hostile corrections (wrong types, oversized values, a number too long to index, the signer
  down) get a typed 4xx/503 and nothing is signed or stored; a forged version id is a 404;
* a dossier belongs to the first unit that uploaded into it, whatever the unit codes look like;
* the role table of the README: a reader only looks up; every refusal is audited;
* security headers on every response, and no page that loads from a CDN.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.records.pii import blind_index
from pipeline.runtime.config import LimitSettings
from pipeline.service.api.app import create_app
from pipeline.warehouse.audit import iter_audit, iter_reuse
from test_api import (  # noqa: F401 - env is a fixture
    DOSSIER_A,
    UNIT_A,
    PendingExecutor,
    birth_record,
    env,
    make_env,
    png_page,
    render_scan,
    upload,
    worst_record,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app under uvicorn on loopback, in a thread (real HTTP, real access log)."""

    def __init__(self, app, *, log_level: str = "warning"):
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _keys_under(warehouse, prefix: str) -> list[str]:
    return list(warehouse.objects.list(prefix))


def _objects_under(warehouse, prefix: str) -> list[bytes]:
    return [warehouse.objects.get(k) or b"" for k in _keys_under(warehouse, prefix)]


def _multipart(files: list[tuple[str, bytes]], boundary: str = "sohoa-test-boundary") -> tuple[bytes, str]:
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                     f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- item 2: uploads are capped per request ------------------------------------------------------


def _distinct_pngs(n: int, size: int) -> list[bytes]:
    """``n`` different valid PNGs of at least ``size`` bytes (padding after IEND is ignored)."""
    base = png_page("Tờ khai")
    return [base + uuid.uuid4().bytes + b"\0" * max(0, size - len(base)) for _ in range(n)]


def test_an_upload_above_the_request_cap_is_refused_and_nothing_is_stored(s3_server, signer_service, tmp_path):
    # 100 kB a file: the request cap is 2 x 100 kB + 1 MiB of multipart framing = 1.25 MB
    env = make_env(s3_server, signer_service, tmp_path, limits=LimitSettings(max_file_bytes=100_000))
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    files = _distinct_pngs(15, 95_000)  # each below the per-file limit, 1.43 MB together
    ids = [hashlib.sha256(f).hexdigest() for f in files]
    with TestClient(app, raise_server_exceptions=False) as client:
        # declared: Content-Length above the cap
        resp = upload(client, env, [(f"trang-{i}.png", f) for i, f in enumerate(files)])
        assert resp.status_code == 413, resp.text
        assert "mỗi lần gửi" in resp.json()["detail"] and "MB" in resp.json()["detail"]
        # streamed: no Content-Length (chunked), the cap enforced while the body arrives
        body, ctype = _multipart([(f"trang-{i}.png", f) for i, f in enumerate(files)])
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        resp = client.post(f"/api/v1/dossiers/{DOSSIER_A}/documents", content=chunks,
                           headers={**env.headers("unit_a"), "Content-Type": ctype})
        assert resp.status_code == 413, resp.text
        assert not [d for d in ids if env.warehouse.has_original(d)]  # nothing stored
        assert not _keys_under(env.warehouse, "dossiers/")  # no receipt
        # a normal upload still works
        resp = upload(client, env, [("a.png", files[0]), ("b.png", files[1])])
        assert resp.status_code == 202, resp.text
        assert [d["document_id"] for d in resp.json()["documents"]] == ids[:2]
        assert env.warehouse.has_original(ids[0]) and env.warehouse.has_original(ids[1])


def _announce_upload(port: int, token: str, length: int) -> socket.socket:
    """A connection that has sent an upload's headers (``Content-Length: length``) and no body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST /api/v1/dossiers/{DOSSIER_A}/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {token}\r\n"
                  "Content-Type: multipart/form-data; boundary=x\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode())
    return sock


def test_a_declared_oversized_upload_is_answered_before_its_body_is_sent(env):
    """Over real HTTP: headers announcing 10 GB, no body; the 413 comes at once."""
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    with Server(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with _announce_upload(port, env.tokens["unit_a"], 10_000_000_000) as sock:
            sock.settimeout(10)
            started = time.monotonic()
            try:
                head = sock.recv(4096).decode("latin-1")
            except TimeoutError:
                head = ""
        assert head.startswith("HTTP/1.1 413"), head or "no answer within 10 s: the server waited for the body"
        assert time.monotonic() - started < 5


# --- item 3: personal ids are never logged in clear ------------------------------------------


def test_a_lookup_by_personal_id_leaves_no_id_in_clear(env):
    pid, tax = "001190012345", "0100109106"
    birth = birth_record(env.warehouse, env.signer, personal_id=pid, keyring=env.keyring)
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/api/v1/lookup", json={"personal_id": pid}, headers=env.headers("reader"))
        assert resp.status_code == 200, resp.text
        assert [d["document_id"] for d in resp.json()["documents"]] == [birth["document_id"]]
        resp = client.post("/api/v1/lookup", json={"tax_code": tax}, headers=env.headers("reader"))
        assert resp.status_code == 200 and resp.json()["count"] == 0
        refused = client.get("/api/v1/lookup", params={"personal_id": pid}, headers=env.headers("reader"))
        assert refused.status_code == 400 and "POST /api/v1/lookup" in refused.json()["detail"]

    reuse = _objects_under(env.warehouse, "reuse/")
    audit = _objects_under(env.warehouse, "audit/")
    assert reuse and audit
    for data in reuse + audit:
        assert pid.encode() not in data and tax.encode() not in data
    event = next(e for e in iter_reuse(env.warehouse) if any(d["document_id"] == birth["document_id"] for d in e["documents"]))
    assert event["query"] == {"kind": "personal_id", "blind_index": blind_index(pid, env.keyring)}
    lookups = [e for e in iter_audit(env.warehouse) if e["action"] == "lookup"]
    assert {e["detail"]["query"] for e in lookups} >= {"personal_id", "tax_code"}  # the empty one too
    assert any(e["detail"].get("blind_index") == blind_index(tax, env.keyring) and e["documents"] == [] for e in lookups)


def test_the_access_log_never_shows_a_personal_id(env):
    pid = "001190054321"
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Capture()
    with Server(app, log_level="info") as base:
        logging.getLogger("uvicorn.access").addHandler(handler)
        try:
            resp = httpx.get(f"{base}/api/v1/lookup", params={"personal_id": pid}, headers=env.headers("reader"))
            assert resp.status_code == 400
            resp = httpx.post(f"{base}/api/v1/lookup", json={"personal_id": pid}, headers=env.headers("reader"))
            assert resp.status_code == 200
        finally:
            logging.getLogger("uvicorn.access").removeHandler(handler)
    assert any("/api/v1/lookup" in line for line in lines), lines
    assert not [line for line in lines if pid in line]


# --- item 5: hostile corrections, forged version ids, the signer down -----------------------------


class CountingSigner:
    def __init__(self, signer):
        self.signer, self.calls = signer, 0

    def sign_record_bytes(self, record):
        self.calls += 1
        return self.signer.sign_record_bytes(record)


@pytest.mark.parametrize("fields, says", [
    ({"issuer": 12345}, "issuer"),
    ({"number": "12/" + "UBND-VP" * 160}, "number"),  # 1123 chars: a valid string, but no index key can hold it
    ({"issuer": "Ủy ban nhân dân " * 70}, "issuer"),  # ~1100 chars of Vietnamese: 6 kB once URL-quoted
    ({"subject": "x" * 2001}, "2000"),
    ({"subject": ["a"] * 201}, "subject"),
    ({"date": "2023-02-31"}, "date"),
    ({"place": {"nested": "object"}}, "place"),
])
def test_a_hostile_correction_is_refused_before_signing(env, fields, says):
    record = worst_record(env.warehouse, env.signer, number=f"{uuid.uuid4().hex[:6]}/UBND-VP")
    doc = record["document_id"]
    before = env.warehouse.get_record_bytes(doc)
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    spy = CountingSigner(app.state.service.signer())
    app.state.service.signer = lambda: spy
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                           json={"fields": fields, "reason": "thử tấn công"})
    assert resp.status_code == 422, resp.text[:300]
    assert says in resp.json()["detail"] if isinstance(resp.json()["detail"], str) else says in json.dumps(resp.json())
    assert spy.calls == 0  # nothing signed
    assert env.warehouse.get_record_bytes(doc) == before and len(env.warehouse.record_versions(doc)) == 1


def test_a_forged_version_id_is_a_404(env):
    record = worst_record(env.warehouse, env.signer, number="31/UBND-VP")
    doc = record["document_id"]
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        for forged in ("../../x", "..%2F..%2Fx", "null", "a" * 2000, "0" * 32):
            resp = client.get(f"/api/v1/documents/{doc}", params={"version_id": forged}, headers=env.headers("steward"))
            assert resp.status_code == 404, (forged, resp.status_code, resp.text[:200])
        raw = client.get(f"/api/v1/documents/{doc}?version_id=..%2F..%2Fx", headers=env.headers("steward"))
        assert raw.status_code == 404


@pytest.mark.parametrize("broken", ["unreachable", "wrong password"])
def test_a_correction_while_the_signer_is_down_is_a_503(env, broken):
    record = worst_record(env.warehouse, env.signer, number=f"{uuid.uuid4().hex[:6]}/UBND-VP")
    doc = record["document_id"]
    before = env.warehouse.get_record_bytes(doc)
    signer = (replace(env.settings.signer, url=f"http://127.0.0.1:{_free_port()}", retry_attempts=1)
              if broken == "unreachable" else replace(env.settings.signer, password="not-the-password"))
    app = create_app(replace(env.settings, signer=signer), executor=PendingExecutor(), keys=env.keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("steward"),
                           json={"fields": {"date": "2023-02-28"}, "reason": "Sửa ngày"})
    assert resp.status_code == 503, resp.text[:300]
    assert "sign" in resp.json()["detail"] and resp.headers.get("retry-after")
    assert env.warehouse.get_record_bytes(doc) == before


# --- item 7: a dossier belongs to the first unit, whatever its code -------------------------------


def test_a_dossier_belongs_to_the_first_unit_whatever_the_unit_codes(s3_server, signer_service, tmp_path):
    env = make_env(s3_server, signer_service, tmp_path)
    alpha = env.keys.create("alpha", "unit")[1]
    beta = env.keys.create("beta_2", "unit")[1]
    dossier = "000.00.09.H53-240101-0007"  # numbered by neither
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    first, second, third = png_page("hồ sơ alpha"), png_page("chen vào"), png_page("alpha thêm")

    def post(token, data):
        return client.post(f"/api/v1/dossiers/{dossier}/documents", headers={"Authorization": f"Bearer {token}"},
                           files=[("files", ("a.png", data, "image/png"))])

    with TestClient(app, raise_server_exceptions=False) as client:
        assert post(alpha, first).status_code == 202
        resp = post(beta, second)
        assert resp.status_code == 403 and "thuộc đơn vị khác" in resp.json()["detail"]
        assert not env.warehouse.has_original(hashlib.sha256(second).hexdigest())
        assert not _keys_under(env.warehouse, "dossiers/beta_2/")
        status = client.get(f"/api/v1/dossiers/{dossier}", headers={"Authorization": f"Bearer {beta}"})
        assert status.status_code == 404
        assert post(alpha, third).status_code == 202  # the owner goes on adding
        status = client.get(f"/api/v1/dossiers/{dossier}", headers={"Authorization": f"Bearer {alpha}"})
        assert status.status_code == 200 and len(status.json()["documents"]) == 2
        # beta owns the dossiers it opens first
        other = "000.00.09.H53-240101-0008"
        resp = client.post(f"/api/v1/dossiers/{other}/documents", headers={"Authorization": f"Bearer {beta}"},
                           files=[("files", ("b.png", second, "image/png"))])
        assert resp.status_code == 202

    # a dossier received before owners were recorded (a receipt, no owner object) is its first unit's
    from pipeline.warehouse import audit

    legacy = "000.00.09.H53-200101-0001"
    audit.write_receipt(env.warehouse, "alpha", legacy, {"document_id": "ab" * 32, "source_file": "cũ.png",
                                                         "received_at": "2020-01-01T00:00:00+00:00"})
    audit._owners_complete.discard(env.warehouse.bucket)  # noqa: SLF001
    if env.warehouse.objects.exists(audit.OWNERS_COMPLETE_KEY):  # the app's start wrote it already
        env.warehouse.objects.remove(audit.OWNERS_COMPLETE_KEY)
    assert audit.dossier_owner(env.warehouse, legacy) == "alpha"  # from the receipts
    assert audit.backfill_dossier_owners(env.warehouse) == 1
    assert audit._owner_versions(env.warehouse, legacy) and audit.dossier_owner(env.warehouse, legacy) == "alpha"
    with TestClient(create_app(env.settings, executor=PendingExecutor(), keys=env.keys)) as client:
        resp = client.post(f"/api/v1/dossiers/{legacy}/documents", headers={"Authorization": f"Bearer {beta}"},
                           files=[("files", ("c.png", png_page("cũ"), "image/png"))])
        assert resp.status_code == 403


# --- item 10: the role table, and every access and refusal audited ---------------------------------


def test_the_role_table_holds_and_every_refusal_is_audited(s3_server, signer_service, tmp_path):
    env = make_env(s3_server, signer_service, tmp_path)
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    record = worst_record(env.warehouse, env.signer, unit=UNIT_A)
    doc = record["document_id"]
    endpoints = [f"/api/v1/documents/{doc}", f"/api/v1/documents/{doc}/pages/1.jpg",
                 f"/api/v1/documents/{doc}/versions", f"/api/v1/dossiers/{DOSSIER_A}"]
    callers = {
        "no key": ({}, 401),
        "wrong key": ({"Authorization": "Bearer sohoa_0123456789ab_" + "A" * 43}, 401),
        "reader (other role)": (env.headers("reader"), 403),
        "unit B (other unit)": (env.headers("unit_b"), 404),
        "unit A": (env.headers("unit_a"), 200),
        "steward": (env.headers("steward"), 200),
        "admin": (env.headers("admin"), 200),
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        assert upload(client, env, [("hồ sơ.png", png_page("Tờ khai A"))]).status_code == 202
        start = len(list(iter_audit(env.warehouse)))
        for path in endpoints:
            for who, (headers, expected) in callers.items():
                resp = client.get(path, headers=headers)
                assert resp.status_code == expected, f"{who} GET {path}: {resp.status_code} {resp.text[:200]}"
        refusals = sum(1 for _, expected in callers.values() if expected >= 400) * len(endpoints)
        grants = sum(1 for _, expected in callers.values() if expected < 400) * len(endpoints)

        entries = list(iter_audit(env.warehouse))[start:]
        refused = [e for e in entries if e["action"] == "refused"]
        assert len(refused) == refusals, [(e["role"], e["detail"]) for e in refused]
        assert {e["role"] for e in refused} == {"anonymous", "reader", "unit"}
        assert {e["detail"]["status"] for e in refused} == {401, 403, 404}
        assert any(e["key_id"] == "0123456789ab" for e in refused)  # the key id a wrong key named
        granted = [e for e in entries if e["action"] != "refused"]
        assert len(granted) == grants
        assert {e["action"] for e in granted} == {"record.read", "page.read", "record.versions", "dossier.read"}

        # a lookup that finds nothing, and reading the audit log, are audited too
        assert client.post("/api/v1/lookup", json={"number": "không-có/999"}, headers=env.headers("reader")).json()["count"] == 0
        assert client.get("/api/v1/audit", headers=env.headers("admin")).status_code == 200
        actions = [e["action"] for e in iter_audit(env.warehouse)]
        assert "lookup" in actions and "audit.read" in actions
        # a refused lookup (a unit key) and a refused correction (a reader) are audited
        before = len(list(iter_audit(env.warehouse)))
        assert client.post("/api/v1/lookup", json={"number": "1"}, headers=env.headers("unit_a")).status_code == 403
        assert client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("reader"),
                           json={"fields": {}, "reason": "x"}).status_code == 403
        assert len(list(iter_audit(env.warehouse))) == before + 2


# --- item 12: security headers, no CDN --------------------------------------------------------------


def test_every_response_carries_security_headers_and_nothing_loads_from_a_cdn(env):
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        responses = {path: client.get(path) for path in
                     ("/review", "/dashboard", "/static/review.js", "/openapi.json", "/healthz", "/api/v1/me",
                      "/no/such/page", f"/api/v1/documents/{'0' * 64}")}
        responses["/api/v1/me (key)"] = client.get("/api/v1/me", headers=env.headers("admin"))
        for path, resp in responses.items():
            csp = resp.headers.get("content-security-policy", "")
            assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
            assert resp.headers.get("x-frame-options") == "DENY", path
            assert resp.headers.get("x-content-type-options") == "nosniff", path
            assert resp.headers.get("referrer-policy") == "no-referrer", path
        assert responses["/api/v1/me (key)"].headers.get("cache-control") == "no-store"
        for page in ("/review", "/dashboard"):
            html = responses[page].text
            assert "<script>" not in html and "onclick" not in html  # no inline script for the CSP to allow
        docs = client.get("/docs")
        assert docs.status_code == 404 or ("cdn" not in docs.text and "https://" not in docs.text)
        assert "cdn.jsdelivr" not in docs.text and "unpkg" not in docs.text
        assert client.get("/redoc").status_code == 404 or "cdn" not in client.get("/redoc").text
        assert client.get("/openapi.json").json()["paths"]["/api/v1/lookup"]["post"]


def test_a_truncated_tiff_upload_is_a_typed_4xx_and_the_rest_of_the_dossier_is_kept(env):
    """Issue 19.5: a TIFF cut in the middle of its image data is refused with the load stage's
    message (no 500), and nothing of it is stored."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (800, 600), 255).save(buf, format="TIFF", compression="raw")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 3]
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post(f"/api/v1/dossiers/{DOSSIER_A}/documents", headers=env.headers("unit_a"),
                           files=[("files", ("cut.tif", truncated, "image/tiff"))])  # fmt: skip
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
        assert "tif" in resp.text.lower() or "damaged" in resp.text.lower() or "truncated" in resp.text.lower()
        import hashlib

        assert not env.warehouse.has_original(hashlib.sha256(truncated).hexdigest())


def test_a_unit_cannot_hold_more_than_its_share_of_uploads_at_once(env):
    """Issue 19.2 (per unit): while one upload of a unit is in flight (headers sent, body not yet),
    a second that would pass the unit's share is refused with 429 — another unit's is not."""
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys, max_request_bytes=3_000_000,
                     max_unit_bytes=4_000_000)  # fmt: skip
    with Server(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with _announce_upload(port, env.tokens["unit_a"], 2_500_000):
            time.sleep(1.0)  # the server has reserved unit A's share and waits for the body
            with _announce_upload(port, env.tokens["unit_a"], 2_000_000) as second:
                second.settimeout(10)
                head = b""
                while "các lần gửi trước".encode() not in head:  # headers and body may come in separate packets
                    chunk = second.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                head = head.decode("utf-8", "replace")
            assert head.startswith("HTTP/1.1 429"), head
            assert "các lần gửi trước" in head and "retry-after" in head.lower()
        time.sleep(1.0)  # the held request ended with its connection: the share is free again
        body, ctype = _multipart([("c.png", png_page("Số: 3/UBND-VP"))])
        after = httpx.post(f"{base}/api/v1/dossiers/{DOSSIER_A}/documents", content=body,
                           headers={"Content-Type": ctype, "Authorization": f"Bearer {env.tokens['unit_a']}"}, timeout=20)
        assert after.status_code == 202, after.text
