"""The HTTP service: uploads (tiếp nhận), status, reuse lookups, review desk, dashboard.

``create_app(settings, executor=..., keys=...)`` builds the FastAPI application over
*resolved* settings (warehouse and signer known, see :func:`pipeline.embedded.services.running_services`).
An upload is checked (dossier code, size, page count), its originals stored, and a receipt
returned at once; the pages go to the executor (the same Dask cluster as batch runs) and a
background thread collects finished documents. With ``executor=None`` uploads are only stored
(another process digitizes them); their status stays ``processing`` until a record appears.

Every endpoint but ``/openapi.json``, ``/healthz``, the static assets and the two HTML pages
(which ask for a key themselves) requires an API key. Roles (see :mod:`pipeline.service.api.auth`): a
``unit`` key sees only its own unit's documents and dossiers (another unit's answers 404, like
one that does not exist); a ``reader`` only looks up (``POST /api/v1/lookup``); stewards and
admins see every unit. A dossier belongs to the first unit that uploaded into it.

Every access to personal data (a record, its versions, page images, a dossier, lookups, the
review queue, the audit log) is audited, and so is every refused request to those endpoints
(no key, wrong role, another unit's resource, invalid input). A lookup by personal id or tax
code takes the identifier in a POST body (never the URL, which proxies and access logs keep)
and is logged by its blind index only.

Uploads are streamed to spooled temporary files (on disk above 1 MB), at most
``max_request_bytes`` a request (413 from ``Content-Length`` before anything is read, and again
while the body streams), and probed and stored one file at a time. Every response carries
security headers (CSP ``default-src 'self'``, no framing, no sniffing, no referrer); ``/docs``
is off (Swagger UI would load from a CDN): the OpenAPI document is at ``/openapi.json``.
A typed pipeline error becomes a 4xx or a 503 with its message, never a bare 500.

Error messages are in Vietnamese (the people who read them are one-stop officers and data
stewards); a pipeline error's technical message follows in parentheses. A browser that opens a
status address without a key (a link in a receipt) is sent to the page that asks for one
(``/upload?dossier=…``, ``/review?doc=…``) instead of a bare 401. The pages: ``/upload``
(tiếp nhận, unit keys), ``/review`` (bàn hiệu đính, stewards), ``/dashboard`` (admins), ``/docs``
(the API reference drawn from ``/openapi.json`` by a local script).
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.cli.catalog import cache_dir_for
from pipeline.records.pii import PiiAccessDenied, PiiError, decrypt_fields
from pipeline.runtime.clients import runtime_for
from pipeline.runtime.config import Settings
from pipeline.runtime.document import base_record
from pipeline.runtime.errors import (
    ConfigurationError,
    SchemaValidationError,
    ServiceUnavailableError,
    SigningError,
    SohoaError,
    TooLargeError,
    TooManyPagesError,
    WarehouseError,
)
from pipeline.runtime.inputs import mask_identifiers_in_name, safe_display_name
from pipeline.runtime.orchestrate import accept_bytes, submit_document
from pipeline.runtime.retry import RequestRetryBudget
from pipeline.service import dashboard, review
from pipeline.service.api.auth import ROLES, KeyStore, Principal, UnitNames
from pipeline.stages.load import probe
from pipeline.stages.models import DocumentInfo, ErrorItem, SourceRef
from pipeline.warehouse import audit
from pipeline.warehouse.layout import Warehouse, normalize_key_part
from pipeline.warehouse.store import record_summary, store_failed, subject_lookup_keys

log = logging.getLogger("sohoa.api")

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Mã hồ sơ (dossier code): agency code, date (yyMMdd), sequence — e.g. 000.00.01.H53-230101-0001.
DOSSIER_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}-\d{6}-\d{4}$")
#: A unit code that is itself an agency code (mã đơn vị) — the first part of its dossier codes.
AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
DOCUMENT_ID = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES_PER_UPLOAD = 50
_CHUNK = 1 << 20
#: Multipart framing around the files of one upload (boundaries, part headers), on top of
#: the files themselves, when the default cap of a request is derived from the file limit.
_MULTIPART_SLACK = 1 << 20
#: Longest lookup value (a number; a personal id or tax code is far shorter).
MAX_LOOKUP_CHARS = 200

#: Vietnamese names of the roles, as error messages say them.
ROLE_LABELS = {"unit": "đơn vị một cửa (unit)", "steward": "cán bộ hiệu đính (steward)",
               "reader": "khai thác (reader)", "admin": "quản trị (admin)"}

#: Paths anyone may fetch (pages that ask for a key themselves, the OpenAPI document, health).
PUBLIC_PATHS = frozenset({"/", "/review", "/dashboard", "/upload", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})

#: Endpoints that touch personal data: every access, refusals included, is audited.
PERSONAL_DATA_PATHS = re.compile(r"^/api/v1/(documents|dossiers|lookup|review|audit)(/|$)")

#: Sent with every response. The pages load only their own scripts and styles (no inline
#: script, no CDN); page images are shown from ``blob:`` URLs made by the review desk.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def default_max_request_bytes(max_file_bytes: int) -> int:
    """Cap of one upload request: two files at the per-file limit, plus multipart framing."""
    return 2 * max_file_bytes + _MULTIPART_SLACK


# --- background processing ------------------------------------------------------------------


class Tracker:
    """Documents in flight on the executor, and what became of those that finished.

    ``submit`` sends one probed document to the executor unless it is already in flight (so
    the same file uploaded twice is processed once). A done-callback queues each finished
    future; the collector thread takes the outcome and forgets the future.
    """

    def __init__(self, executor: Any, settings: Settings, warehouse: Warehouse):
        self.executor = executor
        self.settings = settings
        self.warehouse = warehouse
        self._lock = threading.Lock()
        self._inflight: dict[str, Any] = {}
        self._refs: dict[str, SourceRef] = {}
        self._finished: dict[str, dict[str, Any]] = {}
        self._done: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, ref: SourceRef, info: DocumentInfo) -> bool:
        """Send a document to the executor; False when it is already in flight (or no executor)."""
        if self.executor is None:
            return False
        self._ensure_thread()
        with self._lock:
            if ref.document_id in self._inflight:
                return False
            future = submit_document(self.executor, ref, info, self.settings)
            self._inflight[ref.document_id] = future
            self._refs[ref.document_id] = ref
            self._finished.pop(ref.document_id, None)
        future.add_done_callback(lambda f, doc=ref.document_id: self._done.put((doc, f)))
        return True

    def in_flight(self, document_id: str) -> bool:
        with self._lock:
            return document_id in self._inflight

    def pending(self) -> int:
        with self._lock:
            return len(self._inflight)

    def finished(self, document_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._finished.get(document_id)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._collect, name="sohoa-collector", daemon=True)
            self._thread.start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                document_id, future = self._done.get(timeout=0.5)
            except queue.Empty:
                continue
            self._settle(document_id, future)

    def _settle(self, document_id: str, future: Any) -> None:
        try:
            outcome = future.result()
            entry = {"status": outcome.status, "error": outcome.error.model_dump() if outcome.error else None}
        except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task
            entry = {"status": "failed", "error": {"stage": "pipeline", "code": type(exc).__name__, "message": str(exc)}}
            self._store_failed(document_id, entry["error"])
        with self._lock:
            self._inflight.pop(document_id, None)
            self._refs.pop(document_id, None)
            self._finished[document_id] = entry
            while len(self._finished) > 10_000:
                self._finished.pop(next(iter(self._finished)))
        log.info("document %s: %s", document_id[:12], entry["status"])

    def _store_failed(self, document_id: str, error: dict[str, Any]) -> None:
        """The task itself died: write the failed record from here, as batch runs do."""
        ref = self._refs.get(document_id)
        if ref is None:
            return
        try:
            err = ErrorItem(**{**error, "transient": True})
            store_failed(runtime_for(self.settings), ref, base_record(ref, 0, [], status="failed", error=err))
        except Exception:  # noqa: BLE001 - the status table still says failed
            log.exception("could not store the failed record of %s", document_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- request and response models -------------------------------------------------------------


class CorrectionIn(BaseModel):
    """A steward's correction: new field values, fields accepted as read, and why."""

    fields: dict[str, Any] = Field(default_factory=dict, max_length=review.MAX_FIELDS,
                                   description=f"field → corrected value (text ≤ {review.MAX_TEXT} characters, "
                                               f"lists ≤ {review.MAX_ITEMS} items)")
    accepted: list[str] = Field(default_factory=list, max_length=review.MAX_FIELDS,
                                description="flagged fields confirmed as extracted")
    reason: str = Field(min_length=1, max_length=1000, description="Lý do hiệu đính")
    expected_version: int | None = Field(default=None, description="version the steward corrected (409 if stale)")


