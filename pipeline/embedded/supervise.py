"""Supervision of the embedded services (issue 22, items 2 and 3): SeaweedFS and the signer.

Before, a driver killed with ``kill -9`` left its embedded S3 server and signer running for ever
(their parent became pid 1); the next run reused the orphaned S3 server without owning it, so
nothing ever stopped it, and started a second signer beside the orphaned one. Now:

* **they die with their owner**: each is spawned with ``prctl(PR_SET_PDEATHSIG, SIGTERM)``
  (:func:`die_with_parent`), so the kernel ends it when the thread that spawned it dies, however
  the owner died (``kill -9`` included);
* **a state file** (``<home>/s3/server.json``, ``<home>/signer/service.json``) records the service's
  pid and its start time (a reused pid is not taken for it), its port, its data directory, the
  owner's pid and start time, when it started and its restarts. A later command that finds a live
  service whose owner is alive uses it (not its own: it never stops it); one whose owner is dead
  (an orphan of an older version, or one a failed ``prctl`` left) is stopped and replaced, under
  a lock (``supervisor.lock``), so that two servers never run on one data directory;
* **a watchdog** thread in the owner (:class:`Watchdog`) restarts a service that died, on the same
  port and data directory, and records the restart in the state file;
* ``sohoa services status|stop`` (:func:`register`) shows them and ends those left without owner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("sohoa.supervise")

PR_SET_PDEATHSIG = 1
#: the signal a service gets when its owner dies: SIGTERM, so that it shuts down cleanly
DEATH_SIGNAL = signal.SIGTERM
#: how often the watchdog looks at its service
WATCHDOG_INTERVAL_S = 0.5

_libc = None


def _prctl():
    """libc's ``prctl``, resolved before any fork (nothing is loaded in the child)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc.prctl


def die_with_parent(sig: int = DEATH_SIGNAL) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when the thread that
    spawned it dies (Linux ``PR_SET_PDEATHSIG``; kept across ``execve`` of a non-setuid program).
    Should the parent be gone already between fork and prctl, the child exits at once."""
    prctl = _prctl()
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the owner died before the prctl took effect
            os._exit(1)

    return preexec


# --- processes --------------------------------------------------------------------------


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), None when
    there is no such process: with the pid it names one process, never a later one that reuses
    the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie: exited, not reaped yet
        return None
    return int(fields[19])


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int | None, start: int | None = None) -> bool:
    """``pid`` runs (not a zombie), and is the process that started at ``start`` when given."""
    if not pid or pid <= 0:
        return False
    now = process_start(pid)
    return now is not None and (start is None or now == start)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def terminate(pid: int, *, timeout_s: float = 15.0) -> bool:
    """SIGTERM (and SIGCONT: a stopped process would never act on it), then SIGKILL after
    ``timeout_s``. True when the process is gone. A process in its own group is ended with it."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        time.sleep(0.05)
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return not alive(pid)


# --- state files ------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Atomic, 0600 (the state names the data directory of personal documents)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def owner_fields() -> dict[str, Any]:
    """This process as the owner of a service."""
    return {"owner_pid": os.getpid(), "owner_start": process_start(os.getpid())}


def classify(info: dict[str, Any] | None, matches: Callable[[int], bool]) -> str:
    """What a state file describes: ``none`` (no live service), ``owned`` (service and owner alive),
    ``orphan`` (service alive, owner dead or unknown), ``restarting`` (service dead, owner alive:
    its watchdog restarts it). ``matches(pid)``: the pid really is that service (its command line)."""
    if not info:
        return "none"
    pid = int(info.get("pid") or 0)
    service_up = alive(pid, info.get("pid_start")) and matches(pid)
    if "owner_pid" in info:
        owner_up = alive(int(info.get("owner_pid") or 0), info.get("owner_start"))
    else:  # a state file of a version before supervision: the owner is the parent, if not init
        owner_up = service_up and (parent_pid(pid) or 1) > 1
    if service_up:
        return "owned" if owner_up else "orphan"
    return "restarting" if owner_up and info.get("watchdog") else "none"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock (flock) on ``path``: one process at a time checks and starts a service."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class Watchdog:
    """A daemon thread in the owner: every :data:`WATCHDOG_INTERVAL_S`, ``dead()``? then
    ``restart()``. The services it restarts are spawned from this thread, so they die with it
    (PR_SET_PDEATHSIG follows the spawning thread): :meth:`stop` it only when stopping them."""

    def __init__(self, name: str, dead: Callable[[], bool], restart: Callable[[], None]):
        self.name = name
        self._dead = dead
        self._restart = restart
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sohoa-watchdog-{name}", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.wait(WATCHDOG_INTERVAL_S):
            try:
                if self._dead() and not self._stop.is_set():
                    log.warning("embedded %s died: restarting it", self.name)
                    self._restart()
                    backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - keep watching; try again a little later
                log.warning("embedded %s: restart failed (%s); trying again in %.0f s", self.name, exc, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 30.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=120)


# --- sohoa services status | stop ---------------------------------------------------------


def _s3_matches(home: Path) -> Callable[[int], bool]:
    data_dir = str(Path(home) / "s3" / "data")
    return lambda pid: any(a == f"-dir={data_dir}" for a in cmdline(pid))


def _signer_matches(home: Path) -> Callable[[int], bool]:
    state_dir = str(Path(home) / "signer")

    def matches(pid: int) -> bool:
        args = cmdline(pid)
        return "pipeline.embedded.signer" in args and state_dir in args

    return matches


def service_states(home: Path) -> list[dict[str, Any]]:
    """Every embedded service recorded under ``home``, with its ``state`` (:func:`classify`)."""
    home = Path(home)
    out = []
    for name, path, matches in (
        ("s3", home / "s3" / "server.json", _s3_matches(home)),
        ("signer", home / "signer" / "service.json", _signer_matches(home)),
    ):
        info = read_state(path)
        if name == "signer" and info is None:  # a signer of a version before supervision
            with suppress(OSError, ValueError):
                info = {"pid": int((home / "signer" / "signer.pid").read_text())}
        if info is None:
            continue
        out.append({"service": name, "state_file": str(path), "state": classify(info, matches), **info})
    return out


def stop_services(home: Path, *, force: bool = False) -> list[str]:
    """End the services under ``home`` left without an owner. One whose owner lives is that
    command's to stop; with ``force``, its owner is sent SIGTERM (it stops its services on the
    way out, or they die with it). Returns what was done, one line each."""
    done = []
    for svc in service_states(home):
        pid, state = int(svc.get("pid") or 0), svc["state"]
        if state == "orphan":
            ok = terminate(pid)
            done.append(f"{svc['service']}: stopped pid {pid}" if ok else f"{svc['service']}: pid {pid} did not stop")
        elif state in ("owned", "restarting"):
            owner = int(svc["owner_pid"])
            if not force:
                done.append(f"{svc['service']}: pid {pid} belongs to running pid {owner}: stop that command "
                            "(or --force)")
                continue
            terminate(owner, timeout_s=60)
            if alive(pid, svc.get("pid_start")):
                terminate(pid)
            done.append(f"{svc['service']}: stopped its owner, pid {owner}")
        if not alive(pid, svc.get("pid_start")):
            with suppress(OSError):
                Path(svc["state_file"]).unlink()
            if svc["service"] == "signer":
                with suppress(OSError):
                    (Path(home) / "signer" / "signer.pid").unlink()
    return done
