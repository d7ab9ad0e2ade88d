// The operator's console: polls the admin API of this pod and draws what it answers. No build step, no
// dependencies; the admin token (when the pod has one) is kept in sessionStorage and sent as a bearer header.
"use strict";

const TOKEN_KEY = "mq-service-admin-token";
const STATUS_EVERY_MS = 2000;
const SLOW_EVERY_MS = 5000;
const CHART_SAMPLES = 150; // five minutes of samples at STATUS_EVERY_MS
const SERIES = [
  { key: "received", color: "#2c5fd4" },
  { key: "handled", color: "#1a7f4b" },
  { key: "failed", color: "#c0392b" },
  { key: "deleted", color: "#8a5cc2" },
];

const $ = (id) => document.getElementById(id);
const samples = []; // {at, received, handled, failed, deleted}
let redriveRunning = false;

class Unauthorized extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) throw new Unauthorized(data.error || "unauthorized");
  if (!response.ok) throw new Error(data.error || `${method} ${path}: HTTP ${response.status}`);
  showAuth(null);
  return data;
}

function showAuth(text) {
  const box = $("auth");
  box.hidden = text === null;
  if (text !== null) box.textContent = text;
}

function showProblem(text) {
  const box = $("problem");
  box.hidden = text === null;
  if (text !== null) box.textContent = text;
}

function failed(error) {
  if (error instanceof Unauthorized) {
    showAuth(token()
      ? "The admin token is wrong: the pod refused it. Type the right one above."
      : "This pod needs its admin token (MQ_ADMIN_TOKEN): type it above.");
  } else {
    showProblem(String(error.message || error));
  }
}

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    failed(error);
  }
}

function text(id, value) {
  $(id).textContent = value === null || value === undefined ? "-" : String(value);
}

function when(epochSeconds) {
  // With the date: an error table may hold errors from several days.
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleString() : "";
}

// ---- status, counters, chart ----------------------------------------------------------------------------

async function refreshStatus() {
  const status = await api("GET", "/status");
  const pipeline = status.pipeline || {};
  for (const name of ["received", "handled", "failed", "deleted", "rejected"]) text(name, pipeline[name]);
  const capacity = (status.settings || {}).concurrency;
  text("in-flight", `${status.in_flight} / ${capacity}`);
  const interval = (status.settings || {}).deletion_interval_s;
  const visibility = (status.settings || {}).visibility_timeout;
  const seconds = interval ?? (visibility ? Math.min(10, visibility / 2) : null);
  if (seconds) $("deletion-interval").textContent = `${seconds} s (MQ_DELETION_INTERVAL_S)`;
  text("ready", status.ready ? "yes" : "no");
  const state = status.draining ? "draining" : status.paused ? "paused" : status.alive ? "running" : "down";
  const badge = $("state");
  badge.textContent = state + (status.ready || status.paused ? "" : " (not ready)");
  badge.className = `badge ${state}`;
  text("queue-name", ((status.settings || {}).queue_url || "").split("/").pop());
  $("paused-since").textContent = status.paused ? `Paused since ${when(status.paused_since)}.` : "";
  $("pause").disabled = Boolean(status.paused || status.draining);
  $("resume").disabled = Boolean(!status.paused || status.draining);
  $("drain").disabled = Boolean(status.draining);
  const limit = status.max_messages_per_s;
  $("limit-now").textContent = limit === null || limit === undefined ? "No rate limit." : `At most ${limit} messages/s.`;
  samples.push({ at: performance.now() / 1000, ...pipeline });
  if (samples.length > CHART_SAMPLES + 1) samples.shift();
  drawChart();
  showProblem(null);
}

