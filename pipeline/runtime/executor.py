"""Executors: where tasks run. Dask distributed (a LocalCluster or any scheduler by address)
or inline in this process (debugging, unit tests). Both share one small interface."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

from pipeline.runtime.config import ClusterSettings, Settings


class Executor(Protocol):
    def submit(self, fn: Callable, *args: Any, key: str | None = None, resources: dict | None = None) -> Any: ...

    def wait_any(self, futures: list[Any]) -> list[Any]: ...

    def worker_count(self) -> int: ...


class InlineExecutor:
    """Runs each task at submission, in this process. Futures in arguments are resolved."""

    def submit(self, fn: Callable, *args: Any, key: str | None = None, resources: dict | None = None) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*(_resolve(a) for a in args)))
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)
        return fut

    def wait_any(self, futures: list[Any]) -> list[Any]:
        return [f for f in futures if f.done()]

    def worker_count(self) -> int:
        return 1


def _resolve(value: Any) -> Any:
    if isinstance(value, Future):
        return value.result()
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


class DaskExecutor:
    """Submits to a ``distributed.Client``. OCR tasks ask for the ``ocr`` resource when the
    workers advertise it, so that a worker never runs more OCR processes than it has cores."""

    def __init__(self, client):
        self.client = client
        info = client.scheduler_info()
        self._use_ocr_resource = any("ocr" in (w.get("resources") or {}) for w in info.get("workers", {}).values())

    def submit(self, fn: Callable, *args: Any, key: str | None = None, resources: dict | None = None):
        kwargs: dict[str, Any] = {"pure": False}
        if key:
            kwargs["key"] = key
        if resources and self._use_ocr_resource:
            kwargs["resources"] = resources
        return self.client.submit(fn, *args, **kwargs)

    def wait_any(self, futures: list[Any]) -> list[Any]:
        from distributed import wait  # deferred: loads dask, distributed, numpy

        done, _ = wait(futures, return_when="FIRST_COMPLETED")
        return list(done)

    def worker_count(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))


#: Dask settings of the LocalCluster ``sohoa digitize`` starts (its workers inherit them). It has
#: no dashboard, so nobody reads the statistical profiler (it samples every thread's stack 100
#: times a second in each worker's event loop) or fine-grained system metrics; and a worker
#: runs one multi-second page at a time, so its event loop need not check its own health every
#: 20 ms nor its memory every 100 ms. Measured on an idle 2-worker cluster: 2.0–2.3 % of a core
#: per worker with Dask's defaults (the 20 ms tick alone ~1.5 %), 0.35–0.4 % with these.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",  # event-loop health check (warns past tick.limit, 3 s)
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",  # spill / pause / terminate thresholds
    # Dask's scheduler and workers open an HTTP listener whatever the dashboard setting (the
    # scheduler on 8787 by default, serving /info pages that list workers, /metrics, /health):
    # with no routes it answers 404 to everything, and the scheduler's listens on a random
    # loopback port (``LOCAL_SCHEDULER_HTTP``), so the LocalCluster serves no HTTP (issue 22)
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
}

#: Where the LocalCluster scheduler's (route-less) HTTP listener binds: loopback, any free
#: port — not 8787, which a deployment's dashboard on the same host may hold.
LOCAL_SCHEDULER_HTTP = "127.0.0.1:0"


@contextlib.contextmanager
def dask_client(cluster: ClusterSettings, settings: Settings | None = None) -> Iterator[Any]:
    """A Client on the scheduler at ``cluster.scheduler_address``, or on a new LocalCluster whose
    workers run with ``OMP_THREAD_LIMIT=1`` and one ``ocr`` resource per single-thread worker."""
    import dask  # deferred: loads dask, yaml, psutil
    from distributed import Client, LocalCluster  # deferred: loads dask, distributed, numpy

    from workers.plugin import SohoaWorkerPlugin  # deferred: loads dask, distributed, numpy

    if cluster.scheduler_address:
        if settings is not None:
            from pipeline.runtime.orchestrate import (
                remote_scheduler_warnings,  # deferred: import cycle (pipeline.runtime.orchestrate imports pipeline.runtime.executor)
            )

            for warning in remote_scheduler_warnings(settings):
                logging.getLogger("sohoa.executor").warning("%s", warning)
        client = Client(cluster.scheduler_address, timeout="30s")
        local = None
    else:
        for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.ERROR)  # a local cluster's chatter is noise to a CLI user
        n_workers = cluster.n_workers or os.cpu_count() or 1
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            local = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=cluster.threads_per_worker,
                processes=True,
                memory_limit=cluster.memory_limit,
                resources={"ocr": cluster.threads_per_worker},
                env={"OMP_THREAD_LIMIT": "1"},
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": LOCAL_SCHEDULER_HTTP},
                silence_logs=logging.ERROR,
            )
        client = Client(local)
    try:
        if settings is not None:
            from pipeline.runtime.orchestrate import (
                task_settings,  # deferred: import cycle (pipeline.runtime.orchestrate imports pipeline.runtime.executor)
            )

            settings = task_settings(settings)  # what the tasks carry: the workers check it at join
        # a worker that lacks what the run needs refuses to join: the error (WorkerRefused, with
        # the reason) stops the run here, before any document is accepted
        client.register_plugin(SohoaWorkerPlugin(settings=settings), name="sohoa")
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()
