/* sohoa review desk (bàn hiệu đính): queue worst first, search, the page image with the evidence
 * boxes of every field and the crop where the selected field was read (zoomable), every field of
 * the record type (empty ones too) editable — dates dd/mm/yyyy, lists as list editors —, history
 * of versions, a conflict dialog that keeps the steward's edits. Keyboard and mouse alike. */
"use strict";

const DEFAULT_REASON = "Hiệu đính theo bản quét";
const state = {
  queue: [], doc: null, specs: {}, rows: [], sel: 0,
  edits: {},          // field -> corrected value (ISO dates, arrays for lists)
  accepted: new Set(),
  editing: null, page: null, images: {}, crops: {}, zoom: 1, saving: false,
};
const $ = (id) => document.getElementById(id);

/* --- values ------------------------------------------------------------------------------- */

const kindOf = (name) => (state.specs[name] && state.specs[name].kind) || (Array.isArray(state.doc.fields[name]) ? "list" : "text");
const labelOf = (name) => (state.specs[name] && state.specs[name].label) || name;
const current = (name) => (name in state.edits ? state.edits[name] : state.doc.fields[name]);
const isEmpty = (v) => v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
const itemText = (x) => (x && typeof x === "object" ? (x.text || JSON.stringify(x)) : String(x));

