/* sohoa dashboard: indicators per unit and period, table and inline-SVG bar chart. */
"use strict";

const SERIES = [
  ["received", "Tiếp nhận", "#0b5cad"],
  ["ok", "Có kết quả điện tử", "#1b7f3b"],
  ["needs_review", "Chờ hiệu đính", "#d18a00"],
  ["failed", "Lỗi", "#b3261e"],
  ["reused", "Được tái sử dụng", "#6a3fb5"],
];
const SVG = "http://www.w3.org/2000/svg";
const pct = (x) => (x * 100).toFixed(1) + "%";

function svgEl(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

function drawChart(rows) {
  const box = document.getElementById("chart");
  box.replaceChildren();
  if (!rows.length) { box.textContent = "Chưa có dữ liệu."; return; }
  const barW = 12, groupGap = 18, left = 110, top = 10, height = 220, bottom = 80;
  const groupW = SERIES.length * barW + groupGap;
  const width = left + rows.length * groupW + 10;
  const max = Math.max(1, ...rows.map((r) => r.received), ...rows.map((r) => r.reused));
  const svg = svgEl("svg", { width, height: top + height + bottom, role: "img", "aria-label": "Biểu đồ chỉ số" });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4), y = top + height - (height * v) / max;
    svg.append(svgEl("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e3e6ea" }));
    svg.append(svgEl("text", { x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6575" }, String(v)));
  }
  rows.forEach((r, g) => {
    const x0 = left + g * groupW + groupGap / 2;
    SERIES.forEach(([key, label, color], s) => {
      const h = (height * r[key]) / max;
      const rect = svgEl("rect", { x: x0 + s * barW, y: top + height - h, width: barW - 2, height: h, fill: color });
      rect.append(svgEl("title", {}, r.unit + " " + r.period + " — " + label + ": " + r[key]));
      svg.append(rect);
    });
    const lx = x0 + (SERIES.length * barW) / 2, ly = top + height + 12;
    svg.append(svgEl("text", { x: lx, y: ly, "text-anchor": "end", "font-size": 10, transform: `rotate(-35 ${lx} ${ly})` }, r.unit + " " + r.period));
  });
  box.append(svg);
}

function row(r, tag = "td") {
  const tr = document.createElement("tr");
  for (const v of [r.unit, r.period, r.received, r.ok, r.needs_review, r.failed, r.processing, r.reused, pct(r.digitized_rate), pct(r.reuse_rate)]) {
    const c = document.createElement(tag);
    c.textContent = String(v);
    tr.append(c);
  }
  return tr;
}

async function refresh() {
  const period = document.getElementById("period").value;
  try {
    const data = await sohoa.api("/api/v1/dashboard?period=" + period);
    document.getElementById("rows").replaceChildren(...data.rows.map((r) => row(r)));
    document.getElementById("totals").replaceChildren(...data.totals.map((r) => row(r, "th")));
    drawChart(data.rows);
  } catch (e) {
    sohoa.toast("Không tải được chỉ số: " + e.message);
  }
}

async function downloadCsv() {
  const period = document.getElementById("period").value;
  const resp = await sohoa.api("/api/v1/dashboard.csv?period=" + period, { raw: true });
  const url = URL.createObjectURL(await resp.blob());
  const a = sohoa.el("a", { href: url, download: "sohoa-dashboard-" + period + ".csv" });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

document.getElementById("legend").append(...SERIES.map(([, label, color]) => {
  const s = document.createElement("span");
  const i = document.createElement("i");
  i.style.background = color;
  s.append(i, label);
  return s;
}));
document.getElementById("period").addEventListener("change", refresh);
document.getElementById("refresh").addEventListener("click", refresh);
document.getElementById("csv").addEventListener("click", downloadCsv);
sohoa.login(["admin"], () => { document.getElementById("dash").classList.remove("hidden"); refresh(); });
