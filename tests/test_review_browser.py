"""The review desk in real Chromium over real HTTP: a steward logs in, the worst document
opens first, ``date`` and ``number`` are corrected with the keyboard and saved; the warehouse
then holds a signed version 2 whose signature verifies, with version 1 kept."""

from __future__ import annotations

import json

import pytest

from browser_support import ARTIFACTS, browser, server  # noqa: F401 - browser, server are fixtures
from test_api import env, mild_record, worst_record  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.browser

def _select_field(page, name: str) -> None:
    """Move the selection with j/k until ``name`` is selected."""
    order = page.eval_on_selector_all("#fields tr", "rows => rows.map(r => r.dataset.field)")
    current = page.get_attribute("#fields tr.selected", "data-field")
    key = "j" if order.index(name) > order.index(current) else "k"
    for _ in range(len(order)):
        if page.get_attribute("#fields tr.selected", "data-field") == name:
            return
        page.keyboard.press(key)
    raise AssertionError(f"could not select {name}")


def _edit(page, name: str, value: str) -> None:
    _select_field(page, name)
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#fields tr[data-field="{name}"] input')
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#fields tr.edited[data-field="{name}"]')


def test_steward_corrects_the_worst_document_with_the_keyboard(env, server, browser, tmp_path):
    from pipeline.signing.verify import verify_record_bytes

    mild = mild_record(env.warehouse, env.signer)
    worst = worst_record(env.warehouse, env.signer, number="125/UBND-VF")  # OCR misread P as F
    doc = worst["document_id"]

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server + "/review")
    page.fill("#key", env.tokens["steward"])
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)

    # the worst document (most issues) is open, its page drawn with the evidence boxes
    assert page.get_attribute("body", "data-document") == doc
    queue = page.eval_on_selector_all("#queue li", "items => items.map(i => i.dataset.id)")
    assert queue.index(doc) < queue.index(mild["document_id"])
    page.wait_for_function("document.getElementById('page').naturalWidth > 0")
    assert page.locator("#overlay rect").count() >= 4
    assert "Ủy ban nhân dân huyện Đông Anh" in page.inner_text("#fields")  # Vietnamese renders as text

    _edit(page, "date", "2023-02-28")
    _edit(page, "number", "125/UBND-VP")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-desk-before-save.png"), full_page=True)
    page.keyboard.press("Control+s")
    page.wait_for_selector(f"body[data-saved='{doc}@2']", timeout=20_000)

    shot = ARTIFACTS / "review-desk-after-save.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not errors, errors

    data = env.warehouse.get_record_bytes(doc)
    record = json.loads(data)
    assert record["version"] == 2 and record["status"] == "ok"
    assert record["fields"]["date"] == "2023-02-28" and record["fields"]["number"] == "125/UBND-VP"
    entry = record["history"][-1]
    steward = next(k for k in env.keys.list() if k.role == "steward")
    assert entry["action"] == "corrected" and entry["by"] == f"steward:{steward.key_id}"
    assert entry["changed_fields"] == ["date", "number"]
    report = verify_record_bytes(data, [env.settings.signer.trust_anchor.read_bytes()])
    assert report.ok, report.problems
    versions = env.warehouse.record_versions(doc)
    assert len(versions) == 2
    assert sorted(json.loads(env.warehouse.get_record_bytes(doc, v.version_id))["version"] for v in versions) == [1, 2]
    page.close()


def test_admin_dashboard_draws_indicators(env, server, browser):
    """Unit names instead of codes, a grand total, unit and date filters (dd/mm/yyyy), the trend
    over months, auto-refresh; axe-core finds no serious violation."""
    import httpx

    from browser_support import axe_violations, open_page, shot

    mild_record(env.warehouse, env.signer)
    assert httpx.put(f"{server}/api/v1/units/000.00.01.H53", json={"name": "UBND xã Tiên Dương"},
                     headers=env.headers("admin")).status_code == 200
    page = open_page(browser, server + "/dashboard?refresh=1", None, width=1366, height=768)
    page.fill("#key", env.tokens["admin"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart svg rect", timeout=20_000)
    assert page.locator("#rows tr").count() >= 1
    assert "Tiếp nhận" in page.inner_text("#legend")
    rows = page.inner_text("#rows")
    assert "UBND xã Tiên Dương" in rows and "(none)" not in rows
    assert "Tổng cộng" in page.inner_text("#totals") and " all" not in page.inner_text("#totals")
    assert page.locator("#trend svg circle").count() >= 3
    assert "UBND xã Tiên Dương" in page.inner_text("#unit")
    # auto-refresh (every second here, 60 s by default)
    page.wait_for_selector("body[data-refreshed='3']", timeout=30_000)
    shot(page, "dashboard")
    violations = axe_violations(page)
    assert not violations, violations
    # a unit filter, and a date range that holds nothing yet
    page.select_option("#unit", "000.00.01.H53")
    page.wait_for_selector("#rows tr")
    units = page.eval_on_selector_all("#rows tr td:first-child", "cells => cells.map(c => c.textContent)")
    assert set(units) == {"UBND xã Tiên Dương"}
    # on a phone: stacked, nothing wider than the screen (tables and charts scroll inside)
    phone = open_page(browser, server + "/dashboard", env.tokens["admin"], width=390, height=844, ready="#chart svg rect")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 400
    shot(phone, "dashboard-phone-390")
    violations = axe_violations(phone)
    assert not violations, violations
    phone.context.close()
    page.fill("#from", "01/01/2999")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#rows:empty", state="attached")
    assert page.inner_text("#cards").count("0") >= 4
    assert not page.errors, page.errors
    page.context.close()
