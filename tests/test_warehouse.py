"""The warehouse on a real S3 server: write-once originals, versioned records, lookups."""

import contextlib
import hashlib

import pytest
from minio.error import S3Error

from pipeline.runtime.errors import WarehouseUnavailableError
from pipeline.runtime.retry import RetryPolicy
from pipeline.warehouse.layout import Warehouse


@contextlib.contextmanager
def retries_seen():
    """The retries stamina schedules meanwhile (its instrumentation hook), as a list."""
    import stamina
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    seen: list = []
    before = get_on_retry_hooks()
    set_on_retry_hooks([seen.append])
    try:
        yield seen
    finally:
        set_on_retry_hooks(before)
    assert stamina.is_active()

DOC = "ab" + "0" * 62


def test_credentials_are_required(warehouse_settings, warehouse):
    from dataclasses import replace

    from pipeline.runtime.errors import WarehouseError

    intruder = Warehouse(replace(warehouse_settings, secret_key="wrong-secret"))  # the default budget: 180 s
    with retries_seen() as seen, pytest.raises(WarehouseError) as info:
        intruder.get_record(DOC)
    assert not isinstance(info.value, WarehouseUnavailableError)  # a refusal: permanent
    assert seen == []  # ... so not tried again (issue 21 item 4: only transient errors are)


def test_original_is_stored_once_and_cannot_be_deleted(warehouse):
    DOC = hashlib.sha256(b"scan bytes").hexdigest()
    warehouse.put_original(DOC, b"scan bytes", source_file="cv 516.pdf")
    again = warehouse.put_original(DOC, b"scan bytes", source_file="cv 516.pdf")
    assert again.version_id is None  # already there: nothing written
    key = Warehouse.original_key(DOC)
    version = next(warehouse.client.list_objects(warehouse.bucket, prefix=key, include_version=True)).version_id
    with pytest.raises(S3Error):
        warehouse.client.remove_object(warehouse.bucket, key, version_id=version)
    assert warehouse.get_original(DOC) == b"scan bytes"


def test_record_versions_are_kept_and_status_is_readable_with_one_head(warehouse):
    assert warehouse.record_status(DOC) is None
    warehouse.put_record(DOC, b'{"version":1}', status="needs_review")
    warehouse.put_record(DOC, b'{"version":2}', status="ok")
    assert warehouse.record_status(DOC) == "ok"
    assert warehouse.get_record(DOC) == {"version": 2}
    versions = warehouse.record_versions(DOC)
    assert len(versions) == 2
    contents = sorted(warehouse.get_record(DOC, v.version_id)["version"] for v in versions)
    assert contents == [1, 2]


def test_lookup_by_number_is_case_and_space_insensitive(warehouse):
    warehouse.put_index("number", "27/CT-TTg", DOC, {"document_id": DOC})
    assert warehouse.lookup("number", " 27/ct-ttg ") == [DOC]
    assert warehouse.lookup("number", "28/CT-TTg") == []


def test_unreachable_endpoint_is_a_transient_error(warehouse_settings):
    from dataclasses import replace

    dead = Warehouse(replace(warehouse_settings, endpoint="127.0.0.1:9"),
                     retry_policy=RetryPolicy(budget_s=1.0, wait_initial_s=0.05, wait_max_s=0.2))
    with retries_seen() as seen, pytest.raises(WarehouseUnavailableError, match="unreachable"):
        dead.record_status(DOC)
    assert len(seen) >= 2  # retried within its budget, then given up
    # one retry layer: the HTTP pool under the minio client retries nothing itself
    pool_retries = dead.client._http.connection_pool_kw["retries"]
    assert (pool_retries.connect, pool_retries.read, pool_retries.status, pool_retries.other) == (0, 0, 0, 0)


