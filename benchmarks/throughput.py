"""Throughput: pages per second on the same batch of rendered pages, in one run.

    .venv/bin/python benchmarks/throughput.py [--pages 40] [--pages-per-doc 4]

(a) raw ``tesseract -l vie --psm 4`` with OMP_THREAD_LIMIT=1, two processes in parallel — the
    floor set by the OCR engine on this machine. On skewed office scans raw Tesseract gives up
    on many lines, so it also reads far fewer characters (printed): it is cheap partly because
    it fails. The machine is shared and its speed drifts over minutes, so (a) runs first and
    again last, and the floor is the mean of the two;
(a') the same tesseract command on sohoa's own deskewed, cleaned page images (prepared before
    the clock starts) — what the engine costs to read what sohoa reads;
(b) ``ocrmypdf -l vie --deskew --jobs 2`` on the same pages (one PDF per document);
(c) sohoa (load, deskew, clean-up, OCR, extract, validate, searchable PDF/A, PAdES + record
    signatures, S3 writes) on a Dask LocalCluster with 1 and 2 workers, embedded SeaweedFS and
    embedded signer; plus the peak resident memory of each worker. The clock starts when the
    cluster is up with its worker plugin loaded and the warehouse bucket has taken its first
    write (SeaweedFS allocates a new bucket's volumes then, ~1 s), as for a batch run against
    a running deployment; it stops when the batch's catalog is compacted.

Pages are rendered from the sample specs (office-grade degradation, 300 dpi) and cached under
benchmarks/out/throughput/. The figures depend on the machine: compare within one run.

``--engines [REV]`` (issue 21) adds, in the same run, sohoa with 2 workers reading with (d) the
in-process Tesseract of commit REV (default: the ctypes binding of ``e816fbe``, which redirected
libtesseract's ``pixWriteMem`` import to PNM in every worker) — this tree copied to a temporary
folder with ``pipeline/_exec/tesseract.py`` taken from REV —, (e) this tree's
``tesserocr`` engine as configured by default, and (f) the same with the opt-in
``OcrSettings.line_images_pnm``; each run by a child process the same way, in the order
d e f f e d, each figure the mean of its two runs,
with the workers' CPU seconds a page (less sensitive to other load on a shared machine than
pages/s). ``--engines-only`` skips (a)–(c).

``--external`` (issue 22) adds (g): sohoa on an external ``dask scheduler`` with 2 ``dask worker
--preload workers.preload`` processes (a deployment's cluster, as docker/compose.yaml runs it),
next to (c) 2 workers on the LocalCluster; ``--external-only`` runs just those two, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "out" / "throughput"


def make_batch(pages: int, per_doc: int) -> tuple[list[Path], list[Path]]:
    """PNG pages (for raw tesseract) and multi-page PDFs of the same pages (documents)."""
    from samples.degrade import degrade
    from samples.io import write_pdf
    from samples.render import render_document
    from samples.specs import synthetic_specs

    folder = OUT / f"batch-{pages}-{per_doc}"
    marker = folder / "done.json"
    if marker.exists():
        data = json.loads(marker.read_text())
        return [folder / p for p in data["pngs"]], [folder / p for p in data["pdfs"]]
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "png").mkdir(parents=True)
    (folder / "docs").mkdir()
    rng = random.Random(2026)
    images = []
    for spec in synthetic_specs(pages, seed=11):
        for img in render_document(spec, dpi=300, font=rng.choice(["serif", "dejavu-serif", "serif"])):
            images.append(degrade(img, "office", rng.randrange(1 << 30))[0])
            if len(images) >= pages:
                break
        if len(images) >= pages:
            break
    pngs, pdfs = [], []
    for i, img in enumerate(images):
        path = folder / "png" / f"p{i:03d}.png"
        img.convert("L").save(path, dpi=(300, 300))
        pngs.append(path)
    for d in range(0, len(images), per_doc):
        path = folder / "docs" / f"doc{d // per_doc:03d}.pdf"
        write_pdf(images[d : d + per_doc], path, dpi=300)
        pdfs.append(path)
    marker.write_text(json.dumps({"pngs": [str(p.relative_to(folder)) for p in pngs],
                                  "pdfs": [str(p.relative_to(folder)) for p in pdfs]}))
    return pngs, pdfs


def bench_tesseract(images: list[Path], procs: int = 2, extra: tuple[str, ...] = ()) -> tuple[float, int]:
    """Seconds for all images, two tesseract processes at a time; and the characters read."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")

    def one(path: Path) -> int:
        out = subprocess.run(["tesseract", str(path), "-", "-l", "vie", "--psm", "4", *extra], env=env, check=True,
                             capture_output=True)
        return len("".join(out.stdout.decode("utf-8", "replace").split()))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        chars = sum(pool.map(one, images))
    return time.perf_counter() - t0, chars


