"""Authentication of the signing service (xác thực): users, passwords, PINs, access tokens.

Passwords and PINs are stored as scrypt hashes (RFC 7914) with a random salt; comparisons are
constant-time. Access tokens (``auth/login``) are random, held in memory only, and expire.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: scrypt cost: N=2^14, r=8, p=1 (16 MiB, ~50 ms): the interactive-login setting of RFC 7914 §2.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


def hash_secret(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> dict[str, Any]:
    """A storable scrypt record of ``secret``: ``{"alg": "scrypt", "n", "r", "p", "salt", "hash"}``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return {
        "alg": "scrypt",
        "n": n,
        "r": r,
        "p": p,
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(digest).decode("ascii"),
    }


def check_secret(secret: str, record: dict[str, Any]) -> bool:
    """Whether ``secret`` matches a record made by :func:`hash_secret` (constant-time compare)."""
    if record.get("alg") != "scrypt":
        return False
    salt = base64.b64decode(record["salt"])
    expected = base64.b64decode(record["hash"])
    digest = hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=int(record["n"]),
        r=int(record["r"]),
        p=int(record["p"]),
        maxmem=256 * 1024 * 1024,
        dklen=len(expected),
    )
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class User:
    """A service account (tài khoản) and the credentials it may use (``"*"``: all)."""

    username: str
    password: dict[str, Any]
    credentials: tuple[str, ...] = ("*",)

    def may_use(self, credential_id: str) -> bool:
        return "*" in self.credentials or credential_id in self.credentials


class UserStore:
    """``users.json`` of the state directory, re-read when it changes on disk."""

    def __init__(self, path: Path):
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._users = {
            name: User(name, entry["password"], tuple(entry.get("credentials", ["*"])))
            for name, entry in data.get("users", {}).items()
        }
        self._mtime = mtime

    def get(self, username: str) -> User | None:
        with self._lock:
            self._refresh()
            return self._users.get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is right; None otherwise (same work for unknown users)."""
        user = self.get(username)
        if user is None:
            check_secret(password, _dummy_record())  # do not reveal which usernames exist by timing
            return None
        return user if check_secret(password, user.password) else None


@functools.lru_cache(maxsize=1)
def _dummy_record() -> dict[str, Any]:
    return hash_secret(secrets.token_urlsafe(12))


@dataclass
class _Token:
    user: User
    expires_at: float


class TokenError(Exception):
    """Unknown or expired bearer token; ``str()`` is the CSC error description."""


@dataclass
class TokenStore:
    """Bearer access tokens (mã truy cập) issued by ``auth/login``, in memory."""

    ttl_s: float
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user: User) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:  # drop expired tokens now and then
                self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now}
            self._tokens[token] = _Token(user, now + self.ttl_s)
        return token, max(1, int(self.ttl_s))

    def user_for(self, token: str) -> User:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                raise TokenError("The access token is not valid")
            if entry.expires_at <= time.monotonic():
                del self._tokens[token]
                raise TokenError("The access token has expired")
            return entry.user

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)


class AttemptLimiter:
    """Failed attempts per key (a user's logins, a user's PINs of one credential), persisted.

    ``max_failures`` failures without a success in between, each less than ``window_s`` after
    the previous one, lock the key for ``lockout_s``; every further lock of the same key doubles
    that, up to ``max_lockout_s``. A success clears the key. The counts and locks (with their
    expiry, wall-clock time) live in ``path`` (JSON, the state directory's), so a restart of the
    service neither forgets a lock nor gives an attacker a fresh set of attempts. Keys are
    per user: one user's wrong attempts never lock another user out."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_failures: int,
        window_s: float,
        lockout_s: float,
        max_lockout_s: float,
        clock=time.time,
        max_entries: int = 10_000,
    ):
        self.path = path
        self.max_failures = max(1, int(max_failures))
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_lockout_s = max(max_lockout_s, lockout_s)
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._entries: dict[str, dict[str, float]] = self._load()

    # --- persistence ---

    def _stat(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns if self.path is not None else None
        except OSError:
            return None

    def _refresh(self) -> None:
        """Re-read the file when someone else changed it (``python -m pipeline.embedded.signer unlock``)."""
        if self.path is not None and self._stat() != self._mtime:
            self._entries = self._load()

    def _load(self) -> dict[str, dict[str, float]]:
        if self.path is None:
            return {}
        self._mtime = self._stat()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data.get("entries", {})
            return {str(k): {f: float(v) for f, v in e.items()} for k, e in entries.items() if isinstance(e, dict)}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError, OSError):  # a damaged file: start over, loudly

            logging.getLogger("sohoa.signer").warning("unreadable lockout file %s: starting with no lockouts", self.path)
            return {}

    def _save(self) -> None:
        if self.path is None:
            return
        from pipeline.embedded.signer.keystore import (
            _write_json,  # deferred: import cycle (pipeline.embedded.signer.keystore imports pipeline.embedded.signer.auth)
        )

        _write_json(self.path, {"version": 1, "entries": self._entries}, 0o600)
        self._mtime = self._stat()

    def _prune(self, now: float) -> None:
        stale = [k for k, e in self._entries.items()
                 if e.get("locked_until", 0) <= now and now - e.get("last_failure", 0) > max(self.window_s, self.max_lockout_s)]
        for k in stale:
            del self._entries[k]
        if len(self._entries) > self._max_entries:  # many names tried: forget the oldest unlocked ones
            unlocked = sorted((e.get("last_failure", 0), k) for k, e in self._entries.items() if e.get("locked_until", 0) <= now)
            for _, k in unlocked[: len(self._entries) - self._max_entries]:
                del self._entries[k]

    # --- API ---

    def locked_until(self, key: str) -> float | None:
        """The wall-clock time (epoch s) until which ``key`` is locked, or None."""
        with self._lock:
            self._refresh()
            entry = self._entries.get(key)
            until = entry.get("locked_until", 0) if entry else 0
            return until if until > self._clock() else None

    def failures(self, key: str) -> int:
        with self._lock:
            self._refresh()
            entry = self._entries.get(key)
            return int(entry.get("failures", 0)) if entry else 0

    def failure(self, key: str) -> float | None:
        """Count a failure of ``key``; the time the key is now locked until, or None."""
        now = self._clock()
        with self._lock:
            self._refresh()
            entry = self._entries.get(key)
            if entry is None or (now - entry.get("last_failure", 0) > self.window_s and entry.get("locked_until", 0) <= now):
                lockouts = entry.get("lockouts", 0) if entry and now - entry.get("last_failure", 0) <= self.max_lockout_s else 0
                entry = {"failures": 0, "lockouts": lockouts, "locked_until": 0}
                self._entries[key] = entry
            entry["failures"] = entry.get("failures", 0) + 1
            entry["last_failure"] = now
            until = None
            if entry["failures"] >= self.max_failures:
                entry["lockouts"] = entry.get("lockouts", 0) + 1
                duration = min(self.lockout_s * 2 ** min(entry["lockouts"] - 1, 30), self.max_lockout_s)
                entry["locked_until"] = until = now + duration
                entry["failures"] = 0
            self._prune(now)
            self._save()
            return until

    def success(self, key: str) -> None:
        with self._lock:
            self._refresh()
            if self._entries.pop(key, None) is not None:
                self._save()

    def clear(self, predicate) -> list[str]:
        """Forget the keys ``predicate`` accepts (an administrator lifting locks); those keys."""
        with self._lock:
            self._refresh()
            gone = [k for k in self._entries if predicate(k)]
            for k in gone:
                del self._entries[k]
            if gone:
                self._save()
            return gone