class LookupIn(BaseModel):
    """One reuse lookup: exactly one of a personal id, a tax code or a document number."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str | None = Field(None, max_length=MAX_LOOKUP_CHARS, description="Số định danh cá nhân")
    tax_code: str | None = Field(None, max_length=MAX_LOOKUP_CHARS, description="Mã số thuế / mã số hộ kinh doanh")
    number: str | None = Field(None, max_length=MAX_LOOKUP_CHARS, description="Số, ký hiệu văn bản")


class UnitIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Tên đơn vị")


class KeyIn(BaseModel):
    unit: str
    role: Literal["unit", "steward", "reader", "admin"]


@dataclass
class Service:
    """What the endpoints share."""

    settings: Settings
    warehouse: Warehouse
    keys: KeyStore
    tracker: Tracker
    max_request_bytes: int = 0
    #: until when (monotonic seconds) the signer was last seen usable: uploads check it at most
    #: every SIGNER_CHECK_S seconds
    signer_ok_until: float = 0.0
    #: bytes a unit may have in flight in uploads at once (0: 2 × ``max_request_bytes``), and what
    #: each unit has in flight now: one unit cannot fill the server's spool with parallel requests
    max_unit_bytes: int = 0
    unit_inflight: dict[str, int] = field(default_factory=dict)
    _catalog: Any = None

    def signer(self):
        return runtime_for(self.settings).signer

    def catalog(self):
        """The catalog (Parquet + DuckDB) the desk searches, refreshed at each search (a listing
        of the catalog's deltas): a record just corrected is found at once."""
        if self._catalog is None:
            from pipeline.warehouse.catalog import Catalog  # deferred: loads duckdb, pyarrow

            wh = self.settings.warehouse
            self._catalog = Catalog(self.warehouse, cache_dir_for(self.settings.home, wh.endpoint, wh.bucket), max_age_s=0)
        return self._catalog

    @property
    def keyring(self):
        return runtime_for(self.settings).keyring

    def readable(self, record: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """The record with its personal data decrypted when the caller's role may read it
        (Decree 13/2023); otherwise the stored, encrypted form (those fields are null)."""
        if not record.get("pii") or self.keyring is None:
            return record
        try:
            return decrypt_fields(record, self.keyring, role=principal.role, unit=principal.unit)
        except PiiAccessDenied:
            return record


# --- helpers -------------------------------------------------------------------------------


def dossier_code_or_422(code: str) -> str:
    if not DOSSIER_CODE.match(code):
        raise HTTPException(
            422,
            detail=(
                f"mã hồ sơ {code!r} không hợp lệ: cần dạng 000.00.01.H53-230101-0001 "
                "(mã cơ quan, ngày yyMMdd, số thứ tự 4 chữ số)"
            ),
        )
    return code


def check_dossier_owner(principal: Principal, code: str) -> None:
    """A unit whose code is an agency code receives only dossiers numbered by that agency
    (on top of ownership, :func:`check_dossier_owned`, which holds whatever the code's shape)."""
    if principal.role == "unit" and AGENCY_CODE.match(principal.unit) and not code.startswith(principal.unit + "-"):
        raise HTTPException(403, detail=f"hồ sơ {code} mang mã của cơ quan khác, không phải đơn vị {principal.unit} của bạn")


def _owned_by_another(owner: str | None, principal: Principal) -> bool:
    return principal.role == "unit" and owner is not None and owner != principal.unit


def check_dossier_owned(svc: Service, principal: Principal, code: str) -> None:
    """A dossier belongs to the first unit that uploaded into it: another unit key may not add
    to it (403). Stewards and admins are not confined to a unit."""
    if _owned_by_another(audit.dossier_owner(svc.warehouse, code), principal):
        raise HTTPException(403, detail=f"hồ sơ {code} thuộc đơn vị khác: hãy dùng mã hồ sơ mới")


def display_name(raw: str | None) -> str:
    """A client's file name reduced to a base name, for display only (never a path)."""
    name = (raw or "").replace("\\", "/")
    return safe_display_name(PurePosixPath(name)) if name.strip("/") else "unnamed"


def _actor(principal: Principal) -> audit.Actor:
    return audit.Actor(key_id=principal.key_id, unit=principal.unit, role=principal.role)


def record_view(stored: dict[str, Any], status: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the API shows of a record: identity, status, fields with confidence and evidence,
    issues, page geometry, history and signature facts (no OCR words). ``record`` is the view
    to show (the decrypted record, for a caller who may read its personal data); ``stored``
    the record as stored (signature, encryption facts)."""
    record = stored if record is None else record
    signature = stored.get("signature") or {}
    provenance = record.get("provenance") or {}
    return {
        "document_id": record["document_id"],
        "status": status,
        "version": record.get("version", 1),
        "record_type": record.get("record_type"),
        "source_file": record.get("source_file"),
        "unit": provenance.get("unit"),
        "dossier": provenance.get("dossier"),
        "page_count": record.get("page_count"),
        "pages": [{"page": p["page"], "width": p["width"], "height": p["height"]} for p in record.get("pages", [])],
        "fields": record.get("fields", {}),
        "field_confidence": record.get("field_confidence", {}),
        "field_evidence": record.get("field_evidence", {}),
        "validation_errors": record.get("validation_errors", []),
        "review_reasons": record.get("review_reasons", []),
        "flagged_fields": review.flagged_fields(record),
        "error": record.get("error"),
        "history": record.get("history", []),
        "personal_data": (
            {"encrypted_at_rest": True, "fields": stored["pii"].get("fields", []), "kid": stored["pii"].get("kid"),
             "readable": record is not stored}
            if stored.get("pii") else None
        ),
        "signed": bool(signature.get("value")),
        "signer": signature.get("signer"),
        "signed_at": signature.get("signed_at"),
        # what the desk shows in Vietnamese: every field of the type, the issues in words
        "status_label": review.STATUS_LABELS.get(status, status),
        "record_type_label": review.RECORD_TYPE_LABELS.get(record.get("record_type") or "", record.get("record_type")),
        "field_specs": review.field_specs(record["record_type"]) if record.get("record_type") in review.FIELD_MODELS else [],
        "issues": review.issues_view(record),
        "required_missing": review.missing_required(record) if record.get("record_type") in review.FIELD_MODELS else [],
    }


def status_for(exc: SohoaError) -> int:
    """The HTTP status of a typed pipeline error: 503 when a service (warehouse, signer, key
    ring) failed or refused, 413 for a file above the limits, 403 for personal data the role
    may not read, else 422 (the input is at fault)."""
    if isinstance(exc, (ServiceUnavailableError, SigningError, WarehouseError, ConfigurationError)):
        return 503
    if isinstance(exc, (TooLargeError, TooManyPagesError)):
        return 413
    if isinstance(exc, PiiAccessDenied):
        return 403
    if exc.code == "document_not_found":
        return 404
    if isinstance(exc, PiiError):
        return 503
    return 422


#: What a typed pipeline error means to the person who sent the request, by HTTP status (the
#: error's own technical message follows it).
ERROR_WORDS = {413: "tệp vượt giới hạn", 403: "không được đọc dữ liệu cá nhân này", 404: "không tìm thấy",
               422: "không đọc được tệp (không phải bản quét PDF, TIFF, JPEG, PNG hợp lệ)",
               503: "dịch vụ (kho lưu trữ hoặc ký số) tạm thời không dùng được, thử lại sau"}


def _http_error_for(exc: SohoaError, name: str) -> HTTPException:
    status = status_for(exc)
    return HTTPException(status, detail=f"{name}: {ERROR_WORDS.get(status, 'lỗi')} — {exc.message}")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


class _BodyTooLarge(Exception):
    """The request body grew past the cap while it streamed in."""


def _capped_receive(receive: Callable[[], Any], cap: int) -> Callable[[], Any]:
    """``receive`` that raises :class:`_BodyTooLarge` once more than ``cap`` body bytes came."""
    total = 0

    async def wrapped() -> Any:
        nonlocal total
        message = await receive()
        if message.get("type") == "http.request":
            total += len(message.get("body") or b"")
            if total > cap:
                raise _BodyTooLarge(total)
        return message

    return wrapped


@dataclass
class Incoming:
    """One uploaded file, spooled to a temporary file (on disk above 1 MB), with its size and
    SHA-256 (the document id) computed as it was read back in chunks."""

    name: str
    upload: UploadFile
    size: int
    sha256: str

    def read(self) -> bytes:
        """The file's bytes (one file in memory at a time: the caller drops them when done)."""
        self.upload.file.seek(0)
        return self.upload.file.read()


def _measure(upload: UploadFile, name: str, limit: int) -> Incoming:
    """Size and hash of a spooled upload, in chunks; 413 above ``limit`` (per file)."""
    if upload.size is not None and upload.size > limit:
        raise HTTPException(413, detail=f"{name}: tệp {megabytes(upload.size)}, vượt giới hạn {megabytes(limit)} mỗi tệp")
    digest, total = hashlib.sha256(), 0
    upload.file.seek(0)
    while chunk := upload.file.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, detail=f"{name}: tệp vượt giới hạn {megabytes(limit)} mỗi tệp")
        digest.update(chunk)
    return Incoming(name=name, upload=upload, size=total, sha256=digest.hexdigest())


def _anonymous(request: Request) -> audit.Actor:
    """Who made a request that presented no valid key: the key id it named, if any."""
    token = request.headers.get("x-api-key") or ""
    auth_header = request.headers.get("authorization") or ""
    if auth_header[:7].lower() == "bearer ":
        token = auth_header[7:].strip()
    match = re.match(r"^sohoa_([0-9a-f]{12})_", token)
    return audit.Actor(key_id=match.group(1) if match else "", unit="", role="anonymous")


def _audit_refusal(svc: Service, request: Request, status: int, reason: Any) -> None:
    """Write the audit entry of a refused request to a personal-data endpoint (the path, never
    the query string, which could hold an identifier)."""
    principal = getattr(request.state, "principal", None)
    actor = _actor(principal) if principal is not None else _anonymous(request)
    document_id = request.path_params.get("document_id") if request.path_params else None
    try:
        audit.write_audit(
            svc.warehouse, actor, "refused",
            documents=[document_id] if document_id and DOCUMENT_ID.match(document_id) else [],
            detail={"method": request.method, "path": request.url.path[:300], "status": status,
                    "reason": str(reason)[:300]},
        )
    except Exception:  # noqa: BLE001 - the request is refused anyway
        log.exception("could not write the audit entry of a refused %s %s", request.method, request.url.path[:300])


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every response; API answers not cached."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REDACTED_QUERY = re.compile(r"((?:^|[?&])(?:personal_id|tax_code)=)[^&\s]*", re.IGNORECASE)


class RedactIdentifiers(logging.Filter):
    """Blanks ``personal_id=`` and ``tax_code=`` query values in uvicorn's access log (a client
    that still sends them in the URL is refused, but the line is logged before)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_REDACTED_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _REDACTED_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def install_access_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactIdentifiers) for f in access.filters):
        access.addFilter(RedactIdentifiers())


# --- the application -------------------------------------------------------------------------


def create_app(settings: Settings, *, executor: Any = None, keys: KeyStore, max_request_bytes: int | None = None,
               max_unit_bytes: int | None = None) -> FastAPI:  # fmt: skip
    """The service over resolved ``settings``; ``executor`` runs the pipeline (None: store only).
    ``max_request_bytes``: cap of one upload request (default :func:`default_max_request_bytes`);
    ``max_unit_bytes``: what one unit may have in flight in uploads at once (default: twice that)."""
    if settings.warehouse is None:
        raise ValueError("create_app needs resolved settings (see pipeline.embedded.services.running_services)")
    warehouse = Warehouse(settings.warehouse)
    svc = Service(settings=settings, warehouse=warehouse, keys=keys, tracker=Tracker(executor, settings, warehouse),
                  max_request_bytes=max_request_bytes or default_max_request_bytes(settings.limits.max_file_bytes),
                  max_unit_bytes=max_unit_bytes or 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=_backfill_owners, args=(warehouse,), name="sohoa-owners", daemon=True).start()
        yield
        svc.tracker.stop()

    app = FastAPI(
        title="sohoa",
        summary="Số hóa hồ sơ, giấy tờ, kết quả giải quyết thủ tục hành chính",
        description="Upload scans of a dossier, follow their digitization, review and correct records, "
        "look up digitized documents for reuse. Authenticate with `Authorization: Bearer <key>` or `X-API-Key`.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: off (see module docstring)
        redoc_url=None,
    )
    app.state.service = svc
    app.add_middleware(SecurityHeaders)

    app.add_middleware(RequestRetryBudget)  # a request's S3/signer calls retry 15 s at most: then 503
    install_access_log_redaction()
    _add_error_handlers(app, svc)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    auth = _auth_dependency(keys)
    _add_pages(app)
    _add_upload_routes(app, svc, auth)
    _add_document_routes(app, svc, auth)
    _add_review_routes(app, svc, auth)
    _add_desk_routes(app, svc, auth)
    _add_admin_routes(app, svc, auth)
    return app


def _add_error_handlers(app: FastAPI, svc: Service) -> None:
    """Refusals of personal-data endpoints are audited; typed pipeline errors become 4xx/503."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if 400 <= exc.status_code < 500 and PERSONAL_DATA_PATHS.match(request.url.path):
            await run_in_threadpool(_audit_refusal, svc, request, exc.status_code, exc.detail)
        if exc.status_code == 404 and exc.detail == "Not Found":
            exc = StarletteHTTPException(404, detail="không có trang hoặc địa chỉ này", headers=exc.headers)
        if exc.status_code == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            page = _page_for(request.url.path)  # a status link opened in a browser: the page that asks for a key
            if page:
                return RedirectResponse(page, status_code=303)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        reasons = "; ".join(f"{'/'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])
        if PERSONAL_DATA_PATHS.match(request.url.path):
            await run_in_threadpool(_audit_refusal, svc, request, 422, reasons)
        return JSONResponse({"detail": f"dữ liệu gửi lên không hợp lệ — {reasons}",
                             "errors": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(SohoaError)
    async def pipeline_error(request: Request, exc: SohoaError) -> Response:
        status = status_for(exc)
        if status < 500 and PERSONAL_DATA_PATHS.match(request.url.path):
            await run_in_threadpool(_audit_refusal, svc, request, status, exc.message)
        else:
            log.warning("%s %s: %s", request.method, request.url.path[:300], exc)
        headers = {"Retry-After": "30"} if status == 503 else None
        return JSONResponse({"detail": f"{ERROR_WORDS.get(status, 'lỗi')} ({exc.stage}/{exc.code}: {exc.message})"},
                            status_code=status, headers=headers)


def _page_for(path: str) -> str | None:
    """The page an officer or steward opens instead of an API address (a link in a receipt)."""
    if m := re.match(r"^/api/v1/dossiers/([^/]+)$", path):
        return "/upload?dossier=" + quote(m.group(1), safe="")
    if m := re.match(r"^/api/v1/documents/([0-9a-f]{64})$", path):
        return "/review?doc=" + m.group(1)
    return None


def _backfill_owners(warehouse: Warehouse) -> None:
    """Owners of the dossiers received before owners were recorded (see :mod:`pipeline.warehouse.audit`)."""
    try:
        written = audit.backfill_dossier_owners(warehouse)
        if written:
            log.info("recorded the owners of %d earlier dossiers", written)
    except Exception:  # noqa: BLE001 - until it succeeds, ownership falls back to the receipts
        log.exception("could not record the owners of earlier dossiers")


def _auth_dependency(keys: KeyStore) -> Callable[..., Callable[..., Principal]]:
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")

    def require(*roles: str) -> Callable[..., Principal]:
        allowed = set(roles or ROLES)

        def dependency(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Security(bearer),
            api_key: str | None = Security(header),
        ) -> Principal:
            token = credentials.credentials if credentials else api_key
            principal = keys.authenticate(token)
            request.state.principal = principal  # who a refusal is audited as
            if principal is None:
                raise HTTPException(
                    401,
                    detail="thiếu khóa API hoặc khóa không hợp lệ: đăng nhập bằng khóa của đơn vị (Authorization: Bearer <khóa> hoặc X-API-Key)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if principal.role not in allowed:
                raise HTTPException(403, detail=f"vai trò {ROLE_LABELS.get(principal.role, principal.role)} không được làm việc này "
                                                f"(cần vai trò {' hoặc '.join(ROLE_LABELS.get(a, a) for a in sorted(allowed))})")
            return principal

        return dependency

    return require


def _add_pages(app: FastAPI) -> None:
    def page(name: str) -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/review")

    @app.get("/review", include_in_schema=False)
    def review_desk() -> FileResponse:
        """Bàn hiệu đính: the page asks for a steward key and keeps it in sessionStorage."""
        return page("review.html")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return page("dashboard.html")

    @app.get("/upload", include_in_schema=False)
    def reception_page() -> FileResponse:
        """Tiếp nhận: the one-stop officer's page (a unit key, kept in sessionStorage)."""
        return page("upload.html")

    @app.get("/docs", include_in_schema=False)
    def docs_page() -> FileResponse:
        """The API's reference drawn from /openapi.json by a local script (no CDN)."""
        return page("docs.html")

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}


# --- uploads and status ------------------------------------------------------------------------


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                    "required": ["files"],
                }
            }
        },
    }
}


