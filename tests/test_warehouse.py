"""The warehouse on a real S3 server: write-once originals, versioned records, lookups."""

import pytest
from minio.error import S3Error

from pipeline.errors import WarehouseUnavailableError
from pipeline.retry import RetryPolicy
from pipeline.warehouse import Warehouse

import hashlib

DOC = "ab" + "0" * 62


def test_credentials_are_required(warehouse_settings, warehouse):
    from dataclasses import replace

    from pipeline.errors import WarehouseError

    intruder = Warehouse(replace(warehouse_settings, secret_key="wrong-secret"), retry_policy=RetryPolicy(attempts=1))
    with pytest.raises(WarehouseError):
        intruder.get_record(DOC)


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

    dead = Warehouse(replace(warehouse_settings, endpoint="127.0.0.1:9"), retry_policy=RetryPolicy(attempts=2, initial_delay_s=0.01))
    with pytest.raises(WarehouseUnavailableError, match="unreachable"):
        dead.record_status(DOC)


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
