"""Fault tolerance on real processes (loopback only): a Dask worker killed, the S3 server
stopped, the signer stopped — mid-batch. Every input must end accounted for (ok,
needs_review or failed) in the warehouse, and every stored record must verify (nothing
half-written)."""

from __future__ import annotations

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

DOCUMENTS = 4


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory) -> Path:
    """Four one-page scans (150 dpi PNG) of synthetic administrative documents."""
    from samples.io import write_png
    from samples.render import render_document
    from samples.specs import synthetic_specs

    folder = tmp_path_factory.mktemp("fault-batch")
    for i, spec in enumerate(synthetic_specs(DOCUMENTS, seed=7)):
        write_png(render_document(spec, dpi=150)[0], folder / f"doc-{i}.png", dpi=150)
    return folder


@pytest.fixture
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, resources={"ocr": 1}, env={"OMP_THREAD_LIMIT": "1"},
                      dashboard_address=None) as lc, Client(lc) as client:
        yield client


def run_with_fault(folder: Path, settings: Settings, client, fault) -> list:
    """Run the batch in a thread; inject ``fault`` once the first document has finished."""
    first_done = threading.Event()
    result: dict = {}
    runner = BatchRunner(settings, DaskExecutor(client), Warehouse(settings.warehouse),
                         progress=lambda outcome: first_done.set())
    thread = threading.Thread(target=lambda: result.setdefault("summary", runner.run(iter_input_files([folder]))))
    thread.start()
    assert first_done.wait(300), "no document finished"
    fault()
    thread.join(600)
    assert not thread.is_alive(), "batch did not finish"
    return result["summary"].outcomes


def assert_all_accounted(outcomes, warehouse: Warehouse, anchors: list[bytes]) -> None:
    assert len(outcomes) == DOCUMENTS
    for outcome in outcomes:
        assert outcome.status in ("ok", "needs_review", "failed"), outcome
        data = warehouse.get_record_bytes(outcome.document_id)
        assert data is not None, f"{outcome.source_file}: no record in the warehouse"
        record = json.loads(data)
        assert record["status"] == outcome.status
        if record.get("signature"):
            report = verify_record_bytes(data, anchors)
            assert report.ok, (outcome.source_file, report.problems)
        else:  # only a failed record may stay unsigned (signer down), and it says so
            assert record["status"] == "failed" and "unsigned" in record["error"]["message"]


def test_a_worker_killed_mid_batch(small_batch, cluster, warehouse_settings, signer_service, tmp_path):
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings,
                        cluster=ClusterSettings(max_in_flight_documents=4))
    Warehouse(warehouse_settings).ensure_bucket()
    pids = cluster.run(os.getpid)

    def kill_a_worker():
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # the nanny starts a new one

    outcomes = run_with_fault(small_batch, settings, cluster, kill_a_worker)
    assert_all_accounted(outcomes, Warehouse(warehouse_settings), [signer_service.settings.trust_anchor.read_bytes()])
    assert sum(o.status != "failed" for o in outcomes) == DOCUMENTS  # rescheduled, not lost


def test_the_s3_server_stopped_mid_batch(small_batch, cluster, signer_service, tmp_path):
    from pipeline.embedded.s3server import EmbeddedS3

    s3 = EmbeddedS3(tmp_path / "s3-home", retention_days=1)
    wh_settings = s3.start()
    try:
        Warehouse(wh_settings).ensure_bucket()
        settings = Settings(home=tmp_path, warehouse=wh_settings, signer=signer_service.settings,
                            cluster=ClusterSettings(max_in_flight_documents=4))

        def outage():
            s3.stop()
            time.sleep(4)
            assert s3.start().endpoint == wh_settings.endpoint

        outcomes = run_with_fault(small_batch, settings, cluster, outage)
        assert_all_accounted(outcomes, Warehouse(wh_settings), [signer_service.settings.trust_anchor.read_bytes()])
        assert sum(o.status != "failed" for o in outcomes) == DOCUMENTS  # retried within the budget, not failed
    finally:
        s3.stop()


def test_the_signer_stopped_mid_batch(small_batch, cluster, warehouse_settings, tmp_path):
    from pipeline.embedded.signer.embedded import start_embedded_signer

    Warehouse(warehouse_settings).ensure_bucket()
    with start_embedded_signer(tmp_path / "signer") as signer:
        settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer.settings,
                            cluster=ClusterSettings(max_in_flight_documents=4))

        def outage():
            signer.stop()
            time.sleep(4)
            signer.start()

        outcomes = run_with_fault(small_batch, settings, cluster, outage)
        assert_all_accounted(outcomes, Warehouse(warehouse_settings), [signer.settings.trust_anchor.read_bytes()])
        assert sum(o.status != "failed" for o in outcomes) == DOCUMENTS  # retried, not failed
