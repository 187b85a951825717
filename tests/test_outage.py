"""Issue 22 item 3: an S3 outage in the middle of a batch fails nothing. Real processes: the
embedded SeaweedFS stopped for 60 s (connections refused), hung for 60 s (SIGSTOP: connections
accepted, never answered), or killed with SIGKILL (its supervisor restarts it), while a real
Dask cluster digitizes a small batch signed by the real signer.

Before, loading gave up after ~15 s of retries and storing after ~51 s, so a 30-s outage failed
the documents in flight, and a killed server stayed dead. Now one retry budget (180 s, the same
for every stage) rides it out: every input ends ok or needs_review, stored exactly once (one
original, one record version, nothing in the failed area)."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipeline.runtime.config import ClusterSettings, Settings
from pipeline.runtime.executor import DaskExecutor
from pipeline.runtime.inputs import iter_input_files
from pipeline.runtime.orchestrate import BatchRunner
from pipeline.signing.verify import verify_record_bytes
from pipeline.warehouse.layout import Warehouse

pytestmark = pytest.mark.slow

DOCUMENTS = 3
OUTAGE_S = 60.0


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory) -> Path:
    """Three one-page scans (120 dpi PNG) of synthetic administrative documents."""
    from samples.io import write_png
    from samples.render import render_document
    from samples.specs import synthetic_specs

    folder = tmp_path_factory.mktemp("outage-batch")
    for i, spec in enumerate(synthetic_specs(DOCUMENTS, seed=22)):
        write_png(render_document(spec, dpi=120)[0], folder / f"doc-{i}.png", dpi=120)
    return folder


@pytest.fixture
def client():  # one cluster a test: a failed test's tasks, still retrying, never hold up the next
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, resources={"ocr": 1}, env={"OMP_THREAD_LIMIT": "1"},
                      dashboard_address=None) as lc, Client(lc) as c:  # fmt: skip
        yield c


def _outage(kind: str, s3):
    """The fault, run once the first document is done; returns when S3 is back."""
    pid = s3.process.pid
    if kind == "refused":  # the server is gone for OUTAGE_S: every connection refused
        endpoint = s3.settings.endpoint
        s3.stop()
        time.sleep(OUTAGE_S)
        assert s3.start().endpoint == endpoint
    elif kind == "hung":  # the server hangs for OUTAGE_S: requests accepted, not answered
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(OUTAGE_S)
        finally:
            os.kill(pid, signal.SIGCONT)
    elif kind == "killed":  # the server crashes: its watchdog starts it again
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while s3.process is None or s3.process.pid == pid or s3.process.poll() is not None:
            assert time.monotonic() < deadline, "the S3 server was not restarted"
            time.sleep(0.1)


@pytest.mark.parametrize("kind", ["refused", "hung", "killed"])
def test_an_s3_outage_mid_batch_fails_nothing(kind, small_batch, client, signer_service, tmp_path):
    from pipeline.embedded.s3server import EmbeddedS3

    s3 = EmbeddedS3(tmp_path / "s3-home", retention_days=1)
    wh_settings = s3.start()
    try:
        warehouse = Warehouse(wh_settings)
        settings = Settings(home=tmp_path, warehouse=wh_settings, signer=signer_service.settings,
                            cluster=ClusterSettings(max_in_flight_documents=DOCUMENTS))  # fmt: skip
        first_done = threading.Event()
        finished_at: list[float] = []

        def progress(outcome):
            finished_at.append(time.monotonic())
            first_done.set()

        runner = BatchRunner(settings, DaskExecutor(client), warehouse, progress=progress)
        result: dict = {}
        thread = threading.Thread(target=lambda: result.setdefault("summary", runner.run(iter_input_files([small_batch]))))
        thread.start()
        assert first_done.wait(300), "no document finished"
        assert len(finished_at) < DOCUMENTS, "the batch ended before the fault: nothing was in flight"
        _outage(kind, s3)
        back = time.monotonic()
        thread.join(600)
        assert not thread.is_alive(), "batch did not finish"

        outcomes = result["summary"].outcomes
        assert len(outcomes) == DOCUMENTS
        assert [o.status for o in outcomes if o.status not in ("ok", "needs_review")] == [], [o.error for o in outcomes]
        assert any(t >= back - 1 for t in finished_at), "no document was in flight through the outage"
        anchors = [signer_service.settings.trust_anchor.read_bytes()]
        assert len({o.document_id for o in outcomes}) == DOCUMENTS
        for outcome in outcomes:  # stored exactly once
            assert warehouse.has_original(outcome.document_id)
            versions = warehouse.record_versions(outcome.document_id)
            assert len(versions) == 1, (outcome.source_file, versions)
            data = warehouse.get_record_bytes(outcome.document_id)
            assert json.loads(data)["status"] == outcome.status
            assert verify_record_bytes(data, anchors).ok
        assert list(warehouse.iter_failed()) == []
        if kind == "killed":
            state = json.loads((tmp_path / "s3-home" / "s3" / "server.json").read_text())
            assert state["restarts"] == 1 and state["restart_log"][0]["exit_code"] == -signal.SIGKILL
    finally:
        s3.stop()


def test_an_s3_input_is_read_through_an_outage_of_its_server(tmp_path):
    """`sohoa digitize s3://…` reads its inputs through the same retry layer as the warehouse:
    the input bucket's server gone for a few seconds (every connection refused) costs time, not
    the document (minio's own pool gave up after ~3 s of quick retries)."""
    from pipeline.embedded.s3server import EmbeddedS3
    from pipeline.runtime.inputs import iter_s3_inputs

    s3 = EmbeddedS3(tmp_path / "s3")
    s3.start()
    try:
        s = s3.settings
        s3.ensure_bucket("inputs")
        Warehouse(s).client.put_object("inputs", "scans/a.png", io.BytesIO(b"scan"), 4)
        (item,) = list(iter_s3_inputs(f"s3://{s.access_key}:{s.secret_key}@{s.endpoint}/inputs/scans/"))
        s3.stop()
        back = threading.Timer(8.0, s3.start)
        back.start()
        started = time.monotonic()
        assert item.read() == b"scan"
        assert time.monotonic() - started >= 7.0  # it waited for the server, and got the bytes
        back.join()
    finally:
        s3.stop()
