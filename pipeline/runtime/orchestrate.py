"""Orchestration: stream documents through the executor with a bounded window.

The driver accepts each input (hash, skip if done, store the original), then submits one
``prepare`` task, one ``process_page`` task per page and one ``finalize`` task per document.
At most ``max_in_flight_documents`` documents are in flight, so a batch of 100,000 files
never holds 100,000 futures. Every input ends in the run manifest as ok, needs_review,
failed or skipped.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.runtime.clients import runtime_for
from pipeline.runtime.config import Settings
from pipeline.runtime.document import DocumentOutcome, base_record, finalize_document, prepare_document, process_page
from pipeline.runtime.errors import SohoaError, TooLargeError
from pipeline.runtime.executor import Executor
from pipeline.runtime.inputs import FINAL_STATUSES, InputFile, S3InputFile, document_id_of, mask_identifiers_in_name
from pipeline.stages.models import DocumentInfo, ErrorItem, SourceRef
from pipeline.warehouse.layout import Warehouse

log = logging.getLogger("sohoa.orchestrate")


@dataclass
class BatchSummary:
    run_id: str
    started_at: datetime
    seconds: float = 0.0
    outcomes: list[DocumentOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def pages(self) -> int:
        return sum(o.pages for o in self.outcomes if o.status != "skipped")

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "documents": len(self.outcomes),
            "ok": self.count("ok"),
            "needs_review": self.count("needs_review"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "pages": self.pages,
            "seconds": round(self.seconds, 2),
            "pages_per_second": round(self.pages_per_second, 3),
        }


ProgressFn = Callable[[DocumentOutcome], None]


def accept(item: InputFile | S3InputFile, warehouse: Warehouse, settings: Settings, *, unit: str | None = None) -> SourceRef | DocumentOutcome:
    """Read, identify and store the original; or say why the document needs no processing.
    ``unit``: the unit the batch digitizes for (``sohoa digitize --unit``), in the record's provenance."""
    name = item.name
    try:
        size = item.size()
        if size > settings.limits.max_file_bytes:
            raise TooLargeError(
                f"file is {size / 1e6:.1f} MB, above the limit of {settings.limits.max_file_bytes / 1e6:.0f} MB"
            )
        data = item.read()
    except SohoaError as exc:
        return DocumentOutcome(document_id="", source_file=name, status="failed", error=ErrorItem.from_exception(exc), stored=False)
    except Exception as exc:  # noqa: BLE001 - OSError locally, S3Error/urllib3 errors for s3:// inputs
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        err = ErrorItem(stage="ingest", code="unreadable", message=f"cannot read {name}: {reason}", transient=True)
        return DocumentOutcome(document_id="", source_file=name, status="failed", error=err, stored=False)
    return accept_bytes(data, name, warehouse, settings, unit=unit)


def accept_bytes(
    data: bytes,
    name: str,
    warehouse: Warehouse,
    settings: Settings,
    *,
    unit: str | None = None,
    dossier: str | None = None,
) -> SourceRef | DocumentOutcome:
    """Identify ``data`` by content, skip it when its record is final, else store the original.

    Shared by batch runs (files) and the HTTP service (uploads). ``name`` is for display only.
    """
    name = mask_identifiers_in_name(name)  # a personal id in a file name is never stored in clear
    document_id = document_id_of(data)
    if not settings.force:
        status = warehouse.record_status(document_id)
        if status in FINAL_STATUSES:
            return DocumentOutcome(document_id=document_id, source_file=name, status="skipped", pages=0)
    ref = SourceRef(
        document_id=document_id,
        source_file=name,
        size=len(data),
        original_key=Warehouse.original_key(document_id),
        unit=unit,
        dossier=dossier,
    )
    warehouse.put_original(document_id, data, source_file=name)
    return ref


