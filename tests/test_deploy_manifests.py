"""Issue 22 item 5: the cluster guidance applies as written. The Kubernetes manifests
(docker/kubernetes/) are parsed and checked for what the Dask Kubernetes Operator's CRDs and
Kubernetes require (DaskCluster: ``spec.scheduler.spec``, ``spec.scheduler.service``,
``spec.worker.spec``; the scheduler Service's ``tcp-comm`` port; workers named
``$(DASK_WORKER_NAME)``; a DaskAutoscaler naming the cluster; the driver as a Job), for what
sohoa needs (single-threaded workers with the ``ocr`` resource and the preload; the key ring
and CA as mounted files on the driver only; no secret on the workers), and for consistency
(every Secret and port referenced exists, the Job reaches the operator's scheduler Service).
The dask-jobqueue example is parsed (and, where dask-jobqueue is installed, its Slurm job
script is built). Each file says that the warehouse and the signer are external services."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "docker" / "kubernetes"
SLURM = REPO / "docker" / "jobqueue" / "slurm.py"


def documents() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        text = path.read_text()
        assert re.search(r"warehouse \(S3\) and the signer are EXTERNAL services", text), f"{path.name}: say it"
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"one {kind} expected, got {len(found)}"
    return found[0]


def container(pod_spec: dict, name: str) -> dict:
    found = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"no container {name}"
    c = found[0]
    assert c.get("image") and ":" in c["image"] and not c["image"].endswith(":latest"), "a pinned image"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    return c


def test_every_manifest_has_what_kubernetes_requires():
    docs = documents()
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "sohoa"
    assert {d["kind"] for d in docs} >= {"Namespace", "Secret", "DaskCluster", "DaskAutoscaler", "Job"}


def test_daskcluster_has_the_fields_the_operator_requires_and_what_sohoa_workers_need():
    docs = documents()
    cluster = one(docs, "DaskCluster")
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    spec = cluster["spec"]
    # the operator's CRD: scheduler.spec (PodSpec), scheduler.service (ServiceSpec), worker.spec
    sched_pod, service, worker_pod = spec["scheduler"]["spec"], spec["scheduler"]["service"], spec["worker"]["spec"]
    assert isinstance(spec["worker"].get("replicas", 1), int)
    scheduler = container(sched_pod, "scheduler")
    ports = {p["name"]: p["containerPort"] for p in scheduler["ports"]}
    assert ports == {"tcp-comm": 8786, "http-dashboard": 8787}
    assert scheduler["args"][:2] == ["dask", "scheduler"] and "8786" in scheduler["args"]
    assert scheduler["readinessProbe"]["httpGet"]["path"] == "/health"
    assert service["selector"] == {"dask.org/cluster-name": cluster["metadata"]["name"], "dask.org/component": "scheduler"}
    svc_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["ports"]}
    assert svc_ports["tcp-comm"] == (8786, "tcp-comm") and svc_ports["http-dashboard"][1] == "http-dashboard"

    worker = container(worker_pod, "worker")
    args = worker["args"]
    assert args[:2] == ["dask", "worker"]
    assert args[args.index("--name") + 1] == "$(DASK_WORKER_NAME)"  # the operator matches pods to workers by it
    assert args[args.index("--nthreads") + 1] == "1" and args[args.index("--resources") + 1] == "ocr=1"
    assert args[args.index("--preload") + 1] == "workers.preload"
    assert worker["resources"]["requests"]["cpu"] == "1", "one single-threaded worker per core"
    assert {"name": "OMP_THREAD_LIMIT", "value": "1"} in worker["env"]
    # workers hold no secret and no key: no Secret volume, no secretRef, no key-ring variable
    assert "envFrom" not in worker and not worker_pod.get("volumes")
    assert not any(e["name"].startswith("SOHOA_PII") for e in worker["env"])

    scaler = one(docs, "DaskAutoscaler")
    assert scaler["apiVersion"] == "kubernetes.dask.org/v1"
    assert scaler["spec"]["cluster"] == cluster["metadata"]["name"]
    assert 1 <= scaler["spec"]["minimum"] <= scaler["spec"]["maximum"]


def test_driver_job_mounts_the_key_material_and_reaches_the_scheduler():
    docs = documents()
    cluster, job = one(docs, "DaskCluster"), one(docs, "Job")
    assert job["apiVersion"] == "batch/v1"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    driver = container(pod, "driver")
    assert "sohoa digitize" in " ".join(driver["args"]) and "--scheduler" in " ".join(driver["args"])
    env = {e["name"]: e["value"] for e in driver["env"]}
    name, ns = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    assert env["SOHOA_SCHEDULER"] in (f"tcp://{name}-scheduler:8786", f"tcp://{name}-scheduler.{ns}.svc.cluster.local:8786")
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for ref in driver.get("envFrom", []):
        assert ref["secretRef"]["name"] in secrets
    settings = set(secrets["sohoa-env"]["stringData"])
    assert {"SOHOA_WAREHOUSE", "SOHOA_S3_ACCESS_KEY", "SOHOA_S3_SECRET_KEY", "SOHOA_SIGNER_URL",
            "SOHOA_SIGNER_USER", "SOHOA_SIGNER_PASSWORD", "SOHOA_INPUT"} <= settings  # fmt: skip
    # the key ring and the CA as files: the variables point into read-only Secret mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in driver["volumeMounts"]}
    for var, secret, key in (("SOHOA_PII_KEYRING", "sohoa-pii-keyring", "keyring.json"),
                             ("SOHOA_TRUST_ANCHOR", "sohoa-trust-anchor", "ca.pem")):  # fmt: skip
        path = Path(env[var])
        assert path.name == key
        mount = mounts[str(path.parent)]
        assert mount.get("readOnly") is True and volumes[mount["name"]]["secret"]["secretName"] == secret
    # a non-root pod that can read its secrets: group-readable, and the group is the pod's
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert volumes[mounts[str(Path(env["SOHOA_PII_KEYRING"]).parent)]["name"]]["secret"]["defaultMode"] & 0o040
    readme = (K8S / "README.md").read_text()
    assert "create secret generic sohoa-pii-keyring" in readme and "sohoa-trust-anchor" in readme
    assert "EXTERNAL services" in readme or "external services" in readme


#: SLURMCluster's keyword arguments in dask-jobqueue 0.9 (checked by building the job script
#: with it: cores, processes, memory, walltime, queue, python, job_script_prologue,
#: worker_extra_args, scheduler_options, log_directory)
JOBQUEUE_KWARGS = {"cores", "processes", "memory", "walltime", "queue", "account", "python", "job_script_prologue",
                   "worker_extra_args", "scheduler_options", "log_directory", "job_extra_directives", "interface",
                   "local_directory", "job_name", "death_timeout", "nanny", "protocol", "security", "name"}  # fmt: skip


def test_jobqueue_example_states_its_services_and_starts_sohoa_workers():
    text = SLURM.read_text()
    tree = ast.parse(text)
    doc = ast.get_docstring(tree) or ""
    assert "warehouse (S3) and the signer are EXTERNAL services" in doc.replace("\n", " ")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "SLURMCluster"]
    assert len(calls) == 1
    kwargs = {k.arg: k.value for k in calls[0].keywords}
    assert set(kwargs) <= JOBQUEUE_KWARGS, set(kwargs) - JOBQUEUE_KWARGS
    assert ast.dump(kwargs["cores"]) == ast.dump(kwargs["processes"]), "one single-threaded worker per core"
    extra = ast.literal_eval(kwargs["worker_extra_args"])
    assert extra[extra.index("--preload") + 1] == "workers.preload" and extra[extra.index("--resources") + 1] == "ocr=1"
    assert any("OMP_THREAD_LIMIT=1" in ast.unparse(e) for e in kwargs["job_script_prologue"].elts)
    assert "--scheduler" in text and '"digitize"' in text
    compile(text, str(SLURM), "exec")


def test_jobqueue_example_builds_a_slurm_job_script():
    pytest.importorskip("dask_jobqueue")
    import importlib.util

    spec = importlib.util.spec_from_file_location("sohoa_slurm_example", SLURM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    cluster = module.make_cluster(jobs=1)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "--nthreads 1" in script and f"--nworkers {module.CORES_PER_JOB}" in script
    assert "--resources ocr=1" in script and "--preload workers.preload" in script and "OMP_THREAD_LIMIT=1" in script
