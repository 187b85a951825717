"""The catalog (danh mục hồ sơ, tài liệu): one queryable row per record, Parquet in the warehouse.

Layout (same bucket as the records)::

    catalog/delta/<yyyymmdd>/<document_id>-v<version>-<time>.parquet   one row, by catalog_add
    catalog/base/g<generation>-<rand>/part-<nnnnn>.parquet       merged rows, written by compact
    catalog/base/_manifest.json                                  which base parts are current

Writers never share an object: every stored record version appends its own small *delta*
(:func:`catalog_add`), so any number of Dask workers can write at once without locks. A
:func:`compact` step merges the deltas into a new *generation* of base parts (the latest
version of each document wins), commits it by rewriting the manifest (one atomic PUT), then
deletes the merged deltas and the previous generation. Readers take the manifest's parts
plus every delta still listed and keep the latest row per document, so they see the same
answer before, during and after a compaction. Compaction is single-writer maintenance (run
it after a batch or from cron): before committing it re-reads the manifest and gives up with
:class:`CatalogConflictError` if another compaction committed meanwhile.

"Latest" is the highest ``version``, then the latest ``catalogued_at`` (a re-digitized
document gets version 1 again, later in time).

:class:`Catalog` queries locally: it downloads the manifest's parts and the deltas into a
cache directory, one file per object named by its ETag (so unchanged objects are never
downloaded again), loads them into an in-memory DuckDB table and answers from there.

Normalisation:

* ``number`` (số, ký hiệu): :func:`normalize_number` — NFC, upper case, whitespace collapsed,
  no spaces next to ``/`` and ``-``, en/em dashes read as ``-``; so ``"5898 / ubnd–kstt"``
  finds ``5898/UBND-KSTT``.
* ``issuer``, ``doc_type``: :func:`fold_text` — lower case without diacritics (``đ`` → ``d``),
  whitespace collapsed; issuer matches a substring, doc_type the whole value.
* subject ids (số định danh cá nhân, mã số thuế): never stored in clear; only their blind
  indexes (:mod:`pipeline.records.pii`), looked up under every key of the ring.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.records.pii import KeyRing, blind_indexes_of, is_encrypted, subject_values
from pipeline.runtime.errors import ConfigurationError, SohoaError
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.objects import ListedObject

log = logging.getLogger("sohoa.catalog")

CATALOG_PREFIX = "catalog/"
DELTA_PREFIX = "catalog/delta/"
BASE_PREFIX = "catalog/base/"
MANIFEST_KEY = "catalog/base/_manifest.json"
MANIFEST_FORMAT = "sohoa-catalog/1"
ROWS_PER_PART = 500_000

#: Tên loại giấy tờ, for record types whose fields carry no ``doc_type``.
RECORD_TYPE_NAMES: dict[str, str] = {
    "household_business_registration": "Giấy chứng nhận đăng ký hộ kinh doanh",
    "birth_certificate": "Giấy khai sinh",
}

SCHEMA = pa.schema(
    [
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("record_type", pa.string()),
        pa.field("version", pa.int32()),
        pa.field("status", pa.string()),
        pa.field("number", pa.string()),
        pa.field("number_norm", pa.string()),
        pa.field("doc_type", pa.string()),
        pa.field("doc_type_fold", pa.string()),
        pa.field("issuer", pa.string()),
        pa.field("issuer_fold", pa.string()),
        pa.field("date", pa.date32()),
        pa.field("subjects", pa.list_(pa.string())),
        pa.field("unit", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("record_key", pa.string()),
        pa.field("catalogued_at", pa.timestamp("us", tz="UTC")),
    ]
)

#: Columns of a result row (``date`` as ISO 8601 text).
RESULT_COLUMNS = (
    "document_id",
    "record_type",
    "number",
    "doc_type",
    "issuer",
    "date",
    "status",
    "version",
    "source_file",
    "record_key",
    "unit",
)

_LATEST = "row_number() OVER (PARTITION BY document_id ORDER BY version DESC, catalogued_at DESC)"


class CatalogError(SohoaError):
    stage = "catalog"
    code = "catalog_error"


class CatalogConflictError(CatalogError):
    """Another compaction committed while this one ran; nothing was deleted. Run it again."""

    code = "catalog_conflict"
    transient = True


# --- normalisation ---------------------------------------------------------------------------

_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_AROUND_SEPARATORS = re.compile(r"\s*([/-])\s*")


def normalize_number(value: str | None) -> str | None:
    """Số, ký hiệu as a lookup key: NFC, upper case, whitespace collapsed, no spaces around
    ``/`` or ``-``, dashes unified. ``None`` or blank gives ``None``."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).translate(_DASHES).upper()
    text = " ".join(text.split())
    text = _AROUND_SEPARATORS.sub(r"\1", text)
    return text or None