def submit_document(executor: Executor, ref: SourceRef, info: DocumentInfo | ErrorItem, settings: Settings) -> Any:
    """Submit the page tasks and the finalize task of one probed document; return the
    finalize future, whose result is the :class:`DocumentOutcome`. Used by batch runs and
    by the HTTP service alike."""
    settings = task_settings(settings)
    tag = f"{ref.document_id[:16]}-{uuid.uuid4().hex[:6]}"
    pages: list[Any] = []
    if isinstance(info, DocumentInfo):
        pages = [
            executor.submit(process_page, ref, info, n, settings, key=f"page-{n}-{tag}", resources={"ocr": 1})
            for n in range(1, info.page_count + 1)
        ]
    return executor.submit(finalize_document, ref, info, pages, settings, key=f"finalize-{tag}")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def remote_scheduler_warnings(settings: Settings) -> list[str]:
    """Why workers of a remote ``--scheduler`` could not reach a service: the warehouse or the
    signer on a loopback address (the embedded ones listen on 127.0.0.1 only) — each document
    would fail on those workers. Empty for a LocalCluster or a scheduler on loopback."""
    address = settings.cluster.scheduler_address
    if not address:
        return []
    if _is_loopback(urlsplit(address if "://" in address else f"tcp://{address}").hostname):
        return []
    out = []
    if settings.warehouse is not None and _is_loopback(urlsplit(f"http://{settings.warehouse.endpoint}").hostname):
        out.append(f"the Dask scheduler {address} is remote but the warehouse listens on {settings.warehouse.endpoint} "
                   "(loopback; the embedded SeaweedFS): workers on other hosts cannot reach it. Give --warehouse / "
                   "SOHOA_WAREHOUSE an address the workers reach")  # fmt: skip
    if settings.signer is not None and _is_loopback(urlsplit(settings.signer.url).hostname):
        out.append(f"the Dask scheduler {address} is remote but the signer listens on {settings.signer.url} "
                   "(loopback; the embedded signer): workers on other hosts cannot reach it. Give --signer / "
                   "SOHOA_SIGNER_URL an address the workers reach")  # fmt: skip
    return out


def task_settings(settings: Settings) -> Settings:
    """The settings tasks carry: with the encryption ring of the PII key ring (its public key
    and index key), so that workers encrypt personal data without any key file and without
    anything that decrypts (issue 22; :func:`pipeline.records.pii.with_encryption_keys`). The ring file
    is read again only when it changed (a rotation applies to the next run or submission)."""
    path = settings.pii_keyring
    try:
        stamp = path.stat().st_mtime_ns if path is not None and not settings.pii_encryption else None
    except OSError:
        stamp = None
    return _task_settings(settings, stamp)


@functools.lru_cache(maxsize=8)
def _task_settings(settings: Settings, stamp: int | None) -> Settings:
    from pipeline.records.pii import with_encryption_keys  # deferred: loads cryptography

    return with_encryption_keys(settings)


