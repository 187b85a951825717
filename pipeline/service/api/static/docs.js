/* The API reference drawn from /openapi.json (no Swagger UI: it loads from a CDN). */
"use strict";
(async () => {
  const box = document.getElementById("ops");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text) n.textContent = text; if (cls) n.className = cls; return n; };
  try {
    const spec = await (await fetch("/openapi.json")).json();
    const groups = {};
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const tag = (op.tags && op.tags[0]) || "khác";
        (groups[tag] = groups[tag] || []).push([method, path, op]);
      }
    }
    box.replaceChildren();
    for (const [tag, ops] of Object.entries(groups)) {
      const sec = el("section");
      sec.append(el("h2", tag));
      for (const [method, path, op] of ops) {
        const div = el("div", null, "op");
        const head = el("div");
        head.append(el("span", method.toUpperCase(), "method"), el("code", path));
        div.append(head);
        if (op.summary) div.append(el("p", op.summary));
        if (op.description) div.append(el("p", op.description, "muted"));
        const params = (op.parameters || []).map((p) => p.name + (p.required ? " (bắt buộc)" : "") + (p.description ? ": " + p.description : ""));
        if (params.length) { const ul = el("ul"); for (const p of params) ul.append(el("li", p)); div.append(el("div", "Tham số:"), ul); }
        sec.append(div);
      }
      box.append(sec);
    }
  } catch (e) { box.textContent = "Không tải được /openapi.json: " + e.message; }
})();
