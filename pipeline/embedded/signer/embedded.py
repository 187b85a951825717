"""The signing service on loopback for one command or test run (dịch vụ ký nhúng).

:func:`start_embedded_signer` runs ``python -m pipeline.embedded.signer serve`` as a child process
on 127.0.0.1, waits until it listens, and yields an :class:`EmbeddedSigner` whose
``settings`` the pipeline uses like any remote signer. It is a separate process on purpose:
the pipeline talks to it over real HTTP, and fault tests can stop and restart it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.embedded.s3server import restrict_state  # state dirs 0700, files 0600
from pipeline.embedded.signer.keystore import StateLayout, read_client_secrets
from pipeline.embedded.supervise import die_with_parent
from pipeline.runtime.config import SignerSettings
from pipeline.runtime.errors import ConfigurationError

#: umask of the embedded signer process: state directories 0700, files 0600
STATE_UMASK = 0o077


def client_settings(state_dir: Path, url: str) -> SignerSettings:
    """The pipeline's client settings for the embedded signer of ``state_dir`` serving at ``url``
    (its pipeline user, credential and PIN from the state's client secrets; its CA as trust anchor)."""
    secrets = read_client_secrets(state_dir)
    return SignerSettings(
        url=url,
        username=secrets.username,
        password=secrets.password,
        credential_id=secrets.credential_id,
        pin=secrets.pin,
        trust_anchor=StateLayout(state_dir).root_cert,
        timestamp_url=f"{url}/tsa",
    )


@dataclass
class EmbeddedSigner:
    """A signer child process; ``settings`` is valid once :meth:`start` returned."""

    state_dir: Path
    port: int = 0
    startup_timeout_s: float = 60.0
    settings: SignerSettings | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        """``signer.pid`` of the state directory: the pid of the running embedded signer."""
        return self.state_dir / "signer.pid"

    @property
    def url(self) -> str:
        if self.settings is None:
            raise ConfigurationError("embedded signer not started")
        return self.settings.url

    def start(self) -> SignerSettings:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        restrict_state(self.state_dir)
        port_file = self.state_dir / "url.txt"
        port_file.unlink(missing_ok=True)
        log = os.fdopen(os.open(self.state_dir / "signer.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        cmd = [
            sys.executable,
            "-m",
            "pipeline.embedded.signer",
            "serve",
            "--state",
            str(self.state_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--port-file",
            str(port_file),
            "--log-level",
            "warning",
        ]
        env = {k: v for k, v in os.environ.items() if k != "SOHOA_SIGNER_PASSPHRASE"}
        # umask 077: whatever the service writes (keys, CRLs, users, url.txt) is its user's alone

        self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True, umask=STATE_UMASK,
                                      preexec_fn=die_with_parent())  # fmt: skip
        log.close()
        self.pid_file.unlink(missing_ok=True)
        with os.fdopen(os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(f"{self._proc.pid}\n")
        deadline = time.monotonic() + self.startup_timeout_s
        while not port_file.exists():
            if self._proc.poll() is not None:
                tail = (self.state_dir / "signer.log").read_text(errors="replace")[-2000:]
                raise ConfigurationError(f"embedded signer exited with code {self._proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"embedded signer did not start within {self.startup_timeout_s:.0f} s")
            time.sleep(0.05)
        url = port_file.read_text().strip()
        self.port = int(url.rsplit(":", 1)[1])  # a restart comes back on the same port
        self.settings = client_settings(self.state_dir, url)
        return self.settings

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        try:
            if self.pid_file.read_text().strip() == str(proc.pid):
                self.pid_file.unlink()
        except OSError:
            pass

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedSigner:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def start_embedded_signer(state_dir: Path, *, port: int = 0) -> Iterator[EmbeddedSigner]:
    """Run the signer on loopback for the duration of the ``with`` block."""
    signer = EmbeddedSigner(Path(state_dir), port=port)
    with signer:
        yield signer
