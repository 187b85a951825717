"""The Dask worker runtime: what the sohoa worker plugin does to a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PAGE_BYTES = 9_000_000  # a grey A4 page at 300 dpi


def _faults_to_allocate_a_page_again(times: int = 10) -> int:
    """Minor page faults taken to allocate and fill a page-sized buffer ``times`` more times
    (at least one a huge page where the kernel backs numpy's arrays with them)."""
    import resource

    import numpy as np

    first = np.ones(PAGE_BYTES, np.uint8)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        again = np.ones(PAGE_BYTES, np.uint8)
        del again
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.timeout(180)
def test_plugin_makes_a_worker_reuse_page_buffers_instead_of_faulting_them_in_again():
    """Under the Dask nanny's MALLOC_TRIM_THRESHOLD_ every page-sized array is a fresh mmap whose
    pages (4 KiB or 2 MiB) fault in again (load, deskew and clean-up then cost twice their CPU); with
    the plugin the heap keeps and reuses them."""
    from distributed import Client, LocalCluster

    from workers.plugin import SohoaWorkerPlugin

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"OMP_THREAD_LIMIT": "1"}) as cluster, Client(cluster) as client:  # fmt: skip
        # a fresh worker's first task grows its thread's heap: measure from the second
        client.submit(_faults_to_allocate_a_page_again, pure=False).result()
        untuned = client.submit(_faults_to_allocate_a_page_again, pure=False).result()
        client.register_plugin(SohoaWorkerPlugin())
        tuned = client.submit(_faults_to_allocate_a_page_again, pure=False).result()
    assert untuned >= 10 * (PAGE_BYTES // (2 << 20)), "the nanny's default malloc setting no longer applies"
    assert tuned <= 5


def _worker_state() -> dict:
    import sys

    import cv2
    import dask

    tesseract = sys.modules.get("pipeline._exec.tesseract")
    return {
        "opencv_threads": cv2.getNumThreads(),
        "profiler": dask.config.get("distributed.worker.profile.enabled"),
        "tick": dask.config.get("distributed.admin.tick.interval"),
        "memory_monitor": dask.config.get("distributed.worker.memory.monitor-interval"),
        "stages_imported": "pipeline.stages.deskew" in sys.modules and "pyhanko.sign.signers" in sys.modules,
        "line_images_as_pnm": tesseract.line_images_redirected() if tesseract else None,  # opt-in, off by default
    }


@pytest.mark.timeout(180)
def test_a_local_cluster_worker_is_ready_for_one_page_per_core_when_it_joins():
    """`sohoa digitize`'s LocalCluster: OpenCV runs in the task's thread only (its own pool would
    compete with the other workers for the cores), the statistical profiler no dashboard shows
    is off, the event loop checks its health and memory every 500 ms (not every 20 and 100 ms),
    the stages are imported and Tesseract is loaded, its memory not patched — before the first task."""
    import cv2

    from pipeline.runtime.config import ClusterSettings
    from pipeline.runtime.executor import dask_client

    assert cv2.getNumThreads() > 1 or cv2.getNumCPUs() == 1  # what a process gets by default
    with dask_client(ClusterSettings(n_workers=1)) as client:
        states = list(client.run(_worker_state).values())
    assert states == [{"opencv_threads": 1, "profiler": False, "tick": "500ms", "memory_monitor": "500ms",
                       "stages_imported": True, "line_images_as_pnm": False}]  # fmt: skip


# --- issue 22: a worker that lacks what the run needs is refused when it joins -------------------

DASK = str(Path(sys.executable).with_name("dask"))
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env.update(OMP_THREAD_LIMIT="1", PYTHONPATH=str(REPO), **extra)
    return env


def _start(args: list[str], log: Path, *, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _stop(procs: list[subprocess.Popen]) -> None:
    import signal

    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _workers(address: str) -> int:
    from distributed import Client

    with Client(address, timeout="20s") as c:
        return len(c.scheduler_info()["workers"])


def _wait_workers(address: str, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while _workers(address) != n:
        assert time.monotonic() < deadline, f"{n} worker(s) expected at {address}"
        time.sleep(0.5)


def _worker(address: str, log: Path, cwd: Path, **env: str) -> subprocess.Popen:
    return _start([DASK, "worker", address, "--nthreads", "1", "--resources", "ocr=1", "--no-dashboard",
                   "--preload", "workers.preload"], log, cwd=cwd, env=_env(**env))  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_real_worker_without_what_the_run_needs_is_refused_when_it_joins(tmp_path, monkeypatch):
    """Real `dask scheduler` and `dask worker --preload workers.preload` processes. (1) A worker
    whose environment names a key ring it does not have exits at start with the reason and never
    joins. (2) A run whose key ring has a legacy symmetric current key needs the ring on every
    worker: a worker without it (another host: here, another working directory for the same
    relative path) is refused by the plugin — the driver gets the reason before any document, a
    worker joining later leaves by itself. (3) With a public-key ring the same worker joins: it
    gets the encryption ring with the run's settings and can encrypt, not decrypt."""
    from pipeline.records.pii import KeyRing
    from pipeline.runtime.config import ClusterSettings, Settings
    from pipeline.runtime.executor import dask_client
    from workers.plugin import WorkerRefused

    has_ring, no_ring = tmp_path / "host-a", tmp_path / "host-b"
    (has_ring / "pii").mkdir(parents=True)
    no_ring.mkdir()
    legacy = KeyRing(current_kid="k20200101-00000000", keys={"k20200101-00000000": os.urandom(32)})
    legacy.save(has_ring / "pii" / "keyring.json")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                     "127.0.0.1:0"], tmp_path / "scheduler.log", cwd=tmp_path, env=_env())]  # fmt: skip
    try:
        # (1) refused at start: exits, with the reason in its log, and never registers
        lacking = _worker(address, tmp_path / "w0.log", no_ring, SOHOA_PII_KEYRING=str(no_ring / "missing.json"))
        procs.append(lacking)
        assert lacking.wait(timeout=90) != 0
        log0 = (tmp_path / "w0.log").read_text()
        assert "refused: PII key ring not found" in log0 and str(no_ring / "missing.json") in log0
        assert "Registered to" not in log0

        procs.append(_worker(address, tmp_path / "wa.log", has_ring))
        _wait_workers(address, 1)
        monkeypatch.chdir(has_ring)  # the driver's host has the ring at pii/keyring.json
        settings = Settings(home=tmp_path, pii_keyring=Path("pii/keyring.json"))
        cluster = ClusterSettings(scheduler_address=address)
        with dask_client(cluster, settings) as client:  # (2) every worker has it: accepted
            late = _worker(address, tmp_path / "wb.log", no_ring)
            procs.append(late)
            assert late.wait(timeout=90) is not None  # a later joiner without it leaves by itself
            assert len(client.scheduler_info()["workers"]) == 1
        log_b = (tmp_path / "wb.log").read_text()
        assert "refused: PII key ring not found: pii/keyring.json" in log_b and "symmetric current key" in log_b

        procs.append(_worker(address, tmp_path / "wc.log", no_ring))
        _wait_workers(address, 2)
        with pytest.raises(WorkerRefused, match="PII key ring not found: pii/keyring.json"), dask_client(cluster, settings):
            pytest.fail("the run must not start with a worker that cannot encrypt")
        assert procs[-1].wait(timeout=60) is not None
        _wait_workers(address, 1)

        # (3) a public-key ring: the worker without any key file joins and cannot decrypt
        ring = KeyRing.load(Path("pii/keyring.json"))
        ring.rotate()
        ring.save(Path("pii/keyring.json"))
        procs.append(_worker(address, tmp_path / "wd.log", no_ring))
        _wait_workers(address, 2)
        with dask_client(cluster, settings) as client:
            from pipeline.runtime.orchestrate import task_settings

            shipped = task_settings(settings)
            from pipeline.records.pii import writer_keyring  # what the worker's runtime uses

            rings = client.run(writer_keyring, shipped.pii_keyring, shipped.pii_encryption)
        # the worker in host-a reads the full ring it has; the one in host-b gets the public part
        assert sorted((r.current_kid, r.can_decrypt) for r in rings.values()) == [
            (ring.current_kid, False), (ring.current_kid, True)]  # fmt: skip
    finally:
        _stop(procs)


