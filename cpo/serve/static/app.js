// The cpo dashboard: plain JavaScript, no build step, no CDN.
// Runs come from GET /api/v1/runs; a run's page follows its Server-Sent Events, read with
// fetch() so that the API key travels in a header (EventSource cannot send one, and a key
// in the URL would land in access logs).
"use strict";

const $ = (sel) => document.querySelector(sel);
const ACTIVE = ["running", "starting"];
const view = { runs: [], id: null, report: null, state: null, stream: null, logTask: null };
const keyInput = $("#key");
keyInput.value = localStorage.getItem("cpo-key") || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("cpo-key", keyInput.value.trim());
  refreshRuns();
  if (view.id) openRun(view.id);
});

function headers() {
  const key = keyInput.value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.message || resp.statusText);
  return body;
}

function showError(err) {
  const el = $("#error");
  el.hidden = !err;
  el.textContent = err ? String(err.message || err) : "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const badge = (word) => el("span", { class: `badge s-${word}` }, word);
const secondsOf = (iso) => (iso ? Date.parse(iso) / 1000 : null);
const now = () => Date.now() / 1000;

function clock(secs) {
  if (secs == null) return "";
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
}

// -- runs list ---------------------------------------------------------------------------
async function refreshRuns() {
  try {
    const health = await fetch("/health").then((r) => r.json());
    $("#server").textContent = `v${health.version} · up ${health.uptime}` + (health.auth ? " · keys on" : "");
    const data = await api("/api/v1/runs");
    view.runs = data.runs;
    renderRuns();
  } catch (err) {
    $("#runs").replaceChildren(el("li", { class: "error" }, String(err.message || err)));
  }
}

function renderRuns() {
  const items = view.runs.map((r) => {
    const t = r.totals || {};
    const li = el(
      "li",
      { "data-run": r.id, class: r.id === view.id ? "active" : "", onclick: () => openRun(r.id) },
      el("div", {}, el("span", { class: "spec" }, r.spec_id || r.id), " ", badge(r.state)),
      el("div", { class: "meta" }, `${t.completed ?? 0}/${t.tasks ?? 0} done · ${r.started_at ? r.started_at.slice(0, 16).replace("T", " ") : ""}`),
      el("div", { class: "meta mono" }, r.dir.split("/").slice(-3).join("/")),
    );
    return li;
  });
  $("#runs").replaceChildren(...items);
  $("#runs-empty").hidden = view.runs.length > 0;
}

// -- one run -----------------------------------------------------------------------------
async function openRun(id) {
  if (view.stream) view.stream.abort();
  view.id = id;
  view.logTask = null;
  $("#log-panel").hidden = true;
  location.hash = id;
  $("#welcome").hidden = true;
  $("#run").hidden = false;
  renderRuns();
  showError(null);
  try {
    const data = await api(`/api/v1/runs/${id}`);
    view.report = data;
    view.state = data.live.state;
    render();
  } catch (err) {
    showError(err);
  }
  follow(id);
}

async function follow(id) {
  const ctrl = new AbortController();
  view.stream = ctrl;
  try {
    const resp = await fetch(`/api/v1/runs/${id}/events`, { headers: headers(), signal: ctrl.signal });
    if (!resp.ok) throw new Error((await resp.json()).message);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        handle(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") showError(err);
  }
}

function handle(block) {
  let type = "message", data = null;
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) type = line.slice(7);
    else if (line.startsWith("data: ")) data = JSON.parse(line.slice(6));
  }
  if (!data || !view.report) return;
  const report = view.report;
  if (type === "snapshot") {
    if (data.report) Object.assign(report, data.report);
    view.state = data.state;
  } else if (type === "task") {
    const { task, ...fields } = data;
    report.tasks[task] = { ...(report.tasks[task] || { id: task }), ...fields };
  } else if (type === "wave") {
    const i = report.waves.findIndex((w) => w.number === data.number);
    if (i >= 0) report.waves[i] = data; else report.waves.push(data);
  } else if (type === "run") {
    report.status = data.status;
    view.state = data.state;
  }
  scheduleRender();
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

function elapsed(t) {
  if (t.status === "running" && t.started_at) return now() - secondsOf(t.started_at);
  return t.duration_seconds;
}

function render() {
  const r = view.report;
  if (!r) return;
  $("#run-title").replaceChildren(r.spec_id, " ", el("span", { class: "muted small mono" }, view.id));
  $("#run-dir").textContent = r.parallel_dir;
  $("#run-state").replaceWith(Object.assign(badge(view.state), { id: "run-state" }));
  $("#cancel").hidden = !ACTIVE.includes(view.state);
  $("#resume").hidden = !["interrupted", "stopped", "failed"].includes(view.state);
  const tasks = Object.values(r.tasks);
  const count = (s) => tasks.filter((t) => t.status === s).length;
  const cost = tasks.reduce((a, t) => a + (t.cost_usd || 0), 0);
  const runSecs = (secondsOf(r.finished_at) || now()) - secondsOf(r.started_at);
  $("#totals").replaceChildren(
    ...[["tasks", tasks.length], ["running", count("running")], ["completed", count("completed")],
        ["failed", count("failed")], ["cost", `$${cost.toFixed(2)}`], ["elapsed", clock(runSecs)]]
      .map(([k, v]) => el("div", {}, el("b", {}, String(v)), el("span", { class: "muted" }, k))),
  );
  $("#waves").replaceChildren(
    ...r.waves.map((w) => el("div", { class: "wave", "data-wave": w.number }, `wave ${w.number} `, badge(w.status),
      w.validation_duration_seconds != null ? el("span", { class: "muted small" }, ` validation ${clock(w.validation_duration_seconds)}`) : "")),
  );
  const rows = tasks.map((t) =>
    el("tr", { "data-task": t.id, onclick: () => openLog(t.id) },
      el("td", { class: "mono" }, t.id), el("td", {}, String(t.wave)),
      el("td", { class: "status" }, badge(t.status), t.reason && t.reason !== t.status ? ` ${t.reason}` : ""),
      el("td", {}, clock(elapsed(t))), el("td", {}, t.commits ? String(t.commits) : ""),
      el("td", {}, t.cost_usd ? `$${t.cost_usd.toFixed(2)}` : ""),
      el("td", { class: "action", title: t.last_action || "" }, t.last_action || "")));
  $("#tasks tbody").replaceChildren(...rows);
  renderTimeline(r);
}

// -- timeline: one row per agent slot, a bar per attempt, validations per wave -------------
function renderTimeline(r) {
  const t0 = secondsOf(r.started_at);
  const attempts = [];
  for (const t of Object.values(r.tasks)) {
    for (const a of t.attempts || []) {
      const start = secondsOf(a.started_at);
      const end = secondsOf(a.finished_at) || (ACTIVE.includes(view.state) ? now() : start);
      attempts.push({ task: t.id, n: a.number, start, end, status: a.finished_at ? a.status : "running" });
    }
  }
  attempts.sort((a, b) => a.start - b.start);
  const slots = [];  // the end time of each slot's last bar: the lowest free slot is reused
  for (const a of attempts) {
    let i = slots.findIndex((end) => end <= a.start + 0.01);
    if (i < 0) { i = slots.length; slots.push(0); }
    slots[i] = a.end;
    a.slot = i;
  }
  const checks = r.waves.filter((w) => w.validation_duration_seconds != null || w.status === "validating").map((w) => {
    const end = secondsOf(w.finished_at) || now();
    const start = w.validation_duration_seconds != null ? end - w.validation_duration_seconds : end;
    return { wave: w.number, start, end, status: w.status === "validating" ? "validating" : w.status };
  });
  const t1 = Math.max(t0 + 1, ...attempts.map((a) => a.end), ...checks.map((c) => c.end),
    secondsOf(r.finished_at) || (ACTIVE.includes(view.state) ? now() : 0));
  const pct = (s) => `${((s - t0) / (t1 - t0)) * 100}%`;
  const width = (a, b) => `${Math.max(0.3, ((b - a) / (t1 - t0)) * 100)}%`;
  const bar = (label, start, end, status, title) =>
    el("div", { class: `tl-bar s-${status}`, style: `left:${pct(start)};width:${width(start, end)}`, title }, label);
  const rows = slots.map((_, i) =>
    el("div", { class: "tl-row" }, el("span", { class: "tl-label" }, `agent ${i + 1}`),
      ...attempts.filter((a) => a.slot === i).map((a) =>
        bar(a.n > 1 ? `${a.task} #${a.n}` : a.task, a.start, a.end, a.status,
          `${a.task} attempt ${a.n}: ${a.status}, ${clock(a.end - a.start)}`))));
  rows.push(el("div", { class: "tl-row" }, el("span", { class: "tl-label" }, "validation"),
    ...checks.map((c) => bar(`wave ${c.wave}`, c.start, c.end, c.status, `wave ${c.wave} validation: ${clock(c.end - c.start)}`))));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    el("span", { style: `left:${f * 100}%` }, clock(f * (t1 - t0))));
  rows.push(el("div", { class: "tl-axis" }, ...ticks));
  $("#timeline").replaceChildren(...rows);
}

