"""The review desk in real Chromium on the real server (SeaweedFS, the signer over HTTP), as a
data steward works: a record whose handwritten number the pipeline left empty (its slot's box as
evidence), whose date was misread and whose signer is missing is fixed from the crop — the
number typed, the date typed dd/mm/yyyy, the signer and recipients added — saved with the
mouse, signed ``ok``, its history shown; an ``ok`` record is found by search and corrected; two
stewards correct the same record and the second keeps their edits through the conflict dialog.
Screenshots of each step go to tests/artifacts/desk-*.png; axe-core finds no serious violation."""

from __future__ import annotations

import json
import uuid

import pytest

from browser_support import axe_violations, browser, open_page, server, shot  # noqa: F401 - browser, server are fixtures
from test_api import DOSSIER_A, admin_lines, env, make_record  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.browser


def handwritten_record(env, serial: str):
    """As the pipeline stores a Decree 30 letter whose number was written in by hand and not
    trusted: number empty, its evidence the slot's box (method handwriting) and a missing reason;
    the date read wrong (18 for 19, low confidence); no signer read."""
    lines = admin_lines("      /TB-UBND", "ngày 19 tháng 3 năm 2024", serial)
    return make_record(
        env.warehouse, env.signer, unit="000.00.01.H53", dossier=DOSSIER_A, lines=lines,
        fields={"number": None, "date": "2024-03-18", "issuer": "Ủy ban nhân dân huyện Đông Anh",
                "doc_type": "Thông báo", "place": "Đông Anh", "subject": "lịch tiếp công dân tháng 4 năm 2024",
                "signer_title": "Chủ tịch"},
        confidence={"date": 0.5, "issuer": 0.97, "subject": 0.93, "doc_type": 0.95, "place": 0.95},
        reasons=[
            {"field": "number", "kind": "missing",
             "message": "number was not found on the page (the digit recogniser reads '4?' with confidence 0.41, not enough to trust)"},
            {"field": "date", "kind": "low_confidence", "message": "date read with confidence 0.50 < 0.60"},
            {"field": "signer", "kind": "missing", "message": "signer was not found on the page"},
        ],
        evidence={"number": {"line": "number", "method": "handwriting"}},
    )


def ok_record(env, number: str, subject: str):
    return make_record(
        env.warehouse, env.signer, unit="000.00.02.H53",
        fields={"number": number, "date": "2023-11-02", "issuer": "Sở Thông tin và Truyền thông",
                "doc_type": "Quyết định", "place": "Hà Nội", "subject": subject, "signer": "Lê Thị Hoa",
                "signer_title": "Giám đốc", "recipients": ["Như Điều 3", "Lưu: VT"]},
        confidence={"number": 0.97, "date": 0.97, "issuer": 0.97, "subject": 0.95},
        lines=admin_lines(number, "ngày 02 tháng 11 năm 2023", uuid.uuid4().hex[:8]),
    )


def select_field(page, name: str) -> None:
    """Move the selection with j/k until ``name`` is selected (keyboard only)."""
    page.locator("body").focus()
    order = page.eval_on_selector_all("#fields tr", "rows => rows.map(r => r.dataset.field)")
    for _ in range(len(order) + 1):
        current = page.get_attribute("#fields tr.selected", "data-field")
        if current == name:
            return
        page.keyboard.press("j" if order.index(name) > order.index(current) else "k")
    raise AssertionError(f"could not select {name}")


