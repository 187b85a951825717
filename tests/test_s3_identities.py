"""The embedded S3 server's two identities (issue 19, item 4): the setup identity (Admin) only
creates the bucket; the service identity, which everything else uses, writes and reads objects
with retention but cannot delete the bucket, change its versioning or Object Lock configuration,
shorten or lift an object's COMPLIANCE retention, or delete a retained version.

SeaweedFS checks DeleteObject against the same "Write" action as PutObject, so the service can
still delete objects without retention (page images, indexes, catalog deltas): asserted below
so that a change in SeaweedFS shows up here."""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import Retention
from minio.versioningconfig import SUSPENDED, VersioningConfig

from pipeline.embedded.s3server import SERVICE_ACTIONS
from pipeline.runtime.errors import WarehouseError
from pipeline.warehouse.layout import Warehouse


def _client(settings) -> Minio:
    return Minio(settings.endpoint, access_key=settings.access_key, secret_key=settings.secret_key, secure=False)


def _refused(fn) -> S3Error:
    with pytest.raises(S3Error) as info:
        fn()
    return info.value


@pytest.fixture
def bucket(s3_server):
    name = f"id-{uuid.uuid4().hex[:12]}"
    s3_server.ensure_bucket(name)
    return name


@pytest.fixture
def service(s3_server) -> Minio:
    return _client(s3_server.settings)


def _put_retained(client: Minio, bucket: str, key: str, days: int = 1):
    until = (datetime.now(UTC) + timedelta(days=days)).replace(tzinfo=None)
    return client.put_object(bucket, key, io.BytesIO(b"original"), 8, retention=Retention(COMPLIANCE, until))


def test_the_service_identity_has_no_admin_and_differs_from_the_setup_identity(s3_server):
    assert "Admin" not in SERVICE_ACTIONS
    assert s3_server.settings.access_key != s3_server.setup_settings.access_key
    assert s3_server.settings.secret_key != s3_server.setup_settings.secret_key
    config = (s3_server.root / "s3-identities.json").read_text()
    assert s3_server.settings.access_key in config and s3_server.setup_settings.access_key in config


def test_the_service_identity_writes_reads_and_lists_with_retention(service, bucket):
    result = _put_retained(service, bucket, "originals/aa/doc")
    assert result.version_id
    assert service.get_object(bucket, "originals/aa/doc").read() == b"original"
    assert [o.object_name for o in service.list_objects(bucket, prefix="originals/", recursive=True)] == [
        "originals/aa/doc"
    ]
    retention = service.get_object_retention(bucket, "originals/aa/doc", version_id=result.version_id)
    assert retention.mode == COMPLIANCE
    service.get_object_lock_config(bucket)  # readable: the warehouse checks the lock is on


def test_the_service_identity_cannot_create_or_delete_buckets(service, bucket):
    assert _refused(lambda: service.make_bucket(f"id-{uuid.uuid4().hex[:12]}", object_lock=True)).code == "AccessDenied"
    assert _refused(lambda: service.remove_bucket(bucket)).code == "AccessDenied"
    assert service.bucket_exists(bucket)


def test_the_service_identity_cannot_change_versioning_or_object_lock(service, bucket):
    _refused(lambda: service.set_bucket_versioning(bucket, VersioningConfig(SUSPENDED)))
    assert service.get_bucket_versioning(bucket).status == ENABLED
    _refused(lambda: service.set_object_lock_config(bucket, ObjectLockConfig(GOVERNANCE, 1, DAYS)))
    _refused(lambda: service.delete_object_lock_config(bucket))
    service.get_object_lock_config(bucket)  # still there


