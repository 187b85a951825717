"""Ingest: find input files, identify them by content, and accept them into the warehouse.

A document is identified by the SHA-256 of its bytes (document id). Accepting stores the
original (write-once) before any processing, so nothing accepted can be lost; a document
whose record already exists is skipped, which makes re-running idempotent and resumable.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .load import SUPPORTED_SUFFIXES

#: Record statuses after which a document is not processed again (unless forced).
FINAL_STATUSES = ("ok", "needs_review")


@dataclass(frozen=True)
class InputFile:
    path: Path
    explicit: bool  # named on the command line (processed whatever its suffix)


def iter_input_files(paths: Iterable[str | Path]) -> Iterator[InputFile]:
    """Files named directly, and supported scans found recursively in folders (sorted, stable)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    if Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                        yield InputFile(Path(root) / name, explicit=False)
        else:
            yield InputFile(path, explicit=True)


def document_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_display_name(path: Path) -> str:
    """The file's base name, for display and records only (never used as a storage path)."""
    name = path.name.replace("\x00", "")
    return name[:255] or "unnamed"