class BatchRunner:
    """Drives one batch through an executor. Configuration comes in; nothing is global."""

    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        warehouse: Warehouse,
        *,
        progress: ProgressFn | None = None,
        manifest_dir: Path | None = None,
        unit: str | None = None,
    ):
        self.settings = task_settings(settings)
        self.executor = executor
        self.warehouse = warehouse
        self.progress = progress or (lambda outcome: None)
        self.manifest_dir = manifest_dir
        self.unit = unit  # the unit a batch digitizes for: provenance.unit of its records (dashboard)

    def window(self) -> int:
        configured = self.settings.cluster.max_in_flight_documents
        return configured or max(2, 4 * self.executor.worker_count())

    def run(self, inputs: Iterable[InputFile | S3InputFile]) -> BatchSummary:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        summary = BatchSummary(run_id=run_id, started_at=datetime.now(UTC))
        t0 = time.perf_counter()
        manifest = self._open_manifest(run_id)
        source = iter(inputs)
        preparing: dict[Any, SourceRef] = {}
        finishing: dict[Any, SourceRef] = {}
        exhausted = False

        def record(outcome: DocumentOutcome) -> None:
            summary.outcomes.append(outcome)
            if manifest is not None:
                manifest.write(json.dumps(outcome.manifest_line(), ensure_ascii=False) + "\n")
                manifest.flush()
            self.progress(outcome)

        try:
            while True:
                while not exhausted and len(preparing) + len(finishing) < self.window():
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    try:
                        accepted = accept(item, self.warehouse, self.settings, unit=self.unit)
                    except SohoaError as exc:  # warehouse unreachable even after retries
                        accepted = DocumentOutcome(
                            document_id="",
                            source_file=item.name,
                            status="failed",
                            error=ErrorItem.from_exception(exc),
                            stored=False,
                        )
                    if isinstance(accepted, DocumentOutcome):
                        record(accepted)
                        continue
                    fut = self.executor.submit(prepare_document, accepted, self.settings, key=f"prepare-{accepted.document_id[:16]}-{uuid.uuid4().hex[:6]}")
                    preparing[fut] = accepted
                pending = list(preparing) + list(finishing)
                if not pending:
                    break
                for fut in self.executor.wait_any(pending):
                    if fut in preparing:
                        ref = preparing.pop(fut)
                        finishing[self._submit_document(ref, fut)] = ref
                    elif fut in finishing:
                        ref = finishing.pop(fut)
                        record(self._outcome(ref, fut))
        finally:
            summary.seconds = time.perf_counter() - t0
            if manifest is not None:
                manifest.close()
        try:
            self.warehouse.put_manifest(run_id, [o.manifest_line() for o in summary.outcomes])
        except SohoaError:
            pass  # the local manifest remains; the warehouse one is a convenience
        if any(o.status != "skipped" for o in summary.outcomes):
            self._compact_catalog()
        return summary

    def _compact_catalog(self) -> None:
        """Merge the batch's catalog deltas into the base, so that readers load a few Parquet
        parts instead of one file per document. Maintenance only: a failure (S3 down, another
        compaction meanwhile) leaves the deltas, which readers take as they are."""
        from pipeline.warehouse.catalog import compact  # deferred: loads duckdb, pyarrow, cryptography

        try:
            compact(self.warehouse)
        except SohoaError as exc:
            log.warning("catalog: not compacted after the batch (%s); run `sohoa catalog compact`", exc.message)

    def _submit_document(self, ref: SourceRef, prepare_future: Any) -> Any:
        try:
            info = prepare_future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task
            info = ErrorItem(stage="pipeline", code=type(exc).__name__, message=str(exc) or type(exc).__name__, transient=True)
        return submit_document(self.executor, ref, info, self.settings)

    def _outcome(self, ref: SourceRef, fut: Any) -> DocumentOutcome:
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001
            err = ErrorItem(
                stage="pipeline",
                code=type(exc).__name__,
                message=f"task failed: {exc}",
                transient=True,
            )
            return DocumentOutcome(
                document_id=ref.document_id,
                source_file=ref.source_file,
                status="failed",
                error=err,
                stored=self._store_failed_here(ref, err),
            )

    def _store_failed_here(self, ref: SourceRef, err: ErrorItem) -> bool:
        """The task itself died (e.g. its worker was lost repeatedly): write the failed record
        from the driver, so that the document is accounted for in the warehouse too."""
        from pipeline.warehouse.store import store_failed  # deferred: loads pikepdf, cryptography

        try:
            return store_failed(runtime_for(self.settings), ref, base_record(ref, 0, [], status="failed", error=err))
        except Exception:  # noqa: BLE001 - the manifest still has it
            return False

    def _open_manifest(self, run_id: str):
        if self.manifest_dir is None:
            return None
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        return open(self.manifest_dir / f"{run_id}.jsonl", "w", encoding="utf-8")