def prepared_images(pdfs: list[Path]) -> list[Path]:
    """sohoa's OCR input for every page (load → deskew → clean-up), as PGM, cached."""
    from PIL import Image

    from pipeline.runtime.config import Settings
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.load import probe, render_page

    settings = Settings(home=Path(tempfile.gettempdir()))
    folder = OUT / ("prepared-" + pdfs[0].parent.parent.name)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for pdf in pdfs:
        data = pdf.read_bytes()
        info = probe(data, settings.limits)
        for page in range(1, info.page_count + 1):
            path = folder / f"{pdf.stem}-{page}.pgm"
            if not path.exists():
                processed = cleanup_page(deskew_page(render_page(data, info, page, settings.limits), settings.image),
                                         settings.image)
                Image.fromarray(processed.ocr_image).save(path, format="PPM")
            out.append(path)
    return out


def bench_ocrmypdf(pdfs: list[Path], jobs: int = 2) -> float | None:
    if shutil.which("ocrmypdf") is None:
        return None
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for pdf in pdfs:
            subprocess.run(["ocrmypdf", "-q", "-l", "vie", "--deskew", "--jobs", str(jobs), "--force-ocr",
                            "--output-type", "pdf", str(pdf), str(Path(tmp) / pdf.name)], env=env, check=True,
                           capture_output=True)
        return time.perf_counter() - t0