function rates() {
  const lines = SERIES.map(() => []);
  for (let i = 1; i < samples.length; i++) {
    const seconds = samples[i].at - samples[i - 1].at;
    SERIES.forEach((series, s) => {
      lines[s].push(seconds > 0 ? Math.max(0, (samples[i][series.key] - samples[i - 1][series.key]) / seconds) : 0);
    });
  }
  return lines;
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const lines = rates();
  const axis = niceAxis(Math.max(...lines.flat(), 0));
  const top = axis.top;
  const pad = { left: 36, right: 8, top: 10, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5d6678";
  ctx.strokeStyle = "#dde1e8";
  ctx.lineWidth = 1;
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    ctx.fillText((top * fraction).toFixed(axis.decimals), 2, y + 4);
  }
  ctx.fillText("last 5 min, messages/s", pad.left, height - 4);
  const step = plotW / Math.max(1, CHART_SAMPLES - 1);
  SERIES.forEach((series, s) => {
    const points = lines[s];
    ctx.strokeStyle = series.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((value, i) => {
      const x = pad.left + plotW - (points.length - 1 - i) * step;
      const y = pad.top + plotH * (1 - value / top);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
  const legend = $("legend");
  legend.replaceChildren(...SERIES.map((series, s) => {
    const item = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.style.background = series.color;
    const last = lines[s].length ? lines[s][lines[s].length - 1] : 0;
    item.append(swatch, `${series.key} ${formatRate(last)}/s`);
    return item;
  }));
}

// The axis's top: 1, 2 or 5 times a power of ten, at least the highest rate; every label with the same
// decimals, those its middle tick needs (0.0 / 0.5 / 1.0, 0.0 / 2.5 / 5.0, 0 / 10 / 20, 0 / 250 / 500).
function niceAxis(highest) {
  const wanted = Math.max(highest, 1);
  const power = 10 ** Math.floor(Math.log10(wanted));
  const top = [1, 2, 5, 10].map((m) => m * power).find((value) => value >= wanted);
  let decimals = 0;
  while (Math.abs((top / 2) * 10 ** decimals - Math.round((top / 2) * 10 ** decimals)) > 1e-9) decimals += 1;
  return { top, decimals };
}

function formatRate(value) {
  return value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

// ---- queues, DLQ, redrive, errors -----------------------------------------------------------------------

function depth(prefix, queue) {
  text(`${prefix}-visible`, queue ? queue.visible : null);
  text(`${prefix}-in-flight`, queue ? queue.in_flight : null);
  text(`${prefix}-delayed`, queue ? queue.delayed : null);
  if (queue) $(`${prefix}-label`).textContent = queue.name;
}

async function refreshQueues() {
  const queues = await api("GET", "/queues");
  depth("queue", queues.queue);
  depth("dlq", queues.dead_letter_queue);
  $("dlq-label").textContent = queues.dead_letter_queue ? `${queues.dead_letter_queue.name} (dead letters)` : "no dead-letter queue";
  $("publish-row").hidden = !queues.publish_queue;
  if (queues.publish_queue) depth("publish", queues.publish_queue);
  $("peek").disabled = !queues.dead_letter_queue;
  $("redrive").disabled = !queues.dead_letter_queue || redriveRunning;
}

function cell(value, className, label) {
  const td = document.createElement("td");
  td.textContent = value;
  if (className) td.className = className;
  if (label) td.dataset.label = label; // shown before the value where the table stacks (phone width)
  return td;
}

function rows(tbody, items, columns, empty) {
  if (!items.length) {
    const tr = document.createElement("tr");
    const td = cell(empty, "muted");
    td.colSpan = columns;
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(...items);
}

async function peek() {
  const answer = await api("GET", "/dlq/messages?limit=10");
  const items = answer.messages.map((m) => {
    const tr = document.createElement("tr");
    const attributes = Object.entries(m.message_attributes).map(([k, v]) => `${k}=${v.StringValue ?? ""}`).join(", ");
    tr.append(
      cell(m.message_id, "id", "message id"),
      cell(m.body + (m.body_truncated ? ` … (${m.body_length} characters)` : ""), "body", "body"),
      cell(m.receive_count, "", "receives"),
      cell(m.sent_at ? new Date(m.sent_at).toLocaleString() : "", "", "sent"),
      cell(attributes, "", "attributes"),
    );
    return tr;
  });
  rows($("dlq-rows"), items, 5, "The dead-letter queue is empty.");
}

function showRedrive(task) {
  if (redriveRunning && task.state !== "running") {
    // What was shown has moved: ask again rather than show stale rows.
    rows($("dlq-rows"), [], 5, "Redrive ended: press Show messages to see what is left.");
  }
  redriveRunning = task.state === "running";
  const progress = $("redrive-progress");
  if (task.state === "none") {
    $("redrive-state").textContent = "no redrive yet";
    progress.hidden = true;
  } else {
    const failure = task.failure ? `: ${task.failure}` : "";
    $("redrive-state").textContent = `${task.state}: ${task.moved} of ${task.to_move} moved${failure}`;
    progress.hidden = false;
    progress.max = Math.max(1, task.to_move);
    progress.value = task.moved;
  }
  $("cancel-redrive").hidden = !redriveRunning;
  $("redrive").disabled = redriveRunning;
}

async function refreshRedrive() {
  showRedrive(await api("GET", "/dlq/redrive"));
}

// One group per message, newest first, with its last error: a message failing three times is one row, 3 attempts.
function groupErrors(errors) {
  const groups = new Map();
  for (const e of errors) {
    const group = groups.get(e.message_id);
    if (!group) groups.set(e.message_id, { ...e, attempts: 1 });
    else {
      group.attempts += 1;
      if (e.at > group.at) Object.assign(group, { ...e, attempts: group.attempts });
    }
  }
  return [...groups.values()].sort((a, b) => b.at - a.at);
}

async function refreshErrors() {
  const answer = await api("GET", "/errors");
  const items = groupErrors(answer.errors).map((e) => {
    const tr = document.createElement("tr");
    tr.append(
      cell(when(e.at), "", "last failed"),
      cell(e.route ?? "(no route)", "", "route"),
      cell(`${e.error_type}: ${e.error}`, "body", "error"),
      cell(e.attempts, "", "attempts"),
      cell(e.message_id, "id", "message id"),
    );
    return tr;
  });
  rows($("error-rows"), items, 5, "None.");
}

// ---- actions ------------------------------------------------------------------------------------------

function wire() {
  $("token").value = token();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    refreshAll();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    refreshAll();
  });
  $("pause").addEventListener("click", () => guarded(async () => {
    await api("POST", "/pause", {});
    await refreshStatus();
  }));
  $("resume").addEventListener("click", () => guarded(async () => {
    await api("POST", "/resume", {});
    await refreshStatus();
  }));
  $("drain").addEventListener("click", () => guarded(async () => {
    if (!window.confirm("Drain this pod? It stops receiving for good and finishes what it holds.")) return;
    $("drain").disabled = true;
    await api("POST", "/drain");
    await refreshStatus();
  }));
  $("limit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = Number($("limit").value);
    guarded(async () => {
      await api("PUT", "/limits", { max_messages_per_s: $("limit").value === "" ? null : value });
      await refreshStatus();
    });
  });
  $("no-limit").addEventListener("click", () => guarded(async () => {
    $("limit").value = "";
    await api("PUT", "/limits", { max_messages_per_s: null });
    await refreshStatus();
  }));
  $("peek").addEventListener("click", () => guarded(peek));
  $("redrive").addEventListener("click", () => guarded(async () => {
    showRedrive(await api("POST", "/dlq/redrive", {}));
  }));
  $("cancel-redrive").addEventListener("click", () => guarded(async () => {
    showRedrive(await api("DELETE", "/dlq/redrive"));
  }));
  window.addEventListener("resize", drawChart);
}

function refreshAll() {
  guarded(refreshStatus);
  guarded(refreshQueues);
  guarded(refreshRedrive);
  guarded(refreshErrors);
}

function every(ms, work) {
  setInterval(() => guarded(work), ms);
}

wire();
refreshAll();
every(STATUS_EVERY_MS, refreshStatus);
every(STATUS_EVERY_MS, async () => {
  if (redriveRunning) await refreshRedrive();
});
every(SLOW_EVERY_MS, refreshQueues);
every(SLOW_EVERY_MS, refreshErrors);