def fold_text(value: str | None) -> str | None:
    """Case- and diacritic-insensitive form: ``"Ủy ban nhân dân Đà Nẵng"`` → ``"uy ban nhan dan da nang"``."""
    if value is None:
        return None
    text = unicodedata.normalize("NFD", str(value).replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = " ".join(text.split())
    return text or None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_date(value: Any) -> date | None:
    """An ISO 8601 date (``YYYY-MM-DD``, a datetime prefix allowed); ``None`` when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


# --- rows ----------------------------------------------------------------------------------


def catalog_row(record: Mapping[str, Any], *, keyring: KeyRing | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The catalog row of a record. Subject ids come as blind indexes from the record's
    ``pii`` envelope; a record without one (written before encryption) gets them computed
    with ``keyring``, or none without a key ring — never in clear."""
    fields = record.get("fields") or {}
    record_type = _text(record.get("record_type"))
    document_id = str(record["document_id"])
    number = _text(fields.get("number"))
    doc_type = _text(fields.get("doc_type")) or RECORD_TYPE_NAMES.get(record_type or "")
    issuer = _text(fields.get("issuer"))
    subjects = blind_indexes_of(record, keyring)
    if not subjects and not is_encrypted(record) and subject_values(record):
        log.warning("catalog: %s has subject ids but no blind index (no key ring): not searchable by subject", document_id)
    return {
        "document_id": document_id,
        "record_type": record_type,
        "version": int(record.get("version") or 1),
        "status": _text(record.get("status")),
        "number": number,
        "number_norm": normalize_number(number),
        "doc_type": doc_type,
        "doc_type_fold": fold_text(doc_type),
        "issuer": issuer,
        "issuer_fold": fold_text(issuer),
        "date": parse_date(fields.get("date")),
        "subjects": subjects,
        "unit": _text((record.get("provenance") or {}).get("unit")),
        "source_file": _text(record.get("source_file")),
        "record_key": Warehouse.record_key(document_id),
        "catalogued_at": at or datetime.now(UTC),
    }


def rows_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table.cast(SCHEMA), buf, compression="zstd")
    return buf.getvalue()


def read_parquet_bytes(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data)).cast(SCHEMA)


def latest_rows(table: pa.Table) -> pa.Table:
    """The latest row of each document (highest version, then latest ``catalogued_at``)."""
    con = duckdb.connect()
    try:
        con.register("rows", table)
        out = con.sql(
            f"SELECT * EXCLUDE (rn) FROM (SELECT *, {_LATEST} AS rn FROM rows) WHERE rn = 1 ORDER BY number_norm, document_id"
        ).to_arrow_table()
    finally:
        con.close()
    return out.cast(SCHEMA)


