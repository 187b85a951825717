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

    from pipeline.cleanup import cleanup_page
    from pipeline.config import Settings
    from pipeline.deskew import deskew_page
    from pipeline.load import probe, render_page

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


def bench_sohoa(pdfs: list[Path], workers: int, home: Path) -> tuple[float, dict, dict]:
    from dataclasses import replace

    from pipeline.config import ClusterSettings, Settings
    from pipeline.executor import DaskExecutor, dask_client
    from pipeline.inputs import InputFile
    from pipeline.orchestrate import BatchRunner
    from pipeline.services import running_services
    from pipeline.warehouse import Warehouse

    cluster = ClusterSettings(n_workers=workers, threads_per_worker=1)
    settings = Settings(home=home, cluster=cluster)
    with running_services(settings) as resolved:
        resolved = resolved.replace(warehouse=replace(resolved.warehouse, bucket=f"bench-{workers}w-{int(time.time())}"))
        warehouse = Warehouse(resolved.warehouse)
        from pipeline.s3server import EmbeddedS3

        s3 = EmbeddedS3(home)  # the running embedded server, adopted: its setup identity makes buckets
        s3.start()
        s3.ensure_bucket(resolved.warehouse.bucket)
        # SeaweedFS allocates a new bucket's volumes on its first write (~1 s here): a batch
        # writes into a warehouse that has them already
        warehouse._put("benchmark/warm-up", b"{}", "application/json")
        # the cluster `sohoa digitize` starts: LocalCluster, one single-thread worker per core
        # asked for, OMP_THREAD_LIMIT=1, the worker plugin registered (pipeline.executor)
        with dask_client(cluster, resolved) as client:
            runner = BatchRunner(resolved, DaskExecutor(client), Warehouse(resolved.warehouse))
            t0 = time.perf_counter()
            summary = runner.run(InputFile(p, explicit=True) for p in pdfs)
            seconds = time.perf_counter() - t0

            def peak_rss_mb() -> float:
                # VmHWM, the peak of this process's own memory: getrusage's ru_maxrss also counts
                # what the parent held when it forked the worker (the driver's, after rendering)
                with open("/proc/self/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            return int(line.split()[1]) / 1024
                return 0.0

            peaks = client.run(peak_rss_mb)
            records = list(Warehouse(resolved.warehouse).iter_records())
            chars = sum(len("".join((r.get("text") or "").split())) for r in records)
            stages: dict[str, list[float]] = {}
            for r in records:
                for page in r.get("pages") or []:
                    for stage, secs in (page.get("seconds") or {}).items():
                        stages.setdefault(stage, []).append(secs)
            per_page = {k: sum(v) / len(v) for k, v in stages.items()}
    return seconds, {**summary.as_dict(), "chars": chars, "stage_seconds": per_page}, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--pages-per-doc", type=int, default=4)
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"

    pngs, pdfs = make_batch(args.pages, args.pages_per_doc)
    n = len(pngs)
    print(f"batch: {n} pages (300 dpi, office-grade), {len(pdfs)} documents; cores: {os.cpu_count()}")
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
