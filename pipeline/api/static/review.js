/* sohoa review desk (bàn hiệu đính): queue worst first, page image with the evidence boxes of
 * every field, keyboard-driven corrections. Vanilla JS; text is always set with textContent. */
"use strict";

const DEFAULT_REASON = "Hiệu đính theo bản quét";
const state = {
  queue: [],        // queue items, worst first
  doc: null,        // record view of the open document
  rows: [],         // field names shown, in order
  sel: 0,           // index of the selected row
  edits: {},        // field -> corrected value
  accepted: new Set(),
  editing: null,    // field being edited
  page: null,       // page number shown
  images: {},       // page number -> object URL
  saving: false,
};
const $ = (id) => document.getElementById(id);

function fmtValue(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? (x.text || JSON.stringify(x)) : String(x))).join("; ") || "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
const editable = (name) => {
  const v = state.doc.fields[name];
  return name in state.doc.fields && (v === null || typeof v !== "object");
};

/* --- queue ----------------------------------------------------------------------------- */

async function loadQueue() {
  const data = await sohoa.api("/api/v1/review/queue");
  state.queue = data.documents;
  $("queue-count").textContent = "(" + data.count + ")";
  const list = $("queue");
  list.replaceChildren();
  for (const item of state.queue) {
    const conf = item.min_confidence === null ? "—" : Math.round(item.min_confidence * 100) + "%";
    const li = sohoa.el("li", { "data-id": item.document_id },
      sohoa.el("div", { class: "name", text: item.source_file || item.document_id.slice(0, 12) }),
      sohoa.el("div", { class: "meta", text: item.issues + " vấn đề · tin cậy thấp nhất " + conf + (item.unit ? " · " + item.unit : "") }));
    if (state.doc && state.doc.document_id === item.document_id) li.classList.add("current");
    li.addEventListener("click", () => openDocument(item.document_id));
    list.append(li);
  }
  return state.queue;
}

function markCurrentInQueue() {
  for (const li of $("queue").children) li.classList.toggle("current", state.doc && li.dataset.id === state.doc.document_id);
}

/* --- document -------------------------------------------------------------------------- */

async function openDocument(id) {
  const doc = await sohoa.api("/api/v1/documents/" + id);
  for (const url of Object.values(state.images)) URL.revokeObjectURL(url);
  Object.assign(state, { doc, edits: {}, accepted: new Set(), editing: null, page: null, images: {} });
  const names = Object.keys(doc.fields);
  for (const f of doc.flagged_fields) if (!names.includes(f)) names.push(f);
  state.rows = names;
  const firstFlagged = names.findIndex((n) => doc.flagged_fields.includes(n));
  state.sel = firstFlagged >= 0 ? firstFlagged : 0;
  $("doc-title").textContent = (doc.source_file || id.slice(0, 12)) + " · v" + doc.version;
  const badge = $("doc-status");
  badge.className = "badge " + doc.status;
  badge.textContent = doc.status;
  $("reason").value = "";
  document.body.dataset.document = id;
  document.body.dataset.version = doc.version;
  markCurrentInQueue();
  renderFields();
  await select(state.sel);
}

function issuesOf(name) {
  const out = [];
  for (const i of state.doc.validation_errors) if (i.field === name) out.push(["invalid", i.message]);
  for (const i of state.doc.review_reasons) if (i.field === name) out.push(["reason", i.message]);
  return out;
}

function renderFields() {
  const body = $("fields");
  body.replaceChildren();
  state.rows.forEach((name, idx) => {
    const tr = sohoa.el("tr", { "data-field": name, "data-index": String(idx) });
    const value = name in state.edits ? state.edits[name] : state.doc.fields[name];
    const conf = state.doc.field_confidence[name];
    const confCell = sohoa.el("td", { class: "conf", text: conf === undefined ? "" : Math.round(conf * 100) + "%" });
    if (conf !== undefined && conf < 0.8) confCell.classList.add("low");
    const valueCell = sohoa.el("td", { class: "value" });
    if (state.editing === name) {
      const input = sohoa.el("input", { type: "text", "aria-label": name });
      input.value = value === null || value === undefined ? "" : String(value);
      valueCell.append(input);
    } else {
      valueCell.append(sohoa.el("span", { class: "text", text: name in state.doc.fields || name in state.edits ? fmtValue(value) : "(toàn văn)" }));
    }
    for (const [kind, msg] of issuesOf(name)) valueCell.append(sohoa.el("span", { class: "issue " + kind, text: msg }));
    tr.append(sohoa.el("td", { class: "name", text: name }), valueCell, confCell);
    tr.classList.toggle("flagged", state.doc.flagged_fields.includes(name));
    tr.classList.toggle("edited", name in state.edits);
    tr.classList.toggle("accepted", state.accepted.has(name));
    tr.classList.toggle("selected", idx === state.sel);
    tr.addEventListener("click", () => { if (!state.editing) select(idx); });
    body.append(tr);
  });
  const input = body.querySelector("input");
  if (input) { input.focus(); input.select(); }
}

