"""The PDF's embedded signatures as evidence for the fields read from its pages (issue 17).

A signed PDF says who signed it and when (:func:`pipeline.stages.pdfsource.read_signatures`: the signer
certificate's CN and O, the signing time from /M, integrity). That is metadata, never text of the
page, and it checks two fields:

* ``issuer``: a signature whose organisation (or CN, for an agency's own certificate) is the
  issuer read from the header, up to OCR noise, gives its spelling (``source: signature``); an
  exact match confirms the reading. ``signer``: a person's certificate whose CN is the name read
  under the signature gives its spelling the same way.
* ``date``: no one signs a document before its date of issue, and the issuing body signs on that
  day or within days of it. A date after a signing time, or more than :data:`MAX_SIGNING_DELAY_DAYS`
  before the issuing body's signature, is sent to review with both dates. When the day is
  handwritten and left empty, the review reason quotes the issuing body's signing date for the
  steward; a day the digit recogniser read below its trust threshold (but at least
  ``handwriting.CORROBORATED_MIN_CONF``) is kept when that signing date falls on it or within
  :data:`HANDWRITTEN_DAY_WINDOW` days after it — two independent readings agreeing.

Signatures whose byte range no longer hashes to what was signed (``intact: False``) are not used.
The provincial gazette centre (Trung tâm Công báo) signs what it publishes, often days later: its
signature bounds the date from above but says nothing about the issuer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rapidfuzz import fuzz

from pipeline.records.record import FieldEvidence
from pipeline.stages.extract.common import fold, proper_case_agency
from pipeline.stages.extract.result import Extraction

#: The issuing body signs its own document on the date of issue or a few days after (the signed
#: copies of the development set: 0–3 days). A longer gap, up to a year, means the day was misread;
#: beyond a year the signature is a later copy's (a digitization), not evidence of the date.
MAX_SIGNING_DELAY_DAYS = 7
LATER_COPY_DAYS = 366
#: A handwritten day read by the digit recogniser (not by OCR of print) must fall on the issuing
#: body's signing day or up to this many days before it.
HANDWRITTEN_DAY_WINDOW = 3
#: Folded similarity (rapidfuzz ratio) above which a certificate's name is the name read on the page.
SAME_NAME = 88.0

_PUBLISHERS = ("trung tam cong bao", "cong bao")


def _signed_on(sig: dict[str, Any]) -> date | None:
    value = sig.get("signing_time")
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).date()  # local date: /M carries the +07:00 offset
    except ValueError:
        return None


def _usable(signatures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in signatures if s.get("intact") is not False and not s.get("error")]


def _is_publisher(sig: dict[str, Any]) -> bool:
    names = fold(" ".join(filter(None, (sig.get("signer_cn"), sig.get("signer_org")))))
    return any(p in names for p in _PUBLISHERS)


def _agency_names(sig: dict[str, Any]) -> list[str]:
    return [n for n in (sig.get("signer_org"), sig.get("signer_cn")) if n]


def apply_signatures(ex: Extraction, signatures: list[dict[str, Any]]) -> None:
    """Check and correct ``issuer``, ``signer`` and ``date`` of ``ex`` against ``signatures``."""
    sigs = _usable(signatures)
    issuer_sigs = _issuer(ex, sigs) if sigs else []
    if sigs:
        _signer(ex, sigs)
    _date(ex, sigs, issuer_sigs)  # without signatures too: a handwritten day then has no check


def _issuer(ex: Extraction, sigs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The signatures of the issuing body (matched by name); corrects the issuer's spelling."""
    issuer = ex.fields.get("issuer")
    if not issuer:
        return []
    matched: list[dict[str, Any]] = []
    best: tuple[float, str] | None = None
    for sig in sigs:
        if _is_publisher(sig):
            continue
        for name in _agency_names(sig):
            score = fuzz.ratio(fold(issuer), fold(name))
            if score >= SAME_NAME:
                matched.append(sig)
                if best is None or score > best[0]:
                    best = (score, name)
    if best is not None:
        spelled = proper_case_agency(best[1])
        page = ex.evidence["issuer"].page if "issuer" in ex.evidence else None
        boxes = ex.evidence["issuer"].boxes if "issuer" in ex.evidence else []
        ex.set("issuer", spelled, max(ex.confidence.get("issuer", 0.0), 0.97),
               FieldEvidence(page=page, boxes=boxes, method="signature", source="signature"))  # fmt: skip
    return matched


