"""The reception page (Tiếp nhận) in real Chromium on the real server, as a one-stop officer works:
signs in with the unit's key, enters the dossier code (mã hồ sơ), drops two scans (a drag and
drop of files, as from the desktop or a phone's gallery) and picks one more, sees the upload's
progress and a printable receipt (giấy biên nhận) with the document ids, then the unit's dossiers
with Vietnamese statuses, and opens one. A status link opened in a browser leads to this page,
not to a 401 in English; a steward's key is pointed to the desk. Screenshots go to
tests/artifacts/reception-*.png; axe-core finds no serious violation."""

from __future__ import annotations

import base64
import hashlib

import pytest

from browser_support import axe_violations, browser, open_page, server, shot  # noqa: F401 - browser, server are fixtures
from test_api import UNIT_A, env, png_page  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.browser

DOSSIER = f"{UNIT_A}-240319-0042"


def drop_files(page, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drag and drop ``files`` onto ``selector`` (a DataTransfer holding File objects)."""
    payload = [{"name": n, "b64": base64.b64encode(d).decode(), "type": t} for n, d, t in files]
    transfer = page.evaluate_handle(
        """(files) => { const dt = new DataTransfer();
             for (const f of files) {
               const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
               dt.items.add(new File([bytes], f.name, { type: f.type }));
             }
             return dt; }""",
        payload,
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_officer_uploads_a_dossier_and_prints_its_receipt(env, server, browser, tmp_path):
    one, two = png_page("Đơn đề nghị cấp bản sao"), png_page("Giấy ủy quyền")
    three = png_page("Bản chụp bằng điện thoại")
    photo = tmp_path / "anh-chup.png"
    photo.write_bytes(three)

    import httpx

    named = httpx.put(f"{server}/api/v1/units/{UNIT_A}", json={"name": "UBND xã Tiên Dương"}, headers=env.headers("admin"))
    assert named.status_code == 200, named.text
    page = open_page(browser, f"{server}/upload", env.tokens["unit_a"])
    assert "Bộ phận một cửa · UBND xã Tiên Dương" in page.inner_text("#who")
    page.fill("#dossier", DOSSIER)
    drop_files(page, "#drop", [("don-de-nghi.png", one, "image/png"), ("uy-quyen.png", two, "image/png")])
    page.set_input_files("#files", str(photo))  # the file picker (a phone offers its camera here)
    page.wait_for_selector("body[data-files='3']")
    shot(page, "reception-1-files-chosen")
    page.click("#send")
    page.wait_for_selector(f"body[data-receipt='{DOSSIER}']", timeout=30_000)
    assert page.evaluate("document.getElementById('progress').value") == 100
    ids = page.eval_on_selector_all("#receipt-docs tr", "rows => rows.map(r => r.dataset.id)")
    assert ids == [hashlib.sha256(d).hexdigest() for d in (one, two, three)]
    receipt = page.inner_text("#receipt")
    assert "GIẤY BIÊN NHẬN HỒ SƠ" in receipt and DOSSIER in receipt and "Đang xử lý" in receipt
    assert "UBND xã Tiên Dương" in receipt
    assert all(i in receipt for i in ids)  # the full document ids are printed
    shot(page, "reception-2-receipt")
    page.emulate_media(media="print")
    assert not page.locator("#upload-form").is_visible() and page.locator("#receipt").is_visible()
    shot(page, "reception-3-receipt-print")
    page.emulate_media(media="screen")

    # the unit's dossiers with Vietnamese statuses; open one
    page.wait_for_selector(f'#dossiers tr[data-code="{DOSSIER}"]')
    assert "Đang xử lý: 3" in page.inner_text(f'#dossiers tr[data-code="{DOSSIER}"]')
    page.click(f'#dossiers tr[data-code="{DOSSIER}"] button')
    page.wait_for_selector(f"body[data-open='{DOSSIER}']")
    assert page.locator("#detail-docs tr").count() == 3
    shot(page, "reception-4-dossier-open")
    for d in (one, two, three):
        assert env.warehouse.has_original(hashlib.sha256(d).hexdigest())

    # a refused upload says why, in Vietnamese
    page.fill("#dossier", "H53-1")
    drop_files(page, "#drop", [("x.png", one, "image/png")])
    page.click("#send")
    assert "Mã hồ sơ chưa đúng dạng" in page.inner_text("#upload-status")
    assert not page.errors, page.errors
    violations = axe_violations(page)
    assert not violations, violations
    page.context.close()

    # on a phone: stacked, nothing wider than the screen
    phone = open_page(browser, f"{server}/upload?dossier={DOSSIER}", env.tokens["unit_a"], width=390, height=844)
    phone.wait_for_selector(f"body[data-open='{DOSSIER}']")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 400
    shot(phone, "reception-5-phone-390")
    violations = axe_violations(phone)
    assert not violations, violations
    phone.context.close()


def test_a_status_link_in_a_browser_leads_to_the_reception_page(env, server, browser):
    page = open_page(browser, f"{server}/api/v1/dossiers/{DOSSIER}", None)
    assert page.url.endswith(f"/upload?dossier={DOSSIER}")
    assert page.locator("#login").is_visible() and "Khóa API của đơn vị" in page.inner_text("#login")
    page.context.close()

    steward = open_page(browser, f"{server}/upload", None)
    steward.fill("#key", env.tokens["steward"])
    steward.keyboard.press("Enter")
    steward.wait_for_selector("#login-error a")
    assert "Cán bộ hiệu đính" in steward.inner_text("#login-error")
    assert steward.get_attribute("#login-error a", "href") == "/review"
    steward.context.close()

    unit = open_page(browser, f"{server}/review", None)
    unit.fill("#key", env.tokens["unit_a"])
    unit.keyboard.press("Enter")
    unit.wait_for_selector("#login-error a")
    assert unit.get_attribute("#login-error a", "href") == "/upload"  # an officer's key on the desk: pointed home
    unit.context.close()


def test_api_reference_renders_offline(env, server, browser):
    page = open_page(browser, f"{server}/docs", None)
    page.wait_for_selector(".op")
    assert "/api/v1/dossiers/{dossier_code}/documents" in page.inner_text("#ops")
    assert not page.errors, page.errors
    page.context.close()
