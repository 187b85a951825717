"""Append-only registers kept in the warehouse: access log, reuse events, receipts.

* ``audit/<yyyy>/<mm>/<dd>/<timestamp>-<uuid>-<sha256>.json`` — nhật ký truy cập: one object per
  access to personal data (who: key id, unit, role; when; which document; what action).
* ``reuse/<yyyy>/<mm>/<dd>/<timestamp>-<uuid>-<sha256>.json`` — khai thác, sử dụng lại: one object per
  lookup that returned documents (who, when, the query kind and blind index, which documents).
* ``dossiers/<unit>/<dossier code>/<document_id>.json`` — tiếp nhận: a unit received this
  document in this dossier (mã hồ sơ), with when, the display name and the page count.
* ``holders/<aa>/<document_id>/<unit>/<dossier code>`` — the same fact keyed by document, so
  that "may this unit see this document?" is one LIST request.
* ``dossier-owners/<dossier code>.json`` — the unit that first received a document in the
  dossier owns it; no other unit may add to it (:func:`claim_dossier`).

A lookup by personal id or tax code is logged by its blind index only (:func:`logged_query`).

Why the warehouse rather than a local append-only file: every API replica writes to the same
place with no shared lock (each entry is its own object under a unique key, so nothing is ever
rewritten or appended to in place); the log lives as long as, and under the same access
control as, the data it describes; and in a bucket with Object Lock each audit entry gets
compliance-mode retention like the originals, so not even the service's own credentials can
delete it. An overwrite is possible (S3 versioning accepts a new version of a retained
key) but is detected: each key names the SHA-256 of its entry, and a reader
(:func:`iter_audit`, :func:`read_audit`) reports an entry with more than one version, a delete
marker or content that does not match as tampered (:class:`AuditTamperedError`), reading
the retained original. Entries are written synchronously: an access whose audit entry cannot
be written fails (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.runtime.errors import WarehouseError
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.objects import ListedObject


def utc_now() -> datetime:
    return datetime.now(UTC)


def _day_prefix(area: str, day: date) -> str:
    return f"{area}/{day:%Y}/{day:%m}/{day:%d}/"


def _entry_data(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


def _entry_key(area: str, at: datetime, data: bytes) -> str:
    """``<day>/<timestamp>Z-<uuid>-<sha256 of the content>.json``: an entry names its own
    content, so that a rewrite (a new S3 version under the same key) is detected on read."""
    digest = hashlib.sha256(data).hexdigest()
    return f"{_day_prefix(area, at.date())}{at:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4().hex}-{digest}.json"


_ENTRY_HASH = re.compile(r"-([0-9a-f]{64})\.json$")


def _put_json(warehouse: Warehouse, key: str, payload: dict[str, Any], *, retain: bool = False) -> None:
    """Write one JSON object (create-only key). ``retain``: compliance-mode retention."""
    retention = warehouse.objects.retention() if retain else None
    warehouse.objects.put(key, _entry_data(payload), "application/json", retention=retention)


def _get_json(warehouse: Warehouse, key: str) -> dict[str, Any] | None:
    data = warehouse.objects.get(key)
    return json.loads(data) if data else None


def _keys(warehouse: Warehouse, prefix: str) -> list[str]:
    return list(warehouse.objects.list(prefix))


def _days(since: date | None, until: date | None) -> Iterable[date] | None:
    if since is None or until is None:
        return None
    return (since + timedelta(days=n) for n in range((until - since).days + 1))


# --- reading an append-only area, verified ---------------------------------------------------


class AuditTamperedError(WarehouseError):
    """An append-only entry (audit log, reuse event) was rewritten or hidden: its key holds
    more than one S3 version, a delete marker, or content that does not match the SHA-256 its
    key names. The retained original is still in the bucket (compliance retention)."""

    code = "audit_tampered"

    def __init__(self, tampered: list[TamperedEntry]):
        self.tampered = tampered
        listed = "; ".join(f"{t.key}: {t.reason}" for t in tampered[:5])
        more = f" (and {len(tampered) - 5} more)" if len(tampered) > 5 else ""
        super().__init__(f"{len(tampered)} append-only entr{'y' if len(tampered) == 1 else 'ies'} tampered with: {listed}{more}")


@dataclass(frozen=True)
class TamperedEntry:
    key: str
    reason: str
    versions: int


@dataclass
class VerifiedLog:
    """What :func:`read_audit` found: the entries (for a tampered key, its original, oldest
    version, whose content is retained) and the keys that were tampered with."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    tampered: list[TamperedEntry] = field(default_factory=list)