def _signer(ex: Extraction, sigs: list[dict[str, Any]]) -> None:
    signer = ex.fields.get("signer")
    if not signer:
        return
    for sig in sigs:
        cn = sig.get("signer_cn")
        if not cn or _is_publisher(sig) or len(cn.split()) < 2 or cn.isupper():
            continue  # an agency's certificate, not a person's
        if fuzz.ratio(fold(signer), fold(cn)) >= SAME_NAME:
            ev = ex.evidence.get("signer")
            ex.set("signer", cn, max(ex.confidence.get("signer", 0.0), 0.97),
                   FieldEvidence(page=ev.page if ev else None, boxes=ev.boxes if ev else [], method="signature",
                                 source="signature"))  # fmt: skip
            ex.issues = [i for i in ex.issues if i.field != "signer"]
            return


def _date(ex: Extraction, sigs: list[dict[str, Any]], issuer_sigs: list[dict[str, Any]]) -> None:
    times = sorted(d for d in (_signed_on(s) for s in sigs) if d is not None)
    own = sorted(d for d in (_signed_on(s) for s in issuer_sigs) if d is not None)
    value = ex.fields.get("date")
    candidate = ex.hints.get("date_candidate")
    if not value and own and candidate:
        day, conf, page, boxes = candidate
        if 0 <= (own[0] - date.fromisoformat(day)).days <= HANDWRITTEN_DAY_WINDOW:
            # the recogniser's day (not trusted alone) and the issuing body's signing date agree
            ex.set("date", day, conf, FieldEvidence(page=page, boxes=boxes, method="handwriting", source="handwriting"))
            ex.issues = [i for i in ex.issues if i.field != "date"]
            ex.hints.setdefault("handwritten", []).append("date")
            return
    if not value:
        if own:  # the day is empty (handwritten): tell the steward what the signature says
            for issue in ex.issues:
                if issue.field == "date" and "signed" not in issue.message:
                    issue.message += f"; the issuing body's e-signature is dated {own[0].isoformat()}"
        return
    try:
        stated = date.fromisoformat(value)
    except ValueError:
        return
    if times and stated > times[0]:
        _doubt(ex, f"date of issue read as {stated.isoformat()} is after the PDF was signed "
               f"({times[0].isoformat()}): the day or month was misread")  # fmt: skip
        return
    if ex.hints.get("date_handwritten"):
        # a day read by the digit recogniser stands only on the issuing body's signing day or
        # within HANDWRITTEN_DAY_WINDOW days after it (the development set: 0–3 days)
        delay = (own[0] - stated).days if own else None
        if delay is None or not 0 <= delay <= HANDWRITTEN_DAY_WINDOW:
            why = ("no signature of the issuing body to check it against" if delay is None
                   else f"the issuing body signed on {own[0].isoformat()}")  # fmt: skip
            _doubt(ex, f"the handwritten day was read as {stated.day:02d} by the digit recogniser, but {why}: "
                   "enter it from the crop")  # fmt: skip
        return
    if own:
        delay = (own[0] - stated).days
        if MAX_SIGNING_DELAY_DAYS < delay <= LATER_COPY_DAYS:
            _doubt(ex, f"the issuing body signed on {own[0].isoformat()}, {delay} days after the date of issue "
                   f"read ({stated.isoformat()}): check the day")  # fmt: skip
        elif delay <= MAX_SIGNING_DELAY_DAYS:
            ex.confidence["date"] = max(ex.confidence.get("date", 0.0), 0.95)


def _doubt(ex: Extraction, message: str) -> None:
    """The date disagrees with the signatures: it is not kept (a lookup must not hand on a wrong
    date); its box stays for the review desk and the reading is quoted in the reason."""
    evidence = ex.evidence.get("date")
    ex.drop("date")
    if evidence is not None:
        ex.evidence["date"] = evidence
    ex.flag("date", "inconsistent", message)