def bench_sohoa(pdfs: list[Path], workers: int, home: Path, ocr: dict | None = None,
                scheduler: str | None = None) -> tuple[float, dict, dict]:
    from dataclasses import replace

    from pipeline.embedded.services import running_services
    from pipeline.runtime.config import ClusterSettings, OcrSettings, Settings
    from pipeline.runtime.executor import DaskExecutor, dask_client
    from pipeline.runtime.inputs import InputFile
    from pipeline.runtime.orchestrate import BatchRunner
    from pipeline.warehouse.layout import Warehouse

    cluster = ClusterSettings(n_workers=workers, threads_per_worker=1, scheduler_address=scheduler)
    settings = Settings(home=home, cluster=cluster)
    if ocr:
        settings = settings.replace(ocr=replace(OcrSettings(), **ocr))
    with running_services(settings) as resolved:
        resolved = resolved.replace(warehouse=replace(resolved.warehouse, bucket=f"bench-{workers}w-{int(time.time())}"))
        warehouse = Warehouse(resolved.warehouse)
        from pipeline.embedded.s3server import EmbeddedS3

        s3 = EmbeddedS3(home)  # the running embedded server, adopted: its setup identity makes buckets
        s3.start()
        s3.ensure_bucket(resolved.warehouse.bucket)
        # SeaweedFS allocates a new bucket's volumes on its first write (~1 s here): a batch
        # writes into a warehouse that has them already
        warehouse.objects.put("benchmark/warm-up", b"{}", "application/json")
        # the cluster `sohoa digitize` starts: LocalCluster, one single-thread worker per core
        # asked for, OMP_THREAD_LIMIT=1, the worker plugin registered (pipeline.runtime.executor)
        with dask_client(cluster, resolved) as client:
            runner = BatchRunner(resolved, DaskExecutor(client), Warehouse(resolved.warehouse))
            cpu0 = client.run(cpu_seconds)
            t0 = time.perf_counter()
            summary = runner.run(InputFile(p, explicit=True) for p in pdfs)
            seconds = time.perf_counter() - t0
            cpu1 = client.run(cpu_seconds)
            worker_cpu = sum(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)

            def peak_rss_mb() -> float:
                # VmHWM, the peak of this process's own memory: getrusage's ru_maxrss also counts
                # what the parent held when it forked the worker (the driver's, after rendering)
                with open("/proc/self/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            return int(line.split()[1]) / 1024
                return 0.0

            peaks = client.run(peak_rss_mb)
            engines = set(client.run(worker_engine).values())
            records = list(Warehouse(resolved.warehouse).iter_records())
            chars = sum(len("".join((r.get("text") or "").split())) for r in records)
            stages: dict[str, list[float]] = {}
            for r in records:
                for page in r.get("pages") or []:
                    for stage, secs in (page.get("seconds") or {}).items():
                        stages.setdefault(stage, []).append(secs)
            per_page = {k: sum(v) / len(v) for k, v in stages.items()}
    return seconds, {**summary.as_dict(), "chars": chars, "stage_seconds": per_page, "engines": sorted(engines),
                     "worker_cpu_s": worker_cpu}, peaks


def cpu_seconds() -> float:
    """CPU seconds this process has used (user + system, all threads)."""
    times = os.times()
    return times.user + times.system


class ExternalCluster:
    """(g) A deployment's cluster, as processes: ``dask scheduler`` and ``workers`` times
    ``dask worker SCHEDULER --nthreads 1 --resources ocr=1 --preload workers.preload`` with the
    Dask settings of docker/compose.yaml's workers (profiler off for a batch, 500 ms ticks)."""

    def __init__(self, workers: int, logs: Path):
        self.workers, self.logs, self.procs = workers, logs, []

    def __enter__(self) -> str:
        import socket

        from distributed import Client

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        dask_cli = str(Path(sys.executable).with_name("dask"))
        env = {**os.environ, "OMP_THREAD_LIMIT": "1", "PYTHONPATH": str(ROOT),
               "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "false",
               "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "500ms",
               "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "500ms"}  # fmt: skip
        self.logs.mkdir(parents=True, exist_ok=True)
        address = f"tcp://127.0.0.1:{port}"
        commands = [[dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"]]
        commands += [[dask_cli, "worker", address, "--nthreads", "1", "--resources", "ocr=1",
                      "--preload", "workers.preload", "--no-dashboard"]] * self.workers  # fmt: skip
        for i, cmd in enumerate(commands):
            log = open(self.logs / f"external-{i}.log", "wb")
            self.procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))  # fmt: skip
            if i == 0:
                time.sleep(2)
        deadline = time.monotonic() + 120
        with Client(address, timeout="30s") as client:
            while len(client.scheduler_info()["workers"]) < self.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"external workers did not join; see {self.logs}")
                time.sleep(0.5)
        return address

    def __exit__(self, *exc) -> None:
        import signal

        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def external_rows(pdfs: list[Path], n: int) -> list[tuple[str, float, float, str]]:
    """(c) 2 workers on the LocalCluster and (g) 2 external worker processes, same batch and run.
    The machine is shared and drifts: (c) runs first and again last, and its figure is the mean."""
    runs: dict[str, list[tuple[float, dict, dict]]] = {"c": [], "g": []}
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as home:
        for which in ("c", "g", "c"):
            if which == "g":
                with ExternalCluster(2, Path(home) / "logs") as address:
                    runs["g"].append(bench_sohoa(pdfs, 2, Path(home), scheduler=address))
            else:
                runs["c"].append(bench_sohoa(pdfs, 2, Path(home)))
    rows = []
    for which, label in (("c", "(c) sohoa, LocalCluster 2 workers"), ("g", "(g) sohoa, external scheduler + 2 workers")):
        seconds = [r[0] for r in runs[which]]
        t = sum(seconds) / len(seconds)
        summary, peaks = runs[which][-1][1], runs[which][-1][2]
        peak = max(peaks.values()) if peaks else 0
        each = f"; runs {', '.join(f'{n / x:.3f}' for x in seconds)} pages/s" if len(seconds) > 1 else ""
        stages = ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items())
        rows.append((label, t, n / t, f"ok={summary['ok']} review={summary['needs_review']} "
                                      f"failed={summary['failed']}; peak RSS/worker {peak:.0f} MB{each}; "
                                      f"s/page in the workers: {stages}; engines {summary['engines']}"))
    return rows


def worker_engine() -> str:
    """How a worker reads: the binding's file, and whether its line images are PNM."""
    import sys

    tess = sys.modules.get("pipeline._exec.tesseract")
    if tess is None:
        return "?"
    binding = "tesserocr" if hasattr(tess, "tesserocr") else "ctypes"
    redirected = getattr(tess, "line_images_redirected", None)
    pnm = redirected() if redirected else getattr(tess, "line_images_as_pnm", lambda: False)()
    return f"{binding} {'PNM' if pnm else 'PNG'} line images ({tess.__file__})"


BASELINE_ENGINE = "e816fbe"  # the last commit with the ctypes binding


