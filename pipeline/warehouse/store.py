"""Store stage: searchable PDF, signatures, and the warehouse writes in a safe order.

Write order makes the record the commit point: page images, the signed searchable PDF and
the lookup indexes go first; the signed record last. A crash before the record leaves only
re-creatable artefacts, and a re-run (which skips documents whose record exists) redoes them.
The artefacts are written concurrently — the page images while the PDF is built and signed —
so that a worker's core does not sit idle through one S3 round trip after another.

Retries (issue 21 item 4): nothing here retries. Each S3 write and each signer request retries
its own transient errors (:mod:`pipeline.runtime.retry`, the one layer), so the PDF and the record are
signed once and only their writes are tried again; all the calls of one document's store share
one deadline (the retry budget, 180 s), so an S3 outage longer than that fails the document once
the budget is spent, not after one budget per call.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from pipeline import __version__
from pipeline.records.pii import KeyRing, blind_indexes_of, encrypt_fields, subject_values
from pipeline.records.record import Record, record_bytes
from pipeline.runtime.clients import Runtime
from pipeline.runtime.errors import SohoaError
from pipeline.runtime.retry import deadline
from pipeline.stages.models import PageOutput, SourceRef
from pipeline.stages.pdf import build_searchable_pdf
from pipeline.warehouse.layout import Warehouse

log = logging.getLogger("sohoa.store")

#: Decree 30/2020 rule for a digitized copy's signature: organisation, copy type, time.
COPY_TYPE = "Bản sao điện tử từ bản chính (số hóa)"


def subject_keys(record: Record, keyring: KeyRing | None) -> list[str]:
    """Keys of the per-subject area for a record: the blind indexes of its subject ids
    (số định danh cá nhân, mã số thuế) — never the ids themselves when a key ring is
    configured; the clear ids only in a deployment without one."""
    if keyring is not None or record.pii is not None:
        return blind_indexes_of(record, keyring)
    return subject_values(record)


def subject_lookup_keys(identifier: str, keyring: KeyRing | None) -> list[str]:
    """The per-subject area keys under which documents about ``identifier`` may be filed
    (one per key of the ring: records written before a rotation are found too)."""
    return keyring.blind_indexes(identifier) if keyring is not None else [identifier]


def record_summary(record: Record | Mapping[str, Any]) -> dict[str, Any]:
    """What a lookup index entry says of a record (the model, or a stored record's JSON object)."""
    if isinstance(record, Record):
        head = {"document_id": record.document_id, "record_type": record.record_type, "status": record.status}
        fields, source_file = record.fields, record.source_file
    else:
        head = {k: record[k] for k in ("document_id", "record_type", "status")}
        fields, source_file = record.get("fields") or {}, record["source_file"]
    return {**head, **{k: fields.get(k) for k in ("number", "issuer", "date", "doc_type")}, "source_file": source_file}


#: Concurrent warehouse writes of one document's artefacts (page images, PDF, indexes).
ARTEFACT_WRITERS = 4


def store_document(runtime: Runtime, ref: SourceRef, record: Record, outputs: list[PageOutput]) -> Record:
    """Build and sign the searchable PDF, encrypt the personal data of the record, sign it,
    write everything. Returns the signed (encrypted) record; ``record`` itself is not changed."""

    wh = runtime.warehouse
    with deadline(wh.retry_policy.budget_s), ThreadPoolExecutor(
        max_workers=ARTEFACT_WRITERS, thread_name_prefix="sohoa-store"
    ) as pool:

        def submit(fn, *args):  # the writer threads share this document's retry deadline
            return pool.submit(contextvars.copy_context().run, fn, *args)

        writes = [submit(wh.put_page_image, ref.document_id, o.result.page, o.image_jpeg) for o in outputs]
        try:
            signed, data, pdf = _sign(runtime, record, outputs)  # once: only the writes are retried
            writes += [submit(wh.put_pdf, ref.document_id, pdf), submit(write_indexes, wh, signed, runtime.keyring)]
        finally:
            wait(writes)
        for write in writes:
            write.result()  # the first failure (S3 unavailable past the budget) is the document's
        wh.put_record(ref.document_id, data, status=signed.status)  # the commit point, last
        wh.clear_failed(ref.document_id)
    return signed


def _sign(runtime: Runtime, record: Record, outputs: list[PageOutput]) -> tuple[Record, bytes, bytes]:
    """The signed searchable PDF, then the record (which carries the PDF's hash) encrypted and
    signed: ``(signed record, its bytes, PDF)``."""
    settings = runtime.settings
    keyring = runtime.keyring
    title = record.fields.get("number") or record.source_file
    pdf = build_searchable_pdf(
        [(o.image_jpeg, o.result.width, o.result.height, o.result.dpi, o.text_pdf) for o in outputs],
        title=f"{title} — {record.source_file}",
        producer=f"sohoa {__version__}",
        words=[o.result.words for o in outputs],
    )
    if settings.sign_pdf:
        pdf = runtime.signer.sign_pdf(
            pdf,
            signer_name=record.fields.get("issuer") or "sohoa",
            reason=COPY_TYPE,
            location=record.fields.get("place") or "Việt Nam",
            visible=False,
        )
    provenance = record.provenance.model_copy(update={"searchable_pdf_sha256": hashlib.sha256(pdf).hexdigest()})
    record = record.model_copy(update={"provenance": provenance})
    if keyring is not None:
        record = encrypt_fields(record, keyring)  # before signing: the signature covers the stored form
    signed, data = runtime.signer.sign_record_bytes(record)
    return signed, data, pdf


def write_indexes(wh: Warehouse, record: Record, keyring: KeyRing | None) -> None:
    """Everything that finds a record again, written before the record itself: the lookup
    indexes by number and issuer, the per-subject area, and the catalog delta (the catalog reads
    the record's JSON form, as it reads stored records when it is rebuilt)."""
    from pipeline.warehouse.catalog import catalog_add  # deferred: loads duckdb, pyarrow

    summary = record_summary(record)
    fields = record.fields
    if fields.get("number"):
        wh.put_index("number", fields["number"], record.document_id, summary)
    if fields.get("issuer"):
        wh.put_index("issuer", fields["issuer"], record.document_id, summary)
    for key in subject_keys(record, keyring):
        wh.put_subject_entry(key, record.document_id, summary)
    catalog_add(wh, record.to_json(), keyring=keyring)


def store_failed(runtime: Runtime, ref: SourceRef, record: Record) -> bool:
    """Record a failed document in the records and the failed area. Signed when the signer
    answers; a failure to sign or store is itself kept in the record's error. Returns whether
    the warehouse accepted it (False only when the warehouse itself is unavailable). Signing and
    the writes share one retry deadline (the retry budget)."""
    from pipeline.warehouse.catalog import catalog_add  # deferred: loads duckdb, pyarrow

    wh = runtime.warehouse
    with deadline(wh.retry_policy.budget_s):
        data: bytes | None = None
        try:
            record, data = runtime.signer.sign_record_bytes(record)  # the signer client retries a transient error
        except SohoaError as exc:
            if record.error is not None:
                unsigned = f"{record.error.message} (record left unsigned: {exc.message})"
                record = record.model_copy(update={"error": record.error.model_copy(update={"message": unsigned})})
        document = record.to_json()
        if data is None:
            data = record_bytes(record)
        try:
            wh.put_failed(ref.document_id, {"document_id": ref.document_id, "source_file": ref.source_file, "error": document["error"]})
            try:
                catalog_add(wh, document, keyring=runtime.keyring)
            except SohoaError as exc:  # the failed area and the record matter; `sohoa catalog rebuild` recovers
                log.warning("catalog: failed document %s not catalogued: %s", ref.document_id, exc.message)
            wh.put_record(ref.document_id, data, status="failed")
        except SohoaError:
            return False
    return True
