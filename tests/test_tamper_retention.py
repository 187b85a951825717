"""Issue 19, item 4: the audit log and the record history cannot be rewritten or deleted with the
service's own S3 keys (compliance retention), and an overwritten audit entry is detected."""

from __future__ import annotations

import io
import json

import pytest
from minio.error import S3Error

from pipeline.warehouse.audit import Actor, AuditTamperedError, iter_audit, read_audit, write_audit

ACTOR = Actor(key_id="k1", unit="UBND-X", role="clerk")


def _versions(warehouse, key):
    return [o for o in warehouse.client.list_objects(warehouse.bucket, prefix=key, include_version=True)
            if o.object_name == key and not o.is_delete_marker]


def test_an_old_record_version_cannot_be_deleted_with_the_service_keys(warehouse):
    doc = "ab" + "0" * 62
    for n in range(5):
        warehouse.put_record(doc, json.dumps({"document_id": doc, "n": n}).encode(), status="ok")
    key = warehouse.record_key(doc)
    versions = _versions(warehouse, key)
    assert len(versions) == 5
    oldest = versions[-1]
    with pytest.raises(S3Error):
        warehouse.client.remove_object(warehouse.bucket, key, version_id=oldest.version_id)
    assert len(_versions(warehouse, key)) == 5
    assert json.loads(warehouse.get_record_bytes(doc, oldest.version_id))["n"] == 0


def _audit_keys(warehouse):
    return [o.object_name for o in warehouse.client.list_objects(warehouse.bucket, prefix="audit/", recursive=True)]


def test_an_audit_entry_cannot_be_deleted_with_the_service_keys(warehouse):
    write_audit(warehouse, ACTOR, "record.read", documents=["d1"])
    (key,) = _audit_keys(warehouse)
    (version,) = _versions(warehouse, key)
    with pytest.raises(S3Error):
        warehouse.client.remove_object(warehouse.bucket, key, version_id=version.version_id)
    assert len(_versions(warehouse, key)) == 1
    assert [e["action"] for e in iter_audit(warehouse)] == ["record.read"]


def test_an_overwritten_audit_entry_is_reported_as_tampered(warehouse):
    write_audit(warehouse, ACTOR, "record.read", documents=["d1"])
    write_audit(warehouse, ACTOR, "lookup", documents=["d2"])
    assert [e["action"] for e in iter_audit(warehouse)] == ["record.read", "lookup"]
    key = sorted(_audit_keys(warehouse))[0]
    warehouse.client.put_object(warehouse.bucket, key, io.BytesIO(b"{}"), 2)  # a new version, with the service keys

    with pytest.raises(AuditTamperedError) as caught:
        list(iter_audit(warehouse))
    assert [t.key for t in caught.value.tampered] == [key]

    log = read_audit(warehouse)
    assert [t.key for t in log.tampered] == [key] and "rewritten" in log.tampered[0].reason
    assert [e["action"] for e in log.entries] == ["record.read", "lookup"]  # the retained original, not {}
    assert {} not in log.entries


def test_an_audit_entry_whose_content_does_not_match_its_key_is_reported(warehouse):
    """A forged entry written under a key naming another content's hash (no earlier version)."""
    write_audit(warehouse, ACTOR, "record.read", documents=["d1"])
    (key,) = _audit_keys(warehouse)
    forged = key[: -len(".json") - 64] + "0" * 64 + ".json"
    warehouse.client.put_object(warehouse.bucket, forged, io.BytesIO(b'{"action": "nothing"}'), 21)
    log = read_audit(warehouse)
    assert [t.key for t in log.tampered] == [forged]
    assert "SHA-256" in log.tampered[0].reason
