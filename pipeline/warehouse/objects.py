"""The object store under the warehouse: one bucket through the ``minio`` client, behind the one
retry boundary, with S3's and urllib3's errors mapped to typed ones.

Nothing here knows the warehouse layout (which key holds what: :mod:`pipeline.warehouse.layout`)
or the registers kept in it (:mod:`pipeline.warehouse.audit`, :mod:`pipeline.warehouse.catalog`);
they all read and write through :class:`ObjectStore`'s public operations, so that every S3 request
goes through :meth:`ObjectStore.call`: connection failures, 5xx answers and S3's busy codes
are the transient :class:`~pipeline.runtime.errors.WarehouseUnavailableError` and retried
there (:mod:`pipeline.runtime.retry`, issue 21 item 4), refusals are
:class:`~pipeline.runtime.errors.WarehouseError`, raised at once. A raw minio exception never
leaves this module.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
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
#: S3 error codes that say "no such object (version)": a lookup's answer, not an error
_MISSING_S3_CODES = ("NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound")


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


@dataclass(frozen=True)
class StoredObject:
    """What a write stored: the key and, in a versioned bucket, the new version's id."""

    key: str
    version_id: str | None


@dataclass(frozen=True)
class ListedObject:
    """One entry of a listing: an object, or (``versions``) one version of it or a delete marker.
    ``etag`` without quotes; ``last_modified`` None when the server did not say."""

    key: str
    version_id: str | None = None
    etag: str = ""
    size: int = 0
    last_modified: datetime | None = None
    is_delete_marker: bool = False

    @classmethod
    def of(cls, obj: Object) -> ListedObject:
        return cls(
            key=obj.object_name or "",
            version_id=obj.version_id,
            etag=(obj.etag or "").strip('"'),
            size=int(obj.size or 0),
            last_modified=obj.last_modified,
            is_delete_marker=bool(obj.is_delete_marker),
        )


#: what :meth:`ObjectStore.objects` and :meth:`ObjectStore.versions` answer (named here: inside
#: the class, ``list`` is :meth:`ObjectStore.list`)
Listing = list[ListedObject]


