// The operator's console: polls the admin API of this pod and draws what it answers. No build step, no
// dependencies; the admin token (when the pod has one) is kept in sessionStorage and sent as a bearer header.
"use strict";

const TOKEN_KEY = "mq-service-admin-token";
const STATUS_EVERY_MS = 2000;
const SLOW_EVERY_MS = 5000;
const DEPTHS_PER_TICK = 5; // queues whose depths are read every SLOW_EVERY_MS at most, in turn
const CHART_SAMPLES = 150; // five minutes of samples at STATUS_EVERY_MS
const SERIES = [
  { key: "received", color: "#2c5fd4" },
  { key: "handled", color: "#1a7f4b" },
  { key: "failed", color: "#c0392b" },
  { key: "deleted", color: "#8a5cc2" },
];

const $ = (id) => document.getElementById(id);
let redriveRunning = false;
let cardQueue = null; // the queue the depths, dead-letter and error cards show; null: the routes without a name
let cardSwitches = 0; // how often the operator chose another queue for the cards

class Unauthorized extends Error {}
class Stale extends Error {} // an answer for the queue the cards showed before the operator chose another

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
  if (error instanceof Stale) return;
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

// Counters read at each /status poll, and the rates per second between successive reads: the totals' (the chart,
// five minutes of them) and each queue's (its row, the last two).
class Samples {
  constructor(kept) {
    this.kept = kept;
    this.list = []; // {at, received, handled, ...}
  }

  add(at, counters) {
    this.list.push({ at, ...counters });
    if (this.list.length > this.kept) this.list.shift();
  }

  rates(key) {
    const rates = [];
    for (let i = 1; i < this.list.length; i++) {
      const seconds = this.list[i].at - this.list[i - 1].at;
      rates.push(seconds > 0 ? Math.max(0, (this.list[i][key] - this.list[i - 1][key]) / seconds) : 0);
    }
    return rates;
  }

  last(key) {
    const rates = this.rates(key);
    return rates.length ? rates[rates.length - 1] : null;
  }
}

const samples = new Samples(CHART_SAMPLES + 1);

function when(epochSeconds) {
  // With the date: an error table may hold errors from several days.
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleString() : "";
}

// ---- status, counters, chart ----------------------------------------------------------------------------

async function refreshStatus() {
  const status = await api("GET", "/status");
  const at = performance.now() / 1000;
  const pipeline = status.pipeline || {};
  for (const name of ["received", "handled", "failed", "deleted", "rejected"]) text(name, pipeline[name]);
  text("in-flight", `${status.in_flight} / ${podCapacity(status)}`);
  const interval = (status.settings || {}).deletion_interval_s;
  const visibility = (status.settings || {}).visibility_timeout;
  const seconds = interval ?? (visibility ? Math.min(10, visibility / 2) : null);
  if (seconds) $("deletion-interval").textContent = `${seconds} s (MQ_DELETION_INTERVAL_S)`;
  text("ready", status.ready ? "yes" : "no");
  showState(status);
  $("paused-since").textContent = status.paused ? `Paused since ${when(status.paused_since)}.` : "";
  $("pause").disabled = Boolean(status.paused || status.draining);
  $("resume").disabled = Boolean(!status.paused || status.draining);
  $("drain").disabled = Boolean(status.draining);
  const limit = status.max_messages_per_s;
  $("limit-now").textContent = limit === null || limit === undefined ? "No rate limit." : `At most ${limit} messages/s.`;
  samples.add(at, pipeline);
  drawChart();
  showQueues(status, at);
  showProblem(null);
}

// Handlers at once in the pod: the queue's concurrency; with several queues, the sum of theirs, or the budget they
// share (max_in_flight) when it is smaller.
function podCapacity(status) {
  const queues = Object.values(status.queues || {});
  if (queues.length < 2) return (status.settings || {}).concurrency;
  const sum = queues.reduce((total, queue) => total + queue.capacity, 0);
  return status.max_in_flight ? Math.min(sum, status.max_in_flight) : sum;
}

