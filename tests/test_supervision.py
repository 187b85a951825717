"""Issue 22 item 2 (and the restart half of item 3): the embedded S3 server and signer are
supervised. Real processes throughout: ``sohoa digitize`` killed with SIGKILL, SeaweedFS and the
signer killed with SIGKILL, leftovers of an owner that died; ``sohoa services status|stop``.

Before, a driver killed with ``kill -9`` left both services running for ever (parent 1), the next
run reused the orphaned S3 server without owning it (so nothing ever stopped it) and started a
second signer beside the orphaned one, and a service that died stayed dead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOHOA = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped yet) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env.update(SOHOA_HOME=str(home), OMP_THREAD_LIMIT="1")
    return env


def _sohoa(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*SOHOA, *args], env=_env(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _status(home: Path) -> list[dict]:
    done = _sohoa(home, "services", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _kill_all(pids) -> None:
    for pid in pids:
        if pid and _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def one_scan(tmp_path_factory) -> Path:
    from samples.io import write_png
    from samples.render import render_document
    from samples.specs import synthetic_specs

    folder = tmp_path_factory.mktemp("supervision-scan")
    (spec,) = synthetic_specs(1, seed=22)
    write_png(render_document(spec, dpi=100)[0], folder / "doc.png", dpi=100)
    return folder


def test_a_driver_killed_with_sigkill_leaves_no_service_behind(tmp_path, one_scan):
    home = tmp_path / "home"
    log = open(tmp_path / "digitize.log", "wb")
    cmd = [*SOHOA, "digitize", str(one_scan), "--workers", "1", "--no-progress"]
    driver = subprocess.Popen(cmd, env=_env(home), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    pids: list[int] = []
    try:
        def services_up():
            s3, signer = _json(home / "s3" / "server.json"), _json(home / "signer" / "service.json")
            assert driver.poll() is None, (tmp_path / "digitize.log").read_text(errors="replace")[-3000:]
            return (s3, signer) if s3 and signer else None

        s3, signer = _wait(services_up, 120, "the embedded services of `sohoa digitize`")
        pids = [s3["pid"], signer["pid"]]
        assert s3["owner_pid"] == signer["owner_pid"] == driver.pid
        assert all(_alive(p) for p in pids)
        assert s3["data_dir"] == str(home / "s3" / "data") and s3["endpoint"].endswith(f":{s3['port']}")

        driver.kill()  # SIGKILL: no handler, no `finally`, no atexit
        driver.wait(30)
        # the kernel sends the death signal to both at once (PR_SET_PDEATHSIG)
        _wait(lambda: not any(_alive(p) for p in pids), 20, f"services {pids} to end with their owner")

        # the next command finds nothing left running, and nothing to stop
        assert [s for s in _status(home) if s["state"] != "none"] == []
        stopped = _sohoa(home, "services", "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    finally:
        log.close()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        _kill_all(pids)


def _orphan_script(home: Path) -> str:
    """A command of a version before supervision: its services carry no death signal, and it
    exits without stopping them (as a SIGKILL did), so they outlive it."""
    return f"""
