/* The demandcast forecast page: a plain client of the API (GET model, series, history and
   forecast; POST predict for an uploaded CSV). No build step and no library: this file runs as
   written and draws the chart as SVG. No Intl either: its first use costs tens of ms.
   What the chart shows is on window.demandcast: {model, series, history: {dates, sales},
   forecast: {dates, sales}, band: {fields, lower, upper} | null, chart, renders,
   firstRenderMs}. */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const MAX_CHUNK = 50000; // rows per POST /predict (the API's default DEMANDCAST_MAX_ROWS)
  const PLAIN_INT = /^-?(0|[1-9][0-9]{0,17})$/; // the API's rule: "7" is the integer 7...
  const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
  const ROW_KEYS = new Set(["store", "item", "date"]);
  const dc = (window.demandcast = {
    model: null, series: null, history: null, forecast: null, band: null,
    chart: null, renders: 0, firstRenderMs: null,
  });

  // --- talking to the API ---------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body) {
      super((body && body.detail) || `the API answered HTTP ${status}`);
      this.status = status;
      this.problems = (body && body.errors) || [];
    }
  }

  // index.html defines demandcastGet (a request, answered as {ok, status, body}) and starts
  // the first requests with it before this script loads: window.demandcastPreload.
  function unwrap(answer) {
    if (!answer.ok) throw new ApiFailure(answer.status, answer.body);
    return answer.body;
  }
  const api = (path, init) => window.demandcastGet(path, init).then(unwrap);

  const query = (series) => new URLSearchParams(
    Object.entries(series).map(([key, value]) => [key, String(value)])).toString();

  // --- formatting -----------------------------------------------------------------------------

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const grouped = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  function num(v, decimals = 2) {
    if (v == null || Number.isNaN(v)) return "–";
    const [whole, frac] = String(Math.round(Math.abs(v) * 10 ** decimals) / 10 ** decimals).split(".");
    return `${v < 0 ? "-" : ""}${grouped(whole)}${frac ? `.${frac}` : ""}`;
  }
  const int = (v) => num(v, 0);
  const pct = (v) => `${num(v)}%`;
  const DAY = 86400;
  const toTs = (iso) => Date.UTC(+iso.slice(0, 4), +iso.slice(5, 7) - 1, +iso.slice(8, 10)) / 1e3;
  const isoOf = (ts) => new Date(ts * 1e3).toISOString().slice(0, 10);
  const addDays = (iso, days) => isoOf(toTs(iso) + days * 86400);
  const describe = (series) => Object.entries(series).map(([k, v]) => `${k} ${v}`).join(" · ");
  const labelOf = (series) => Object.values(series).join(" ");
  const quantileFields = (fields) => fields.filter((f) => /^p\d+(\.\d+)?$/.test(f))
    .sort((a, b) => parseFloat(a.slice(1)) - parseFloat(b.slice(1)));

  function csvField(value) {
    const text = value == null ? "" : String(value);
    return /[",\r\n;]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }
  const csvLine = (fields) => fields.map(csvField).join(",");

  function showError(err) {
    const box = $("error");
    box.textContent = err ? `${err.message}` : "";
    box.hidden = !err;
  }

  function offerFile(link, name, text) {
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
    link.download = name;
  }

  // --- the model ------------------------------------------------------------------------------

  let keys = ["store", "item"];
  let knownStrings = [new Set(), new Set()]; // string IDs per key: "7" stays text if the model has it
  let modelReady = null;

  function showModel(info) {
    const meta = info.metadata;
    keys = meta.series_keys;
    knownStrings = keys.map((_, i) =>
      new Set(meta.series.map((s) => s[i]).filter((v) => typeof v === "string")));
    const unit = meta.frequency.name;
    const step = meta.frequency.days;
    const first = addDays(meta.trained_through, step);
    const last = addDays(first, step * (meta.horizon - 1));
    dc.model = {
      version: info.model_version, trained_through: meta.trained_through, frequency: unit,
      horizon: meta.horizon, first, last, series_keys: keys, outputs: meta.outputs,
    };
    $("model-info").textContent = `Model ${info.model_version} · trained through `
      + `${meta.trained_through} · forecasts ${meta.horizon} ${unit}s, ${first} to ${last}`;
    const columns = `${keys.join(",")},date`;
    $("series-hint").textContent = `(${keys.join(" ")}, e.g. ${labelOf(meta.series[0])})`;
    $("batch-columns").textContent = columns;
    showEvaluation(info.evaluation, quantileFields(meta.outputs), unit);
  }

  function showEvaluation(ev, quantiles, unit) {
    const facts = [];
    if (!ev) {
      facts.push(["Evaluation", "not available: the API was started without the pipeline's "
        + "reports/metrics.json (DEMANDCAST_METRICS)"]);
    } else {
      const h = ev.holdout;
      facts.push(["Holdout", `${h.start} to ${h.end}, sales the model never saw `
        + `(${int(h.rows)} series-${unit}s)`]);
      facts.push(["Model error (SMAPE)", pct(h.smape)]);
      const baselines = Object.entries(ev.baselines || {}).sort((a, b) => a[1].smape - b[1].smape);
      if (baselines.length) {
        const [name, best] = baselines[0];
        const gain = Math.round((1 - h.smape / best.smape) * 100);
        const verdict = gain >= 0 ? `${gain}% lower` : `${-gain}% higher`;
        facts.push(["Best simple baseline", `${pct(best.smape)} (${name.replace(/_/g, " ")}); `
          + `the model's error is ${verdict}`]);
      }
      if (ev.oracle) {
        facts.push(["Best achievable", `${pct(ev.oracle.smape)} (the true mean of the synthetic data)`]);
      }
      const iv = ev.intervals;
      if (iv) {
        const name = quantiles.length >= 2
          ? `${quantiles[0].toUpperCase()}–${quantiles[quantiles.length - 1].toUpperCase()} range` : "Range";
        const weeks = iv.coverage_by_week || [];
        const spread = weeks.length
          ? `; by horizon week ${pct(Math.min(...weeks))} to ${pct(Math.max(...weeks))}` : "";
        facts.push([`${name} coverage`, `${pct(iv.coverage)} of holdout ${unit}s inside it `
          + `(target ${pct(iv.nominal)})${spread}; mean width ${num(iv.mean_width)}`]);
      }
    }
    $("evaluation").replaceChildren(...facts.flatMap(([term, text]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = text;
      return [dt, dd];
    }));
  }

  // --- the chart ------------------------------------------------------------------------------

  const chartBox = $("chart");
  const readout = $("chart-readout");
  const MARGIN = { left: 46, right: 12, top: 12, bottom: 40 };
  let shown = null; // the GET /forecast answer on the chart
  let view = null; // the chart's data and scales, for the cursor
  let lastWidth = 0;

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  }

  function timeTicks(d0, d1, most) {
    // Day numbers (days since 1970-01-01) of the ticks: first days of months, or days.
    const ticks = [];
    const span = d1 - d0;
    if (span > 62) {
      const step = [1, 2, 3, 6, 12].find((s) => span / 30.4 / s <= most) || 12;
      const start = new Date(d0 * DAY * 1e3);
      let month = start.getUTCFullYear() * 12 + start.getUTCMonth() + (start.getUTCDate() > 1 ? 1 : 0);
      for (;; month += 1) {
        const day = Date.UTC(Math.floor(month / 12), month % 12, 1) / 1e3 / DAY;
        if (day > d1) break;
        if ((month % 12) % step) continue;
        const year = !ticks.length || month % 12 === 0 ? String(Math.floor(month / 12)) : "";
        ticks.push({ day, label: MONTHS[month % 12], sub: year });
      }
    } else {
      const step = [1, 2, 7, 14, 28].find((s) => span / s <= most) || 28;
      for (let day = Math.ceil(d0); day <= d1; day += step) {
        const date = new Date(day * DAY * 1e3);
        const year = !ticks.length || (date.getUTCMonth() === 0 && date.getUTCDate() <= step);
        ticks.push({ day, label: `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`,
          sub: year ? String(date.getUTCFullYear()) : "" });
      }
    }
    return ticks;
  }

  function linePath(xs, ys, sx, sy) {
    let d = "";
    let pen = false;
    for (let i = 0; i < xs.length; i += 1) {
      if (ys[i] == null) {
        pen = false;
      } else {
        d += `${pen ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`;
        pen = true;
      }
    }
    return d;
  }

  function bandPath(xs, lower, upper, sx, sy) {
    // One closed shape per run of periods that have both edges.
    let d = "";
    let run = [];
    const close = () => {
      if (run.length) {
        d += run.map((i, k) => `${k ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(upper[i]).toFixed(1)}`).join("");
        d += run.reverse().map((i) => `L${sx(xs[i]).toFixed(1)},${sy(lower[i]).toFixed(1)}`).join("") + "Z";
      }
      run = [];
    };
    for (let i = 0; i < xs.length; i += 1) {
      if (lower[i] == null || upper[i] == null) close();
      else run.push(i);
    }
    close();
    return d;
  }

  function render() {
    if (!view) return;
    const { xs, actual, mean, lower, upper, cutoff } = view;
    const width = Math.max(260, Math.floor(chartBox.clientWidth));
    const height = Math.min(400, Math.max(230, Math.round(width * 0.42)));
    lastWidth = width;
    const m = MARGIN;
    const d0 = xs[0];
    const d1 = xs[xs.length - 1];
    let top = 0;
    for (const values of [actual, mean, upper || []]) {
      for (const v of values) if (v != null && v > top) top = v;
    }
    const step = niceStep(top || 1, height < 300 ? 4 : 5);
    const yMax = Math.ceil((top || 1) / step) * step;
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const sx = (d) => m.left + ((d - d0) / (d1 - d0 || 1)) * plotW;
    const sy = (v) => m.top + (1 - v / yMax) * plotH;
    view.sx = sx;
    view.plot = { left: m.left, width: plotW, top: m.top, height: plotH };
    const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" `
      + `viewBox="0 0 ${width} ${height}" aria-hidden="true">`];
    for (let v = 0; v <= yMax + step / 2; v += step) {
      const y = sy(v).toFixed(1);
      out.push(`<line class="grid" x1="${m.left}" x2="${width - m.right}" y1="${y}" y2="${y}"/>`,
        `<text class="y-label" x="${m.left - 6}" y="${y}" dy="0.32em">${num(v)}</text>`);
    }
    for (const tick of timeTicks(d0, d1, Math.max(2, Math.floor(plotW / 54)))) {
      const x = sx(tick.day).toFixed(1);
      out.push(`<line class="grid" x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}"/>`,
        `<text class="x-label" x="${x}" y="${m.top + plotH + 16}">${tick.label}</text>`);
      if (tick.sub) out.push(`<text class="x-label" x="${x}" y="${m.top + plotH + 31}">${tick.sub}</text>`);
    }
    if (upper) {
      out.push(`<path class="band" d="${bandPath(xs, lower, upper, sx, sy)}"/>`,
        `<path class="edge" d="${linePath(xs, lower, sx, sy)}"/>`,
        `<path class="edge" d="${linePath(xs, upper, sx, sy)}"/>`);
    }
    if (cutoff != null) {
      const x = sx(cutoff).toFixed(1);
      out.push(`<line class="cutoff" x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}"/>`);
    }
    out.push(`<path class="actual" d="${linePath(xs, actual, sx, sy)}"/>`,
      `<path class="mean" d="${linePath(xs, mean, sx, sy)}"/>`,
      `<line class="axis" x1="${m.left}" x2="${width - m.right}" y1="${sy(0)}" y2="${sy(0)}"/>`,
      `<g class="cursor" visibility="hidden"><line y1="${m.top}" y2="${m.top + plotH}"/>`
      + `<circle r="3.5"/></g></svg>`);
    chartBox.innerHTML = out.join("");
    view.sy = sy;
    if (view.cursor >= 0) moveCursor(view.cursor);
  }

  function moveCursor(index) {
    if (!view) return;
    const i = Math.max(0, Math.min(view.xs.length - 1, index));
    view.cursor = i;
    const group = chartBox.querySelector(".cursor");
    if (!group) return;
    const x = view.sx(view.xs[i]).toFixed(1);
    const value = view.actual[i] != null ? view.actual[i] : view.mean[i];
    const line = group.firstChild;
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
    const dot = group.lastChild;
    dot.setAttribute("cx", x);
    dot.setAttribute("cy", value == null ? -10 : view.sy(value).toFixed(1));
    group.setAttribute("visibility", "visible");
    const date = isoOf(view.xs[i] * DAY);
    if (i < view.nH) {
      readout.textContent = `${date}: actual sales ${view.actual[i] == null ? "unknown" : num(view.actual[i])}`;
    } else {
      const range = view.upper
        ? `, ${view.band[0].toUpperCase()} ${num(view.lower[i])} to ${view.band[1].toUpperCase()} ${num(view.upper[i])}` : "";
      readout.textContent = `${date}: forecast ${num(view.mean[i])}${range}`;
    }
  }

  function nearest(clientX) {
    const box = chartBox.getBoundingClientRect();
    const { left, width } = view.plot;
    const day = view.xs[0] + ((clientX - box.left - left) / width) * (view.xs[view.xs.length - 1] - view.xs[0]);
    let lo = 0;
    let hi = view.xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (view.xs[mid] < day) lo = mid;
      else hi = mid;
    }
    return day - view.xs[lo] < view.xs[hi] - day ? lo : hi;
  }

  chartBox.addEventListener("pointermove", (event) => view && moveCursor(nearest(event.clientX)));
  chartBox.addEventListener("keydown", (event) => {
    if (!view) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1, PageUp: -7, PageDown: 7 };
    if (event.key in moves) moveCursor((view.cursor < 0 ? view.nH : view.cursor) + moves[event.key]);
    else if (event.key === "Home") moveCursor(0);
    else if (event.key === "End") moveCursor(view.xs.length - 1);
    else return;
    event.preventDefault();
  });
  chartBox.addEventListener("focus", () => view && view.cursor < 0 && moveCursor(view.nH));

  function draw(hist, answer) {
    const days = answer.forecast;
    const fields = days.length ? Object.keys(days[0]).filter((f) => f !== "date") : ["sales"];
    const quantiles = quantileFields(fields);
    const band = quantiles.length >= 2 ? [quantiles[0], quantiles[quantiles.length - 1]] : null;
    const nH = hist.dates.length;
    const nF = days.length;
    const gap = (n) => new Array(n).fill(null);
    const dates = hist.dates.concat(days.map((d) => d.date));
    const xs = dates.map((iso) => toTs(iso) / DAY);
    const actual = hist.sales.concat(gap(nF));
    const mean = gap(nH).concat(days.map((d) => d.sales));
    const lower = band ? gap(nH).concat(days.map((d) => d[band[0]])) : null;
    const upper = band ? gap(nH).concat(days.map((d) => d[band[1]])) : null;

    const series = {};
    for (const key of keys) if (key in answer) series[key] = answer[key];
    Object.assign(dc, {
      series,
      chart: { dates, actual, mean, lower, upper },
      history: { dates: hist.dates, sales: actual.slice(0, nH) },
      forecast: { dates: dates.slice(nH), sales: mean.slice(nH) },
      band: band ? { fields: band, lower: lower.slice(nH), upper: upper.slice(nH) } : null,
    });
    shown = answer;
    const cutoff = nH && nF ? (xs[nH - 1] + xs[nH]) / 2 : null;
    view = { xs, actual, mean, lower, upper, band, nH, cutoff, cursor: -1 };
    render();

    dc.renders += 1;
    if (dc.firstRenderMs == null) {
      performance.mark("demandcast:first-render");
      dc.firstRenderMs = Math.round(performance.now());
    }

    const unit = dc.model ? dc.model.frequency : "day";
    const range = band ? `${band[0].toUpperCase()}–${band[1].toUpperCase()} range` : null;
    $("legend-range").hidden = !band;
    if (band) $("legend-range-label").textContent = range;
    $("chart-title").textContent = `Forecast: ${describe(series)}`;
    $("chart-note").textContent = `Actual sales of the last ${nH} ${unit}s and the forecast for `
      + `the next ${nF}${band ? ` with its ${range}` : ""}. Dashed line: the end of the training data.`;
    chartBox.setAttribute("aria-label", `Chart of ${describe(series)}: sales from ${hist.dates[0] || "–"}, `
      + `forecast from ${dc.forecast.dates[0] || "–"} to ${dc.forecast.dates[nF - 1] || "–"}. `
      + "Arrow keys step through the days; the numbers are also in the table below.");
    readout.textContent = "";
    $("download").disabled = false;
    if ($("table-details").open) renderTable();
  }

  new ResizeObserver(() => {
    if (view && Math.max(260, Math.floor(chartBox.clientWidth)) !== lastWidth) render();
  }).observe(chartBox);

  function forecastColumns(answer) {
    const days = answer.forecast;
    const outputs = days.length ? Object.keys(days[0]).filter((f) => f !== "date") : ["sales"];
    return { seriesKeys: keys.filter((k) => k in answer), outputs };
  }

  function renderTable() {
    if (!shown) return;
    const { outputs } = forecastColumns(shown);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const name of ["date", ...outputs]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name === "sales" ? "forecast (mean)" : name.toUpperCase();
      head.append(th);
    }
    const body = table.createTBody();
    for (const day of shown.forecast) {
      const tr = body.insertRow();
      tr.insertCell().textContent = day.date;
      for (const name of outputs) tr.insertCell().textContent = num(day[name]);
    }
    $("table").replaceChildren(table);
  }
  $("table-details").addEventListener("toggle", () => $("table-details").open && renderTable());

  $("download").addEventListener("click", () => {
    if (!shown) return;
    const { seriesKeys, outputs } = forecastColumns(shown);
    const lines = [csvLine([...seriesKeys, "date", ...outputs])];
    for (const day of shown.forecast) {
      lines.push(csvLine([...seriesKeys.map((k) => shown[k]), day.date, ...outputs.map((o) => day[o])]));
    }
    const link = document.createElement("a");
    const name = seriesKeys.map((k) => `${k}-${shown[k]}`).join("_");
    offerFile(link, `forecast_${name}_${shown.model_version}.csv`.replace(/[^\w.-]+/g, "-"),
      `${lines.join("\n")}\n`);
    document.body.append(link);
    link.click();
    link.remove();
  });

  // --- choosing a series ----------------------------------------------------------------------

  let loadSeq = 0;

  async function choose(series, preloaded) {
    const seq = ++loadSeq;
    const qs = query(series);
    chartBox.setAttribute("aria-busy", "true");
    try {
      const answers = (await preloaded)
        || (await Promise.all([window.demandcastGet(`history?${qs}`), window.demandcastGet(`forecast?${qs}`)]));
      const [hist, answer] = answers.map(unwrap);
      if (seq !== loadSeq) return;
      if (modelReady) await modelReady; // the model's frequency and keys label the chart
      draw(hist, answer);
      input.value = labelOf(dc.series);
      window.history.replaceState(null, "", `?${query(dc.series)}`);
      showError(null);
    } catch (err) {
      if (seq === loadSeq) showError(err);
      throw err;
    } finally {
      if (seq === loadSeq) chartBox.removeAttribute("aria-busy");
    }
  }

  const input = $("series-input");
  const list = $("series-list");
  let options = [];
  let active = -1;
  let searchSeq = 0;
  let timer = 0;

  function setActive(index) {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", `series-option-${active}`);
      list.children[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function open(show) {
    list.hidden = !show;
    input.setAttribute("aria-expanded", String(show));
    if (!show) setActive(-1);
  }

  async function suggest() {
    clearTimeout(timer);
    timer = 0;
    const seq = ++searchSeq;
    const found = await api(`series?${new URLSearchParams({ q: input.value, limit: "20" })}`);
    if (seq !== searchSeq) return false;
    options = found.series;
    list.replaceChildren(...options.map((series, i) => {
      const li = document.createElement("li");
      li.id = `series-option-${i}`;
      li.setAttribute("role", "option");
      li.textContent = describe(series);
      li.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep the focus in the input
        pick(series);
      });
      return li;
    }));
    $("series-count").textContent = found.matches
      ? `${int(found.matches)} of ${int(found.total)} series match`
        + (found.matches > options.length ? ` (first ${options.length} listed)` : "")
      : `No series matches “${input.value}”`;
    open(options.length > 0 && document.activeElement === input);
    setActive(options.length ? 0 : -1);
    return true;
  }

  function pick(series) {
    open(false);
    input.value = labelOf(series);
    choose(series).catch(() => { /* shown in the alert */ });
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = 0;
      suggest().catch(showError);
    }, 120);
  });
  input.addEventListener("focus", () => input.select());
  input.addEventListener("blur", () => open(false));
  input.addEventListener("keydown", async (event) => {
    const isOpen = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!isOpen) {
        await suggest().catch(showError);
        return;
      }
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((active + step + options.length) % options.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (!isOpen || timer) {
        if (!(await suggest().catch(showError))) return;
      }
      if (options.length) pick(options[Math.max(active, 0)]);
    } else if (event.key === "Escape" && isOpen) {
      event.preventDefault();
      open(false);
    }
  });

  // --- a CSV in, the CSV with forecasts out -----------------------------------------------------

  function parseCsv(text) {
    // RFC 4180 with the header line's delimiter (comma, semicolon or tab); blank lines skipped.
    // Returns the records and the line number each starts on.
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const head = text.slice(0, (text.indexOf("\n") + 1 || text.length + 1) - 1);
    const count = (ch) => head.split(ch).length;
    const delim = [";", "\t"].reduce((best, ch) => (count(ch) > count(best) ? ch : best), ",");
    const records = [];
    const lines = [];
    if (!text.includes('"')) {
      text.split("\n").forEach((raw, i) => {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line.trim() !== "") {
          records.push(line.split(delim));
          lines.push(i + 1);
        }
      });
      return { records, lines };
    }
    let record = [];
    let field = "";
    let quoted = false;
    let line = 1;
    let start = 1;
    const endRecord = () => {
      record.push(field);
      if (record.length > 1 || record[0].trim() !== "") {
        records.push(record);
        lines.push(start);
      }
      record = [];
      field = "";
    };
    for (let i = 0; i < text.length; i += 1) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 1;
          } else {
            quoted = false;
          }
        } else {
          if (ch === "\n") line += 1;
          field += ch;
        }
      } else if (ch === '"' && field === "") {
        quoted = true;
      } else if (ch === delim) {
        record.push(field);
        field = "";
      } else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i += 1;
        endRecord();
        line += 1;
        start = line;
      } else {
        field += ch;
      }
    }
    if (field !== "" || record.length) endRecord();
    return { records, lines };
  }

  function keyJson(text, position) {
    const value = (text == null ? "" : text).trim();
    return !knownStrings[position].has(value) && PLAIN_INT.test(value) ? value : JSON.stringify(value);
  }

  async function chunkSize() {
    try {
      const schema = await api("openapi.json");
      const most = schema.components.schemas.PredictRequest.properties.rows.maxItems;
      return Math.max(1, Math.min(MAX_CHUNK, most || MAX_CHUNK));
    } catch (_) {
      return MAX_CHUNK;
    }
  }

  async function forecastCsv(file) {
    await modelReady;
    const { records, lines } = parseCsv(await file.text());
    if (!records.length) throw new Error(`${file.name} is empty`);
    const columns = [...keys, "date"];
    let header = records[0].map((h) => h.trim().toLowerCase());
    let body = records.slice(1);
    let bodyLines = lines.slice(1);
    let outHeader = records[0];
    if (!header.includes("date")) {
      const first = records[0];
      if (first.length !== columns.length || !ISO_DATE.test(first[first.length - 1].trim())) {
        throw new Error(`${file.name}: the first line must name the columns ${columns.join(",")} `
          + `(found: ${first.join(",").slice(0, 80)})`);
      }
      header = columns; // no header line: the columns in this order
      outHeader = columns;
      body = records;
      bodyLines = lines;
    }
    if (!keys.includes("item") && header.includes("item")) {
      throw new Error(`${file.name} has an item column, but this model forecasts one series per `
        + "store: send store,date");
    }
    const missing = columns.filter((c) => !header.includes(c));
    if (missing.length) {
      throw new Error(`${file.name} has no ${missing.join(", ")} column: this model needs ${columns.join(",")}`);
    }
    if (!body.length) throw new Error(`${file.name} has a header and no rows`);
    const at = columns.map((c) => header.indexOf(c));
    const rows = body.map((record) => {
      const parts = keys.map((key, i) => `"${key}":${keyJson(record[at[i]], i)}`);
      const date = (record[at[keys.length]] || "").trim();
      return `{${parts.join(",")},"date":${JSON.stringify(date)}}`;
    });

    const chunk = await chunkSize();
    const values = [];
    let outputs = null;
    for (let start = 0; start < rows.length; start += chunk) {
      const end = Math.min(rows.length, start + chunk);
      status(`Forecasting rows ${int(start + 1)} to ${int(end)} of ${int(rows.length)}…`);
      let answer;
      try {
        answer = await api("predict", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: `{"rows":[${rows.slice(start, end).join(",")}]}`,
        });
      } catch (err) {
        throw explainRows(err, file.name, (i) => bodyLines[start + i]);
      }
      const predictions = answer.predictions;
      if (!outputs) outputs = Object.keys(predictions[0]).filter((k) => !ROW_KEYS.has(k));
      for (const p of predictions) values.push(outputs.map((o) => p[o]));
    }
    const taken = new Set(outHeader.map((h) => h.trim().toLowerCase()));
    const names = outputs.map((o) => (taken.has(o) ? `forecast_${o}` : o));
    const width = outHeader.length;
    const out = [csvLine([...outHeader, ...names])];
    body.forEach((record, i) => {
      const cells = record.length < width ? record.concat(new Array(width - record.length).fill("")) : record;
      out.push(csvLine([...cells, ...values[i]]));
    });
    return { text: `${out.join("\n")}\n`, rows: rows.length, requests: Math.ceil(rows.length / chunk) };
  }

  function explainRows(err, name, lineOf) {
    if (!(err instanceof ApiFailure) || !err.problems.length) return err;
    const where = (loc) => loc.replace(/^rows\[(\d+)\]\.?(.*)$/,
      (m, i, field) => `line ${lineOf(+i)}${field ? ` (${field})` : ""}`);
    const listed = err.problems.slice(0, 5).map((p) => `${where(p.loc)}: ${p.msg}`);
    const more = err.problems.length > 5 ? `; and ${err.problems.length - 5} more listed by the API` : "";
    const error = new Error(`${name} cannot be forecast: ${listed.join("; ")}${more}`);
    error.problems = err.problems;
    return error;
  }

  const statusBox = $("upload-status");
  const resultLink = $("upload-result");
  function status(text, isError) {
    statusBox.textContent = text;
    statusBox.classList.toggle("error-text", Boolean(isError));
  }

  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    resultLink.hidden = true;
    status(`Reading ${file.name}…`);
    const started = performance.now();
    try {
      const result = await forecastCsv(file);
      const seconds = ((performance.now() - started) / 1e3).toFixed(1);
      const name = `${file.name.replace(/\.(csv|txt)$/i, "")}_forecast.csv`;
      offerFile(resultLink, name, result.text);
      resultLink.textContent = `Download ${name}`;
      resultLink.hidden = false;
      status(`Forecast ${int(result.rows)} rows of ${file.name} in ${result.requests} `
        + `request${result.requests > 1 ? "s" : ""} (${seconds} s).`);
    } catch (err) {
      status(err.message, true);
    } finally {
      event.target.value = ""; // the same file again is a new change
    }
  });

  // --- start ----------------------------------------------------------------------------------

  async function start() {
    const pre = window.demandcastPreload;
    modelReady = pre.model.then(unwrap).then(showModel);
    modelReady.catch(showError);
    const first = unwrap(await pre.series).series[0];
    if (!first) throw new Error("the model has no series");
    try {
      await choose(first, pre.data);
    } catch (err) {
      // The address names no series of the model (or the model changed): show its first.
      if (!(err instanceof ApiFailure) || (err.status !== 404 && err.status !== 422)) throw err;
      await choose((await api("series?limit=1")).series[0]);
      if (pre.wanted) showError(err);
    }
  }

  start().catch(showError);
})();
