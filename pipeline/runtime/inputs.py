"""Ingest: find input files, identify them by content, and accept them into the warehouse.

A document is identified by the SHA-256 of its bytes (document id). Accepting stores the
original (write-once) before any processing, so nothing accepted can be lost; a document
whose record already exists is skipped, which makes re-running idempotent and resumable.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.runtime.errors import ConfigurationError
from pipeline.stages.load import SUPPORTED_SUFFIXES

#: Record statuses after which a document is not processed again (unless forced).
FINAL_STATUSES = ("ok", "needs_review")


@dataclass(frozen=True)
class InputFile:
    """A local scan to digitize."""

    path: Path
    explicit: bool  # named on the command line (processed whatever its suffix)

    @property
    def name(self) -> str:
        return safe_display_name(self.path)

    def size(self) -> int:
        return self.path.stat().st_size

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class S3InputFile:
    """A scan under an S3 prefix (``sohoa digitize s3://KEY:SECRET@host:port/bucket/prefix/``)."""

    client: object = field(repr=False, compare=False)
    bucket: str
    key: str
    object_size: int

    @property
    def name(self) -> str:
        return mask_identifiers_in_name(self.key.rsplit("/", 1)[-1][:255] or "unnamed")

    def size(self) -> int:
        return self.object_size

    def read(self) -> bytes:
        """The object's bytes; an S3 outage is ridden out by the one retry layer (the same
        budget as the warehouse's, :mod:`pipeline.runtime.retry`), a refusal raised at once."""
        from pipeline.runtime.retry import DEFAULT_POLICY  # deferred: loads stamina
        from pipeline.warehouse.objects import s3_call  # deferred: loads minio, only for s3:// inputs

        def get() -> bytes:
            resp = self.client.get_object(self.bucket, self.key)  # type: ignore[attr-defined]
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return s3_call(f"read s3://{self.bucket}/{self.key}", "input", get, DEFAULT_POLICY)


def iter_input_files(paths: Iterable[str | Path]) -> Iterator[InputFile]:
    """Files named directly, and supported scans found recursively in folders (sorted, stable)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    if Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                        yield InputFile(Path(root) / name, explicit=False)
        else:
            yield InputFile(path, explicit=True)


def is_s3_url(value: str) -> bool:
    return str(value).startswith("s3://")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def s3_input_secure(url: str, secure: bool | None = None) -> bool:
    """Whether an ``s3://`` input is read over HTTPS: ``?secure=true|false`` in the URL wins,
    then ``secure`` (``sohoa digitize --s3-secure``), then the port (443: HTTPS; any other or
    none: plain HTTP, the S3 servers of a site's LAN)."""
    parts = urlsplit(url)
    asked = parse_qs(parts.query).get("secure")
    if asked:
        value = asked[-1].strip().lower()
        if value not in _TRUE + _FALSE:
            raise ConfigurationError(f"S3 input: secure must be true or false, got {asked[-1]!r}")
        return value in _TRUE
    if secure is not None:
        return secure
    return parts.port == 443


def iter_s3_inputs(url: str, *, secure: bool | None = None) -> Iterator[S3InputFile]:
    """Supported scans under ``s3://KEY:SECRET@host:port/bucket/prefix[?secure=true]`` (listed
    lazily, sorted by key); HTTPS per :func:`s3_input_secure` (the CA bundle: ``SSL_CERT_FILE``)."""
    from minio import Minio  # deferred: loads minio, urllib3

    from pipeline.warehouse.objects import single_layer_pool  # deferred with minio: only for s3:// inputs

    parts = urlsplit(url)
    secure = s3_input_secure(url, secure)
    bucket, _, prefix = parts.path.lstrip("/").partition("/")
    if not parts.hostname or not bucket:
        raise ConfigurationError(f"S3 input must be s3://KEY:SECRET@host:port/bucket/prefix, got {url!r}")
    client = Minio(
        f"{parts.hostname}:{parts.port or (443 if secure else 80)}",
        access_key=unquote(parts.username or ""),
        secret_key=unquote(parts.password or ""),
        secure=secure,
        http_client=single_layer_pool(),
    )
    for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
        if obj.is_dir or Path(obj.object_name).suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        yield S3InputFile(client=client, bucket=bucket, key=obj.object_name, object_size=obj.size or 0)


def iter_inputs(paths: Iterable[str | Path], *, s3_secure: bool | None = None) -> Iterator[InputFile | S3InputFile]:
    """Local files and folders (see :func:`iter_input_files`) and ``s3://`` prefixes
    (``s3_secure``: HTTPS for those whose URL does not say, see :func:`s3_input_secure`)."""
    for raw in paths:
        if is_s3_url(str(raw)):
            yield from iter_s3_inputs(str(raw), secure=s3_secure)
        else:
            yield from iter_input_files([raw])


def document_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_display_name(path: PurePath) -> str:
    """The file's base name, for display and records only (never used as a storage path)."""
    name = path.name.replace("\x00", "")
    return mask_identifiers_in_name(name[:255] or "unnamed")


def mask_identifiers_in_name(name: str) -> str:
    """``name`` with every personal id (12 digits) or labelled tax code in it masked
    (``khai-sinh-001305012345.pdf`` → ``khai-sinh-************.pdf``): a file name is kept in
    records, manifests, receipts and the catalog, and must not carry an id in clear (issue 19).

    Separators of file names (``-``, ``_``, ``.``, ``+``) count as spaces when looking for ids,
    so an id between them is found as it would be in text (:func:`pipeline.records.pii.identifiers_in_text`)."""
    from pipeline.records.pii import identifiers_in_text  # deferred: loads cryptography

    if not name:
        return name
    name = unicodedata.normalize("NFC", name)
    spaced = re.sub(r"[-_.+~()\[\]]", " ", name)
    for value in identifiers_in_text(spaced):
        name = re.sub(rf"(?<!\d){re.escape(value)}(?!\d)", "*" * len(value), name)
    return name
