"""Issue 19 (12a): SIGTERM (or SIGINT) to ``sohoa serve`` stops the embedded S3 server and signer
it started. Before, uvicorn re-raised the SIGTERM after its own graceful shutdown and the
default handler ended the process there, skipping the ``with`` blocks: SeaweedFS and the signer
(own sessions) lived on. A real ``sohoa serve`` process with a fresh SOHOA_HOME."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("uvicorn")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped by its vanished parent yet) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_the_embedded_services(tmp_path, sig):
    home = tmp_path / "home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env.update(SOHOA_HOME=str(home), OMP_THREAD_LIMIT="1")
    cmd = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())",
           "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "sohoa serve did not answer /healthz"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        s3_pid = int(json.loads((home / "s3" / "server.json").read_text())["pid"])
        signer_pid = int((home / "signer" / "signer.pid").read_text())
        pids = [s3_pid, signer_pid]
        assert all(_alive(p) for p in pids)

        proc.send_signal(sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in pids if _alive(p)]
        assert not left, f"still running after {sig.name}: {left}\n" + (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        assert proc.returncode in (0, 130), proc.returncode
        assert not (home / "s3" / "server.json").exists() and not (home / "signer" / "signer.pid").exists()
        assert not (home / "signer" / "service.json").exists()  # the supervisor's state file (issue 22)
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pids:  # never leave them behind, whatever the outcome
            if _alive(p):
                try:
                    os.killpg(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