@pytest.mark.timeout(180)
def test_the_local_cluster_serves_no_http():
    """`sohoa digitize`'s LocalCluster has no dashboard, and Dask's HTTP listeners (which it opens
    whatever the dashboard setting: /info pages listing the workers, /metrics, /health) answer
    nothing; the scheduler's is on a loopback port, not 8787 (a deployment's dashboard port)."""
    import urllib.error
    import urllib.request

    from pipeline.runtime.config import ClusterSettings
    from pipeline.runtime.executor import dask_client

    def get(host: str, port: int, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with dask_client(ClusterSettings(n_workers=1)) as client:
        scheduler = [s.getsockname()[:2] for s in client.cluster.scheduler.http_server._sockets.values()]
        workers = client.run(lambda dask_worker: [s.getsockname()[:2] for s in dask_worker.http_server._sockets.values()])
        listeners = scheduler + [addr for addrs in workers.values() for addr in addrs]
        assert scheduler and all(host == "127.0.0.1" for host, _ in listeners)
        assert 8787 not in [port for _, port in scheduler]
        for host, port in listeners:
            for path in ("/health", "/metrics", "/info/main/workers.html", "/status", "/"):
                assert get(host, port, path) == 404, (host, port, path)


def test_a_remote_scheduler_with_services_on_loopback_is_warned_about():
    from pipeline.runtime.config import (
        ClusterSettings,
        Settings,
        SignerSettings,
        WarehouseSettings,
    )
    from pipeline.runtime.orchestrate import remote_scheduler_warnings

    local_s3 = WarehouseSettings(endpoint="127.0.0.1:9000", access_key="k", secret_key="s")
    local_signer = SignerSettings(url="http://localhost:8700", username="u", password="p")
    remote = ClusterSettings(scheduler_address="tcp://10.1.2.3:8786")
    both = remote_scheduler_warnings(Settings(home=Path("/x"), warehouse=local_s3, signer=local_signer, cluster=remote))
    assert len(both) == 2 and "127.0.0.1:9000" in both[0] and "localhost:8700" in both[1]
    lan_s3 = WarehouseSettings(endpoint="s3.lan:8333", access_key="k", secret_key="s")
    only_signer = remote_scheduler_warnings(Settings(home=Path("/x"), warehouse=lan_s3, signer=local_signer, cluster=remote))
    assert len(only_signer) == 1 and "signer" in only_signer[0]
    for cluster in (ClusterSettings(), ClusterSettings(scheduler_address="tcp://127.0.0.1:8786"),
                    ClusterSettings(scheduler_address="localhost:8786")):  # fmt: skip
        assert remote_scheduler_warnings(Settings(home=Path("/x"), warehouse=local_s3, signer=local_signer, cluster=cluster)) == []
