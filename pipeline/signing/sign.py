"""Sign stage (ký số): records and searchable PDFs signed through the remote CSC signer.

A record is signed as a detached signature over its canonical JSON (RFC 8785, JCS): the
``signature`` block is filled first with everything but ``value`` (algorithm, digest, the
certificate chain, the time), the SHA-256 of the canonical record *including that block
without* ``value`` is authorised (SCAL2: the SAD is bound to that hash) and signed with
``signatures/signHash``. So the time and the certificate chain are covered too, and any
changed byte of the stored record breaks verification (:mod:`pipeline.signing.verify`).

The searchable PDF gets a PAdES signature (B-T with the signer's RFC 3161 time-stamp
service when one is configured, else B-B): pyHanko builds it, :class:`RemoteSigner` — the one
CSC client, for records and PDFs — signs its hash (:mod:`pipeline.signing.pades`).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, overload

import httpx
import rfc8785

from pipeline.embedded.signer.algorithms import ALGORITHM_NAMES, ECDSA_OIDS, HASHES, OID_RSASSA_PSS, pss_params
from pipeline.records.record import Record
from pipeline.runtime.config import SignerSettings
from pipeline.runtime.errors import SignerUnavailableError, SigningError
from pipeline.signing.pades import sign_pdf

SIGNATURE_FORMAT = "sohoa-jcs-detached/1"
HASH_OID = HASHES["sha256"][0]


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a JSON value: a record's JSON object (what is stored and what is
    signed; of the model: :func:`pipeline.records.record.record_bytes`) or one of its members."""
    return rfc8785.dumps(value)  # any JSON value; rfc8785 raises on others


def _member_order(key: str) -> bytes:
    return key.encode("utf-16-be")  # RFC 8785 §3.2.3: members sorted by their UTF-16 code units


def assemble(members: dict[str, bytes]) -> bytes:
    """The canonical JSON of an object from the canonical JSON of each of its members:
    ``assemble({k: canonical_bytes(v) for k, v in d.items()}) == canonical_bytes(d)``. Lets the
    signer canonicalise each member of a record once, not three times (part digests, the
    signing input, the stored bytes): the word boxes make that ~0.15 s a document."""
    return b"{" + b",".join(rfc8785.dumps(k) + b":" + members[k] for k in sorted(members, key=_member_order)) + b"}"


def canonical_members(record: Mapping[str, Any]) -> dict[str, bytes]:
    """The canonical JSON of each top-level member of a record but its ``signature``: computed
    once, it serves the part digests, the signing input and the stored bytes (:func:`assemble`)."""
    return {key: canonical_bytes(value) for key, value in record.items() if key != "signature"}


def _signature_without_value(record: Mapping[str, Any]) -> dict[str, Any]:
    sig = dict(record.get("signature") or {})
    sig.pop("value", None)
    sig.pop("digest", None)
    return sig


def signing_input(record: Mapping[str, Any], members: dict[str, bytes] | None = None) -> bytes:
    """The bytes a record signature covers: the record without ``signature.value`` and
    ``signature.digest`` (the SHA-256 of these bytes, kept for display). ``members``: the
    record's :func:`canonical_members`, when the caller has them already."""
    members = canonical_members(record) if members is None else members
    return assemble({**members, "signature": canonical_bytes(_signature_without_value(record))})


def part_digests(record: Mapping[str, Any], members: dict[str, bytes] | None = None) -> dict[str, str]:
    """SHA-256 of the canonical JSON of each top-level member (JSON pointer → hex), so that
    verification can name the part of a record that changed after signing. ``members``: the
    record's :func:`canonical_members`, when the caller has them already."""
    members = canonical_members(record) if members is None else members
    return {f"/{key}": hashlib.sha256(members[key]).hexdigest() for key in sorted(members)}