def document_status(svc: Service, document_id: str) -> str | None:
    """ok / needs_review / failed from the record; processing while in flight or while the
    original is stored without a record; None when the warehouse knows no such document."""
    if svc.tracker.in_flight(document_id):
        return "processing"
    status = svc.warehouse.record_status(document_id)
    if status is not None:
        return status
    finished = svc.tracker.finished(document_id)
    if finished is not None:
        return finished["status"]
    return "processing" if svc.warehouse.has_original(document_id) else None


def _add_upload_routes(app: FastAPI, svc: Service, auth) -> None:
    limits = svc.settings.limits

    @app.post(
        "/api/v1/dossiers/{dossier_code}/documents",
        status_code=202,
        tags=["tiếp nhận"],
        openapi_extra=_UPLOAD_BODY,
        responses={403: {"description": "the dossier belongs to another unit"},
                   413: {"description": "the request above max_request_bytes, a file above max_file_bytes or max_pages"},
                   422: {"description": "bad dossier code, no file, or not a readable scan"}},
    )
    async def upload(dossier_code: str, request: Request, principal: Principal = Depends(auth("unit", "admin"))) -> JSONResponse:
        """Receive the scans of one dossier (hồ sơ): returns a receipt at once, digitizes in the background.

        Each document is identified by the SHA-256 of its bytes: sending the same file again
        returns the same id and is not processed twice. File names are for display only.
        A dossier belongs to the first unit that uploads into it. The whole request is at most
        ``max_request_bytes`` (413, from ``Content-Length`` before the body is read)."""
        dossier_code_or_422(dossier_code)
        check_dossier_owner(principal, dossier_code)
        cap = svc.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPException(400, detail="Content-Length không hợp lệ")
            if int(declared) > cap:
                raise HTTPException(413, detail=f"lần gửi này {megabytes(int(declared))}, vượt giới hạn "
                                                f"{megabytes(cap)} mỗi lần gửi: hãy gửi các tệp của hồ sơ thành nhiều lần")
        await run_in_threadpool(check_dossier_owned, svc, principal, dossier_code)
        # the unit's share: what it announced (or the request cap, for a body without a length),
        # reserved until this request ends; no await between the check and the reservation
        share = int(declared) if declared is not None else cap
        unit_cap = svc.max_unit_bytes or 2 * cap
        held = svc.unit_inflight.get(principal.unit, 0)
        if held + share > unit_cap:
            raise HTTPException(429, detail=f"đơn vị {principal.unit} đang gửi {megabytes(held)} "
                                            f"(tối đa {megabytes(unit_cap)} cùng lúc): chờ các lần gửi trước xong",
                                headers={"Retry-After": "30"})  # fmt: skip
        svc.unit_inflight[principal.unit] = held + share
        try:
            return await _upload_body(request, principal, dossier_code, cap)
        finally:
            left = svc.unit_inflight.get(principal.unit, 0) - share
            if left > 0:
                svc.unit_inflight[principal.unit] = left
            else:
                svc.unit_inflight.pop(principal.unit, None)

    async def _upload_body(request: Request, principal: Principal, dossier_code: str, cap: int) -> JSONResponse:
        body = Request(request.scope, _capped_receive(request.receive, cap))
        try:
            form = await body.form(max_files=MAX_FILES_PER_UPLOAD + 1, max_fields=10)
        except _BodyTooLarge as exc:
            raise HTTPException(413, detail=f"lần gửi vượt giới hạn {megabytes(cap)} mỗi lần gửi: "
                                            "hãy gửi các tệp của hồ sơ thành nhiều lần") from exc
        try:
            uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not uploads:
                raise HTTPException(422, detail="không có tệp nào trong lần gửi (trường multipart 'files')")
            if len(uploads) > MAX_FILES_PER_UPLOAD:
                raise HTTPException(413, detail=f"tối đa {MAX_FILES_PER_UPLOAD} tệp mỗi lần gửi")
            files = [await run_in_threadpool(_measure, item, display_name(item.filename), limits.max_file_bytes)
                     for item in uploads]
            receipt = await run_in_threadpool(_receive, svc, principal, dossier_code, files)
        finally:
            await form.close()
        return JSONResponse(receipt, status_code=202)

    @app.get("/api/v1/dossiers/{dossier_code}", tags=["tiếp nhận"])
    def dossier(dossier_code: str, principal: Principal = Depends(auth("unit", "steward", "admin"))) -> dict[str, Any]:
        """Status of every document of a dossier (of the caller's unit, for a unit key)."""
        dossier_code_or_422(dossier_code)
        unit = None if principal.sees_all_units() else principal.unit
        if unit is not None and _owned_by_another(audit.dossier_owner(svc.warehouse, dossier_code), principal):
            raise HTTPException(404, detail=f"không có hồ sơ {dossier_code}")
        receipts = audit.dossier_receipts(svc.warehouse, dossier_code, unit)
        if not receipts:
            raise HTTPException(404, detail=f"không có hồ sơ {dossier_code}")
        audit.write_audit(svc.warehouse, _actor(principal), "dossier.read",
                          documents=[r["document_id"] for r in receipts], detail={"dossier": dossier_code})
        documents = [
            {"document_id": r["document_id"], "file_name": r["source_file"], "unit": r["unit"],
             "received_at": r["received_at"], "pages": r.get("pages"),
             "status": document_status(svc, r["document_id"]) or "unknown"}
            for r in receipts
        ]
        return {"dossier_code": dossier_code, "documents": documents, "complete": all(d["status"] != "processing" for d in documents)}


