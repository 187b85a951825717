"""The object store under the warehouse (issue 21 item 5), on a real S3 server (SeaweedFS):
raw object operations behind the one retry boundary, typed errors, and the layout writing
through it."""

import hashlib
from dataclasses import replace

import pytest

from pipeline.runtime.errors import WarehouseError, WarehouseUnavailableError
from pipeline.runtime.retry import RetryPolicy
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.objects import ListedObject, ObjectStore, StoredObject


@pytest.fixture
def store(warehouse_settings):
    objects = ObjectStore(warehouse_settings)
    objects.ensure_bucket()
    return objects


def test_put_get_exists_list_round_trip(store):
    stored = store.put("a/one.json", b'{"n": 1}', "application/json", metadata={"status": "ok"})
    store.put("a/b/two.bin", b"\x00\x01", "application/octet-stream")
    assert isinstance(stored, StoredObject) and stored.key == "a/one.json" and stored.version_id
    assert store.get("a/one.json") == b'{"n": 1}'
    assert store.exists("a/one.json") and store.exists("a/b/two.bin")
    assert store.metadata("a/one.json")["x-amz-meta-status"] == "ok"
    assert sorted(store.list("a/")) == ["a/b/two.bin", "a/one.json"]
    assert sorted(store.list("a/", recursive=False)) == ["a/b/", "a/one.json"]  # one level: a "folder"
    listed = {o.key: o for o in store.objects("a/")}
    assert set(listed) == {"a/b/two.bin", "a/one.json"} and listed["a/b/two.bin"].size == 2
    assert listed["a/one.json"].etag and '"' not in listed["a/one.json"].etag


def test_a_missing_key_is_none_not_an_error(store):
    assert store.get("nowhere/missing.json") is None
    assert store.metadata("nowhere/missing.json") is None
    assert not store.exists("nowhere/missing.json")
    assert list(store.list("nowhere/")) == []
    assert store.versions("nowhere/") == []


def test_versions_are_listed_and_each_is_readable(store):
    first = store.put("v/key.json", b"1", "application/json")
    second = store.put("v/key.json", b"2", "application/json")
    versions = [v for v in store.versions("v/key.json") if v.key == "v/key.json"]
    assert {v.version_id for v in versions} == {first.version_id, second.version_id}
    assert all(isinstance(v, ListedObject) and not v.is_delete_marker for v in versions)
    assert store.get("v/key.json") == b"2"
    assert store.get("v/key.json", first.version_id) == b"1"
    store.remove("v/key.json")  # versioned bucket: a delete marker, the versions stay
    assert store.get("v/key.json") is None
    assert any(v.is_delete_marker for v in store.versions("v/key.json"))
    assert store.get("v/key.json", first.version_id) == b"1"


def test_remove_many_removes_every_key(store):
    keys = [f"many/{i:03d}" for i in range(5)]
    for key in keys:
        store.put(key, b"x", "application/octet-stream")
    store.remove_many(keys)
    assert list(store.list("many/")) == []


def test_bad_credentials_are_a_typed_refusal_not_a_minio_exception(warehouse_settings, store):
    from minio.error import S3Error

    intruder = ObjectStore(replace(warehouse_settings, secret_key="wrong-secret"),
                           retry_policy=RetryPolicy(budget_s=5.0, wait_initial_s=0.05, wait_max_s=0.1))
    for operation in (lambda: intruder.get("a/one.json"), lambda: intruder.put("a/x", b"x", "text/plain"),
                      lambda: intruder.exists("a/one.json"), lambda: list(intruder.list("a/"))):
        with pytest.raises(WarehouseError) as info:
            operation()
        assert not isinstance(info.value, WarehouseUnavailableError)  # a refusal: permanent, not retried
        assert not info.value.transient
        assert isinstance(info.value.__cause__, S3Error)  # mapped, the cause kept
    assert not store.exists("a/x")


def test_a_missing_bucket_is_a_typed_refusal(warehouse_settings):
    nobucket = ObjectStore(replace(warehouse_settings, bucket="no-such-bucket-here"),
                           retry_policy=RetryPolicy(budget_s=5.0, wait_initial_s=0.05, wait_max_s=0.1))
    with pytest.raises(WarehouseError, match="S3 refused") as info:
        nobucket.get("a/one.json")
    assert not isinstance(info.value, WarehouseUnavailableError)


def test_an_unreachable_endpoint_is_transient(warehouse_settings):
    dead = ObjectStore(replace(warehouse_settings, endpoint="127.0.0.1:9"),
                       retry_policy=RetryPolicy(budget_s=0.5, wait_initial_s=0.05, wait_max_s=0.1))
    with pytest.raises(WarehouseUnavailableError, match="unreachable"):
        dead.get("a/one.json")


def test_the_layout_writes_through_its_object_store(store):
    doc = hashlib.sha256(b"a scan").hexdigest()
    warehouse = Warehouse.over(store)
    assert warehouse.objects is store and warehouse.bucket == store.bucket and warehouse.client is store.client
    written = warehouse.put_record(doc, b'{"version": 1}', status="needs_review")
    assert written.key == f"records/{doc[:2]}/{doc}.json"
    assert store.get(written.key) == b'{"version": 1}'
    assert store.metadata(written.key)["x-amz-meta-status"] == "needs_review"
    assert warehouse.record_status(doc) == "needs_review"
    assert list(warehouse.iter_record_ids()) == [doc]
    warehouse.put_original(doc, b"a scan", source_file="scan.png")
    assert store.get(f"originals/{doc[:2]}/{doc}") == b"a scan"
    # write-once under compliance retention: the version cannot be removed, by the same keys
    version = next(v for v in store.versions(f"originals/{doc[:2]}/{doc}"))
    with pytest.raises(WarehouseError):
        store.remove(f"originals/{doc[:2]}/{doc}", version.version_id)
    assert warehouse.get_original(doc) == b"a scan"


def test_a_warehouse_made_from_settings_has_its_own_object_store(warehouse_settings):
    warehouse = Warehouse(warehouse_settings, retry_policy=RetryPolicy(budget_s=3.0))
    assert isinstance(warehouse.objects, ObjectStore)
    assert warehouse.retry_policy.budget_s == 3.0 and warehouse.objects.retry_policy is warehouse.retry_policy
    assert warehouse.settings is warehouse_settings and warehouse.objects.bucket == warehouse_settings.bucket