# --- warehouse plumbing ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Manifest:
    generation: int
    parts: tuple[str, ...]
    rows: int
    written_at: str

    def to_json(self) -> bytes:
        return json.dumps(
            {"format": MANIFEST_FORMAT, "generation": self.generation, "parts": list(self.parts),
             "rows": self.rows, "written_at": self.written_at},
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        if raw.get("format") != MANIFEST_FORMAT:
            raise CatalogError(f"catalog manifest has unknown format {raw.get('format')!r}")
        return cls(int(raw["generation"]), tuple(raw["parts"]), int(raw.get("rows", 0)), str(raw.get("written_at", "")))


def list_objects(warehouse: Warehouse, prefix: str) -> list[ListedObject]:
    """Current objects under ``prefix`` with their ETags."""
    return warehouse.objects.objects(prefix)


def read_manifest(warehouse: Warehouse) -> Manifest | None:
    data = warehouse.objects.get(MANIFEST_KEY)
    return Manifest.from_json(data) if data else None


def remove_objects(warehouse: Warehouse, keys: list[str]) -> None:
    warehouse.objects.remove_many(keys, what="catalog")


def delta_key(document_id: str, version: int, at: datetime) -> str:
    """``catalog/delta/<yyyymmdd>/<document_id>-v<version>-<hhmmssffffff><rand>.parquet``: the
    time and random suffix make every write its own object, so a compaction never deletes a
    delta that was rewritten after it read it."""
    return f"{DELTA_PREFIX}{at:%Y%m%d}/{document_id}-v{int(version)}-{at:%H%M%S%f}{secrets.token_hex(2)}.parquet"


# --- writes --------------------------------------------------------------------------------


def catalog_add(warehouse: Warehouse, record: Mapping[str, Any], *, keyring: KeyRing | None = None) -> None:
    """Append the record's catalog row as one delta object (safe from many writers at once)."""
    at = datetime.now(UTC)
    row = catalog_row(record, keyring=keyring, at=at)
    data = parquet_bytes(rows_table([row]))
    warehouse.objects.put(delta_key(row["document_id"], row["version"], at), data, "application/vnd.apache.parquet")


def write_generation(
    warehouse: Warehouse, table: pa.Table, *, expected: Manifest | None, rows_per_part: int = ROWS_PER_PART
) -> Manifest:
    """Write ``table`` (already latest-per-document) as the next base generation and commit it.

    Raises :class:`CatalogConflictError`, leaving the current generation in place, when the
    manifest changed since ``expected`` was read. Deletes the previous generation's parts."""
    generation = (expected.generation if expected else 0) + 1
    folder = f"{BASE_PREFIX}g{generation:08d}-{secrets.token_hex(4)}/"
    parts = []
    for i, start in enumerate(range(0, max(table.num_rows, 1), rows_per_part)):
        key = f"{folder}part-{i:05d}.parquet"
        warehouse.objects.put(key, parquet_bytes(table.slice(start, rows_per_part)), "application/vnd.apache.parquet")
        parts.append(key)
    manifest = Manifest(generation, tuple(parts), table.num_rows, datetime.now(UTC).isoformat(timespec="seconds"))
    current = read_manifest(warehouse)
    if (current.generation if current else 0) != (expected.generation if expected else 0):
        remove_objects(warehouse, parts)
        raise CatalogConflictError("catalog: another compaction committed meanwhile; run it again")
    warehouse.objects.put(MANIFEST_KEY, manifest.to_json(), "application/json")
    if expected:
        remove_objects(warehouse, [k for k in expected.parts if k not in manifest.parts])
    return manifest


def _download_tables(warehouse: Warehouse, keys: list[str]) -> list[pa.Table]:
    def one(key: str) -> pa.Table | None:
        data = warehouse.objects.get(key)
        return read_parquet_bytes(data) if data else None

    if len(keys) <= 4:
        tables = [one(k) for k in keys]
    else:
        with ThreadPoolExecutor(max_workers=8) as pool:
            tables = list(pool.map(one, keys))
    return [t for t in tables if t is not None]


def compact(warehouse: Warehouse) -> int:
    """Merge the deltas into a new base generation (latest version per document wins) and
    delete them. Returns how many deltas were merged (0: nothing to do)."""
    manifest = read_manifest(warehouse)
    deltas = [o.key for o in list_objects(warehouse, DELTA_PREFIX) if o.key.endswith(".parquet")]
    if not deltas:
        return 0
    tables = _download_tables(warehouse, list(manifest.parts) if manifest else []) + _download_tables(warehouse, deltas)
    merged = latest_rows(pa.concat_tables(tables) if tables else SCHEMA.empty_table())
    write_generation(warehouse, merged, expected=manifest)
    remove_objects(warehouse, deltas)
    log.info("catalog: merged %d deltas, %d documents", len(deltas), merged.num_rows)
    return len(deltas)


def rebuild(warehouse: Warehouse, *, keyring: KeyRing | None = None, grace_s: float = 60.0) -> int:
    """Rebuild the base from every record in the warehouse (repairs a lost or stale catalog).

    Deltas older than the start of the rebuild minus ``grace_s`` are deleted (their records
    were read); newer ones stay, for records being written meanwhile. Returns the row count."""
    started = datetime.now(UTC)
    manifest = read_manifest(warehouse)
    rows = [catalog_row(record, keyring=keyring) for record in warehouse.iter_records()]
    merged = latest_rows(rows_table(rows))
    write_generation(warehouse, merged, expected=manifest)
    cutoff = started - timedelta(seconds=grace_s)
    old = [o.key for o in list_objects(warehouse, DELTA_PREFIX) if o.last_modified is None or o.last_modified < cutoff]
    remove_objects(warehouse, old)
    return merged.num_rows


# --- queries -------------------------------------------------------------------------------


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Execute and fetch to the end: DuckDB refuses new work on a connection while a
    result (even of DDL) is unfinished."""
    return con.execute(sql, params or []).fetchall()


class _Vanished(Exception):
    """An object listed a moment ago is gone (a compaction committed): list again."""


class Catalog:
    """Local, read-only view of the catalog: Parquet cached by ETag, queried with DuckDB.

    ``find``/``count`` refresh first when the last refresh is older than ``max_age_s``
    (``0``: every call; ``None``: only :meth:`refresh`). Thread-safe."""

    def __init__(
        self,
        warehouse: Warehouse,
        cache_dir: Path,
        *,
        keyring: KeyRing | None = None,
        max_age_s: float | None = 30.0,
    ):
        self.warehouse = warehouse
        self.cache_dir = Path(cache_dir)
        self.keyring = keyring
        self.max_age_s = max_age_s
        self._con = duckdb.connect()
        self._lock = threading.RLock()
        self._signature: tuple[tuple[str, str], ...] | None = None
        self._refreshed_at: float | None = None
        self._manifest_file: Path | None = None
        self._base_paths: list[Path] | None = None
        self._delta_tables: dict[str, pa.Table] = {}

    # -- loading ------------------------------------------------------------------------

    def _local_path(self, obj: ListedObject) -> Path:
        name = hashlib.sha256(obj.key.encode()).hexdigest()[:24]
        etag = re.sub(r"[^0-9A-Za-z-]", "", obj.etag) or "noetag"
        suffix = ".json" if obj.key.endswith(".json") else ".parquet"
        return self.cache_dir / f"{name}-{etag}{suffix}"

    def _fetch(self, obj: ListedObject) -> Path:
        path = self._local_path(obj)
        if path.exists():
            return path
        data = self.warehouse.objects.get(obj.key)
        if data is None:
            raise _Vanished(obj.key)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".dl-")
        with open(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(path)
        return path

    def _snapshot(self) -> list[ListedObject]:
        listed = {o.key: o for o in list_objects(self.warehouse, CATALOG_PREFIX)}
        wanted = [o for k, o in sorted(listed.items()) if k.startswith(DELTA_PREFIX) and k.endswith(".parquet")]
        manifest_obj = listed.get(MANIFEST_KEY)
        self._manifest_file = None
        if manifest_obj is not None:
            self._manifest_file = self._fetch(manifest_obj)
            manifest = Manifest.from_json(self._manifest_file.read_bytes())
            for key in manifest.parts:
                if key not in listed:
                    raise _Vanished(key)
                wanted.append(listed[key])
        return wanted

    def refresh(self) -> bool:
        """Download new or changed catalog objects and reload. Returns whether anything changed."""
        with self._lock:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for attempt in range(4):
                try:
                    objects = self._snapshot()
                    signature = tuple((o.key, o.etag) for o in objects)
                    if signature == self._signature:
                        self._refreshed_at = time.monotonic()
                        return False
                    if len(objects) > 4:
                        with ThreadPoolExecutor(max_workers=16) as pool:
                            paths = list(pool.map(self._fetch, objects))
                    else:
                        paths = [self._fetch(o) for o in objects]
                    break
                except _Vanished:
                    if attempt == 3:
                        raise CatalogError("catalog keeps changing under the reader; try again") from None
                    time.sleep(0.05 * (attempt + 1))
            is_delta = [o.key.startswith(DELTA_PREFIX) for o in objects]
            self._load(
                [p for p, d in zip(paths, is_delta, strict=True) if not d], [p for p, d in zip(paths, is_delta, strict=True) if d]
            )
            self._signature = signature
            self._refreshed_at = time.monotonic()
            keep = {p.name for p in paths}
            if self._manifest_file is not None:
                keep.add(self._manifest_file.name)
            self._evict(keep)
            return True

    def _load(self, base_paths: list[Path], delta_paths: list[Path]) -> None:
        """Load the base (only when its generation changed; one row per document) and the
        deltas (each file read once, kept in memory), then materialise ``catalog``: base rows
        of documents without a delta, plus the latest of delta and base rows of the others;
        and ``subject_index`` (one row per blind index) for lookups by subject."""
        con = self._con
        if base_paths != self._base_paths:
            if base_paths:
                files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in base_paths)
                _run(con, f"CREATE OR REPLACE TABLE base AS SELECT * FROM read_parquet([{files}], union_by_name = true)")
            else:
                con.register("_empty", SCHEMA.empty_table())
                _run(con, "CREATE OR REPLACE TABLE base AS SELECT * FROM _empty")
                con.unregister("_empty")
            self._base_paths = list(base_paths)
        tables = {}
        for path in delta_paths:
            table = self._delta_tables.get(path.name)
            tables[path.name] = table if table is not None else pq.read_table(path).cast(SCHEMA)
        self._delta_tables = tables
        con.register("_delta", pa.concat_tables(tables.values()) if tables else SCHEMA.empty_table())
        _run(
            con,
            f"""
            CREATE OR REPLACE TABLE catalog AS
            WITH touched AS (SELECT DISTINCT document_id FROM _delta),
                 candidates AS (
                     SELECT * FROM _delta
                     UNION ALL BY NAME
                     SELECT * FROM base WHERE document_id IN (SELECT document_id FROM touched)),
                 latest AS (SELECT * EXCLUDE (rn) FROM (SELECT *, {_LATEST} AS rn FROM candidates) WHERE rn = 1)
            SELECT * FROM base WHERE document_id NOT IN (SELECT document_id FROM touched)
            UNION ALL BY NAME
            SELECT * FROM latest
            """
        )
        con.unregister("_delta")
        _run(
            con,
            "CREATE OR REPLACE TABLE subject_index AS "
            "SELECT unnest(subjects) AS subject, document_id FROM catalog WHERE len(subjects) > 0"
        )

    def _evict(self, keep: set[str]) -> None:
        for path in self.cache_dir.iterdir():
            if path.name not in keep and re.fullmatch(r"[0-9a-f]{24}-.+\.(parquet|json)", path.name):
                path.unlink(missing_ok=True)

    def _ensure_fresh(self) -> None:
        if self._refreshed_at is None or (
            self.max_age_s is not None and time.monotonic() - self._refreshed_at >= self.max_age_s
        ):
            self.refresh()

    # -- queries ------------------------------------------------------------------------

    def count(self) -> int:
        """How many documents the catalog holds (latest version of each)."""
        with self._lock:
            self._ensure_fresh()
            return int(_run(self._con, "SELECT count(*) FROM catalog")[0][0])

    def find(
        self,
        number: str | None = None,
        subject: str | None = None,
        issuer: str | None = None,
        date_from: str | date | None = None,
        date_to: str | date | None = None,
        status: str | None = None,
        doc_type: str | None = None,
        limit: int | None = 100,
        *,
        unit: str | None = None,
    ) -> list[dict[str, Any]]:
        """Documents matching every given criterion, newest date first.

        ``number`` matches the normalised số/ký hiệu exactly; ``subject`` a personal id or tax
        code (via its blind index: needs the key ring); ``issuer`` a case/diacritic-insensitive
        substring; ``date_from``/``date_to`` bound the issue date inclusively; ``status``,
        ``doc_type`` (case/diacritic-insensitive) and ``unit`` match exactly."""
        where: list[str] = []
        params: list[Any] = []
        if number is not None:
            where.append("number_norm = ?")
            params.append(normalize_number(number))
        if subject is not None:
            if self.keyring is None:
                raise ConfigurationError("a lookup by subject id needs the PII key ring (blind index)")
            where.append("document_id IN (SELECT document_id FROM subject_index WHERE subject IN (SELECT unnest(?::VARCHAR[])))")
            params.append(self.keyring.blind_indexes(subject))
        if issuer is not None:
            where.append("contains(issuer_fold, ?)")
            params.append(fold_text(issuer) or "")
        for bound, op in ((date_from, ">="), (date_to, "<=")):
            if bound is not None:
                parsed = parse_date(bound)
                if parsed is None:
                    raise ConfigurationError(f"not a date (YYYY-MM-DD): {bound!r}")
                where.append(f"date {op} ?")
                params.append(parsed)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if doc_type is not None:
            where.append("doc_type_fold = ?")
            params.append(fold_text(doc_type))
        if unit is not None:
            where.append("unit = ?")
            params.append(unit)
        sql = f"SELECT {', '.join(RESULT_COLUMNS)} FROM catalog"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY date DESC NULLS LAST, number_norm, document_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            self._ensure_fresh()
            rows = self._con.execute(sql, params).fetchall()
        out = []
        for row in rows:
            item = dict(zip(RESULT_COLUMNS, row, strict=True))
            if item["date"] is not None:
                item["date"] = item["date"].isoformat()
            out.append(item)
        return out

    def iter_all(self) -> Iterator[dict[str, Any]]:
        """Every row (latest version of each document), ordered by document id."""
        with self._lock:
            self._ensure_fresh()
            rows = self._con.execute(f"SELECT {', '.join(RESULT_COLUMNS)}, subjects FROM catalog ORDER BY document_id").fetchall()
        for row in rows:
            item = dict(zip((*RESULT_COLUMNS, "subjects"), row, strict=True))
            if item["date"] is not None:
                item["date"] = item["date"].isoformat()
            yield item

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def clear_cache(self) -> None:
        """Forget downloaded files (the next query downloads again)."""
        with self._lock:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
            self._signature = None
            self._refreshed_at = None
            self._base_paths = None
            self._delta_tables = {}

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
