// ordermon live status page: polls /api/overview and redraws. No libraries, no build step;
// charts are hand-written inline SVG. Every text from the server goes through textContent.
"use strict";

const POLL_MS = 2000;
const SVGNS = "http://www.w3.org/2000/svg";
const REASONS = ["refund", "cancel", "fraud", "violation", "data_anomaly", "other"];
const REASON_COLORS = {
  refund: "#4e8fd6", cancel: "#3fb6a8", fraud: "#e5534b",
  violation: "#e0913a", data_anomaly: "#a87ee0", other: "#7c8696",
};
const QUALITY = [
  ["rejected", "rejected", "#e5534b"], ["duplicates", "duplicates", "#e0b43a"],
  ["violations", "violations", "#e0913a"], ["late", "late", "#4e8fd6"],
  ["future", "future", "#a87ee0"],
];
const SEV_COLORS = { critical: "#ef5350", warning: "#e8a33d", info: "#5aa9e6" };

let lastOk = 0;
let lastData = null;

// ---- small DOM helpers ------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}
function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid) e.append(kid);
  return e;
}
function titled(node, text) { node.append(s("title", { text })); return node; }
function put(id, ...nodes) {
  const e = document.getElementById(id);
  e.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  return e;
}

// ---- formatting -------------------------------------------------------------------------
const nf = new Intl.NumberFormat("en-US");
function int(n) { return n === null || n === undefined ? "–" : nf.format(Math.round(n)); }
function num(n, d = 1) {
  if (n === null || n === undefined) return "–";
  return Math.abs(n) >= 1000 ? nf.format(Math.round(n)) : Number(n).toFixed(d).replace(/\.0+$/, "");
}
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}
function dur(sec) {
  if (sec === null || sec === undefined) return "–";
  const neg = sec < 0; let x = Math.abs(sec);
  let out;
  if (x < 90) out = `${x.toFixed(x < 10 ? 1 : 0)} s`;
  else if (x < 5400) out = `${Math.round(x / 60)} min`;
  else if (x < 172800) out = `${Math.floor(x / 3600)} h ${Math.round((x % 3600) / 60)} min`;
  else out = `${Math.floor(x / 86400)} d ${Math.round((x % 86400) / 3600)} h`;
  return neg ? `−${out}` : out;
}
function t(iso) { return iso ? Date.parse(iso) / 1000 : null; }
function hhmm(iso) { return iso ? iso.slice(11, 16) : "–"; }
function dayhhmm(iso) { return iso ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : "–"; }
function who(a) {
  const p = a.affected_publishers || [];
  return a.publisher_id || (p.length ? p.join(", ") : "platform");
}

