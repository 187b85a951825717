"""The S3 warehouse (kho lưu trữ): layout, idempotent writes, lookups. Client: ``minio``.

Layout of the bucket (see README, "Warehouse layout")::

    originals/<aa>/<document_id>           source bytes, write-once (Object Lock, compliance mode)
    records/<aa>/<document_id>.json        the signed record, canonical JSON; S3 versioning keeps
                                           every version (a steward's correction is a new one),
                                           each under compliance retention (never deleted)
    pdf/<aa>/<document_id>.pdf             searchable PDF/A-2b (PAdES-signed when enabled)
    pages/<aa>/<document_id>/<nnnn>.jpg    deskewed page images (review desk)
    failed/<document_id>.json              failed documents with their typed error
    index/number/<number>/<document_id>    lookup by số/ký hiệu (URL-quoted, upper-cased)
    index/issuer/<issuer>/<document_id>    lookup by cơ quan ban hành
    subjects/<key>/<document_id>.json      per-subject area ("Kho quản lý dữ liệu điện tử của tổ
                                           chức, cá nhân"): every document that concerns a person
                                           or organisation; <key> is the blind index of the personal
                                           id or tax code (pipeline.warehouse.store.subject_keys)
    catalog/...                            Parquet catalog (pipeline.warehouse.catalog)
    manifests/<run_id>.jsonl               what each batch run did

``<aa>`` is the first two hex digits of the document id, to spread keys. The document id is
the SHA-256 of the source bytes, so writing the same scan twice stores one document.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote, unquote

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.retention import Retention
from minio.versioningconfig import VersioningConfig

from pipeline.runtime.config import WarehouseSettings
from pipeline.runtime.errors import ConfigurationError, WarehouseError, WarehouseUnavailableError
from pipeline.runtime.retry import RetryPolicy, retry

T = TypeVar("T")

_CONNECTION_ERRORS = (
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    OSError,
)
#: S3 error codes that say "try again later" (the server is starting, overloaded, or failed inside)
_TRANSIENT_S3_CODES = ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "ServerBusy")


def single_layer_pool() -> urllib3.PoolManager:
    """The minio client's HTTP pool: it retries nothing (connect, read, status, other: 0), so
    that :mod:`pipeline.runtime.retry` is the one layer; a hung server (SIGSTOP) holds a request up to
    120 s, then the retry layer goes on."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=120),
        retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=3, raise_on_status=False),
        maxsize=16,
    )


def s3_call(what: str, endpoint: str, fn: Callable[[], T], policy: RetryPolicy) -> T:
    """``fn()`` (one S3 request) with minio's errors mapped to typed ones — unreachable, 5xx
    and S3's busy codes transient (:class:`WarehouseUnavailableError`), refusals not — and the
    transient ones retried by the one retry layer under ``policy``."""

    def attempt() -> T:
        try:
            return fn()
        except S3Error as exc:
            status = getattr(exc.response, "status", 0) or 0
            if exc.code in _TRANSIENT_S3_CODES or status >= 500:
                raise WarehouseUnavailableError(f"{what}: S3 answered {exc.code}") from exc
            raise WarehouseError(f"{what}: S3 refused: {exc.code}: {exc.message}") from exc
        except ServerError as exc:  # a status without an S3 error body
            if exc.status_code >= 500:
                raise WarehouseUnavailableError(f"{what}: S3 answered HTTP {exc.status_code}") from exc
            raise WarehouseError(f"{what}: S3 answered HTTP {exc.status_code}") from exc
        except InvalidResponseError as exc:  # not S3's XML: a proxy's page, or a server starting up
            if (exc._code or 0) >= 500:
                raise WarehouseUnavailableError(f"{what}: S3 answered HTTP {exc._code}") from exc
            raise WarehouseError(f"{what}: S3 answered something else than S3: {exc}") from exc
        except _CONNECTION_ERRORS as exc:
            raise WarehouseUnavailableError(f"{what}: S3 endpoint {endpoint} unreachable ({type(exc).__name__})") from exc

    return retry(attempt, policy, what=what)


def _shard(document_id: str) -> str:
    return document_id[:2]


def normalize_key_part(value: str) -> str:
    """Normalise a lookup value (number, issuer) to a stable, URL-quoted key segment."""
    text = unicodedata.normalize("NFC", value).strip().upper()
    text = " ".join(text.split())
    return quote(text, safe="")


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str | None


