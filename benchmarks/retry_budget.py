"""Worst case of the retries against a dead S3 endpoint, before (HEAD) and after (this tree).

Issue 21 item 4: urllib3 ``Retry(2)`` inside ``Warehouse._call`` (6 tries) inside ``STORE_RETRY``
(7 tries) nested to a nominal worst case of ~160 s for one store, while loading gave up after
~15 s; now one layer (``pipeline.runtime.retry``) with one budget (``SOHOA_RETRY_BUDGET_S``, 180 s).

For each tree and each path — *load* (``Warehouse.get_original``, what a page task does first)
and *store* (a write of the store stage: before, ``retry(put, STORE_RETRY)`` as
``finalize_document`` did; after, the put inside the document's retry deadline as
``store_document`` does) — a child process talks to a loopback "S3 server" that accepts every
connection and closes it at once (an endpoint that is down: every try fails as fast as it can).
Printed: the seconds until the path gives up and the HTTP attempts it made (connections
accepted). Both trees are measured in the same run, in parallel (the waits are sleeps).

    .venv/bin/python benchmarks/retry_budget.py [--base DIR]   # DIR: a checkout of HEAD (made if absent)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pipeline.runtime.config import WarehouseSettings
from pipeline.warehouse.layout import Warehouse
path, endpoint = sys.argv[1], sys.argv[2]
wh = Warehouse(WarehouseSettings(endpoint=endpoint, access_key="k", secret_key="s", bucket="sohoa", retention_days=0))
doc = "ab" * 32
t0 = time.monotonic()
try:
    if path == "load":
        wh.get_original(doc)
    else:
        try:
            from pipeline.runtime.document import STORE_RETRY  # before: the store stage retried whole
            from pipeline.runtime.retry import retry
            retry(lambda: wh.put_pdf(doc, b"%PDF"), STORE_RETRY)
        except ImportError:  # after: one layer, one deadline for the document's store
            from pipeline.runtime.retry import deadline
            with deadline(wh.retry_policy.budget_s):
                wh.put_pdf(doc, b"%PDF")
    error = None
except Exception as exc:
    error = type(exc).__name__ + ": " + str(exc)[:80]
print(json.dumps({"seconds": time.monotonic() - t0, "error": error}))
"""


class ClosingServer:
    """Accepts every connection and closes it at once; counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


def base_tree(path: Path) -> Path:
    if not (path / "pipeline").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=Path("/tmp/sohoa-retry-base"))
    args = parser.parse_args()
    trees = {"before (HEAD)": base_tree(args.base), "after (this tree)": ROOT}
    runs = []
    for label, tree in trees.items():
        for path in ("load", "store"):
            server = ClosingServer()
            env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
            env["PYTHONPATH"] = str(tree)
            proc = subprocess.Popen([sys.executable, "-c", CHILD, path, server.endpoint], cwd=tree, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
            runs.append((label, path, server, proc))
    print(f"{'tree':20} {'path':6} {'gives up after':>15} {'HTTP attempts':>14}  error")
    for label, path, server, proc in runs:
        out, err = proc.communicate()
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"{label:20} {path:6} failed: {err[-500:]}")
            continue
        print(f"{label:20} {path:6} {result['seconds']:>13.1f} s {server.count:>14}  {result['error']}")
        server.sock.close()


if __name__ == "__main__":
    main()