def test_steward_fixes_a_handwritten_number_a_date_and_a_missing_signer(env, server, browser):
    from pipeline.signing.verify import verify_record_bytes

    record = handwritten_record(env, uuid.uuid4().hex[:8])
    doc = record["document_id"]
    assert record["status"] == "needs_review" and record["fields"]["number"] is None

    page = open_page(browser, f"{server}/review?doc={doc}", env.tokens["steward"])
    assert page.get_attribute("body", "data-document") == doc  # /review?doc=ID opens that record
    page.wait_for_selector("body[data-page-loaded='1']")
    fields = page.eval_on_selector_all("#fields tr", "rows => rows.map(r => r.dataset.field)")
    # every field of the type is shown, empty ones too, with Vietnamese labels
    for name in ("number", "doc_type", "issuer", "issuer_parent", "date", "signer", "signer_title", "recipients", "references"):
        assert name in fields
    text = page.inner_text("#fields")
    assert "Số, ký hiệu" in text and "Người ký" in text and "Nơi nhận" in text and "(trống)" in text
    assert "độ tin cậy 50 %, dưới ngưỡng 60 %" in text  # the reason in words, value and threshold
    assert "máy đoán '4?'" in text
    assert page.inner_text("#doc-status") == "Chờ hiệu đính"

    # the number: its handwritten slot is cropped, zoomable; typed with the mouse's "Sửa" button
    page.click('#fields tr[data-field="number"] button.edit')
    page.wait_for_selector("body[data-crop='number']")
    page.wait_for_selector("body[data-crop-loaded='number']")
    assert "ô viết tay" in page.inner_text("#crop-caption")
    width = page.evaluate("document.getElementById('crop-img').getBoundingClientRect().width")
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert page.evaluate("document.getElementById('crop-img').getBoundingClientRect().width") > 1.4 * width
    page.fill('#fields tr[data-field="number"] input', "46/TB-UBND")
    page.keyboard.press("Enter")
    page.wait_for_selector('#fields tr.edited[data-field="number"]')
    shot(page, "desk-1-handwritten-number-crop")

    # the date, keyboard only, as Vietnamese users write it; a day that does not exist is refused
    select_field(page, "date")
    page.keyboard.press("Enter")
    page.wait_for_selector('#fields tr[data-field="date"] input')
    page.keyboard.press("Control+A")
    page.keyboard.type("31/02/2024")
    page.keyboard.press("Enter")
    assert "không hợp lệ" in page.inner_text("#edit-error")
    page.keyboard.press("Control+A")
    page.keyboard.type("19/03/2024")
    page.keyboard.press("Enter")
    page.wait_for_selector('#fields tr.edited[data-field="date"]')
    assert "19/03/2024" in page.inner_text('#fields tr[data-field="date"]')

    # the missing signer, and the recipients through the list editor
    select_field(page, "signer")
    page.keyboard.press("Enter")
    page.wait_for_selector('#fields tr[data-field="signer"] input')
    page.keyboard.type("Nguyễn Văn Bình")
    page.keyboard.press("Enter")
    page.click('#fields tr[data-field="recipients"] button.edit')
    page.fill('#fields tr[data-field="recipients"] .listedit li:nth-child(1) input', "Như trên")
    page.click('#fields tr[data-field="recipients"] button[data-add]')
    page.keyboard.type("Lưu: VT, VP")
    page.click('#fields tr[data-field="recipients"] button.primary')
    page.wait_for_selector('#fields tr.edited[data-field="recipients"]')
    shot(page, "desk-2-before-save")

    page.click("#save")  # the visible button, not only Ctrl+S
    page.wait_for_selector(f"body[data-saved='{doc}@2']", timeout=20_000)
    page.wait_for_selector("body[data-history='2']", timeout=20_000)
    # the desk stays on the saved record (no silent jump), now ok and signed
    assert page.get_attribute("body", "data-document") == doc
    assert page.inner_text("#doc-status") == "Hợp lệ, đã ký số"
    assert "Đã lưu phiên bản 2" in page.inner_text("#save-status")
    history = page.inner_text("#history-list")
    assert "Phiên bản 2" in history and "Hiệu đính" in history and "chữ ký số hợp lệ" in history
    assert "Ngày ban hành: 18/03/2024 → 19/03/2024" in history and "Số, ký hiệu: (trống) → 46/TB-UBND" in history
    shot(page, "desk-3-saved-with-history")
    assert not page.errors, page.errors

    data = env.warehouse.get_record_bytes(doc)
    stored = json.loads(data)
    assert stored["version"] == 2 and stored["status"] == "ok"
    assert stored["fields"]["date"] == "2024-03-19" and stored["fields"]["number"] == "46/TB-UBND"
    assert stored["fields"]["signer"] == "Nguyễn Văn Bình" and stored["fields"]["recipients"] == ["Như trên", "Lưu: VT, VP"]
    assert stored["history"][-1]["changed_fields"] == ["date", "number", "recipients", "signer"]
    assert verify_record_bytes(data, [env.settings.signer.trust_anchor.read_bytes()]).ok
    page.context.close()


