"""Every endpoint of the app refuses callers without a valid key, and a unit key never reaches
another unit's documents. The routes are enumerated from ``app.routes``, so a new endpoint
that forgets its key check fails here."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pipeline.service.api.app import PUBLIC_PATHS, create_app
from test_api import DOSSIER_A, UNIT_A, PendingExecutor, env, png_page, upload, worst_record  # noqa: F401 - env is a fixture

WRONG_KEYS = {
    "no key": {},
    "unknown key": {"Authorization": "Bearer sohoa_0123456789ab_" + "A" * 43},
    "malformed key": {"X-API-Key": "not-a-key"},
    "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
}

#: JSON bodies that would be valid, so that only the key decides.
BODIES = {
    ("POST", "/api/v1/documents/{document_id}/corrections"): {"fields": {"place": "Hà Nội"}, "reason": "thử"},
    ("POST", "/api/v1/keys"): {"unit": UNIT_A, "role": "reader"},
    ("POST", "/api/v1/lookup"): {"number": "1"},
}

#: Routes whose resource belongs to one unit (a document, a dossier).
UNIT_SCOPED = re.compile(r"\{document_id\}|\{dossier_code\}")


@pytest.fixture(scope="module")
def app_and_doc(env):
    app = create_app(env.settings, executor=PendingExecutor(), keys=env.keys)
    record = worst_record(env.warehouse, env.signer, unit=UNIT_A)
    return app, record["document_id"]


def api_routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in PUBLIC_PATHS:
            out.extend((method, route.path) for method in sorted(route.methods))
    return out


def concrete(path: str, document_id: str) -> str:
    return (path.replace("{document_id}", document_id).replace("{dossier_code}", DOSSIER_A)
            .replace("{page}", "1").replace("{key_id}", "0123456789ab"))


def call(client, method: str, path: str, document_id: str, headers: dict[str, str]):
    body = BODIES.get((method, path))
    url = concrete(path, document_id)
    if method == "POST" and path.endswith("/documents") and "{dossier_code}" in path:
        return client.post(url, headers=headers, files=[("files", ("a.png", _tiny_png(), "image/png"))])
    return client.request(method, url, headers=headers, json=body)


def test_the_route_table_is_what_this_test_knows(app_and_doc):
    app, _ = app_and_doc
    routes = set(api_routes(app))
    assert ("POST", "/api/v1/dossiers/{dossier_code}/documents") in routes
    assert ("GET", "/api/v1/documents/{document_id}/pages/{page}.jpg") in routes
    assert len(routes) >= 14


@pytest.mark.parametrize("who", list(WRONG_KEYS))
def test_every_endpoint_needs_a_valid_key(app_and_doc, who):
    app, doc = app_and_doc
    with TestClient(app) as client:
        for method, path in api_routes(app):
            resp = call(client, method, path, doc, WRONG_KEYS[who])
            assert resp.status_code == 401, f"{method} {path} with {who}: {resp.status_code} {resp.text[:200]}"
            assert resp.headers.get("www-authenticate") == "Bearer"


def test_a_revoked_key_is_refused(app_and_doc, env):
    app, _ = app_and_doc
    stored, token = env.keys.create(UNIT_A, "admin")
    with TestClient(app) as client:
        assert client.get("/api/v1/me", headers={"X-API-Key": token}).status_code == 200
        env.keys.revoke(stored.key_id)
        assert client.get("/api/v1/me", headers={"X-API-Key": token}).status_code == 401


def test_another_units_key_never_reaches_a_units_resources(app_and_doc, env):
    app, doc = app_and_doc
    with TestClient(app) as client:
        assert upload(client, env, [("hồ sơ.png", _tiny_png())]).status_code == 202  # unit A's dossier exists
        checked = 0
        for method, path in api_routes(app):
            if not UNIT_SCOPED.search(path):
                continue
            resp = call(client, method, path, doc, env.headers("unit_b"))
            assert resp.status_code in (403, 404), f"{method} {path}: unit B got {resp.status_code}"
            if method == "GET":
                assert resp.status_code == 404, f"{method} {path}: existence of unit A's resource leaked"
            checked += 1
        assert checked >= 5
        # unit A itself reaches them
        for path in (f"/api/v1/documents/{doc}", f"/api/v1/documents/{doc}/pages/1.jpg",
                     f"/api/v1/documents/{doc}/versions", f"/api/v1/dossiers/{DOSSIER_A}"):
            assert client.get(path, headers=env.headers("unit_a")).status_code == 200, path


def test_roles_are_enforced(app_and_doc, env):
    app, doc = app_and_doc
    forbidden = {
        "unit_a": ["/api/v1/review/queue", "/api/v1/lookup?number=1", "/api/v1/dashboard", "/api/v1/audit", "/api/v1/keys"],
        "reader": ["/api/v1/review/queue", "/api/v1/dashboard", f"/api/v1/dossiers/{DOSSIER_A}"],
        "steward": ["/api/v1/lookup?number=1", "/api/v1/dashboard.csv", "/api/v1/keys"],
    }
    with TestClient(app) as client:
        for who, paths in forbidden.items():
            for path in paths:
                assert client.get(path, headers=env.headers(who)).status_code == 403, (who, path)
        for who in ("reader", "steward"):
            resp = upload(client, env, [("x.png", _tiny_png())], who=who)
            assert resp.status_code == 403, who
        resp = client.post(f"/api/v1/documents/{doc}/corrections", headers=env.headers("unit_a"),
                           json={"fields": {}, "reason": "x"})
        assert resp.status_code == 403


def _tiny_png() -> bytes:
    return png_page("Tờ khai")
