"""Personal data protection (bảo vệ dữ liệu cá nhân, Decree 13/2023/NĐ-CP): encryption at rest.

What is personal data here
--------------------------
:data:`PII_FIELDS` names, per record type, the fields that identify or describe a *private*
person (dữ liệu cá nhân cơ bản, Decree 13 art. 2(3)): names, số định danh cá nhân, date and
place of birth, place of residence. Administrative documents (văn bản hành chính) have none
by default: the signer (người ký) is a public official acting in office, and the issuer is an
agency. The premises address and tax code of a household business are registration data
that is published, so they stay in clear; the owner's name, id, birth date and residence do not.

Envelope encryption
-------------------
:func:`encrypt_fields` returns a copy of a record in which

* every PII field of ``fields`` is set to ``null`` (the field models allow ``null``, so the
  typed ``fields`` stay schema-valid);
* the OCR text (``text``, ``pages[].text``, ``pages[].words[].text``) is blanked — it holds
  the same names and numbers in clear — while page geometry, boxes and confidences stay;
* the messages of ``validation_errors`` / ``review_reasons`` about PII fields (they quote the
  value, e.g. ``'0123…' is not a valid personal identification number``) are replaced by
  :data:`REDACTED`;
* the removed values go into ONE envelope per record, the top-level member ``pii``
  (:class:`PiiEnvelope`)::

      "pii": {"enc": "A256GCM", "alg": "ECDH-ES+A256KW", "kid": "k20250101-1a2b3c4d",
              "epk": b64url(ephemeral X25519 public key, 32 bytes),
              "iv": b64url(12 bytes), "ct": b64url(ciphertext || 16-byte tag),
              "wrapped_key": b64url(AES-KW(HKDF(X25519(eph, PUB[kid])), data key)),
              "fields": ["full_name", ...],            # names only, never values
              "blind_index": ["k20250101-1a2b3c4d:<hex>", ...]}

  A fresh 256-bit data key (khóa dữ liệu) encrypts the payload with AES-256-GCM; the
  additional authenticated data binds the ciphertext to the record (``document_id`` and
  ``record_type``), so an envelope cannot be moved to another record. The data key is
  wrapped (RFC 3394 AES key wrap) by a key-encryption key that only the holder of the
  ring's PRIVATE key can derive: ECDH-ES in the manner of JOSE (RFC 7518 §4.6, X25519 of
  RFC 8037) — an ephemeral X25519 key agreed with the ring's public key ``kid``, the shared
  secret stretched by HKDF-SHA256 bound to ``kid``, ``epk`` and the public key. One envelope
  per record keeps one wrap per record and one place to check.

  ``alg`` is the version tag. ``"A256KW"`` (envelope v1, written before issue 22) wraps the
  data key with a symmetric KEK — which every writer had to hold, so every Dask worker could
  decrypt every record; such records stay readable with the ring's symmetric keys
  (:meth:`KeyRing.keys`) and :func:`rewrap` moves them to the current public key.
  ``"ECDH-ES+A256KW"`` (v2) needs only the public key to write.

Who holds what (issue 22)
-------------------------
* Writers (Dask workers, the inline executor) need the **encryption ring**
  (:meth:`KeyRing.encryption_ring`): the current public key and the current blind-index key.
  The driver ships it with the run's settings (:func:`with_encryption_keys`, the field
  ``Settings.pii_encryption``) as it ships the S3 credentials: a worker needs no key file and
  holds nothing that decrypts.
* Readers (the API, ``sohoa export --decrypt``, review, ``sohoa catalog``) need the **full
  ring** (``SOHOA_PII_KEYRING``, mode 0600): the private keys, the index keys of every key
  id (lookups across rotations) and the legacy symmetric keys.

Trade-off of the blind index: an HMAC must be computed where a record is written, so the
writers hold the current *index* key. It is a separate random key, not derived from anything
that decrypts: a compromised worker (or anyone reading the scheduler's traffic) can compute
blind indexes — i.e. test a guessed số định danh against the catalog — but cannot decrypt a
single record. Rotating the key (``sohoa pii rotate``) retires a leaked index key for new
records. Deployments that cannot accept even that keep the index key on the driver and run
``--inline`` (no workers); the catalog then has the same blind indexes.

Encrypt *before* signing: the signature covers the encrypted record, so anyone can verify a
record without the keys, and the clear values never reach the warehouse.

Blind index (chỉ mục mù)
------------------------
:func:`blind_index` is ``kid:HMAC-SHA256(index_key(kid), normalised identifier)``; the index
key of a public-key id is its own random 32 bytes, that of a legacy symmetric key id is
derived from the KEK with HKDF. The catalog stores only these values for subject ids
(số định danh cá nhân, mã số thuế), never the identifier; a lookup computes the blind index
of the asked identifier under every key of the ring (:meth:`KeyRing.blind_indexes`), so
records written before a key rotation are still found.

Key ring
--------
:class:`KeyRing` holds the current key id and older keys (rotation: new records use the new
key; old records stay readable). It is kept in ``<home>/pii/keyring.json`` (mode 0600,
written atomically) or built from configuration (:meth:`KeyRing.from_mapping`); ``sohoa pii
init|rotate|public`` make and export one. A ring file may also be an encryption-only ring
(``"kind": "encryption"``: public key and index key, no private key). This module never
reads the environment.

Access
------
:func:`decrypt_fields` succeeds for the roles ``steward``, ``reader`` and ``admin``, and for
``unit`` only on records of its own unit (``provenance.unit``); otherwise it raises
:class:`PiiAccessDenied`. A decrypted record is a view for display: its signature covers the
encrypted form, so verify the stored record, not the view.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, NotRequired, TypedDict, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)
from pydantic import ValidationError

from pipeline.records.record import PiiEnvelope, Record
from pipeline.runtime.errors import ConfigurationError, SohoaError

#: Fields that hold personal data of private persons, per record type.
PII_FIELDS: dict[str, tuple[str, ...]] = {
    "admin_document": (),
    "household_business_registration": (
        "owner_name",  # Họ và tên chủ hộ
        "owner_date_of_birth",
        "owner_personal_id",  # Số định danh cá nhân
        "owner_residence",  # Nơi cư trú
    ),
    "birth_certificate": (
        "full_name",  # Họ, chữ đệm, tên của người được khai sinh
        "date_of_birth",
        "place_of_birth",
        "personal_id",
        "mother_name",
        "father_name",
    ),
}

#: Fields whose values identify a person or organisation a document concerns (đối tượng);
#: their blind indexes file a record in the per-subject area and the catalog.
SUBJECT_FIELDS: tuple[str, ...] = ("personal_id", "owner_personal_id", "business_code", "tax_code")

#: Roles that may read personal data of every unit (see :mod:`pipeline.service.api.auth`).
READ_ROLES: frozenset[str] = frozenset({"steward", "reader", "admin"})

#: Replaces an issue message that quoted a personal value.
REDACTED = "[dữ liệu cá nhân đã được mã hóa / personal data encrypted]"

ENC: Final = "A256GCM"
ALG: Final = "A256KW"  # envelope v1: data key wrapped by a symmetric KEK (read only; see module doc)
ALG_ECDH: Final = "ECDH-ES+A256KW"  # envelope v2: data key wrapped to an X25519 public key
_AAD_PREFIX = b"sohoa-pii/1"  # the payload's AAD; the same for both envelope versions (rewrap)
_INDEX_INFO = b"sohoa blind index v1"
_ECDH_INFO = b"sohoa-pii/2 ECDH-ES+A256KW"
KEYRING_FILE = Path("pii") / "keyring.json"


# --- errors -------------------------------------------------------------------------------


class PiiError(SohoaError):
    """Base of personal-data protection errors."""

    stage = "pii"
    code = "pii_error"


class PiiAccessDenied(PiiError):
    """The caller's role may not read personal data of this record."""

    code = "pii_access_denied"