// The pod's state; with several queues it is paused when every queue is, and says how many are.
function showState(status) {
  const queues = Object.values(status.queues || {});
  const pausedQueues = queues.filter((queue) => queue.paused).length;
  const paused = queues.length > 1 ? pausedQueues === queues.length : status.paused;
  const state = status.draining ? "draining" : paused ? "paused" : status.alive ? "running" : "down";
  const some = queues.length > 1 && pausedQueues && !paused;
  const badge = $("state");
  badge.textContent = state + (status.ready || paused ? "" : " (not ready)")
    + (some ? ` (${pausedQueues} of ${queues.length} queues paused)` : "");
  badge.className = `badge ${state}`;
  const first = ((status.settings || {}).queue_url || "").split("/").pop();
  text("queue-name", queues.length > 1 ? `${queues.length} queues` : first);
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
  const lines = SERIES.map((series) => samples.rates(series.key));
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

// ---- every queue (a service with several): one row each, its own controls --------------------------------

// The row's counters: [field, column name]; a cell's data-testid is `queue-<field>`.
const QUEUE_FIELDS = [
  ["received-rate", "received/s"],
  ["handled-rate", "handled/s"],
  ["handled", "handled"],
  ["failed", "failed"],
  ["in-flight", "in this pod"],
  ["depth", "visible / not visible / delayed"],
  ["dead-letters", "dead letters"],
  ["state", "state"],
  ["limit", "rate limit"],
];
const TEXT_FIELDS = new Set(["state", "limit"]);
const queueRows = new Map(); // name -> {name, row, cells, samples, pause, resume, setLimit, redrive, ...}
let depthTurn = 0; // the next queue whose depths are read
let depthsReading = false; // a turn is out: the next waits (a slow SQS does not pile turns up)

// One queue's route (`suffix` of /queues/{name}); a refusal is named after the queue (the banner may show any
// queue's).
async function queueApi(name, method, suffix = "", body) {
  try {
    return await api(method, `/queues/${encodeURIComponent(name)}${suffix}`, body);
  } catch (error) {
    throw error instanceof Unauthorized ? error : new Error(`${name}: ${error.message || error}`);
  }
}

function button(label, testid, onClick, name) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.dataset.testid = testid;
  if (name) element.setAttribute("aria-label", name); // "Pause orders": one of many Pause buttons
  if (onClick) element.addEventListener("click", onClick);
  return element;
}

function showQueues(status, at) {
  const queues = Object.entries(status.queues || {});
  const several = queues.length > 1;
  $("queue-section").hidden = !several;
  $("per-queue-note").hidden = !several;
  for (const id of ["pause", "resume", "limit-form", "limit-now", "paused-since"]) $(id).hidden = several;
  if (!several) return;
  const names = queues.map(([name]) => name);
  if (names.join("\n") !== [...queueRows.keys()].join("\n")) buildQueueRows(names);
  for (const [name, queue] of queues) showQueue(queueRows.get(name), queue, status.draining, at);
}

function buildQueueRows(names) {
  queueRows.clear();
  depthTurn = 0;
  for (const name of names) queueRows.set(name, queueRow(name));
  $("queue-rows").replaceChildren(...[...queueRows.values()].map((entry) => entry.row));
  $("card-queue").replaceChildren(...names.map((name) => new Option(name)));
  // At first the cards show the first queue, as the routes without a name do: nothing of another to clear.
  if (cardQueue === null) cardQueue = names[0];
  if (names.includes(cardQueue)) nameCards();
  else chooseQueue(names[0]);
  const rounds = Math.ceil(names.length / DEPTHS_PER_TICK);
  const seconds = (rounds * SLOW_EVERY_MS) / 1000;
  $("depths-pace").textContent = rounds > 1 ? `each queue's every ${seconds} s` : `every ${seconds} s`;
}

function queueRow(name) {
  const row = document.createElement("tr");
  row.dataset.queue = name;
  row.dataset.testid = "queue-row";
  const cells = {};
  for (const [field, label] of QUEUE_FIELDS) {
    cells[field] = cell("-", TEXT_FIELDS.has(field) ? field : `num ${field}`, label);
    cells[field].dataset.testid = `queue-${field}`;
  }
  const entry = { name, row, cells, samples: new Samples(2), redriveRunning: false };
  const nameCell = cell(name, "name");
  nameCell.dataset.testid = "queue-name";
  row.append(nameCell, ...Object.values(cells), queueActions(entry));
  return entry;
}

