"""The result of an extractor: typed field values with confidence and where they were read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import FieldEvidence, FieldIssue


@dataclass
class Extraction:
    record_type: str
    fields: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, FieldEvidence] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)

    def set(self, name: str, value: Any, confidence: float, evidence: FieldEvidence | None = None) -> None:
        self.fields[name] = value
        self.confidence[name] = round(max(0.0, min(1.0, float(confidence))), 4)
        if evidence is not None:
            self.evidence[name] = evidence

    def flag(self, name: str, kind: str, message: str) -> None:
        self.issues.append(FieldIssue(field=name, kind=kind, message=message))