def rebase_imports(source: bytes) -> bytes:
    """A file of the flat ``pipeline/`` (before issue 21's layout) importing from this tree's packages."""
    return (source.replace(b"from .errors import", b"from pipeline.runtime.errors import")
            .replace(b"from . import linkpatch", b"from pipeline._exec import linkpatch"))


def baseline_tree(rev: str) -> Path:
    """This tree's code in a temporary folder, with ``pipeline/_exec/tesseract.py`` of ``rev``; its
    benchmarks/out is this tree's (the same cached batch)."""
    tree = Path(tempfile.mkdtemp(prefix="sohoa-engine-baseline-"))
    for name in ("pipeline", "workers", "samples", "schemas", "models", "benchmarks"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("out", "__pycache__"), symlinks=True)
    (tree / "benchmarks" / "out").symlink_to(ROOT / "benchmarks" / "out")
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:pipeline/tesseract.py"], check=True,
                            capture_output=True).stdout  # fmt: skip
    (tree / "pipeline" / "_exec" / "tesseract.py").write_bytes(rebase_imports(source))
    return tree


def bench_sohoa_in(tree: Path, args, workers: int, ocr: dict | None = None) -> tuple[float, dict, dict]:
    """:func:`bench_sohoa` run by a child process on the code in ``tree``."""
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as home:
        out = Path(home) / "result.json"
        subprocess.run([sys.executable, str(tree / "benchmarks" / "throughput.py"), "--pages", str(args.pages),
                        "--pages-per-doc", str(args.pages_per_doc), "--sohoa-only", str(workers),
                        "--json-out", str(out), "--sohoa-ocr", json.dumps(ocr or {})], cwd=tree, check=True,
                       env=dict(os.environ, OMP_THREAD_LIMIT="1", PYTHONPATH=str(tree)))  # fmt: skip
        seconds, summary, peaks = json.loads(out.read_text())
    return seconds, summary, peaks


