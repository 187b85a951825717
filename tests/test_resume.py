"""A batch run from an S3 prefix, killed mid-way (SIGKILL, the whole process group) and
started again, finishes the rest: every input has exactly one record, nothing duplicated."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.warehouse.layout import Warehouse

pytestmark = pytest.mark.slow

DOCUMENTS = 4


@pytest.fixture
def inbox(s3_server, tmp_path):
    """An S3 prefix holding scans to digitize (the archive being migrated)."""
    import uuid

    from minio import Minio

    from samples.render import render_document
    from samples.specs import synthetic_specs

    s = s3_server.settings  # the service identity reads the inbox; the setup identity made it
    client = Minio(s.endpoint, access_key=s.access_key, secret_key=s.secret_key, secure=False)
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    setup = s3_server.setup_settings
    Minio(setup.endpoint, access_key=setup.access_key, secret_key=setup.secret_key, secure=False).make_bucket(bucket)
    for i, spec in enumerate(synthetic_specs(DOCUMENTS, seed=21)):
        buf = io.BytesIO()
        render_document(spec, dpi=150)[0].convert("L").save(buf, "PNG", dpi=(150, 150))
        client.put_object(bucket, f"archive/2019/doc-{i}.png", io.BytesIO(buf.getvalue()), len(buf.getvalue()))
    client.put_object(bucket, "archive/readme.txt", io.BytesIO(b"not a scan"), 10)  # ignored by suffix
    return f"s3://{s.access_key}:{s.secret_key}@{s.endpoint}/{bucket}/archive/"


def test_a_killed_batch_resumes_without_loss_or_duplicates(inbox, warehouse_settings, signer_service, tmp_path):
    w = warehouse_settings
    Warehouse(w).ensure_bucket()
    env = dict(
        os.environ,
        SOHOA_SIGNER_USER=signer_service.settings.username,
        SOHOA_SIGNER_PASSWORD=signer_service.settings.password,
        SOHOA_SIGNER_PIN=signer_service.settings.pin,
    )
    cmd = [sys.executable, "-m", "pipeline.cli", "digitize", inbox, "--home", str(tmp_path),
           "--warehouse", f"http://{w.access_key}:{w.secret_key}@{w.endpoint}/{w.bucket}",
           "--signer", signer_service.url, "--workers", "1", "--no-progress", "--json"]
    wh = Warehouse(w)

    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while sum(1 for _ in wh.iter_record_ids()) < 1:
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no record written by the first run"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    done_before = sum(1 for _ in wh.iter_record_ids())
    assert done_before < DOCUMENTS, "the first run finished before it could be killed"

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    summary = __import__("json").loads(second.stdout.strip().splitlines()[-1])
    assert summary["documents"] == DOCUMENTS
    assert summary["skipped"] >= done_before
    assert summary["failed"] == 0

    ids = list(wh.iter_record_ids())
    assert len(ids) == DOCUMENTS
    for doc in ids:
        assert len(wh.record_versions(doc)) == 1, "a document was stored twice"
        assert wh.get_record(doc)["status"] in ("ok", "needs_review")