class RemoteSigner:
    """Client of the CSC signing service (``auth/login`` → ``credentials/authorize`` → ``signHash``).

    Thread-safe; one per worker process (see :mod:`pipeline.runtime.clients`). Connection failures and
    5xx answers are retried by the one retry layer (:mod:`pipeline.runtime.retry`, ``retry_budget_s``),
    then raised as :class:`SignerUnavailableError` (transient); refusals by the service are
    :class:`SigningError`.
    """

    def __init__(self, settings: SignerSettings):
        self.settings = settings
        self._http = httpx.Client(base_url=settings.url.rstrip("/"), timeout=settings.timeout_s)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._credential_id: str | None = settings.credential_id
        self._info: dict[str, Any] | None = None

    # --- transport ----------------------------------------------------------------------

    def _retry_policy(self):
        from pipeline.runtime.retry import RetryPolicy  # deferred: loads stamina

        return RetryPolicy(
            budget_s=self.settings.retry_budget_s,
            attempts=self.settings.retry_attempts,
            wait_initial_s=self.settings.retry_initial_delay_s,
        )

    def _post(self, path: str, body: dict | None, *, auth: bool = True) -> dict[str, Any]:
        """One CSC request. Unreachable, or a 5xx: :class:`SignerUnavailableError`, retried by
        the one retry layer (:func:`pipeline.runtime.retry.retry`, the signer's budget); a 401 logs in
        again at once within the same try (a restarted signer forgot the token); any other 4xx is
        a :class:`SigningError`, never retried (a wrong PIN must not be tried again)."""
        from pipeline.runtime.retry import retry  # deferred: loads stamina

        def attempt() -> dict[str, Any]:
            for relogin in (False, True):
                headers = {}
                if auth:
                    headers["Authorization"] = f"Bearer {self._ensure_token()}"
                try:
                    resp = self._http.post(f"/csc/v2/{path}", json=body or {}, headers=headers)
                except httpx.TransportError as exc:
                    with self._lock:
                        self._token = None  # a restarted signer has forgotten our token
                    raise SignerUnavailableError(f"signer at {self.settings.url} unreachable: {exc}") from exc
                if resp.status_code == 401 and auth and not relogin:
                    with self._lock:
                        self._token = None
                    continue
                if resp.status_code >= 500:
                    raise SignerUnavailableError(f"signer error {resp.status_code} on {path}")
                if resp.status_code >= 400:
                    try:
                        err = resp.json()
                        message = f"{err.get('error')}: {err.get('error_description')}"
                    except ValueError:
                        message = resp.text[:200]
                    raise SigningError(f"signer refused {path} ({resp.status_code}) — {message}")
                return resp.json() if resp.content else {}
            raise AssertionError("unreachable")

        return retry(attempt, self._retry_policy(), what=f"signer {path}")

    def _ensure_token(self) -> str:
        with self._lock:
            if self._token:
                return self._token
        try:
            resp = self._http.post(
                "/csc/v2/auth/login", json={}, auth=(self.settings.username, self.settings.password)
            )
        except httpx.TransportError as exc:
            raise SignerUnavailableError(f"signer at {self.settings.url} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise SigningError(f"signer login refused ({resp.status_code}): {resp.text[:200]}")
        token = resp.json()["access_token"]
        with self._lock:
            self._token = token
        return token

    # --- credential -------------------------------------------------------------------

    @property
    def credential_id(self) -> str:
        if self._credential_id is None:
            ids = self._post("credentials/list", {"onlyValid": True}).get("credentialIDs") or []
            if not ids:
                raise SigningError("the signer lists no valid credential for this user")
            self._credential_id = ids[0]
        return self._credential_id

    def credential_info(self, *, fresh: bool = False) -> dict[str, Any]:
        """The credential's CSC info (cached; ``fresh``: asked again, e.g. for its key's status)."""
        if self._info is None or fresh:
            self._info = self._post(
                "credentials/info", {"credentialID": self.credential_id, "certificates": "chain", "certInfo": True}
            )
        return self._info

    def certificate_chain(self) -> list[str]:
        """Base64 DER certificates, signer first."""
        return list(self.credential_info()["cert"]["certificates"])

    def signature_algorithm(self) -> str:
        """The algorithm this client signs with (a record's ``signature.algorithm``)."""
        return self._sign_algo()[0]

    def _sign_algo(self) -> tuple[str, str, dict[str, Any]]:
        """(signature algorithm name, CSC signAlgo OID, extra request params) for SHA-256."""
        algos = self.credential_info()["key"]["algo"]
        if ECDSA_OIDS["sha256"] in algos:
            return ALGORITHM_NAMES[("ecdsa", "sha256")], ECDSA_OIDS["sha256"], {}
        params = base64.b64encode(pss_params("sha256", 32).dump()).decode()
        return ALGORITHM_NAMES[("pss", "sha256")], OID_RSASSA_PSS, {"signAlgoParams": params}

    # --- signing ----------------------------------------------------------------------

    def sign_digests(self, digests: list[bytes]) -> list[bytes]:
        """Authorise (PIN, SAD bound to these SHA-256 digests) and sign them in one transaction."""
        if not digests:
            return []
        hashes = [base64.b64encode(d).decode() for d in digests]
        auth = self._post(
            "credentials/authorize",
            {
                "credentialID": self.credential_id,
                "numSignatures": len(hashes),
                "hashes": hashes,
                "hashAlgorithmOID": HASH_OID,
                "PIN": self.settings.pin,
            },
        )
        _, sign_algo, extra = self._sign_algo()
        body = {
            "credentialID": self.credential_id,
            "SAD": auth["SAD"],
            "hashes": hashes,
            "hashAlgorithmOID": HASH_OID,
            "signAlgo": sign_algo,
            **extra,
        }
        result = self._post("signatures/signHash", body)
        return [base64.b64decode(s) for s in result["signatures"]]

    @overload
    def sign_record(self, record: Record) -> Record: ...
    @overload
    def sign_record(self, record: Mapping[str, Any]) -> dict[str, Any]: ...
    def sign_record(self, record: Record | Mapping[str, Any]) -> Record | dict[str, Any]:
        """A copy of ``record`` with its ``signature`` block filled (see module docstring)."""
        return self.sign_record_bytes(record)[0]

    @overload
    def sign_record_bytes(self, record: Record) -> tuple[Record, bytes]: ...
    @overload
    def sign_record_bytes(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]: ...
    def sign_record_bytes(self, record: Record | Mapping[str, Any]) -> tuple[Record | dict[str, Any], bytes]:
        """The signed record and its canonical bytes, to store.

        ``record``: the model (what the pipeline stores: its JSON form, :meth:`Record.to_json`, is
        what is signed, and the bytes are exactly :func:`~pipeline.records.record.record_bytes` of
        the signed model), or a record's JSON object (a stored record; a shallow copy with its
        ``signature`` block comes back: the two share their members, change neither afterwards)."""
        if isinstance(record, Record):
            signed_json, data = self._sign_json(record.to_json())
            return record.model_copy(update={"signature": signed_json["signature"]}), data
        return self._sign_json(record)

    def _sign_json(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        signed = dict(record)
        signed.pop("signature", None)
        members = canonical_members(signed)
        algorithm, _, _ = self._sign_algo()
        info = self.credential_info()
        signed["signature"] = {
            "format": SIGNATURE_FORMAT,
            "canonicalization": "RFC 8785",
            "digest_algorithm": "sha256",
            "algorithm": algorithm,
            "credential_id": self.credential_id,
            "signer": info["cert"].get("subjectDN"),
            "signed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "certificate_chain": self.certificate_chain(),
            "parts": part_digests(signed, members),
        }
        digest = hashlib.sha256(signing_input(signed, members)).digest()
        (value,) = self.sign_digests([digest])
        signed["signature"]["digest"] = digest.hex()
        signed["signature"]["value"] = base64.b64encode(value).decode()
        return signed, assemble({**members, "signature": canonical_bytes(signed["signature"])})

    def sign_pdf(
        self,
        pdf: bytes,
        *,
        signer_name: str,
        reason: str,
        location: str,
        visible: bool = False,
    ) -> bytes:
        """PAdES-sign a PDF through the CSC service (B-T when a TSA is configured): pyHanko
        builds the signature, this client signs its hash (:func:`pipeline.signing.pades.sign_pdf`)."""
        from pipeline.runtime.retry import retry  # deferred: loads stamina

        def attempt() -> bytes:
            return sign_pdf(self, pdf, signer_name=signer_name, reason=reason, location=location, visible=visible)

        # the whole PAdES transaction is the boundary: a transient failure signs it again
        return retry(attempt, self._retry_policy(), what="signer PAdES")

    def close(self) -> None:
        self._http.close()
