// The numbers a selection shows, computed the way netlat's Rust code
// computes them, so the page prints the same text as `netlat histogram`,
// `netlat flamegraph --slower-than` and `netlat compare` would for the same
// calls. Each function names the Rust function it ports; keep them in step.
"use strict";

// Rust's `format!("{v:.N}")` rounds an exact tie to even (12.25 -> "12.2");
// JavaScript's toFixed rounds it up ("12.3"). A tie needs a short binary
// fraction, so toFixed(100), which is exact that far, shows whether v is one.
function fixed(v, digits) {
  const rounded = v.toFixed(digits);
  if (!isFinite(v) || Math.abs(v) >= 1e21) return rounded;
  const exact = Math.abs(v).toFixed(100);
  const dot = exact.indexOf(".");
  const rest = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(rest)) return rounded;
  const kept = exact.slice(0, dot + (digits > 0 ? 1 + digits : 0));
  const last = kept.charCodeAt(kept.length - 1) - 48;
  if (last % 2 === 1) return rounded;
  return (v < 0 ? "-" : "") + kept;
}

// render::histogram::significant: three significant digits.
function significant(v) {
  if (v >= 100) return fixed(v, 0);
  if (v >= 10) return fixed(v, 1);
  return fixed(v, 2);
}

// ceil(a / b) for whole numbers below 2^53, exactly (a float quotient can
// round across an integer when b is large).
function divCeil(a, b) {
  let q = Math.floor(a / b);
  while (q * b > a) q--;
  while (q * b < a) q++;
  return q;
}

// model::unit::Unit::for_ns.
function unitForNs(ns) {
  if (ns < 1000) return { name: "ns", ns: 1 };
  if (ns < 1000000) return { name: "us", ns: 1000 };
  return { name: "ms", ns: 1000000 };
}

// model::histogram::Histogram::quantile_ns: the upper bound of the bucket
// holding rank ceil(q * count), clamped to the observed min and max.
function quantileNs(h, q) {
  if (h.count === 0) return null;
  const rank = Math.min(Math.max(Math.ceil(q * h.count), 1), h.count);
  let seen = 0;
  for (const b of h.buckets) {
    seen += b.count;
    if (seen >= rank) return Math.min(Math.max(b.high, h.min), h.max);
  }
  return h.max;
}

// model::histogram::PERCENTILES, then "max" (Percentiles::labelled).
const PERCENTILES = [["p50", 0.5], ["p90", 0.9], ["p99", 0.99], ["p99.9", 0.999]];

function percentiles(h) {
  if (h.count === 0) return null;
  const out = PERCENTILES.map(([label, q]) => [label, quantileNs(h, q)]);
  out.push(["max", h.max]);
  return out;
}

// render::histogram::row_of: row 0 is [0, 1) units, row k is [2^(k-1), 2^k).
// Compared against powers of two rather than through log2, which is what
// floor(log2(v)) means and needs no trust in two libms agreeing.
function rowOf(v) {
  if (v < 1) return 0;
  let k = 0;
  while (k < 65 && Math.pow(2, k + 1) <= v) k++;
  return k + 1;
}

function rowLabel(row) {
  return row === 0 ? 0 : Math.pow(2, row - 1);
}

// render::histogram::fold_rows: each bucket lands whole in the row of its
// midpoint, in the unit.
function foldRows(h, unit) {
  const rows = new Array(66).fill(0);
  for (const b of h.buckets) {
    const mid = b.low + Math.floor((b.high - b.low) / 2);
    rows[Math.min(rowOf(mid / unit.ns), 65)] += b.count;
  }
  return rows;
}

const BAR_WIDTH = 50;

// render::histogram::rows_and_percentiles (with histogram_rows).
function rowsAndPercentiles(h, unit) {
  const rows = foldRows(h, unit);
  let first = rows.findIndex((c) => c > 0);
  let last = -1;
  for (let i = rows.length - 1; i >= 0; i--) if (rows[i] > 0) { last = i; break; }
  if (first < 0) first = 0;
  if (last < 0) last = 0;
  const end = Math.min(last + 1, rows.length - 1);
  const peak = Math.max(1, ...rows);
  const labelWidth = Math.max(String(rowLabel(end)).length, 5);
  const countWidth = String(peak).length;
  let out = "value".padStart(labelWidth) + " |" + "-".repeat(BAR_WIDTH) + " count\n";
  for (let row = first; row <= end; row++) {
    const bar = "@".repeat(divCeil(rows[row] * BAR_WIDTH, peak));
    out += String(rowLabel(row)).padStart(labelWidth) + " |" + bar.padEnd(BAR_WIDTH) +
      " " + String(rows[row]).padStart(countWidth) + "\n";
  }
  const p = percentiles(h);
  if (p) {
    const values = p.map(([label, ns]) => label + ":" + significant(ns / unit.ns));
    out += "Percentiles (" + unit.name + "): " + values.join(" ") + "\n";
  }
  return out;
}