// ---- polling ----------------------------------------------------------------------------
async function poll() {
  try {
    const r = await fetch("/api/overview", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const d = await r.json();
    lastOk = Date.now();
    lastData = d;
    render(d);
    setConn(true, `live · updated ${new Date().toLocaleTimeString("en-GB")}`);
  } catch (err) {
    const ago = lastOk ? `, last update ${Math.round((Date.now() - lastOk) / 1000)} s ago` : "";
    setConn(false, `disconnected (${err.message || err})${ago}`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
function setConn(ok, text) {
  const c = document.getElementById("conn");
  c.className = `conn ${ok ? "ok" : "bad"}`;
  c.textContent = text;
}

function render(d) {
  document.body.dataset.detection = d.detection.here ? "here" : "elsewhere";
  renderMeta(d);
  renderBanner(d);
  renderKpis(d);
  renderInvalidations(d);
  renderFiring(d);
  renderRecent(d);
  renderPublishers(d);
  renderQuality(d);
  renderHealth(d);
}

function renderMeta(d) {
  const w = d.worker, det = d.detection;
  put("meta",
    h("span", {}, "app ", h("b", { text: w.app_id })),
    h("span", {}, "input ", h("b", { text: w.input_topic }), ` (${w.partitions} partition${w.partitions === 1 ? "" : "s"})`),
    h("span", {}, "detection ", h("b", { text: det.here ? "on this worker" : "elsewhere" })),
    det.watermark ? h("span", {}, "watermark ", h("b", { text: dayhhmm(det.watermark) }), " UTC") : null,
  );
}

function renderBanner(d) {
  const b = document.getElementById("banner");
  if (d.detection.here) { b.hidden = true; return; }
  b.hidden = false;
  b.replaceChildren(h("b", { text: "Detection is not on this worker. " }), d.detection.note);
}

// ---- headline figures -------------------------------------------------------------------
function kpi(label, value, unit, sub, cls, extra) {
  return h("div", { class: `kpi ${cls || ""}` },
    h("div", { class: "label", text: label }),
    h("div", { class: "value" }, value, unit ? h("small", { text: unit }) : null),
    h("div", { class: "sub" }, sub),
    extra || null);
}

function sparkline(series, w, hgt) {
  const svg = s("svg", { class: "spark", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` });
  if (series.length < 2) return svg;
  const t0 = series[0][0], t1 = series[series.length - 1][0];
  const max = Math.max(1, ...series.map((p) => p[1]));
  const x = (tt) => ((tt - t0) / Math.max(1, t1 - t0)) * w;
  const y = (v) => hgt - 2 - (v / max) * (hgt - 4);
  const pts = series.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
  svg.append(s("polygon", { points: `0,${hgt} ${pts.join(" ")} ${w},${hgt}`, fill: "#5aa9e6", opacity: "0.16" }));
  svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: "#5aa9e6", "stroke-width": 1.5 }));
  return svg;
}

function renderKpis(d) {
  const r = d.rate, here = d.detection.here;
  const last = d.windows.length ? d.windows[d.windows.length - 1] : null;
  const cards = [];
  cards.push(kpi("Event rate", r.events_per_s === null ? "–" : num(r.events_per_s, 0), "/s",
    r.messages_per_s === null ? "sampling…" : `accepted · ${int(r.accepted_total)} since start`,
    "", sparkline(r.series.slice(-120), 92, 34)));
  if (last) {
    const ratio = last.expected_invalidations > 0 ? last.invalidations / last.expected_invalidations : null;
    const cls = ratio !== null && ratio >= 2 && last.invalidations - last.expected_invalidations >= 10 ? "crit"
      : ratio !== null && ratio >= 1.4 ? "warn" : "";
    cards.push(kpi(`Invalidations ${hhmm(last.start)}–${hhmm(last.end)}`, int(last.invalidations), `of ${int(last.orders)} orders`,
      `expected ${num(last.expected_invalidations)}${ratio !== null ? ` · ${ratio.toFixed(1)}× expected` : ""}`, cls));
  } else {
    cards.push(kpi("Invalidations", "–", "", here ? "no window closed yet" : "detection elsewhere"));
  }
  const sev = { critical: 0, warning: 0, info: 0 };
  for (const a of d.firing) sev[a.severity] = (sev[a.severity] || 0) + 1;
  const fcls = sev.critical ? "crit" : d.firing.length ? "warn" : here ? "good" : "";
  cards.push(kpi("Firing alerts", here || d.firing.length ? String(d.firing.length) : "–", "",
    d.firing.length ? `${sev.critical} critical · ${sev.warning} warning` + (sev.info ? ` · ${sev.info} info` : "")
      : here ? "all quiet" : "detection elsewhere", fcls));
  if (last) {
    const bad = last.rejected + last.duplicates + last.violations + last.late + last.future;
    const share = last.arrivals ? bad / last.arrivals : 0;
    cards.push(kpi(`Data issues ${hhmm(last.start)}–${hhmm(last.end)}`, int(bad), "events",
      `${(share * 100).toFixed(1)}% of ${int(last.arrivals)} arrivals`,
      share >= 0.05 ? "crit" : share >= 0.01 ? "warn" : ""));
  } else {
    const q = d.quality.totals;
    cards.push(kpi("Rejected · this worker", int(q.rejected), "total", `${int(q.duplicates)} duplicates · ${int(q.violations)} violations`));
  }
  const hl = d.health;
  const parts = Object.values(hl.consumer_lag).reduce((n, p) => n + Object.keys(p).length, 0);
  cards.push(kpi("Consumer lag", int(hl.lag_total), "msgs", `over ${parts} partitions held`,
    hl.lag_total > 10000 ? "warn" : ""));
  cards.push(kpi("Watermark delay", dur(hl.watermark_delay_seconds), "",
    d.detection.watermark ? `event time ${dayhhmm(d.detection.watermark)} UTC` : "no watermark yet"));
  put("kpis", ...cards);
}

// ---- time-axis charts -------------------------------------------------------------------
// a y axis of about four round steps (counts: never a step below 1)
function niceScale(v, n = 4) {
  const raw = Math.max(v, 1) / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = Math.max(1, [1, 2, 2.5, 5, 10].map((m) => m * p).find((st) => st >= raw));
  return { max: Math.ceil(Math.max(v, 1) / step) * step, step };
}
function timeTicks(t0, t1, pxWidth) {
  const steps = [300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const span = Math.max(1, t1 - t0);
  const step = steps.find((st) => (st / span) * pxWidth >= 70) || 86400;
  const out = [];
  for (let tt = Math.ceil(t0 / step) * step; tt <= t1; tt += step) out.push(tt);
  return out;
}
function utcHHMM(sec) { return new Date(sec * 1000).toISOString().slice(11, 16); }

// stacked bars per window, an optional line, alert spans shaded behind the bars
function stackedChart(windows, keys, colors, opts) {
  const box = document.getElementById(opts.container);
  const W = Math.max(300, box.clientWidth || 800), H = opts.height;
  const m = { l: 40, r: 8, t: 8, b: 20 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, height: H, role: "img", "aria-label": opts.label, id: opts.id });
  const t0 = t(windows[0].start), t1 = t(windows[windows.length - 1].end);
  const x = (tt) => m.l + ((tt - t0) / Math.max(1, t1 - t0)) * pw;
  const totals = windows.map((w) => keys.reduce((n, k) => n + (opts.value(w, k) || 0), 0));
  const lineVals = opts.line ? windows.map(opts.line) : [];
  const { max: ymax, step } = niceScale(Math.max(1, ...totals, ...lineVals) * 1.05);
  const y = (v) => m.t + ph - (v / ymax) * ph;
  const axis = s("g", { class: "axis" });
  for (let v = 0; v <= ymax + 1e-9; v += step) {
    axis.append(s("line", { class: "gridline", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
    axis.append(s("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", text: num(v, Number.isInteger(v) ? 0 : 1) }));
  }
  for (const tt of timeTicks(t0, t1, pw)) {
    axis.append(s("line", { class: "gridline", x1: x(tt), x2: x(tt), y1: m.t + ph, y2: m.t + ph + 4 }));
    axis.append(s("text", { x: x(tt), y: H - 5, "text-anchor": "middle", text: utcHHMM(tt) }));
  }
  svg.append(axis);
  for (const span of opts.spans || []) {
    const a = Math.max(t0, span.from), b = Math.min(t1, span.to);
    if (b <= a) continue;
    svg.append(titled(s("rect", { x: x(a), y: m.t, width: Math.max(2, x(b) - x(a)), height: ph,
      fill: span.color, opacity: span.open ? 0.16 : 0.08, class: "alert-span" }), span.title));
  }
  const bars = s("g", { class: "bars" });
  windows.forEach((w, i) => {
    const xa = x(t(w.start)), xb = x(t(w.end));
    const bw = Math.max(1, xb - xa - (xb - xa > 4 ? 1 : 0));
    let acc = 0;
    const g = s("g", { class: "bar" });
    for (const k of keys) {
      const v = opts.value(w, k) || 0;
      if (!v) continue;
      g.append(s("rect", { x: xa, y: y(acc + v), width: bw, height: Math.max(0.5, y(acc) - y(acc + v)), fill: colors[k] }));
      acc += v;
    }
    // a full-height hover target with the window's numbers
    g.append(titled(s("rect", { x: xa, y: m.t, width: Math.max(1, xb - xa), height: ph, fill: "transparent" }), opts.title(w)));
    bars.append(g);
  });
  svg.append(bars);
  if (opts.line) {
    const pts = windows.map((w, i) => `${((x(t(w.start)) + x(t(w.end))) / 2).toFixed(1)},${y(lineVals[i]).toFixed(1)}`);
    svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: "#e9edf2", "stroke-width": 1.6,
      "stroke-dasharray": "5 3", opacity: 0.9, class: "expected-line" }));
  }
  box.replaceChildren(svg);
  return { x, t0, t1, m, W };
}

function placeholder(container, text) {
  put(container, h("div", { class: "placeholder", text }));
}

function alertSpans(d) {
  // open alerts from detection's book, plus recently delivered records (resolved ones too)
  const spans = new Map();
  for (const a of d.recent_alerts) {
    if (a.kind === "stream_stall") continue;
    spans.set(a.alert_id, { id: a.alert_id, kind: a.kind, who: who(a), severity: a.severity,
      open: a.status === "firing", from: t(a.window_start), to: t(a.window_end) });
  }
  for (const a of d.firing) {
    if (a.kind === "stream_stall") continue;
    spans.set(a.alert_id, { id: a.alert_id, kind: a.kind, who: who(a), severity: a.severity, open: true,
      from: t(a.since), to: t(a.last_window_end) });
  }
  return [...spans.values()].filter((sp) => sp.from !== null && sp.to !== null)
    .map((sp) => ({ ...sp, color: SEV_COLORS[sp.severity] || "#8b95a5",
      title: `${sp.kind} · ${sp.who} · ${utcHHMM(sp.from)}–${utcHHMM(sp.to)} · ${sp.open ? "firing" : "resolved"}` }));
}

function renderInvalidations(d) {
  put("inv-legend", ...REASONS.map((r) => h("span", {}, h("i", { style: `background:${REASON_COLORS[r]}` }), r)),
    h("span", {}, h("i", { class: "line" }), "expected"),
    d.windows.length ? h("span", { class: "now", text: `${d.windows.length} windows · ${dayhhmm(d.windows[0].start)} → ${hhmm(d.windows[d.windows.length - 1].end)} UTC` }) : null);
  if (!d.detection.here) { placeholder("inv-chart", "Detection runs on another worker: its page has this chart."); put("inv-lane"); return; }
  if (!d.windows.length) { placeholder("inv-chart", "Waiting for the first window to close (a window closes once the stream's clock passes its end plus the allowed lateness)."); put("inv-lane"); return; }
  const spans = alertSpans(d);
  const geo = stackedChart(d.windows, REASONS, REASON_COLORS, {
    container: "inv-chart", id: "chart-invalidations", height: 214, label: "invalidations by reason per window",
    value: (w, k) => w.by_reason[k], line: (w) => w.expected_invalidations, spans,
    title: (w) => `${hhmm(w.start)}–${hhmm(w.end)} UTC: ${w.invalidations} invalidations (expected ${num(w.expected_invalidations)}) of ${w.orders} orders\n` +
      REASONS.filter((r) => w.by_reason[r]).map((r) => `${r} ${w.by_reason[r]}`).join(" · "),
  });
  renderLane(spans, geo);
}

// one row per alert under the chart: when each incident was open, on the same time axis
function renderLane(spans, geo) {
  const shown = spans.filter((sp) => sp.to > geo.t0 && sp.from < geo.t1)
    .sort((a, b) => (b.open - a.open) || (b.from - a.from)).slice(0, 5).sort((a, b) => a.from - b.from);
  if (!shown.length) { put("inv-lane", h("div", { class: "hint", text: "No alerts in this time range." })); return; }
  const rowH = 17, H = shown.length * rowH + 2;
  const svg = s("svg", { viewBox: `0 0 ${geo.W} ${H}`, height: H, id: "alert-lane" });
  shown.forEach((sp, i) => {
    const a = geo.x(Math.max(geo.t0, sp.from)), b = geo.x(Math.min(geo.t1, sp.to));
    const yy = i * rowH + 2;
    svg.append(titled(s("rect", { x: a, y: yy, width: Math.max(3, b - a), height: rowH - 5, rx: 2,
      fill: sp.color, opacity: sp.open ? 0.95 : 0.45 }), sp.title));
    const label = `${sp.kind} · ${sp.who}${sp.open ? " · FIRING" : ""}`;
    const right = b + 6 + label.length * 6.2 < geo.W;
    svg.append(s("text", { x: right ? b + 6 : a - 6, y: yy + rowH - 7, "text-anchor": right ? "start" : "end", text: label }));
  });
  put("inv-lane", svg);
}

// ---- alerts -----------------------------------------------------------------------------
function renderFiring(d) {
  const c = document.getElementById("firing-count");
  c.textContent = String(d.firing.length);
  c.className = `count ${d.firing.some((a) => a.severity === "critical") ? "crit" : d.firing.length ? "warn" : ""}`;
  if (!d.firing.length) {
    put("firing", d.detection.here ? h("div", { class: "calm", text: "✓ No alerts firing" })
      : h("div", { class: "placeholder", text: "Detection runs on another worker: its page lists the firing alerts." }));
    return;
  }
  put("firing", ...d.firing.map((a) => {
    const pubs = a.affected_publishers || [];
    return h("div", { class: `alert ${a.severity}`, "data-kind": a.kind, "data-alert-id": a.alert_id },
      h("div", { class: "top-line" },
        h("span", { class: `pill ${a.severity}`, text: a.severity }),
        h("span", { class: "pill kind", text: a.kind }),
        a.reason ? h("span", { class: "pill", text: a.reason }) : null,
        h("span", { class: "when", text: `since ${dayhhmm(a.since)}${a.windows ? ` · ${a.windows} window${a.windows > 1 ? "s" : ""}` : ""}` })),
      h("div", { class: "summary", text: a.summary }),
      h("div", { class: "evidence" },
        h("span", {}, "observed ", h("b", { text: num(a.observed, 2) })),
        h("span", {}, "expected ", h("b", { text: num(a.expected, 2) })),
        h("span", {}, "score ", h("b", { text: num(a.score, 1) })),
        a.peak_score !== undefined && a.peak_score !== null ? h("span", {}, "peak ", h("b", { text: num(a.peak_score, 1) })) : null),
      h("div", { class: "pubs" }, pubs.length ? "publishers" : "scope: platform-wide",
        ...pubs.slice(0, 8).map((p) => h("span", { class: "pill pub", text: p })),
        pubs.length > 8 ? `+${pubs.length - 8}` : null));
  }));
}

function renderRecent(d) {
  if (!d.recent_alerts.length) { put("recent", h("div", { class: "empty", text: "No alert records yet." })); return; }
  put("recent", ...d.recent_alerts.slice(0, 12).map((a) =>
    h("div", { class: "rec", title: a.summary },
      h("span", { class: `st ${a.status}`, text: a.status }),
      h("span", { class: "t", text: hhmm(a.window_end) }),
      h("span", { class: "k", text: `${a.kind}` }),
      h("span", { class: "s", text: a.status === "firing" ? `${who(a)} — ${a.summary}`
        : `${who(a)} · was open ${hhmm(a.window_start)}–${hhmm(a.window_end)}` }))));
}

// ---- publishers -------------------------------------------------------------------------
function renderPublishers(d) {
  if (!d.detection.here) { placeholder("publishers", "Detection runs on another worker: its page ranks the publishers."); return; }
  if (!d.publishers.length) { placeholder("publishers", "No publisher with two or more invalidations in the last closed window."); return; }
  const maxScore = Math.max(10, ...d.publishers.map((p) => p.score));
  const head = h("tr", {}, ...["publisher", "orders", "invalid.", "expected", "ratio", "score", ""].map((c) => h("th", { text: c })));
  const rows = d.publishers.map((p) => h("tr", { class: p.alerting ? "alerting" : "", "data-publisher": p.publisher_id },
    h("td", { class: "pub", text: p.publisher_id }),
    h("td", { text: int(p.orders) }),
    h("td", { class: p.ratio !== null && p.ratio >= 2 ? "hot" : "", text: int(p.invalidations) }),
    h("td", { text: num(p.expected, 2) }),
    h("td", { class: p.ratio === null ? "zero" : p.ratio >= 2 ? "hot" : "", text: p.ratio === null ? "–" : `${num(p.ratio, 1)}×` }),
    h("td", {}, h("span", { class: "scorebar" },
      h("span", { class: `bar ${p.score >= 5 ? "high" : ""}`, style: `width:${Math.max(1, (p.score / maxScore) * 60).toFixed(0)}px` }),
      num(p.score, 1))),
    h("td", {}, p.alerting ? h("span", { class: "flag", text: "ALERTING" }) : h("span", { class: "flag no", text: "–" }))));
  const w = d.windows[d.windows.length - 1];
  put("publishers", h("table", { id: "publishers-table" }, h("thead", {}, head), h("tbody", {}, ...rows)),
    h("div", { class: "hint note", text: `Publishers with 2+ invalidations in the window ${w ? `${hhmm(w.start)}–${hhmm(w.end)}` : ""}, ` +
      "alerting ones first, then by score (−log10 p of their invalidations under their own expected rate). Ratio: invalidations ÷ expected." }));
}

// ---- data quality -----------------------------------------------------------------------
function renderQuality(d) {
  const colors = Object.fromEntries(QUALITY.map(([k, , c]) => [k, c]));
  put("dq-legend", ...QUALITY.map(([, label, c]) => h("span", {}, h("i", { style: `background:${c}` }), label)));
  if (!d.detection.here) placeholder("dq-chart", "Per-window counts are on the detection worker's page.");
  else if (!d.windows.length) placeholder("dq-chart", "Waiting for the first window to close.");
  else stackedChart(d.windows, QUALITY.map((q) => q[0]), colors, {
    container: "dq-chart", id: "chart-quality", height: 104, label: "data-quality events per window",
    value: (w, k) => w[k],
    title: (w) => `${hhmm(w.start)}–${hhmm(w.end)} UTC, ${w.arrivals} arrivals: ` +
      QUALITY.map(([k, label]) => `${label} ${w[k]}`).join(" · "),
  });
  const q = d.quality, tot = q.totals, kept = q.kept_windows, lw = q.last_window;
  const row = (label, k, worker) => h("tr", {},
    h("td", {}, h("i", { style: `display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:6px;background:${colors[k]}` }), label),
    h("td", { class: lw[k] ? "" : "zero", text: lw[k] === undefined ? "–" : int(lw[k]) }),
    h("td", { class: kept[k] ? "" : "zero", text: kept.windows ? int(kept[k]) : "–" }),
    h("td", { class: worker ? "" : "zero", text: worker === null ? "–" : int(worker) }));
  const table = h("table", { id: "quality-table" },
    h("thead", {}, h("tr", {}, h("th", { text: "" }), h("th", { text: "last window" }),
      h("th", { text: kept.windows ? `last ${kept.windows} windows` : "kept windows" }), h("th", { text: "this worker", title: "ingest totals of the input partitions this worker holds" }))),
    h("tbody", {},
      row("rejected", "rejected", tot.rejected), row("duplicates", "duplicates", tot.duplicates),
      row("violations", "violations", tot.violations), row("late", "late", null), row("future-stamped", "future", null)));
  const codes = Object.entries(tot.rejected_by_code);
  const vio = Object.entries(tot.violations_by_type);
  put("dq-table", table,
    h("div", { class: "codes" }, "rejected by code:",
      ...(codes.length ? codes.map(([c, n]) => h("span", { class: "pill", text: `${c} ${int(n)}` })) : [h("span", { class: "hint", text: "none" })])),
    vio.length ? h("div", { class: "codes" }, "violations:", ...vio.map(([c, n]) => h("span", { class: "pill", text: `${c} ${int(n)}` }))) : null);
}

// ---- pipeline health --------------------------------------------------------------------
function renderHealth(d) {
  const hl = d.health, roles = hl.assigned_by_role;
  const held = ["input", "facts", "partials", "alerts"].filter((r) => roles[r].length)
    .map((r) => h("span", { class: "chip", text: `${r} [${roles[r].join(",")}]` }));
  if (roles.internal) held.push(h("span", { class: "hint", text: `+${roles.internal} internal`, title: hl.assigned.join("\n") }));
  const lagChips = [];
  for (const [role, parts] of Object.entries(hl.lag_by_role))
    for (const [p, n] of Object.entries(parts))
      lagChips.push(h("span", { class: `chip ${n > 0 ? "lag" : ""}`, text: `${role}:${p} ${int(n)}` }));
  const stageRows = Object.entries(hl.stages).map(([name, st]) => {
    const last = Object.values(st.checkpoint_bytes_last);
    return h("tr", {},
      h("td", { text: name }), h("td", { text: st.partitions.join(",") || "–" }),
      h("td", { text: int(st.messages) }), h("td", { class: st.unacked ? "" : "zero", text: int(st.unacked) }),
      h("td", { text: int(st.checkpoints) }),
      h("td", { text: last.length ? bytes(last.reduce((a, b) => a + b, 0)) : "–" }),
      h("td", { text: bytes(st.checkpoint_bytes_total) }));
  });
  const c = hl.counts;
  put("health",
    h("div", { class: "kv" },
      h("span", { class: "k", text: "readiness" }),
      h("span", {}, h("span", { class: `badge ${hl.ready ? "ok" : "bad"}`, text: hl.ready ? "READY" : "NOT READY" }), hl.ready ? "" : ` ${hl.reason}`),
      h("span", { class: "k", text: "assigned" }),
      h("div", { class: "chips" }, held.length ? held : h("span", { class: "hint", text: "nothing yet" })),
      h("span", { class: "k", text: "consumer lag" }),
      h("div", { class: "chips" }, lagChips.length ? lagChips : h("span", { class: "hint", text: "–" })),
      h("span", { class: "k", text: "watermark delay" }),
      h("span", { text: `${dur(hl.watermark_delay_seconds)}${d.detection.watermark ? ` (event time ${dayhhmm(d.detection.watermark)})` : ""}` }),
      h("span", { class: "k", text: "output" }),
      h("span", { text: `${int(c.alerts_sent)} alerts · ${int(c.partials_sent)} partials · ${int(c.dead_lettered)} dead-lettered` })),
    h("table", { class: "stages" },
      h("thead", {}, h("tr", {}, ...["stage", "parts", "msgs", "unacked", "ckpts", "last ckpt", "written"].map((x) => h("th", { text: x })))),
      h("tbody", {}, ...stageRows)));
}

window.addEventListener("resize", () => { if (lastData) render(lastData); });
poll();
