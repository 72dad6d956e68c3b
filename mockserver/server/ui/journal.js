// The live journal page of koala-mock. Plain JavaScript, no dependencies, no build step.
//
// Everything comes from the admin API, with the same checks as any other client: the journal
// from GET /__admin/requests, live updates from GET /__admin/events (server-sent events, read
// with fetch() so the admin token can go in a header), actions as JSON POST/DELETE calls.
// Every value a request carried is inserted as text (createTextNode / textContent), never as
// HTML: nothing a client sends can run here.
"use strict";

const PAGE_SIZE = 300;
const TOKEN_KEY = "koala-mock-admin-token";

const store = new Map(); // entry number -> {entry, group (the entry's <tbody>)}
let shownLimit = PAGE_SIZE;
let lastEventId = null;
let retryMs = 1000;
let journalSize = 0;
let catalogue = [];
let token = takeToken();
let tokenWanted = null; // resolves when the user gives a token after a 401

// -- small DOM helpers: children are nodes or text, never markup ------------------------------

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
}

function byId(id) {
  return document.getElementById(id);
}

function show(message, isError) {
  const node = byId("message");
  node.textContent = message;
  node.className = isError ? "message error" : "message";
}

// -- the admin token: from a #token= fragment (never sent to the server) or typed in ----------

function takeToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    const given = decodeURIComponent(match[1]);
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
    return given;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function headers(extra) {
  const out = Object.assign({}, extra);
  if (token) out.Authorization = "Bearer " + token;
  return out;
}

function askForToken() {
  byId("token-bar").hidden = false;
  if (!tokenWanted) {
    tokenWanted = new Promise((resolve) => {
      byId("token-form").addEventListener("submit", (event) => {
        event.preventDefault();
        token = byId("token-input").value.trim();
        sessionStorage.setItem(TOKEN_KEY, token);
        byId("token-bar").hidden = true;
        tokenWanted = null;
        resolve();
      }, {once: true});
    });
  }
  return tokenWanted;
}

// -- the admin API -----------------------------------------------------------------------------

async function api(method, path, body) {
  const init = {method, headers: headers({Accept: "application/json"}), cache: "no-store"};
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let answer = null;
  try {
    answer = await response.json();
  } catch (error) {
    answer = {error: "the server's answer is not JSON (HTTP " + response.status + ")"};
  }
  if (response.status === 401) askForToken();
  if (!response.ok) {
    const problem = answer && answer.error ? answer.error : "HTTP " + response.status;
    throw new Error(method + " " + path + ": " + problem);
  }
  return answer;
}

async function action(what, run) {
  try {
    const answer = await run();
    show(what(answer), false);
  } catch (error) {
    show(error.message, true);
  }
}

// -- formatting --------------------------------------------------------------------------------

const ENDINGS = {
  eof: "complete",
  close: "cut (FIN)",
  abort: "cut (reset)",
  stall: "stalled, closed",
  client_disconnected: "client left",
  shutdown: "server shut down",
  server_bug: "server bug",
  upstream_broke_off: "upstream broke off",
  upstream_unreachable: "upstream unreachable",
};

function clock(seconds) {
  const at = new Date(seconds * 1000);
  const pad = (n, width) => String(n).padStart(width, "0");
  return pad(at.getHours(), 2) + ":" + pad(at.getMinutes(), 2) + ":" + pad(at.getSeconds(), 2) +
    "." + pad(at.getMilliseconds(), 3);
}

function size(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return (bytes / 1024 / 1024).toFixed(1) + " MiB";
}

function milliseconds(seconds) {
  return seconds === null || seconds === undefined ? "" : (seconds * 1000).toFixed(1) + " ms";
}

