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

      "pii": {"enc": "A256GCM", "alg": "A256KW", "kid": "k20250101-1a2b3c4d",
              "iv": b64url(12 bytes), "ct": b64url(ciphertext || 16-byte tag),
              "wrapped_key": b64url(AES-KW(KEK[kid], data key)),
              "fields": ["full_name", ...],            # names only, never values
              "blind_index": ["k20250101-1a2b3c4d:<hex>", ...]}

  A fresh 256-bit data key (khóa dữ liệu) encrypts the payload with AES-256-GCM; the
  additional authenticated data binds the ciphertext to the record (``document_id`` and
  ``record_type``), so an envelope cannot be moved to another record. The data key is
  wrapped (RFC 3394 AES key wrap) by the key-encryption key (KEK, khóa mã hóa khóa) named
  ``kid``. One envelope per record keeps one wrap per record and one place to check.

Encrypt *before* signing: the signature covers the encrypted record, so anyone can verify a
record without the keys, and the clear values never reach the warehouse.

Blind index (chỉ mục mù)
------------------------
:func:`blind_index` is ``kid:HMAC-SHA256(index_key(kid), normalised identifier)``, the index
key derived from the KEK with HKDF. The catalog stores only these values for subject ids
(số định danh cá nhân, mã số thuế), never the identifier; a lookup computes the blind index
of the asked identifier under every key of the ring (:meth:`KeyRing.blind_indexes`), so
records written before a key rotation are still found.

Key ring
--------
:class:`KeyRing` holds the current key id and older keys (rotation: new records use the new
key; old records stay readable). It is kept in ``<home>/pii/keyring.json`` (mode 0600,
written atomically) or built from configuration (:meth:`KeyRing.from_mapping`). This module
never reads the environment.

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigurationError, SohoaError

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

#: Roles that may read personal data of every unit (see :mod:`pipeline.api.auth`).
READ_ROLES: frozenset[str] = frozenset({"steward", "reader", "admin"})

#: Replaces an issue message that quoted a personal value.
REDACTED = "[dữ liệu cá nhân đã được mã hóa / personal data encrypted]"

ENC = "A256GCM"
ALG = "A256KW"
_AAD_PREFIX = b"sohoa-pii/1"
_INDEX_INFO = b"sohoa blind index v1"
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


# --- the envelope as stored in a record ------------------------------------------------------


class PiiEnvelope(BaseModel):
    """The ``pii`` member of a record: personal data encrypted at rest (Decree 13/2023)."""

    model_config = ConfigDict(extra="forbid")

    enc: Literal["A256GCM"] = Field(description="Content encryption: AES-256-GCM")
    alg: Literal["A256KW"] = Field(description="Data key wrapping: AES-256 key wrap (RFC 3394)")
    kid: str = Field(description="Id of the key-encryption key")
    iv: str = Field(description="GCM nonce, base64url")
    ct: str = Field(description="Ciphertext with its 16-byte tag, base64url")
    wrapped_key: str = Field(description="The wrapped data key, base64url")
    fields: list[str] = Field(default_factory=list, description="Names of the encrypted fields (never values)")
    blind_index: list[str] = Field(
        default_factory=list, description="'kid:HMAC-SHA256' of each subject id (số định danh, mã số thuế)"
    )


# --- key ring ------------------------------------------------------------------------------


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_kid() -> str:
    """A fresh key id: ``k<yyyymmdd>-<8 hex>``."""
    return f"k{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"


