"""Resolve the services a command needs: configured ones, or embedded ones on loopback.

With no warehouse endpoint configured, an embedded SeaweedFS starts (``pipeline.embedded.s3server``);
with no signer configured, the embedded CSC signer starts (``pipeline.embedded.signer.embedded``);
with no PII key ring configured, ``<home>/pii/keyring.json`` is used (created on first use).
All keep their state under ``settings.home`` so that later commands find the same data.

Both embedded services are supervised (:mod:`pipeline.embedded.supervise`, issue 22): they die with the
command that started them, however it ends (``kill -9`` included); a later command uses a live
one whose owner lives, and stops and replaces one whose owner died; the owner's watchdog restarts
one that died (same port, same state), recorded in its state file; ``sohoa services status|stop``
shows and ends them. The retry budget (``settings.retry_budget_s``) is handed to both clients.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pipeline.embedded.s3server import EmbeddedS3
from pipeline.embedded.supervise import (
    Watchdog,
    classify,
    cmdline,
    locked,
    now_iso,
    owner_fields,
    process_start,
    read_state,
    terminate,
    write_state,
)
from pipeline.runtime.config import Settings, SignerSettings
from pipeline.runtime.errors import ConfigurationError, SignerUnavailableError, WarehouseError

log = logging.getLogger("sohoa.services")


def _answers(url: str, timeout: float = 1.0) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1) if "//" in url else url.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class SupervisedSigner:
    """The embedded signer of ``<home>/signer``, one per state directory: started here (and then
    watched and restarted here), or the live one of another running command (used, not owned).
    State file: ``<home>/signer/service.json`` (``signer.pid`` stays the signer's own)."""

    def __init__(self, state_dir: Path):
        from pipeline.embedded.signer.embedded import EmbeddedSigner  # deferred: loads certomancer, cryptography, yaml

        self.state_dir = Path(state_dir)
        self.signer = EmbeddedSigner(self.state_dir)
        self.settings: SignerSettings | None = None
        self.owner = False
        self._watchdog: Watchdog | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / "service.json"

    def _is_ours(self, pid: int) -> bool:
        args = cmdline(pid)
        return "pipeline.embedded.signer" in args and str(self.state_dir) in args

    def _recorded(self) -> dict | None:
        info = read_state(self.state_file)
        if info is None:  # a signer started before supervision: its pid and url files only
            with contextlib.suppress(OSError, ValueError):
                info = {"pid": int(self.signer.pid_file.read_text())}
                info["url"] = (self.state_dir / "url.txt").read_text().strip()
        return info

    def start(self, timeout_s: float = 60.0) -> SignerSettings:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        deadline = time.monotonic() + timeout_s
        while True:
            with locked(self.state_dir / "supervisor.lock"):
                info = self._recorded() or {}
                state = classify(info, self._is_ours)
                if state == "orphan":
                    log.warning("embedded signer pid %s outlived its owner (pid %s): replacing it",
                                info.get("pid"), info.get("owner_pid"))
                    terminate(int(info["pid"]))
                    state = "none"
                if state == "none":
                    self.settings = self.signer.start()
                    self.owner = True
                    self._record(restarts=0, restart_log=[])
                    break
            if state == "owned" and info.get("url") and _answers(info["url"]):
                self.settings = self._settings_of(info["url"])
                self.signer.port = int(info["url"].rsplit(":", 1)[1])  # a take-over keeps the port
                break
            if time.monotonic() > deadline:
                raise SignerUnavailableError(
                    f"the embedded signer of {self.state_dir} (pid {info.get('pid')}, owned by pid "
                    f"{info.get('owner_pid')}) does not answer; `sohoa services status` shows it"
                )
            time.sleep(0.2)
        if self._watchdog is None:
            self._watchdog = Watchdog("signer", self._died, self._restart).start()
        return self.settings

    def _settings_of(self, url: str) -> SignerSettings:
        """The client settings of a signer another command runs (as EmbeddedSigner.start makes them)."""
        from pipeline.embedded.signer.embedded import client_settings  # deferred: loads certomancer, cryptography, yaml

        return client_settings(self.state_dir, url)

    def _record(self, *, restarts: int, restart_log: list) -> None:
        proc = self.signer._proc
        assert proc is not None and self.signer.settings is not None
        write_state(self.state_file, {
            "service": "signer", "pid": proc.pid, "pid_start": process_start(proc.pid),
            "url": self.signer.settings.url, "port": self.signer.port, "state_dir": str(self.state_dir),
            **owner_fields(), "watchdog": True, "started_at": now_iso(),
            "restarts": restarts, "restart_log": restart_log,
        })  # fmt: skip

    def _died(self) -> bool:
        """Ours died; or the one we use died with its owner (killed: its state file stays): then
        this process takes over. One its owner stopped on purpose (state file removed) is left so."""
        if not self.owner:
            info = self._recorded()
            return info is not None and classify(info, self._is_ours) == "none"
        proc = self.signer._proc
        return proc is not None and proc.poll() is not None

    def _restart(self) -> None:
        """The signer died: start it again on the same port and state, record the restart."""
        if not self.owner:
            self.start()  # ours now (same port), unless another command was quicker; same watchdog
            return
        with locked(self.state_dir / "supervisor.lock"):
            old = self.signer._proc
            if old is None or old.poll() is None:
                return
            info = read_state(self.state_file) or {}
            deadline = time.monotonic() + 30
            while True:  # its port is free again once the dead process's socket is gone
                try:
                    self.signer.start()
                    break
                except Exception:  # noqa: BLE001 - the port not free yet: try again for a while
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            history = list(info.get("restart_log") or [])[-9:]
            history.append({"at": now_iso(), "exit_code": old.returncode, "old_pid": old.pid})
            self._record(restarts=int(info.get("restarts") or 0) + 1, restart_log=history)
            log.warning("embedded signer restarted (exit code %s before)", old.returncode)

    def stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()  # first: it would restart the signer this stops
        if not self.owner:
            return
        proc = self.signer._proc
        self.signer.stop()
        info = read_state(self.state_file)
        if proc is not None and info and int(info.get("pid") or 0) == proc.pid:
            self.state_file.unlink(missing_ok=True)


@contextlib.contextmanager
def running_services(settings: Settings, *, need_signer: bool = True) -> Iterator[Settings]:
    """Yield settings with warehouse (and signer) resolved, starting embedded ones as needed."""
    with contextlib.ExitStack() as stack:
        if not settings.home.exists():  # the embedded services' state: their user's alone
            settings.home.mkdir(parents=True, mode=0o700)
        if settings.warehouse is None:
            # two identities: the setup one (Admin) creates the bucket in start(); the service
            # one (no Admin: no bucket deletion, no lock or versioning change) is all that the
            # settings carry on, to the workers and the API
            s3 = EmbeddedS3(settings.home)
            # registered before it starts: a signal (sohoa serve) during the start still stops
            # what was spawned; stop() leaves a server it uses but does not own alone
            stack.callback(s3.stop)
            resolved = s3.start()
            settings = settings.replace(warehouse=replace(resolved, retry_budget_s=settings.retry_budget_s))
        if need_signer and settings.signer is None:
            signer = SupervisedSigner(settings.home / "signer")
            stack.callback(signer.stop)
            signing = signer.start()
            settings = settings.replace(signer=replace(signing, retry_budget_s=settings.retry_budget_s))
        if settings.pii_keyring is None:
            from pipeline.records.pii import KeyRing, keyring_path  # deferred: loads numpy, cryptography, pydantic

            path = keyring_path(settings.home)
            KeyRing.load_or_create(path)
            settings = settings.replace(pii_keyring=path)
        from pipeline.warehouse.layout import Warehouse  # deferred: loads minio, urllib3, stamina

        warehouse = Warehouse(settings.resolved_warehouse())
        try:
            warehouse.ensure_bucket()  # the bucket exists: checks its versioning and Object Lock
        except WarehouseError as exc:
            if warehouse.client.bucket_exists(warehouse.bucket):
                raise
            raise ConfigurationError(
                f"bucket {warehouse.bucket!r} does not exist and the service's S3 identity may not "
                "create it: create it with the setup identity (docker compose: the s3-setup step)"
            ) from exc
        yield settings