async function select(idx) {
  if (!state.rows.length) return;
  state.sel = Math.max(0, Math.min(state.rows.length - 1, idx));
  for (const tr of $("fields").children) tr.classList.toggle("selected", Number(tr.dataset.index) === state.sel);
  const row = $("fields").children[state.sel];
  if (row) row.scrollIntoView({ block: "nearest" });
  const ev = state.doc.field_evidence[state.rows[state.sel]];
  const page = (ev && ev.page) || state.page || 1;
  if (page !== state.page) await showPage(page);
  else drawOverlay();
}

/* --- page image and evidence boxes --------------------------------------------------------- */

async function showPage(n) {
  const geometry = state.doc.pages.find((p) => p.page === n);
  state.page = n;
  $("pagenav").textContent = state.doc.page_count ? "Trang " + n + " / " + state.doc.page_count : "Không có ảnh trang";
  const img = $("page");
  if (!geometry) { img.removeAttribute("src"); drawOverlay(); return; }
  if (!state.images[n]) {
    try {
      const resp = await sohoa.api("/api/v1/documents/" + state.doc.document_id + "/pages/" + n + ".jpg", { raw: true });
      state.images[n] = URL.createObjectURL(await resp.blob());
    } catch (e) {
      sohoa.toast("Không tải được ảnh trang " + n + ": " + e.message);
    }
  }
  if (state.images[n]) img.src = state.images[n];
  $("overlay").setAttribute("viewBox", "0 0 " + geometry.width + " " + geometry.height);
  drawOverlay();
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
  if (sel) svg.append(sel); // on top
}

/* --- editing and saving ---------------------------------------------------------------------- */

function startEdit() {
  const name = state.rows[state.sel];
  if (!editable(name)) { sohoa.toast("Trường " + name + " không sửa trực tiếp được; bấm a để chấp nhận."); return; }
  state.editing = name;
  renderFields();
}

function commitEdit() {
  const input = $("fields").querySelector("input");
  const name = state.editing;
  if (!input || !name) return;
  const value = input.value.trim();
  const original = state.doc.fields[name];
  if (value === (original === null || original === undefined ? "" : String(original))) {
    delete state.edits[name];
    state.accepted.add(name); // confirmed as read
  } else {
    state.edits[name] = value === "" ? null : value;
    state.accepted.delete(name);
  }
  state.editing = null;
  renderFields();
}

function cancelEdit() {
  state.editing = null;
  renderFields();
}

function acceptField() {
  const name = state.rows[state.sel];
  if (state.accepted.has(name)) state.accepted.delete(name);
  else { state.accepted.add(name); delete state.edits[name]; }
  renderFields();
  select(state.sel + 1);
}

async function save() {
  if (state.editing) commitEdit();
  if (state.saving || !state.doc) return;
  if (!Object.keys(state.edits).length && !state.accepted.size) { sohoa.toast("Chưa có thay đổi nào để lưu."); return; }
  state.saving = true;
  try {
    const result = await sohoa.api("/api/v1/documents/" + state.doc.document_id + "/corrections", {
      method: "POST",
      body: {
        fields: state.edits,
        accepted: [...state.accepted],
        reason: $("reason").value.trim() || DEFAULT_REASON,
        expected_version: state.doc.version,
      },
    });
    sohoa.toast("Đã lưu phiên bản " + result.version + " (" + result.status + "), đã ký số.");
    document.body.dataset.saved = result.document_id + "@" + result.version;
    const queue = await loadQueue();
    const next = queue.find((q) => q.document_id !== result.document_id) || queue[0];
    if (next) await openDocument(next.document_id);
    else { state.doc = null; $("fields").replaceChildren(); $("doc-title").textContent = "Hàng đợi trống"; $("overlay").replaceChildren(); $("page").removeAttribute("src"); }
  } catch (e) {
    sohoa.toast("Không lưu được: " + e.message);
  } finally {
    state.saving = false;
  }
}

async function nextDocument() {
  if (!state.queue.length) return;
  const at = state.doc ? state.queue.findIndex((q) => q.document_id === state.doc.document_id) : -1;
  await openDocument(state.queue[(at + 1) % state.queue.length].document_id);
}

/* --- keyboard ------------------------------------------------------------------------------ */

function onKey(ev) {
  if ($("desk").classList.contains("hidden") || !state.doc) return;
  const ctrlS = (ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "s";
  if (ctrlS) { ev.preventDefault(); save(); return; }
  if (state.editing) {
    if (ev.key === "Enter") { ev.preventDefault(); commitEdit(); }
    else if (ev.key === "Escape") { ev.preventDefault(); cancelEdit(); }
    return;
  }
  if (ev.target === $("reason")) {
    if (ev.key === "Escape" || ev.key === "Enter") { ev.preventDefault(); ev.target.blur(); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const actions = {
    ArrowDown: () => select(state.sel + 1), j: () => select(state.sel + 1),
    ArrowUp: () => select(state.sel - 1), k: () => select(state.sel - 1),
    Enter: startEdit, a: acceptField, s: save, n: nextDocument,
    r: () => $("reason").focus(),
  };
  const action = actions[ev.key];
  if (action) { ev.preventDefault(); action(); }
}

document.addEventListener("keydown", onKey);
sohoa.login(["steward", "admin"], async () => {
  $("desk").classList.remove("hidden");
  const queue = await loadQueue();
  if (queue.length) await openDocument(queue[0].document_id);
  else $("doc-title").textContent = "Hàng đợi trống";
  document.body.dataset.ready = "1";
});
