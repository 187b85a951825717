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


class PinChecker:
    """Verifies credential PINs (scrypt), remembering successes in memory (keyed HMAC) so that a
    busy client does not pay 50 ms of scrypt per authorisation; locks a credential after too
    many consecutive wrong PINs until the service restarts."""

    def __init__(self, max_failures: int = 10):
        self._key = secrets.token_bytes(32)
        self._ok: set[tuple[str, bytes]] = set()
        self._failures: dict[str, int] = {}
        self._max = max_failures
        self._lock = threading.Lock()

    def locked(self, credential_id: str) -> bool:
        with self._lock:
            return self._failures.get(credential_id, 0) >= self._max

    def check(self, credential_id: str, pin: str, record: dict[str, Any]) -> bool:
        tag = (credential_id, hmac.new(self._key, pin.encode("utf-8"), hashlib.sha256).digest())
        with self._lock:
            if tag in self._ok:
                self._failures.pop(credential_id, None)
                return True
        ok = check_secret(pin, record)
        with self._lock:
            if ok:
                self._ok.add(tag)
                self._failures.pop(credential_id, None)
            else:
                self._failures[credential_id] = self._failures.get(credential_id, 0) + 1
        return ok
