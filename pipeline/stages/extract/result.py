"""The result of an extractor: typed field values with confidence and where they were read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.records.record import FieldEvidence, FieldIssue, IssueKind


@dataclass
class Extraction:
    record_type: str
    fields: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, FieldEvidence] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)
    #: Extractor-internal facts (not stored): e.g. the symbol of a number whose digits are handwritten.
    hints: dict[str, Any] = field(default_factory=dict)

    def set(self, name: str, value: Any, confidence: float, evidence: FieldEvidence | None = None) -> None:
        self.fields[name] = value
        self.confidence[name] = round(max(0.0, min(1.0, float(confidence))), 4)
        if evidence is not None:
            self.evidence[name] = evidence

    def drop(self, name: str) -> None:
        self.fields.pop(name, None)
        self.confidence.pop(name, None)
        self.evidence.pop(name, None)

    def flag(self, name: str, kind: IssueKind, message: str) -> None:
        if any(i.field == name and i.kind == kind for i in self.issues):
            return
        self.issues.append(FieldIssue(field=name, kind=kind, message=message))

    def has_issue(self, name: str) -> bool:
        return any(i.field == name for i in self.issues)