@dataclass
class KeyRing:
    """Key-encryption keys by id; ``current_kid`` encrypts new records, all keys decrypt."""

    current_kid: str
    keys: dict[str, bytes]
    _index_keys: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current_kid not in self.keys:
            raise ConfigurationError(f"PII key ring: current key {self.current_kid!r} is not in the ring")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise ConfigurationError(f"PII key ring: key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            if ":" in kid or not kid:
                raise ConfigurationError(f"PII key ring: bad key id {kid!r}")

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(current_kid={self.current_kid!r}, kids={sorted(self.keys)!r})"

    @classmethod
    def generate(cls) -> "KeyRing":
        kid = new_kid()
        return cls(current_kid=kid, keys={kid: secrets.token_bytes(32)})

    def rotate(self) -> str:
        """Add a new key and make it current (old keys stay for decryption). Returns its id."""
        kid = new_kid()
        while kid in self.keys:
            kid = new_kid()
        self.keys[kid] = secrets.token_bytes(32)
        self.current_kid = kid
        return kid

    def key(self, kid: str) -> bytes:
        try:
            return self.keys[kid]
        except KeyError:
            raise UnknownKeyError(f"PII key {kid!r} is not in the key ring") from None

    def index_key(self, kid: str) -> bytes:
        """The blind-index HMAC key of ``kid`` (HKDF-SHA256 of the KEK)."""
        cached = self._index_keys.get(kid)
        if cached is None:
            cached = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_INFO).derive(self.key(kid))
            self._index_keys[kid] = cached
        return cached

    def blind_indexes(self, identifier: str) -> list[str]:
        """The blind index of ``identifier`` under every key (for lookups across rotations)."""
        return [blind_index(identifier, self, kid=kid) for kid in sorted(self.keys)]

    # -- persistence --------------------------------------------------------------------

    def to_mapping(self) -> dict[str, Any]:
        return {
            "version": 1,
            "current_kid": self.current_kid,
            "keys": {kid: _b64e(key) for kid, key in sorted(self.keys.items())},
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "KeyRing":
        """From configuration: ``{"current_kid": ..., "keys": {kid: base64url 32 bytes}}``."""
        try:
            keys = {str(kid): _b64d(str(value)) for kid, value in dict(data["keys"]).items()}
            return cls(current_kid=str(data["current_kid"]), keys=keys)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"PII key ring is malformed: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> "KeyRing":
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
    def load_or_create(cls, path: Path) -> "KeyRing":
        """The ring in ``path``; a new one (saved there) when the file does not exist."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
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


def subject_values(record: Mapping[str, Any]) -> list[str]:
    """The subject ids (số định danh, mã số thuế) of a record: its subject fields, and the
    personal ids and labelled tax codes in its text or any text field (:func:`identifiers_in_text`)."""
    fields = record.get("fields") or {}
    values = {str(fields[f]) for f in SUBJECT_FIELDS if fields.get(f)}
    values.update(identifiers_in_text(str(record.get("text") or "")))
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
    return b"\n".join(
        [_AAD_PREFIX, str(record.get("document_id", "")).encode(), str(record.get("record_type", "")).encode()]
    )


def is_encrypted(record: Mapping[str, Any]) -> bool:
    return bool(record.get("pii"))


def encrypt_fields(record: Mapping[str, Any], keyring: KeyRing, *, protect_text: bool = True) -> dict[str, Any]:
    """A copy of ``record`` with its personal data in one envelope under ``pii`` (module doc).

    Records of a type without PII fields and without subject ids come back unchanged (a
    shallow copy: no deep copy of the word boxes of every page for an official letter). A
    record that already has an envelope is returned unchanged (idempotent).
    ``protect_text=False`` leaves the OCR text in clear (only for types whose text holds no
    personal data)."""
    if is_encrypted(record):
        return dict(record)
    names = PII_FIELDS.get(str(record.get("record_type")), ())
    names = names + tuple(n for n in _fields_quoting_ids(record.get("fields") or {}) if n not in names)
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

    kid = keyring.current_kid
    data_key = AESGCM.generate_key(bit_length=256)
    iv = secrets.token_bytes(12)
    plaintext = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ct = AESGCM(data_key).encrypt(iv, plaintext, _aad(out))
    envelope = PiiEnvelope(
        enc=ENC,
        alg=ALG,
        kid=kid,
        iv=_b64e(iv),
        ct=_b64e(ct),
        wrapped_key=_b64e(aes_key_wrap(keyring.key(kid), data_key)),
        fields=sorted(payload["fields"]),
        blind_index=sorted({blind_index(s, keyring, kid=kid) for s in subjects}),
    )
    out["pii"] = envelope.model_dump()
    return out


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
        kek = keyring.key(env.kid)
        data_key = aes_key_unwrap(kek, _b64d(env.wrapped_key))
        plaintext = AESGCM(data_key).decrypt(_b64d(env.iv), _b64d(env.ct), _aad(out))
        payload = json.loads(plaintext)
    except UnknownKeyError:
        raise
    except (InvalidUnwrap, InvalidTag, ValueError, TypeError) as exc:
        raise PiiDecryptionError(
            f"personal data of {out.get('document_id')} does not decrypt with key {raw.get('kid')!r} "
            f"(wrong key or tampered envelope: {type(exc).__name__})"
        ) from exc

    fields = out.setdefault("fields", {})
    fields.update(payload.get("fields") or {})
    if "text" in payload:
        out["text"] = payload["text"]
    for page, saved in zip(out.get("pages") or [], payload.get("pages") or []):
        page["text"] = saved.get("text", "")
        for w, text in zip(page.get("words") or [], saved.get("words") or []):
            w["text"] = text
    for member, messages in (payload.get("issues") or {}).items():
        issues = out.get(member) or []
        for index, message in messages.items():
            if int(index) < len(issues):
                issues[int(index)]["message"] = message
    return out


def rewrap(record: Mapping[str, Any], keyring: KeyRing) -> dict[str, Any]:
    """A copy whose data key is wrapped by the current KEK (after a rotation, to retire an old
    key). The ciphertext and the blind indexes are unchanged; re-sign the record afterwards."""
    out: dict[str, Any] = copy.deepcopy(dict(record))
    raw = out.get("pii")
    if not raw or raw.get("kid") == keyring.current_kid:
        return out
    try:
        data_key = aes_key_unwrap(keyring.key(raw["kid"]), _b64d(raw["wrapped_key"]))
    except InvalidUnwrap as exc:
        raise PiiDecryptionError(f"data key of {out.get('document_id')} does not unwrap") from exc
    raw["wrapped_key"] = _b64e(aes_key_wrap(keyring.key(keyring.current_kid), data_key))
    raw["kid"] = keyring.current_kid
    return out


def blind_indexes_of(record: Mapping[str, Any], keyring: KeyRing | None = None) -> list[str]:
    """The subject blind indexes of a record: from its envelope, else computed with ``keyring``
    from clear subject ids (records written before encryption); empty without either."""
    env = record.get("pii") or {}
    if env.get("blind_index"):
        return sorted(env["blind_index"])
    if keyring is None:
        return []
    return sorted({blind_index(s, keyring) for s in subject_values(record)})


__all__ = [
    "PII_FIELDS",
    "SUBJECT_FIELDS",
    "KeyRing",
    "PiiEnvelope",
    "PiiError",
    "PiiAccessDenied",
    "PiiDecryptionError",
    "UnknownKeyError",
    "encrypt_fields",
    "decrypt_fields",
    "rewrap",
    "blind_index",
    "blind_indexes_of",
    "can_read_pii",
    "keyring_path",
    "normalize_identifier",
]
