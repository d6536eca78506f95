// netlat report's page: a latency heat map per run (time across, log2
// latency rows up, colour = calls), the slow calls as points over it, and
// for a dragged time range the histogram, slow calls, flame graph and
// culprit ranking of exactly the windows under it.
//
// The heat map is Brendan Gregg's latency heat map ("Visualizing System
// Latency", ACM Queue 2010); selecting a range of it to get that range's
// flame graph is what Netflix's FlameScope does for sub-second offsets.
// Numbers come from stats.js, which ports netlat's Rust, so the text equals
// what the command line prints for the same calls. Plain DOM and canvas, no
// framework, nothing fetched: the file works from file://.
"use strict";

const MARGIN = { left: 70, right: 28, top: 10, bottom: 40 };
const MAX_TABLE_ROWS = 500;
const PALETTE = [[255, 247, 188], [254, 196, 79], [236, 112, 20], [189, 0, 38], [90, 0, 30]];

const state = { data: null, runs: [], rowMin: 0, rowMax: 0, scaleNs: 0, plotW: 0, cellH: 12,
  colourMax: 1, selection: null, drag: null };

// ---- Preparing a run: prefix sums so a range's counts cost O(buckets).

// Heat map row of a duration: floor(log2(ns)), 0 for 0 and 1.
function heatRow(ns) {
  let k = 0;
  while (k < 63 && Math.pow(2, k + 1) <= ns) k++;
  return k;
}

function prepare(run) {
  const W = run.windows.length;
  const K = run.buckets.length;
  const prefix = [];
  for (let k = 0; k < K; k++) prefix.push(new Float64Array(W + 1));
  const nPrefix = new Float64Array(W + 1);
  const sumPrefix = new Float64Array(W + 1);
  const starts = new Float64Array(W);
  run.windows.forEach((w, i) => {
    starts[i] = w.t;
    nPrefix[i + 1] = nPrefix[i] + w.n;
    sumPrefix[i + 1] = sumPrefix[i] + w.sum;
    for (const [k, c] of w.b) prefix[k][i + 1] += c;
  });
  for (let k = 0; k < K; k++) {
    const p = prefix[k];
    for (let i = 1; i <= W; i++) p[i] += p[i - 1];
  }
  const bucketRow = run.buckets.map(([lo, hi]) => heatRow(lo + Math.floor((hi - lo) / 2)));
  const used = run.buckets.map((_, k) => prefix[k][W] > 0);
  const end = W > 0 ? starts[W - 1] + run.interval_ns : 0;
  return { run, W, K, prefix, nPrefix, sumPrefix, starts, bucketRow, used,
    spanNs: Math.max(run.duration_ns, end), total: nPrefix[W] };
}

// First window whose span ends after `ns`, and last one starting before
// `endNs`: the windows a time range overlaps.
function windowsIn(p, startNs, endNs) {
  let lo = 0, hi = p.W;
  while (lo < hi) { const m = (lo + hi) >> 1; if (p.starts[m] + p.run.interval_ns > startNs) hi = m; else lo = m + 1; }
  const first = lo;
  lo = 0; hi = p.W;
  while (lo < hi) { const m = (lo + hi) >> 1; if (p.starts[m] < endNs) lo = m + 1; else hi = m; }
  const last = lo - 1;
  return first <= last ? [first, last] : null;
}

// The merged histogram of windows a..b (inclusive), as stats.js reads it.
function histogramOf(p, a, b) {
  const h = { count: 0, sum: 0, min: 0, max: 0, buckets: [] };
  if (a === null) return h;
  h.count = p.nPrefix[b + 1] - p.nPrefix[a];
  h.sum = p.sumPrefix[b + 1] - p.sumPrefix[a];
  let seen = false;
  for (let i = a; i <= b; i++) {
    const w = p.run.windows[i];
    if (w.n === 0) continue;
    h.min = seen ? Math.min(h.min, w.min) : w.min;
    h.max = Math.max(h.max, w.max);
    seen = true;
  }
  for (let k = 0; k < p.K; k++) {
    const c = p.prefix[k][b + 1] - p.prefix[k][a];
    if (c > 0) h.buckets.push({ low: p.run.buckets[k][0], high: p.run.buckets[k][1], count: c });
  }
  return h;
}