def _probe_all(files: list[Incoming], svc: Service) -> list[DocumentInfo]:
    """Probe every file before storing any (a receipt is all or nothing), one file in memory
    at a time."""
    infos = []
    for item in files:
        try:
            infos.append(probe(item.read(), svc.settings.limits, decode=True))
        except SohoaError as exc:
            raise _http_error_for(exc, item.name) from exc
    return infos


#: How long an upload trusts the last check that the signer can sign (credentials/info).
SIGNER_CHECK_S = 30.0


def _require_signer(svc: Service) -> None:
    """A receipt promises a signed record: refuse uploads with 503 while the signer is unreachable
    or its key is locked for the pipeline's user (too many wrong PINs), rather than accept
    documents that can only fail."""
    now = time.monotonic()
    if svc.signer_ok_until > now:
        return
    info = svc.signer().credential_info(fresh=True)  # SignerUnavailableError / SigningError → 503
    if (info.get("key") or {}).get("status") != "enabled":
        until = info.get("lockedUntil")
        raise HTTPException(503, detail="dịch vụ ký số từ chối chứng thư của hệ thống"
                            + (f" (mã PIN bị khóa — PIN locked — đến {until})" if until else " (chứng thư bị vô hiệu)")
                            + ": tiếp nhận sẽ mở lại khi ký số được", headers={"Retry-After": "60"})  # fmt: skip
    svc.signer_ok_until = now + SIGNER_CHECK_S


