"""Signature Activation Data (dữ liệu kích hoạt chữ ký, CSC "SAD"), bound to hashes (SCAL2).

``credentials/authorize`` issues a random SAD for one user, one credential, one digest
algorithm and exactly the hash values given; it expires after a short time. Each
``signatures/signHash`` call consumes the hashes it signs, so a SAD signs each authorised
hash once and nothing else.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field


class SADError(Exception):
    """The SAD cannot be used for this request; ``str()`` is the CSC error description."""


@dataclass
class _Authorization:
    username: str
    credential_id: str
    hash_oid: str
    remaining: set[bytes]
    expires_at: float


@dataclass
class SADStore:
    """In-memory SADs with their lifetime ``ttl_s`` (seconds)."""

    ttl_s: float
    _items: dict[str, _Authorization] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, username: str, credential_id: str, hash_oid: str, hashes: list[bytes]) -> tuple[str, int]:
        """A new SAD for these hashes; returns ``(SAD, expiresIn seconds)``."""
        sad = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._items) > 256:
                self._items = {k: v for k, v in self._items.items() if v.expires_at > now and v.remaining}
            self._items[sad] = _Authorization(username, credential_id, hash_oid, set(hashes), now + self.ttl_s)
        return sad, max(1, round(self.ttl_s))

    def consume(self, sad: str, username: str, credential_id: str, hash_oid: str, hashes: list[bytes]) -> None:
        """Check that ``sad`` authorises every hash for this user/credential, and use them up.

        All or nothing: on any error no hash is consumed.
        """
        with self._lock:
            auth = self._items.get(sad)
            if auth is None or auth.username != username:
                raise SADError("Invalid parameter SAD")
            if auth.expires_at <= time.monotonic():
                del self._items[sad]
                raise SADError("SAD expired")
            if auth.credential_id != credential_id:
                raise SADError("The SAD was issued for another credential")
            if auth.hash_oid != hash_oid:
                raise SADError("hashAlgorithmOID does not match the one authorised by the SAD")
            if len(set(hashes)) != len(hashes):
                raise SADError("Invalid parameter hashes: duplicate hash value")
            missing = [h for h in hashes if h not in auth.remaining]
            if missing:
                raise SADError(f"{len(missing)} hash value(s) not authorised by the SAD (or already signed with it)")
            auth.remaining.difference_update(hashes)
            if not auth.remaining:
                del self._items[sad]