// The first line of render::histogram::summary: whole units, truncated.
function summaryLine(h, unit) {
  const whole = (ns) => Math.floor(ns / unit.ns);
  const avg = h.count > 0 ? Math.trunc(h.sum / h.count) : 0;
  const u = unit.name;
  return "Duration min:" + whole(h.min) + u + " avg:" + whole(avg) + u +
    " max:" + whole(h.max) + u + " count:" + h.count;
}

// render::compare::render's latency table for the selection of each run:
// one unit for the table from the first run's median, ratios to the first.
// `hs[i].seconds` is the time the run's selected windows span.
function compareRows(hs) {
  const p = (h, i) => { const ps = percentiles(h); return ps ? ps[i][1] : null; };
  const unit = unitForNs(p(hs[0], 0) || 0);
  const rows = [
    ["count", false, (h) => ({ v: h.count, int: true })],
    ["calls/s", false, (h) => (h.seconds > 0 ? { v: h.count / h.seconds } : null)],
    ["min", true, (h) => (h.count > 0 ? { v: h.min, int: true } : null)],
    ["mean", true, (h) => (h.count > 0 ? { v: h.sum / h.count } : null)],
    ["p50", true, (h) => wrap(p(h, 0))],
    ["p90", true, (h) => wrap(p(h, 1))],
    ["p99", true, (h) => wrap(p(h, 2))],
    ["p99.9", true, (h) => wrap(p(h, 3))],
    ["max", true, (h) => (h.count > 0 ? { v: h.max, int: true } : null)],
  ];
  function wrap(ns) { return ns === null ? null : { v: ns, int: true }; }
  return rows.map(([label, duration, f]) => {
    const values = hs.map(f);
    const first = values[0] ? values[0].v : null;
    const cells = values.map((x, i) => {
      if (!x) return "-";
      let value;
      if (label === "count") value = String(x.v);
      else if (duration) value = significant(Math.trunc(x.v) / unit.ns);
      else value = significant(x.v);
      if (i > 0 && first !== null && first > 0) value += " (x" + fixed(x.v / first, 2) + ")";
      return value;
    });
    return [duration ? label + " (" + unit.name + ")" : label].concat(cells);
  });
}

// flamegraph::culprit::inclusive: samples per function below the anchor,
// each function once per sample, labels ("[...]") skipped.
function inclusive(folded, anchor) {
  const out = { total: 0, samples: new Map(), depth: new Map() };
  for (const [stack, n] of folded) {
    out.total += n;
    const frames = stack.split(";");
    const start = frames.indexOf(anchor);
    if (start < 0) continue;
    const seen = new Set();
    frames.slice(start + 1).forEach((frame, depth) => {
      if (frame === anchor || frame.startsWith("[") || seen.has(frame)) return;
      seen.add(frame);
      out.samples.set(frame, (out.samples.get(frame) || 0) + n);
      out.depth.set(frame, (out.depth.get(frame) || 0) + depth * n);
    });
  }
  return out;
}

function pct(part, total) {
  return total === 0 ? 0 : (100 * part) / total;
}

// flamegraph::culprit::score: the slow share's relative-entropy term.
function culpritScore(slow, slowTotal, fast, fastTotal) {
  if (slow === 0 || slowTotal === 0) return 0;
  const s = slow / slowTotal;
  const f = (fast + 0.5) / (fastTotal + 1);
  return s * Math.log(s / f);
}

const MIN_SAMPLES = 20;
const MIN_SHARE_PCT = 1.0;
const TEXT_ROWS = 15;

