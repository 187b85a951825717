/* sohoa: shared helpers of the pages (review desk, reception, dashboard, API docs). Vanilla JS,
 * no dependencies; text is always set with textContent. */
"use strict";

const KEY_STORE = "sohoa.apiKey";

const ROLE_LABELS = { unit: "Bộ phận một cửa", steward: "Cán bộ hiệu đính", reader: "Khai thác", admin: "Quản trị" };
/* Where each role works: a key of another role is pointed there instead of being refused bare. */
const ROLE_PAGES = { unit: ["/upload", "trang Tiếp nhận"], steward: ["/review", "Bàn hiệu đính"], admin: ["/dashboard", "trang Chỉ số"] };

const sohoa = {
  key() { return sessionStorage.getItem(KEY_STORE); },
  setKey(k) { sessionStorage.setItem(KEY_STORE, k); },
  clearKey() { sessionStorage.removeItem(KEY_STORE); },
  units: {},  // unit code -> name

  /** fetch with the API key; JSON in and out; throws Error(detail) on 4xx/5xx. */
  async api(path, { method = "GET", body, raw = false } = {}) {
    const headers = { Authorization: "Bearer " + sohoa.key() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      const err = new Error("Không kết nối được máy chủ: kiểm tra mạng rồi thử lại.");
      err.status = 0;
      throw err;
    }
    if (!resp.ok) {
      let detail = "Lỗi " + resp.status;
      try { const j = await resp.json(); if (j.detail) detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
      const err = new Error(detail.charAt(0).toUpperCase() + detail.slice(1));
      err.status = resp.status;
      throw err;
    }
    return raw ? resp : resp.json();
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "onclick") node.addEventListener("click", v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  },

  /** ISO 8601 date (or date-time) → dd/mm/yyyy (and hh:mm for a time). */
  date(iso) {
    if (!iso) return "";
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/.exec(String(iso));
    if (!m) return String(iso);
    let out = m[3] + "/" + m[2] + "/" + m[1];
    if (m[4] !== undefined) {
      const d = new Date(iso);
      if (!isNaN(d)) {
        const p = (n) => String(n).padStart(2, "0");
        out = p(d.getDate()) + "/" + p(d.getMonth() + 1) + "/" + d.getFullYear() + " " + p(d.getHours()) + ":" + p(d.getMinutes());
      } else out += " " + m[4] + ":" + m[5];
    }
    return out;
  },

  /** dd/mm/yyyy (or d/m/yyyy, with '-' or '.'; or ISO) → ISO yyyy-mm-dd; null if not a real day. */
  parseDate(text) {
    const t = String(text).trim();
    let d, m, y;
    let r = /^(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})$/.exec(t);
    if (r) { d = +r[1]; m = +r[2]; y = +r[3]; }
    else if ((r = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t))) { y = +r[1]; m = +r[2]; d = +r[3]; }
    else return null;
    const dt = new Date(Date.UTC(y, m - 1, d));
    if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return null;
    return String(y).padStart(4, "0") + "-" + String(m).padStart(2, "0") + "-" + String(d).padStart(2, "0");
  },

  unitName(code) { return code ? (sohoa.units[code] ? sohoa.units[code] + " (" + code + ")" : code) : "—"; },

  toast(message) {
    const t = document.getElementById("toast");
    t.textContent = message;
    t.classList.add("show");
    clearTimeout(sohoa._toastTimer);
    sohoa._toastTimer = setTimeout(() => t.classList.remove("show"), 4000);
  },

  /** Wire a login form: on success call onReady(me); roles limits who may enter. */
  login(roles, onReady) {
    const form = document.getElementById("login-form");
    const input = document.getElementById("key");
    const error = document.getElementById("login-error");
    const logout = document.getElementById("logout");
    async function enter() {
      try {
        const me = await sohoa.api("/api/v1/me");
        if (!roles.includes(me.role)) {
          const where = ROLE_PAGES[me.role];
          const err = new Error("Khóa này thuộc vai trò " + (ROLE_LABELS[me.role] || me.role) + ", không dùng được trang này.");
          err.where = where;
          throw err;
        }
        try { sohoa.units = (await sohoa.api("/api/v1/units")).units || {}; } catch (e) { sohoa.units = {}; }
        input.blur();
        document.getElementById("login").classList.add("hidden");
        document.getElementById("who").textContent = (ROLE_LABELS[me.role] || me.role) + " · " + sohoa.unitName(me.unit);
        logout.classList.remove("hidden");
        await onReady(me);
      } catch (e) {
        sohoa.clearKey();
        error.replaceChildren(e.status === 401 ? "Khóa API không hợp lệ hoặc đã bị thu hồi." : e.message);
        if (e.where) error.append(" Hãy mở ", sohoa.el("a", { href: e.where[0], text: e.where[1] }), ".");
        input.focus();
      }
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); sohoa.setKey(input.value.trim()); enter(); });
    logout.addEventListener("click", () => { sohoa.clearKey(); location.reload(); });
    if (sohoa.key()) enter(); else input.focus();
  },
};