class Warehouse:
    """Typed access to the warehouse bucket. Every call maps connection failures and 5xx answers
    to the transient :class:`WarehouseUnavailableError` and retries them — the one retry layer
    (:mod:`pipeline.runtime.retry`): ``settings.retry_budget_s`` (180 s) per call, or what is left of the
    caller's :func:`pipeline.runtime.retry.deadline`; the HTTP pool itself retries nothing. Refusals
    (access denied, no such bucket) are :class:`WarehouseError`, raised at once."""

    def __init__(
        self,
        settings: WarehouseSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        client: Minio | None = None,
    ):
        self.settings = settings
        self.bucket = settings.bucket
        self.retry_policy = retry_policy or RetryPolicy(budget_s=settings.retry_budget_s)
        self.client = client or Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=single_layer_pool(),
        )

    # -- plumbing -----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return s3_call(what, self.settings.endpoint, fn, self.retry_policy)

    def retention(self) -> Retention | None:
        """Compliance-mode retention for a write-once object (originals, record versions, audit
        entries): ``retention_days`` from now; None when retention is off (``retention_days=0``).
        Under COMPLIANCE mode no credentials, not even the bucket admin's, can delete the
        version or shorten its retention until it expires."""
        if self.settings.retention_days <= 0:
            return None
        until = datetime.now(UTC) + timedelta(days=self.settings.retention_days)
        return Retention(COMPLIANCE, until.replace(tzinfo=None))

    def _put(self, key: str, data: bytes, content_type: str, **kwargs) -> StoredObject:
        result = self._call(
            f"put {key}",
            lambda: self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, **kwargs
            ),
        )
        return StoredObject(key=key, version_id=getattr(result, "version_id", None))

    def _get(self, key: str, version_id: str | None = None) -> bytes | None:
        def fetch() -> bytes | None:
            try:
                resp = self.client.get_object(self.bucket, key, version_id=version_id)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchVersion", "NoSuchObject"):
                    return None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self._call(f"get {key}", fetch)

    def _exists(self, key: str) -> bool:
        def stat() -> bool:
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"):
                    return False
                raise

        return self._call(f"stat {key}", stat)

    def _list(self, prefix: str, *, recursive: bool = True) -> Iterator[str]:
        objects = self._call(
            f"list {prefix}", lambda: list(self.client.list_objects(self.bucket, prefix=prefix, recursive=recursive))
        )
        for obj in objects:
            yield obj.object_name

    # -- bucket -------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning) if it does not exist."""

        def create() -> None:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            versioning = self.client.get_bucket_versioning(self.bucket)
            if versioning.status != ENABLED:
                self.client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

        self._call(f"create bucket {self.bucket}", create)
        if self.settings.retention_days > 0 and not self.object_lock_enabled():
            raise ConfigurationError(
                f"bucket {self.bucket!r} has no S3 Object Lock, so originals cannot be retained "
                "write-once; create the bucket with object lock or set retention_days=0"
            )

    def object_lock_enabled(self) -> bool:
        def check() -> bool:
            try:
                self.client.get_object_lock_config(self.bucket)
                return True
            except S3Error as exc:
                if "ObjectLock" in (exc.code or "") or exc.code in ("NoSuchObjectLockConfiguration",):
                    return False
                raise
            except ValueError:
                return False

        return self._call("object lock config", check)

    # -- keys ---------------------------------------------------------------------------

    @staticmethod
    def original_key(document_id: str) -> str:
        return f"originals/{_shard(document_id)}/{document_id}"

    @staticmethod
    def record_key(document_id: str) -> str:
        return f"records/{_shard(document_id)}/{document_id}.json"

    @staticmethod
    def pdf_key(document_id: str) -> str:
        return f"pdf/{_shard(document_id)}/{document_id}.pdf"

    @staticmethod
    def page_key(document_id: str, page: int) -> str:
        return f"pages/{_shard(document_id)}/{document_id}/{page:04d}.jpg"

    @staticmethod
    def failed_key(document_id: str) -> str:
        return f"failed/{document_id}.json"

    @staticmethod
    def index_key(kind: str, value: str, document_id: str) -> str:
        return f"index/{kind}/{normalize_key_part(value)}/{document_id}"

    @staticmethod
    def subject_key(subject_id: str, document_id: str) -> str:
        return f"subjects/{normalize_key_part(subject_id)}/{document_id}.json"

    # -- originals ----------------------------------------------------------------------

    def has_original(self, document_id: str) -> bool:
        return self._exists(self.original_key(document_id))

    def put_original(self, document_id: str, data: bytes, *, source_file: str) -> StoredObject:
        """Store source bytes once, under compliance-mode retention. Idempotent."""
        key = self.original_key(document_id)
        if self._exists(key):
            return StoredObject(key=key, version_id=None)
        return self._put(
            key,
            data,
            "application/octet-stream",
            metadata={"source-file": quote(source_file, safe="")},
            retention=self.retention(),
        )

    def get_original(self, document_id: str) -> bytes:
        """The source bytes, checked against their id (SHA-256). Originals are content-addressed:
        should a newer version have been written over the key (S3 versioning allows a new
        version even under Object Lock), the retained version whose hash matches is returned."""
        import hashlib

        key = self.original_key(document_id)
        data = self._get(key)
        if data is None:
            raise WarehouseError(f"original {document_id} is not in the warehouse")
        if hashlib.sha256(data).hexdigest() == document_id:
            return data
        for version in self._call(
            f"list versions of {key}",
            lambda: list(self.client.list_objects(self.bucket, prefix=key, include_version=True)),
        ):
            if version.object_name != key or version.is_delete_marker:
                continue
            older = self._get(key, version.version_id)
            if older is not None and hashlib.sha256(older).hexdigest() == document_id:
                return older
        raise WarehouseError(f"original {document_id}: no stored version matches its SHA-256 (tampered)")

    # -- records ------------------------------------------------------------------------

    def put_record(self, document_id: str, record_bytes: bytes, *, status: str) -> StoredObject:
        """Write a record version; its status is also object metadata, so that a resumed
        batch can decide with one HEAD request whether a document is done. Every version is
        written under compliance-mode retention (like the originals): the record's history
        (a steward's corrections) cannot be deleted version by version, not even with the
        service's own S3 keys."""
        return self._put(
            self.record_key(document_id),
            record_bytes,
            "application/json",
            metadata={"status": status},
            retention=self.retention(),
        )

    def record_status(self, document_id: str) -> str | None:
        """Status of the current record ('ok', 'needs_review', 'failed'), None when absent."""
        key = self.record_key(document_id)

        def stat() -> str | None:
            try:
                st = self.client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"):
                    return None
                raise
            meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
            return meta.get("x-amz-meta-status") or "unknown"

        return self._call(f"stat {key}", stat)

    def get_record_bytes(self, document_id: str, version_id: str | None = None) -> bytes | None:
        return self._get(self.record_key(document_id), version_id)

    def get_record(self, document_id: str, version_id: str | None = None) -> dict | None:
        data = self.get_record_bytes(document_id, version_id)
        return json.loads(data) if data is not None else None

    def record_versions(self, document_id: str) -> list[StoredObject]:
        key = self.record_key(document_id)
        objs = self._call(
            f"versions {key}",
            lambda: list(self.client.list_objects(self.bucket, prefix=key, include_version=True)),
        )
        return [StoredObject(key=o.object_name, version_id=o.version_id) for o in objs if o.object_name == key]

    def iter_record_ids(self) -> Iterator[str]:
        for key in self._list("records/"):
            if key.endswith(".json"):
                yield key.rsplit("/", 1)[-1][: -len(".json")]

    def iter_records(self) -> Iterator[dict]:
        for document_id in self.iter_record_ids():
            record = self.get_record(document_id)
            if record is not None:
                yield record

    # -- derived artefacts --------------------------------------------------------------

    def put_pdf(self, document_id: str, data: bytes) -> StoredObject:
        return self._put(self.pdf_key(document_id), data, "application/pdf")

    def get_pdf(self, document_id: str) -> bytes | None:
        return self._get(self.pdf_key(document_id))

    def put_page_image(self, document_id: str, page: int, jpeg: bytes) -> StoredObject:
        return self._put(self.page_key(document_id, page), jpeg, "image/jpeg")

    def get_page_image(self, document_id: str, page: int) -> bytes | None:
        return self._get(self.page_key(document_id, page))

    def put_failed(self, document_id: str, payload: dict) -> StoredObject:
        data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        return self._put(self.failed_key(document_id), data, "application/json")

    def clear_failed(self, document_id: str) -> None:
        key = self.failed_key(document_id)
        if self._exists(key):
            self._call(f"remove {key}", lambda: self.client.remove_object(self.bucket, key))

    def iter_failed(self) -> Iterator[dict]:
        for key in self._list("failed/"):
            data = self._get(key)
            if data:
                yield json.loads(data)

    # -- indexes ------------------------------------------------------------------------

    def put_index(self, kind: str, value: str, document_id: str, summary: dict) -> None:
        data = json.dumps(summary, ensure_ascii=False, sort_keys=True).encode()
        self._put(self.index_key(kind, value, document_id), data, "application/json")

    def lookup(self, kind: str, value: str) -> list[str]:
        prefix = f"index/{kind}/{normalize_key_part(value)}/"
        return sorted(key.rsplit("/", 1)[-1] for key in self._list(prefix))

    def put_subject_entry(self, subject_id: str, document_id: str, summary: dict) -> None:
        data = json.dumps(summary, ensure_ascii=False, sort_keys=True).encode()
        self._put(self.subject_key(subject_id, document_id), data, "application/json")

    def subject_documents(self, subject_id: str) -> list[dict]:
        prefix = f"subjects/{normalize_key_part(subject_id)}/"
        out = []
        for key in self._list(prefix):
            data = self._get(key)
            if data:
                out.append(json.loads(data))
        return out

    # -- manifests ----------------------------------------------------------------------

    def put_manifest(self, run_id: str, lines: list[dict]) -> None:
        data = "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines).encode()
        self._put(f"manifests/{run_id}.jsonl", data, "application/x-ndjson")


def decode_source_file(metadata_value: str) -> str:
    return unquote(metadata_value)
