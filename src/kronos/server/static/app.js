// Kronos forecast page: pick a bundled sample or a CSV, ask /v1/forecast, draw the history and the fan.
"use strict";

const LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9];
const COLUMNS = ["open", "high", "low", "close", "volume", "amount"];
const $ = (id) => document.getElementById(id);
let last = null; // {bars, response}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("api_key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    return body.detail || JSON.stringify(body);
  } catch (e) {
    return resp.statusText;
  }
}

// The bars of a CSV, and for each the line of the file it came from (errors name the user's line).
function parseCsv(text) {
  const numbered = text.split(/\r?\n/).map((l, i) => [l, i + 1]).filter(([l]) => l.trim() !== "");
  if (numbered.length < 2) throw new Error("the CSV has no rows");
  const lines = numbered.map(([l]) => l);
  const head = lines[0].split(",").map((h) => h.trim().replace(/^"|"$/g, "").toLowerCase());
  const timeCol = ["timestamps", "timestamp", "datetime", "date", "time"].find((c) => head.includes(c));
  if (!timeCol) throw new Error(`no time column in ${head.join(", ")}`);
  const lineOf = numbered.slice(1).map(([, n]) => n);
  const bars = lines.slice(1).map((line) => {
    const cells = line.split(",").map((c) => c.trim().replace(/^"|"$/g, ""));
    const bar = { timestamps: cells[head.indexOf(timeCol)] };
    for (const c of COLUMNS) {
      const i = head.indexOf(c);
      if (i >= 0) bar[c] = cells[i] === "" ? null : Number(cells[i]);
    }
    return bar;
  });
  return { bars, lineOf };
}

// The series the user chose: its bars, its name, and (for an upload) the file line of every bar.
async function historyBars() {
  const file = $("file").files[0];
  if (file) {
    const { bars, lineOf } = parseCsv(await file.text());
    return { all: bars, name: file.name, lineOf };
  }
  const select = $("sample");
  const resp = await fetch(`/v1/samples/${encodeURIComponent(select.value)}`);
  if (!resp.ok) throw new Error(await errorText(resp));
  return { all: (await resp.json()).bars, name: select.options[select.selectedIndex].textContent, lineOf: null };
}

// "Forecast from a past date": the bars up to that time are the history, the next pred_len bars are what
// happened (drawn over the forecast, which is made for exactly their times).
function splitAt(all, asOf, predLen) {
  if (!asOf) return { sent: all, actual: [] };
  // a date alone means the end of that day, in the same (local, naive) reading as the bar times
  const cut = new Date(/^\d{4}-\d{2}-\d{2}$/.test(asOf.trim()) ? `${asOf.trim()}T23:59:59` : asOf.trim()).getTime();
  if (Number.isNaN(cut)) throw new Error(`"Forecast from" ${asOf} is not a date or time`);
  const n = all.filter((b) => new Date(b.timestamps).getTime() <= cut).length;
  if (n === 0) throw new Error(`no bar on or before ${asOf}`);
  return { sent: all.slice(0, n), actual: all.slice(n, n + predLen) };
}

// A time as plotly reads the bars' own naive strings: local wall-clock, no zone.
function wallClock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Range breaks from the series' own bar times: every gap longer than 1.5 bar spacings (nights, weekends,
// holidays, lunch breaks) is hidden, so sessions sit side by side whatever the market's schedule.
function rangebreaks(times) {
  const ms = [...new Set(times.map((x) => new Date(x).getTime()))].sort((a, b) => a - b);
  if (ms.length < 3) return [];
  const steps = ms.slice(1).map((x, i) => x - ms[i]).sort((a, b) => a - b);
  const step = steps[Math.floor(steps.length / 2)];
  const breaks = [];
  for (let i = 1; i < ms.length; i++) {
    if (ms[i] - ms[i - 1] > 1.5 * step) {
      breaks.push({ bounds: [wallClock(ms[i - 1] + step), wallClock(ms[i])] });
    }
  }
  return breaks;
}

