"""The S3 warehouse (kho lưu trữ): layout, idempotent writes, lookups, over the object store
(:class:`pipeline.warehouse.objects.ObjectStore`: the ``minio`` client, the one retry boundary,
typed errors).

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

import hashlib
import json
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote, unquote

from minio import Minio
from minio.retention import Retention

from pipeline.runtime.config import WarehouseSettings
from pipeline.runtime.errors import WarehouseError
from pipeline.runtime.retry import RetryPolicy
from pipeline.warehouse.objects import ObjectStore, StoredObject

__all__ = ["ObjectStore", "StoredObject", "Warehouse", "decode_source_file", "normalize_key_part"]


def _shard(document_id: str) -> str:
    return document_id[:2]


def normalize_key_part(value: str) -> str:
    """Normalise a lookup value (number, issuer) to a stable, URL-quoted key segment."""
    text = unicodedata.normalize("NFC", value).strip().upper()
    text = " ".join(text.split())
    return quote(text, safe="")


class Warehouse:
    """The warehouse layout (which key holds what, above) over an :class:`ObjectStore`
    (``self.objects``): the object store owns the client, the one retry boundary and the typed
    errors (:mod:`pipeline.warehouse.objects`); this class only names keys and encodes what
    is stored under them. ``Warehouse(settings)`` makes its own object store;
    :meth:`over` lays the warehouse over an existing one."""

    def __init__(
        self,
        settings: WarehouseSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        client: Minio | None = None,
    ):
        self.objects = ObjectStore(settings, retry_policy=retry_policy, client=client)

    @classmethod
    def over(cls, objects: ObjectStore) -> Warehouse:
        """The warehouse layout over ``objects`` (its client, bucket and retry policy)."""
        warehouse = cls.__new__(cls)
        warehouse.objects = objects
        return warehouse

    @property
    def settings(self) -> WarehouseSettings:
        return self.objects.settings

    @property
    def bucket(self) -> str:
        return self.objects.bucket

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.objects.retry_policy

    @property
    def client(self) -> Minio:
        """The object store's raw client (:attr:`ObjectStore.client`)."""
        return self.objects.client

    # -- bucket -------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning) if it does not exist
        (:meth:`ObjectStore.ensure_bucket`)."""
        self.objects.ensure_bucket()

    def object_lock_enabled(self) -> bool:
        return self.objects.object_lock_enabled()

    def retention(self) -> Retention | None:
        """Compliance-mode retention for a write-once object (:meth:`ObjectStore.retention`)."""
        return self.objects.retention()

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
        return self.objects.exists(self.original_key(document_id))

    def put_original(self, document_id: str, data: bytes, *, source_file: str) -> StoredObject:
        """Store source bytes once, under compliance-mode retention. Idempotent."""
        key = self.original_key(document_id)
        if self.objects.exists(key):
            return StoredObject(key=key, version_id=None)
        return self.objects.put(
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
        key = self.original_key(document_id)
        data = self.objects.get(key)
        if data is None:
            raise WarehouseError(f"original {document_id} is not in the warehouse")
        if hashlib.sha256(data).hexdigest() == document_id:
            return data
        for version in self.objects.versions(key):
            if version.key != key or version.is_delete_marker:
                continue
            older = self.objects.get(key, version.version_id)
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
        return self.objects.put(
            self.record_key(document_id),
            record_bytes,
            "application/json",
            metadata={"status": status},
            retention=self.retention(),
        )

    def record_status(self, document_id: str) -> str | None:
        """Status of the current record ('ok', 'needs_review', 'failed'), None when absent."""
        meta = self.objects.metadata(self.record_key(document_id))
        if meta is None:
            return None
        return meta.get("x-amz-meta-status") or "unknown"

    def get_record_bytes(self, document_id: str, version_id: str | None = None) -> bytes | None:
        return self.objects.get(self.record_key(document_id), version_id)

    def get_record(self, document_id: str, version_id: str | None = None) -> dict | None:
        data = self.get_record_bytes(document_id, version_id)
        return json.loads(data) if data is not None else None

    def record_versions(self, document_id: str) -> list[StoredObject]:
        key = self.record_key(document_id)
        return [StoredObject(key=o.key, version_id=o.version_id) for o in self.objects.versions(key) if o.key == key]

    def iter_record_ids(self) -> Iterator[str]:
        for key in self.objects.list("records/"):
            if key.endswith(".json"):
                yield key.rsplit("/", 1)[-1][: -len(".json")]

    def iter_records(self) -> Iterator[dict]:
        for document_id in self.iter_record_ids():
            record = self.get_record(document_id)
            if record is not None:
                yield record

    # -- derived artefacts --------------------------------------------------------------

    def put_pdf(self, document_id: str, data: bytes) -> StoredObject:
        return self.objects.put(self.pdf_key(document_id), data, "application/pdf")

    def get_pdf(self, document_id: str) -> bytes | None:
        return self.objects.get(self.pdf_key(document_id))

    def put_page_image(self, document_id: str, page: int, jpeg: bytes) -> StoredObject:
        return self.objects.put(self.page_key(document_id, page), jpeg, "image/jpeg")

    def get_page_image(self, document_id: str, page: int) -> bytes | None:
        return self.objects.get(self.page_key(document_id, page))

    def put_failed(self, document_id: str, payload: dict) -> StoredObject:
        data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        return self.objects.put(self.failed_key(document_id), data, "application/json")

    def clear_failed(self, document_id: str) -> None:
        key = self.failed_key(document_id)
        if self.objects.exists(key):
            self.objects.remove(key)

    def iter_failed(self) -> Iterator[dict]:
        for key in self.objects.list("failed/"):
            data = self.objects.get(key)
            if data:
                yield json.loads(data)

    # -- indexes ------------------------------------------------------------------------

    def put_index(self, kind: str, value: str, document_id: str, summary: dict) -> None:
        data = json.dumps(summary, ensure_ascii=False, sort_keys=True).encode()
        self.objects.put(self.index_key(kind, value, document_id), data, "application/json")

    def lookup(self, kind: str, value: str) -> list[str]:
        prefix = f"index/{kind}/{normalize_key_part(value)}/"
        return sorted(key.rsplit("/", 1)[-1] for key in self.objects.list(prefix))

    def put_subject_entry(self, subject_id: str, document_id: str, summary: dict) -> None:
        data = json.dumps(summary, ensure_ascii=False, sort_keys=True).encode()
        self.objects.put(self.subject_key(subject_id, document_id), data, "application/json")

    def subject_documents(self, subject_id: str) -> list[dict]:
        prefix = f"subjects/{normalize_key_part(subject_id)}/"
        out = []
        for key in self.objects.list(prefix):
            data = self.objects.get(key)
            if data:
                out.append(json.loads(data))
        return out

    # -- manifests ----------------------------------------------------------------------

    def put_manifest(self, run_id: str, lines: list[dict]) -> None:
        data = "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines).encode()
        self.objects.put(f"manifests/{run_id}.jsonl", data, "application/x-ndjson")


def decode_source_file(metadata_value: str) -> str:
    return unquote(metadata_value)
