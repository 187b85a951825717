"""Issue 19 (8): wrong PINs and passwords are counted per user and persisted.

Ten wrong PINs of one user lock that user's use of the credential (403 ``invalid_pin`` with
Retry-After), not everyone's; wrong passwords throttle that user's logins (429); both locks
survive a restart of the signer and expire. The pipeline's client sees a typed error that the
HTTP API answers with 503. Real signer over HTTP on loopback (its own state directory)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import httpx
import pytest

from pipeline.embedded.signer.embedded import EmbeddedSigner
from pipeline.embedded.signer.keystore import StateLayout, add_user
from pipeline.runtime.errors import SigningError
from pipeline.signing.sign import RemoteSigner

SHA256_OID = "2.16.840.1.101.3.4.2.1"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    s = EmbeddedSigner(tmp_path_factory.mktemp("lockout-signer"))
    s.start()
    for name in ("alice", "bob", "carol", "dave"):
        add_user(s.state_dir, name, f"pw-{name}")
    yield s
    s.stop()


def _login(url: str, user: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/csc/v2/auth/login", json={}, auth=(user, password), timeout=10)


def _token(url: str, user: str) -> str:
    r = _login(url, user, f"pw-{user}")
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _authorize(signer: EmbeddedSigner, token: str, pin: str) -> httpx.Response:
    s = signer.settings
    body = {"credentialID": s.credential_id, "numSignatures": 1, "hashAlgorithmOID": SHA256_OID, "PIN": pin,
            "hashes": [base64.b64encode(hashlib.sha256(b"x").digest()).decode()]}  # fmt: skip
    return httpx.post(f"{s.url}/csc/v2/credentials/authorize", json=body,
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip


def _wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def _client_as(signer: EmbeddedSigner, user: str, **changes) -> RemoteSigner:
    return RemoteSigner(replace(signer.settings, username=user, password=f"pw-{user}", **changes))


def _status_for(exc):
    from pipeline.service.api.app import status_for

    return status_for(exc)


def test_wrong_pins_lock_only_that_user_and_the_lock_survives_a_restart(signer):
    pin = signer.settings.pin
    alice = _token(signer.url, "alice")
    codes = [_authorize(signer, alice, _wrong(pin)).status_code for _ in range(10)]
    assert codes[:9] == [400] * 9
    assert codes[9] == 403  # the tenth wrong PIN locks
    r = _authorize(signer, alice, pin)  # the right PIN no longer helps alice
    assert r.status_code == 403 and r.json()["error"] == "invalid_pin"
    assert "locked" in r.json()["error_description"] and int(r.headers["Retry-After"]) > 0

    # bob signs with the same credential as if nothing happened
    bob = _token(signer.url, "bob")
    assert _authorize(signer, bob, pin).status_code == 200
    bob_client = _client_as(signer, "bob")
    assert len(bob_client.sign_digests([hashlib.sha256(b"ok").digest()])) == 1

    # the pipeline's client gets a typed error the HTTP API answers with 503
    client = _client_as(signer, "alice")
    with pytest.raises(SigningError, match="locked") as info:
        client.sign_digests([hashlib.sha256(b"y").digest()])
    assert _status_for(info.value) == 503

    # the lock is on disk, with its expiry, and a restart does not lift it
    saved = json.loads((StateLayout(signer.state_dir).root / "pin-lockouts.json").read_text())
    (entry,) = [e for k, e in saved["entries"].items() if "alice" in k]
    assert entry["locked_until"] > 0
    signer.stop()
    signer.start()
    alice = _token(signer.url, "alice")
    r = _authorize(signer, alice, pin)
    assert r.status_code == 403 and "locked" in r.json()["error_description"]
    assert _authorize(signer, _token(signer.url, "bob"), pin).status_code == 200


def test_wrong_passwords_are_throttled_per_user_across_a_restart(signer):
    codes = [_login(signer.url, "carol", "wrong").status_code for _ in range(5)]
    assert codes == [401] * 5
    r = _login(signer.url, "carol", "wrong")
    assert r.status_code == 429 and r.json()["error"] == "authentication_error"
    assert int(r.headers["Retry-After"]) > 0
    r = _login(signer.url, "carol", "pw-carol")  # no more guesses tested while throttled, right or wrong
    assert r.status_code == 429

    assert _login(signer.url, "dave", "pw-dave").status_code == 200  # other users are not throttled

    with pytest.raises(SigningError) as info:
        _client_as(signer, "carol").sign_digests([hashlib.sha256(b"z").digest()])
    assert "429" in str(info.value) and _status_for(info.value) == 503

    signer.stop()
    signer.start()
    assert _login(signer.url, "carol", "pw-carol").status_code == 429
    assert _login(signer.url, "dave", "pw-dave").status_code == 200


def test_locks_expire_double_and_are_reloaded(tmp_path):
    from pipeline.embedded.signer.auth import AttemptLimiter

    now = [1_000_000.0]
    path = tmp_path / "lockouts.json"

    def limiter():
        return AttemptLimiter(path, max_failures=3, window_s=60, lockout_s=10, max_lockout_s=25, clock=lambda: now[0])

    a = limiter()
    assert a.failure("k") is None and a.failure("k") is None
    assert a.failure("k") == now[0] + 10
    assert limiter().locked_until("k") == now[0] + 10  # a new process sees the lock
    assert a.locked_until("other") is None
    now[0] += 11
    assert a.locked_until("k") is None  # expired
    a.failure("k"), a.failure("k")
    assert a.failure("k") == now[0] + 20  # the second lock lasts twice as long
    now[0] += 21
    a.failure("k"), a.failure("k")
    assert a.failure("k") == now[0] + 25  # capped
    now[0] += 26
    a.success("k")
    assert limiter().failures("k") == 0 and limiter().locked_until("k") is None
    # failures further apart than the window start a new count
    a.failure("w"), a.failure("w")
    now[0] += 61
    assert a.failure("w") is None and a.failures("w") == 1


def test_an_administrator_lifts_the_locks_of_a_running_signer(signer):
    from pipeline.embedded.signer.admin import main as signer_admin

    pin = signer.settings.pin
    assert _authorize(signer, _token(signer.url, "alice"), pin).status_code == 403  # still locked (tests above)
    assert _login(signer.url, "carol", "pw-carol").status_code == 429
    for user in ("alice", "carol"):
        assert signer_admin(["unlock", "--state", str(signer.state_dir), user]) == 0
    assert _authorize(signer, _token(signer.url, "alice"), pin).status_code == 200
    assert _login(signer.url, "carol", "pw-carol").status_code == 200


def test_uploads_answer_503_while_the_pipelines_pin_is_locked(signer, s3_server, tmp_path):
    """Issue 19.8: a receipt promises a signed record, so the API refuses uploads (503, with
    the lock's end) while the signer's credential is locked for the pipeline's user, and takes
    them again once the lock is lifted."""
    from types import SimpleNamespace

    from fastapi.testclient import TestClient

    from pipeline.embedded.signer.admin import unlock_user
    from pipeline.service.api.app import create_app
    from test_api import DOSSIER_A, PendingExecutor, make_env, png_page, upload

    add_user(signer.state_dir, "erin", "pw-erin")
    as_erin = SimpleNamespace(settings=replace(signer.settings, username="erin", password="pw-erin"))
    env = make_env(s3_server, as_erin, tmp_path)
    erin = _token(signer.url, "erin")
    for _ in range(10):
        _authorize(signer, erin, _wrong(signer.settings.pin))
    with TestClient(create_app(env.settings, executor=PendingExecutor(), keys=env.keys),
                    raise_server_exceptions=False) as client:  # fmt: skip
        locked = upload(client, env, [("a.png", png_page("Số: 1/UBND-VP"))], dossier=DOSSIER_A)
        assert locked.status_code == 503, locked.text
        assert "locked" in locked.json()["detail"] and locked.headers.get("retry-after")
        assert unlock_user(signer.state_dir, "erin") >= 1
        again = upload(client, env, [("a.png", png_page("Số: 1/UBND-VP"))], dossier=DOSSIER_A)
        assert again.status_code == 202, again.text
