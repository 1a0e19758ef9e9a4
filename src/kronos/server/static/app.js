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

function parseCsv(text) {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length < 2) throw new Error("the CSV has no rows");
  const head = lines[0].split(",").map((h) => h.trim().replace(/^"|"$/g, "").toLowerCase());
  const timeCol = ["timestamps", "timestamp", "datetime", "date", "time"].find((c) => head.includes(c));
  if (!timeCol) throw new Error(`no time column in ${head.join(", ")}`);
  return lines.slice(1).map((line) => {
    const cells = line.split(",").map((c) => c.trim().replace(/^"|"$/g, ""));
    const bar = { timestamps: cells[head.indexOf(timeCol)] };
    for (const c of COLUMNS) {
      const i = head.indexOf(c);
      if (i >= 0) bar[c] = cells[i] === "" ? null : Number(cells[i]);
    }
    return bar;
  });
}

async function historyBars() {
  const file = $("file").files[0];
  let bars;
  if (file) {
    bars = parseCsv(await file.text());
  } else {
    const resp = await fetch(`/v1/samples/${encodeURIComponent($("sample").value)}`);
    if (!resp.ok) throw new Error(await errorText(resp));
    bars = (await resp.json()).bars;
  }
  // Every bar is sent: the server conditions on the last `lookback` of them (auto: max_context - pred_len),
  // calibration forecasts from rolling origins before them; the chart shows the window the forecast used.
  return { sent: bars };
}

function draw(bars, fc) {
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
  // Daily bars without weekend bars: hide weekends so that candles and the fan sit side by side.
  const days = t.map((x) => new Date(x));
  const daily = days.length > 2 && (days[days.length - 1] - days[0]) / (days.length - 1) >= 86400000
    && days.every((d) => d.getDay() !== 0 && d.getDay() !== 6);
  const title = `${fc.model.name} (${fc.model.version}) · ${fc.sample_count} paths · seed ${fc.seed}${fc.calibrated ? " · calibrated" : ""}`;
  Plotly.newPlot("chart", traces, {
    title: { text: title, font: { size: 13 } }, margin: { t: 40, r: 20, b: 40, l: 60 },
    xaxis: { rangeslider: { visible: false }, rangebreaks: daily ? [{ bounds: ["sat", "mon"] }] : [] },
    legend: { orientation: "h" },
  }, { responsive: true, displaylogo: false });
  Plotly.newPlot("probup", [{ type: "bar", name: "P(up)", x: fc.timestamps, y: fc.prob_up, marker: { color: "#2f6fd6" } }], {
    title: { text: "P(close above the last close)", font: { size: 13 } }, margin: { t: 35, r: 20, b: 40, l: 60 },
    yaxis: { range: [0, 1] }, xaxis: { rangebreaks: daily ? [{ bounds: ["sat", "mon"] }] : [] },
  }, { responsive: true, displaylogo: false });
}

function forecastCsv(fc) {
  const head = ["timestamp", ...COLUMNS.map((c) => `mean_${c}`), ...LEVELS.map((l) => `close_q${Math.round(l * 100)}`), "prob_up"];
  const rows = fc.timestamps.map((ts, i) => [ts, ...COLUMNS.map((c) => fc.mean[c][i]),
    ...LEVELS.map((l) => fc.quantiles[String(l)].close[i]), fc.prob_up[i]].join(","));
  return [head.join(","), ...rows].join("\n") + "\n";
}

async function run() {
  $("run").disabled = true;
  setStatus("forecasting…");
  try {
    const { sent } = await historyBars();
    const lookbackText = $("lookback").value.trim().toLowerCase();
    const body = {
      bars: sent, pred_len: parseInt($("pred_len").value, 10), sample_count: parseInt($("sample_count").value, 10),
      T: parseFloat($("temperature").value), top_p: parseFloat($("top_p").value), calibrate: $("calibrate").checked,
      quantiles: LEVELS, lookback: lookbackText === "" || lookbackText === "auto" ? "auto" : parseInt(lookbackText, 10),
    };
    const seed = $("seed").value.trim();
    if (seed !== "") body.seed = parseInt(seed, 10);
    const started = performance.now();
    const resp = await fetch("/v1/forecast", { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
    if (!resp.ok) throw new Error(`${resp.status}: ${await errorText(resp)}`);
    const fc = await resp.json();
    const shown = sent.slice(-fc.bars_used);
    last = { bars: shown, fc };
    draw(shown, fc);
    $("download").disabled = false;
    setStatus(`done in ${((performance.now() - started) / 1000).toFixed(1)} s · ${fc.bars_used} of ${sent.length} bars used`);
  } catch (e) {
    setStatus(String(e.message || e), true);
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
