"""Review (hiệu đính): the queue of records that need a steward, and corrections.

A correction never edits a stored record in place. It makes version ``n + 1``: the corrected
fields replace the extracted ones, the record is validated again (:func:`validate_record`),
its status is recomputed, a history entry says who changed which fields and why, and the
record is signed anew and written over the same key — S3 versioning keeps version ``n``.

Status after a correction: ``ok`` when no validation error remains and every flagged field
(one with a validation error or a review reason) was either corrected or accepted as read
by the steward; else ``needs_review`` again.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .pii import KeyRing, decrypt_fields, encrypt_fields
from .records import FIELD_MODELS
from .store import write_indexes
from .validate import validate_record
from .warehouse import Warehouse


class CorrectionError(ValueError):
    """The correction cannot apply to this record (unknown field, failed record, ...)."""


class VersionConflict(RuntimeError):
    """The record changed since the steward opened it (another correction came first)."""


_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def flagged_fields(record: Mapping[str, Any]) -> list[str]:
    """Fields that have a validation error or a review reason, in first-seen order."""
    seen: dict[str, None] = {}
    for issue in list(record.get("validation_errors") or []) + list(record.get("review_reasons") or []):
        seen.setdefault(issue["field"], None)
    return list(seen)


def _normalize(value: Any) -> Any:
    if isinstance(value, str):
        value = " ".join(value.split())
        return value or None
    if isinstance(value, list):
        return [_normalize(v) for v in value if _normalize(v) is not None]
    return value


def _check_field_names(record_type: str, names: Iterable[str], flagged: Iterable[str]) -> None:
    known = set(FIELD_MODELS[record_type].model_fields)
    unknown = sorted(set(names) - known - set(flagged))
    if unknown:
        raise CorrectionError(f"unknown field(s) for a {record_type} record: {', '.join(unknown)}")


def apply_correction(
    record: Mapping[str, Any],
    fields: Mapping[str, Any],
    *,
    reason: str,
    by: str,
    accepted: Iterable[str] = (),
    at: datetime | None = None,
) -> dict[str, Any]:
    """The next version of ``record`` (unsigned). Pure: nothing is read or written."""
    if record.get("status") == "failed":
        raise CorrectionError("a failed record has no extracted fields to correct; upload the scan again")
    if not reason or not reason.strip():
        raise CorrectionError("a correction needs a reason (lý do hiệu đính)")
    flagged = flagged_fields(record)
    _check_field_names(record["record_type"], list(fields) + list(accepted), flagged)
    new = copy.deepcopy(dict(record))
    changed = sorted(k for k, v in fields.items() if _normalize(v) != new["fields"].get(k))
    for name in changed:
        new["fields"][name] = _normalize(fields[name])
        new["field_confidence"][name] = 1.0
        evidence = new["field_evidence"].get(name) or {}
        new["field_evidence"][name] = {**evidence, "method": "steward"}
    confirmed = set(changed) | set(accepted) | {k for k in fields if k not in changed}
    validation = validate_record({**new, "signature": None})
    new["validation_errors"] = [i.model_dump() for i in validation]
    new["review_reasons"] = [r for r in new.get("review_reasons", []) if r["field"] not in confirmed]
    new["status"] = "ok" if not new["validation_errors"] and not new["review_reasons"] else "needs_review"
    new["version"] = int(record.get("version", 1)) + 1
    when = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    note = reason.strip()
    accepted_only = sorted(confirmed - set(changed))
    if accepted_only:
        note += f" (accepted as read: {', '.join(accepted_only)})"
    new["history"] = list(new.get("history") or []) + [
        {"version": new["version"], "at": when.isoformat(), "by": by, "action": "corrected",
         "reason": note, "changed_fields": changed}
    ]
    new["signature"] = None
    return new


def correct_record(
    warehouse: Warehouse,
    signer: Any,
    document_id: str,
    fields: Mapping[str, Any],
    *,
    reason: str,
    by: str,
    accepted: Iterable[str] = (),
    expected_version: int | None = None,
    keyring: KeyRing | None = None,
) -> dict[str, Any]:
    """Correct a stored record: new version, validated, signed (``signer.sign_record``), stored.

    A record whose personal data is encrypted is decrypted with ``keyring`` (as a steward),
    corrected, and encrypted again under the current key before it is signed.

    Raises :class:`LookupError` when there is no record, :class:`VersionConflict` when
    ``expected_version`` is not the current version, :class:`CorrectionError` when the
    correction does not apply. Returns the signed new version.
    """
    with _locks[document_id]:
        current = warehouse.get_record(document_id)
        if current is None:
            raise LookupError(f"no record for document {document_id}")
        if expected_version is not None and int(current.get("version", 1)) != expected_version:
            raise VersionConflict(
                f"the record is now at version {current.get('version', 1)}, not {expected_version}: reload it"
            )
        if current.get("pii"):
            if keyring is None:
                raise CorrectionError("this record's personal data is encrypted: the correction needs the PII key ring")
            current = decrypt_fields(current, keyring, role="steward")
        unsigned = apply_correction(current, fields, reason=reason, by=by, accepted=accepted)
        if keyring is not None:
            unsigned = encrypt_fields(unsigned, keyring)
        signed, data = signer.sign_record_bytes(unsigned)
        write_indexes(warehouse, signed, keyring)  # the corrected values must be found
        warehouse.put_record(document_id, data, status=signed["status"])
        return signed


# --- queue -------------------------------------------------------------------------------


def queue_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the review queue shows of one record."""
    confidences = list((record.get("field_confidence") or {}).values())
    provenance = record.get("provenance") or {}
    issues = list(record.get("validation_errors") or []) + list(record.get("review_reasons") or [])
    return {
        "document_id": record["document_id"],
        "source_file": record.get("source_file"),
        "record_type": record.get("record_type"),
        "version": record.get("version", 1),
        "unit": provenance.get("unit"),
        "dossier": provenance.get("dossier"),
        "issues": len(issues),
        "invalid": len(record.get("validation_errors") or []),
        "min_confidence": round(min(confidences), 3) if confidences else None,
        "flagged_fields": flagged_fields(record),
        "number": (record.get("fields") or {}).get("number"),
    }


def queue_order(item: Mapping[str, Any]) -> tuple:
    """Worst first: most issues, then lowest field confidence, then id (stable)."""
    conf = item["min_confidence"] if item["min_confidence"] is not None else 1.0
    return (-item["issues"], conf, item["document_id"])


def review_queue(warehouse: Warehouse, *, unit: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Records with status ``needs_review`` (of ``unit`` only, when given), worst first."""
    items = []
    for document_id in warehouse.iter_record_ids():
        if warehouse.record_status(document_id) != "needs_review":
            continue
        record = warehouse.get_record(document_id)
        if record is None or record.get("status") != "needs_review":
            continue
        item = queue_item(record)
        if unit is None or item["unit"] == unit:
            items.append(item)
    items.sort(key=queue_order)
    return items[:limit] if limit else items
