"""The signer's state directory (kho khóa): keys, certificates, users, PINs, revocations, CRLs.

Created on first start, reused afterwards (same CA across restarts). The PKI is Certomancer's
(:mod:`.pki`, configured by ``pki.yml``); this module keeps what Certomancer has no notion of:
users, PINs, run-time revocations, CRL numbers, file modes. Layout::

    STATE/
      state.json                 public description (version, URL, creation time, credentials)
      pki.yml                    the Certomancer configuration of this state (certificate files)
      keys/<label>.key.pem       every private key, encrypted (PKCS#8, BestAvailableEncryption)
      certs/<label>.pem          every certificate (root, issuing, tsa, ocsp, one per credential)
      ca/ca.pem                  root CA certificate: the trust anchor verification uses
      ca/chain.pem               issuing CA + root, PEM
      ca/root.crl, issuing.crl   current CRLs (DER)
      credentials.json (0600)    description and scrypt hash of the PIN of each credential
      users.json (0600)          users with scrypt password hashes and allowed credentials
      revocations.json           revoked credentials and CRL numbers
      client.json (0600)         the generated first user, password and PIN (embedded use)
      secrets/passphrase (0600)  only when the key passphrase was generated, not supplied

Private keys never touch the disk unencrypted. The passphrase is an argument: the service
gets it from its configuration (see :func:`resolve_passphrase`), never from library code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pipeline.embedded.signer.algorithms import PrivateKey
from pipeline.embedded.signer.auth import hash_secret
from pipeline.embedded.signer.pki import PKI, RevokedCert
from pipeline.embedded.signer.pki import create as create_pki
from pipeline.runtime.errors import ConfigurationError

#: 2: the PKI is Certomancer's (pki.yml); 1 (before): hand-made certificates, not readable now
STATE_VERSION = 2
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8700"


@dataclass(frozen=True)
class StateLayout:
    """Paths inside a state directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def root_cert(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def chain_pem(self) -> Path:
        return self.ca_dir / "chain.pem"

    def crl(self, repo: str) -> Path:
        """``ca/root.crl``, ``ca/issuing.crl``: the current CRL of a repository of ``pki.yml``."""
        return self.ca_dir / f"{repo}.crl"

    @property
    def root_crl(self) -> Path:
        return self.crl("root")

    @property
    def issuing_crl(self) -> Path:
        return self.crl("issuing")

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def users_file(self) -> Path:
        return self.root / "users.json"

    @property
    def revocations_file(self) -> Path:
        return self.root / "revocations.json"

    @property
    def pin_lockouts_file(self) -> Path:
        """Wrong PINs per user and credential, and the locks they caused (with their expiry)."""
        return self.root / "pin-lockouts.json"

    @property
    def login_lockouts_file(self) -> Path:
        """Wrong passwords per user, and the login throttles they caused (with their expiry)."""
        return self.root / "login-lockouts.json"

    @property
    def client_file(self) -> Path:
        return self.root / "client.json"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "secrets" / "passphrase"


# --- small file helpers ----------------------------------------------------------------


#: Mode of every file of a signer state (keys, certificates, CRLs, users): the state is the
#: service's alone; certificates and CRLs are published through the service, not the directory.
STATE_FILE_MODE = 0o600
STATE_DIR_MODE = 0o700


def _write_atomic(path: Path, data: bytes, mode: int = STATE_FILE_MODE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=STATE_DIR_MODE)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_json(path: Path, data: Any, mode: int = STATE_FILE_MODE) -> None:
    _write_atomic(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"), mode)


@contextlib.contextmanager
def state_lock(root: Path) -> Iterator[None]:
    """Exclusive lock on the state directory (init, revocation) across processes."""
    root.mkdir(parents=True, exist_ok=True, mode=STATE_DIR_MODE)
    fd = os.open(StateLayout(root).lock_file, os.O_RDWR | os.O_CREAT | os.O_APPEND, STATE_FILE_MODE)
    with os.fdopen(fd, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --- passphrase --------------------------------------------------------------------------


def resolve_passphrase(state_dir: Path, passphrase: bytes | str | None) -> bytes:
    """The key passphrase: the one given (from the service's configuration), else the one
    generated into ``secrets/passphrase`` when this state was created without one.

    A state created with an explicit passphrase has no passphrase file: starting it again
    without the passphrase is a :class:`ConfigurationError`.
    """
    layout = StateLayout(Path(state_dir))
    if passphrase:
        return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if layout.passphrase_file.exists():
        return layout.passphrase_file.read_bytes().strip()
    if layout.state_file.exists():
        raise ConfigurationError(
            f"the signer state in {state_dir} has encrypted keys and no stored passphrase: "
            "give the key passphrase (SOHOA_SIGNER_PASSPHRASE or --passphrase-file)"
        )
    generated = secrets.token_urlsafe(32).encode("ascii")
    layout.passphrase_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(layout.passphrase_file.parent, 0o700)
    _write_atomic(layout.passphrase_file, generated + b"\n", 0o600)
    return generated


# --- creation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSecrets:
    """The first user created with a state: what an embedded client needs to log in and sign."""

    username: str
    password: str
    pin: str
    credential_id: str


def init_state(
    state_dir: Path,
    passphrase: bytes,
    *,
    public_url: str = DEFAULT_PUBLIC_URL,
    username: str = "sohoa",
    password: str | None = None,
    pin: str | None = None,
) -> bool:
    """Create the PKI (:func:`.pki.create`), the credentials' PINs and the first user unless
    ``state_dir`` already holds them. ``public_url``: where the service publishes its CRLs and
    OCSP (written into the certificates). Returns True when it created a new state. Safe
    against concurrent starts (file lock)."""
    root = Path(state_dir)
    layout = StateLayout(root)
    with state_lock(root):
        if layout.state_file.exists():
            return False
        os.chmod(root, STATE_DIR_MODE)
        own = create_pki(root, passphrase, public_url, _write_atomic)
        state = PKI(root, passphrase)
        _write_atomic(layout.root_cert, state.cert("root").public_bytes(serialization.Encoding.PEM))
        _write_atomic(layout.chain_pem, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in state.chain("issuing")))
        password = password or secrets.token_urlsafe(18)
        pin = pin or f"{secrets.randbelow(10**6):06d}"
        pin_record = hash_secret(pin)
        credentials = {}
        for cid in state.credential_ids:
            organization = str(state.cert(cid).subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value)
            credentials[cid] = {"description": f"Chữ ký số của {organization}", "organization": organization, "pin": pin_record}
        _write_json(layout.credentials_file, credentials)
        _write_json(layout.users_file, {"users": {username: {"password": hash_secret(password), "credentials": ["*"]}}})
        _write_json(
            layout.client_file,
            {"username": username, "password": password, "pin": pin, "credential_id": state.credential_ids[0]},
        )
        numbers = {repo: 1 for repo in state.crl_repos()}
        _write_json(layout.revocations_file, {"crl_numbers": numbers, "revoked": []})
        for repo, number in numbers.items():
            _write_atomic(layout.crl(repo), state.crl(repo, number))
        # state.json last: its presence means "complete".
        _write_json(
            layout.state_file,
            {
                "version": STATE_VERSION,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "public_url": public_url.rstrip("/"),
                "credentials": list(own["credentials"]),
            },
        )
        return True


def read_client_secrets(state_dir: Path) -> ClientSecrets:
    data = json.loads(StateLayout(Path(state_dir)).client_file.read_text(encoding="utf-8"))
    return ClientSecrets(data["username"], data["password"], data["pin"], data["credential_id"])


def add_user(state_dir: Path, username: str, password: str, credentials: Sequence[str] = ("*",)) -> None:
    """Add or replace a service user (admin operation); running services pick it up."""
    layout = StateLayout(Path(state_dir))
    with state_lock(layout.root):
        data = json.loads(layout.users_file.read_text(encoding="utf-8"))
        data.setdefault("users", {})[username] = {"password": hash_secret(password), "credentials": list(credentials)}
        _write_json(layout.users_file, data, 0o600)


# --- loading -----------------------------------------------------------------------------


@dataclass
class Credential:
    """A signing credential (khóa ký của một đơn vị): key, certificate and chain to the root."""

    credential_id: str
    description: str
    organization: str
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # leaf first, then issuing CA, then root
    private_key: PrivateKey
    pin_record: dict[str, Any]


@dataclass(frozen=True)
class Revocation:
    credential_id: str
    serial_number: int
    revoked_at: dt.datetime
    reason: str  # RFC 5280 reason name: key_compromise, superseded, ...


def _revocations(data: dict[str, Any]) -> list[Revocation]:
    return [
        Revocation(r["credential_id"], int(r["serial"], 16), dt.datetime.fromisoformat(r["revoked_at"]), r["reason"])
        for r in data.get("revoked", [])
    ]


class RevocationRegistry:
    """``revocations.json``, re-read when it changes so a running service sees admin revocations."""

    def __init__(self, path: Path):
        self.path = path
        self._mtime: int | None = None
        self._by_serial: dict[int, Revocation] = {}
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-read the file if it changed; whether it did."""
        with self._lock:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return False
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._by_serial = {r.serial_number: r for r in _revocations(data)}
            self._mtime = mtime
            return True

    def all(self) -> list[Revocation]:
        self.refresh()
        return list(self._by_serial.values())

    def lookup(self, serial_number: int) -> Revocation | None:
        self.refresh()
        return self._by_serial.get(serial_number)


def _pki(layout: StateLayout, passphrase: bytes, revocations: list[Revocation]) -> PKI:
    revoked = [RevokedCert(r.credential_id, r.revoked_at, r.reason) for r in revocations]
    return PKI(layout.root, passphrase, revoked)


@dataclass
class SignerState:
    """Everything the running service holds in memory."""

    layout: StateLayout
    passphrase: bytes = field(repr=False)
    pki: PKI
    credentials: dict[str, Credential]
    revocations: RevocationRegistry
    info: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current_pki(self) -> PKI:
        """The PKI with the revocations of ``revocations.json`` as it is now (an administrator
        may have revoked a credential since the last request): OCSP answers from it."""
        with self._lock:
            if self.revocations.refresh():
                self.pki = _pki(self.layout, self.passphrase, self.revocations.all())
            return self.pki

    def credential_status(self, cred: Credential, now: dt.datetime | None = None) -> str:
        """CSC ``cert.status``: ``valid``, ``revoked``, ``expired`` or ``not_yet_valid``."""
        now = now or dt.datetime.now(dt.UTC)
        if self.revocations.lookup(cred.certificate.serial_number) is not None:
            return "revoked"
        if now > cred.certificate.not_valid_after_utc:
            return "expired"
        if now < cred.certificate.not_valid_before_utc:
            return "not_yet_valid"
        return "valid"


def load_state(state_dir: Path, passphrase: bytes) -> SignerState:
    """Load a state created by :func:`init_state`, decrypting the keys with ``passphrase``."""
    layout = StateLayout(Path(state_dir))
    if not layout.state_file.exists():
        raise ConfigurationError(f"no signer state in {state_dir}")
    info = json.loads(layout.state_file.read_text(encoding="utf-8"))
    if info.get("version") != STATE_VERSION:
        raise ConfigurationError(
            f"the signer state in {state_dir} was created by an older sohoa (version {info.get('version')}): "
            "its CA cannot be loaded by this one; keep it for verification (ca/ca.pem, ca/*.crl) and start a new state"
        )
    registry = RevocationRegistry(layout.revocations_file)
    state_pki = _pki(layout, passphrase, registry.all())
    meta = json.loads(layout.credentials_file.read_text(encoding="utf-8"))
    credentials = {
        cid: Credential(
            credential_id=cid,
            description=meta[cid]["description"],
            organization=meta[cid]["organization"],
            certificate=state_pki.cert(cid),
            chain=state_pki.chain(cid),
            private_key=state_pki.private_key(cid),
            pin_record=meta[cid]["pin"],
        )
        for cid in info["credentials"]
    }
    return SignerState(layout, passphrase, state_pki, credentials, registry, info)


# --- revocation and CRLs ----------------------------------------------------------------------


def revoke_credential(state_dir: Path, credential_id: str, passphrase: bytes, *, reason: str = "key_compromise") -> tuple[int, int]:
    """Revoke a credential's certificate (thu hồi chứng thư) and publish a new issuing-CA CRL;
    returns (certificate serial, CRL number).

    Running services see the change on their next request (they re-read ``revocations.json``):
    ``credentials/authorize`` and ``signatures/signHash`` refuse the credential, OCSP answers
    revoked, and verification with the new CRL reports the certificate revoked. Idempotent.
    """
    layout = StateLayout(Path(state_dir))
    info = json.loads(layout.state_file.read_text(encoding="utf-8"))
    if credential_id not in info["credentials"]:
        raise ConfigurationError(f"unknown credential {credential_id!r} in {state_dir}")
    with state_lock(layout.root):
        data = json.loads(layout.revocations_file.read_text(encoding="utf-8"))
        serial = PKI(layout.root, passphrase).cert(credential_id).serial_number
        if not any(int(r["serial"], 16) == serial for r in data["revoked"]):
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            data["revoked"].append(
                {"credential_id": credential_id, "serial": format(serial, "x"), "revoked_at": now.isoformat(), "reason": reason}
            )
        number = data["crl_numbers"]["issuing"] = int(data["crl_numbers"]["issuing"]) + 1
        crl = _pki(layout, passphrase, _revocations(data)).crl("issuing", number)
        _write_atomic(layout.issuing_crl, crl)
        _write_json(layout.revocations_file, data)
    return serial, number


def current_crls(state: SignerState, *, min_remaining: dt.timedelta = dt.timedelta(days=1)) -> dict[str, bytes]:
    """The CRLs (DER) by repository, re-issued first when close to their ``nextUpdate``."""
    layout = state.layout
    out: dict[str, bytes] = {}
    now = dt.datetime.now(dt.UTC)
    for repo in state.pki.crl_repos():
        der = layout.crl(repo).read_bytes()
        next_update = x509.load_der_x509_crl(der).next_update_utc
        if next_update is None or next_update - now < min_remaining:
            with state_lock(layout.root):
                data = json.loads(layout.revocations_file.read_text(encoding="utf-8"))
                number = data["crl_numbers"][repo] = int(data["crl_numbers"][repo]) + 1
                der = state.current_pki().crl(repo, number)
                _write_atomic(layout.crl(repo), der)
                _write_json(layout.revocations_file, data)
        out[repo] = der
    return out
