"""Load on the HTTP service: bounded concurrent uploads, then proof that each became a record.

    .venv/bin/python benchmarks/api_load.py [--documents 20] [--concurrency 4] [--workers 2]
                                           [--time-limit 600] [--json]

This process is the client. It starts ``sohoa serve`` as a second process (embedded SeaweedFS,
embedded signer, a Dask LocalCluster) in a temporary SOHOA home with a ``unit`` API key, renders
``--documents`` distinct one-page PNG scans (Vietnamese text, A4 at 150 dpi), uploads them with
``--concurrency`` parallel requests (one file per request, one dossier each), and reports
requests per second and the p50/p99 latency of the upload call (the receipt comes back before
any OCR). It then polls ``GET /api/v1/documents/{id}`` until every accepted upload has a final
status (ok / needs_review / failed, read from its stored record) or the time limit passes.
Exit status 0 only when every accepted upload produced a record.

Then the server's memory under large uploads (issue 19): ``--large-mb`` MB scans (noise PNGs, the
worst case for compression), sent by ``--concurrency`` clients at once, first one file per request
(the baseline), then three files per request (three times the request size). The server
process's resident memory (psutil, sampled every 20 ms; its Dask workers are other processes) is
printed for both next to the bytes sent: spooled uploads keep the growth from following the
request size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
UNIT = "000.00.01.H53"
FINAL = ("ok", "needs_review", "failed")


def render_page(n: int) -> bytes:
    """A distinct one-page công văn (A4, 150 dpi) as PNG."""
    font = ImageFont.truetype(FONT, 26)
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    lines = [
        "ỦY BAN NHÂN DÂN                 CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "HUYỆN ĐÔNG ANH                          Độc lập - Tự do - Hạnh phúc",
        f"Số: {100 + n}/UBND-VP                         Đông Anh, ngày {1 + n % 28} tháng 3 năm 2024",
        "V/v số hóa hồ sơ, giấy tờ, kết quả giải quyết thủ tục hành chính",
        "Kính gửi: Bộ phận Một cửa các xã, thị trấn",
        f"Ủy ban nhân dân huyện đề nghị các đơn vị rà soát {n + 3} hồ sơ tồn đọng và cập nhật",
        "kết quả số hóa vào Kho quản lý dữ liệu điện tử của tổ chức, cá nhân trước ngày 30/4/2024.",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Nguyễn Văn Bình",
    ]
    y = 120
    for line in lines:
        draw.text((110, y), line, font=font, fill=0)
        y += 70
    buf = io.BytesIO()
    image.save(buf, format="PNG", dpi=(150, 150))
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sohoa(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, check=True, **kwargs)


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "SOHOA_HOME": str(home), "OMP_THREAD_LIMIT": "1"}
    log = open(home / "serve.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--home", str(home), "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen, home: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sohoa serve exited ({proc.returncode}):\n{(home / 'serve.log').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("sohoa serve did not become ready")


def upload_all(url: str, key: str, pages: list[bytes], concurrency: int, deadline: float) -> list[dict]:
    """Upload each page as its own dossier; returns per-request results with latency."""
    headers = {"Authorization": f"Bearer {key}"}

    def one(n: int) -> dict:
        if time.monotonic() > deadline:
            return {"n": n, "skipped": True}
        dossier = f"{UNIT}-240301-{n + 1:04d}"
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            t0 = time.perf_counter()
            resp = client.post(f"/api/v1/dossiers/{dossier}/documents",
                               files=[("files", (f"cong-van-{n + 1}.png", pages[n], "image/png"))])
            latency = time.perf_counter() - t0
        ok = resp.status_code == 202
        return {"n": n, "status_code": resp.status_code, "latency_s": latency,
                "document_id": resp.json()["documents"][0]["document_id"] if ok else None}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(len(pages))))


def wait_records(url: str, key: str, document_ids: list[str], deadline: float) -> dict[str, dict]:
    """Poll until every document has a final status (from its stored record) or the deadline."""
    headers = {"Authorization": f"Bearer {key}"}
    final: dict[str, dict] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while len(final) < len(document_ids) and time.monotonic() < deadline:
            for doc in document_ids:
                if doc in final:
                    continue
                body = client.get(f"/api/v1/documents/{doc}").json()
                if body.get("status") in FINAL and body.get("version"):
                    final[doc] = body
            time.sleep(1.0)
    return final


def noise_png(megabytes: float, seed: int) -> bytes:
    """A valid PNG of about ``megabytes`` MB that does not compress (random grey noise)."""
    import numpy as np

    side = int((megabytes * 1e6) ** 0.5)
    arr = np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, format="PNG", dpi=(300, 300), compress_level=1)
    return buf.getvalue()


def peak_rss_during(pid: int, work) -> tuple[int, int, object]:
    """(resident bytes before, peak resident bytes while ``work()`` runs, its result) of ``pid``."""
    import threading

    import psutil

    proc = psutil.Process(pid)
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        result = work()
    finally:
        done.set()
        t.join()
    return before, peak[0], result


def large_uploads(url: str, key: str, pid: int, megabytes: float, concurrency: int, files_per_request: int,
                  seed: int) -> dict:  # fmt: skip
    """``concurrency`` requests at once, each with ``files_per_request`` noise PNGs; the server's RSS."""
    pngs = [[noise_png(megabytes, seed + 100 * r + f) for f in range(files_per_request)] for r in range(concurrency)]
    headers = {"Authorization": f"Bearer {key}"}

    def one(r: int) -> int:
        dossier = f"{UNIT}-240302-{seed + r:04d}"
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            resp = client.post(f"/api/v1/dossiers/{dossier}/documents",
                               files=[("files", (f"large-{r}-{f}.png", data, "image/png")) for f, data in enumerate(pngs[r])])
        return resp.status_code

    def work():
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, range(concurrency)))

    before, peak, codes = peak_rss_during(pid, work)
    sent = sum(len(d) for req in pngs for d in req)
    return {"files_per_request": files_per_request, "requests": concurrency, "bytes_sent": sent,
            "per_request_mb": round(sent / concurrency / 1e6, 1), "status_codes": codes,
            "server_rss_before_mb": round(before / 1e6), "server_rss_peak_mb": round(peak / 1e6),
            "server_rss_growth_mb": round((peak - before) / 1e6)}


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=600, help="seconds for uploads and processing together")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--large-mb", type=float, default=20.0, help="size of each large upload's files (0: skip)")
    args = parser.parse_args()

    pages = [render_page(n) for n in range(args.documents)]
    with tempfile.TemporaryDirectory(prefix="sohoa-api-load-") as tmp:
        home = Path(tmp)
        key = sohoa("apikey", "--home", str(home), "create", "--unit", UNIT, "--role", "unit").stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(home, port, args.workers)
        try:
            t_start = time.monotonic()
            wait_ready(url, proc, home)
            startup = time.monotonic() - t_start
            deadline = time.monotonic() + args.time_limit
            t0 = time.perf_counter()
            results = upload_all(url, key, pages, args.concurrency, deadline)
            upload_s = time.perf_counter() - t0
            accepted = [r for r in results if r.get("status_code") == 202]
            latencies = [r["latency_s"] for r in accepted]
            t1 = time.perf_counter()
            final = wait_records(url, key, [r["document_id"] for r in accepted], deadline)
            processing_s = time.perf_counter() - t1
            large = []
            if args.large_mb > 0:
                for n, per_request in enumerate((1, 3)):  # the baseline, then three times the request size
                    large.append(large_uploads(url, key, proc.pid, args.large_mb, args.concurrency, per_request, 1000 * (n + 1)))
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # uvicorn shuts down, then the cluster and services
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    by_status: dict[str, int] = {}
    for body in final.values():
        by_status[body["status"]] = by_status.get(body["status"], 0) + 1
    summary = {
        "documents": args.documents,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "service_startup_s": round(startup, 1),
        "uploads_accepted": len(accepted),
        "uploads_refused": sum(1 for r in results if r.get("status_code") not in (None, 202)),
        "uploads_skipped_by_time_limit": sum(1 for r in results if r.get("skipped")),
        "upload_requests_per_s": round(len(accepted) / upload_s, 2) if upload_s else 0.0,
        "upload_latency_p50_ms": round(1000 * percentile(latencies, 50), 1) if latencies else None,
        "upload_latency_p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "records": len(final),
        "records_by_status": by_status,
        "records_complete_after_uploads_s": round(processing_s, 1),
        "every_upload_has_a_record": len(final) == len(accepted) and bool(accepted),
        "large_uploads": large,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for k, v in summary.items():
            if k != "large_uploads":
                print(f"{k:>30}: {v}")
        for row in summary["large_uploads"]:
            print(f"{'large uploads':>30}: {row['requests']} requests at once × {row['files_per_request']} file(s) "
                  f"({row['per_request_mb']} MB a request, {row['bytes_sent'] / 1e6:.0f} MB in all, HTTP {row['status_codes']}): "
                  f"server RSS {row['server_rss_before_mb']} → peak {row['server_rss_peak_mb']} MB "
                  f"(+{row['server_rss_growth_mb']} MB)")
    return 0 if summary["every_upload_has_a_record"] else 1


if __name__ == "__main__":
    sys.exit(main())