function plain(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function fieldList(problems, most) {
  const fields = problems.map((p) => String(p.field).replace(/^header /, ""));
  const shown = fields.slice(0, most).join(", ");
  return fields.length > most ? shown + " … (+" + (fields.length - most) + ")" : shown;
}

function verdictCell(verdict, shape) {
  // The row names the fields; the row's detail (and the tooltip) has every message.
  if (!verdict) return el("td", "muted", "not checked");
  const cell = el("td", "verdict");
  if (shape) cell.appendChild(el("span", "shape", String(shape)));
  const messages = verdict.errors.concat(verdict.warnings).map((p) => p.message);
  if (messages.length) cell.title = messages.join("\n");
  if (verdict.ok && !verdict.errors.length && !verdict.warnings.length) {
    cell.appendChild(el("span", "ok", "ok"));
  }
  if (verdict.errors.length) {
    cell.appendChild(el("span", "problem bad", "✗ " + fieldList(verdict.errors, 6)));
  } else if (!verdict.ok && verdict.error) {
    cell.appendChild(el("span", "problem bad", "✗ " + verdict.error));
  }
  if (verdict.warnings.length) {
    const count = verdict.warnings.length;
    cell.appendChild(el("span", "problem warn",
      "⚠ " + count + (count === 1 ? " warning: " : " warnings: ") + fieldList(verdict.warnings, 4)));
  }
  return cell;
}

function sizesCell(body) {
  if (!isObject(body) || typeof body.input !== "string") return el("td", "muted", "–");
  const count = (list) => (Array.isArray(list) ? list.length : 0);
  const cell = el("td", "sizes", body.input.length + " chars, history " +
    count(body.inputHistory) + "+" + count(body.outputHistory));
  cell.title = "input: " + body.input.length + " characters; inputHistory: " +
    count(body.inputHistory) + " messages; outputHistory: " + count(body.outputHistory);
  return cell;
}

function servedByCell(servedBy) {
  const cell = el("td");
  if (!isObject(servedBy) || !servedBy.source) return cell;
  const source = String(servedBy.source);
  cell.appendChild(el("span", "tag " + source.replace(/[^a-z_]/g, ""), source));
  const parts = [];
  for (const [key, value] of Object.entries(servedBy)) {
    if (key === "source") continue;
    if (key === "cassette" && servedBy.interaction !== undefined) {
      parts.push(plain(value) + " #" + plain(servedBy.interaction));
    } else if (key === "interaction" && servedBy.cassette !== undefined) {
      continue;
    } else if (key === "fault" || key === "answer") {
      parts.push(key === "answer" ? "answer: " + plain(value) : plain(value));
    } else {
      parts.push(key + " " + plain(value));
    }
  }
  if (parts.length) cell.appendChild(document.createTextNode(" " + parts.join(", ")));
  return cell;
}

function endingText(entry) {
  if (entry.ending === null || entry.ending === undefined) return "in progress…";
  let text = ENDINGS[entry.ending] || String(entry.ending);
  if (entry.fault && ["close", "abort", "stall"].includes(entry.ending)) text += " by the fault";
  return text;
}

// -- rows --------------------------------------------------------------------------------------

function entryRow(entry) {
  const row = el("tr", "entry" + (entry.ending ? "" : " running"));
  row.dataset.number = String(Number(entry.number));
  const status = entry.status === null ? "" : String(entry.status);
  const statusClass = entry.status >= 400 ? "status bad" : "status";
  row.append(
    el("td", "num", String(entry.number)),
    el("td", "time", clock(entry.time)),
    el("td", "req", el("span", "method", entry.method), " ", el("span", "path", entry.path)),
    verdictCell(entry.verdict, entry.shape),
    sizesCell(entry.body),
    servedByCell(entry.served_by),
    el("td", statusClass, status),
    el("td", null, entry.events_sent + " / " + size(entry.bytes_sent)),
    el("td", entry.client_disconnected ? "warn" : null, endingText(entry)),
    el("td", "took", milliseconds(entry.duration)),
  );
  row.addEventListener("click", () => toggleDetail(Number(entry.number)));
  return row;
}

function keyValueTable(object) {
  const table = el("table", "kv");
  for (const [key, value] of Object.entries(object || {})) {
    table.appendChild(el("tr", null, el("td", null, key), el("td", null, plain(value))));
  }
  return table;
}

function eventsTable(entry) {
  const values = entry.values;
  if (isObject(values) && values.omitted) return el("p", "help", "not kept: " + values.omitted);
  if (!Array.isArray(values)) return el("p", "help", "not an answer stream");
  const times = Array.isArray(entry.event_times) ? entry.event_times : null;
  const table = el("table", "events",
    el("tr", null, el("th", null, "#"), el("th", null, "sent at"), el("th", null, "value")));
  values.forEach((value, index) => {
    const sent = index < entry.events_sent;
    const at = !sent ? "not sent" : times && index < times.length ? milliseconds(times[index])
      : times ? "" : "one write";
    table.appendChild(el("tr", sent ? null : "muted",
      el("td", null, String(index + 1)), el("td", null, at), el("td", null, plain(value))));
  });
  return table;
}

function detailRow(entry) {
  const body = entry.body === null || entry.body === undefined ? "(no body)"
    : typeof entry.body === "string" ? entry.body : JSON.stringify(entry.body, null, 2);
  const verdict = entry.verdict ? JSON.stringify(entry.verdict, null, 2) : "not checked";
  const left = el("div", null,
    el("h3", null, "Request headers (credentials masked)"), keyValueTable(entry.headers),
    el("h3", null, "Body"), el("pre", null, body),
    el("h3", null, "Contract verdict"), el("pre", null, verdict));
  const served = Object.assign({}, entry.served_by || {});
  for (const key of ["status", "seed", "fault", "ending", "client_disconnected", "duration"]) {
    if (entry[key] !== null && entry[key] !== undefined) served[key] = entry[key];
  }
  const right = el("div", null,
    el("h3", null, "What served it"), el("pre", null, JSON.stringify(served, null, 2)),
    el("h3", null, "Events sent (" + entry.events_sent + ", " + size(entry.bytes_sent) + ")"),
    eventsTable(entry));
  const cell = el("td", null, el("div", "detail-grid", left, right));
  cell.colSpan = 10;
  return el("tr", "detail", cell);
}

function toggleDetail(number) {
  const item = store.get(number);
  if (!item) return;
  item.open = !item.open;
  render(item);
}

function render(item) {
  const group = item.group;
  group.replaceChildren(entryRow(item.entry));
  group.firstChild.classList.toggle("open", Boolean(item.open));
  if (item.open) group.appendChild(detailRow(item.entry));
}

function upsert(entry, fromList) {
  const number = Number(entry.number);
  const known = store.get(number);
  if (known) {
    // A listed copy is older than a live one that already says how the request ended.
    if (fromList && known.entry.ending && !entry.ending) return;
    known.entry = entry;
    render(known);
    return;
  }
  const item = {entry, group: el("tbody", "entry-group"), open: false};
  item.group.dataset.number = String(number);
  store.set(number, item);
  render(item);
  insertInOrder(item.group, number);
  trim();
  updateCounts();
}

function insertInOrder(group, number) {
  const table = byId("journal");
  let before = null;
  for (const other of table.tBodies) {
    if (Number(other.dataset.number) < number) {
      before = other;
      break;
    }
  }
  table.insertBefore(group, before);
}

function trim() {
  // Only the newest shownLimit entries stay in the page; older ones load on demand.
  if (store.size <= shownLimit) return;
  const numbers = Array.from(store.keys()).sort((a, b) => a - b);
  for (const number of numbers.slice(0, store.size - shownLimit)) {
    store.get(number).group.remove();
    store.delete(number);
  }
}

function clearStore() {
  for (const item of store.values()) item.group.remove();
  store.clear();
  shownLimit = PAGE_SIZE;
  updateCounts();
}

function updateCounts() {
  byId("empty").hidden = store.size > 0;
  const older = journalSize > store.size;
  byId("load-older").hidden = !older;
  byId("shown").textContent = store.size ? "showing " + store.size + " of " + journalSize : "";
}

async function loadJournal() {
  try {
    const answer = await api("GET", "/__admin/requests?limit=" + PAGE_SIZE);
    for (const entry of answer.requests) upsert(entry, true);
  } catch (error) {
    show(error.message, true);
  }
}

async function loadOlder() {
  const oldest = Math.min(...store.keys());
  try {
    const answer = await api("GET", "/__admin/requests?limit=" + PAGE_SIZE + "&before=" + oldest);
    shownLimit += answer.requests.length;
    for (const entry of answer.requests) upsert(entry, true);
  } catch (error) {
    show(error.message, true);
  }
}

// -- server state and the fault catalogue ------------------------------------------------------

function renderState(state) {
  journalSize = state.journal_size;
  const facts = [
    ["mode", state.mode + (state.strict ? " (strict)" : "")],
    ["requests", state.requests],
    ["cassettes", state.cassettes === null ? "not loaded yet" : state.cassettes +
      (state.cassette_errors ? " (" + state.cassette_errors + " failed to load)" : "")],
    ["open streams", state.open_streams],
  ];
  byId("state").replaceChildren(...facts.map(([name, value]) =>
    el("div", null, el("dt", null, name), el("dd", null, String(value)))));
  const queued = state.queued_faults.map((q) => q.spec + " ×" + q.remaining);
  byId("queue").textContent = queued.length ? "Queued faults: " + queued.join(", ") : "";
  updateCounts();
}

async function loadCatalogue() {
  try {
    const answer = await api("GET", "/__admin/faults");
    catalogue = answer.catalogue;
  } catch (error) {
    show(error.message, true);
    return;
  }
  const select = byId("fault-name");
  select.replaceChildren(...catalogue.map((fault) => {
    const option = el("option", null, fault.name);
    option.value = fault.name;
    return option;
  }));
  showParams();
}

function showParams() {
  const fault = catalogue.find((f) => f.name === byId("fault-name").value);
  const holder = byId("fault-params");
  holder.replaceChildren();
  byId("fault-help").textContent = fault ? fault.description : "";
  if (!fault) return;
  for (const param of fault.params) {
    const input = document.createElement("input");
    input.name = param.name;
    input.dataset.kind = param.type;
    input.title = param.help || "";
    if (param.type === "bool") {
      input.type = "checkbox";
      input.checked = Boolean(param.default);
    } else {
      input.type = param.type === "str" ? "text" : "number";
      if (param.type === "float") input.step = "any";
      if (param.minimum !== null) input.min = String(param.minimum);
      if (param.maximum !== null) input.max = String(param.maximum);
      input.value = param.default === null ? "" : String(param.default);
    }
    holder.appendChild(el("label", null, param.name + " ", input));
  }
}

function faultParams() {
  const fault = catalogue.find((f) => f.name === byId("fault-name").value);
  const params = {};
  for (const input of byId("fault-params").querySelectorAll("input")) {
    const param = fault.params.find((p) => p.name === input.name);
    let value;
    if (input.dataset.kind === "bool") value = input.checked;
    else if (input.dataset.kind === "str") value = input.value;
    else if (input.value.trim() === "") continue;
    else value = Number(input.value);
    if (value !== param.default) params[input.name] = value;
  }
  return params;
}

// -- live updates: GET /__admin/events, read as an event stream --------------------------------

function setConnection(state, text) {
  const node = byId("connection");
  node.dataset.state = state;
  node.textContent = text;
}

function handle(message) {
  if (message.type === "hello") {
    setConnection("live", "live");
    renderState(message.state);
    if (!message.resumed) {
      clearStore();
      loadJournal();
    }
  } else if (message.type === "entry") {
    upsert(message.entry, false);
  } else if (message.type === "state") {
    renderState(message.state);
  } else if (message.type === "cleared") {
    clearStore();
  } else if (message.type === "reset") {
    clearStore();
    loadJournal();
  }
}

async function readEvents() {
  const extra = {Accept: "text/event-stream"};
  if (lastEventId !== null) extra["Last-Event-ID"] = lastEventId;
  const response = await fetch("/__admin/events", {headers: headers(extra), cache: "no-store"});
  if (response.status === 401) {
    setConnection("down", "needs the admin token");
    await askForToken();
    return;
  }
  if (!response.ok || !response.body) {
    throw new Error("GET /__admin/events: HTTP " + response.status);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line === "") {
        if (data.length) handle(JSON.parse(data.join("\n")));
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "data") data.push(text);
      else if (field === "id" && !text.includes("\0")) lastEventId = text;
      else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
    }
  }
}