def _receive(svc: Service, principal: Principal, dossier: str, files: list[Incoming]) -> dict[str, Any]:
    infos = _probe_all(files, svc)
    _require_signer(svc)
    if principal.role == "unit":  # the first unit to upload into a dossier owns it
        owner = audit.claim_dossier(svc.warehouse, dossier, principal.unit)
        if owner != principal.unit:
            raise HTTPException(403, detail=f"hồ sơ {dossier} thuộc đơn vị khác: hãy dùng mã hồ sơ mới")
    received_at = datetime.now(UTC).isoformat(timespec="seconds")
    documents: list[dict[str, Any]] = []
    for item, info in zip(files, infos, strict=True):
        name = mask_identifiers_in_name(item.name)  # a personal id in a file name is never stored
        data = item.read()
        accepted = accept_bytes(data, name, svc.warehouse, svc.settings, unit=principal.unit, dossier=dossier)
        if isinstance(accepted, SourceRef):
            svc.tracker.submit(accepted, info)
            document_id, duplicate = accepted.document_id, False
        else:
            document_id, duplicate = accepted.document_id, True
        audit.write_receipt(svc.warehouse, principal.unit, dossier, {
            "document_id": document_id, "source_file": name, "size": item.size,
            "pages": info.page_count, "media_type": info.media_type,
            "received_at": received_at, "key_id": principal.key_id,
        })
        del data
        documents.append({"document_id": document_id, "file_name": name, "pages": info.page_count,
                          "already_digitized": duplicate, "status": document_status(svc, document_id)})
    audit.write_audit(svc.warehouse, _actor(principal), "dossier.upload",
                      documents=[d["document_id"] for d in documents], detail={"dossier": dossier})
    return {"dossier_code": dossier, "unit": principal.unit, "received_at": received_at, "documents": documents}