class ObjectStore:
    """Typed access to one bucket. Every call maps connection failures and 5xx answers to the
    transient :class:`WarehouseUnavailableError` and retries them — the one retry layer
    (:mod:`pipeline.runtime.retry`): ``settings.retry_budget_s`` (180 s) per call, or what is left of
    the caller's :func:`pipeline.runtime.retry.deadline`; the HTTP pool itself retries nothing
    (:func:`single_layer_pool`). Refusals (access denied, no such bucket) are
    :class:`WarehouseError`, raised at once.

    **Worst case** of one call: it gives up at most ``budget_s + wait_max_s`` (190 s) after its
    first try began, plus its last try (connection refused: milliseconds; a hung server: 5 s to
    connect and 120 s of silence). Why one layer: nested loops (urllib3 ``Retry(2)`` inside the
    warehouse's own 6 tries inside the store's 7, each signing again) gave up a store after
    186 s and 126 HTTP attempts, yet failed the documents in flight during a 30-s outage
    (``benchmarks/retry_budget.py``; :mod:`pipeline.runtime.retry`)."""

    def __init__(
        self,
        settings: WarehouseSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        client: Minio | None = None,
    ):
        self.settings = settings
        self.retry_policy = retry_policy or RetryPolicy(budget_s=settings.retry_budget_s)
        self._client = client or Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=single_layer_pool(),
        )

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    @property
    def client(self) -> Minio:
        """The minio client, for the rare raw operation (tests that play an attacker with the
        service's keys); a call through it is outside the retry boundary unless made in :meth:`call`."""
        return self._client

    # -- the boundary ---------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` — one or more client operations — at the retry boundary, its errors typed;
        ``what`` names it in errors and logs."""
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

    # -- objects --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        *,
        metadata: dict[str, str] | None = None,
        retention: Retention | None = None,
    ) -> StoredObject:
        """Write ``data`` under ``key`` (a new version in a versioned bucket), with user
        ``metadata`` (``x-amz-meta-*``) and ``retention`` (:meth:`retention`) if given."""
        result = self.call(
            f"put {key}",
            lambda: self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                metadata=metadata, retention=retention,  # type: ignore[arg-type]  # minio: dict[str, str | list | tuple]
            ),
        )
        return StoredObject(key=key, version_id=getattr(result, "version_id", None))

    def get(self, key: str, version_id: str | None = None) -> bytes | None:
        """The object's bytes (its current version, or ``version_id``); None when there is none."""

        def fetch() -> bytes | None:
            try:
                resp = self._client.get_object(self.bucket, key, version_id=version_id)
            except S3Error as exc:
                if exc.code in _MISSING_S3_CODES:
                    return None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self.call(f"get {key}", fetch)

    def metadata(self, key: str) -> dict[str, str] | None:
        """The object's headers (one HEAD request), names lower-cased (user metadata:
        ``x-amz-meta-<name>``); None when there is no such object."""

        def stat() -> dict[str, str] | None:
            try:
                st = self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_S3_CODES:
                    return None
                raise
            return {k.lower(): v for k, v in (st.metadata or {}).items()}

        return self.call(f"stat {key}", stat)

    def exists(self, key: str) -> bool:
        return self.metadata(key) is not None

    def list(self, prefix: str, *, recursive: bool = True) -> Iterator[str]:
        """Keys under ``prefix``; not ``recursive``: the keys and the "folders" (ending in ``/``)
        one level down. One LIST (paged by minio) at the boundary, then yielded."""
        objects = self.call(
            f"list {prefix}", lambda: list(self._client.list_objects(self.bucket, prefix=prefix, recursive=recursive))
        )
        for obj in objects:
            yield obj.object_name or ""

    def objects(self, prefix: str) -> Listing:
        """Current objects under ``prefix`` (recursive) with their ETag, size and time."""
        objs = self.call(
            f"list {prefix}", lambda: list(self._client.list_objects(self.bucket, prefix=prefix, recursive=True))
        )
        return [ListedObject.of(o) for o in objs if not o.is_dir]

    def versions(self, prefix: str) -> Listing:
        """Every version and delete marker under ``prefix`` (recursive), newest first per key,
        as S3 lists them; a caller that wants one key's keeps the entries whose ``key`` is it."""
        objs = self.call(
            f"versions {prefix}",
            lambda: list(self._client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True)),
        )
        return [ListedObject.of(o) for o in objs]

    def remove(self, key: str, version_id: str | None = None) -> None:
        """Remove ``key`` (in a versioned bucket: put a delete marker; ``version_id``: that version,
        refused under retention)."""
        self.call(f"remove {key}", lambda: self._client.remove_object(self.bucket, key, version_id=version_id))

    def remove_many(self, keys: Iterable[str], *, what: str = "remove objects") -> None:
        """Remove ``keys``, 1,000 a request (S3's DeleteObjects limit); a key that could not be
        removed is a :class:`WarehouseError` naming how many and one of them."""
        keys = [*keys]
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(k) for k in keys[start : start + 1000]]

            def remove(batch: list[DeleteObject] = batch) -> list[Any]:
                return list(self._client.remove_objects(self.bucket, batch))

            errors = self.call(what, remove)
            if errors:
                raise WarehouseError(f"{what}: could not remove {len(errors)} objects, e.g. {errors[0].name}: {errors[0].message}")

    # -- bucket ---------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning) if it does not exist."""

        def create() -> None:
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            versioning = self._client.get_bucket_versioning(self.bucket)
            if versioning.status != ENABLED:
                self._client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

        self.call(f"create bucket {self.bucket}", create)
        if self.settings.retention_days > 0 and not self.object_lock_enabled():
            raise ConfigurationError(
                f"bucket {self.bucket!r} has no S3 Object Lock, so originals cannot be retained "
                "write-once; create the bucket with object lock or set retention_days=0"
            )

    def object_lock_enabled(self) -> bool:
        def check() -> bool:
            try:
                self._client.get_object_lock_config(self.bucket)
                return True
            except S3Error as exc:
                if "ObjectLock" in (exc.code or "") or exc.code in ("NoSuchObjectLockConfiguration",):
                    return False
                raise
            except ValueError:
                return False

        return self.call("object lock config", check)
