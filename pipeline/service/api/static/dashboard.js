/* sohoa dashboard: indicators per unit and period with unit names, a grand total, date range and
 * unit filters, the trend over months, auto-refresh every 60 s. Inline SVG, no library. */
"use strict";

const SERIES = [
  ["received", "Tiếp nhận", "#0b5cad"],
  ["ok", "Có kết quả điện tử", "#146c2e"],
  ["needs_review", "Chờ hiệu đính", "#8a4600"],
  ["failed", "Lỗi", "#a3221b"],
  ["reused", "Được tái sử dụng", "#6a3fb5"],
];
const SVG = "http://www.w3.org/2000/svg";
const pct = (x) => (x * 100).toFixed(1).replace(".", ",") + "%";
const $ = (id) => document.getElementById(id);
let timer = null;

function svgEl(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}
const periodText = (p) => (/^\d{4}-\d{2}$/.test(p) ? p.slice(5) + "/" + p.slice(0, 4) : sohoa.date(p));

function drawChart(rows) {
  const box = $("chart");
  box.replaceChildren();
  if (!rows.length) { box.textContent = "Chưa có dữ liệu."; return; }
  const barW = 12, groupGap = 18, left = 130, top = 10, height = 200, bottom = 110;
  const groupW = SERIES.length * barW + groupGap;
  const width = left + rows.length * groupW + 10;
  const max = Math.max(1, ...rows.map((r) => r.received), ...rows.map((r) => r.reused));
  const svg = svgEl("svg", { width, height: top + height + bottom, role: "img", "aria-label": "Biểu đồ chỉ số theo đơn vị và kỳ" });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4), y = top + height - (height * v) / max;
    svg.append(svgEl("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#d5dae1" }));
    svg.append(svgEl("text", { x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#4f5867" }, String(v)));
  }
  rows.forEach((r, g) => {
    const x0 = left + g * groupW + groupGap / 2;
    SERIES.forEach(([key, label, color], s) => {
      const h = (height * r[key]) / max;
      const rect = svgEl("rect", { x: x0 + s * barW, y: top + height - h, width: barW - 2, height: h, fill: color });
      rect.append(svgEl("title", {}, r.unit_name + " " + periodText(r.period) + " — " + label + ": " + r[key]));
      svg.append(rect);
    });
    const lx = x0 + (SERIES.length * barW) / 2, ly = top + height + 12;
    svg.append(svgEl("text", { x: lx, y: ly, "text-anchor": "end", "font-size": 11, fill: "#1d2430", transform: `rotate(-35 ${lx} ${ly})` },
      (r.unit_name.length > 22 ? r.unit_name.slice(0, 21) + "…" : r.unit_name) + " " + periodText(r.period)));
  });
  box.append(svg);
}

function drawTrend(trend) {
  const box = $("trend");
  box.replaceChildren();
  if (!trend.length) { box.textContent = "Chưa có dữ liệu."; return; }
  const left = 40, top = 10, height = 160, step = 70, width = left + Math.max(1, trend.length) * step + 20;
  const max = Math.max(1, ...trend.map((r) => r.received));
  const svg = svgEl("svg", { width, height: top + height + 30, role: "img", "aria-label": "Xu hướng tiếp nhận và số hóa theo tháng" });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4), y = top + height - (height * v) / max;
    svg.append(svgEl("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#d5dae1" }));
    svg.append(svgEl("text", { x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#4f5867" }, String(v)));
  }
  for (const [key, label, color] of SERIES.slice(0, 2).concat([SERIES[4]])) {
    const pts = trend.map((r, i) => [left + step / 2 + i * step, top + height - (height * r[key]) / max]);
    svg.append(svgEl("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2.5 }));
    pts.forEach(([x, y], i) => {
      const c = svgEl("circle", { cx: x, cy: y, r: 4, fill: color, "data-series": key });
      c.append(svgEl("title", {}, label + " " + periodText(trend[i].month) + ": " + trend[i][key]));
      svg.append(c);
    });
  }
  trend.forEach((r, i) => svg.append(svgEl("text", { x: left + step / 2 + i * step, y: top + height + 18, "text-anchor": "middle", "font-size": 11, fill: "#1d2430" }, periodText(r.month))));
  box.append(svg);
}

function row(r, tag = "td", label) {
  const tr = document.createElement("tr");
  const cells = [label || r.unit_name, label ? "" : (r.period === "all" ? "Cả kỳ" : periodText(r.period)), r.received, r.ok, r.needs_review, r.failed, r.processing, r.reused, pct(r.digitized_rate), pct(r.reuse_rate)];
  cells.forEach((v, i) => {
    const c = document.createElement(tag);
    if (tag === "th" && i === 0) c.scope = "row";
    c.textContent = String(v);
    tr.append(c);
  });
  return tr;
}

function query() {
  const q = new URLSearchParams({ period: $("period").value });
  if ($("unit").value) q.set("unit", $("unit").value);
  for (const id of ["from", "to"]) {
    const t = $(id).value.trim();
    if (!t) continue;
    const iso = sohoa.parseDate(t);
    if (!iso) throw new Error("Ngày '" + t + "' không hợp lệ: nhập dd/mm/yyyy.");
    q.set(id, iso);
  }
  return q;
}

async function refresh(ev) {
  if (ev) ev.preventDefault();
  try {
    const data = await sohoa.api("/api/v1/dashboard?" + query().toString());
    const unitSel = $("unit"), chosen = unitSel.value;
    unitSel.replaceChildren(sohoa.el("option", { value: "", text: "Tất cả đơn vị" }),
      ...data.units.map((u) => sohoa.el("option", { value: u.unit, text: u.name + (u.name !== u.unit && !u.unit.startsWith("(") ? " (" + u.unit + ")" : "") })));
    unitSel.value = chosen;
    $("rows").replaceChildren(...data.rows.map((r) => row(r)));
    const grand = row(data.grand_total, "th", "Tổng cộng");
    grand.className = "grand";
    $("totals").replaceChildren(...data.totals.map((r) => row(r, "th")), grand);
    const g = data.grand_total;
    $("cards").replaceChildren(...[["Tiếp nhận", g.received], ["Có kết quả điện tử", g.ok], ["Chờ hiệu đính", g.needs_review],
      ["Lỗi", g.failed], ["Tỷ lệ số hóa", pct(g.digitized_rate)], ["Tỷ lệ tái sử dụng", pct(g.reuse_rate)]]
      .map(([k, v]) => sohoa.el("div", {}, sohoa.el("span", { text: k }), sohoa.el("b", { text: String(v) }))));
    drawChart(data.rows);
    drawTrend(data.trend);
    const now = new Date();
    $("updated").textContent = "Cập nhật lúc " + String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0") + ":" + String(now.getSeconds()).padStart(2, "0");
    document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
  } catch (e) {
    sohoa.toast("Không tải được chỉ số: " + e.message);
  }
}

function schedule() {
  clearInterval(timer);
  const seconds = Number(new URLSearchParams(location.search).get("refresh")) || 60;
  if ($("auto").checked) timer = setInterval(refresh, seconds * 1000);
}

async function downloadCsv() {
  const q = query();
  const resp = await sohoa.api("/api/v1/dashboard.csv?" + q.toString(), { raw: true });
  const url = URL.createObjectURL(await resp.blob());
  const a = sohoa.el("a", { href: url, download: "sohoa-dashboard-" + q.get("period") + ".csv" });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

$("legend").append(...SERIES.map(([, label, color]) => {
  const s = document.createElement("span");
  const i = document.createElement("i");
  i.style.background = color;
  s.append(i, label);
  return s;
}));
$("period").addEventListener("change", refresh);
$("unit").addEventListener("change", refresh);
$("filters").addEventListener("submit", refresh);
$("csv").addEventListener("click", downloadCsv);
$("auto").addEventListener("change", schedule);
sohoa.login(["admin"], async () => { $("dash").classList.remove("hidden"); await refresh(); schedule(); });