def login_key(username: str) -> str:
    return json.dumps(["login", username], ensure_ascii=False)


def pin_key(username: str, credential_id: str) -> str:
    return json.dumps(["pin", username, credential_id], ensure_ascii=False)


class PinChecker:
    """Verifies credential PINs (scrypt), remembering successes in memory (keyed HMAC) so that a
    busy client does not pay 50 ms of scrypt per authorisation. Wrong PINs are counted per user
    and credential (:class:`AttemptLimiter`, persisted): too many lock that user's use of that
    credential for a while, not everyone's, and a restart does not lift the lock."""

    def __init__(self, limiter: AttemptLimiter):
        self._key = secrets.token_bytes(32)
        self._ok: set[tuple[str, bytes]] = set()
        self.limiter = limiter
        self._lock = threading.Lock()

    def locked_until(self, username: str, credential_id: str) -> float | None:
        return self.limiter.locked_until(pin_key(username, credential_id))

    def attempts_left(self, username: str, credential_id: str) -> int:
        return max(0, self.limiter.max_failures - self.limiter.failures(pin_key(username, credential_id)))

    def check(self, username: str, credential_id: str, pin: str, record: dict[str, Any]) -> bool:
        """Whether ``pin`` is right; a wrong one counts against ``username`` on ``credential_id``."""
        key = pin_key(username, credential_id)
        tag = (credential_id, hmac.new(self._key, pin.encode("utf-8"), hashlib.sha256).digest())
        with self._lock:
            cached = tag in self._ok
        ok = cached or check_secret(pin, record)
        if ok:
            with self._lock:
                self._ok.add(tag)
            self.limiter.success(key)
        else:
            self.limiter.failure(key)
        return ok
