/* sohoa reception page (tiếp nhận) for one-stop officers: a unit key, a dossier code, scans
 * dropped or picked (a phone's camera too), upload progress, a printable receipt (giấy biên nhận)
 * with the document ids, and the unit's dossiers with Vietnamese statuses. */
"use strict";

const STATUS = { ok: "Đã số hóa, đã ký số", needs_review: "Chờ hiệu đính", failed: "Lỗi xử lý", processing: "Đang xử lý", unknown: "Không rõ" };
const $ = (id) => document.getElementById(id);
const chosen = [];  // File objects to send
let me = null;

function renderFiles() {
  $("filelist").replaceChildren(...chosen.map((f, i) => {
    const del = sohoa.el("button", { type: "button", class: "small", text: "Bỏ", "aria-label": "Bỏ tệp " + f.name });
    del.addEventListener("click", () => { chosen.splice(i, 1); renderFiles(); });
    return sohoa.el("li", {}, sohoa.el("span", { text: f.name + " · " + (f.size / 1e6).toFixed(2) + " MB" }), del);
  }));
  document.body.dataset.files = String(chosen.length);
}
function addFiles(list) { for (const f of list) chosen.push(f); renderFiles(); }

function newCode() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  const agency = /^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$/.test(me.unit) ? me.unit : "000.00.00.H00";
  const seq = String(Math.floor(Math.random() * 9000) + 1000);
  return agency + "-" + String(d.getFullYear()).slice(2) + p(d.getMonth() + 1) + p(d.getDate()) + "-" + seq;
}

function send(ev) {
  ev.preventDefault();
  const code = $("dossier").value.trim();
  const status = $("upload-status");
  status.className = "save-status";
  if (!/^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}-\d{6}-\d{4}$/.test(code)) {
    status.className = "save-status bad";
    status.textContent = "Mã hồ sơ chưa đúng dạng 000.00.01.H53-230101-0001.";
    $("dossier").focus();
    return;
  }
  if (!chosen.length) { status.className = "save-status bad"; status.textContent = "Chưa chọn tệp nào."; return; }
  const form = new FormData();
  for (const f of chosen) form.append("files", f, f.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/v1/dossiers/" + encodeURIComponent(code) + "/documents");
  xhr.setRequestHeader("Authorization", "Bearer " + sohoa.key());
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) {
      $("progress").value = Math.round((100 * e.loaded) / e.total);
      status.textContent = "Đang gửi… " + $("progress").value + "%";
    }
  });
  xhr.addEventListener("load", () => {
    $("send").disabled = false;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 202) {
      $("progress").value = 100;
      status.className = "save-status ok";
      status.textContent = "Đã nhận " + body.documents.length + " tài liệu của hồ sơ " + body.dossier_code + ".";
      chosen.length = 0;
      renderFiles();
      showReceipt(body);
      loadDossiers();
    } else {
      status.className = "save-status bad";
      status.textContent = "Không gửi được (" + xhr.status + "): " + (typeof body.detail === "string" ? body.detail.charAt(0).toUpperCase() + body.detail.slice(1) : "lỗi máy chủ");
    }
  });
  xhr.addEventListener("error", () => {
    $("send").disabled = false;
    status.className = "save-status bad";
    status.textContent = "Mất kết nối khi gửi: thử lại.";
  });
  $("send").disabled = true;
  $("progress").value = 0;
  status.textContent = "Đang gửi…";
  xhr.send(form);
}

function showReceipt(r) {
  $("receipt-unit").textContent = sohoa.unitName(r.unit);
  $("receipt-code").textContent = r.dossier_code;
  $("receipt-time").textContent = sohoa.date(r.received_at);
  $("receipt-docs").replaceChildren(...r.documents.map((d, i) => sohoa.el("tr", { "data-id": d.document_id },
    sohoa.el("td", { text: String(i + 1) }), sohoa.el("td", { text: d.file_name }), sohoa.el("td", { text: String(d.pages) }),
    sohoa.el("td", {}, sohoa.el("code", { text: d.document_id })),
    sohoa.el("td", { text: (STATUS[d.status] || d.status) + (d.already_digitized ? " (đã số hóa trước đây)" : "") }))));
  $("receipt").classList.remove("hidden");
  document.body.dataset.receipt = r.dossier_code;
  $("print").focus();
}

async function loadDossiers() {
  try {
    const data = await sohoa.api("/api/v1/dossiers");
    const rows = data.dossiers.map((d) => {
      const states = Object.entries(d.statuses).map(([k, n]) => (STATUS[k] || k) + ": " + n).join(", ");
      const open = sohoa.el("button", { type: "button", class: "small", text: "Mở", "aria-label": "Mở hồ sơ " + d.dossier_code });
      open.addEventListener("click", () => openDossier(d.dossier_code));
      return sohoa.el("tr", { "data-code": d.dossier_code }, sohoa.el("td", { class: "mono", text: d.dossier_code }),
        sohoa.el("td", { text: sohoa.date(d.received_at) }), sohoa.el("td", { text: String(d.documents) }),
        sohoa.el("td", { text: states }), sohoa.el("td", {}, open));
    });
    if (!rows.length) rows.push(sohoa.el("tr", {}, sohoa.el("td", { colspan: "5", text: "Chưa có hồ sơ nào." })));
    $("dossiers").replaceChildren(...rows);
    document.body.dataset.dossiers = String(data.dossiers.length);
  } catch (e) { sohoa.toast("Không tải được danh sách hồ sơ: " + e.message); }
}

async function openDossier(code) {
  try {
    const data = await sohoa.api("/api/v1/dossiers/" + encodeURIComponent(code));
    $("detail-title").textContent = "Hồ sơ " + code + (data.complete ? " — đã xử lý xong" : " — đang xử lý");
    $("detail-docs").replaceChildren(...data.documents.map((d) => sohoa.el("tr", { "data-id": d.document_id },
      sohoa.el("td", { text: d.file_name }), sohoa.el("td", { text: sohoa.date(d.received_at) }),
      sohoa.el("td", { text: String(d.pages ?? "") }), sohoa.el("td", { text: STATUS[d.status] || d.status }),
      sohoa.el("td", {}, sohoa.el("code", { class: "mono", text: d.document_id })))));
    $("detail").classList.remove("hidden");
    document.body.dataset.open = code;
    const url = new URL(location.href);
    url.searchParams.set("dossier", code);
    history.replaceState(null, "", url);
    $("detail-title").scrollIntoView({ block: "nearest" });
  } catch (e) { sohoa.toast("Không mở được hồ sơ " + code + ": " + e.message); }
}

const drop = $("drop");
for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer && e.dataTransfer.files) addFiles(e.dataTransfer.files); });
$("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
$("clear").addEventListener("click", () => { chosen.length = 0; renderFiles(); });
$("upload-form").addEventListener("submit", send);
$("new-code").addEventListener("click", () => { $("dossier").value = newCode(); });
$("print").addEventListener("click", () => window.print());
$("reload").addEventListener("click", loadDossiers);

sohoa.login(["unit"], async (who) => {
  me = who;
  $("reception").classList.remove("hidden");
  await loadDossiers();
  const wanted = new URLSearchParams(location.search).get("dossier");
  if (wanted) { $("dossier").value = wanted; await openDossier(wanted); }
  document.body.dataset.ready = "1";
});