def _versions_by_key(warehouse: Warehouse, prefix: str) -> dict[str, list[ListedObject]]:
    out: dict[str, list[ListedObject]] = {}
    for obj in warehouse.objects.versions(prefix):
        out.setdefault(obj.key, []).append(obj)
    return out


def _oldest(versions: list[ListedObject]) -> ListedObject:
    never = datetime.max.replace(tzinfo=UTC)
    live = [v for v in versions if not v.is_delete_marker] or versions
    # listed newest first: among equal times the one listed last is the older
    return min(reversed(live), key=lambda v: v.last_modified or never)


def _verified_entries(warehouse: Warehouse, area: str, since: date | None, until: date | None) -> Iterator[tuple[dict[str, Any] | None, TamperedEntry | None]]:
    """(entry, None) for each intact entry, oldest first; (original or None, TamperedEntry)
    for one that was rewritten, hidden behind a delete marker or whose content does not match
    the hash its key names. One LIST (with versions) a day prefix."""
    days = _days(since, until)
    prefixes = [f"{area}/"] if days is None else [_day_prefix(area, d) for d in days]
    for prefix in prefixes:
        for key, versions in sorted(_versions_by_key(warehouse, prefix).items()):
            reasons = []
            markers = sum(1 for v in versions if v.is_delete_marker)
            if markers:
                reasons.append("deleted (delete marker)")
            if len(versions) - markers > 1:
                reasons.append(f"rewritten ({len(versions) - markers} versions of a write-once entry)")
            original = _oldest(versions)
            data = None
            if not original.is_delete_marker:
                data = warehouse.objects.get(key, original.version_id)
            match = _ENTRY_HASH.search(key)
            if data is not None and match and hashlib.sha256(data).hexdigest() != match.group(1):
                reasons.append("content does not match the SHA-256 in its key")
            entry = None
            if data:
                try:
                    entry = json.loads(data)
                except ValueError:
                    reasons.append("not JSON")
            if reasons:
                yield entry, TamperedEntry(key=key, reason="; ".join(reasons), versions=len(versions))
            elif entry is not None:
                yield entry, None


def _iter_area(warehouse: Warehouse, area: str, since: date | None, until: date | None) -> Iterator[dict[str, Any]]:
    """Entries of an append-only area, oldest first, each verified: the first tampered entry
    raises :class:`AuditTamperedError` (never a rewritten ``{}`` returned as if it were true)."""
    for entry, tampered in _verified_entries(warehouse, area, since, until):
        if tampered is not None:
            raise AuditTamperedError([tampered])
        assert entry is not None  # an intact entry always comes with its content
        yield entry


# --- access log (nhật ký truy cập) ---------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acted: key id, unit and role of an API key (or a command-line user)."""

    key_id: str
    unit: str
    role: str


