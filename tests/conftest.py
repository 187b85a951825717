"""Shared fixtures: real services on loopback (SeaweedFS, the CSC signer, a Dask LocalCluster)."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS ``weed mini``) on 127.0.0.1 with generated credentials.

    ``server.settings`` is the service identity (no Admin: it cannot create buckets);
    ``server.ensure_bucket(name)`` creates a bucket as the setup identity, as a deployment's
    bucket-setup step does."""
    from pipeline.embedded.s3server import EmbeddedS3

    server = EmbeddedS3(tmp_path_factory.mktemp("sohoa-s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def warehouse_settings(s3_server):
    """Service-identity settings for a fresh bucket (object lock on, 1-day retention) for one
    test; the bucket is made by the setup identity."""
    settings = replace(s3_server.settings, bucket=f"t-{uuid.uuid4().hex[:12]}", retention_days=1)
    s3_server.ensure_bucket(settings.bucket)
    return settings


@pytest.fixture
def warehouse(warehouse_settings):
    from pipeline.warehouse.layout import Warehouse

    wh = Warehouse(warehouse_settings)
    wh.ensure_bucket()
    return wh


@pytest.fixture(scope="session")
def signer_service(tmp_path_factory):
    """The real CSC signing service over HTTP on loopback."""
    from pipeline.embedded.signer.embedded import start_embedded_signer

    with start_embedded_signer(tmp_path_factory.mktemp("sohoa-signer")) as signer:
        yield signer


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask LocalCluster: two single-threaded worker processes with OMP_THREAD_LIMIT=1."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        resources={"ocr": 1},
        env={"OMP_THREAD_LIMIT": "1"},
        dashboard_address=None,
    )
    yield cluster
    cluster.close()