async function follow() {
  for (;;) {
    try {
      await readEvents();
    } catch (error) {
      // The server went away (restart, shutdown): try again after the retry it asked for.
    }
    setConnection("down", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

// -- start -------------------------------------------------------------------------------------

function start() {
  byId("fault-name").addEventListener("change", showParams);
  byId("fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const times = Number(byId("fault-times").value);
    const body = {fault: byId("fault-name").value, times, params: faultParams()};
    action((answer) => "queued " + answer.queued.spec + " for " + answer.queued.remaining +
      " request(s)", () => api("POST", "/__admin/faults", body));
  });
  byId("clear-faults").addEventListener("click", () =>
    action((answer) => "cleared " + answer.cleared + " queued fault(s)",
      () => api("DELETE", "/__admin/faults")));
  byId("reload-cassettes").addEventListener("click", () =>
    action((answer) => "reloaded: " + answer.cassettes.length + " cassette(s)" +
      (answer.errors.length ? ", " + answer.errors.length + " failed to load" : ""),
      () => api("POST", "/__admin/cassettes/reload", {})));
  byId("clear-journal").addEventListener("click", () =>
    action((answer) => "cleared " + answer.cleared + " journal entries",
      () => api("DELETE", "/__admin/requests")));
  byId("load-older").addEventListener("click", loadOlder);
  loadCatalogue();
  follow();
}

start();
