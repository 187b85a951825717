"""Issue 22 item 1: personal data is encrypted to a PUBLIC key (envelope v2, X25519
ECDH-ES+A256KW): a writer (a Dask worker) needs only the encryption ring — the current public
key and the blind-index key — and can decrypt nothing; readers hold the private keys. Records
written the old way (envelope v1, symmetric KEK) stay readable.

The v1 vector below was made by the code before this change (``git archive`` of the commit
before issue 22, ``KeyRing.generate()`` + ``encrypt_fields``), so reading it here is a real
backward-compatibility check, not a round trip through the new code."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from pipeline.records.pii import (
    ALG,
    ALG_ECDH,
    KeyRing,
    PiiDecryptionError,
    UnknownKeyError,
    blind_index,
    decrypt_fields,
    encrypt_fields,
    keyring_path,
    rewrap,
    with_encryption_keys,
    writer_keyring,
)
from pipeline.runtime.config import Settings
from pipeline.runtime.errors import ConfigurationError

PID = "001305012345"
V1_RING = {"version": 1, "current_kid": "k20261204-7c7a7c85",
           "keys": {"k20261204-7c7a7c85": "iGr8kLbnwgG3KTi2bERl_NR1_bxdXjvRz3X4ecxSDn8"}}  # fmt: skip
V1_RECORD = {
    "document_id": "a" * 64, "record_type": "birth_certificate", "provenance": {"unit": "000.00.01.H26"},
    "fields": {"full_name": "Nguyễn Văn An", "personal_id": PID, "date_of_birth": "2020-01-02"},
    "text": "Họ tên: Nguyễn Văn An số định danh 001305012345",
    "pages": [{"text": "Nguyễn Văn An 001305012345", "words": [{"text": "Nguyễn"}, {"text": "001305012345"}]}],
    "validation_errors": [], "review_reasons": [],
}  # fmt: skip
V1_ENVELOPE = {
    "enc": "A256GCM", "alg": "A256KW", "kid": "k20261204-7c7a7c85", "iv": "AHdx74ggc1TXdEQg",
    "ct": "YhtLM2brBXyYWYm9VHoKewPsERgPwTEPa9haNfvdzSQk-DBwL9PgzDgRnUYR7zIqsrcswnSX7Mb7oHnWcUWyXOCFgLdA1kp5jKkTJU7Hx-t3ILMq8wzG7_SDsGZQWadDesgQlQ8LKKk-nwv85tFg7wE1CTSo8dMy8jJd2ZVImVLkffS7fVtyJqUa28hgxSJl49a3xm5sQCpKnd0phWxQsjCQcJd1Ty8iMK1Ce55oPJenr2jOPeviCF6myEYwXaWXfjuClUWDMpFFEXS02uMkhVcT2-IJ3ccNiktdnF-naefkzfVfdHevFzoZAEVmczG2D-asg_6-sm1rSWJvzn4afD9iZelQteJ4Ozazh5SL1rp31k2VavYjQeqgUG4pSIcahy4",
    "wrapped_key": "zrswlzLn6Up5S3kcFAcA8JAe7sbSLuYwxx1XvxbH38gIir6Zt9s6aw",
    "fields": ["date_of_birth", "full_name", "personal_id"],
    "blind_index": ["k20261204-7c7a7c85:0b85b91df500fce36544c90b0d906f499142e9a0bb169d7192080b093778dda6"],
}  # fmt: skip


def v1_encrypted() -> dict:
    rec = copy.deepcopy(V1_RECORD)
    rec["fields"] = {k: None for k in rec["fields"]}
    rec["text"] = ""
    rec["pages"] = [{"text": "", "words": [{"text": ""}, {"text": ""}]}]
    rec["pii"] = copy.deepcopy(V1_ENVELOPE)
    return rec


def test_new_records_are_encrypted_to_a_public_key_that_a_writer_cannot_use_to_read():
    full = KeyRing.generate()
    writer = KeyRing.from_json(full.encryption_ring().to_json())  # what a worker gets, through JSON
    assert not writer.can_decrypt and writer.current_kid == full.current_kid
    assert set(writer.to_mapping()["x25519"][full.current_kid]) == {"public", "index"}  # no private key

    enc = encrypt_fields(V1_RECORD, writer)
    env = enc["pii"]
    assert env["alg"] == ALG_ECDH and len(base64.urlsafe_b64decode(env["epk"] + "=")) == 32
    assert PID not in json.dumps(enc, ensure_ascii=False) and "Nguyễn" not in json.dumps(enc, ensure_ascii=False)
    # the blind index is the reader's: the catalog finds the record written by the worker
    assert env["blind_index"] == [blind_index(PID, full)] and full.blind_indexes(PID) == env["blind_index"]
    with pytest.raises(PiiDecryptionError, match="public key only"):
        decrypt_fields(enc, writer, role="admin")
    assert decrypt_fields(enc, full, role="steward") == V1_RECORD
    # a fresh ephemeral key and data key per record
    assert encrypt_fields(V1_RECORD, writer)["pii"]["epk"] != env["epk"]


def test_blind_index_key_is_not_the_decryption_key():
    """A compromised worker holds the index key: it must not open anything with it."""
    full = KeyRing.generate()
    writer = full.encryption_ring()
    enc = encrypt_fields(V1_RECORD, writer)
    kid = full.current_kid
    impostor = KeyRing(current_kid=kid, keys={kid: writer.index_keys[kid]})
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(enc, impostor, role="admin")
    assert writer.index_keys[kid] not in (full.private_keys[kid], full.public_keys[kid])


def test_tampered_or_moved_v2_envelopes_fail():
    full = KeyRing.generate()
    enc = encrypt_fields(V1_RECORD, full.encryption_ring())
    other_epk = encrypt_fields(V1_RECORD, full.encryption_ring())["pii"]["epk"]
    for member, value in (("epk", other_epk), ("alg", ALG), ("wrapped_key", V1_ENVELOPE["wrapped_key"])):
        bad = copy.deepcopy(enc)
        bad["pii"][member] = value
        with pytest.raises(PiiDecryptionError):
            decrypt_fields(bad, full, role="admin")
    moved = copy.deepcopy(enc)
    moved["document_id"] = "b" * 64
    with pytest.raises(PiiDecryptionError):
        decrypt_fields(moved, full, role="admin")
    with pytest.raises(UnknownKeyError):
        decrypt_fields(enc, KeyRing.generate(), role="admin")


def test_records_of_the_old_symmetric_envelope_stay_readable_and_move_to_the_public_key(tmp_path):
    path = keyring_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(V1_RING))
    old = v1_encrypted()

    ring = KeyRing.load(path)  # a v1 ring file as written before
    assert decrypt_fields(old, ring, role="reader") == V1_RECORD
    with pytest.raises(ConfigurationError, match="symmetric"):
        ring.encryption_ring()  # its key would have to be on every worker

    ring = KeyRing.load_or_create(path)  # the embedded deployment's ring is upgraded in place
    assert ring.current_is_public and ring.current_kid != V1_RING["current_kid"]
    reloaded = KeyRing.load(path)
    assert reloaded.current_kid == ring.current_kid and V1_RING["current_kid"] in reloaded.keys
    assert decrypt_fields(old, reloaded, role="reader") == V1_RECORD
    # lookups across the rotation: the v1 record's blind index is still among the asked ones
    assert set(V1_ENVELOPE["blind_index"]) < set(reloaded.blind_indexes(PID))

    moved = rewrap(old, reloaded)
    assert moved["pii"]["alg"] == ALG_ECDH and moved["pii"]["ct"] == V1_ENVELOPE["ct"]
    del reloaded.keys[V1_RING["current_kid"]]  # the symmetric key retired
    assert decrypt_fields(moved, reloaded, role="admin") == V1_RECORD


def test_v1_envelopes_keep_their_exact_members():
    """A record encrypted with a legacy ring (before a rotation) has no ``epk`` member at all."""
    ring = KeyRing.from_mapping(V1_RING)
    enc = encrypt_fields(V1_RECORD, ring)
    assert set(enc["pii"]) == set(V1_ENVELOPE) and enc["pii"]["alg"] == ALG


def test_settings_carry_the_encryption_ring_to_workers_and_never_show_it(tmp_path):
    path = keyring_path(tmp_path)
    full = KeyRing.load_or_create(path)
    settings = with_encryption_keys(Settings(home=tmp_path, pii_keyring=path))
    shipped = KeyRing.from_json(settings.pii_encryption)
    assert not shipped.can_decrypt and shipped.current_kid == full.current_kid
    secret = base64.urlsafe_b64encode(full.index_keys[full.current_kid]).decode().rstrip("=")
    assert secret not in repr(settings) and secret in settings.pii_encryption
    # a worker, where the ring file is not: the shipped ring; the driver, where it is: the full one
    on_worker = writer_keyring(tmp_path / "not-mounted.json", settings.pii_encryption)
    assert on_worker is not None and not on_worker.can_decrypt
    assert writer_keyring(path, settings.pii_encryption).can_decrypt
    assert writer_keyring(None, None) is None
    # a legacy ring: nothing to ship, each worker needs the file (checked at join)
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(V1_RING))
    assert with_encryption_keys(Settings(home=tmp_path, pii_keyring=legacy)).pii_encryption is None


def test_malformed_rings_are_refused_clearly(tmp_path):
    for text in ("{}", '{"current_kid": "k1", "x25519": {"k1": {"public": "AAAA"}}}', "not json"):
        with pytest.raises(ConfigurationError, match="PII key ring"):
            KeyRing.from_json(text)
    with pytest.raises(ConfigurationError, match="not found"):
        KeyRing.load(Path(tmp_path) / "missing.json")