def engine_rows(args, pdfs: list[Path], n: int) -> list[tuple[str, float, float, str]]:
    """(d) the baseline engine, (e) tesserocr, (f) tesserocr with PNM line images; 2 workers each,
    in the order d e f f e d (the machine is shared and drifts: each figure is the mean of two runs
    placed symmetrically); also the workers' CPU seconds a page, less sensitive to other load."""
    tree = baseline_tree(args.engines)
    results: dict[str, list[tuple[float, dict, dict]]] = {}
    try:
        order = ["d", "e", "f", "f", "e", "d"]
        settings = {"d": None, "e": {}, "f": {"line_images_pnm": True}}
        runs = [(label, settings[label]) for label in order]
        for label, ocr in runs:
            # every run by a child process, the same way: (d) on the baseline tree, (e), (f) on this one
            result = bench_sohoa_in(tree, args, 2) if ocr is None else bench_sohoa_in(ROOT, args, 2, ocr)
            print(f"({label}) {result[1].get('engines')}: {n / result[0]:.3f} pages/s, "
                  f"OCR {result[1]['stage_seconds'].get('ocr', 0):.2f} s a page, "
                  f"worker CPU {result[1].get('worker_cpu_s', 0) / n:.3f} s a page")  # fmt: skip
            results.setdefault(label, []).append(result)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    base = n / (sum(r[0] for r in results["d"]) / len(results["d"]))
    base_cpu = sum(r[1].get("worker_cpu_s", 0) for r in results["d"]) / len(results["d"]) / n
    names = {"d": f"(d) sohoa 2 workers, ctypes {args.engines}", "e": "(e) sohoa 2 workers, tesserocr (default)",
             "f": "(f) the same, PNM line images (opt-in)"}  # fmt: skip
    rows = []
    for label, runs_of in results.items():
        secs = sum(r[0] for r in runs_of) / len(runs_of)
        summary = runs_of[-1][1]
        ocr_s = sum(r[1]["stage_seconds"].get("ocr", 0) for r in runs_of) / len(runs_of)
        cpu = sum(r[1].get("worker_cpu_s", 0) for r in runs_of) / len(runs_of) / n
        each = " and ".join(f"{n / r[0]:.3f}" for r in runs_of)
        rows.append((names[label], secs, n / secs,
                     f"{summary['chars'] / n:.0f} chars/page; ok={summary['ok']} review={summary['needs_review']} "
                     f"failed={summary['failed']}; OCR {ocr_s:.2f} s a page; {100 * n / secs / base:.1f}% of (d); "
                     f"worker CPU {cpu:.3f} s a page ({100 * (cpu / max(base_cpu, 1e-9) - 1):+.1f} % vs (d))"
                     + (f" (runs {each} pages/s)" if len(runs_of) > 1 else "")))  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--pages-per-doc", type=int, default=4)
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    parser.add_argument("--engines", nargs="?", const=BASELINE_ENGINE, default=None, metavar="REV",
                        help="compare the in-process engine with the one of commit REV (default %(const)s)")
    parser.add_argument("--engines-only", action="store_true", help="with --engines: skip (a)-(c)")
    parser.add_argument("--external", action="store_true",
                        help="add (g): an external `dask scheduler` + 2 `dask worker --preload workers.preload` "
                             "processes, next to the 2-worker LocalCluster (issue 22)")
    parser.add_argument("--external-only", action="store_true", help="run only (c) with 2 workers and (g)")
    parser.add_argument("--sohoa-only", type=int, default=0, help=argparse.SUPPRESS)  # the child of --engines
    parser.add_argument("--json-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sohoa-ocr", default="{}", help=argparse.SUPPRESS)  # OcrSettings fields, JSON
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"

    pngs, pdfs = make_batch(args.pages, args.pages_per_doc)
    n = len(pngs)
    if args.sohoa_only:
        with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as home:
            result = bench_sohoa(pdfs, args.sohoa_only, Path(home), ocr=json.loads(args.sohoa_ocr) or None)
        args.json_out.write_text(json.dumps(result))
        return 0
    print(f"batch: {n} pages (300 dpi, office-grade), {len(pdfs)} documents; cores: {os.cpu_count()}")
    if args.external_only:
        rows = external_rows(pdfs, n)
        print()
        print(f"{'method':<44} {'seconds':>8} {'pages/s':>8}  notes")
        for name, secs, pps, notes in rows:
            print(f"{name:<44} {secs:8.1f} {pps:8.3f}  {notes}")
        return 0
    if args.engines and args.engines_only:
        rows = engine_rows(args, pdfs, n)
        print()
        print(f"{'method':<44} {'seconds':>8} {'pages/s':>8}  notes")
        for name, secs, pps, notes in rows:
            print(f"{name:<44} {secs:8.1f} {pps:8.3f}  {notes}")
        return 0
    rows = []
    t_first, raw_chars = bench_tesseract(pngs)
    t, chars = bench_tesseract(prepared_images(pdfs), extra=("--dpi", "300"))
    floor_read = n / t
    rows.append(("(a') the same on sohoa's cleaned pages", t, n / t, f"{chars / n:.0f} chars/page read"))
    if not args.skip_ocrmypdf:
        t = bench_ocrmypdf(pdfs)
        if t is not None:
            rows.append(("(b) ocrmypdf -l vie --deskew --jobs 2", t, n / t, ""))
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as home:
        for workers in (1, 2):
            t, summary, peaks = bench_sohoa(pdfs, workers, Path(home))
            peak = max(peaks.values()) if peaks else 0
            stage_line = ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items())
            print(f"(c) {workers} worker(s): mean seconds a page in the workers: {stage_line}")
            rows.append((f"(c) sohoa, {workers} worker{'s' if workers > 1 else ''}", t, n / t,
                         f"{summary['chars'] / n:.0f} chars/page; ok={summary['ok']} review={summary['needs_review']} "
                         f"failed={summary['failed']}; peak RSS/worker {peak:.0f} MB; {100 * n / t / floor_read:.0f}% of (a')"))
    if args.engines:
        rows.extend(engine_rows(args, pdfs, n))
    if args.external:
        rows.extend(r for r in external_rows(pdfs, n) if r[0].startswith("(g)"))
    t_last, _ = bench_tesseract(pngs)
    t = (t_first + t_last) / 2
    floor = n / t
    rows.insert(0, ("(a) tesseract -l vie, 2 processes (floor)", t, floor,
                    f"{raw_chars / n:.0f} chars/page read; first {n / t_first:.3f}, last {n / t_last:.3f} pages/s"))
    print()
    print(f"{'method':<44} {'seconds':>8} {'pages/s':>8} {'% of floor':>10}  notes")
    for name, secs, pps, notes in rows:
        print(f"{name:<44} {secs:8.1f} {pps:8.3f} {100 * pps / floor:9.0f}%  {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
