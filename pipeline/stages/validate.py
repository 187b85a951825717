"""Validate stage: records against the versioned JSON Schemas in ``schemas/``.

Schema errors inside ``fields`` become per-field issues (the record goes to review); an
envelope that does not match its schema is a programming error and raises
:class:`~pipeline.runtime.errors.SchemaValidationError`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator

from pipeline.records.identifiers import is_valid_personal_id, is_valid_tax_code
from pipeline.records.record import SCHEMA_VERSIONS, FieldIssue, Record, record_json_schema, schema_file_name
from pipeline.runtime.errors import SchemaValidationError

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


def schemas_dir() -> Path:
    return SCHEMAS_DIR


@functools.lru_cache(maxsize=16)
def load_schema(record_type: str, version: int | None = None) -> dict[str, Any]:
    path = SCHEMAS_DIR / schema_file_name(record_type, version)
    if not path.exists():
        raise SchemaValidationError(f"no schema file {path.name} in {SCHEMAS_DIR}")
    return json.loads(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=16)
def _validator(record_type: str, version: int | None = None) -> Draft202012Validator:
    return Draft202012Validator(load_schema(record_type, version), format_checker=Draft202012Validator.FORMAT_CHECKER)


@functools.lru_cache(maxsize=16)
def _fast_validator(record_type: str, version: int | None = None):
    """A compiled validator of the same schema (jsonschema-rs, ~50x faster): a valid record,
    the common case, is confirmed by it alone; the errors of an invalid one come from
    :func:`_validator`, whose messages and paths the per-field issues are built from."""
    return jsonschema_rs.validator_for(load_schema(record_type, version), validate_formats=True)


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File name → schema for every current record type (what ``schemas/`` must contain)."""
    return {schema_file_name(t): record_json_schema(t) for t in SCHEMA_VERSIONS}


def write_schemas(directory: Path = SCHEMAS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


# Identifier fields whose content is checked beyond the schema.
_PERSONAL_ID_FIELDS = ("personal_id", "owner_personal_id")
_TAX_CODE_FIELDS = ("business_code", "tax_code")


def semantic_issues(fields: Mapping[str, Any]) -> list[FieldIssue]:
    issues = []
    for name in _PERSONAL_ID_FIELDS:
        value = fields.get(name)
        if value and not is_valid_personal_id(value):
            issues.append(FieldIssue(field=name, kind="invalid", message=f"{value!r} is not a valid personal identification number"))
    for name in _TAX_CODE_FIELDS:
        value = fields.get(name)
        if value and not is_valid_tax_code(value):
            issues.append(FieldIssue(field=name, kind="invalid", message=f"{value!r} is not a valid tax code (check digit)"))
    return issues


def validate_record(record: Record | Mapping[str, Any]) -> list[FieldIssue]:
    """Validate a record against the JSON Schema it names (the published contract), on its JSON
    form (:meth:`Record.to_json` for the model); return per-field issues, raise on envelope errors."""
    if isinstance(record, Record):
        record = record.to_json()
    record_type = record.get("record_type")
    if record_type not in SCHEMA_VERSIONS:
        raise SchemaValidationError(f"unknown record_type {record_type!r}")
    version = record.get("schema_version")
    if _fast_validator(record_type, version).is_valid(record):
        return semantic_issues(record.get("fields", {}))
    validator = _validator(record_type, version)
    issues: list[FieldIssue] = []
    envelope_errors: list[str] = []
    for err in validator.iter_errors(record):
        path = list(err.absolute_path)
        if path and path[0] == "fields" and len(path) >= 2:
            issues.append(FieldIssue(field=str(path[1]), kind="invalid", message=err.message))
        elif path == ["fields"] and err.validator == "additionalProperties":
            known = set(err.schema.get("properties", {}))
            for name in sorted(set(err.instance) - known):
                issues.append(FieldIssue(field=name, kind="invalid", message=f"unknown field {name!r} for this record type"))
        else:
            where = "/".join(str(p) for p in path) or "(record)"
            envelope_errors.append(f"{where}: {err.message}")
    if envelope_errors:
        raise SchemaValidationError("record does not match its schema: " + "; ".join(envelope_errors[:5]))
    issues.extend(semantic_issues(record.get("fields", {})))
    return issues


__all__ = ["generate_schemas", "load_schema", "schemas_dir", "semantic_issues", "validate_record", "write_schemas", "jsonschema"]
