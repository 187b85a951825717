"""The signer's state directory (kho khóa): keys, certificates, users, revocations, CRLs.

Created on first start, reused afterwards (same CA across restarts). Layout::

    STATE/
      state.json                 public description (units, CRL base URL, creation time)
      ca/ca.pem                  root CA certificate: the trust anchor verification uses
      ca/ca.key                  root CA key, encrypted (PKCS#8, BestAvailableEncryption)
      ca/issuing.pem, .key       issuing CA (CA trung gian) certificate and encrypted key
      ca/chain.pem               issuing CA + root, PEM
      ca/root.crl, issuing.crl   current CRLs (DER)
      tsa/tsa.pem, tsa.key       time-stamping unit certificate and encrypted key
      credentials/<id>/cert.pem  end-entity certificate of an issuing unit (đơn vị ban hành)
      credentials/<id>/key.pem   its encrypted private key
      credentials/<id>/credential.json   description, key algorithm, scrypt hash of the PIN
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import ConfigurationError
from . import ca
from .algorithms import PrivateKey
from .auth import hash_secret

STATE_VERSION = 1
DEFAULT_CRL_BASE_URL = "http://127.0.0.1:8700/crl"


@dataclass(frozen=True)
class UnitSpec:
    """An issuing unit (đơn vị ban hành) that gets one signing credential."""

    credential_id: str
    organization: str
    locality: str | None = None
    organizational_unit: str | None = None
    key_algorithm: ca.KeyAlgorithm = "ec-p256"

    @property
    def description(self) -> str:
        return f"Chữ ký số của {self.organization}"


DEFAULT_UNITS: tuple[UnitSpec, ...] = (
    UnitSpec("sohoa-default", "Trung tâm Lưu trữ và Số hóa tài liệu", "Hà Nội", "Bộ phận số hóa"),
    UnitSpec("ubnd-hcm", "Ủy ban nhân dân Thành phố Hồ Chí Minh", "Thành phố Hồ Chí Minh", "Văn phòng Ủy ban nhân dân"),
    UnitSpec("vpcp", "Văn phòng Chính phủ", "Hà Nội", "Cục Văn thư và Lưu trữ", key_algorithm="rsa-3072"),
)

CA_ORGANIZATION = "Hệ thống số hóa hồ sơ hành chính sohoa"


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
    def root_key(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def issuing_cert(self) -> Path:
        return self.ca_dir / "issuing.pem"

    @property
    def issuing_key(self) -> Path:
        return self.ca_dir / "issuing.key"

    @property
    def chain_pem(self) -> Path:
        return self.ca_dir / "chain.pem"

    @property
    def root_crl(self) -> Path:
        return self.ca_dir / "root.crl"

    @property
    def issuing_crl(self) -> Path:
        return self.ca_dir / "issuing.crl"

    @property
    def tsa_cert(self) -> Path:
        return self.root / "tsa" / "tsa.pem"

    @property
    def tsa_key(self) -> Path:
        return self.root / "tsa" / "tsa.key"

    def credential_dir(self, credential_id: str) -> Path:
        return self.root / "credentials" / credential_id

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


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    _write_atomic(path, pem, 0o600)


def read_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot decrypt {path}: wrong signer key passphrase?") from exc
    return key  # type: ignore[return-value]


def write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM))


def read_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


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
    units: Sequence[UnitSpec] = DEFAULT_UNITS,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    username: str = "sohoa",
    password: str | None = None,
    pin: str | None = None,
) -> bool:
    """Create the PKI, credentials and first user unless ``state_dir`` already holds them.

    Returns True when it created a new state. Safe against concurrent starts (file lock).
    """
    root = Path(state_dir)
    layout = StateLayout(root)
    with state_lock(root):
        if layout.state_file.exists():
            return False
        os.chmod(root, 0o700)
        if not units:
            raise ConfigurationError("the signer needs at least one issuing unit")
        crl_base_url = crl_base_url.rstrip("/")
        root_key = ca.new_private_key("ec-p384")
        root_cert = ca.create_root_ca(root_key, ca.SubjectInfo("sohoa Root CA", CA_ORGANIZATION))
        issuing_key = ca.new_private_key("ec-p256")
        issuing_cert = ca.issue_ca(
            ca.SubjectInfo("sohoa Issuing CA", CA_ORGANIZATION),
            issuing_key.public_key(),
            root_cert,
            root_key,
            crl_url=f"{crl_base_url}/root.crl",
        )
        write_private_key(layout.root_key, root_key, passphrase)
        write_cert(layout.root_cert, root_cert)
        write_private_key(layout.issuing_key, issuing_key, passphrase)
        write_cert(layout.issuing_cert, issuing_cert)
        _write_atomic(
            layout.chain_pem,
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (issuing_cert, root_cert)),
        )

        tsa_key = ca.new_private_key("ec-p256")
        tsa_cert = ca.issue_tsa(
            ca.SubjectInfo("sohoa Time-Stamping Authority", CA_ORGANIZATION, "Dịch vụ cấp dấu thời gian"),
            tsa_key.public_key(),
            issuing_cert,
            issuing_key,
            crl_url=f"{crl_base_url}/issuing.crl",
        )
        write_private_key(layout.tsa_key, tsa_key, passphrase)
        write_cert(layout.tsa_cert, tsa_cert)

        password = password or secrets.token_urlsafe(18)
        pin = pin or f"{secrets.randbelow(10**6):06d}"
        pin_record = hash_secret(pin)
        for unit in units:
            key = ca.new_private_key(unit.key_algorithm)
            cert = ca.issue_end_entity(
                ca.SubjectInfo(
                    unit.organization,
                    unit.organization,
                    unit.organizational_unit,
                    unit.locality,
                    user_id=unit.credential_id,
                ),
                key.public_key(),
                issuing_cert,
                issuing_key,
                crl_url=f"{crl_base_url}/issuing.crl",
                ca_issuers_url=f"{crl_base_url}/issuing.cer",
            )
            cdir = layout.credential_dir(unit.credential_id)
            write_private_key(cdir / "key.pem", key, passphrase)
            write_cert(cdir / "cert.pem", cert)
            _write_json(
                cdir / "credential.json",
                {
                    "credential_id": unit.credential_id,
                    "description": unit.description,
                    "organization": unit.organization,
                    "key_algorithm": unit.key_algorithm,
                    "pin": pin_record,
                },
                0o600,
            )

        _write_json(layout.users_file, {"users": {username: {"password": hash_secret(password), "credentials": ["*"]}}}, 0o600)
        _write_json(
            layout.client_file,
            {"username": username, "password": password, "pin": pin, "credential_id": units[0].credential_id},
            0o600,
        )
        _write_json(layout.revocations_file, {"root_crl_number": 1, "issuing_crl_number": 1, "revoked": []})
        _write_atomic(layout.root_crl, ca.build_crl(root_cert, root_key, [], number=1).public_bytes(serialization.Encoding.DER))
        _write_atomic(
            layout.issuing_crl, ca.build_crl(issuing_cert, issuing_key, [], number=1).public_bytes(serialization.Encoding.DER)
        )
        # state.json last: its presence means "complete".
        _write_json(
            layout.state_file,
            {
                "version": STATE_VERSION,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "crl_base_url": crl_base_url,
                "credentials": [u.credential_id for u in units],
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
    key_algorithm: str
    certificate: x509.Certificate
    chain: list[x509.Certificate]  # leaf first, then issuing CA, then root
    private_key: PrivateKey
    pin_record: dict[str, Any]


@dataclass(frozen=True)
class Revocation:
    credential_id: str
    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags


class RevocationRegistry:
    """``revocations.json``, re-read when it changes so a running service sees admin revocations."""

    def __init__(self, path: Path):
        self.path = path
        self._mtime: int | None = None
        self._by_serial: dict[int, Revocation] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        mtime = self.path.stat().st_mtime_ns
        if mtime == self._mtime:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._by_serial = {
            int(r["serial"], 16): Revocation(
                r["credential_id"],
                int(r["serial"], 16),
                dt.datetime.fromisoformat(r["revoked_at"]),
                x509.ReasonFlags(r.get("reason", "unspecified")),
            )
            for r in data.get("revoked", [])
        }
        self._mtime = mtime

    def lookup(self, serial_number: int) -> Revocation | None:
        with self._lock:
            self._refresh()
            return self._by_serial.get(serial_number)


@dataclass
class SignerState:
    """Everything the running service holds in memory."""

    layout: StateLayout
    root_cert: x509.Certificate
    root_key: PrivateKey
    issuing_cert: x509.Certificate
    issuing_key: PrivateKey
    tsa_cert: x509.Certificate
    tsa_key: PrivateKey
    credentials: dict[str, Credential]
    revocations: RevocationRegistry
    info: dict[str, Any] = field(default_factory=dict)

    def credential_status(self, cred: Credential, now: dt.datetime | None = None) -> str:
        """CSC ``cert.status``: ``valid``, ``revoked``, ``expired`` or ``not_yet_valid``."""
        now = now or dt.datetime.now(dt.timezone.utc)
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
    root_cert = read_cert(layout.root_cert)
    issuing_cert = read_cert(layout.issuing_cert)
    credentials: dict[str, Credential] = {}
    for cid in info["credentials"]:
        cdir = layout.credential_dir(cid)
        meta = json.loads((cdir / "credential.json").read_text(encoding="utf-8"))
        cert = read_cert(cdir / "cert.pem")
        credentials[cid] = Credential(
            credential_id=cid,
            description=meta["description"],
            organization=meta["organization"],
            key_algorithm=meta["key_algorithm"],
            certificate=cert,
            chain=[cert, issuing_cert, root_cert],
            private_key=read_private_key(cdir / "key.pem", passphrase),
            pin_record=meta["pin"],
        )
    return SignerState(
        layout=layout,
        root_cert=root_cert,
        root_key=read_private_key(layout.root_key, passphrase),
        issuing_cert=issuing_cert,
        issuing_key=read_private_key(layout.issuing_key, passphrase),
        tsa_cert=read_cert(layout.tsa_cert),
        tsa_key=read_private_key(layout.tsa_key, passphrase),
        credentials=credentials,
        revocations=RevocationRegistry(layout.revocations_file),
        info=info,
    )


# --- revocation and CRLs ----------------------------------------------------------------------


def _revoked_entries(data: dict[str, Any]) -> list[ca.RevokedEntry]:
    return [
        ca.RevokedEntry(int(r["serial"], 16), dt.datetime.fromisoformat(r["revoked_at"]), x509.ReasonFlags(r["reason"]))
        for r in data.get("revoked", [])
    ]


def revoke_credential(
    state_dir: Path,
    credential_id: str,
    passphrase: bytes,
    *,
    reason: x509.ReasonFlags | str = x509.ReasonFlags.key_compromise,
) -> x509.CertificateRevocationList:
    """Revoke a credential's certificate (thu hồi chứng thư) and publish a new issuing-CA CRL.

    Running services see the change on their next request (they re-read ``revocations.json``):
    ``credentials/authorize`` and ``signatures/signHash`` refuse the credential, and
    verification with the new CRL reports the certificate revoked. Idempotent.
    """
    layout = StateLayout(Path(state_dir))
    reason = x509.ReasonFlags(reason) if isinstance(reason, str) else reason
    cdir = layout.credential_dir(credential_id)
    if not (cdir / "cert.pem").exists():
        raise ConfigurationError(f"unknown credential {credential_id!r} in {state_dir}")
    cert = read_cert(cdir / "cert.pem")
    issuing_key = read_private_key(layout.issuing_key, passphrase)
    with state_lock(layout.root):
        data = json.loads(layout.revocations_file.read_text(encoding="utf-8"))
        serial = format(cert.serial_number, "x")
        if not any(r["serial"] == serial for r in data["revoked"]):
            data["revoked"].append(
                {
                    "credential_id": credential_id,
                    "serial": serial,
                    "revoked_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                    "reason": reason.value,
                }
            )
        data["issuing_crl_number"] = int(data.get("issuing_crl_number", 1)) + 1
        crl = ca.build_crl(read_cert(layout.issuing_cert), issuing_key, _revoked_entries(data), number=data["issuing_crl_number"])
        _write_atomic(layout.issuing_crl, crl.public_bytes(serialization.Encoding.DER))
        _write_json(layout.revocations_file, data)
    return crl


def current_crls(state: SignerState, *, min_remaining: dt.timedelta = dt.timedelta(days=1)) -> dict[str, bytes]:
    """The root and issuing CRLs (DER), re-issued first when close to their ``nextUpdate``."""
    layout = state.layout
    out: dict[str, bytes] = {}
    now = dt.datetime.now(dt.timezone.utc)
    for name, path, cert, key, counter, entries_for in (
        ("root", layout.root_crl, state.root_cert, state.root_key, "root_crl_number", lambda d: []),
        ("issuing", layout.issuing_crl, state.issuing_cert, state.issuing_key, "issuing_crl_number", _revoked_entries),
    ):
        der = path.read_bytes()
        crl = x509.load_der_x509_crl(der)
        if crl.next_update_utc is None or crl.next_update_utc - now < min_remaining:
            with state_lock(layout.root):
                data = json.loads(layout.revocations_file.read_text(encoding="utf-8"))
                data[counter] = int(data.get(counter, 1)) + 1
                fresh = ca.build_crl(cert, key, entries_for(data), number=data[counter])
                der = fresh.public_bytes(serialization.Encoding.DER)
                _write_atomic(path, der)
                _write_json(layout.revocations_file, data)
        out[name] = der
    return out