class PiiDecryptionError(PiiError):
    """The envelope does not open: wrong key, tampered ciphertext or moved envelope."""

    code = "pii_decryption_failed"


class UnknownKeyError(PiiDecryptionError):
    """The record names a key id that the key ring does not hold."""

    code = "pii_unknown_key"


# --- key ring ------------------------------------------------------------------------------


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_kid() -> str:
    """A fresh key id: ``k<yyyymmdd>-<8 hex>``."""
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


@dataclass
class KeyRing:
    """Keys by id; ``current_kid`` encrypts new records, every key with its secret half decrypts.

    A key id is either an X25519 key pair (``public_keys`` / ``private_keys``, with its own
    blind-index key in ``index_keys``: envelope v2) or a legacy symmetric KEK (``keys``:
    envelope v1, read only). An *encryption ring* (:meth:`encryption_ring`) holds the current
    public key and index key only: it writes records and cannot read one."""

    current_kid: str
    keys: dict[str, bytes] = field(default_factory=dict)  # legacy symmetric KEKs (v1 envelopes)
    public_keys: dict[str, bytes] = field(default_factory=dict)  # X25519, 32 bytes
    private_keys: dict[str, bytes] = field(default_factory=dict, repr=False)  # X25519, 32 bytes
    index_keys: dict[str, bytes] = field(default_factory=dict, repr=False)  # blind-index HMAC keys of X25519 ids
    _index_keys: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for kid, private in self.private_keys.items():
            if len(private) != 32:
                raise ConfigurationError(f"PII key ring: private key {kid!r} must be 32 bytes (X25519)")
            public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
            if self.public_keys.setdefault(kid, public) != public:
                raise ConfigurationError(f"PII key ring: public key {kid!r} does not match its private key")
        for kid in self.public_keys:
            if len(self.public_keys[kid]) != 32:
                raise ConfigurationError(f"PII key ring: public key {kid!r} must be 32 bytes (X25519)")
            if len(self.index_keys.get(kid, b"")) != 32:
                raise ConfigurationError(f"PII key ring: key {kid!r} has no 32-byte blind-index key")
            if kid in self.keys:
                raise ConfigurationError(f"PII key ring: key id {kid!r} is both symmetric and public")
        if self.current_kid not in self.keys and self.current_kid not in self.public_keys:
            raise ConfigurationError(f"PII key ring: current key {self.current_kid!r} is not in the ring")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise ConfigurationError(f"PII key ring: key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        for kid in [*self.keys, *self.public_keys]:
            if ":" in kid or not kid:
                raise ConfigurationError(f"PII key ring: bad key id {kid!r}")

    def __repr__(self) -> str:  # never print key material
        return (f"KeyRing(current_kid={self.current_kid!r}, kids={sorted(self.kids())!r}, "
                f"can_decrypt={sorted(self.decryptable_kids())!r})")  # fmt: skip

    @staticmethod
    def _new_pair(index: bytes | None = None) -> tuple[bytes, bytes]:
        return X25519PrivateKey.generate().private_bytes_raw(), index or secrets.token_bytes(32)

    @classmethod
    def generate(cls) -> KeyRing:
        kid = new_kid()
        private, index = cls._new_pair()
        return cls(current_kid=kid, private_keys={kid: private}, index_keys={kid: index})

    def rotate(self) -> str:
        """Add a new X25519 key and make it current (old keys stay for decryption and lookups).
        Returns its id. Refused on an encryption-only ring."""
        if not self.private_keys and not self.keys:
            raise ConfigurationError("an encryption-only PII key ring cannot be rotated: rotate the full ring")
        kid = new_kid()
        while kid in self.kids():
            kid = new_kid()
        private, index = self._new_pair()
        self.private_keys[kid] = private
        self.public_keys[kid] = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
        self.index_keys[kid] = index
        self.current_kid = kid
        return kid

    def kids(self) -> set[str]:
        return set(self.keys) | set(self.public_keys)

    def decryptable_kids(self) -> set[str]:
        return set(self.keys) | set(self.private_keys)

    @property
    def can_decrypt(self) -> bool:
        """Whether this ring holds any secret that opens an envelope (False: an encryption ring)."""
        return bool(self.decryptable_kids())

    @property
    def current_is_public(self) -> bool:
        """Whether new records are encrypted to a public key (envelope v2)."""
        return self.current_kid in self.public_keys

    def encryption_ring(self) -> KeyRing:
        """What a writer (a Dask worker) needs: the current public key and its blind-index key,
        nothing that decrypts. Refused when the current key is a legacy symmetric key."""
        kid = self.current_kid
        if not self.current_is_public:
            raise ConfigurationError(
                f"PII key ring: the current key {kid!r} is a symmetric key (envelope v1), which every "
                "writer would need to hold; add a public key with `sohoa pii rotate`"
            )
        return KeyRing(current_kid=kid, public_keys={kid: self.public_keys[kid]}, index_keys={kid: self.index_keys[kid]})

    def key(self, kid: str) -> bytes:
        """The legacy symmetric KEK ``kid`` (envelope v1)."""
        try:
            return self.keys[kid]
        except KeyError:
            raise UnknownKeyError(f"PII key {kid!r} is not in the key ring") from None

    def private_key(self, kid: str) -> X25519PrivateKey:
        """The X25519 private key ``kid`` (envelope v2)."""
        if kid in self.private_keys:
            return X25519PrivateKey.from_private_bytes(self.private_keys[kid])
        if kid in self.public_keys:
            raise PiiDecryptionError(
                f"PII key {kid!r}: this key ring holds its public key only (an encryption ring, as a "
                "worker gets): it writes records and cannot read them"
            )
        raise UnknownKeyError(f"PII key {kid!r} is not in the key ring")

    def index_key(self, kid: str) -> bytes:
        """The blind-index HMAC key of ``kid``: its own random key (X25519 ids), or HKDF-SHA256
        of the KEK (legacy symmetric ids)."""
        cached = self._index_keys.get(kid)
        if cached is None:
            if kid in self.index_keys:
                cached = self.index_keys[kid]
            else:
                cached = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_INFO).derive(self.key(kid))
            self._index_keys[kid] = cached
        return cached

    def blind_indexes(self, identifier: str) -> list[str]:
        """The blind index of ``identifier`` under every key (for lookups across rotations)."""
        return [blind_index(identifier, self, kid=kid) for kid in sorted(self.kids())]

    # -- persistence --------------------------------------------------------------------

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": 2, "current_kid": self.current_kid}
        if not self.can_decrypt:
            out["kind"] = "encryption"
        out["keys"] = {kid: _b64e(key) for kid, key in sorted(self.keys.items())}
        out["x25519"] = {
            kid: {"public": _b64e(pub), "index": _b64e(self.index_keys[kid]),
                  **({"private": _b64e(self.private_keys[kid])} if kid in self.private_keys else {})}
            for kid, pub in sorted(self.public_keys.items())
        }  # fmt: skip
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_mapping(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> KeyRing:
        """From configuration: ``{"current_kid": ..., "keys": {kid: base64url 32 bytes},
        "x25519": {kid: {"public": ..., "private": ..., "index": ...}}}`` (v1 rings: ``keys`` only)."""
        try:
            keys = {str(kid): _b64d(str(value)) for kid, value in dict(data.get("keys") or {}).items()}
            public, private, index = {}, {}, {}
            for kid, entry in dict(data.get("x25519") or {}).items():
                public[str(kid)] = _b64d(str(entry["public"]))
                index[str(kid)] = _b64d(str(entry["index"]))
                if entry.get("private"):
                    private[str(kid)] = _b64d(str(entry["private"]))
            return cls(current_kid=str(data["current_kid"]), keys=keys, public_keys=public,
                       private_keys=private, index_keys=index)  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"PII key ring is malformed: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            return cls.from_mapping(json.loads(text))
        except ValueError as exc:
            raise ConfigurationError(f"PII key ring is malformed: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"PII key ring not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"PII key ring {path} cannot be read: {exc}") from exc
        return cls.from_mapping(data)

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600 (directory 0700)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keyring-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_mapping(), fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """The ring in ``path``; a new one (saved there) when the file does not exist. A ring
        whose current key is a legacy symmetric key gets a new public key (old keys stay)."""
        path = Path(path)
        if path.exists():
            ring = cls.load(path)
            if not ring.current_is_public and ring.can_decrypt:
                ring.rotate()
                ring.save(path)
            return ring
        ring = cls.generate()
        ring.save(path)
        return ring


def keyring_path(home: Path) -> Path:
    """Where the key ring of a deployment lives: ``<home>/pii/keyring.json``."""
    return Path(home) / KEYRING_FILE


# --- blind index ---------------------------------------------------------------------------


def normalize_identifier(value: str) -> str:
    """Normalise an identifier for the blind index: NFKC, upper case, no whitespace or dots.

    A dash is kept (a tax code's branch suffix ``-001`` is meaningful)."""
    text = unicodedata.normalize("NFKC", str(value)).upper()
    return "".join(ch for ch in text if not ch.isspace() and ch != ".")


def blind_index(identifier: str, keyring: KeyRing, *, kid: str | None = None) -> str:
    """``kid:hex(HMAC-SHA256(index_key(kid), normalised identifier))``; ``kid`` defaults to current."""
    kid = kid or keyring.current_kid
    mac = hmac.new(keyring.index_key(kid), normalize_identifier(identifier).encode("utf-8"), hashlib.sha256)
    return f"{kid}:{mac.hexdigest()}"


#: A số định danh cá nhân (the 12-digit personal identification number of the citizen
#: identity card, Decree 137/2015/NĐ-CP art. 13): twelve digits standing alone — not part of a
#: longer number, an amount ("100.000.000.000") or a date.
_PERSONAL_ID_RE = re.compile(r"(?<![\d.,/-])(\d{12})(?![\d]|[.,/-]\d)")
#: A mã số thuế (10 digits, a branch adds "-NNN"; Circular 105/2020/TT-BTC) where the text says
#: so: ten digits alone are as often a telephone number, so only after its label.
_TAX_CODE_RE = re.compile(
    r"(?:m[ãa]\s*s[ốo]\s*(?:thu[ếe]|doanh\s*nghi[ệe]p|h[ộo]\s*kinh\s*doanh)|\bMST)\s*[:.]?\s*"
    r"(\d{10}(?:-\d{3})?)(?!\d)",
    re.IGNORECASE,
)


def identifiers_in_text(text: str) -> list[str]:
    """Personal ids and labelled tax codes anywhere in ``text`` (NFC), sorted, each once.

    Used whatever the record type (issue 17): a birth certificate misread as an official letter,
    or a decision that names a citizen by id, must not leave the id in clear."""
    if not text:
        return []
    text = unicodedata.normalize("NFC", text)
    found = {m.group(1) for m in _PERSONAL_ID_RE.finditer(text)}
    found |= {m.group(1) for m in _TAX_CODE_RE.finditer(text)}
    return sorted(found)


def _fields_and_text(record: Record | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(record, Record):
        return record.fields, record.text
    return record.get("fields") or {}, str(record.get("text") or "")


def subject_values(record: Record | Mapping[str, Any]) -> list[str]:
    """The subject ids (số định danh, mã số thuế) of a record: its subject fields, and the
    personal ids and labelled tax codes in its text or any text field (:func:`identifiers_in_text`)."""
    fields, text = _fields_and_text(record)
    values = {str(fields[f]) for f in SUBJECT_FIELDS if fields.get(f)}
    values.update(identifiers_in_text(text))
    for name, value in fields.items():
        if isinstance(value, str) and name not in SUBJECT_FIELDS:
            values.update(identifiers_in_text(value))
    return sorted(values)


def _fields_quoting_ids(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """Text fields (other than the subject-id fields) whose value quotes a personal id or tax code."""
    return tuple(
        name for name, value in fields.items()
        if isinstance(value, str) and name not in SUBJECT_FIELDS and identifiers_in_text(value)
    )  # fmt: skip


# --- encryption ------------------------------------------------------------------------------


def _aad(record: Mapping[str, Any]) -> bytes:
    return _aad_of(record.get("document_id", ""), record.get("record_type", ""))


def _aad_of(document_id: object, record_type: object) -> bytes:
    return b"\n".join([_AAD_PREFIX, str(document_id).encode(), str(record_type).encode()])


def is_encrypted(record: Record | Mapping[str, Any]) -> bool:
    return record.pii is not None if isinstance(record, Record) else bool(record.get("pii"))


def _pii_names(record_type: object, fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields to encrypt: the type's personal fields, and any text field quoting an id."""
    names = PII_FIELDS.get(str(record_type), ())
    return names + tuple(n for n in _fields_quoting_ids(fields) if n not in names)


def _seal(payload: Mapping[str, Any], aad: bytes, subjects: list[str], keyring: KeyRing) -> PiiEnvelope:
    """The envelope of ``payload`` (the removed values) under the ring's current key."""
    kid = keyring.current_kid
    data_key = AESGCM.generate_key(bit_length=256)
    iv = secrets.token_bytes(12)
    plaintext = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ct = AESGCM(data_key).encrypt(iv, plaintext, aad)
    return PiiEnvelope(
        enc=ENC,
        kid=kid,
        iv=_b64e(iv),
        ct=_b64e(ct),
        fields=sorted(payload["fields"]),
        blind_index=sorted({blind_index(s, keyring, kid=kid) for s in subjects}),
        **_wrap(data_key, keyring),
    )


@overload
def encrypt_fields(record: Record, keyring: KeyRing, *, protect_text: bool = True) -> Record: ...
@overload
def encrypt_fields(record: Mapping[str, Any], keyring: KeyRing, *, protect_text: bool = True) -> dict[str, Any]: ...
def encrypt_fields(
    record: Record | Mapping[str, Any], keyring: KeyRing, *, protect_text: bool = True
) -> Record | dict[str, Any]:
    """A copy of ``record`` with its personal data in one envelope under ``pii`` (module doc): the
    model (:class:`~pipeline.records.record.Record`, what the pipeline stores) or a record's JSON
    object (a stored record read back), the same kind coming back.

    Records of a type without PII fields and without subject ids come back unchanged (not deep
    copied: no copy of the word boxes of every page for an official letter). A record that
    already has an envelope is returned unchanged (idempotent).
    ``protect_text=False`` leaves the OCR text in clear (only for types whose text holds no
    personal data)."""
    if isinstance(record, Record):
        return _encrypt_record(record, keyring, protect_text=protect_text)
    if is_encrypted(record):
        return dict(record)
    names = _pii_names(record.get("record_type"), record.get("fields") or {})
    subjects = subject_values(record)
    if not names and not subjects:
        return dict(record)
    # an id in the OCR text protects the text whatever the type: a misclassified birth
    # certificate must not leave the child's id in clear
    text_ids = identifiers_in_text(str(record.get("text") or ""))
    out: dict[str, Any] = copy.deepcopy(dict(record))

    fields = out.setdefault("fields", {})
    payload: dict[str, Any] = {"v": 1, "fields": {}, "issues": {}}
    for name in names:
        if fields.get(name) is not None:
            payload["fields"][name] = fields[name]
            fields[name] = None
    if (names or text_ids) and protect_text:
        payload["text"] = out.get("text", "")
        out["text"] = ""
        page_text = []
        for page in out.get("pages") or []:
            words = page.get("words") or []
            page_text.append({"text": page.get("text", ""), "words": [w.get("text", "") for w in words]})
            page["text"] = ""
            for w in words:
                w["text"] = ""
        payload["pages"] = page_text
    for member in ("validation_errors", "review_reasons"):
        for i, issue in enumerate(out.get(member) or []):
            if issue.get("field") in names and issue.get("message") not in (None, REDACTED):
                payload["issues"].setdefault(member, {})[str(i)] = issue["message"]
                issue["message"] = REDACTED
    envelope = _seal(payload, _aad(out), subjects, keyring)
    out["pii"] = envelope.model_dump(exclude_none=True)  # a v1 envelope keeps its exact members
    return out


def _encrypt_record(record: Record, keyring: KeyRing, *, protect_text: bool) -> Record:
    """:func:`encrypt_fields` of the model: the same envelope and payload as of its JSON object."""
    if record.pii is not None:
        return record
    names = _pii_names(record.record_type, record.fields)
    subjects = subject_values(record)
    if not names and not subjects:
        return record
    text_ids = identifiers_in_text(record.text)  # as above: an id in the text protects the text
    out = record.model_copy(deep=True)
    fields = dict(out.fields)
    payload: dict[str, Any] = {"v": 1, "fields": {}, "issues": {}}
    for name in names:
        if fields.get(name) is not None:
            payload["fields"][name] = fields[name]
            fields[name] = None
    out.fields = fields
    if (names or text_ids) and protect_text:
        payload["text"], out.text = out.text, ""
        page_text = []
        for page in out.pages:
            page_text.append({"text": page.text, "words": [w.text for w in page.words]})
            page.text = ""
            for w in page.words:
                w.text = ""
        payload["pages"] = page_text
    for member, issues in (("validation_errors", out.validation_errors), ("review_reasons", out.review_reasons)):
        for i, issue in enumerate(issues):
            if issue.field in names and issue.message != REDACTED:
                payload["issues"].setdefault(member, {})[str(i)] = issue.message
                issue.message = REDACTED
    out.pii = _seal(payload, _aad_of(out.document_id, out.record_type), subjects, keyring)
    return out


def _ecdh_kek(shared: bytes, kid: str, epk: bytes, public: bytes) -> bytes:
    """The key-encryption key of a v2 envelope: HKDF-SHA256 of the X25519 shared secret, bound
    to the key id, the ephemeral and the recipient public key."""
    info = b"\n".join([_ECDH_INFO, kid.encode(), epk, public])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


class _Wrapped(TypedDict):
    """The members of an envelope :func:`_wrap` sets."""

    alg: Literal["A256KW", "ECDH-ES+A256KW"]
    wrapped_key: str
    epk: NotRequired[str]


def _wrap(data_key: bytes, keyring: KeyRing) -> _Wrapped:
    """``alg``, ``wrapped_key`` (and ``epk``) wrapping ``data_key`` under the current key."""
    kid = keyring.current_kid
    if keyring.current_is_public:
        public = keyring.public_keys[kid]
        ephemeral = X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes_raw()
        kek = _ecdh_kek(ephemeral.exchange(X25519PublicKey.from_public_bytes(public)), kid, epk, public)
        return {"alg": ALG_ECDH, "epk": _b64e(epk), "wrapped_key": _b64e(aes_key_wrap(kek, data_key))}
    return {"alg": ALG, "wrapped_key": _b64e(aes_key_wrap(keyring.key(kid), data_key))}


def _unwrap(env: PiiEnvelope, keyring: KeyRing) -> bytes:
    """The data key of an envelope (v1: symmetric KEK; v2: the private key of ``kid``)."""
    if env.alg == ALG_ECDH:
        private = keyring.private_key(env.kid)
        if not env.epk:
            raise ValueError("ECDH-ES envelope without epk")
        epk = _b64d(env.epk)
        shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _ecdh_kek(shared, env.kid, epk, keyring.public_keys[env.kid])
        return aes_key_unwrap(kek, _b64d(env.wrapped_key))
    return aes_key_unwrap(keyring.key(env.kid), _b64d(env.wrapped_key))


def can_read_pii(role: str, *, unit: str | None = None, record_unit: str | None = None) -> bool:
    """Whether ``role`` (of ``unit``) may read the personal data of a record of ``record_unit``."""
    if role in READ_ROLES:
        return True
    return role == "unit" and unit is not None and record_unit is not None and unit == record_unit


def decrypt_fields(
    record: Mapping[str, Any], keyring: KeyRing, *, role: str, unit: str | None = None
) -> dict[str, Any]:
    """A copy of ``record`` with its personal data restored and ``pii`` removed.

    Raises :class:`PiiAccessDenied` when ``role`` may not read it (``unit`` callers only see
    records of their own ``unit``), :class:`UnknownKeyError` for a key id not in the ring and
    :class:`PiiDecryptionError` for a wrong key or a tampered envelope."""
    record_unit = (record.get("provenance") or {}).get("unit")
    if not can_read_pii(role, unit=unit, record_unit=record_unit):
        raise PiiAccessDenied(f"role {role!r} of unit {unit!r} may not read personal data of this record")
    out: dict[str, Any] = copy.deepcopy(dict(record))
    raw = out.pop("pii", None)
    if not raw:
        return out
    try:
        env = PiiEnvelope.model_validate(raw)
        data_key = _unwrap(env, keyring)
        plaintext = AESGCM(data_key).decrypt(_b64d(env.iv), _b64d(env.ct), _aad(out))
        payload = json.loads(plaintext)
    except PiiDecryptionError:  # an unknown key id, a ring without the private key
        raise
    except (InvalidUnwrap, InvalidTag, ValueError, TypeError, ValidationError) as exc:
        raise PiiDecryptionError(
            f"personal data of {out.get('document_id')} does not decrypt with key {raw.get('kid')!r} "
            f"(wrong key or tampered envelope: {type(exc).__name__})"
        ) from exc

    fields = out.setdefault("fields", {})
    fields.update(payload.get("fields") or {})
    if "text" in payload:
        out["text"] = payload["text"]
    # not strict: a payload sealed with protect_text=False has no pages at all
    for page, saved in zip(out.get("pages") or [], payload.get("pages") or [], strict=False):
        page["text"] = saved.get("text", "")
        for w, text in zip(page.get("words") or [], saved.get("words") or [], strict=False):
            w["text"] = text
    for member, messages in (payload.get("issues") or {}).items():
        issues = out.get(member) or []
        for index, message in messages.items():
            if int(index) < len(issues):
                issues[int(index)]["message"] = message
    return out


def rewrap(record: Mapping[str, Any], keyring: KeyRing) -> dict[str, Any]:
    """A copy whose data key is wrapped by the current key (after a rotation, to retire an old
    key, or to move a v1 envelope to the current public key). The ciphertext and the blind
    indexes are unchanged; re-sign the record afterwards. Needs the full ring."""
    out: dict[str, Any] = copy.deepcopy(dict(record))
    raw = out.get("pii")
    if not raw or raw.get("kid") == keyring.current_kid:
        return out
    try:
        data_key = _unwrap(PiiEnvelope.model_validate(raw), keyring)
    except (InvalidUnwrap, ValueError, ValidationError) as exc:
        raise PiiDecryptionError(f"data key of {out.get('document_id')} does not unwrap") from exc
    raw.pop("epk", None)
    raw.update(_wrap(data_key, keyring))
    raw["kid"] = keyring.current_kid
    return out


def with_encryption_keys(settings: Any) -> Any:
    """``settings`` with ``pii_encryption`` set to the encryption ring of its key ring (the
    current public key and index key, as JSON): what tasks carry to the workers, so that a
    worker encrypts personal data without any key file and without anything that decrypts.

    Unchanged when it is already set, when no ring is configured, or when the ring's current
    key is a legacy symmetric key (then every worker needs the ring file itself at
    ``settings.pii_keyring``; the worker plugin checks at join, see ``workers/plugin.py``)."""
    if getattr(settings, "pii_encryption", None) or getattr(settings, "pii_keyring", None) is None:
        return settings
    ring = KeyRing.load(settings.pii_keyring)
    if not ring.current_is_public:
        return settings
    return settings.replace(pii_encryption=ring.encryption_ring().to_json())


def writer_keyring(pii_keyring: Path | None, pii_encryption: str | None) -> KeyRing | None:
    """The ring a process that writes records uses: the ring file where this process has it
    (the driver, the API: the full ring), else the encryption ring the settings carry (a
    worker). None when neither is configured."""
    if pii_keyring is not None and (pii_encryption is None or Path(pii_keyring).exists()):
        return KeyRing.load(pii_keyring)
    if pii_encryption is not None:
        return KeyRing.from_json(pii_encryption)
    return None


def blind_indexes_of(record: Record | Mapping[str, Any], keyring: KeyRing | None = None) -> list[str]:
    """The subject blind indexes of a record: from its envelope, else computed with ``keyring``
    from clear subject ids (records written before encryption); empty without either."""
    if isinstance(record, Record):
        stored = record.pii.blind_index if record.pii is not None else []
    else:
        stored = (record.get("pii") or {}).get("blind_index") or []
    if stored:
        return sorted(stored)
    if keyring is None:
        return []
    return sorted({blind_index(s, keyring) for s in subject_values(record)})


__all__ = [
    "PII_FIELDS",
    "SUBJECT_FIELDS",
    "KeyRing",
    "PiiAccessDenied",
    "PiiDecryptionError",
    "PiiEnvelope",
    "PiiError",
    "UnknownKeyError",
    "blind_index",
    "blind_indexes_of",
    "can_read_pii",
    "decrypt_fields",
    "encrypt_fields",
    "keyring_path",
    "normalize_identifier",
    "rewrap",
    "with_encryption_keys",
    "writer_keyring",
]