function display(name, v) {
  if (isEmpty(v)) return null;
  if (Array.isArray(v)) return v.map(itemText);
  if (kindOf(name) === "date") return sohoa.date(v);
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

/* --- queue and search ----------------------------------------------------------------------- */

function docButton(item, onOpen) {
  const conf = item.min_confidence === null || item.min_confidence === undefined ? "—" : Math.round(item.min_confidence * 100) + "%";
  const bits = [];
  if (item.status_label) bits.push(item.status_label);
  if (item.number) bits.push("số " + item.number);
  if (item.date) bits.push(sohoa.date(item.date));
  if (item.issues !== undefined && !item.status_label) bits.push(item.issues + " vấn đề · tin cậy thấp nhất " + conf);
  if (item.unit) bits.push(sohoa.unitName(item.unit));
  const li = sohoa.el("li", { "data-id": item.document_id });
  const btn = sohoa.el("button", { type: "button", class: "docitem" },
    sohoa.el("span", { class: "name", text: item.source_file || item.document_id.slice(0, 12) }),
    sohoa.el("span", { class: "meta", text: bits.join(" · ") }));
  btn.addEventListener("click", () => onOpen(item.document_id));
  li.append(btn);
  return li;
}

async function loadQueue() {
  const data = await sohoa.api("/api/v1/review/queue");
  state.queue = data.documents;
  $("queue-count").textContent = "(" + data.count + ")";
  $("queue").replaceChildren(...state.queue.map((item) => docButton(item, openDocument)));
  markCurrent();
  return state.queue;
}

function markCurrent() {
  for (const li of document.querySelectorAll(".doclist li")) {
    const on = !!state.doc && li.dataset.id === state.doc.document_id;
    li.classList.toggle("current", on);
    const b = li.querySelector("button");
    if (b) { if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current"); }
  }
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) { $("search-results").classList.add("hidden"); return; }
  try {
    const data = await sohoa.api("/api/v1/review/search?q=" + encodeURIComponent(q));
    $("search-count").textContent = "(" + data.count + ")";
    $("search-list").replaceChildren(...data.documents.map((item) => docButton(item, openDocument)));
    if (!data.count) $("search-list").append(sohoa.el("li", { class: "muted", text: "Không tìm thấy hồ sơ nào." }));
    $("search-results").classList.remove("hidden");
    markCurrent();
  } catch (e) { sohoa.toast("Không tìm được: " + e.message); }
}

/* --- document ------------------------------------------------------------------------------- */

async function openDocument(id, { keepEdits = false } = {}) {
  const doc = await sohoa.api("/api/v1/documents/" + id);
  if (!doc.fields) { sohoa.toast("Tài liệu " + id.slice(0, 12) + " chưa có bản ghi (" + doc.status + ")."); return; }
  const edits = keepEdits ? state.edits : {};
  const accepted = keepEdits ? state.accepted : new Set();
  if (!state.doc || state.doc.document_id !== id) {
    for (const url of Object.values(state.images)) URL.revokeObjectURL(url);
    for (const url of Object.values(state.crops)) URL.revokeObjectURL(url);
    state.images = {}; state.crops = {};
  } else {
    for (const url of Object.values(state.crops)) URL.revokeObjectURL(url);
    state.crops = {};
  }
  Object.assign(state, { doc, edits, accepted, editing: null, page: null });
  state.specs = {};
  for (const s of doc.field_specs || []) state.specs[s.name] = s;
  const names = (doc.field_specs || []).map((s) => s.name);
  for (const f of Object.keys(doc.fields)) if (!names.includes(f)) names.push(f);
  for (const f of doc.flagged_fields) if (!names.includes(f)) names.push(f);
  state.rows = names;
  const firstFlagged = names.findIndex((n) => doc.flagged_fields.includes(n));
  state.sel = firstFlagged >= 0 ? firstFlagged : 0;
  $("doc-title").textContent = (doc.source_file || id.slice(0, 12)) + " · phiên bản " + doc.version;
  const badge = $("doc-status");
  badge.className = "badge " + doc.status;
  badge.textContent = doc.status_label || doc.status;
  const meta = [doc.record_type_label];
  if (doc.dossier) meta.push("hồ sơ " + doc.dossier);
  if (doc.unit) meta.push(sohoa.unitName(doc.unit));
  meta.push(doc.signed ? "đã ký số " + sohoa.date(doc.signed_at) : "chưa ký số");
  $("doc-meta").textContent = meta.filter(Boolean).join(" · ");
  if (!keepEdits) { $("reason").value = ""; $("save-status").textContent = ""; }
  document.body.dataset.document = id;
  document.body.dataset.version = doc.version;
  const url = new URL(location.href);
  url.searchParams.set("doc", id);
  history.replaceState(null, "", url);
  markCurrent();
  renderFields();
  await select(state.sel);
  loadHistory();
}

function issuesOf(name) {
  const prefix = labelOf(name) + ": ";  // the row names the field already
  return (state.doc.issues || []).filter((i) => i.field === name).map((i) => {
    const msg = i.message_vi || i.message;
    return [i.source, msg.startsWith(prefix) ? msg.charAt(prefix.length).toUpperCase() + msg.slice(prefix.length + 1) : msg];
  });
}

function renderValue(name, cell) {
  const v = current(name);
  const shown = display(name, v);
  if (shown === null) cell.append(sohoa.el("span", { class: "text empty", text: "(trống)" }));
  else if (Array.isArray(shown)) cell.append(sohoa.el("ul", { class: "text items" }, ...shown.map((t) => sohoa.el("li", { text: t }))));
  else cell.append(sohoa.el("span", { class: "text", text: shown }));
}

function listEditor(name, value) {
  const box = sohoa.el("div", { class: "listedit", role: "group", "aria-label": labelOf(name) });
  const items = sohoa.el("ol", {});
  const add = (text) => {
    const n = items.children.length + 1;
    const input = sohoa.el("input", { type: "text", "aria-label": labelOf(name) + " — dòng " + n });
    input.value = text;
    const del = sohoa.el("button", { type: "button", class: "small", text: "Xóa", "aria-label": "Xóa dòng " + n });
    const li = sohoa.el("li", {}, input, del);
    del.addEventListener("click", () => { li.remove(); const first = items.querySelector("input"); if (first) first.focus(); });
    items.append(li);
    return input;
  };
  for (const t of (value || []).map(itemText)) add(t);
  const more = sohoa.el("button", { type: "button", class: "small", text: "+ Thêm dòng", "data-add": "1" });
  more.addEventListener("click", () => add("").focus());
  const done = sohoa.el("button", { type: "button", class: "small primary", text: "Xong" });
  done.addEventListener("click", commitEdit);
  box.append(items, sohoa.el("div", { class: "row" }, more, done));
  if (!items.children.length) add("");
  return box;
}

function renderFields() {
  const body = $("fields");
  body.replaceChildren();
  state.rows.forEach((name, idx) => {
    const spec = state.specs[name] || {};
    const tr = sohoa.el("tr", { "data-field": name, "data-index": String(idx), "data-kind": kindOf(name) });
    const nameCell = sohoa.el("th", { scope: "row", class: "name" },
      sohoa.el("span", { class: "label", text: labelOf(name) }),
      spec.required ? sohoa.el("span", { class: "req", text: " bắt buộc" }) : null);
    const valueCell = sohoa.el("td", { class: "value" });
    if (state.editing === name) {
      const v = current(name);
      const kind = kindOf(name);
      if (kind === "list" || kind === "objects") valueCell.append(listEditor(name, v));
      else {
        const input = sohoa.el("input", { type: "text", "aria-label": labelOf(name) + (kind === "date" ? " (ngày/tháng/năm)" : "") });
        if (kind === "date") { input.placeholder = "dd/mm/yyyy"; input.inputMode = "numeric"; input.value = isEmpty(v) ? "" : sohoa.date(v); }
        else input.value = isEmpty(v) ? "" : String(v);
        valueCell.append(input, sohoa.el("span", { class: "issue invalid", id: "edit-error", role: "alert" }));
      }
    } else renderValue(name, valueCell);
    for (const [kind, msg] of issuesOf(name)) valueCell.append(sohoa.el("span", { class: "issue " + kind, text: msg }));
    const conf = state.doc.field_confidence[name];
    const confCell = sohoa.el("td", { class: "conf", text: conf === undefined ? "" : Math.round(conf * 100) + "%" });
    if (conf !== undefined && conf < 0.8) confCell.classList.add("low");
    const editBtn = sohoa.el("button", { type: "button", class: "small edit", text: state.editing === name ? "Đang sửa" : "Sửa",
      "aria-label": "Sửa " + labelOf(name), disabled: state.editing === name });
    editBtn.addEventListener("click", (ev) => { ev.stopPropagation(); state.sel = idx; startEdit(); select(idx); });
    tr.append(nameCell, valueCell, confCell, sohoa.el("td", { class: "actions" }, editBtn));
    tr.classList.toggle("flagged", state.doc.flagged_fields.includes(name));
    tr.classList.toggle("missing", (state.doc.required_missing || []).includes(name) && isEmpty(current(name)));
    tr.classList.toggle("edited", name in state.edits);
    tr.classList.toggle("accepted", state.accepted.has(name));
    tr.classList.toggle("selected", idx === state.sel);
    tr.addEventListener("click", () => { if (!state.editing) select(idx); });
    tr.addEventListener("focusin", () => { if (!state.editing && state.sel !== idx) select(idx); });
    body.append(tr);
  });
  const input = body.querySelector("tr.selected input, input");
  if (input && state.editing) { input.focus(); if (input.select) input.select(); }
}

async function select(idx) {
  if (!state.rows.length) return;
  state.sel = Math.max(0, Math.min(state.rows.length - 1, idx));
  for (const tr of $("fields").children) tr.classList.toggle("selected", Number(tr.dataset.index) === state.sel);
  const row = $("fields").children[state.sel];
  if (row) {
    row.scrollIntoView({ block: "nearest" });
    // focus follows the selection inside the table (Enter then edits the selected field)
    const active = document.activeElement;
    if (!state.editing && (active === document.body || $("fields").contains(active)) && !row.contains(active)) {
      const btn = row.querySelector("button.edit");
      if (btn) btn.focus({ preventScroll: true });
    }
  }
  const name = state.rows[state.sel];
  const ev = state.doc.field_evidence[name];
  const page = (ev && ev.page) || state.page || 1;
  if (page !== state.page) await showPage(page);
  else drawOverlay();
  await showCrop(name);
}

/* --- page image, evidence boxes, crop, zoom ----------------------------------------------- */

async function blobUrl(path) {
  const resp = await sohoa.api(path, { raw: true });
  return URL.createObjectURL(await resp.blob());
}

async function showPage(n) {
  const geometry = state.doc.pages.find((p) => p.page === n);
  state.page = n;
  $("pagenav").textContent = state.doc.page_count ? "Trang " + n + " / " + state.doc.page_count : "Không có ảnh trang";
  const img = $("page");
  if (!geometry) { img.removeAttribute("src"); drawOverlay(); return; }
  if (!state.images[n]) {
    try { state.images[n] = await blobUrl("/api/v1/documents/" + state.doc.document_id + "/pages/" + n + ".jpg"); }
    catch (e) { sohoa.toast("Không tải được ảnh trang " + n + ": " + e.message); }
  }
  if (state.images[n]) img.src = state.images[n];
  $("overlay").setAttribute("viewBox", "0 0 " + geometry.width + " " + geometry.height);
  drawOverlay();
}

async function showCrop(name) {
  const ev = state.doc.field_evidence[name];
  const fig = $("crop");
  if (!ev || !(ev.boxes || []).length) {
    fig.classList.add("hidden");
    document.body.dataset.crop = "";
    return;
  }
  const key = state.doc.document_id + "/" + name;
  if (!state.crops[key]) {
    try { state.crops[key] = await blobUrl("/api/v1/documents/" + state.doc.document_id + "/fields/" + encodeURIComponent(name) + "/crop.jpg"); }
    catch (e) { fig.classList.add("hidden"); return; }
  }
  if (state.rows[state.sel] !== name) return; // the selection moved on meanwhile
  const img = $("crop-img");
  img.src = state.crops[key];
  const hand = ev.method === "handwriting";
  img.alt = "Vùng ảnh của trường " + labelOf(name) + (hand ? " (ô viết tay)" : "");
  $("crop-caption").textContent = "Vùng đọc: " + labelOf(name) + (hand ? " — ô viết tay, nhập theo ảnh" : "") + " · trang " + (ev.page || 1);
  fig.classList.remove("hidden");
  document.body.dataset.crop = name;
  applyZoom();
}

function drawOverlay() {
  const svg = $("overlay");
  svg.replaceChildren();
  const selected = state.rows[state.sel];
  for (const [name, ev] of Object.entries(state.doc.field_evidence)) {
    if ((ev.page || 1) !== state.page) continue;
    for (const [x0, y0, x1, y1] of ev.boxes || []) {
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("x", x0); r.setAttribute("y", y0);
      r.setAttribute("width", Math.max(1, x1 - x0)); r.setAttribute("height", Math.max(1, y1 - y0));
      r.setAttribute("data-field", name);
      if (state.doc.flagged_fields.includes(name)) r.classList.add("flagged");
      if (name === selected) r.classList.add("selected");
      svg.append(r);
    }
  }
  const sel = svg.querySelector("rect.selected");
  if (sel) svg.append(sel);
}

function applyZoom() {
  $("pagewrap").style.width = Math.round(state.zoom * 100) + "%";
  const crop = $("crop-img");
  crop.style.width = crop.naturalWidth ? Math.round(Math.min(crop.naturalWidth * state.zoom, crop.naturalWidth * 4)) + "px" : "";
  $("zoom-level").textContent = Math.round(state.zoom * 100) + "%";
  document.body.dataset.zoom = String(state.zoom);
}
function zoom(factor) {
  state.zoom = factor === null ? 1 : Math.max(0.5, Math.min(4, Math.round(state.zoom * factor * 100) / 100));
  applyZoom();
}

/* --- editing and saving --------------------------------------------------------------------- */

function startEdit() {
  if (!state.doc) return;
  state.editing = state.rows[state.sel];
  renderFields();
}

function sameValue(a, b) { return JSON.stringify(isEmpty(a) ? null : a) === JSON.stringify(isEmpty(b) ? null : b); }

function commitEdit() {
  const name = state.editing;
  if (!name) return;
  const row = $("fields").querySelector('tr[data-field="' + CSS.escape(name) + '"]');
  const kind = kindOf(name);
  let value;
  if (kind === "list" || kind === "objects") {
    const texts = [...row.querySelectorAll(".listedit input")].map((i) => i.value.trim()).filter(Boolean);
    if (kind === "objects") {
      const before = state.doc.fields[name] || [];
      value = texts.map((t) => before.find((o) => o && o.text === t) || { text: t });
    } else value = texts;
  } else {
    const raw = row.querySelector("input").value.trim();
    if (kind === "date" && raw) {
      value = sohoa.parseDate(raw);
      if (value === null) {
        $("edit-error").textContent = "Ngày '" + raw + "' không hợp lệ: nhập theo dạng ngày/tháng/năm, ví dụ 19/03/2024.";
        row.querySelector("input").focus();
        return;
      }
    } else value = raw === "" ? null : raw;
  }
  if (sameValue(value, state.doc.fields[name])) {
    delete state.edits[name];
    state.accepted.add(name); // confirmed as read
  } else {
    state.edits[name] = value;
    state.accepted.delete(name);
  }
  state.editing = null;
  renderFields();
  const btn = $("fields").querySelector('tr[data-field="' + CSS.escape(name) + '"] button.edit');
  if (btn) btn.focus();
}

function cancelEdit() {
  const name = state.editing;
  state.editing = null;
  renderFields();
  const btn = name && $("fields").querySelector('tr[data-field="' + CSS.escape(name) + '"] button.edit');
  if (btn) btn.focus();
}

function acceptField() {
  if (!state.doc) return;
  const name = state.rows[state.sel];
  if (state.accepted.has(name)) state.accepted.delete(name);
  else { state.accepted.add(name); delete state.edits[name]; }
  renderFields();
  select(state.sel + 1);
}

async function save() {
  if (state.editing) commitEdit();
  if (state.editing || state.saving || !state.doc) return;
  if (!Object.keys(state.edits).length && !state.accepted.size) { sohoa.toast("Chưa có thay đổi nào để lưu."); return; }
  state.saving = true;
  $("save").disabled = true;
  const status = $("save-status");
  status.className = "save-status";
  status.textContent = "Đang lưu và ký số…";
  try {
    const result = await sohoa.api("/api/v1/documents/" + state.doc.document_id + "/corrections", {
      method: "POST",
      body: { fields: state.edits, accepted: [...state.accepted], reason: $("reason").value.trim() || DEFAULT_REASON,
              expected_version: state.doc.version },
    });
    document.body.dataset.saved = result.document_id + "@" + result.version;
    await openDocument(result.document_id); // stays on this record: the steward moves on with "Hồ sơ sau"
    status.className = "save-status ok";
    status.textContent = "Đã lưu phiên bản " + result.version + " — " + (result.status_label || result.status) + ". Bấm “Hồ sơ sau” để sang hồ sơ khác.";
    sohoa.toast("Đã lưu phiên bản " + result.version + ", đã ký số.");
    loadQueue();
  } catch (e) {
    if (e.status === 409) {
      status.className = "save-status bad";
      status.textContent = "Chưa lưu: hồ sơ đã có phiên bản mới hơn.";
      showConflict(e.message);
    }
    else { status.className = "save-status bad"; status.textContent = "Không lưu được: " + e.message; }
  } finally {
    state.saving = false;
    $("save").disabled = false;
  }
}

function showConflict(message) {
  $("conflict-text").textContent = message;
  $("conflict-edits").replaceChildren(...Object.entries(state.edits).map(([k, v]) =>
    sohoa.el("li", { text: labelOf(k) + ": " + (display(k, v) === null ? "(trống)" : [].concat(display(k, v)).join("; ")) })));
  const dlg = $("conflict");
  if (!dlg.open) dlg.showModal();
  $("conflict-reload").focus();
  document.body.dataset.conflict = "1";
}

async function reloadAfterConflict(keep) {
  $("conflict").close();
  document.body.dataset.conflict = "";
  await openDocument(state.doc.document_id, { keepEdits: keep });
  const status = $("save-status");
  status.className = "save-status";
  status.textContent = keep ? "Đã tải phiên bản " + state.doc.version + "; sửa đổi của bạn được giữ (✎): kiểm tra rồi bấm Lưu." : "Đã tải phiên bản " + state.doc.version + ".";
  $("save").focus();
}

async function nextDocument() {
  const queue = await loadQueue();
  if (!queue.length) { sohoa.toast("Hàng đợi trống."); return; }
  const at = state.doc ? queue.findIndex((q) => q.document_id === state.doc.document_id) : -1;
  await openDocument(queue[(at + 1) % queue.length].document_id);
}

/* --- history -------------------------------------------------------------------------------- */

const ACTIONS = { digitized: "Số hóa", corrected: "Hiệu đính", resigned: "Ký lại" };

async function loadHistory() {
  const id = state.doc.document_id;
  const list = $("history-list");
  try {
    const data = await sohoa.api("/api/v1/documents/" + id + "/history");
    if (!state.doc || state.doc.document_id !== id) return;
    list.replaceChildren(...data.versions.slice().reverse().map((v) => {
      const sig = v.signature.valid === true ? "chữ ký số hợp lệ" : v.signature.valid === false ? "chữ ký số KHÔNG hợp lệ" : "chưa kiểm tra chữ ký";
      const li = sohoa.el("li", { "data-version": String(v.version) },
        sohoa.el("div", { class: "head", text: "Phiên bản " + v.version + " · " + (ACTIONS[v.action] || v.action || "") + " · " + sohoa.date(v.at) }),
        sohoa.el("div", { class: "meta", text: "Người thực hiện: " + (v.by_label || v.by || "—") + " · " + (v.status_label || "") }),
        v.reason ? sohoa.el("div", { class: "meta", text: "Lý do: " + v.reason }) : null,
        sohoa.el("div", { class: "sig " + (v.signature.valid ? "ok" : "bad"), text: sig + (v.signed_at ? " (ký " + sohoa.date(v.signed_at) + ")" : "") }));
      if (v.changes.length) {
        li.append(sohoa.el("ul", { class: "changes" }, ...v.changes.map((c) => sohoa.el("li", {
          text: c.label + ": " + fmtPlain(c.field, c.before) + " → " + fmtPlain(c.field, c.after) }))));
      }
      return li;
    }));
    document.body.dataset.history = String(data.versions.length);
  } catch (e) {
    list.replaceChildren(sohoa.el("li", { class: "muted", text: "Không tải được lịch sử: " + e.message }));
  }
}
function fmtPlain(name, v) {
  const d = display(name, v);
  return d === null ? "(trống)" : [].concat(d).join("; ");
}

/* --- keyboard and buttons ------------------------------------------------------------------- */

function onKey(ev) {
  if ($("desk").classList.contains("hidden") || $("conflict").open) return;
  const inField = ["INPUT", "TEXTAREA", "SELECT"].includes(ev.target.tagName);
  if (ev.key === "/" && !inField && !state.editing) { ev.preventDefault(); $("search-q").focus(); return; }
  if (!state.doc) return;
  const ctrlS = (ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "s";
  if (ctrlS) { ev.preventDefault(); save(); return; }
  if (state.editing) {
    if (ev.key === "Enter" && ev.target.tagName === "INPUT") { ev.preventDefault(); commitEdit(); }
    else if (ev.key === "Escape") { ev.preventDefault(); cancelEdit(); }
    return;
  }
  const tag = ev.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
    if (ev.key === "Escape") { ev.preventDefault(); ev.target.blur(); }
    else if (ev.key === "Enter" && ev.target === $("reason")) { ev.preventDefault(); ev.target.blur(); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "Enter" && tag === "BUTTON") return; // the button's own action
  const actions = {
    ArrowDown: () => select(state.sel + 1), j: () => select(state.sel + 1),
    ArrowUp: () => select(state.sel - 1), k: () => select(state.sel - 1),
    Enter: startEdit, a: acceptField, s: save, n: nextDocument,
    r: () => $("reason").focus(), "/": () => $("search-q").focus(),
    "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8),
  };
  const action = actions[ev.key];
  if (action) { ev.preventDefault(); action(); }
}

document.addEventListener("keydown", onKey);
$("save").addEventListener("click", save);
$("accept").addEventListener("click", acceptField);
$("next").addEventListener("click", nextDocument);
$("zoom-in").addEventListener("click", () => zoom(1.25));
$("zoom-out").addEventListener("click", () => zoom(0.8));
$("zoom-fit").addEventListener("click", () => zoom(null));
$("crop-img").addEventListener("load", () => { applyZoom(); document.body.dataset.cropLoaded = document.body.dataset.crop || ""; });
$("page").addEventListener("load", () => { document.body.dataset.pageLoaded = "1"; });
$("search-form").addEventListener("submit", search);
$("conflict-reload").addEventListener("click", () => reloadAfterConflict(true));
$("conflict-discard").addEventListener("click", () => reloadAfterConflict(false));
$("conflict").addEventListener("cancel", (ev) => { ev.preventDefault(); reloadAfterConflict(true); });
$("history-toggle").addEventListener("click", () => {
  const h = $("history");
  h.classList.toggle("hidden");
  $("history-toggle").setAttribute("aria-expanded", String(!h.classList.contains("hidden")));
});

sohoa.login(["steward", "admin"], async () => {
  $("desk").classList.remove("hidden");
  const queue = await loadQueue();
  const wanted = new URLSearchParams(location.search).get("doc");
  if (wanted && /^[0-9a-f]{64}$/.test(wanted)) {
    try { await openDocument(wanted); } catch (e) { sohoa.toast("Không mở được hồ sơ: " + e.message); }
  } else if (queue.length) await openDocument(queue[0].document_id);
  else $("doc-title").textContent = "Hàng đợi trống — tìm hồ sơ để mở";
  document.body.dataset.ready = "1";
});
