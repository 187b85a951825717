"""Catalog lookups and signing throughput, with baselines, in one run.

    .venv/bin/python benchmarks/catalog.py [--sizes 10000 100000] [--queries 200] [--deltas 300]
                                           [--sign-seconds 10] [--json OUT.json]

Catalog: for each size, synthetic rows are written straight into a base Parquet generation
(``write_generation``) on an embedded SeaweedFS, plus ``--deltas`` records through
``catalog_add`` (a third of them new versions of base documents). Then

* cold: a new :class:`Catalog` with an empty cache answers one query by number — LIST, the
  downloads of the manifest, the base part and every delta, the DuckDB load and the query;
* warm: ``--queries`` random lookups by number, by subject (blind index, computed under every
  key of the ring per query) and by issuer substring, p50/p99;
* baselines on the same rows: DuckDB ``read_csv`` of a local CSV per query, and a Python
  linear scan over a list of dicts;
* compaction of the deltas into the base.

Signing: the embedded CSC signer over HTTP on loopback, ``RemoteSigner.sign_digests`` with
batches of 1 and 50 (one authorise + one signHash round trip per batch) and ``sign_record``
sequentially. Figures depend on the machine (a shared 2-core VM here): compare within a run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ISSUERS = [
    "Ủy ban nhân dân thành phố Hà Nội", "Ủy ban nhân dân tỉnh Quảng Ninh", "Sở Nội vụ", "Sở Tài chính",
    "Văn phòng Chính phủ", "Bộ Tư pháp", "Bộ Tài chính", "Thủ tướng Chính phủ", "Sở Kế hoạch và Đầu tư",
    "Ủy ban nhân dân quận Cầu Giấy", "Ủy ban nhân dân huyện Gia Lâm", "Sở Thông tin và Truyền thông",
] + [f"Ủy ban nhân dân xã Đông Hội {i}" for i in range(40)]
DOC_TYPES = [("Quyết định", "QĐ"), ("Công văn", "CV"), ("Thông báo", "TB"), ("Kế hoạch", "KH"), ("Báo cáo", "BC"),
             ("Tờ trình", "TTr"), ("Chỉ thị", "CT"), ("Hướng dẫn", "HD"), ("Giấy mời", "GM")]
ABBR = ["UBND", "SNV", "STC", "VPCP", "BTP", "BTC", "TTg", "SKHĐT", "KSTT", "VX"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def synthetic_rows(n: int, ring, rng: random.Random) -> tuple[list[dict], list[str], list[str]]:
    """Catalog rows, the clear numbers and the clear subject ids (for queries only)."""
    from pipeline.records.pii import blind_index
    from pipeline.warehouse.catalog.index import fold_text, normalize_number
    from pipeline.warehouse.layout import Warehouse

    at = datetime.now(UTC) - timedelta(days=1)
    rows, numbers, subjects = [], [], []
    start = date(2015, 1, 1)
    for i in range(n):
        document_id = hashlib.sha256(f"doc-{i}".encode()).hexdigest()
        doc_type, short = DOC_TYPES[i % len(DOC_TYPES)]
        number = f"{i // 7 + 1}/{short}-{ABBR[i % len(ABBR)]}"
        if i % 3 == 0:  # a third of the documents concern a person (số định danh cá nhân)
            pid = f"{rng.randint(1, 96):03d}{rng.randint(0, 3)}{rng.randint(0, 99):02d}{rng.randint(0, 999999):06d}"
            subs = [blind_index(pid, ring)]
            subjects.append(pid)
        else:
            subs = []
        issuer = ISSUERS[rng.randrange(len(ISSUERS))]
        rows.append({
            "document_id": document_id, "record_type": "admin_document", "version": 1,
            "status": "ok" if rng.random() < 0.85 else "needs_review",
            "number": number, "number_norm": normalize_number(number),
            "doc_type": doc_type, "doc_type_fold": fold_text(doc_type),
            "issuer": issuer, "issuer_fold": fold_text(issuer),
            "date": start + timedelta(days=rng.randrange(3650)), "subjects": subs,
            "unit": f"000.00.{rng.randint(1, 30):02d}.H26", "source_file": f"scan-{i:06d}.pdf",
            "record_key": Warehouse.record_key(document_id), "catalogued_at": at,
        })
        numbers.append(number)
    return rows, numbers, subjects


def delta_record(i: int, n: int, rng: random.Random) -> dict:
    """A stored record for catalog_add: a new document, or (one in three) a new version."""
    if i % 3 == 0:
        j, version = rng.randrange(n), 2
        name = f"doc-{j}"
    else:
        j, version = n + i, 1
        name = f"new-{i}"
    doc_type, short = DOC_TYPES[j % len(DOC_TYPES)]
    return {
        "record_type": "admin_document", "document_id": hashlib.sha256(name.encode()).hexdigest(),
        "version": version, "source_file": f"{name}.pdf", "status": "ok",
        "fields": {"number": f"{j // 7 + 1}/{short}-{ABBR[j % len(ABBR)]}", "doc_type": doc_type,
                   "issuer": ISSUERS[j % len(ISSUERS)], "date": "2024-05-02"},
        "provenance": {"unit": "000.00.01.H26"},
    }


def bench_size(s3_settings, n: int, args, ring, work: Path) -> dict[str, Any]:
    import duckdb

    from pipeline.warehouse.catalog.index import (
        Catalog,
        catalog_add,
        compact,
        fold_text,
        latest_rows,
        normalize_number,
        rows_table,
        write_generation,
    )
    from pipeline.warehouse.layout import Warehouse

    rng = random.Random(n)
    wh = Warehouse(replace(s3_settings, bucket=f"bench-catalog-{n}", retention_days=0))
    wh.ensure_bucket()
    rows, numbers, subjects = synthetic_rows(n, ring, rng)
    t0 = time.perf_counter()
    write_generation(wh, latest_rows(rows_table(rows)), expected=None)
    base_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: catalog_add(wh, delta_record(i, n, rng)), range(args.deltas)))
    delta_s = time.perf_counter() - t0

    cache = work / f"cache-{n}"
    cat = Catalog(wh, cache, keyring=ring, max_age_s=None)
    cold_ms = timed(lambda: cat.find(number=numbers[0]))
    assert cat.count() >= n
    q_numbers = [rng.choice(numbers) for _ in range(args.queries)]
    q_subjects = [rng.choice(subjects) for _ in range(args.queries)]
    q_issuers = [rng.choice(["uy ban nhan dan", "Sở Nội", "chinh phu", "gia lam"]) for _ in range(args.queries)]
    for q in q_numbers[:10]:
        assert cat.find(number=q), q
    by_number = [timed(lambda q=q: cat.find(number=q)) for q in q_numbers]
    by_subject = [timed(lambda q=q: cat.find(subject=q)) for q in q_subjects]
    by_issuer = [timed(lambda q=q: cat.find(issuer=q, date_from="2020-01-01", limit=100)) for q in q_issuers]
    unchanged_refresh_ms = timed(cat.refresh)

    # baselines on the same rows
    csv_path = work / f"rows-{n}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["document_id", "number", "number_norm", "doc_type", "issuer", "date", "status", "subjects"])
        for r in rows:
            w.writerow([r["document_id"], r["number"], r["number_norm"], r["doc_type"], r["issuer"], r["date"],
                        r["status"], ";".join(r["subjects"])])
    con = duckdb.connect()
    nb = max(10, args.queries // 10)
    csv_number = [
        timed(lambda q=q: con.execute(f"SELECT * FROM read_csv('{csv_path}') WHERE number_norm = ?",
                                      [normalize_number(q)]).fetchall())
        for q in q_numbers[:nb]
    ]
    csv_subject = [
        timed(lambda q=q: con.execute(f"SELECT * FROM read_csv('{csv_path}') WHERE list_has_any(string_split(subjects, ';'), ?::VARCHAR[])",
                                      [ring.blind_indexes(q)]).fetchall())
        for q in q_subjects[:nb]
    ]
    def py_number(q: str) -> list:
        key = normalize_number(q)
        return [r for r in rows if r["number_norm"] == key]

    def py_issuer(q: str) -> list:
        key = fold_text(q)
        return [r for r in rows if key in r["issuer_fold"]]

    py_num = [timed(lambda q=q: py_number(q)) for q in q_numbers[:nb]]

    def py_subject(q: str) -> list:
        keys = set(ring.blind_indexes(q))
        return [r for r in rows if keys.intersection(r["subjects"])]

    py_subj = [timed(lambda q=q: py_subject(q)) for q in q_subjects[:nb]]
    py_iss = [timed(lambda q=q: py_issuer(q)) for q in q_issuers[:nb]]
    con.close()

    t0 = time.perf_counter()
    merged = compact(wh)
    compact_s = time.perf_counter() - t0
    cold2 = Catalog(wh, work / f"cache2-{n}", keyring=ring, max_age_s=None)
    cold_after_compact_ms = timed(lambda: cold2.find(number=numbers[0]))
    cache_mb = sum(p.stat().st_size for p in (work / f"cache2-{n}").iterdir()) / 1e6
    cat.close()
    cold2.close()
    return {
        "rows": n, "deltas": args.deltas, "write_base_s": base_s, "write_deltas_s": delta_s,
        "cold_ms": cold_ms, "cold_after_compact_ms": cold_after_compact_ms, "refresh_unchanged_ms": unchanged_refresh_ms,
        "number_p50": pct(by_number, .5), "number_p99": pct(by_number, .99),
        "subject_p50": pct(by_subject, .5), "subject_p99": pct(by_subject, .99),
        "issuer_p50": pct(by_issuer, .5), "issuer_p99": pct(by_issuer, .99),
        "csv_number_p50": pct(csv_number, .5), "csv_subject_p50": pct(csv_subject, .5),
        "py_number_p50": pct(py_num, .5), "py_subject_p50": pct(py_subj, .5), "py_issuer_p50": pct(py_iss, .5),
        "compact_s": compact_s, "merged": merged, "base_mb": cache_mb,
    }


def bench_signing(seconds: float, work: Path) -> dict[str, float]:
    from pipeline.embedded.signer.embedded import start_embedded_signer
    from pipeline.signing.sign import RemoteSigner

    out: dict[str, float] = {}
    with start_embedded_signer(work / "signer") as signer:
        client = RemoteSigner(signer.settings)
        client.sign_digests([hashlib.sha256(b"warm-up").digest()])
        for batch in (1, 50):
            done, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                client.sign_digests([hashlib.sha256(f"{done + k}".encode()).digest() for k in range(batch)])
                done += batch
            out[f"sign_digests_batch{batch}_per_s"] = done / (time.perf_counter() - t0)
        record = delta_record(1, 10, random.Random(0))
        record["text"] = "x" * 4000
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            client.sign_record(record)
            done += 1
        out["sign_record_per_s"] = done / (time.perf_counter() - t0)
        client.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--deltas", type=int, default=300)
    parser.add_argument("--sign-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    from pipeline.embedded.s3server import EmbeddedS3
    from pipeline.records.pii import KeyRing

    ring = KeyRing.generate()
    ring.rotate()  # two keys: subject lookups compute a blind index under each
    results: dict[str, Any] = {"catalog": [], "signing": {}}
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-catalog-") as tmp:
        work = Path(tmp)
        server = EmbeddedS3(work / "s3")
        s3_settings = server.start()
        try:
            for n in args.sizes:
                print(f"catalog: {n} rows ...", file=sys.stderr, flush=True)
                results["catalog"].append(bench_size(s3_settings, n, args, ring, work))
        finally:
            server.stop()
        if args.sign_seconds > 0:
            print("signing ...", file=sys.stderr, flush=True)
            results["signing"] = bench_signing(args.sign_seconds, work)

    print(f"\nCatalog lookups (ms; {args.queries} random queries each, warm cache; cold = new cache, incl. LIST + downloads + load)")
    head = ("rows", "deltas", "cold", "cold*", "number p50", "number p99", "subject p50", "subject p99",
            "issuer p50", "issuer p99", "CSV num p50", "CSV subj p50", "py num p50", "py subj p50", "py iss p50")
    print(" | ".join(f"{h:>12}" for h in head))
    for r in results["catalog"]:
        vals = (r["rows"], r["deltas"], r["cold_ms"], r["cold_after_compact_ms"], r["number_p50"], r["number_p99"],
                r["subject_p50"], r["subject_p99"], r["issuer_p50"], r["issuer_p99"], r["csv_number_p50"],
                r["csv_subject_p50"], r["py_number_p50"], r["py_subject_p50"], r["py_issuer_p50"])
        print(" | ".join(f"{v:>12}" if isinstance(v, int) else f"{v:>12.2f}" for v in vals))
    print("cold* = cold after compaction (one base part, no deltas). Baselines: DuckDB read_csv per query; "
          "Python linear scan over dicts.")
    for r in results["catalog"]:
        print(f"{r['rows']:>7} rows: base write {r['write_base_s']:.2f} s, {r['deltas']} deltas via catalog_add "
              f"{r['write_deltas_s']:.2f} s ({r['deltas'] / r['write_deltas_s']:.0f}/s, 8 threads), "
              f"compact {r['compact_s']:.2f} s, base Parquet {r['base_mb']:.1f} MB, refresh (unchanged) "
              f"{r['refresh_unchanged_ms']:.1f} ms")
    if results["signing"]:
        s = results["signing"]
        print("\nSigning through the HTTP signer (embedded, loopback)")
        print(f"  sign_digests batch 1 : {s['sign_digests_batch1_per_s']:8.1f} signatures/s")
        print(f"  sign_digests batch 50: {s['sign_digests_batch50_per_s']:8.1f} signatures/s")
        print(f"  sign_record (seq.)   : {s['sign_record_per_s']:8.1f} records/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