# --- documents, pages, lookups ---------------------------------------------------------------


def visible_record(svc: Service, principal: Principal, document_id: str) -> tuple[dict[str, Any] | None, str]:
    """The current record (or None while processing) and status of a document the caller may
    see; 404 for an unknown document and, for a unit key, for another unit's document."""
    if not DOCUMENT_ID.match(document_id):
        raise HTTPException(404, detail="không có tài liệu này")
    record = svc.warehouse.get_record(document_id)
    if not principal.sees_all_units():
        own = record is not None and (record.get("provenance") or {}).get("unit") == principal.unit
        if not own and not audit.holds(svc.warehouse, principal.unit, document_id):
            raise HTTPException(404, detail="không có tài liệu này")
    status = (record or {}).get("status") or document_status(svc, document_id)
    if status is None:
        raise HTTPException(404, detail="không có tài liệu này")
    return record, status


def _add_document_routes(app: FastAPI, svc: Service, auth) -> None:
    readers = auth("unit", "steward", "admin")  # a reader only looks up (README, role table)

    @app.get("/api/v1/documents/{document_id}", tags=["hồ sơ số"])
    def document(document_id: str, version_id: str | None = None, principal: Principal = Depends(readers)) -> dict[str, Any]:
        """Status and record (fields, confidences, evidence, issues, history) of a document.
        ``version_id``: an earlier version of the record (S3 version id, see ``/versions``)."""
        record, status = visible_record(svc, principal, document_id)
        if version_id:
            if version_id not in {v.version_id for v in svc.warehouse.record_versions(document_id)}:
                raise HTTPException(404, detail="không có phiên bản này (xem /versions của tài liệu)")
            record = svc.warehouse.get_record(document_id, version_id)
            if record is None:
                raise HTTPException(404, detail="không có phiên bản này")
            status = record["status"]
        audit.write_audit(svc.warehouse, _actor(principal), "record.read", documents=[document_id],
                          detail={"version_id": version_id} if version_id else None)
        if record is None:
            return {"document_id": document_id, "status": status}
        return record_view(record, status, svc.readable(record, principal))

    @app.get("/api/v1/documents/{document_id}/versions", tags=["hồ sơ số"])
    def versions(document_id: str, principal: Principal = Depends(readers)) -> dict[str, Any]:
        """Every stored version of the record (S3 versioning keeps them), newest first."""
        visible_record(svc, principal, document_id)
        out = []
        for obj in svc.warehouse.record_versions(document_id):
            record = svc.warehouse.get_record(document_id, obj.version_id) or {}
            last = (record.get("history") or [{}])[-1]
            out.append({"version_id": obj.version_id, "version": record.get("version"), "status": record.get("status"),
                        "signed_at": (record.get("signature") or {}).get("signed_at"), "by": last.get("by"),
                        "action": last.get("action")})
        out.sort(key=lambda v: v["version"] or 0, reverse=True)
        audit.write_audit(svc.warehouse, _actor(principal), "record.versions", documents=[document_id])
        return {"document_id": document_id, "versions": out}

    @app.get("/api/v1/documents/{document_id}/pages/{page}.jpg", tags=["hồ sơ số"],
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def page_image(document_id: str, page: int, principal: Principal = Depends(readers)) -> Response:
        """A deskewed page image (JPEG) of a digitized document."""
        visible_record(svc, principal, document_id)
        data = svc.warehouse.get_page_image(document_id, page) if page >= 1 else None
        if data is None:
            raise HTTPException(404, detail=f"không có trang {page}")
        audit.write_audit(svc.warehouse, _actor(principal), "page.read", documents=[document_id], detail={"page": page})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    lookers = auth("reader", "admin")

    @app.post("/api/v1/lookup", tags=["khai thác"])
    def lookup(body: LookupIn, principal: Principal = Depends(lookers)) -> dict[str, Any]:
        """Reuse lookup (khai thác, sử dụng lại): documents by personal id, tax code or number,
        given in the JSON body (an identifier never travels in a URL). Every lookup is audited;
        one that returns documents is also a reuse event. Both keep a personal id or tax code
        as its blind index only, never in clear."""
        given = {k: v for k, v in body.model_dump().items() if v}
        return _run_lookup(svc, principal, given)

    @app.get("/api/v1/lookup", tags=["khai thác"])
    def lookup_by_number(
        request: Request,
        number: str | None = Query(None, max_length=MAX_LOOKUP_CHARS, description="Số, ký hiệu văn bản"),
        principal: Principal = Depends(lookers),
    ) -> dict[str, Any]:
        """Lookup by document number only; personal ids and tax codes: ``POST /api/v1/lookup``."""
        if {"personal_id", "tax_code"} & set(request.query_params):
            raise HTTPException(400, detail='số định danh và mã số thuế không được gửi trong URL (URL bị ghi nhật ký): '
                                            'POST /api/v1/lookup with a JSON body {"personal_id": "..."} or {"tax_code": "..."}')
        return _run_lookup(svc, principal, {"number": number} if number else {})


def _run_lookup(svc: Service, principal: Principal, given: dict[str, str]) -> dict[str, Any]:
    if len(given) != 1:
        raise HTTPException(422, detail="cần đúng một trong personal_id, tax_code, number")
    kind, value = next(iter(given.items()))
    documents = _lookup(svc, kind, value)
    logged = audit.logged_query(kind, value, svc.keyring)
    found = [d["document_id"] for d in documents]
    audit.write_audit(svc.warehouse, _actor(principal), "lookup", documents=found,
                      detail={"query": kind, **{k: v for k, v in logged.items() if k != "kind"}, "count": len(found)})
    if documents:
        audit.write_reuse(svc.warehouse, _actor(principal), logged, {d["document_id"]: d["unit"] for d in documents})
    return {"query": given, "count": len(documents), "documents": documents}


def _lookup(svc: Service, kind: str, value: str) -> list[dict[str, Any]]:
    """Current summaries of the documents a lookup finds (stale index entries dropped)."""
    if kind == "number":
        ids = svc.warehouse.lookup("number", value)
    else:
        ids = sorted({entry["document_id"] for key in subject_lookup_keys(value, svc.keyring)
                      for entry in svc.warehouse.subject_documents(key)})
    out = []
    for document_id in ids:
        record = svc.warehouse.get_record(document_id)
        if record is None:
            continue
        fields = record.get("fields") or {}
        if kind == "number" and normalize_key_part(str(fields.get("number") or "")) != normalize_key_part(value):
            continue  # corrected since it was indexed
        summary = record_summary(record)
        summary.update(version=record.get("version", 1), unit=(record.get("provenance") or {}).get("unit"),
                       dossier=(record.get("provenance") or {}).get("dossier"))
        out.append(summary)
    return out


# --- review desk ------------------------------------------------------------------------------


def _add_review_routes(app: FastAPI, svc: Service, auth) -> None:
    stewards = auth("steward", "admin")

    @app.get("/api/v1/review/queue", tags=["hiệu đính"])
    def review_queue(limit: int = Query(200, ge=1, le=5000), principal: Principal = Depends(stewards)) -> dict[str, Any]:
        """Records that need a steward (needs_review), worst first."""
        items = review.review_queue(svc.warehouse, limit=limit)
        audit.write_audit(svc.warehouse, _actor(principal), "review.queue", documents=[i["document_id"] for i in items])
        return {"count": len(items), "documents": items}

    @app.post("/api/v1/documents/{document_id}/corrections", tags=["hiệu đính"])
    def correct(document_id: str, body: CorrectionIn, principal: Principal = Depends(stewards)) -> dict[str, Any]:
        """Correct fields: a new record version, validated again and signed anew; the previous
        version stays in the warehouse (S3 versioning)."""
        visible_record(svc, principal, document_id)
        try:
            signed = review.correct_record(
                svc.warehouse, svc.signer(), document_id, body.fields, reason=body.reason,
                by=f"steward:{principal.key_id}", accepted=body.accepted, expected_version=body.expected_version,
                keyring=svc.keyring,
            ).to_json()  # the API answers with the record's JSON form, as stored
        except LookupError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        except review.VersionConflict as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        except (review.CorrectionError, SchemaValidationError) as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        audit.write_audit(svc.warehouse, _actor(principal), "record.correct", documents=[document_id],
                          detail={"version": signed["version"], "changed_fields": signed["history"][-1]["changed_fields"]})
        return record_view(signed, signed["status"], svc.readable(signed, principal))


# --- review desk and reception page: crops, history, search, a unit's dossiers, unit names ---------

#: Margin around a field's evidence box in a crop: this many times the box's height, at least
#: CROP_MIN_MARGIN pixels (the steward sees the words around a handwritten slot).
CROP_MARGIN = 1.5
CROP_MIN_MARGIN = 24


def crop_evidence(image_bytes: bytes, boxes: list[list[int]], geometry: dict[str, Any] | None) -> bytes:
    """The part of a page image around ``boxes`` (page coordinates, scaled to the stored image
    when its size differs from the page's), with a margin, as JPEG."""
    with Image.open(io.BytesIO(image_bytes)) as opened:
        img = opened.convert("RGB")
        sx = img.width / geometry["width"] if geometry and geometry.get("width") else 1.0
        sy = img.height / geometry["height"] if geometry and geometry.get("height") else 1.0
        x0 = min(b[0] for b in boxes) * sx
        y0 = min(b[1] for b in boxes) * sy
        x1 = max(b[2] for b in boxes) * sx
        y1 = max(b[3] for b in boxes) * sy
        pad = max(CROP_MIN_MARGIN, CROP_MARGIN * min(y1 - y0, 200))
        box = (max(0, int(x0 - 2 * pad)), max(0, int(y0 - pad)), min(img.width, int(x1 + 2 * pad)), min(img.height, int(y1 + pad)))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise HTTPException(404, detail="vùng ảnh của trường nằm ngoài trang")
        out = io.BytesIO()
        img.crop(box).save(out, format="JPEG", quality=90)
        return out.getvalue()


def dossier_summaries(svc: Service, unit: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """The dossiers a unit received, newest first, with their documents' statuses."""
    codes = audit.dossier_codes(svc.warehouse, unit)
    # a dossier code ends with its date (yyMMdd) and sequence: the newest first, only those shown are read
    codes.sort(key=lambda c: c.rsplit("-", 2)[-2:] if c.count("-") >= 2 else ["", c], reverse=True)
    out = []
    for code in codes[:limit]:
        receipts = audit.dossier_receipts(svc.warehouse, code, unit)
        if not receipts:
            continue
        statuses = [document_status(svc, r["document_id"]) or "unknown" for r in receipts]
        counts: dict[str, int] = {}
        for st in statuses:
            counts[st] = counts.get(st, 0) + 1
        out.append({"dossier_code": code, "unit": unit, "documents": len(receipts),
                    "received_at": max(r["received_at"] for r in receipts), "statuses": counts,
                    "status_labels": {k: review.STATUS_LABELS.get(k, k) for k in counts},
                    "complete": "processing" not in counts})
    out.sort(key=lambda d: d["received_at"], reverse=True)
    return out


def _add_desk_routes(app: FastAPI, svc: Service, auth) -> None:
    readers = auth("unit", "steward", "admin")
    stewards = auth("steward", "admin")
    names = UnitNames.for_home(svc.settings.home)

    @app.get("/api/v1/documents/{document_id}/fields/{name}/crop.jpg", tags=["hiệu đính"],
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def field_crop(document_id: str, name: str, principal: Principal = Depends(readers)) -> Response:
        """The part of the page where a field was read, or where it should be (a handwritten
        slot's box), with a margin: what the steward types a value from."""
        record, _ = visible_record(svc, principal, document_id)
        evidence = ((record or {}).get("field_evidence") or {}).get(name) or {}
        boxes = [b for b in evidence.get("boxes") or [] if len(b) == 4]
        if not boxes:
            raise HTTPException(404, detail=f"trường {review.label(name)} không có vùng ảnh trên trang")
        page = int(evidence.get("page") or 1)
        data = svc.warehouse.get_page_image(document_id, page)
        if data is None:
            raise HTTPException(404, detail=f"không có ảnh trang {page}")
        geometry = next((p for p in (record or {}).get("pages", []) if p.get("page") == page), None)
        audit.write_audit(svc.warehouse, _actor(principal), "page.read", documents=[document_id],
                          detail={"page": page, "field": name[:100]})
        return Response(crop_evidence(data, boxes, geometry), media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store"})

    @app.get("/api/v1/documents/{document_id}/history", tags=["hiệu đính"])
    def history(document_id: str, principal: Principal = Depends(readers)) -> dict[str, Any]:
        """Every version of the record, oldest first: who, when, why, what changed (values before
        and after) and whether its signature verifies."""
        visible_record(svc, principal, document_id)
        anchor = svc.settings.signer.trust_anchor if svc.settings.signer else None
        anchors = [anchor.read_bytes()] if anchor and anchor.exists() else []
        entries = review.history_view(svc.warehouse, document_id, anchors,
                                      readable=lambda rec: svc.readable(rec, principal))
        keys = {k.key_id: k for k in svc.keys.list()}
        unit_names = names.all()
        for entry in entries:  # "steward:1a2b…" → who that key is: its role and unit
            role, _, key_id = str(entry.get("by") or "").partition(":")
            key = keys.get(key_id)
            if key is not None:
                entry["by_label"] = f"{ROLE_LABELS.get(key.role, key.role)} · {dashboard.unit_name(key.unit, unit_names)} (khóa {key_id})"
            elif role == "sohoa" or entry.get("action") == "digitized":
                entry["by_label"] = f"Hệ thống số hóa ({entry.get('by')})"
        audit.write_audit(svc.warehouse, _actor(principal), "record.versions", documents=[document_id])
        return {"document_id": document_id, "versions": entries}

    @app.get("/api/v1/review/search", tags=["hiệu đính"])
    def search(q: str = Query(..., min_length=1, max_length=200, description="số, mã hồ sơ, cơ quan ban hành, ngày (dd/mm/yyyy)"),
               principal: Principal = Depends(stewards)) -> dict[str, Any]:
        """Records of any status by number, dossier code, issuer, date or subject."""
        hits = review.search_records(svc.warehouse, q, catalog=svc.catalog())
        audit.write_audit(svc.warehouse, _actor(principal), "review.search", documents=[h["document_id"] for h in hits])
        return {"count": len(hits), "documents": hits}

    @app.get("/api/v1/dossiers", tags=["tiếp nhận"])
    def dossiers(unit: str | None = Query(None, max_length=64), principal: Principal = Depends(readers)) -> dict[str, Any]:
        """The dossiers a unit received (a unit key: its own), newest first, with statuses."""
        if principal.role == "unit":
            unit = principal.unit
        if not unit:
            raise HTTPException(422, detail="cần chọn đơn vị (tham số unit)")
        items = dossier_summaries(svc, unit)
        audit.write_audit(svc.warehouse, _actor(principal), "dossier.list", detail={"unit": unit, "count": len(items)})
        return {"unit": unit, "unit_name": dashboard.unit_name(unit, names.all()), "dossiers": items}

    @app.get("/api/v1/units", tags=["service"])
    def units(principal: Principal = Depends(auth())) -> dict[str, Any]:
        """Names of the units (đơn vị), by code."""
        return {"units": names.all()}

    @app.put("/api/v1/units/{unit}", tags=["quản trị"])
    def name_unit(unit: str, body: UnitIn, principal: Principal = Depends(auth("admin"))) -> dict[str, Any]:
        """Name a unit (shown on the dashboard and the pages instead of its code)."""
        try:
            names.set(unit, body.name)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        audit.write_audit(svc.warehouse, _actor(principal), "unit.name", detail={"unit": unit})
        return {"unit": unit, "name": names.all()[unit]}


# --- administration: dashboard, audit log, keys ---------------------------------------------------


def _add_admin_routes(app: FastAPI, svc: Service, auth) -> None:
    admins = auth("admin")

    @app.get("/api/v1/me", tags=["service"])
    def me(principal: Principal = Depends(auth())) -> dict[str, str]:
        """Who the presented key is (key id, unit, role)."""
        return {"key_id": principal.key_id, "unit": principal.unit, "role": principal.role}

    unit_names = UnitNames.for_home(svc.settings.home)

    @app.get("/api/v1/dashboard", tags=["báo cáo"])
    def dashboard_json(period: Literal["day", "month"] = "month", unit: str | None = None,
                       since: date | None = Query(None, alias="from"), until: date | None = Query(None, alias="to"),
                       principal: Principal = Depends(admins)) -> dict[str, Any]:
        """Indicators per unit and period (Decision 766/QĐ-TTg): received, ok, needs_review,
        failed, reused, digitization and reuse rates; a grand total and the trend per month;
        ``from``/``to`` (ISO dates, inclusive) bound when documents were received."""
        return dashboard.dashboard(svc.warehouse, period=period, unit=unit or None, since=since, until=until,
                                   names=unit_names.all())

    @app.get("/api/v1/dashboard.csv", tags=["báo cáo"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})
    def dashboard_csv(period: Literal["day", "month"] = "month", unit: str | None = None,
                      since: date | None = Query(None, alias="from"), until: date | None = Query(None, alias="to"),
                      principal: Principal = Depends(admins)) -> Response:
        data = dashboard.dashboard(svc.warehouse, period=period, unit=unit or None, since=since, until=until)
        return Response(dashboard.to_csv(data["rows"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="sohoa-dashboard-{period}.csv"'})

    @app.get("/api/v1/audit", tags=["báo cáo"])
    def audit_log(day: date | None = None, principal: Principal = Depends(admins)) -> dict[str, Any]:
        """Access log entries of one day (UTC; default today)."""
        day = day or datetime.now(UTC).date()
        entries = list(audit.iter_audit(svc.warehouse, day, day))
        audit.write_audit(svc.warehouse, _actor(principal), "audit.read", detail={"day": day.isoformat(), "count": len(entries)})
        return {"day": day.isoformat(), "count": len(entries), "entries": entries}

    @app.get("/api/v1/keys", tags=["quản trị"])
    def list_keys(principal: Principal = Depends(admins)) -> dict[str, Any]:
        return {"keys": [k.public() for k in svc.keys.list()]}

    @app.post("/api/v1/keys", tags=["quản trị"], status_code=201)
    def create_key(body: KeyIn, principal: Principal = Depends(admins)) -> dict[str, Any]:
        """A new API key; the key itself is in this answer only."""
        try:
            stored, token = svc.keys.create(body.unit, body.role)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        audit.write_audit(svc.warehouse, _actor(principal), "key.create", detail={"key_id": stored.key_id, "unit": body.unit, "role": body.role})
        return {**stored.public(), "key": token}

    @app.delete("/api/v1/keys/{key_id}", tags=["quản trị"])
    def revoke_key(key_id: str, principal: Principal = Depends(admins)) -> dict[str, Any]:
        if not svc.keys.revoke(key_id):
            raise HTTPException(404, detail="không có khóa này")
        audit.write_audit(svc.warehouse, _actor(principal), "key.revoke", detail={"key_id": key_id})
        return {"key_id": key_id, "revoked": True}
