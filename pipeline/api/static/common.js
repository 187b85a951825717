/* sohoa: shared helpers of the review desk and the dashboard (vanilla JS, no dependencies). */
"use strict";

const KEY_STORE = "sohoa.apiKey";

const sohoa = {
  key() { return sessionStorage.getItem(KEY_STORE); },
  setKey(k) { sessionStorage.setItem(KEY_STORE, k); },
  clearKey() { sessionStorage.removeItem(KEY_STORE); },

  /** fetch with the API key; JSON in and out; throws Error(detail) on 4xx/5xx. */
  async api(path, { method = "GET", body, raw = false } = {}) {
    const headers = { Authorization: "Bearer " + sohoa.key() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!resp.ok) {
      let detail = resp.status + " " + resp.statusText;
      try { const j = await resp.json(); if (j.detail) detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
      const err = new Error(detail);
      err.status = resp.status;
      throw err;
    }
    return raw ? resp : resp.json();
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  },

  toast(message) {
    const t = document.getElementById("toast");
    t.textContent = message;
    t.classList.add("show");
    clearTimeout(sohoa._toastTimer);
    sohoa._toastTimer = setTimeout(() => t.classList.remove("show"), 3500);
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
        if (!roles.includes(me.role)) throw new Error("vai trò " + me.role + " không được dùng trang này");
        document.getElementById("login").classList.add("hidden");
        document.getElementById("who").textContent = me.role + " · " + me.unit + " · " + me.key_id;
        logout.classList.remove("hidden");
        onReady(me);
      } catch (e) {
        sohoa.clearKey();
        error.textContent = e.status === 401 ? "Khóa API không hợp lệ." : e.message;
      }
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); sohoa.setKey(input.value.trim()); enter(); });
    logout.addEventListener("click", () => { sohoa.clearKey(); location.reload(); });
    if (sohoa.key()) enter(); else input.focus();
  },
};