def test_the_service_identity_cannot_shorten_or_lift_compliance_retention(service, bucket):
    version = _put_retained(service, bucket, "records/aa/doc.json", days=2).version_id
    earlier = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)
    _refused(lambda: service.set_object_retention(bucket, "records/aa/doc.json", Retention(COMPLIANCE, earlier),
                                                  version_id=version))
    _refused(lambda: service.set_object_retention(bucket, "records/aa/doc.json", Retention(GOVERNANCE, earlier),
                                                  version_id=version))
    # the governance bypass header changes nothing for the service identity
    def bypass():
        service._execute(
            "DELETE", bucket, "records/aa/doc.json", query_params={"versionId": version},
            headers={"x-amz-bypass-governance-retention": "true"},
        )
    _refused(bypass)
    retention = service.get_object_retention(bucket, "records/aa/doc.json", version_id=version)
    assert retention.mode == COMPLIANCE
    assert retention.retain_until_date > datetime.now(UTC) + timedelta(days=1)


def test_the_service_identity_cannot_delete_a_retained_version(service, bucket):
    version = _put_retained(service, bucket, "audit/entry").version_id
    _refused(lambda: service.remove_object(bucket, "audit/entry", version_id=version))
    errors = list(service.remove_objects(bucket, [DeleteObject("audit/entry", version)]))
    assert errors, "a batch delete removed a retained version"
    assert service.get_object(bucket, "audit/entry", version_id=version).read() == b"original"


def test_what_the_service_identity_can_still_delete(service, bucket):
    """Known gap: "Write" covers DeleteObject in SeaweedFS, so unretained objects can go."""
    service.put_object(bucket, "pages/aa/doc/0001.jpg", io.BytesIO(b"jpeg"), 4)
    service.remove_object(bucket, "pages/aa/doc/0001.jpg")
    assert not list(service.list_objects(bucket, prefix="pages/", recursive=True))
    # a plain delete of a retained object adds a delete marker: the version itself stays
    version = _put_retained(service, bucket, "originals/aa/doc").version_id
    service.remove_object(bucket, "originals/aa/doc")
    assert not list(service.list_objects(bucket, prefix="originals/", recursive=True))
    assert service.get_object(bucket, "originals/aa/doc", version_id=version).read() == b"original"


def test_the_warehouse_as_the_service_cannot_make_its_own_bucket(s3_server):
    settings = replace(s3_server.settings, bucket=f"id-{uuid.uuid4().hex[:12]}")
    with pytest.raises(WarehouseError):
        Warehouse(settings).ensure_bucket()
    s3_server.ensure_bucket(settings.bucket)
    Warehouse(settings).ensure_bucket()  # an existing bucket: checks only


def test_a_state_from_before_the_setup_identity_keeps_its_service_keys(tmp_path):
    import json
    import os

    from pipeline.embedded.s3server import EmbeddedS3

    (tmp_path / "s3").mkdir(mode=0o700)
    old = {"access_key": "sohoa-0123456789ab", "secret_key": "s" * 43}
    (tmp_path / "s3" / "credentials.json").write_text(json.dumps(old))
    with EmbeddedS3(tmp_path) as server:
        assert (server.settings.access_key, server.settings.secret_key) == (old["access_key"], old["secret_key"])
        assert server.setup_settings.access_key.startswith("sohoa-setup-")
        assert _client(server.settings).bucket_exists(server.bucket)  # made by the setup identity
        _refused(lambda: _client(server.settings).remove_bucket(server.bucket))
    assert os.stat(tmp_path / "s3" / "credentials.json").st_mode & 0o777 == 0o600


def test_a_configured_warehouse_without_its_bucket_is_a_clear_configuration_error(s3_server, tmp_path):
    from pipeline.embedded.services import running_services
    from pipeline.runtime.config import Settings
    from pipeline.runtime.errors import ConfigurationError

    settings = Settings(home=tmp_path / "home", warehouse=replace(s3_server.settings, bucket=f"id-{uuid.uuid4().hex[:12]}"))
    with pytest.raises(ConfigurationError, match="setup identity"):
        with running_services(settings, need_signer=False):
            pass