// An error names the line of the user's file: "row 40" of the bars sent is line lineOf[40] of the CSV.
function inUserTerms(message, series) {
  if (!series || !series.lineOf) return message;
  return message.replace(/\brow (\d+)( \(index \d+\))?/g, (m, row) => {
    const line = series.lineOf[Number(row)];
    return line ? `${m} = line ${line} of ${series.name}` : m;
  });
}

function clearChart() {
  for (const id of ["chart", "probup"]) Plotly.purge(id);
  $("download").disabled = true;
  last = null;
}

function draw(bars, fc, name, actual) {
  const t = bars.map((b) => b.timestamps);
  const q = (level, col) => fc.quantiles[String(level)][col];
  const band = (lo, hi, name, color) => [
    { x: fc.timestamps, y: q(lo, "close"), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip", name: `${name} lower` },
    { x: fc.timestamps, y: q(hi, "close"), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: color, name },
  ];
  const traces = [
    { type: "candlestick", name: "history", x: t, open: bars.map((b) => b.open), high: bars.map((b) => b.high),
      low: bars.map((b) => b.low), close: bars.map((b) => b.close) },
    ...band(0.1, 0.9, "10–90% band", "rgba(47,111,214,0.18)"),
    ...band(0.25, 0.75, "25–75% band", "rgba(47,111,214,0.35)"),
    { x: fc.timestamps, y: q(0.5, "close"), mode: "lines", name: "median close", line: { color: "#2f6fd6" } },
    { x: fc.timestamps, y: fc.mean.close, mode: "lines", name: "mean close", line: { color: "#d6552f", dash: "dash" } },
  ];
  if (actual.length) {
    traces.push({ x: actual.map((b) => b.timestamps), y: actual.map((b) => b.close), mode: "lines+markers",
      name: "what happened", line: { color: "#111", width: 2 }, marker: { size: 4 } });
  }
  const breaks = rangebreaks([...t, ...fc.timestamps, ...actual.map((b) => b.timestamps)]);
  const title = `${name} · ${fc.model.name} (${fc.model.version}) · ${fc.sample_count} paths · seed ${fc.seed}${fc.calibrated ? " · calibrated" : ""}`;
  Plotly.newPlot("chart", traces, {
    title: { text: title, font: { size: 13 } }, margin: { t: 40, r: 20, b: 40, l: 60 },
    xaxis: { rangeslider: { visible: false }, rangebreaks: breaks },
    legend: { orientation: "h" },
  }, { responsive: true, displaylogo: false });
  Plotly.newPlot("probup", [{ type: "bar", name: "P(up)", x: fc.timestamps, y: fc.prob_up, marker: { color: "#2f6fd6" } }], {
    title: { text: "P(close above the last close)", font: { size: 13 } }, margin: { t: 35, r: 20, b: 40, l: 60 },
    yaxis: { range: [0, 1] }, xaxis: { rangebreaks: rangebreaks(fc.timestamps) },
  }, { responsive: true, displaylogo: false });
}

function forecastCsv(fc) {
  const head = ["timestamp", ...COLUMNS.map((c) => `mean_${c}`), ...LEVELS.map((l) => `close_q${Math.round(l * 100)}`), "prob_up"];
  const rows = fc.timestamps.map((ts, i) => [ts, ...COLUMNS.map((c) => fc.mean[c][i]),
    ...LEVELS.map((l) => fc.quantiles[String(l)].close[i]), fc.prob_up[i]].join(","));
  return [head.join(","), ...rows].join("\n") + "\n";
}

// "ensemble" (the default), "auto", a number of bars, or a comma-separated list of them (an ensemble); the
// server names anything else in its 422 answer.
function parseLookback(text) {
  if (text === "" || text === "ensemble" || text === "auto") return text || "ensemble";
  const parts = text.split(",").map((p) => p.trim());
  const one = (p) => (p === "auto" ? "auto" : /^\d+$/.test(p) ? parseInt(p, 10) : p);
  return parts.length > 1 ? parts.map(one) : one(parts[0]);
}

// The bars as the forecast read them: before each share split the server undid ("2:1" at row r of the bars sent),
// prices divided by the ratio and volume multiplied, so the candles and the bands share one price scale.
function asRead(bars, splits) {
  if (!splits.length) return bars;
  const out = bars.map((b) => ({ ...b }));
  for (const s of splits) {
    const [num, den] = s.ratio.split(":").map(Number);
    const r = num / den;
    for (let i = 0; i < s.row && i < out.length; i++) {
      for (const c of ["open", "high", "low", "close"]) out[i][c] /= r;
      if (out[i].volume !== undefined) out[i].volume *= r;
    }
  }
  return out;
}

async function run() {
  $("run").disabled = true;
  setStatus("forecasting…");
  let series = null;
  try {
    series = await historyBars();
    const predLen = parseInt($("pred_len").value, 10);
    const { sent, actual } = splitAt(series.all, $("asof").value, predLen);
    const lookbackText = $("lookback").value.trim().toLowerCase();
    const body = {
      bars: sent, pred_len: predLen, sample_count: parseInt($("sample_count").value, 10),
      T: parseFloat($("temperature").value), top_p: parseFloat($("top_p").value), calibrate: $("calibrate").checked,
      quantiles: LEVELS, lookback: parseLookback(lookbackText),
    };
    const calendar = $("calendar").value;
    if (calendar && calendar !== "none") body.calendar = calendar; // only when asked: servers without calendars still work
    if (actual.length === predLen) body.future_timestamps = actual.map((b) => b.timestamps);
    const seed = $("seed").value.trim();
    if (seed !== "") body.seed = parseInt(seed, 10);
    const started = performance.now();
    const resp = await fetch("/v1/forecast", { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
    if (!resp.ok) throw new Error(`${resp.status}: ${await errorText(resp)}`);
    const fc = await resp.json();
    const shown = asRead(sent, fc.splits || []).slice(-fc.bars_used);
    last = { bars: shown, fc };
    draw(shown, fc, series.name, actual);
    $("download").disabled = false;
    let text = `done in ${((performance.now() - started) / 1000).toFixed(1)} s · ${fc.bars_used} of ${sent.length} bars used`;
    if (actual.length) {
      const lo = fc.quantiles["0.1"].close, hi = fc.quantiles["0.9"].close;
      const inside = actual.filter((b, i) => i < lo.length && b.close >= lo[i] && b.close <= hi[i]).length;
      text += ` · what happened: ${inside} of ${actual.length} closes inside the 10–90% band`;
    }
    // what the server adapted in the bars sent (closes only, a share split undone): the user should know
    for (const note of fc.notes || []) text += ` · note: ${note}`;
    setStatus(text);
  } catch (e) {
    clearChart(); // a failed forecast leaves no stale chart behind
    setStatus(inUserTerms(String(e.message || e), series), true);
  } finally {
    $("run").disabled = false;
  }
}

function download() {
  if (!last) return;
  const url = URL.createObjectURL(new Blob([forecastCsv(last.fc)], { type: "text/csv" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = "forecast.csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function init() {
  $("run").addEventListener("click", run);
  $("download").addEventListener("click", download);
  // One series at a time: an upload replaces the sample in the picker, a sample picked clears the upload.
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    let opt = $("sample").querySelector("option[value='']");
    if (file) {
      if (!opt) {
        opt = document.createElement("option");
        opt.value = "";
        $("sample").prepend(opt);
      }
      opt.textContent = `uploaded: ${file.name}`;
      $("sample").value = "";
    } else if (opt) {
      opt.remove();
    }
  });
  $("sample").addEventListener("change", () => {
    if ($("sample").value === "") return;
    $("file").value = "";
    const opt = $("sample").querySelector("option[value='']");
    if (opt) opt.remove();
  });
  const resp = await fetch("/v1/samples");
  for (const s of (await resp.json()).samples) {
    const opt = document.createElement("option");
    opt.value = s.name;
    opt.textContent = s.description;
    $("sample").appendChild(opt);
  }
  const ready = await fetch("/readyz");
  const state = await ready.json();
  $("model-name").textContent = ready.ok ? `model: ${state.model}` : `model ${state.status}${state.error ? ": " + state.error : ""}`;
  const params = new URLSearchParams(window.location.search);
  for (const [k, v] of params) if ($(k) && k !== "autorun") $(k).value = v;
  if (params.get("autorun") === "1") run();
}

init();