def write_audit(
    warehouse: Warehouse,
    actor: Actor,
    action: str,
    *,
    documents: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one access entry; returns it. Never rewrites an entry."""
    at = utc_now()
    entry = {
        "at": at.isoformat(),
        "key_id": actor.key_id,
        "unit": actor.unit,
        "role": actor.role,
        "action": action,
        "documents": sorted(set(documents)),
        "detail": detail or {},
    }
    _put_json(warehouse, _entry_key("audit", at, _entry_data(entry)), entry, retain=True)
    return entry


def iter_audit(warehouse: Warehouse, since: date | None = None, until: date | None = None) -> Iterator[dict[str, Any]]:
    """Audit entries, oldest first (all of them, or those of the days ``since``..``until``).
    Each is verified (write-once: one S3 version, content matching the hash its key names);
    a tampered entry raises :class:`AuditTamperedError`."""
    return _iter_area(warehouse, "audit", since, until)


def read_audit(warehouse: Warehouse, since: date | None = None, until: date | None = None, *, area: str = "audit") -> VerifiedLog:
    """The whole audit log (or reuse events, ``area="reuse"``) with its verification: every
    entry (for a tampered one, its retained original) and the list of tampered entries."""
    log = VerifiedLog()
    for entry, tampered in _verified_entries(warehouse, area, since, until):
        if entry is not None:
            log.entries.append(entry)
        if tampered is not None:
            log.tampered.append(tampered)
    return log


# --- reuse events (khai thác, sử dụng lại) -------------------------------------------------


def write_reuse(
    warehouse: Warehouse, actor: Actor, query: dict[str, str], documents: dict[str, str | None]
) -> dict[str, Any]:
    """Append one reuse event: ``documents`` maps each returned document id to its unit."""
    at = utc_now()
    entry = {
        "at": at.isoformat(),
        "key_id": actor.key_id,
        "unit": actor.unit,
        "role": actor.role,
        "query": query,
        "documents": [{"document_id": d, "unit": u} for d, u in sorted(documents.items())],
    }
    _put_json(warehouse, _entry_key("reuse", at, _entry_data(entry)), entry, retain=True)
    return entry


def iter_reuse(warehouse: Warehouse, since: date | None = None, until: date | None = None) -> Iterator[dict[str, Any]]:
    return _iter_area(warehouse, "reuse", since, until)


# --- receipts (tiếp nhận hồ sơ) -------------------------------------------------------------


def receipt_key(unit: str, dossier: str, document_id: str) -> str:
    return f"dossiers/{unit}/{dossier}/{document_id}.json"


def holder_key(document_id: str, unit: str, dossier: str) -> str:
    return f"holders/{document_id[:2]}/{document_id}/{unit}/{dossier}"


def write_receipt(warehouse: Warehouse, unit: str, dossier: str, receipt: dict[str, Any]) -> None:
    """Record that ``unit`` received a document in ``dossier`` (first receipt kept)."""
    document_id = receipt["document_id"]
    key = receipt_key(unit, dossier, document_id)
    if warehouse.objects.exists(key):  # the same file uploaded again: keep the first receipt
        return
    _put_json(warehouse, holder_key(document_id, unit, dossier), {"unit": unit, "dossier": dossier})
    _put_json(warehouse, key, {**receipt, "unit": unit, "dossier": dossier})


def holds(warehouse: Warehouse, unit: str, document_id: str) -> bool:
    """Whether ``unit`` received ``document_id`` (in any dossier)."""
    return bool(_keys(warehouse, f"holders/{document_id[:2]}/{document_id}/{unit}/"))


def holders(warehouse: Warehouse, document_id: str) -> list[str]:
    """Units that received ``document_id``."""
    prefix = f"holders/{document_id[:2]}/{document_id}/"
    return sorted({key[len(prefix):].split("/", 1)[0] for key in _keys(warehouse, prefix)})


def dossier_receipts(warehouse: Warehouse, dossier: str, unit: str | None = None) -> list[dict[str, Any]]:
    """Receipts of one dossier: of ``unit``, or of every unit when ``unit`` is None."""
    units = [unit] if unit else dossier_units(warehouse)
    out: list[dict[str, Any]] = []
    for u in units:
        for key in sorted(_keys(warehouse, f"dossiers/{u}/{dossier}/")):
            receipt = _get_json(warehouse, key)
            if receipt is not None:
                out.append(receipt)
    return out


def dossier_units(warehouse: Warehouse) -> list[str]:
    """Units that received a dossier."""
    return sorted(p[len("dossiers/"):].strip("/") for p in warehouse.objects.list("dossiers/", recursive=False))


def dossier_codes(warehouse: Warehouse, unit: str) -> list[str]:
    """Codes (mã hồ sơ) of the dossiers ``unit`` received, as listed (one LIST request)."""
    prefix = f"dossiers/{unit}/"
    return [p[len(prefix):].strip("/") for p in warehouse.objects.list(prefix, recursive=False)]


def iter_receipts(warehouse: Warehouse) -> Iterator[dict[str, Any]]:
    for key in sorted(_keys(warehouse, "dossiers/")):
        receipt = _get_json(warehouse, key)
        if receipt is not None:
            yield receipt


# --- dossier ownership ----------------------------------------------------------------------


def owner_key(dossier: str) -> str:
    return f"dossier-owners/{dossier}.json"


#: Written once every dossier received before owners were recorded has its owner object
#: (:func:`backfill_dossier_owners`): from then on a dossier without one is simply new.
OWNERS_COMPLETE_KEY = "dossier-owners/_complete.json"
_owners_complete: set[str] = set()  # buckets known to be complete (the flag is never removed)


def _owners_backfilled(warehouse: Warehouse) -> bool:
    bucket = warehouse.bucket
    if bucket in _owners_complete:
        return True
    if warehouse.objects.exists(OWNERS_COMPLETE_KEY):
        _owners_complete.add(bucket)
        return True
    return False


def backfill_dossier_owners(warehouse: Warehouse) -> int:
    """Give every dossier received before owners were recorded its owner (the unit of its
    earliest receipt), then mark the warehouse complete. Idempotent; returns how many owners
    were written. Run once at service start (in the background)."""
    if _owners_backfilled(warehouse):
        return 0
    units_of: dict[str, set[str]] = {}
    for key in _keys(warehouse, "dossiers/"):
        parts = key.split("/")
        if len(parts) == 4:
            units_of.setdefault(parts[2], set()).add(parts[1])
    written = 0
    for dossier, units in sorted(units_of.items()):
        if _owner_versions(warehouse, dossier):
            continue
        owner = _earliest_receiver(warehouse, dossier, sorted(units)) or sorted(units)[0]
        _put_json(warehouse, owner_key(dossier), {"unit": owner, "dossier": dossier, "claimed_at": utc_now().isoformat(),
                                                  "backfilled": True})
        written += 1
    _put_json(warehouse, OWNERS_COMPLETE_KEY, {"at": utc_now().isoformat(), "owners_written": written})
    _owners_complete.add(warehouse.bucket)
    return written


def _owner_versions(warehouse: Warehouse, dossier: str) -> list[ListedObject]:
    key = owner_key(dossier)
    return [o for o in warehouse.objects.versions(key) if o.key == key and not o.is_delete_marker]


def _earliest_receiver(warehouse: Warehouse, dossier: str, units: Iterable[str]) -> str | None:
    earliest: tuple[str, str] | None = None
    for unit in units:
        for receipt in dossier_receipts(warehouse, dossier, unit):
            when = str(receipt.get("received_at") or "")
            if earliest is None or (when, unit) < earliest:
                earliest = (when, unit)
    return earliest[1] if earliest else None


_claim_locks: dict[str, threading.Lock] = {}
_claim_locks_guard = threading.Lock()


def dossier_owner(warehouse: Warehouse, dossier: str) -> str | None:
    """The unit that owns ``dossier`` (mã hồ sơ): the first unit that received a document in it.

    The owner is the unit of the *oldest* version of ``dossier-owners/<code>.json`` (the bucket
    is versioned: two replicas claiming the same new code at once both write, and every reader
    agrees on the first write). A dossier received before owners were recorded belongs to the
    unit of its earliest receipt (``dossiers/<unit>/<code>/``). None: nobody received it yet.
    """
    versions = _owner_versions(warehouse, dossier)
    if versions:
        # Versions are listed newest first; the oldest write wins (ties: the one listed last).
        oldest = min(reversed(versions), key=lambda o: o.last_modified or datetime.max.replace(tzinfo=UTC))
        data = warehouse.objects.get(owner_key(dossier), oldest.version_id)
        if data:
            return json.loads(data)["unit"]
    if _owners_backfilled(warehouse):
        return None
    return _earliest_receiver(warehouse, dossier, dossier_units(warehouse))  # one LIST a unit, until backfilled


def claim_dossier(warehouse: Warehouse, dossier: str, unit: str) -> str:
    """Make ``unit`` the owner of ``dossier`` unless another unit owns it; returns the owner."""
    with _claim_locks_guard:
        lock = _claim_locks.setdefault(dossier, threading.Lock())
    with lock:
        owner = dossier_owner(warehouse, dossier)
        if owner is not None:
            return owner
        _put_json(warehouse, owner_key(dossier), {"unit": unit, "dossier": dossier, "claimed_at": utc_now().isoformat()})
        return dossier_owner(warehouse, dossier) or unit


# --- what a log may say about a lookup --------------------------------------------------------


def logged_query(kind: str, value: str, keyring: Any = None) -> dict[str, Any]:
    """A lookup as the audit log and reuse events keep it: a document number in clear (not
    personal data); a personal id or tax code only as its blind index (HMAC under the PII key
    ring, :func:`pipeline.records.pii.blind_index`), never in clear; without a key ring, only its kind."""
    if kind == "number":
        return {"kind": kind, "number": value}
    if keyring is None:
        return {"kind": kind}
    from pipeline.records.pii import blind_index  # deferred: loads numpy, cryptography, pydantic

    return {"kind": kind, "blind_index": blind_index(value, keyring)}