import os
import pipeline.embedded.supervise as supervise
import pipeline.embedded.s3server as s3server
supervise.die_with_parent = s3server.die_with_parent = lambda *a, **k: None
from pathlib import Path
from pipeline.embedded.s3server import EmbeddedS3
from pipeline.embedded.signer.embedded import EmbeddedSigner
from pipeline.warehouse.layout import Warehouse
home = Path({str(home)!r})
s3 = EmbeddedS3(home, retention_days=1)
Warehouse(s3.start()).put_pdf("ab" * 32, b"%PDF-1.7 written before")
EmbeddedSigner(home / "signer").start()
os._exit(0)
"""


def test_services_left_by_a_dead_owner_are_replaced_and_stopped(tmp_path):
    from pipeline.embedded.s3server import EmbeddedS3
    from pipeline.warehouse.layout import Warehouse

    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", _orphan_script(home)], env=_env(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    old_s3 = _json(home / "s3" / "server.json")["pid"]
    old_signer = int((home / "signer" / "signer.pid").read_text())
    server = None
    try:
        assert _alive(old_s3) and _alive(old_signer)  # the orphans this issue is about
        states = {s["service"]: s["state"] for s in _status(home)}
        assert states == {"s3": "orphan", "signer": "orphan"}

        # the next run stops the orphaned S3 server and starts its own on the same data
        server = EmbeddedS3(home, retention_days=1)
        settings = server.start()
        assert server.owner and not _alive(old_s3)
        info = _json(home / "s3" / "server.json")
        assert info["pid"] == server.process.pid and info["owner_pid"] == os.getpid()
        assert Warehouse(settings).get_pdf("ab" * 32) == b"%PDF-1.7 written before"  # same data directory

        # `sohoa services stop` ends the orphaned signer; the S3 server, owned by this live
        # process, is refused without --force
        stop = _sohoa(home, "services", "stop")
        assert not _alive(old_signer), stop.stdout
        assert stop.returncode == 1 and f"belongs to running pid {os.getpid()}" in stop.stdout
        assert _alive(server.process.pid)
        assert not (home / "signer" / "signer.pid").exists()
    finally:
        if server is not None:
            server.stop()
        _kill_all([old_s3, old_signer])
    assert [s for s in _status(home) if s["state"] != "none"] == []


def test_a_second_command_uses_the_running_server_and_never_stops_it(tmp_path):
    from pipeline.embedded.s3server import EmbeddedS3

    first = EmbeddedS3(tmp_path, retention_days=1)
    first.start()
    try:
        second = EmbeddedS3(tmp_path, retention_days=1)
        assert second.start().endpoint == first.settings.endpoint
        assert not second.owner and second.process is None  # one server on the data directory
        second.stop()
        assert _alive(first.process.pid)
        (svc,) = [s for s in _status(tmp_path) if s["service"] == "s3"]
        assert svc["state"] == "owned" and svc["owner_pid"] == os.getpid()
    finally:
        first.stop()
    assert not (tmp_path / "s3" / "server.json").exists()


def test_the_watchdog_restarts_a_service_that_died_and_records_it(tmp_path):
    from pipeline.embedded.services import running_services
    from pipeline.runtime.config import Settings
    from pipeline.signing.sign import RemoteSigner
    from pipeline.warehouse.layout import Warehouse

    home = tmp_path / "home"
    with running_services(Settings(home=home)) as settings:
        warehouse = Warehouse(settings.warehouse)
        warehouse.put_pdf("cd" * 32, b"%PDF-1.7 before the crash")
        s3, signer = _json(home / "s3" / "server.json"), _json(home / "signer" / "service.json")
        assert s3["restarts"] == signer["restarts"] == 0
        os.kill(s3["pid"], signal.SIGKILL)
        os.kill(signer["pid"], signal.SIGKILL)

        def restarted(path: Path, old: dict):
            info = _json(path)
            return info if info and info["restarts"] == 1 and info["pid"] != old["pid"] else None

        s3_after = _wait(lambda: restarted(home / "s3" / "server.json", s3), 60, "the S3 server's restart")
        signer_after = _wait(lambda: restarted(home / "signer" / "service.json", signer), 60, "the signer's restart")
        assert _alive(s3_after["pid"]) and _alive(signer_after["pid"])
        assert (s3_after["endpoint"], s3_after["data_dir"]) == (s3["endpoint"], s3["data_dir"])
        assert signer_after["url"] == signer["url"]
        assert s3_after["restart_log"][-1]["exit_code"] == -signal.SIGKILL
        # the clients built before the crash go on: same endpoint, same data, same signing key
        assert warehouse.get_pdf("cd" * 32) == b"%PDF-1.7 before the crash"
        record = RemoteSigner(settings.signer).sign_record({"document_id": "x", "fields": {}})
        assert record["signature"]["value"]
        states = {s["service"]: s for s in _status(home)}
        assert states["s3"]["state"] == states["signer"]["state"] == "owned"
        pids = [s3_after["pid"], signer_after["pid"]]
    _wait(lambda: not any(_alive(p) for p in pids), 20, "the services to stop with their owner's `with`")
    assert not (home / "s3" / "server.json").exists() and not (home / "signer" / "service.json").exists()


def test_a_command_using_a_killed_commands_server_takes_it_over(tmp_path):
    """``sohoa export`` works on the server of a ``sohoa serve`` that is killed: the server dies
    with its owner, and the command that used it starts it again (same ports, same data)."""
    from pipeline.embedded.s3server import EmbeddedS3
    from pipeline.warehouse.layout import Warehouse

    owner_script = (f"import time; from pathlib import Path; from pipeline.embedded.s3server import EmbeddedS3; "
                    f"EmbeddedS3(Path({str(tmp_path)!r}), retention_days=1).start(); print('up', flush=True); "
                    f"time.sleep(600)")
    owner = subprocess.Popen([sys.executable, "-c", owner_script], env=_env(tmp_path), cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    user = EmbeddedS3(tmp_path, retention_days=1)
    old = None
    try:
        assert owner.stdout.readline().strip() == "up"
        settings = user.start()
        assert not user.owner
        old = _json(tmp_path / "s3" / "server.json")["pid"]
        Warehouse(settings).put_pdf("ef" * 32, b"%PDF-1.7 kept")
        owner.kill()  # SIGKILL: its server ends with it (PR_SET_PDEATHSIG), its state file stays
        owner.wait()
        _wait(lambda: user.owner and user.process and _alive(user.process.pid), 60, "the take-over")
        assert not _alive(old)
        info = _json(tmp_path / "s3" / "server.json")
        assert info["owner_pid"] == os.getpid() and info["pid"] == user.process.pid
        assert info["endpoint"] == settings.endpoint  # same ports: the clients go on
        assert Warehouse(settings).get_pdf("ef" * 32) == b"%PDF-1.7 kept"
    finally:
        user.stop()
        if owner.poll() is None:
            owner.kill()
        _kill_all([old])
    assert not (tmp_path / "s3" / "server.json").exists()


def test_a_server_stopped_on_purpose_is_not_started_again_by_its_users(tmp_path):
    from pipeline.embedded.s3server import EmbeddedS3

    first = EmbeddedS3(tmp_path, retention_days=1)
    first.start()
    second = EmbeddedS3(tmp_path, retention_days=1)
    try:
        second.start()
        first.stop()
        time.sleep(2)  # four watchdog rounds
        assert not second.owner and second.process is None
        assert not (tmp_path / "s3" / "server.json").exists()
    finally:
        second.stop()
        first.stop()
