"""Review (hiệu đính): the queue of records that need a steward, and corrections.

A correction never edits a stored record in place. It makes version ``n + 1``: the corrected
fields replace the extracted ones, the record is validated again (:func:`validate_record`),
its status is recomputed, a history entry says who changed which fields and why, and the
record is signed anew and written over the same key — S3 versioning keeps version ``n``.

A correction is checked before anything is signed: bounded values (:data:`MAX_TEXT` characters
a string, :data:`MAX_ITEMS` items a list), every changed field valid against the record's
schema (a wrong type, a malformed date: refused, not stored as an invalid version), and an
index key the warehouse can hold for a changed number or issuer.

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
from .validate import semantic_issues, validate_record
from .warehouse import Warehouse

#: Longest string a correction may set (characters), and most items of a list value.
MAX_TEXT = 2000
MAX_ITEMS = 200
#: Most fields one correction may name (changed plus accepted).
MAX_FIELDS = 100
#: S3 object keys are at most 1024 bytes: the lookup index key of a number or issuer must fit.
MAX_KEY_BYTES = 1024


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


def check_values(fields: Mapping[str, Any], accepted: Iterable[str] = ()) -> None:
    """Refuse (:class:`CorrectionError`) values no field can hold: anything but text, a number,
    a boolean, null or a list of those; a string over :data:`MAX_TEXT` characters; a list over
    :data:`MAX_ITEMS` items; more than :data:`MAX_FIELDS` fields."""
    accepted = list(accepted)
    if len(fields) + len(accepted) > MAX_FIELDS:
        raise CorrectionError(f"a correction names at most {MAX_FIELDS} fields")
    for name in list(fields) + accepted:
        if not isinstance(name, str) or len(name) > 100:
            raise CorrectionError("a field name is text of at most 100 characters")

    def check(name: str, value: Any, nested: bool = False) -> None:
        if value is None or isinstance(value, (bool, int, float)):
            return
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise CorrectionError(f"field {name}: {len(value)} characters, above the limit of {MAX_TEXT}")
            return
        if isinstance(value, list) and not nested:
            if len(value) > MAX_ITEMS:
                raise CorrectionError(f"field {name}: {len(value)} items, above the limit of {MAX_ITEMS}")
            for item in value:
                check(name, item, nested=True)
            return
        raise CorrectionError(f"field {name}: a value is text, a number, a list of those or null, not {type(value).__name__}")

    for name, value in fields.items():
        check(name, value)


def check_corrected(record: Mapping[str, Any], changed: Iterable[str], document_id: str) -> None:
    """Refuse a corrected record (unsigned, personal data in clear) whose changed fields do
    not match the record's schema, or whose number or issuer is too long for its index key."""
    changed = set(changed)
    fields = record.get("fields") or {}
    semantic = {(i.field, i.message) for i in semantic_issues(fields)}
    invalid = [i for i in validate_record({**record, "signature": None})
               if i.field in changed and (i.field, i.message) not in semantic]
    if invalid:
        raise CorrectionError("corrected value(s) not valid: " + "; ".join(f"{i.field}: {i.message}" for i in invalid[:5]))
    for kind in ("number", "issuer"):
        value = fields.get(kind)
        if kind in changed and isinstance(value, str) and value:
            size = len(Warehouse.index_key(kind, value, document_id).encode())
            if size > MAX_KEY_BYTES:
                raise CorrectionError(
                    f"field {kind}: too long to be indexed ({size} bytes of index key, at most {MAX_KEY_BYTES}); "
                    "shorten it"
                )


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
    correction does not apply or a value is invalid (:func:`check_values`,
    :func:`check_corrected`: nothing is signed then). Returns the signed new version.
    """
    check_values(fields, accepted)
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
        check_corrected(unsigned, unsigned["history"][-1]["changed_fields"], document_id)  # before signing
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
