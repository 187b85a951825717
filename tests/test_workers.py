"""The Dask worker runtime: what the sohoa worker plugin does to a worker process."""

from __future__ import annotations

import pytest

PAGE_BYTES = 9_000_000  # a grey A4 page at 300 dpi


def _faults_to_allocate_a_page_again(times: int = 10) -> int:
    """Minor page faults taken to allocate and fill a page-sized buffer ``times`` more times
    (at least one a huge page where the kernel backs numpy's arrays with them)."""
    import resource

    import numpy as np

    first = np.ones(PAGE_BYTES, np.uint8)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        again = np.ones(PAGE_BYTES, np.uint8)
        del again
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.timeout(180)
def test_plugin_makes_a_worker_reuse_page_buffers_instead_of_faulting_them_in_again():
    """Under the Dask nanny's MALLOC_TRIM_THRESHOLD_ every page-sized array is a fresh mmap whose
    pages (4 KiB or 2 MiB) fault in again (load, deskew and clean-up then cost twice their CPU); with
    the plugin the heap keeps and reuses them."""
    from distributed import Client, LocalCluster

    from workers.plugin import SohoaWorkerPlugin

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"OMP_THREAD_LIMIT": "1"}) as cluster, Client(cluster) as client:  # fmt: skip
        # a fresh worker's first task grows its thread's heap: measure from the second
        client.submit(_faults_to_allocate_a_page_again, pure=False).result()
        untuned = client.submit(_faults_to_allocate_a_page_again, pure=False).result()
        client.register_plugin(SohoaWorkerPlugin())
        tuned = client.submit(_faults_to_allocate_a_page_again, pure=False).result()
    assert untuned >= 10 * (PAGE_BYTES // (2 << 20)), "the nanny's default malloc setting no longer applies"
    assert tuned <= 5


def _worker_state() -> dict:
    import ctypes
    import sys

    import cv2
    import dask

    tesseract = sys.modules.get("pipeline.tesseract")
    writer = tesseract.line_image_writer() if tesseract and tesseract._library.cache_info().currsize else None
    return {
        "opencv_threads": cv2.getNumThreads(),
        "profiler": dask.config.get("distributed.worker.profile.enabled"),
        "tick": dask.config.get("distributed.admin.tick.interval"),
        "memory_monitor": dask.config.get("distributed.worker.memory.monitor-interval"),
        "stages_imported": "pipeline.deskew" in sys.modules and "pyhanko.sign.signers" in sys.modules,
        "line_images_as_pnm": writer is not None and ctypes.c_void_p.from_address(writer[0].address).value == writer[2],
    }


@pytest.mark.timeout(180)
def test_a_local_cluster_worker_is_ready_for_one_page_per_core_when_it_joins():
    """`sohoa digitize`'s LocalCluster: OpenCV runs in the task's thread only (its own pool would
    compete with the other workers for the cores), the statistical profiler no dashboard shows
    is off, the event loop checks its health and memory every 500 ms (not every 20 and 100 ms),
    the stages are imported and Tesseract keeps line images as PNM — before the first task."""
    import cv2

    from pipeline.config import ClusterSettings
    from pipeline.executor import dask_client

    assert cv2.getNumThreads() > 1 or cv2.getNumCPUs() == 1  # what a process gets by default
    with dask_client(ClusterSettings(n_workers=1)) as client:
        states = list(client.run(_worker_state).values())
    assert states == [{"opencv_threads": 1, "profiler": False, "tick": "500ms", "memory_monitor": "500ms",
                       "stages_imported": True, "line_images_as_pnm": True}]  # fmt: skip