// flamegraph::culprit::rank. `fast` is null without a threshold.
function rank(slow, fast, anchor) {
  const s = inclusive(slow, anchor);
  const fastAll = fast ? inclusive(fast, anchor) : null;
  const f = fastAll && fastAll.total > 0 ? fastAll : null;
  const names = new Set(s.samples.keys());
  if (f) for (const k of f.samples.keys()) names.add(k);
  let rows = [...names].map((name) => {
    const samples = s.samples.get(name) || 0;
    const fastSamples = f ? f.samples.get(name) || 0 : null;
    return {
      function: name,
      samples,
      pct: pct(samples, s.total),
      fastSamples,
      fastPct: f ? pct(fastSamples, f.total) : null,
      score: f ? culpritScore(samples, s.total, fastSamples, f.total) : pct(samples, s.total) / 100,
      depth: (s.depth.get(name) || 0) / Math.max(samples, 1),
    };
  });
  rows.sort((a, b) => (b.score - a.score) || (b.samples - a.samples) ||
    (b.depth - a.depth) || (a.function < b.function ? -1 : a.function > b.function ? 1 : 0));
  let omitted = 0;
  if (!f) {
    const before = rows.length;
    rows = rows.filter((r) => r.pct >= MIN_SHARE_PCT);
    omitted = before - rows.length;
  }
  return {
    samples: s.total,
    fastSamples: fastAll ? fastAll.total : null,
    enough: s.total >= MIN_SAMPLES,
    rows,
    omitted,
  };
}

// render::flamegraph::thousands.
function thousands(n) {
  return String(n).replace(/\B(?=(\d{3})+$)/g, ",");
}

function plural(n, what) {
  return thousands(n) + " " + what + (n === 1 ? "" : "s");
}

// render::flamegraph::culprit_table. `c`: {function, threshold (text or
// null), calls, fastCalls, hz}.
function culpritTable(r, c) {
  if (!r.enough) {
    const which = c.threshold !== null
      ? "the " + plural(c.calls, "call") + " slower than " + c.threshold
      : c.function + "'s " + plural(c.calls, "call");
    return "Only " + plural(r.samples, "sample") + " landed in " + which + ": too few to rank (" +
      MIN_SAMPLES + " needed). Sample at a higher --frequency (now " + c.hz + " Hz) or for longer.\n";
  }
  const shown = r.rows.slice(0, TEXT_ROWS);
  const width = Math.max(8, ...shown.map((row) => utf8Length(row.function)));
  let out;
  if (c.threshold !== null && r.fastSamples !== null && r.fastSamples > 0) {
    out = "Where the slow calls (> " + c.threshold + ", " + plural(c.calls, "call") + ", " +
      plural(r.samples, "sample") + ") spent their time, against the fast calls (" +
      plural(c.fastCalls, "call") + ", " + plural(r.fastSamples, "sample") + "):\n  " +
      "function".padEnd(width) + "  " + "slow".padStart(7) + "  " + "fast".padStart(7) + "\n";
  } else if (c.threshold !== null) {
    out = "Where the slow calls (> " + c.threshold + ", " + plural(c.calls, "call") + ", " +
      plural(r.samples, "sample") + ") spent their time; no sample landed in the fast calls (" +
      plural(c.fastCalls, "call") + "), so these are shares, not a comparison:\n  " +
      "function".padEnd(width) + "  " + "share".padStart(7) + "\n";
  } else {
    out = "Where " + c.function + " spent its time (" + plural(c.calls, "call") + ", " +
      plural(r.samples, "sample") + "):\n  " + "function".padEnd(width) + "  " +
      "share".padStart(7) + "\n";
  }
  for (const row of shown) {
    out += "  " + row.function.padEnd(width) + "  " + fixed(row.pct, 1).padStart(6) + "%";
    if (row.fastPct !== null) out += "  " + fixed(row.fastPct, 1).padStart(6) + "%";
    out += "\n";
  }
  if (r.rows.length > TEXT_ROWS) {
    out += "  ... " + (r.rows.length - TEXT_ROWS) + " more (--json lists them all)\n";
  }
  if (r.omitted > 0) {
    out += "  (" + plural(r.omitted, "function") + " under " + MIN_SHARE_PCT +
      "% of the samples left out)\n";
  }
  return out;
}

// Rust's `str::len` counts UTF-8 bytes; the table's width follows it.
function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

// humantime::format_duration, for the threshold as the user would have
// written it ("2ms", "1s 500ms").
function humanDuration(ns) {
  if (ns === 0) return "0s";
  const parts = [];
  const units = [["d", 86400e9], ["h", 3600e9], ["m", 60e9], ["s", 1e9], ["ms", 1e6], ["us", 1e3], ["ns", 1]];
  let rest = ns;
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(n + name);
    rest -= n * size;
  }
  return parts.join(" ");
}

// A run's length for people: its two largest units ("10s 14ms", "6m 40s"),
// where humantime's every unit down to ns says more than anyone reads.
function roughDuration(ns) {
  return humanDuration(ns).split(" ").slice(0, 2).join(" ");
}

if (typeof module !== "undefined") {
  module.exports = {
    fixed, significant, quantileNs, percentiles, rowsAndPercentiles, summaryLine,
    compareRows, rank, culpritTable, humanDuration, roughDuration, unitForNs, thousands,
  };
}