// -- a task's log ------------------------------------------------------------------------
async function openLog(task) {
  view.logTask = task;
  $("#log-panel").hidden = false;
  $("#log-task").textContent = task;
  await refreshLog();
}

async function refreshLog() {
  if (!view.logTask || !view.id) return;
  try {
    const data = await api(`/api/v1/runs/${view.id}/tasks/${encodeURIComponent(view.logTask)}/log?tail=200`);
    const pre = $("#log");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = data.lines.join("\n") || "(empty so far)";
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  } catch (err) {
    showError(err);
  }
}

$("#log-close").addEventListener("click", () => { view.logTask = null; $("#log-panel").hidden = true; });
$("#cancel").addEventListener("click", async () => {
  try { await api(`/api/v1/runs/${view.id}/cancel`, { method: "POST" }); } catch (err) { showError(err); }
});
$("#resume").addEventListener("click", async () => {
  try {
    await api(`/api/v1/runs/${view.id}/resume`, { method: "POST" });
    openRun(view.id);
  } catch (err) { showError(err); }
});

setInterval(refreshRuns, 3000);
setInterval(() => { if (view.report && ACTIVE.includes(view.state)) scheduleRender(); }, 1000);
setInterval(() => { if (view.logTask && ACTIVE.includes(view.state)) refreshLog(); }, 2000);
refreshRuns();
if (location.hash.length > 1) openRun(decodeURIComponent(location.hash.slice(1)));