function queueActions(entry) {
  const name = entry.name;
  entry.pause = button("Pause", "queue-pause", () => guarded(async () => {
    await queueApi(name, "POST", "/pause", {});
    await refreshStatus();
  }), `Pause ${name}`);
  entry.resume = button("Resume", "queue-resume", () => guarded(async () => {
    await queueApi(name, "POST", "/resume", {});
    await refreshStatus();
  }), `Resume ${name}`);
  const limit = document.createElement("input");
  Object.assign(limit, { type: "number", min: "0.01", step: "any", placeholder: "no limit" });
  limit.dataset.testid = "queue-limit-input";
  limit.setAttribute("aria-label", `Rate limit of ${name} (messages/s, this pod)`);
  entry.setLimit = button("Set limit", "queue-set-limit", null, `Set the rate limit of ${name}`);
  entry.setLimit.type = "submit";
  const form = document.createElement("form");
  form.className = "queue-limit";
  form.append(limit, entry.setLimit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = limit.value === "" ? null : Number(limit.value);
    guarded(async () => {
      await queueApi(name, "PUT", "/limits", { max_messages_per_s: value });
      await refreshStatus();
    });
  });
  entry.redrive = button("Redrive dead letters", "queue-redrive", () => guarded(async () => {
    showQueueRedrive(entry, await queueApi(name, "POST", "/dlq/redrive", {}));
  }), `Redrive the dead letters of ${name} to ${name}`);
  entry.redrive.hidden = true; // until its depths say it has a dead-letter queue
  entry.redriveState = document.createElement("span");
  entry.redriveState.className = "muted small";
  entry.redriveState.dataset.testid = "queue-redrive-state";
  const box = document.createElement("div");
  box.className = "queue-actions";
  box.append(entry.pause, entry.resume, form, entry.redrive, entry.redriveState);
  const td = cell("", "actions");
  td.append(box);
  return td;
}

function showQueue(entry, queue, draining, at) {
  const pipeline = queue.pipeline || {};
  entry.samples.add(at, pipeline);
  for (const key of ["received", "handled"]) {
    const rate = entry.samples.last(key);
    entry.cells[`${key}-rate`].textContent = rate === null ? "-" : formatRate(rate);
  }
  entry.cells.handled.textContent = String(pipeline.handled);
  entry.cells.failed.textContent = String(pipeline.failed);
  entry.cells["in-flight"].textContent = String(queue.in_flight);
  entry.cells.state.textContent = !queue.pipeline_running ? "stopped"
    : queue.paused ? `paused since ${when(queue.paused_since)}`
    : queue.ready ? "receiving" : `not ready: ${queue.not_ready_reason}`;
  const limit = queue.max_messages_per_s;
  entry.cells.limit.textContent = limit === null || limit === undefined ? "none" : `${limit}/s`;
  entry.row.classList.toggle("paused", Boolean(queue.paused));
  entry.pause.hidden = Boolean(queue.paused);
  entry.resume.hidden = !queue.paused;
  for (const control of [entry.pause, entry.resume, entry.setLimit]) control.disabled = Boolean(draining);
}

// A few queues' depths per call, in turn: with many queues each is read less often, SQS is not asked more.
async function refreshQueueDepths() {
  const entries = [...queueRows.values()];
  if (depthsReading || !entries.length) return;
  const count = Math.min(DEPTHS_PER_TICK, entries.length);
  const turn = Array.from({ length: count }, (_, i) => entries[(depthTurn + i) % entries.length]);
  depthTurn = (depthTurn + count) % entries.length;
  depthsReading = true;
  const outcomes = await Promise.allSettled(turn.map(refreshQueueDepth));
  depthsReading = false;
  const failure = outcomes.find((outcome) => outcome.status === "rejected");
  if (failure) throw failure.reason;
}

async function refreshQueueDepth(entry) {
  let depths = null;
  try {
    depths = await queueApi(entry.name, "GET");
  } finally {
    showQueueDepth(entry, depths);
  }
}

function showQueueDepth(entry, depths) {
  const queue = depths && depths.queue;
  const dlq = depths && depths.dead_letter_queue;
  entry.cells.depth.textContent = queue ? `${queue.visible} / ${queue.in_flight} / ${queue.delayed}` : "-";
  entry.cells["dead-letters"].textContent = !depths ? "-" : dlq ? String(dlq.visible) : "none";
  if (depths) entry.redrive.hidden = !dlq;
}

