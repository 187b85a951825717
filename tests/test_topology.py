"""Issue 22 item 4: docker/compose.yaml runs as written — proved with processes, no Docker engine.

Every service of the compose file is started from ITS OWN command line (entrypoint + command),
with ITS OWN environment (the compose file's, interpolated from ``docker/env.example`` as
``docker compose --env-file`` would, over the Dockerfile's ``ENV``), in dependency order, each
gated by its own healthcheck command or one-shot exit status as ``depends_on`` says: the S3
server (``weed mini``), the bucket and key-ring one-shots, the Dask scheduler, two workers, the
signer and the API. Each container's filesystem is a directory holding the paths the Dockerfile
creates, with every volume mounted as the compose file says (a named volume: a directory
shared by the services that mount it). Host names become 127.0.0.1 and every port a free one.
Then a scan goes through the API and another through ``sohoa digitize --scheduler`` (run from
the api service, as the compose header says), and both records are verified with
``sohoa verify`` in the api container: a wrong entrypoint, variable, path or volume fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
BIN = Path(sys.executable).parent
BIRTH = REPO / "samples" / "scans" / "giay-khai-sinh-419-2018.jpg"
DECISION = REPO / "samples" / "scans" / "quyet-dinh-2773-qd-ubnd.png"
UNIT = "000.00.01.H53"
DOSSIER = "000.00.01.H53-241204-0001"

# --- the compose file, read as docker compose reads it ------------------------------------------

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]+)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``,
    ``${VAR:?err}``, ``${VAR?err}``."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        expr = m.group("braced") or m.group("plain")
        name, op, arg = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?(.*)", expr).groups()  # type: ignore[union-attr]
        value = env.get(name)
        empty = value is None or (op and op.startswith(":") and value == "")
        if op and op.endswith("-"):
            return arg if empty else value  # type: ignore[return-value]
        if op and op.endswith("?"):
            if empty:
                raise AssertionError(f"compose: required variable {name} is not set: {arg}")
            return value  # type: ignore[return-value]
        return value or ""

    return _VAR.sub(sub, text)


def _walk(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    return value


def dotenv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    return _walk(yaml.safe_load(COMPOSE.read_text()), env)


def dockerfile() -> dict[str, Any]:
    """The Dockerfile's ENV, WORKDIR, ENTRYPOINT and the directories its RUN lines create and
    hand to the service user."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    env: dict[str, str] = {}
    dirs: set[str] = set()
    owned: set[str] = set()
    entrypoint: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
        elif line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line[len("ENTRYPOINT "):])
        elif line.startswith("RUN "):
            for part in line[4:].split("&&"):
                words = part.split()
                if words[:2] == ["mkdir", "-p"]:
                    dirs.update(w for w in words[2:] if w.startswith("/"))
                if words[:2] == ["chown", "-R"]:
                    owned.update(w for w in words[3:] if w.startswith("/"))
    return {"env": env, "dirs": dirs, "owned": owned, "entrypoint": entrypoint}


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, named volume?) of each volume, short or long syntax."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            source, target = vol["source"], vol["target"]
        else:
            source, target = vol.split(":")[:2]
        out.append((source, target, not source.startswith((".", "/"))))
    return out