def test_retries_share_the_deadline_of_their_unit_of_work(warehouse_settings):
    """Inside :func:`pipeline.runtime.retry.deadline` a call gives up when the deadline has passed, whatever
    its own budget: one document's store stage gives up within one budget, not one per call."""
    from dataclasses import replace

    from pipeline.runtime.retry import deadline

    dead = Warehouse(replace(warehouse_settings, endpoint="127.0.0.1:9"),
                     retry_policy=RetryPolicy(budget_s=600, wait_initial_s=0.05, wait_max_s=0.2))
    with deadline(0.5), retries_seen() as seen:
        with pytest.raises(WarehouseUnavailableError):
            dead.record_status(DOC)
        first = len(seen)
        for _ in range(2):
            with pytest.raises(WarehouseUnavailableError):
                dead.record_status(DOC)
    assert first >= 2, "the first call retried until the deadline"
    assert len(seen) == first, "later calls, past the deadline, tried once each"
    assert all(isinstance(r.caused_by, WarehouseUnavailableError) for r in seen)


def test_an_overwritten_original_cannot_replace_the_retained_one(warehouse):
    data = b"the scan as received"
    doc = hashlib.sha256(data).hexdigest()
    warehouse.put_original(doc, data, source_file="giay-khai-sinh.jpg")
    key = Warehouse.original_key(doc)
    # an attacker with S3 credentials writes over the key: S3 keeps the retained version ...
    warehouse.client.put_object(warehouse.bucket, key, __import__("io").BytesIO(b"forged"), 6)
    versions = [v for v in warehouse.client.list_objects(warehouse.bucket, prefix=key, include_version=True)]
    assert len(versions) == 2
    oldest = next(v for v in versions if v.size == len(data))  # the genuine, retained version
    with pytest.raises(S3Error):
        warehouse.client.remove_object(warehouse.bucket, key, version_id=oldest.version_id)
    # ... and the warehouse, content-addressed, still serves the genuine bytes
    assert warehouse.get_original(doc) == data


def test_a_request_caps_the_retries_of_the_calls_it_makes(warehouse_settings):
    """``sohoa serve``: a call made while answering a request retries at most the request budget
    (someone waits: 503 rather than a request held for the batch budget). The cap reaches the
    thread a sync endpoint runs in (the context is copied)."""
    from dataclasses import replace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pipeline.runtime.retry import RequestRetryBudget

    dead = Warehouse(replace(warehouse_settings, endpoint="127.0.0.1:9"),
                     retry_policy=RetryPolicy(budget_s=5.0, wait_initial_s=0.05, wait_max_s=0.05, wait_jitter_s=0))
    app = FastAPI()

    @app.get("/status")
    def status() -> dict:  # a sync endpoint: Starlette runs it in a worker thread
        with retries_seen() as seen:
            try:
                dead.record_status(DOC)
            except WarehouseUnavailableError:
                pass
        return {"retries": len(seen)}

    app.add_middleware(RequestRetryBudget, budget_s=0.3)
    with TestClient(app) as client:
        capped = client.get("/status").json()["retries"]
    assert 1 <= capped <= 8  # ~0.3 s of 0.05-s waits; uncapped, 5 s of them: ~100


def test_an_s3_error_without_a_code_is_a_typed_refusal_not_a_type_error():
    """An S3-compatible endpoint (or a proxy in front of one) may answer an XML error without
    ``<Code>``: minio's S3Error then has ``code=None``. The object-lock probe used to test
    ``"ObjectLock" in exc.code`` and died with a TypeError; it is a typed refusal like any other."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipeline.runtime.config import WarehouseSettings
    from pipeline.runtime.errors import WarehouseError

    body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Message>not here</Message></Error>'

    class NoCode(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoCode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = WarehouseSettings(endpoint=f"127.0.0.1:{server.server_address[1]}", access_key="k",
                                     secret_key="s" * 8, region="us-east-1")
        with pytest.raises(WarehouseError, match="S3 refused: None: not here"):
            Warehouse(settings, retry_policy=RetryPolicy(budget_s=1.0)).object_lock_enabled()
    finally:
        server.shutdown()
        server.server_close()