// Calls per heat row of windows [a, b) (exclusive end), from the prefixes.
function rowCounts(p, a, b, out) {
  out.fill(0);
  for (let k = 0; k < p.K; k++) {
    if (!p.used[k]) continue;
    const c = p.prefix[k][b] - p.prefix[k][a];
    if (c > 0) out[p.bucketRow[k] - state.rowMin] += c;
  }
  return out;
}

// ---- Formatting.

function formatNs(ns) {
  if (ns < 1000) return ns + "ns";
  if (ns < 1e6) return significant(ns / 1e3) + "us";
  if (ns < 1e9) return significant(ns / 1e6) + "ms";
  return significant(ns / 1e9) + "s";
}

// Row labels: the row's lower bound, rounded ("1us" for 1024 ns).
function rowName(row) {
  const ns = Math.pow(2, row);
  if (ns < 1000) return ns + "ns";
  if (ns < 1e6) return Math.round(ns / 1e3) + "us";
  if (ns < 1e9) return Math.round(ns / 1e6) + "ms";
  return Math.round(ns / 1e9) + "s";
}

function wallClock(run, ns) {
  return new Date(run.start_unix_ms + ns / 1e6).toISOString().replace("T", " ").replace("Z", " UTC");
}

// Time into the run: "12.345s", "1h 02m 03.4s".
function offsetText(ns) {
  const s = ns / 1e9;
  if (s < 60) return s.toFixed(3) + "s";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, "0");
  const ss = sec.toFixed(1).padStart(4, "0");
  return (h > 0 ? h + "h " : "") + mm + "m " + ss + "s";
}

// Axis ticks: round numbers of seconds (or ms), short labels.
function tickLabel(ns, stepNs) {
  if (stepNs < 1e9 && ns % 1e9 !== 0) return Math.round(ns / 1e6) + "ms";
  let s = Math.round(ns / 1e9);
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (h) parts.push(h + "h");
  if (m) parts.push(m + "m");
  if (s || parts.length === 0) parts.push(s + "s");
  return parts.join(" ");
}

function niceStep(spanNs, pixels) {
  const want = spanNs / Math.max(1, pixels / 110);
  const steps = [1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9, 2e9, 5e9, 1e10, 15e9, 3e10, 6e10,
    12e10, 3e11, 6e11, 9e11, 18e11, 36e11, 72e11, 108e11, 216e11, 432e11, 864e11];
  return steps.find((s) => s >= want) || steps[steps.length - 1];
}

