// The live part of the rush dashboard: one event stream per page (a full snapshot, then
// what changed), the charts (plotly.js from the plotly wheel), the task table (the API,
// page by page) and the worker actions. The server rendered the page first.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("rush-config").textContent);
  const $ = (id) => document.getElementById(id);
  const STATE_COLORS = {
    queued: "#94a3b8", running: "#2563eb", finished: "#16a34a", failed: "#dc2626",
    terminated: "#64748b", killed: "#ea580c", lost: "#9333ea",
  };
  const MAX_POINTS = 4000;   // markers drawn at most; more tasks are drawn per bucket (min, max)
  const LOG_LINES = 300;

  const view = {
    version: null, objective: null, objectives: [], values: [], throughput: [],
    log: [], errors: [], workers: [], summary: null, minimize: true, logScale: false,
  };
  const tasks = { state: "all", where: [], sort: null, order: "asc", page: 0, size: 25,
                  lastFetch: 0, pending: false, lastCounts: "" };

  function url(path, params) {
    const q = new URLSearchParams({ token: config.token });
    for (const [k, v] of Object.entries(params || {})) {
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else if (v !== null && v !== undefined) q.set(k, v);
    }
    return path + "?" + q.toString();
  }

  function networkPath(suffix) {
    return "/api/networks/" + encodeURIComponent(config.network_id) + (suffix || "");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function fmtNumber(x) {
    if (x === null || x === undefined) return "";
    if (Number.isInteger(x)) return x.toLocaleString("en-US");
    const a = Math.abs(x);
    return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? x.toExponential(4) : String(+x.toPrecision(6));
  }

  function fmtTime(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }

  // -- the event stream ------------------------------------------------------------

  function connect() {
    const path = config.network_id ? networkPath("/events") : "/api/events";
    const params = config.network_id && view.objective ? { objective: view.objective } : {};
    const source = new EventSource(url(path, params));
    const live = $("live");
    source.onopen = () => { live.className = "live on"; live.textContent = "live"; };
    source.onerror = () => { live.className = "live off"; live.textContent = "reconnecting"; view.version = null; };
    source.addEventListener("update", (e) => apply(JSON.parse(e.data)));
    source.addEventListener("networks", (e) => renderNetworks(JSON.parse(e.data)));
    return source;
  }

  let source = null;

  function reconnect() {
    if (source) source.close();
    view.version = null;
    source = connect();
  }

  function apply(msg) {
    view.version = msg.version;
    view.summary = msg.summary;
    view.workers = msg.workers;
    view.objectives = msg.objectives;
    if (msg.type === "full" || msg.objective !== view.objective) {
      view.objective = msg.objective;
      view.values = msg.trace.values.slice();
      view.throughput = msg.throughput.slice();
      view.log = msg.log.slice(-LOG_LINES);
      view.errors = msg.errors;
    } else {
      view.values.length = msg.trace.start;  // a delta starts where the page's values end
      for (const v of msg.trace.values) view.values.push(v);
      for (const p of msg.throughput) view.throughput.push(p);
      for (const r of msg.log) view.log.push(r);
      if (view.log.length > LOG_LINES) view.log.splice(0, view.log.length - LOG_LINES);
      if (msg.errors) view.errors = msg.errors;
    }
    $("problem").hidden = !msg.problem;
    $("problem").textContent = msg.problem ? "Reading the network failed: " + msg.problem : "";
    renderCounters();
    renderCurrentNetwork();
    renderWorkers();
    renderObjectives();
    scheduleCharts();
    renderLog();
    renderErrors();
    maybeRefreshTasks();
  }

  // -- counters, workers, networks ---------------------------------------------------

  function renderCounters() {
    const s = view.summary;
    if (!s) return;
    for (const [state, n] of Object.entries(s.tasks)) {
      const node = $("count-" + state);
      if (node) node.textContent = n.toLocaleString("en-US");
    }
    for (const [state, n] of Object.entries(s.workers)) {
      const node = $("workers-" + state);
      if (node) node.textContent = n.toLocaleString("en-US");
    }
  }

  function networkMeta(n) {
    return (n.tasks.finished || 0).toLocaleString("en-US") + " finished · " +
      (n.workers.running || 0) + " running";
  }

  function renderCurrentNetwork() {
    const meta = document.querySelector("#networks li.current .meta");
    if (meta && view.summary) setText(meta, networkMeta(view.summary));
  }

  // Rows are updated in place (keyed by worker id): a button stays the same element
  // between updates, so a click is never lost to a redraw.
  function renderWorkers() {
    const body = $("workers").tBodies[0];
    const rows = new Map([...body.querySelectorAll("tr[data-worker-id]")].map((r) => [r.dataset.workerId, r]));
    for (const empty of body.querySelectorAll("tr.empty")) empty.remove();
    let previous = null;
    for (const w of view.workers) {
      let row = rows.get(w.worker_id);
      rows.delete(w.worker_id);
      if (!row) row = workerRow(w.worker_id);
      fillWorkerRow(row, w);
      if (row.previousElementSibling !== previous || row.parentNode !== body) {
        if (previous) previous.after(row); else body.prepend(row);
      }
      previous = row;
    }
    for (const gone of rows.values()) gone.remove();
    if (!view.workers.length) {
      body.append(el("tr", { class: "empty" }, el("td", { colspan: "8", text: "no workers registered" })));
    }
    $("workers-hint").textContent = view.workers.length + " registered (workers stay listed when they end)";
  }

  function workerRow(workerId) {
    return el("tr", { "data-worker-id": workerId },
      el("td", { class: "id", text: workerId }),
      el("td", { class: "state" }, el("span", { class: "badge" })),
      el("td", { class: "host" }), el("td", { class: "num pid" }), el("td", { class: "num heartbeat" }),
      el("td", { class: "num finished" }), el("td", { class: "error" }), el("td", { class: "actions" }));
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function fillWorkerRow(row, w) {
    row.className = "state-" + w.state;
    const cells = row.cells;
    const badge = cells[1].firstElementChild || cells[1].appendChild(el("span"));
    badge.className = "badge " + w.state;
    setText(badge, w.state);
    setText(cells[2], w.hostname + (w.remote ? " (remote)" : ""));
    setText(cells[3], String(w.pid));
    const expired = w.heartbeat && w.heartbeat_age === null && w.state === "running";
    setText(cells[4], expired ? "expired" : w.heartbeat && w.heartbeat_age !== null ? w.heartbeat_age + " s" : "-");
    cells[4].classList.toggle("warn", expired);
    cells[4].title = w.heartbeat ? "seconds since its heartbeat" : "no heartbeat: a local process";
    setText(cells[5], w.finished.toLocaleString("en-US"));
    setText(cells[6], w.last_error || "");
    cells[6].title = w.last_error || "";
    const actions = cells[7];
    if (w.state === "running" && !actions.querySelector("button")) {
      actions.append(button("terminate", w.worker_id), button("kill", w.worker_id));
    } else if (w.state !== "running") {
      actions.replaceChildren();
    }
  }

  function button(action, workerId) {
    const b = el("button", { type: "button", class: action, text: action, "data-worker-id": workerId });
    b.addEventListener("click", () => stopWorker(action, workerId, b));
    return b;
  }

  async function stopWorker(action, workerId, node) {
    const what = action === "kill"
      ? "Kill worker " + workerId + " now? Its running tasks fail."
      : "Terminate worker " + workerId + "? It stops after its current step.";
    if (!window.confirm(what)) return;
    node.disabled = true;
    try {
      const response = await fetch(url(networkPath("/workers/stop")), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action: action, worker_ids: [workerId] }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({ error: response.statusText }));
        window.alert(action + " failed: " + body.error);
      }
    } finally {
      node.disabled = false;
    }
  }

  function renderNetworks(networks) {
    const list = $("networks");
    list.replaceChildren();
    if (!networks.length) {
      list.append(el("li", { class: "empty", text: "no networks on this server" }));
      return;
    }
    for (const n of networks) {
      const href = url("/networks/" + encodeURIComponent(n.network_id));
      const current = n.network_id === config.network_id && view.summary ? view.summary : n;
      list.append(el("li", n.network_id === config.network_id ? { class: "current" } : {},
        el("a", { href: href }, el("span", { class: "name", text: n.network_id }),
          el("span", { class: "meta", text: networkMeta(current) }))));
    }
    if (!config.network_id && networks.length) {
      $("problem").hidden = false;
      $("problem").textContent = "Choose a network on the left.";
    }
  }

  // -- charts ------------------------------------------------------------------------

  let chartsScheduled = false;

  function scheduleCharts() {
    if (chartsScheduled) return;
    chartsScheduled = true;
    window.requestAnimationFrame(() => { chartsScheduled = false; renderCharts(); });
  }

  // a new object for each plot and each draw: Plotly.react writes into the layout it gets
  function layout(x, y, extra) {
    const axis = { gridcolor: "#eef2f7", zeroline: false, automargin: true };
    return Object.assign({
      margin: { l: 56, r: 16, t: 8, b: 40 }, height: 260, showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.14, font: { size: 11 } },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#ffffff",
      font: { family: "Inter, system-ui, sans-serif", size: 12, color: "#334155" },
      xaxis: Object.assign({}, axis, x), yaxis: Object.assign({}, axis, y),
    }, extra || {});
  }
  const plotConfig = { displaylogo: false, responsive: true, displayModeBar: false };

  function renderCharts() {
    if (typeof Plotly === "undefined") return;
    const t = view.throughput;
    Plotly.react("throughput", [{
      x: t.map((p) => new Date(p[0] * 1000)), y: t.map((p) => p[1]), type: "scatter",
      mode: "lines", line: { color: "#2563eb", width: 2 }, fill: "tozeroy",
      fillcolor: "rgba(37,99,235,0.08)", name: "tasks/s", hovertemplate: "%{y:.1f} tasks/s<extra></extra>",
    }], layout({ type: "date", tickformat: "%H:%M:%S" }, { rangemode: "tozero", title: { text: "tasks/s" } },
              { showlegend: false }), plotConfig);
    renderTrace();
  }

  function bestSteps(values, minimize) {
    const xs = [], ys = [];
    let best = null;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null) continue;
      if (best === null || (minimize ? v < best : v > best)) {
        best = v; xs.push(i + 1); ys.push(v);
      }
    }
    if (xs.length) { xs.push(values.length); ys.push(best); }
    return { xs, ys, best };
  }

  function decimated(values) {
    const n = values.length;
    const xs = [], ys = [];
    if (n <= MAX_POINTS) {
      for (let i = 0; i < n; i++) if (values[i] !== null) { xs.push(i + 1); ys.push(values[i]); }
      return { xs, ys, note: "" };
    }
    const size = Math.ceil(n / (MAX_POINTS / 2));
    for (let start = 0; start < n; start += size) {
      let lo = -1, hi = -1;
      for (let i = start; i < Math.min(n, start + size); i++) {
        const v = values[i];
        if (v === null) continue;
        if (lo < 0 || v < values[lo]) lo = i;
        if (hi < 0 || v > values[hi]) hi = i;
      }
      for (const i of (lo < hi ? [lo, hi] : [hi, lo])) {
        if (i >= 0 && (xs.length === 0 || xs[xs.length - 1] !== i + 1)) { xs.push(i + 1); ys.push(values[i]); }
      }
    }
    return { xs, ys, note: " (lowest and highest of each " + size + " tasks shown)" };
  }

  function renderTrace() {
    const values = view.values;
    const name = view.objective || "objective";
    const points = decimated(values);
    const steps = bestSteps(values, view.minimize);
    $("best").textContent = steps.best === null ? "" : "best " + name + " = " + fmtNumber(steps.best);
    Plotly.react("trace", [
      { x: points.xs, y: points.ys, type: "scatter", mode: "markers", name: name + points.note,
        marker: { size: 4, color: "rgba(100,116,139,0.45)" },
        hovertemplate: "task %{x}<br>" + name + " = %{y}<extra></extra>" },
      { x: steps.xs, y: steps.ys, type: "scatter", mode: "lines", line: { shape: "hv", color: "#16a34a", width: 2.5 },
        name: "best so far", hovertemplate: "best %{y}<extra></extra>" },
    ], layout({ type: "linear", title: { text: "finished task #" }, rangemode: "tozero" },
              { type: view.logScale ? "log" : "linear", title: { text: name } }), plotConfig);
  }

  function renderObjectives() {
    const select = $("objective");
    const wanted = view.objectives.join("\u0000");
    if (select.dataset.options !== wanted) {
      select.replaceChildren(...view.objectives.map((o) => el("option", { value: o, text: o })));
      select.dataset.options = wanted;
    }
    if (view.objective) select.value = view.objective;
    select.disabled = !view.objectives.length;
  }

  // -- log and errors ----------------------------------------------------------------

  function renderLog() {
    const pre = $("log");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.replaceChildren(...view.log.map((r) => el("span", { class: "line " + r.level },
      el("span", { class: "time", text: fmtTime(r.timestamp) + " " }),
      el("span", { class: "who", text: "[" + r.worker_id + "] " }),
      el("span", { class: "level", text: r.level.toUpperCase() + " " }),
      r.msg.split("\n")[0] + "\n")));
    if (!view.log.length) pre.textContent = "no log records (start workers with lgr_thresholds={\"rush\": \"info\"})";
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  const foldedErrors = {};

  function renderErrors() {
    const box = $("errors");
    if (!view.errors.length) { box.replaceChildren(el("p", { class: "quiet", text: "none" })); return; }
    // the newest error shows its traceback until the user folds it
    for (const d of box.querySelectorAll("details")) foldedErrors[d.dataset.key] = !d.open;
    box.replaceChildren(...view.errors.slice().reverse().map((e, i) => {
      const key = e.worker_id + "@" + e.timestamp;
      const d = el("details", { "data-worker-id": e.worker_id, "data-key": key },
        el("summary", {}, el("span", { class: "who", text: e.worker_id }), " ",
          el("span", { class: "time", text: fmtTime(e.timestamp) }), " ",
          el("span", { class: "message", text: e.message })),
        el("pre", { class: "traceback", text: e.traceback }));
      d.open = key in foldedErrors ? !foldedErrors[key] : i === 0;
      return d;
    }));
  }

  // -- tasks ---------------------------------------------------------------------------

  function maybeRefreshTasks() {
    const counts = JSON.stringify(view.summary ? view.summary.tasks : {});
    if (counts === tasks.lastCounts) return;
    if (Date.now() - tasks.lastFetch < 1000) {
      if (!tasks.pending) { tasks.pending = true; setTimeout(() => { tasks.pending = false; maybeRefreshTasks(); }, 1000); }
      return;
    }
    tasks.lastCounts = counts;
    loadTasks();
  }

  async function loadTasks() {
    if (!config.network_id) return;
    tasks.lastFetch = Date.now();
    const params = { state: tasks.state, where: tasks.where, page: tasks.page, size: tasks.size };
    if (tasks.sort) { params.sort = tasks.sort; params.order = tasks.order; }
    const response = await fetch(url(networkPath("/tasks"), params));
    const body = await response.json();
    const error = $("task-error");
    if (!response.ok) { error.hidden = false; error.textContent = body.error; return; }
    error.hidden = true;
    renderTasks(body);
  }

  function cell(column, value) {
    if (value === null || value === undefined) return el("td", { class: "null", text: "" });
    if (typeof value === "number") return el("td", { class: "num", text: fmtNumber(value) });
    if (column === "state") return el("td", {}, el("span", { class: "badge " + value, text: value }));
    if (column === "keys") return el("td", { class: "key", text: String(value).slice(0, 8), title: value });
    if (typeof value === "object") {
      const text = value.message !== undefined ? value.message : JSON.stringify(value);
      return el("td", { class: "object", text: text, title: value.traceback || JSON.stringify(value) });
    }
    return el("td", { text: String(value), title: String(value) });
  }

  function renderTasks(body) {
    const table = $("tasks");
    const head = el("tr", {}, ...body.columns.map((c) => {
      const arrow = tasks.sort === c ? (tasks.order === "asc" ? " \u25B2" : " \u25BC") : "";
      const th = el("th", { text: c + arrow, "data-column": c, title: "sort by " + c });
      th.addEventListener("click", () => {
        tasks.order = tasks.sort === c && tasks.order === "asc" ? "desc" : "asc";
        tasks.sort = c; tasks.page = 0; loadTasks();
      });
      return th;
    }));
    table.tHead.replaceChildren(head);
    const rows = body.rows.map((r) => el("tr", {}, ...r.map((v, i) => cell(body.columns[i], v))));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: String(body.columns.length), text: "no tasks" })));
    table.tBodies[0].replaceChildren(...rows);
    const first = body.page * body.size;
    const last = Math.min(first + body.size, body.matched);
    $("task-count").textContent = body.matched.toLocaleString("en-US") + " of " +
      body.total.toLocaleString("en-US") + " tasks";
    $("page").textContent = body.matched ? (first + 1).toLocaleString("en-US") + "–" + last.toLocaleString("en-US") : "";
    $("prev").disabled = body.page === 0;
    $("next").disabled = last >= body.matched;
  }

  // -- controls ----------------------------------------------------------------------

  function setUp() {
    $("objective").addEventListener("change", (e) => { view.objective = e.target.value; reconnect(); });
    $("direction").addEventListener("change", (e) => { view.minimize = e.target.value === "min"; scheduleCharts(); });
    $("trace-log").addEventListener("change", (e) => { view.logScale = e.target.checked; scheduleCharts(); });
    $("task-state").addEventListener("change", (e) => { tasks.state = e.target.value; tasks.page = 0; loadTasks(); });
    let timer = null;
    $("task-filter").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        tasks.where = e.target.value.split(";").map((s) => s.trim()).filter((s) => s);
        tasks.page = 0; loadTasks();
      }, 400);
    });
    $("prev").addEventListener("click", () => { tasks.page = Math.max(0, tasks.page - 1); loadTasks(); });
    $("next").addEventListener("click", () => { tasks.page += 1; loadTasks(); });
    // the server rendered the rows: give the running workers their buttons now
    for (const row of document.querySelectorAll("#workers tbody tr[data-worker-id]")) {
      if (row.classList.contains("state-running")) {
        row.querySelector("td.actions").append(button("terminate", row.dataset.workerId), button("kill", row.dataset.workerId));
      }
    }
  }

  setUp();
  source = connect();
  if (config.network_id) loadTasks();
})();
