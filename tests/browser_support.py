"""What the browser tests share: a real uvicorn server over the app on loopback, real Chromium
(/usr/bin/chromium) through Playwright, sign-in, screenshots in tests/artifacts/ (git-ignored),
and an accessibility check with axe-core run from the file the axe-playwright-python package
ships (no network)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app):
    """The app on a real HTTP server (uvicorn, loopback); yields its base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(env):
    """The app over the test environment (real S3 and signer), its executor holding jobs."""
    from pipeline.service.api.app import create_app
    from test_api import PendingExecutor

    with serve(create_app(env.settings, executor=PendingExecutor(), keys=env.keys)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def open_page(browser, url: str, token: str | None, *, width: int = 1366, height: int = 768, ready: str = "body[data-ready='1']"):
    """A new page (its own context: its own sessionStorage) at ``url``, signed in with ``token``;
    page errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url)
    if token is not None:
        page.fill("#key", token)
        page.keyboard.press("Enter")
        page.wait_for_selector(ready, timeout=20_000)
    return page


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the page at ``impacts`` (WCAG 2 A/AA rules), run from the
    axe.min.js that axe-playwright-python ships (evaluated through the DevTools protocol: the
    page's CSP, which allows no inline script, stays on)."""
    import axe_playwright_python

    source = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    page.evaluate(source + "\n;0")
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]
