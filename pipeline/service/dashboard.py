"""Dashboard indicators per unit and period, in the spirit of Decision 766/QĐ-TTg
(Bộ chỉ số chỉ đạo, điều hành và đánh giá chất lượng phục vụ người dân, doanh nghiệp):
how many dossiers' documents were received (tiếp nhận), digitized with an electronic result
(số hóa có kết quả điện tử: status ``ok``), await a steward (``needs_review``), failed, and
how many were reused (khai thác, sử dụng lại) — with the digitization and reuse rates.

Rows are cohorts: a document counts in the (unit, period) in which the unit received it, and
as *reused* when any reuse lookup returned it, at any time since. So
``reuse_rate = reused ÷ received`` and ``digitized_rate = ok ÷ received`` lie in [0, 1].
Documents digitized by batch runs (no receipt) count under their record's provenance unit
(``sohoa digitize --unit``), or under ``(none)`` — shown as "Xử lý theo lô (chưa gán đơn vị)" —,
in the period of their processing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from pipeline.warehouse.audit import iter_receipts, iter_reuse
from pipeline.warehouse.layout import Warehouse

Period = Literal["day", "month"]
NO_UNIT = "(none)"
COLUMNS = (
    "unit", "period", "received", "ok", "needs_review", "failed", "processing",
    "reused", "digitized_rate", "reuse_rate",
)


@dataclass
class Row:
    unit: str
    period: str
    received: int = 0
    ok: int = 0
    needs_review: int = 0
    failed: int = 0
    processing: int = 0
    reused: int = 0

    @property
    def digitized_rate(self) -> float:
        return round(self.ok / self.received, 4) if self.received else 0.0

    @property
    def reuse_rate(self) -> float:
        return round(self.reused / self.received, 4) if self.received else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "digitized_rate": self.digitized_rate, "reuse_rate": self.reuse_rate}


@dataclass(frozen=True)
class Received:
    """One document received by one unit at one time, with its current status."""

    document_id: str
    unit: str
    at: datetime
    status: str  # ok | needs_review | failed | processing


def period_of(at: datetime, period: Period) -> str:
    return at.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def collect(warehouse: Warehouse) -> tuple[list[Received], set[str]]:
    """Every received document (from receipts, then records without one) and the set of
    reused document ids. One pass over the warehouse."""
    received: dict[tuple[str, str], Received] = {}
    statuses: dict[str, str] = {}

    def status_of(document_id: str) -> str:
        if document_id not in statuses:
            statuses[document_id] = warehouse.record_status(document_id) or "processing"
        return statuses[document_id]

    for receipt in iter_receipts(warehouse):
        doc, unit = receipt["document_id"], receipt["unit"]
        at = _parse(receipt["received_at"])
        key = (doc, unit)
        if key not in received or at < received[key].at:
            received[key] = Received(doc, unit, at, status_of(doc))
    receipted = {doc for doc, _ in received}
    for document_id in warehouse.iter_record_ids():
        if document_id in receipted:
            continue
        record = warehouse.get_record(document_id)
        if record is None:
            continue
        provenance = record.get("provenance") or {}
        unit = provenance.get("unit") or NO_UNIT
        received[(document_id, unit)] = Received(
            document_id, unit, _parse(provenance["processed_at"]), record.get("status", "failed")
        )
    reused = {d["document_id"] for event in iter_reuse(warehouse) for d in event.get("documents", [])}
    return list(received.values()), reused


def indicators(
    received: Iterable[Received], reused: set[str], *, period: Period = "month", unit: str | None = None
) -> list[Row]:
    """Rows per (unit, period), sorted by unit then period. Pure."""
    rows: dict[tuple[str, str], Row] = {}
    for item in received:
        if unit is not None and item.unit != unit:
            continue
        key = (item.unit, period_of(item.at, period))
        row = rows.setdefault(key, Row(unit=key[0], period=key[1]))
        row.received += 1
        if item.status in ("ok", "needs_review", "failed"):
            setattr(row, item.status, getattr(row, item.status) + 1)
        else:
            row.processing += 1
        if item.document_id in reused:
            row.reused += 1
    return [rows[k] for k in sorted(rows)]


def totals(rows: Iterable[Row]) -> list[Row]:
    """One row per unit over all periods (period ``all``)."""
    out: dict[str, Row] = {}
    for row in rows:
        t = out.setdefault(row.unit, Row(unit=row.unit, period="all"))
        for name in ("received", "ok", "needs_review", "failed", "processing", "reused"):
            setattr(t, name, getattr(t, name) + getattr(row, name))
    return [out[k] for k in sorted(out)]


#: How the pages name documents digitized by a batch run that named no unit (``sohoa digitize``
#: without ``--unit``).
NO_UNIT_NAME = "Xử lý theo lô (chưa gán đơn vị)"
GRAND_TOTAL = "Tổng cộng"


def unit_name(unit: str, names: dict[str, str]) -> str:
    if unit == NO_UNIT:
        return NO_UNIT_NAME
    return names.get(unit) or unit


def grand_total(rows: Iterable[Row]) -> Row:
    """One row over every unit and period shown."""
    total = Row(unit="", period="")
    for row in rows:
        for name in ("received", "ok", "needs_review", "failed", "processing", "reused"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total


def dashboard(
    warehouse: Warehouse,
    *,
    period: Period = "month",
    unit: str | None = None,
    since: date | None = None,
    until: date | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The dashboard as JSON: rows per unit and period, totals per unit, a grand total and the
    trend per month (all units shown), for documents received from ``since`` to ``until``
    (inclusive, UTC days) of ``unit`` (every unit when None). ``names``: unit code → name;
    ``units`` lists every unit seen (for a filter), with its name."""
    names = names or {}
    received, reused = collect(warehouse)
    every_unit = sorted({r.unit for r in received})
    received = [r for r in received
                if (since is None or r.at.date() >= since) and (until is None or r.at.date() <= until)]
    rows = indicators(received, reused, period=period, unit=unit)
    trend = indicators([replace(r, unit="") for r in received if unit is None or r.unit == unit], reused, period="month")

    def named(row: Row) -> dict[str, Any]:
        return {**row.as_dict(), "unit_name": unit_name(row.unit, names)}

    total = grand_total(rows)
    return {
        "period": period,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "unit": unit,
        "columns": list(COLUMNS),
        "rows": [named(r) for r in rows],
        "totals": [named(r) for r in totals(rows)],
        "grand_total": {**total.as_dict(), "unit_name": GRAND_TOTAL},
        "trend": [{**r.as_dict(), "month": r.period} for r in trend],
        "units": [{"unit": u, "name": unit_name(u, names)} for u in every_unit],
    }


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV (UTF-8, header row) of dashboard rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()