function colour(count) {
  const t = state.colourMax <= 1 ? 1 : Math.log(count) / Math.log(state.colourMax);
  const x = Math.min(Math.max(t, 0), 1) * (PALETTE.length - 1);
  const i = Math.min(Math.floor(x), PALETTE.length - 2), f = x - i;
  const c = PALETTE[i].map((v, j) => Math.round(v + (PALETTE[i + 1][j] - v) * f));
  return "rgb(" + c.join(",") + ")";
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- The heat map.

// Groups of windows drawn as one column: each window its own when they fit
// the width, else one group per pixel column (the sum of its windows).
function columns(p) {
  const xOf = (ns) => (ns / state.scaleNs) * state.plotW;
  const out = [];
  if (p.W <= state.plotW) {
    for (let i = 0; i < p.W; i++) {
      const x0 = xOf(p.starts[i]);
      out.push({ x0, x1: Math.max(xOf(p.starts[i] + p.run.interval_ns), x0 + 1), a: i, b: i + 1 });
    }
    return out;
  }
  let a = 0;
  for (let c = 0; c < state.plotW && a < p.W; c++) {
    const limit = ((c + 1) * state.scaleNs) / state.plotW;
    let b = a;
    while (b < p.W && p.starts[b] < limit) b++;
    if (b > a) out.push({ x0: c, x1: c + 1, a, b });
    a = b;
  }
  return out;
}

function yOfRow(row) {
  return MARGIN.top + (state.rowMax - row) * state.cellH;
}

// Continuous log2 position of a duration, for the slow-call points.
function yOfNs(ns) {
  const v = Math.log2(Math.max(ns, 1));
  const y = MARGIN.top + (state.rowMax + 1 - v) * state.cellH;
  return Math.min(Math.max(y, MARGIN.top), MARGIN.top + (state.rowMax - state.rowMin + 1) * state.cellH);
}

function computeColumns() {
  const rows = state.rowMax - state.rowMin + 1;
  let peak = 1;
  for (const p of state.runs) {
    p.cols = columns(p);
    for (const col of p.cols) {
      col.rows = rowCounts(p, col.a, col.b, new Float64Array(rows));
      for (const c of col.rows) if (c > peak) peak = c;
    }
  }
  state.colourMax = peak;
}

function drawMap(p, canvas) {
  const rows = state.rowMax - state.rowMin + 1;
  const plotH = rows * state.cellH;
  const cssW = MARGIN.left + state.plotW + MARGIN.right;
  const cssH = MARGIN.top + plotH + MARGIN.bottom;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.width = cssW + "px";
  canvas.style.height = cssH + "px";
  canvas.parentNode.querySelector(".sel-overlay").style.height = plotH + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, cssW, cssH);
  ctx.fillStyle = "#f4f4f6";
  ctx.fillRect(MARGIN.left, MARGIN.top, (p.spanNs / state.scaleNs) * state.plotW, plotH);
  for (const col of p.cols) {
    for (let r = 0; r < rows; r++) {
      if (col.rows[r] === 0) continue;
      ctx.fillStyle = colour(col.rows[r]);
      ctx.fillRect(MARGIN.left + col.x0, yOfRow(r + state.rowMin), col.x1 - col.x0, state.cellH);
    }
  }
  p.points = p.run.slow.map((s, i) => ({ i, x: MARGIN.left + (s.t / state.scaleNs) * state.plotW, y: yOfNs(s.d) }));
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "rgba(20, 70, 200, 0.9)";
  for (const pt of p.points) {
    ctx.beginPath();
    ctx.arc(pt.x, pt.y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  drawAxes(ctx, plotH);
}

function drawAxes(ctx, plotH) {
  ctx.fillStyle = "#222";
  ctx.strokeStyle = "#888";
  ctx.font = "12px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = state.cellH >= 12 ? 1 : Math.ceil(12 / state.cellH);
  for (let r = state.rowMin; r <= state.rowMax; r++) {
    if ((r - state.rowMin) % every !== 0) continue;
    ctx.fillText(rowName(r), MARGIN.left - 6, yOfRow(r) + state.cellH / 2);
  }
  ctx.beginPath();
  ctx.moveTo(MARGIN.left - 0.5, MARGIN.top);
  ctx.lineTo(MARGIN.left - 0.5, MARGIN.top + plotH + 0.5);
  ctx.lineTo(MARGIN.left + state.plotW, MARGIN.top + plotH + 0.5);
  ctx.stroke();
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = niceStep(state.scaleNs, state.plotW);
  for (let t = 0; t <= state.scaleNs; t += step) {
    const x = MARGIN.left + (t / state.scaleNs) * state.plotW;
    ctx.beginPath();
    ctx.moveTo(x, MARGIN.top + plotH);
    ctx.lineTo(x, MARGIN.top + plotH + 5);
    ctx.stroke();
    ctx.fillText(tickLabel(t, step), x, MARGIN.top + plotH + 7);
  }
  ctx.fillStyle = "#555";
  ctx.fillText("time since the run's start", MARGIN.left + state.plotW / 2, MARGIN.top + plotH + 23);
  ctx.save();
  ctx.translate(14, MARGIN.top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("call latency (log2 rows)", 0, -8);
  ctx.restore();
}

function drawLegend(canvas) {
  const w = 260, h = 12;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = (w + 80) * dpr;
  canvas.height = 34 * dpr;
  canvas.style.width = w + 80 + "px";
  canvas.style.height = "34px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  for (let x = 0; x < w; x++) {
    ctx.fillStyle = colour(Math.exp((x / (w - 1)) * Math.log(Math.max(state.colourMax, 1))));
    ctx.fillRect(10 + x, 2, 1, h);
  }
  ctx.fillStyle = "#222";
  ctx.font = "12px sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("1", 10, h + 5);
  ctx.textAlign = "right";
  ctx.fillText(thousands(state.colourMax) + " calls per cell (log scale)", w + 78, h + 5);
}

// ---- Hover.

function tooltip(evt, text) {
  const tip = document.getElementById("tooltip");
  if (!evt) { tip.hidden = true; return; }
  tip.textContent = text;
  tip.hidden = false;
  const x = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = x + window.scrollX + "px";
  tip.style.top = evt.clientY + 16 + window.scrollY + "px";
}

function hover(p, canvas, evt) {
  const rect = canvas.getBoundingClientRect();
  const mx = evt.clientX - rect.left, my = evt.clientY - rect.top;
  let best = null, bestD = 36;
  for (const pt of p.points) {
    const d = (pt.x - mx) ** 2 + (pt.y - my) ** 2;
    if (d < bestD) { best = pt; bestD = d; }
  }
  if (best) return tooltip(evt, p.run.slow[best.i].line);
  const x = mx - MARGIN.left;
  const row = state.rowMax - Math.floor((my - MARGIN.top) / state.cellH);
  const col = p.cols.find((c) => x >= c.x0 && x < c.x1);
  if (!col || row < state.rowMin || row > state.rowMax || x < 0) return tooltip(null);
  const t = p.starts[col.a];
  const count = col.rows[row - state.rowMin];
  const windows = col.b - col.a === 1 ? "window " + col.a : "windows " + col.a + "-" + (col.b - 1);
  tooltip(evt, wallClock(p.run, t) + " (" + offsetText(t) + " into the run, " + windows + ")\n" +
    formatNs(Math.pow(2, row)) + " to " + formatNs(Math.pow(2, row + 1) - 1) + ": " +
    thousands(count) + (count === 1 ? " call" : " calls"));
}

// ---- Selection.

function columnAt(canvas, clientX) {
  const x = clientX - canvas.getBoundingClientRect().left - MARGIN.left;
  return Math.min(Math.max(Math.floor(x), 0), state.plotW - 1);
}

function startDrag(canvas, evt) {
  if (evt.button !== 0) return;
  evt.preventDefault();
  state.drag = { canvas, x0: evt.clientX, c0: columnAt(canvas, evt.clientX), c1: null };
}

function moveDrag(evt) {
  const d = state.drag;
  if (!d) return;
  d.c1 = columnAt(d.canvas, evt.clientX);
  if (Math.abs(evt.clientX - d.x0) >= 2) showOverlay(Math.min(d.c0, d.c1), Math.max(d.c0, d.c1));
}

function endDrag(evt) {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  tooltip(null);
  // A click is not a selection.
  if (Math.abs(evt.clientX - d.x0) < 2) return showOverlay();
  const c1 = columnAt(d.canvas, evt.clientX);
  const lo = Math.min(d.c0, c1), hi = Math.max(d.c0, c1);
  // Whole nanoseconds, like every time in the data.
  select({ c0: lo, c1: hi, startNs: Math.floor((lo * state.scaleNs) / state.plotW),
    endNs: Math.floor(((hi + 1) * state.scaleNs) / state.plotW) });
}

function select(sel) {
  state.selection = sel;
  showOverlay();
  showResults();
}

function showOverlay(lo, hi) {
  const sel = state.selection;
  if (lo === undefined && sel) { lo = sel.c0; hi = sel.c1; }
  for (const o of document.querySelectorAll(".sel-overlay")) {
    o.hidden = lo === undefined;
    if (lo === undefined) continue;
    o.style.left = MARGIN.left + lo + "px";
    o.style.width = hi - lo + 1 + "px";
  }
}

// The windows of each run the current selection (or the whole run) covers.
function selectedWindows(p) {
  if (!state.selection) return p.W > 0 ? [0, p.W - 1] : null;
  return windowsIn(p, state.selection.startNs, state.selection.endNs);
}

// ---- What a selection shows.

function foldedOf(p, range, pick) {
  const out = new Map();
  if (!range) return out;
  for (const s of p.run.samples) {
    if (s[0] < range[0] || s[0] > range[1]) continue;
    const n = pick(s);
    if (n > 0) out.set(p.run.stacks[s[1]], (out.get(p.run.stacks[s[1]]) || 0) + n);
  }
  return out;
}

function unitOf(run) {
  return { name: run.unit, ns: run.unit_ns };
}

function showResults() {
  const sel = state.selection;
  const p0 = state.runs[0];
  const span = sel ? [sel.startNs, sel.endNs] : [0, state.scaleNs];
  const ranges = state.runs.map(selectedWindows);
  const count = (r) => (r ? r[1] - r[0] + 1 : 0);
  document.getElementById("selection-label").textContent =
    (sel ? "Selected " : "Whole run: ") + offsetText(span[0]) + " to " + offsetText(span[1]) +
    " into the run" + (p0.W > 0 ? ", from " + wallClock(p0.run, span[0]) : "") + " (" +
    ranges.map((r, i) => plural(count(r), "window") + (state.runs.length > 1 ? " of " + state.runs[i].run.name : "")).join(", ") + ")";
  document.getElementById("clear-selection").disabled = !sel;
  const hs = state.runs.map((p, i) => {
    const r = ranges[i];
    const h = r ? histogramOf(p, r[0], r[1]) : histogramOf(p, null);
    h.seconds = (count(r) * p.run.interval_ns) / 1e9;
    const unit = unitOf(p.run);
    document.getElementById("summary-" + i).textContent = summaryLine(h, unit) +
      (h.count === 0 ? "\nNo calls of " + p.run.function + " in this range." : "");
    document.getElementById("histogram-" + i).textContent = h.count > 0 ? rowsAndPercentiles(h, unit) : "";
    return h;
  });
  if (state.runs.length === 2) showCompare(hs);
  showSlowTable(ranges);
  state.runs.forEach((p, i) => showFlame(p, i, ranges[i], hs[i]));
}

function showCompare(hs) {
  const table = document.getElementById("compare");
  table.textContent = "";
  const head = el("tr");
  for (const name of ["", state.runs[0].run.name, state.runs[1].run.name]) head.appendChild(el("th", {}, name));
  table.appendChild(head);
  for (const row of compareRows(hs)) {
    const tr = el("tr");
    row.forEach((cell, i) => tr.appendChild(el(i === 0 ? "th" : "td", {}, cell)));
    table.appendChild(tr);
  }
}

function showSlowTable(ranges) {
  const body = document.querySelector("#slow-table tbody");
  body.textContent = "";
  let shown = 0, total = 0;
  state.runs.forEach((p, i) => {
    const r = ranges[i];
    if (!r) return;
    for (const s of p.run.slow) {
      if (s.w < r[0] || s.w > r[1]) continue;
      total++;
      if (shown >= MAX_TABLE_ROWS) continue;
      shown++;
      const tr = el("tr", { title: s.line });
      const cells = [wallClock(p.run, s.t), offsetText(s.t), formatNs(s.d), String(s.cpu), s.context, s.task, s.socket || "-"];
      if (state.runs.length > 1) cells.unshift(p.run.name);
      for (const c of cells) tr.appendChild(el("td", {}, c));
      body.appendChild(tr);
    }
  });
  const anyThreshold = state.runs.some((p) => p.run.threshold_ns !== null);
  document.getElementById("slow-note").textContent = !anyThreshold
    ? "This run kept no slow calls (it was recorded without --slower-than)."
    : total === 0 ? "No call over the threshold in this range."
    : plural(total, "slow call") + " in this range" + (total > shown ? "; the first " + shown + " are listed" : "") + ".";
}

function showFlame(p, i, range, h) {
  const suffix = i === 0 ? "" : "-" + i;
  const box = document.getElementById("flamegraph" + suffix);
  const culprits = document.getElementById("culprits" + suffix);
  const note = document.getElementById("flame-note" + suffix);
  const run = p.run;
  if (run.frequency_hz === 0 || run.stacks.length === 0) {
    box.textContent = "";
    culprits.textContent = "";
    note.textContent = "No kernel stacks were sampled in this run, so there is no flame graph.";
    return;
  }
  const threshold = run.threshold_ns === null ? null : humanDuration(run.threshold_ns);
  const slow = foldedOf(p, range, (s) => (threshold === null ? s[2] + s[3] : s[2]));
  const fast = threshold === null ? null : foldedOf(p, range, (s) => s[3]);
  const slowCalls = range ? run.slow.filter((s) => s.w >= range[0] && s.w <= range[1]).length : 0;
  const root = drawFlame(box, slow, box.clientWidth || 1200, tooltip);
  note.textContent = root.value === 0
    ? "No sample landed in " + (threshold === null ? "a call" : "a call slower than " + threshold) + " in this range."
    : plural(root.value, "sample") + " of " + (threshold === null ? "calls" : "calls slower than " + threshold) +
      " at " + run.frequency_hz + " Hz; root at the bottom, width = samples.";
  // No call in the range: "only 0 samples" would say nothing useful.
  if (h.count === 0) { culprits.textContent = ""; return; }
  const ranking = rank(slow, fast, run.function);
  culprits.textContent = culpritTable(ranking, {
    function: run.function, threshold, calls: threshold === null ? h.count : slowCalls,
    fastCalls: Math.max(h.count - slowCalls, 0), hz: run.frequency_hz,
  });
}

// ---- The page.

function runHeading(run) {
  const parts = [run.function + " on " + run.host + " (" + run.kernel + ")", run.backend,
    roughDuration(run.duration_ns) + " from " + wallClock(run, 0), humanDuration(run.interval_ns) + " windows"];
  if (run.threshold_ns !== null) parts.push("slow calls: over " + humanDuration(run.threshold_ns));
  return run.name + ": " + parts.join(", ");
}

function emptyReason(p) {
  if (p.W === 0) return "This run has no windows: nothing was recorded.";
  if (p.total === 0) return "No calls of " + p.run.function + " were seen during this run (" + roughDuration(p.run.duration_ns) + ").";
  return null;
}

function buildMeta(data) {
  const box = document.getElementById("meta");
  for (const run of data.runs) {
    box.appendChild(el("h3", {}, run.name));
    const basic = [["source", run.source], ["function", run.function], ["backend", run.backend],
      ["host", run.host], ["kernel", run.kernel], ["CPUs", String(run.cpus)], ["netlat", run.netlat_version],
      ["start", wallClock(run, 0)], ["duration", roughDuration(run.duration_ns)], ["window", humanDuration(run.interval_ns)],
      ["threshold", run.threshold_ns === null ? "-" : humanDuration(run.threshold_ns)],
      ["sampling", run.frequency_hz ? run.frequency_hz + " Hz" : "-"], ["unit", run.unit]];
    for (const section of [{ title: "Run", rows: basic }].concat(run.meta)) {
      box.appendChild(el("h4", {}, section.title));
      const table = el("table", { class: "meta-table" });
      for (const [k, v] of section.rows) {
        const tr = el("tr");
        tr.appendChild(el("th", {}, k));
        tr.appendChild(el("td", {}, v));
        table.appendChild(tr);
      }
      box.appendChild(table);
    }
  }
}

function build(data) {
  document.getElementById("title").textContent = data.title;
  const maps = document.getElementById("maps");
  const results = document.getElementById("results");
  state.runs.forEach((p, i) => {
    const section = el("section", { class: "run" });
    section.appendChild(el("h2", {}, runHeading(p.run)));
    const why = emptyReason(p);
    if (why) section.appendChild(el("p", { class: "empty", id: "empty-" + i }, why));
    if (p.run.slow_only) {
      section.appendChild(el("p", { class: "note" }, "This run kept only the calls slower than " +
        humanDuration(p.run.threshold_ns || 0) + ": the map counts those calls alone, not every call."));
    }
    if (!why) {
      const wrap = el("div", { class: "map-wrap" });
      const canvas = el("canvas", { id: "heatmap-" + i });
      wrap.appendChild(canvas);
      const overlay = el("div", { class: "sel-overlay" });
      overlay.hidden = true;
      overlay.style.top = MARGIN.top + "px";
      wrap.appendChild(overlay);
      section.appendChild(wrap);
      canvas.addEventListener("mousedown", (e) => startDrag(canvas, e));
      canvas.addEventListener("mousemove", (e) => { if (!state.drag) hover(p, canvas, e); });
      canvas.addEventListener("mouseleave", () => tooltip(null));
      p.canvas = canvas;
    }
    maps.appendChild(section);
    const col = el("div", { class: "result" });
    col.appendChild(el("h3", {}, p.run.name + " (" + p.run.unit + ")"));
    col.appendChild(el("pre", { id: "summary-" + i, class: "summary" }));
    col.appendChild(el("pre", { id: "histogram-" + i, class: "histogram" }));
    results.appendChild(col);
  });
  document.getElementById("compare-section").hidden = state.runs.length !== 2;
  if (state.runs.length > 1) document.querySelector("#slow-table thead tr").prepend(el("th", {}, "run"));
  const flames = document.getElementById("flames");
  state.runs.forEach((p, i) => {
    const suffix = i === 0 ? "" : "-" + i;
    if (i > 0) {
      flames.appendChild(el("h3", {}, p.run.name));
      flames.appendChild(el("p", { id: "flame-note" + suffix, class: "note" }));
      flames.appendChild(el("div", { id: "flamegraph" + suffix, class: "flamegraph" }));
      flames.appendChild(el("pre", { id: "culprits" + suffix, class: "culprits" }));
    } else {
      document.getElementById("flame-title").textContent = p.run.name;
    }
  });
  buildMeta(data);
}

function layout() {
  const width = Math.max(600, Math.min(document.getElementById("maps").clientWidth, 1600));
  state.plotW = Math.floor(width - MARGIN.left - MARGIN.right);
  const rows = state.rowMax - state.rowMin + 1;
  state.cellH = Math.max(6, Math.min(20, Math.floor(380 / rows)));
}

function main() {
  const data = JSON.parse(document.getElementById("netlat-data").textContent);
  state.data = data;
  state.runs = data.runs.map(prepare);
  const rows = [];
  for (const p of state.runs) p.bucketRow.forEach((r, k) => { if (p.used[k]) rows.push(r); });
  state.rowMin = rows.length ? Math.min(...rows) : 0;
  state.rowMax = rows.length ? Math.max(...rows) : 0;
  state.scaleNs = Math.max(1, ...state.runs.map((p) => p.spanNs));
  build(data);
  layout();
  const drawable = state.runs.filter((p) => p.canvas);
  if (drawable.length) {
    computeColumns();
    for (const p of drawable) drawMap(p, p.canvas);
    drawLegend(document.getElementById("legend"));
  } else {
    document.getElementById("legend-box").hidden = true;
  }
  window.addEventListener("mousemove", moveDrag);
  window.addEventListener("mouseup", endDrag);
  window.addEventListener("keydown", (e) => { if (e.key === "Escape") select(null); });
  document.getElementById("clear-selection").addEventListener("click", () => select(null));
  showResults();
  requestAnimationFrame(() => setTimeout(() => { hook.loadMs = performance.now(); hook.ready = true; }, 0));
}

// Read-only views for the browser tests.
const hook = {
  ready: false,
  loadMs: null,
  // [window, heat row, calls] of every non-empty cell, per window (exact).
  cells(run) {
    const p = state.runs[run];
    const out = [];
    p.run.windows.forEach((w, i) => {
      const byRow = new Map();
      for (const [k, c] of w.b) byRow.set(p.bucketRow[k], (byRow.get(p.bucketRow[k]) || 0) + c);
      [...byRow.keys()].sort((a, b) => a - b).forEach((r) => out.push([i, r, byRow.get(r)]));
    });
    return out;
  },
  selection() {
    const sel = state.selection;
    const r = state.runs.length ? selectedWindows(state.runs[0]) : null;
    return { start_ns: sel ? sel.startNs : 0, end_ns: sel ? sel.endNs : state.scaleNs, windows: r,
      runs: state.runs.map(selectedWindows), selected: !!sel };
  },
  // Where run `run`'s plot area is, in viewport CSS pixels.
  geometry(run) {
    const c = state.runs[run].canvas;
    const r = c.getBoundingClientRect();
    return { left: r.left + MARGIN.left, top: r.top + MARGIN.top, width: state.plotW,
      height: (state.rowMax - state.rowMin + 1) * state.cellH, scale_ns: state.scaleNs, row_min: state.rowMin,
      row_max: state.rowMax, cell_h: state.cellH };
  },
};
window.netlatReport = hook;

document.addEventListener("DOMContentLoaded", main);