function showQueueRedrive(entry, task) {
  entry.redriveRunning = task.state === "running";
  entry.redriveState.textContent = task.state === "none" ? "" : `redrive ${redriveText(task)}`;
  entry.redrive.disabled = entry.redriveRunning;
  if (task.state !== "running") guarded(() => refreshQueueDepth(entry)); // its dead letters moved
}

async function refreshQueueRedrives() {
  const running = [...queueRows.values()].filter((entry) => entry.redriveRunning);
  await Promise.all(running.map(async (entry) => {
    showQueueRedrive(entry, await queueApi(entry.name, "GET", "/dlq/redrive"));
  }));
}

// ---- queues, DLQ, redrive, errors: of the queue chosen for the cards ---------------------------------

// The cards' calls: `suffix` of the chosen queue's routes (`/queues/{name}/errors`), or with one queue of the routes
// without a name (`/errors`; `/queues` for the depths). An answer asked for before a switch is dropped.
async function cardApi(method, suffix, body) {
  const [name, switches] = [cardQueue, cardSwitches];
  const data = name === null
    ? await api(method, suffix || "/queues", body)
    : await queueApi(name, method, suffix, body);
  if (switches !== cardSwitches) throw new Stale();
  return data;
}

function nameCards() {
  $("card-queue").value = cardQueue;
  $("queues-title").textContent = `Depths of ${cardQueue}`;
  $("dlq-title").textContent = `Dead-letter queue of ${cardQueue}`;
  $("errors-title").textContent = `Last handler errors of ${cardQueue}`;
}

// The cards show another queue: what they showed of the previous one goes at once, then the new one's is read.
function chooseQueue(name) {
  cardQueue = name;
  cardSwitches += 1;
  nameCards();
  for (const [prefix, label] of [["queue", "queue"], ["dlq", "dead letters"], ["publish", "publish queue"]]) {
    depth(prefix, null);
    $(`${prefix}-label`).textContent = label;
  }
  redriveRunning = false;
  showRedrive({ state: "none" });
  $("peek").disabled = true; // until its depths say it has a dead-letter queue
  $("redrive").disabled = true;
  rows($("dlq-rows"), [], 5, "Not loaded.");
  rows($("error-rows"), [], 5, "Not loaded.");
  guarded(refreshQueues);
  guarded(refreshRedrive);
  guarded(refreshErrors);
}

function depth(prefix, queue) {
  text(`${prefix}-visible`, queue ? queue.visible : null);
  text(`${prefix}-in-flight`, queue ? queue.in_flight : null);
  text(`${prefix}-delayed`, queue ? queue.delayed : null);
  if (queue) $(`${prefix}-label`).textContent = queue.name;
}

async function refreshQueues() {
  const queues = await cardApi("GET", "");
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
  const answer = await cardApi("GET", "/dlq/messages?limit=10");
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
    $("redrive-state").textContent = redriveText(task);
    progress.hidden = false;
    progress.max = Math.max(1, task.to_move);
    progress.value = task.moved;
  }
  $("cancel-redrive").hidden = !redriveRunning;
  $("redrive").disabled = redriveRunning;
}

function redriveText(task) {
  const failure = task.failure ? `: ${task.failure}` : "";
  return `${task.state}: ${task.moved} of ${task.to_move} moved${failure}`;
}

async function refreshRedrive() {
  showRedrive(await cardApi("GET", "/dlq/redrive"));
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
  const answer = await cardApi("GET", "/errors");
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
    showRedrive(await cardApi("POST", "/dlq/redrive", {}));
  }));
  $("cancel-redrive").addEventListener("click", () => guarded(async () => {
    showRedrive(await cardApi("DELETE", "/dlq/redrive"));
  }));
  $("card-queue").addEventListener("change", () => chooseQueue($("card-queue").value));
  window.addEventListener("resize", drawChart);
}

function refreshAll() {
  guarded(async () => {
    await refreshStatus();
    await refreshQueueDepths();
  });
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
every(STATUS_EVERY_MS, refreshQueueRedrives);
every(SLOW_EVERY_MS, refreshQueues);
every(SLOW_EVERY_MS, refreshQueueDepths);
every(SLOW_EVERY_MS, refreshErrors);