def starts_after(services: dict[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"depends_on cycle: {path + (name,)}"
        if name in order:
            return
        for dep in services[name].get("depends_on") or {}:
            visit(dep, path + (name,))
        order.append(name)

    for name in services:
        visit(name)
    return order


# --- the compose file as it should be (issue 22 item 4) -----------------------------------------


def test_compose_file_is_complete_for_its_image():
    env = dotenv(DOCKER / "env.example")
    compose = load_compose(env)  # every ${VAR:?} the file needs is in env.example
    image = dockerfile()
    services = compose["services"]
    s3 = services["s3"]
    assert not s3["image"].endswith(":latest") and ":" in s3["image"], "the S3 image must be pinned"
    assert s3["command"][0] == "mini", "the S3 service must run `weed mini`, what the tests run"
    for name, service in services.items():
        for source, target, named in mounts(service):
            if named:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"
                if service.get("image", "").startswith("sohoa"):
                    made = any(d == target or d.startswith(target + "/") for d in image["dirs"])  # mkdir -p makes parents
                    assert made, f"{name}: {target} is not created by the Dockerfile (a volume there is root-owned)"
                    assert any(target == o or target.startswith(o + "/") for o in image["owned"]), \
                        f"{name}: {target} is not given to the service user by the Dockerfile"
        for dep, cond in (service.get("depends_on") or {}).items():
            assert isinstance(cond, dict) and cond.get("condition") in (
                "service_healthy", "service_completed_successfully"), f"{name} -> {dep}: no condition"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} healthy, which has no healthcheck"
    for name in ("s3", "scheduler", "worker", "signer", "api"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    api = service_env(services["api"])
    assert api.get("SOHOA_PII_KEYRING") and api.get("SOHOA_TRUST_ANCHOR")
    assert any(t == str(Path(api["SOHOA_PII_KEYRING"]).parent) for _, t, _ in mounts(services["api"]))
    # workers hold no personal-data key: the driver ships the public part with the settings
    worker = services["worker"]
    assert "SOHOA_PII_KEYRING" not in service_env(worker) and not mounts(worker)
    assert "bokeh" in (DOCKER / "Dockerfile").read_text(), "the scheduler's dashboard needs bokeh in the image"


# --- running it as processes --------------------------------------------------------------------


class Topology:
    """The compose services as local processes (see the module doc)."""

    def __init__(self, root: Path, compose: dict[str, Any], image: dict[str, Any], compose_dir: Path):
        from pipeline.embedded.s3server import free_port_pairs

        self.root = root
        self.compose = compose
        self.image = image
        self.compose_dir = compose_dir  # where bind mounts (./s3.json) resolve
        self.procs: dict[str, subprocess.Popen] = {}
        self.volumes = root / "volumes"
        self._pool = free_port_pairs(24)  # each with its gRPC twin (+10000) free: weed mini needs them
        self.ports: dict[tuple[str, int], int] = {}  # (container, its port) -> port here
        self._runs = 0

    def port(self, instance: str, port: int) -> int:
        if (instance, port) not in self.ports:
            self.ports[(instance, port)] = self._pool.pop()
        return self.ports[(instance, port)]

    # -- what a container sees ------------------------------------------------------------

    @staticmethod
    def _own_ports(args: list[str]) -> set[int]:
        ports = set()
        for i, arg in enumerate(args):
            if m := re.fullmatch(r"-[\w.]*port=(\d+)", arg):
                ports.add(int(m.group(1)))
            elif re.fullmatch(r"(?:0\.0\.0\.0)?:(\d+)", arg):
                ports.add(int(arg.rsplit(":", 1)[1]))
            elif i and args[i - 1] == "--port" and arg.isdigit():
                ports.add(int(arg))
        return ports

    def command(self, service: dict[str, Any]) -> list[str]:
        entrypoint = service.get("entrypoint")
        if entrypoint is None and service.get("image", "").startswith("sohoa"):
            entrypoint = self.image["entrypoint"]
        args = list(entrypoint or []) + list(service.get("command") or [])
        if args[:2] == ["/usr/bin/tini", "--"]:
            args = args[2:]  # tini only forwards signals and reaps: the process is the same
        return args

    def container(self, name: str, service: dict[str, Any], instance: str) -> Path:
        """A directory standing for the container's file system: the image's directories, the
        volumes and bind mounts at their targets (nested mounts included)."""
        root = self.root / "containers" / instance
        if root.exists():
            return root
        if service.get("image", "").startswith("sohoa"):
            for d in self.image["dirs"]:
                (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        for source, target, named in sorted(mounts(service), key=lambda m: len(m[1])):
            host = self.volumes / source if named else (self.compose_dir / source).resolve()
            if named:
                host.mkdir(parents=True, exist_ok=True, mode=0o700)
            at = Path(str(root) + target)
            at.parent.mkdir(parents=True, exist_ok=True)
            if at.is_dir() and not at.is_symlink():  # the image's mount point: a new named volume
                if named and not any(host.iterdir()):  # starts with its content (Docker copies it)
                    shutil.copytree(at, host, dirs_exist_ok=True)
                shutil.rmtree(at)
            if not at.exists():
                at.symlink_to(host)
        return root

    def translate(self, instance: str, own: set[int], root: Path, value: str) -> str:
        """Container paths to the container directory, service names to 127.0.0.1, the
        container's own ports (``own``) and the other services' to the free ones chosen."""
        def other(m: re.Match) -> str:
            return f"127.0.0.1:{self.port(m.group(1), int(m.group(2)))}"

        services = "|".join(re.escape(s) for s in self.compose["services"])
        value = re.sub(rf"\b({services}):(\d+)\b", other, value)
        value = value.replace("0.0.0.0", "127.0.0.1")
        for port in own:
            value = re.sub(rf"(?<![\d.]){port}(?!\d)", str(self.port(instance, port)), value)
        if re.fullmatch(r":\d+", value):  # --dashboard-address :8787: every interface
            value = "127.0.0.1" + value
        value = re.sub(r"(^|=|\s)(/(?:data|etc/seaweedfs|in)(?:/[^\s'\"]*)?)",
                       lambda m: m.group(1) + str(root) + m.group(2), value)
        return value

    def executable(self, arg: str) -> str:
        from pipeline.embedded.s3server import weed_binary

        local = {"/usr/bin/weed": weed_binary(), "python": sys.executable}
        if arg in local:
            return local[arg]
        if (BIN / arg).exists():
            return str(BIN / arg)
        found = shutil.which(arg)
        assert found, f"no {arg} here"
        return found

    def spec(self, name: str, instance: str | None = None, command: list[str] | None = None,
             extra_mounts: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
        service = dict(self.compose["services"][name])
        if extra_mounts:
            service["volumes"] = list(service.get("volumes") or []) + extra_mounts
        instance = instance or name
        root = self.container(name, service, instance)
        own = self._own_ports(self.command(service))
        args = command if command is not None else self.command(service)
        args = [self.translate(instance, own, root, a) for a in args]
        args[0] = self.executable(args[0])
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO)}
        if service.get("image", "").startswith("sohoa"):
            env.update(self.image["env"])
        env.update(service_env(service))
        env = {k: self.translate(instance, own, root, v) for k, v in env.items()}
        return args, env

    # -- processes ------------------------------------------------------------------------

    def start(self, name: str, instance: str | None = None) -> subprocess.Popen:
        instance = instance or name
        args, env = self.spec(name, instance)
        with open(self.root / f"{instance}.log", "wb") as log:
            proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self.procs[instance] = proc
        return proc

    def run(self, name: str, command: list[str], *, timeout: float = 180, mounts: list[str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """``docker compose run --rm [-v ...] NAME COMMAND`` / ``exec``: the service's
        environment and volumes, another command."""
        self._runs += 1  # a new container each time, as `run --rm` (or `exec`: the same volumes)
        args, env = self.spec(name, f"{name}-run{self._runs}", command, mounts)
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert done.returncode == 0, f"{command} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def log(self, instance: str) -> str:
        return (self.root / f"{instance}.log").read_text(errors="replace")[-4000:]

    def healthy(self, name: str, instance: str | None = None) -> None:
        instance = instance or name
        service = self.compose["services"][name]
        check = service["healthcheck"]["test"]
        assert check[0] == "CMD", f"{name}: healthcheck must be an exec form (CMD)"
        args, env = self.spec(name, instance, check[1:])

        def seconds(v) -> float:
            return float(str(v).rstrip("s"))

        attempts = int(service["healthcheck"].get("retries", 3))
        interval = min(seconds(service["healthcheck"].get("interval", "5s")), 1.0)  # faster than compose: same test
        for _ in range(attempts * 5):
            proc = self.procs[instance]
            assert proc.poll() is None, f"{instance} exited with {proc.returncode}:\n{self.log(instance)}"
            if subprocess.run(args, env=env, cwd=REPO, capture_output=True, timeout=30, check=False).returncode == 0:
                return
            time.sleep(interval)
        raise AssertionError(f"{instance} never healthy ({check}):\n{self.log(instance)}")

    def completed(self, name: str, timeout: float = 120) -> None:
        proc = self.procs[name]
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not complete:\n{self.log(name)}") from None
        assert code == 0, f"{name} exited with {code}:\n{self.log(name)}"

    def up(self, scale: dict[str, int]) -> None:
        services = self.compose["services"]
        for name in starts_after(services):
            if name.startswith("x-"):
                continue
            for dep, cond in (services[name].get("depends_on") or {}).items():
                for inst in self.instances(dep, scale):
                    if cond["condition"] == "service_healthy":
                        self.healthy(dep, inst)
                    elif cond["condition"] == "service_completed_successfully":
                        self.completed(inst)
            for inst in self.instances(name, scale):
                self.start(name, inst)

    @staticmethod
    def instances(name: str, scale: dict[str, int]) -> list[str]:
        n = scale.get(name, 1)
        return [name] if n == 1 else [f"{name}-{i}" for i in range(1, n + 1)]

    def down(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _http(url: str, *, token: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _multipart(name: str, data: bytes, mime: str) -> tuple[bytes, str]:
    boundary = "sohoa-topology-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_compose_services_run_as_written_and_digitize_through_the_api_and_the_driver(tmp_path):
    assert shutil.which("wget"), "the S3 healthcheck runs wget (busybox's, in the SeaweedFS image)"
    # docker/.env from env.example, and docker/s3.json from it by the real make-s3-config.sh
    work = tmp_path / "docker"
    work.mkdir()
    shutil.copy(DOCKER / "env.example", work / ".env")
    shutil.copy(DOCKER / "make-s3-config.sh", work / "make-s3-config.sh")
    subprocess.run(["bash", str(work / "make-s3-config.sh")], check=True, capture_output=True)
    env = dotenv(work / ".env")
    compose = load_compose(env)
    topo = Topology(tmp_path, compose, dockerfile(), compose_dir=work)
    try:
        topo.up({"worker": 2})
        for name in ("scheduler", "signer", "api"):
            topo.healthy(name)
        for inst in ("worker-1", "worker-2"):
            topo.healthy("worker", inst)
        api = f"http://127.0.0.1:{topo.port('api', 8000)}"

        # an API key, as `docker compose exec api sohoa apikey create ...`
        token = topo.run("api", ["sohoa", "apikey", "create", "--unit", UNIT, "--role", "unit"]).stdout.split()[0]
        body, ctype = _multipart(BIRTH.name, BIRTH.read_bytes(), "image/jpeg")
        code, receipt = _http(f"{api}/api/v1/dossiers/{DOSSIER}/documents", token=token, data=body,
                              headers={"Content-Type": ctype})  # fmt: skip
        assert code == 202, receipt
        birth_id = receipt["documents"][0]["document_id"]

        # the driver: `docker compose run --rm -v scans:/in:ro api sohoa digitize /in --scheduler tcp://scheduler:8786`
        scans = tmp_path / "scans"
        scans.mkdir()
        shutil.copy(DECISION, scans / DECISION.name)
        done = topo.run("api", ["sohoa", "digitize", "/in", "--scheduler", "tcp://scheduler:8786", "--json", "--no-progress"],
                        mounts=[f"{scans}:/in:ro"], timeout=300)  # fmt: skip
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["documents"] == 1 and summary["failed"] == 0 and summary["ok"] + summary["needs_review"] == 1, done.stderr

        deadline = time.monotonic() + 240
        while True:
            code, view = _http(f"{api}/api/v1/documents/{birth_id}", token=token)
            if code == 200 and view.get("status") in ("ok", "needs_review", "failed"):
                break
            assert time.monotonic() < deadline, f"not digitized: {view}\n{topo.log('api')}"
            time.sleep(1)
        assert view["status"] in ("ok", "needs_review"), view
        assert view["record_type"] == "birth_certificate"
        # personal data: encrypted by a worker that has no key file, to the ring's public key;
        # readable through the API (its unit), which holds the full ring
        import hashlib

        from pipeline.runtime.config import settings_from_env
        from pipeline.warehouse.layout import Warehouse

        _, api_env = topo.spec("api", "api")
        stored = Warehouse(settings_from_env(api_env).warehouse).get_record(birth_id)
        assert stored["pii"]["alg"] == "ECDH-ES+A256KW" and stored["fields"].get("full_name") is None
        assert view["fields"].get("full_name"), "the API (full ring) must decrypt the record of its unit"

        # both records verify in the api container (SOHOA_TRUST_ANCHOR: the signer's CA, mounted)
        decision_id = hashlib.sha256(DECISION.read_bytes()).hexdigest()
        for document_id in (birth_id, decision_id):
            out = topo.run("api", ["sohoa", "verify", "--document", document_id])
            assert out.stdout.startswith("OK:"), out.stdout + out.stderr
    finally:
        topo.down()


# --- s3:// inputs over TLS (issue 22 item 6) -----------------------------------------------------


def test_s3_inputs_are_read_over_https_when_asked(warehouse_settings, s3_server):
    """``?secure=true`` (or ``--s3-secure``, or port 443) makes the input client speak TLS: against
    the plain-HTTP test server the listing then fails in the TLS handshake, while the same URL
    without it lists the scan."""
    import io

    from minio import Minio

    from pipeline.runtime.errors import ConfigurationError
    from pipeline.runtime.inputs import iter_inputs, iter_s3_inputs, s3_input_secure

    s = warehouse_settings
    Minio(s.endpoint, access_key=s.access_key, secret_key=s.secret_key, secure=False).put_object(
        s.bucket, "scans/a.png", io.BytesIO(b"\x89PNG\r\n"), 6)
    url = f"s3://{s.access_key}:{s.secret_key}@{s.endpoint}/{s.bucket}/scans/"
    assert [i.key for i in iter_s3_inputs(url)] == ["scans/a.png"]
    for secure_url, flag in ((url + "?secure=true", None), (url, True)):
        with pytest.raises(Exception) as caught:
            list(iter_inputs([secure_url], s3_secure=flag))
        assert "ssl" in repr(caught.value).lower() or "wrong version number" in repr(caught.value).lower(), caught.value
    assert [i.key for i in iter_inputs([url + "?secure=false"], s3_secure=True)] == ["scans/a.png"]  # the URL wins
    assert s3_input_secure("s3://k:s@s3.example:443/b/p") and not s3_input_secure("s3://k:s@s3.example:9000/b/p")
    with pytest.raises(ConfigurationError):
        s3_input_secure(url + "?secure=maybe")
