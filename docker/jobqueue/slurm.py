"""sohoa on an HPC cluster with Slurm (dask-jobqueue): OCR workers as batch jobs, the driver here.

    pip install dask-jobqueue             # on the login node, next to sohoa
    python docker/jobqueue/slurm.py /shared/scans/2025 [--jobs 4]

The warehouse (S3) and the signer are EXTERNAL services, not started here: give their
addresses in the environment of this script (``SOHOA_WAREHOUSE``, ``SOHOA_S3_ACCESS_KEY``,
``SOHOA_S3_SECRET_KEY``, ``SOHOA_SIGNER_URL``, ``SOHOA_SIGNER_USER``, ``SOHOA_SIGNER_PASSWORD``,
``SOHOA_SIGNER_PIN``; README "Configuration"), reachable from the compute nodes. The
personal-data key ring (``SOHOA_PII_KEYRING``) is read here only: the compute nodes get no key
material (the driver ships the ring's public part with the run's settings). The compute nodes
need the same sohoa installation (a shared virtual environment, or the container image) and
Tesseract with its ``vie`` data: a worker without them exits at start with the reason.

One single-threaded worker per core (``processes == cores``): Tesseract reads one page per
thread, and ``OMP_THREAD_LIMIT=1`` keeps its OpenMP threads from thrashing.
"""

from __future__ import annotations

import argparse
import sys

#: one Slurm job: a whole 32-core node, one single-threaded Dask worker per core
CORES_PER_JOB = 32
MEMORY_PER_JOB = "96GB"  # ~3 GB a worker: a page at 600 dpi and its copies stays under 1 GiB
SOHOA_VENV = "/opt/sohoa/.venv"  # the shared installation on the compute nodes


def make_cluster(jobs: int):
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        cores=CORES_PER_JOB,
        processes=CORES_PER_JOB,  # == cores: single-threaded workers
        memory=MEMORY_PER_JOB,
        walltime="08:00:00",
        queue="cpu",
        python=f"{SOHOA_VENV}/bin/python",  # the workers' interpreter on the compute nodes
        job_script_prologue=[
            f"source {SOHOA_VENV}/bin/activate",
            "export OMP_THREAD_LIMIT=1",
            "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=false",
        ],
        worker_extra_args=["--resources", "ocr=1", "--preload", "workers.preload"],
        scheduler_options={"dashboard_address": ":8787"},
        log_directory="sohoa-dask-logs",
    )
    cluster.adapt(minimum_jobs=1, maximum_jobs=jobs)
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="folders, files or s3:// prefixes of scans")
    parser.add_argument("--jobs", type=int, default=4, help="at most this many Slurm jobs (nodes)")
    args = parser.parse_args(argv)

    from pipeline.cli import main as sohoa

    cluster = make_cluster(args.jobs)
    try:
        return sohoa(["digitize", *args.paths, "--scheduler", cluster.scheduler_address, "--no-progress"])
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
