"""Append-only registers kept in the warehouse: access log, reuse events, receipts.

* ``audit/<yyyy>/<mm>/<dd>/<timestamp>-<uuid>.json`` — nhật ký truy cập: one object per
  access to personal data (who: key id, unit, role; when; which document; what action).
* ``reuse/<yyyy>/<mm>/<dd>/<timestamp>-<uuid>.json`` — khai thác, sử dụng lại: one object per
  lookup that returned documents (who, when, the query kind, which documents).
* ``dossiers/<unit>/<dossier code>/<document_id>.json`` — tiếp nhận: a unit received this
  document in this dossier (mã hồ sơ), with when, the display name and the page count.
* ``holders/<aa>/<document_id>/<unit>/<dossier code>`` — the same fact keyed by document, so
  that "may this unit see this document?" is one LIST request.

Why the warehouse rather than a local append-only file: every API replica writes to the same
place with no shared lock (each entry is its own object under a unique key, so nothing is ever
rewritten or appended to in place); the log lives as long as, and under the same access
control as, the data it describes; and in a bucket with Object Lock each audit entry gets
compliance-mode retention like the originals, so not even the service's own credentials can
delete or overwrite it. Entries are written synchronously: an access whose audit entry cannot
be written fails (fail closed).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from minio.commonconfig import COMPLIANCE
from minio.retention import Retention

from .warehouse import Warehouse


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _day_prefix(area: str, day: date) -> str:
    return f"{area}/{day:%Y}/{day:%m}/{day:%d}/"


def _entry_key(area: str, at: datetime) -> str:
    return f"{_day_prefix(area, at.date())}{at:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4().hex}.json"


def _put_json(warehouse: Warehouse, key: str, payload: dict[str, Any], *, retain: bool = False) -> None:
    """Write one JSON object (create-only key). ``retain``: compliance-mode retention."""
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    kwargs: dict[str, Any] = {}
    if retain and warehouse.settings.retention_days > 0:
        until = utc_now() + timedelta(days=warehouse.settings.retention_days)
        kwargs["retention"] = Retention(COMPLIANCE, until.replace(tzinfo=None))
    warehouse._put(key, data, "application/json", **kwargs)  # noqa: SLF001 - see module docstring


def _get_json(warehouse: Warehouse, key: str) -> dict[str, Any] | None:
    data = warehouse._get(key)  # noqa: SLF001
    return json.loads(data) if data else None


def _keys(warehouse: Warehouse, prefix: str) -> list[str]:
    return list(warehouse._list(prefix))  # noqa: SLF001


def _days(since: date | None, until: date | None) -> Iterable[date] | None:
    if since is None or until is None:
        return None
    return (since + timedelta(days=n) for n in range((until - since).days + 1))


def _iter_area(warehouse: Warehouse, area: str, since: date | None, until: date | None) -> Iterator[dict[str, Any]]:
    days = _days(since, until)
    prefixes = [f"{area}/"] if days is None else [_day_prefix(area, d) for d in days]
    for prefix in prefixes:
        for key in sorted(_keys(warehouse, prefix)):
            entry = _get_json(warehouse, key)
            if entry is not None:
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
    _put_json(warehouse, _entry_key("audit", at), entry, retain=True)
    return entry


def iter_audit(warehouse: Warehouse, since: date | None = None, until: date | None = None) -> Iterator[dict[str, Any]]:
    """Audit entries, oldest first (all of them, or those of the days ``since``..``until``)."""
    return _iter_area(warehouse, "audit", since, until)


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
    _put_json(warehouse, _entry_key("reuse", at), entry, retain=True)
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
    if warehouse._exists(key):  # noqa: SLF001 - the same file uploaded again: keep the first receipt
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
    return sorted(p[len("dossiers/"):].strip("/") for p in warehouse._list("dossiers/", recursive=False))  # noqa: SLF001


def iter_receipts(warehouse: Warehouse) -> Iterator[dict[str, Any]]:
    for key in sorted(_keys(warehouse, "dossiers/")):
        receipt = _get_json(warehouse, key)
        if receipt is not None:
            yield receipt