def test_steward_opens_an_ok_record_by_search_and_corrects_it(env, server, browser):
    number = f"{uuid.uuid4().int % 900 + 100}/QĐ-STTTT"
    record = ok_record(env, number, "ban hành quy chế số hóa hồ sơ")
    doc = record["document_id"]
    assert record["status"] == "ok"
    page = open_page(browser, f"{server}/review", env.tokens["steward"])
    assert doc not in page.eval_on_selector_all("#queue li", "items => items.map(i => i.dataset.id)")
    page.keyboard.press("/")
    page.keyboard.type(number.lower())  # case and diacritics do not matter
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#search-list li[data-id="{doc}"]')
    assert "Hợp lệ, đã ký số" in page.inner_text("#search-list")
    page.click(f'#search-list li[data-id="{doc}"] button')
    page.wait_for_selector(f"body[data-document='{doc}']")
    assert f"doc={doc}" in page.url
    page.click('#fields tr[data-field="subject"] button.edit')
    page.fill('#fields tr[data-field="subject"] input', "ban hành quy chế số hóa hồ sơ, giấy tờ")
    page.keyboard.press("Enter")
    page.fill("#reason", "Trích yếu thiếu chữ so với bản gốc")
    page.click("#save")
    page.wait_for_selector(f"body[data-saved='{doc}@2']", timeout=20_000)
    shot(page, "desk-4-ok-record-found-and-corrected")
    stored = env.warehouse.get_record(doc)
    assert stored["status"] == "ok" and stored["fields"]["subject"] == "ban hành quy chế số hóa hồ sơ, giấy tờ"
    assert stored["history"][-1]["reason"] == "Trích yếu thiếu chữ so với bản gốc"

    # by date, typed dd/mm/yyyy
    page.fill("#search-q", "02/11/2023")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#search-list li[data-id="{doc}"]')
    assert not page.errors, page.errors
    page.context.close()


def test_two_stewards_conflict_and_the_second_keeps_their_edits(env, server, browser):
    record = ok_record(env, f"{uuid.uuid4().int % 900 + 100}/QĐ-STTTT", "phê duyệt kế hoạch chuyển đổi số")
    doc = record["document_id"]
    first = open_page(browser, f"{server}/review?doc={doc}", env.tokens["steward"])
    second = open_page(browser, f"{server}/review?doc={doc}", env.tokens["admin"])

    first.click('#fields tr[data-field="subject"] button.edit')
    first.fill('#fields tr[data-field="subject"] input', "phê duyệt kế hoạch chuyển đổi số năm 2024")
    first.keyboard.press("Enter")
    first.click("#save")
    first.wait_for_selector(f"body[data-saved='{doc}@2']", timeout=20_000)

    second.click('#fields tr[data-field="signer_title"] button.edit')
    second.fill('#fields tr[data-field="signer_title"] input', "Phó Giám đốc")
    second.keyboard.press("Enter")
    second.keyboard.press("Control+s")
    second.wait_for_selector("#conflict[open]", timeout=20_000)
    assert "phiên bản 2" in second.inner_text("#conflict") and "Phó Giám đốc" in second.inner_text("#conflict-edits")
    shot(second, "desk-5-conflict-dialog")
    second.click("#conflict-reload")
    second.wait_for_selector("body[data-version='2']:not([data-conflict='1'])")
    # the other steward's correction is there, and this steward's edit is kept for re-applying
    assert "năm 2024" in second.inner_text('#fields tr[data-field="subject"]')
    assert second.locator('#fields tr.edited[data-field="signer_title"]').count() == 1
    second.click("#save")
    second.wait_for_selector(f"body[data-saved='{doc}@3']", timeout=20_000)
    stored = env.warehouse.get_record(doc)
    assert stored["version"] == 3
    assert stored["fields"]["subject"].endswith("năm 2024") and stored["fields"]["signer_title"] == "Phó Giám đốc"
    assert not first.errors and not second.errors, (first.errors, second.errors)
    first.context.close()
    second.context.close()


def test_desk_on_a_phone_and_at_1366_and_accessibility(env, server, browser):
    record = handwritten_record(env, uuid.uuid4().hex[:8])
    doc = record["document_id"]
    page = open_page(browser, f"{server}/review?doc={doc}", env.tokens["steward"], width=1366, height=768)
    page.wait_for_selector("body[data-page-loaded='1']")
    boxes = {sel: page.locator(sel).bounding_box() for sel in ("#queue-panel", "#page-panel", "#fields-panel")}
    assert all(b["width"] > 200 for b in boxes.values()), boxes
    assert boxes["#queue-panel"]["x"] < boxes["#page-panel"]["x"] < boxes["#fields-panel"]["x"]  # three columns
    shot(page, "desk-6-1366x768")
    # everything reachable by Tab: the queue's documents, each field's edit button, the save buttons
    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.className || document.activeElement.tagName"))
    assert {"docitem", "small edit", "save", "accept", "next", "zoom-in"} <= reached, reached
    violations = axe_violations(page)
    assert not violations, violations
    page.context.close()

    phone = open_page(browser, f"{server}/review?doc={doc}", env.tokens["steward"], width=390, height=844)
    phone.wait_for_selector("body[data-page-loaded='1']")
    image = phone.locator("#page").bounding_box()
    assert image["width"] > 300, image  # stacked: the image takes the phone's width, not 2 px
    assert phone.evaluate("document.documentElement.scrollWidth") <= 400
    shot(phone, "desk-7-phone-390")
    violations = axe_violations(phone)
    assert not violations, violations
    phone.context.close()
