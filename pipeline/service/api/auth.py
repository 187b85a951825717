"""API keys (khóa truy cập): each bound to a unit (đơn vị) and a role.

Roles:

* ``unit`` — a one-stop shop (Bộ phận Một cửa) uploads dossiers and sees only its own
  unit's documents.
* ``steward`` — reviews and corrects records (hiệu đính) of every unit.
* ``reader`` — reuse lookups (khai thác, sử dụng lại) across units.
* ``admin`` — everything: key management, dashboard, audit log.

A key is ``sohoa_<key id>_<secret>`` with a 32-byte random secret. Only the SHA-256 of the
whole key is stored (a fast hash is enough for a high-entropy secret: there is nothing to
brute-force), in ``<home>/api/keys.json`` with mode 0600, rewritten atomically. The key
itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Role = Literal["unit", "steward", "reader", "admin"]
ROLES: tuple[str, ...] = ("unit", "steward", "reader", "admin")

#: Unit codes become warehouse key segments: letters, digits, dot, dash, underscore.
UNIT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY_PATTERN = re.compile(r"^sohoa_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id (never the key), its unit and role."""

    key_id: str
    unit: str
    role: str

    @property
    def actor(self) -> str:
        """How the caller appears in history entries and audit logs, e.g. ``steward:1a2b…``."""
        return f"{self.role}:{self.key_id}"

    def sees_all_units(self) -> bool:
        """Only the ``unit`` role is confined to its own unit's documents."""
        return self.role != "unit"


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    unit: str
    role: str
    sha256: str
    created_at: str
    revoked: bool = False

    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, unit=self.unit, role=self.role)

    def public(self) -> dict:
        """What key listings show (no hash)."""
        return {"key_id": self.key_id, "unit": self.unit, "role": self.role,
                "created_at": self.created_at, "revoked": self.revoked}


def validate_unit(unit: str) -> str:
    if not UNIT_PATTERN.match(unit or ""):
        raise ValueError(f"unit code {unit!r} must be 1-64 letters, digits, '.', '-' or '_' (e.g. 000.00.01.H53)")
    return unit


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    return role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    """API keys in a JSON file (0600). Thread-safe; re-reads the file when it changed on
    disk, so that ``sohoa apikey create`` takes effect on a running service."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys: dict[str, StoredKey] = {}
        self._mtime: float | None = None

    @classmethod
    def for_home(cls, home: Path) -> KeyStore:
        return cls(Path(home) / "api" / "keys.json")

    # -- persistence ------------------------------------------------------------------

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._keys, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._keys = {k["key_id"]: StoredKey(**k) for k in data.get("keys", [])}
        self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {"keys": [asdict(k) for k in self._keys.values()]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, ensure_ascii=False, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._mtime = self.path.stat().st_mtime_ns

    # -- operations -------------------------------------------------------------------

    def create(self, unit: str, role: str) -> tuple[StoredKey, str]:
        """A new key for ``unit`` and ``role``: returns its record and the key (shown once)."""
        validate_unit(unit)
        validate_role(role)
        key_id = secrets.token_hex(6)
        token = f"sohoa_{key_id}_{secrets.token_urlsafe(32)}"
        stored = StoredKey(
            key_id=key_id,
            unit=unit,
            role=role,
            sha256=_digest(token),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._lock:
            self._load()
            self._keys[key_id] = stored
            self._save()
        return stored, token

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            self._load()
            key = self._keys.get(key_id)
            if key is None:
                return False
            self._keys[key_id] = StoredKey(**{**asdict(key), "revoked": True})
            self._save()
            return True

    def list(self) -> list[StoredKey]:
        with self._lock:
            self._load()
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a presented key, or None (unknown, malformed or revoked)."""
        presented = token or ""
        match = _KEY_PATTERN.match(presented)
        if not match:
            return None
        with self._lock:
            self._load()
            stored = self._keys.get(match.group(1))
        if stored is None or stored.revoked:
            return None
        if not hmac.compare_digest(stored.sha256, _digest(presented)):
            return None
        return stored.principal()


class UnitNames:
    """Names of units (tên đơn vị) by code, for pages and the dashboard: ``<home>/api/units.json``
    (mode 0600, rewritten atomically). A unit without a name is shown by its code."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def for_home(cls, home: Path) -> UnitNames:
        return cls(Path(home) / "api" / "units.json")

    def all(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def set(self, unit: str, name: str) -> None:
        if not UNIT_PATTERN.match(unit):
            raise ValueError(f"mã đơn vị không hợp lệ: {unit!r}")
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise ValueError("tên đơn vị là chuỗi 1–200 ký tự")
        with self._lock:
            names = self.all()
            names[unit] = name
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".units-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(names, f, ensure_ascii=False, indent=1, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
