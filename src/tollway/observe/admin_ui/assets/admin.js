// The tollway admin UI: vanilla JavaScript on the admin API, no build step, no third-party code.
// Every value is written with textContent (never innerHTML), so a key named "<script>" is shown as text.
// Writes send the session's CSRF token in X-CSRF-Token; the server checks the role of every write too,
// so hiding buttons from a viewer is a courtesy, not the protection.
"use strict";

const state = { me: null, keys: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function show(message, isError) {
  const box = document.getElementById("message");
  box.textContent = message || "";
  box.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = state.me ? state.me.csrf : "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(path, { method, headers, credentials: "same-origin",
                                    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const error = (data && data.error) || {};
    throw new Error(`${reply.status}: ${error.message || reply.statusText}`);
  }
  return data;
}

function query(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (!value) continue;
    params.set(name, form.elements[name].type === "datetime-local" ? localToUtc(value) : value);
  }
  return params.toString();
}

// datetime-local inputs are read and written as UTC, the ledger's time zone.
function localToUtc(value) { return value.length === 16 ? `${value}:00+00:00` : `${value}+00:00`; }
function utcInput(date) { return date.toISOString().slice(0, 19); }

function canWrite(team) {
  const me = state.me;
  if (!me) return false;
  if (me.role === "admin") return true;
  return me.role === "team_admin" && me.teams.includes(team || "");
}

// ---- keys ----
async function loadKeys() {
  const data = await api("GET", "/admin/keys");
  state.keys = data.data;
  const body = document.querySelector("#keys-table tbody");
  body.replaceChildren(...state.keys.map(keyRow));
  const teams = [...new Set(state.keys.map(k => k.team).filter(Boolean))].sort();
  document.getElementById("team-names").replaceChildren(...teams.map(t => el("option", { value: t })));
}

function keyRow(key) {
  const stateText = key.revoked_at ? "revoked" : (key.grace_until ? `rotated (old secret until ${key.grace_until.slice(0, 16).replace("T", " ")} UTC)` : "active");
  const actions = el("td", { class: "actions" });
  if (!key.revoked_at && canWrite(key.team)) {
    actions.append(el("button", { class: "write edit", type: "button", text: "Edit", onclick: () => editKey(key) }),
                   el("button", { class: "write rotate", type: "button", text: "Rotate", onclick: () => rotateKey(key) }),
                   el("button", { class: "write revoke", type: "button", text: "Revoke", onclick: () => revokeKey(key) }));
  }
  return el("tr", { "data-key-id": key.id, class: key.revoked_at ? "revoked" : null },
    el("td", { class: "id", text: key.id }), el("td", { class: "name", text: key.name }),
    el("td", { class: "team", text: key.team || "" }), el("td", { class: "daily", text: key.daily_usd ?? "" }),
    el("td", { class: "monthly", text: key.monthly_usd ?? "" }),
    el("td", { class: "models", text: (key.models || []).join(", ") }),
    el("td", { class: "expires", text: key.expires_at || "" }), el("td", { class: "state", text: stateText }), actions);
}

function keyFields(form, creating) {
  const value = name => form.elements[name].value.trim();
  const body = { name: value("name"), team: value("team") };
  for (const name of ["daily_usd", "monthly_usd"]) body[name] = value(name) === "" ? null : value(name);
  body.rpm = value("rpm") === "" ? null : Number(value("rpm"));
  body.models = value("models") ? value("models").split(",").map(s => s.trim()).filter(Boolean) : [];
  if (value("expires_at") || !creating) body.expires_at = value("expires_at");
  if (creating && value("secret")) body.secret = value("secret");
  return body;
}

async function submitKey(event) {
  event.preventDefault();
  const form = event.target;
  const id = form.elements.id.value;
  try {
    if (id) {
      await api("PATCH", `/admin/keys/${encodeURIComponent(id)}`, keyFields(form, false));
      show(`Key ${id} saved.`);
    } else {
      const made = await api("POST", "/admin/keys", keyFields(form, true));
      showSecret(made.secret);
      show(`Key ${made.id} created.`);
    }
    resetKeyForm();
    await loadKeys();
  } catch (error) { show(error.message, true); }
}

function showSecret(secret) {
  document.getElementById("new-secret-value").textContent = secret;
  document.getElementById("new-secret").hidden = false;
}

function editKey(key) {
  const form = document.getElementById("key-form");
  form.elements.id.value = key.id;
  form.elements.name.value = key.name;
  form.elements.team.value = key.team || "";
  form.elements.daily_usd.value = key.daily_usd ?? "";
  form.elements.monthly_usd.value = key.monthly_usd ?? "";
  form.elements.rpm.value = key.rpm ?? "";
  form.elements.models.value = (key.models || []).join(", ");
  form.elements.expires_at.value = key.expires_at || "";
  document.getElementById("key-form-title").textContent = `Edit key ${key.id}`;
  document.getElementById("key-submit").textContent = "Save";
  document.getElementById("key-cancel").hidden = false;
  form.querySelector(".create-only").hidden = true;
}

function resetKeyForm() {
  const form = document.getElementById("key-form");
  form.reset();
  form.elements.id.value = "";
  document.getElementById("key-form-title").textContent = "New key";
  document.getElementById("key-submit").textContent = "Create key";
  document.getElementById("key-cancel").hidden = true;
  form.querySelector(".create-only").hidden = false;
}

async function rotateKey(key) {
  const grace = window.prompt(`Rotate ${key.id}: keep the old secret valid for`, "24h");
  if (grace === null) return;
  try {
    const made = await api("POST", `/admin/keys/${encodeURIComponent(key.id)}/rotate`, { grace });
    showSecret(made.secret);
    show(`Key ${key.id} rotated; the old secret works until ${made.grace_until}.`);
    await loadKeys();
  } catch (error) { show(error.message, true); }
}

async function revokeKey(key) {
  if (!window.confirm(`Revoke key ${key.id} (${key.name})? Its requests are refused at once.`)) return;
  try {
    await api("POST", `/admin/keys/${encodeURIComponent(key.id)}/revoke`);
    show(`Key ${key.id} revoked.`);
    await loadKeys();
  } catch (error) { show(error.message, true); }
}

// ---- teams ----
// Teams come from GET /admin/teams where the gateway has it (features.teams), else from the keys' team
// names. Budgets are typed as the CLI takes them: [user:]WINDOW=USD[@MODEL], separated by commas.
function keyCounts() {
  const counts = new Map();
  for (const key of state.keys) {
    const team = key.team || "(no team)";
    const entry = counts.get(team) || { keys: 0, active: 0 };
    entry.keys += 1;
    entry.active += key.revoked_at ? 0 : 1;
    counts.set(team, entry);
  }
  return counts;
}

function budgetsText(entries) {
  return (entries || []).map(e => `${e.per_user ? "user:" : ""}${e.window}=${e.limit_usd}${e.model ? "@" + e.model : ""}`).join(", ");
}

function budgetsFromText(text) {
  return text.split(",").map(s => s.trim()).filter(Boolean).map(item => {
    const perUser = item.startsWith("user:");
    const rest = perUser ? item.slice(5) : item;
    const [windowPart, amountPart] = rest.split("=");
    const [amount, model] = (amountPart || "").split("@");
    const entry = { window: windowPart.trim(), limit_usd: (amount || "").trim() };
    if (model) entry.model = model.trim();
    if (perUser) entry.per_user = true;
    return entry;
  });
}

async function loadTeams() {
  await loadKeys();
  const counts = keyCounts();
  let teams = [...counts.keys()].sort().map(name => ({ name, source: "keys" }));
  if (state.me.features.teams) {
    teams = (await api("GET", "/admin/teams")).data;
    for (const name of counts.keys()) {
      if (!teams.some(t => t.name === name)) teams.push({ name, source: "keys" });
    }
  }
  const rows = teams.map(t => {
    const n = counts.get(t.name) || { keys: 0, active: 0 };
    const actions = el("td", { class: "actions" });
    if (state.me.role === "admin" && t.source === "store") {
      actions.append(el("button", { class: "write edit-team", type: "button", text: "Edit", onclick: () => editTeam(t) }),
                     el("button", { class: "write delete-team", type: "button", text: "Delete", onclick: () => deleteTeam(t) }));
    }
    return el("tr", { "data-team": t.name }, el("td", { class: "name", text: t.name }), el("td", { class: "source", text: t.source }),
              el("td", { class: "budgets", text: budgetsText(t.budgets) }), el("td", { text: t.rpm ?? "" }),
              el("td", { text: t.tpm ?? "" }), el("td", { class: "keys", text: n.keys }), el("td", { text: n.active }), actions);
  });
  document.querySelector("#teams-table tbody").replaceChildren(...rows);
}

function teamFields(form) {
  const value = name => form.elements[name].value.trim();
  const body = { budgets: budgetsFromText(value("budgets")) };
  body.rpm = value("rpm") === "" ? null : Number(value("rpm"));
  body.tpm = value("tpm") === "" ? null : Number(value("tpm"));
  return body;
}

async function submitTeam(event) {
  event.preventDefault();
  const form = event.target;
  const editing = form.elements.editing.value;
  try {
    if (editing) await api("PATCH", `/admin/teams/${encodeURIComponent(editing)}`, teamFields(form));
    else await api("POST", "/admin/teams", { name: form.elements.name.value.trim(), ...teamFields(form) });
    show(`Team ${editing || form.elements.name.value.trim()} saved.`);
    resetTeamForm();
    await loadTeams();
  } catch (error) { show(error.message, true); }
}

function editTeam(team) {
  const form = document.getElementById("team-form");
  form.elements.editing.value = team.name;
  form.elements.name.value = team.name;
  form.elements.name.disabled = true;
  form.elements.budgets.value = budgetsText(team.budgets);
  form.elements.rpm.value = team.rpm ?? "";
  form.elements.tpm.value = team.tpm ?? "";
  document.getElementById("team-form-title").textContent = `Edit team ${team.name}`;
  document.getElementById("team-submit").textContent = "Save";
  document.getElementById("team-cancel").hidden = false;
}

function resetTeamForm() {
  const form = document.getElementById("team-form");
  form.reset();
  form.elements.editing.value = "";
  form.elements.name.disabled = false;
  document.getElementById("team-form-title").textContent = "New team";
  document.getElementById("team-submit").textContent = "Create team";
  document.getElementById("team-cancel").hidden = true;
}

async function deleteTeam(team) {
  if (!window.confirm(`Delete team ${team.name}? Its keys keep their own budgets.`)) return;
  try {
    await api("DELETE", `/admin/teams/${encodeURIComponent(team.name)}`);
    show(`Team ${team.name} deleted.`);
    await loadTeams();
  } catch (error) { show(error.message, true); }
}

// ---- spend ----
async function loadSpend(event) {
  if (event) event.preventDefault();
  const form = document.getElementById("spend-form");
  try {
    const data = await api("GET", `/admin/ui/api/spend?${query(form)}`);
    const total = document.getElementById("spend-total");
    total.textContent = `$${data.total_usd}`;
    total.dataset.exact = data.total_usd;
    const times = [...new Set(data.series.flatMap(s => s.points.map(p => p.t)))].sort();
    const head = el("tr", {}, el("th", { text: data.by }), el("th", { text: "total" }),
                    ...times.map(t => el("th", { text: t })));
    document.querySelector("#spend-table thead").replaceChildren(head);
    const rows = data.series.map(s => {
      const at = new Map(s.points.map(p => [p.t, p.usd]));
      return el("tr", { "data-series": s.name }, el("td", { class: "name", text: s.name }),
                el("td", { class: "total", "data-exact": s.total_usd, text: `$${s.total_usd}` }),
                ...times.map(t => el("td", { "data-t": t, text: at.has(t) ? `$${at.get(t)}` : "" })));
    });
    document.querySelector("#spend-table tbody").replaceChildren(...rows);
  } catch (error) { show(error.message, true); }
}

function setRange(form, hours) {
  const until = new Date();
  form.elements.since.value = utcInput(new Date(until.getTime() - hours * 3600e3));
  form.elements.until.value = utcInput(new Date(until.getTime() + 60e3));
}

// ---- requests ----
async function loadRequests(event) {
  if (event) event.preventDefault();
  try {
    const data = await api("GET", `/admin/ui/api/requests?${query(document.getElementById("requests-form"))}`);
    const rows = data.data.flatMap(requestRows);
    document.querySelector("#requests-table tbody").replaceChildren(...rows);
  } catch (error) { show(error.message, true); }
}

function requestRows(r) {
  const detail = el("tr", { class: "detail", hidden: true, "data-detail-for": r.id },
                    el("td", { colspan: 9 }, requestDetail(r)));
  const row = el("tr", { class: "request", "data-request-id": r.id, "data-status": r.status, tabindex: 0,
                         onclick: () => { detail.hidden = !detail.hidden; } },
    el("td", { text: r.ts.slice(0, 19).replace("T", " ") }), el("td", { class: "key", text: r.key_id }),
    el("td", { text: r.user }), el("td", { class: "model", text: r.model }), el("td", { text: r.deployment }),
    el("td", { class: "status", text: `${r.status} ${r.http_status}` }),
    el("td", { text: `${r.prompt_tokens} / ${r.completion_tokens}` }),
    el("td", { class: "cost", "data-exact": r.cost_usd, text: `$${r.cost_usd}` }),
    el("td", { text: r.latency_ms === null ? "" : Math.round(r.latency_ms) }));
  return [row, detail];
}

function requestDetail(r) {
  const facts = el("p", {}, `request ${r.id} · ${r.endpoint} · route group ${r.route_group || "-"} · tokens: prompt ${r.prompt_tokens} (cached ${r.cached_tokens}), completion ${r.completion_tokens} (reasoning ${r.reasoning_tokens}) · cost $${r.cost_usd}${r.priced ? "" : " (unpriced)"} · tags ${(r.tags || []).join(", ") || "-"}${r.error ? " · error: " + r.error : ""}`);
  const head = el("tr", {}, ...["Deployment", "Provider", "Outcome", "Status", "Tokens in/out", "Cost", "Latency ms", "Error"].map(t => el("th", { text: t })));
  const rows = (r.attempts || []).map(a => el("tr", { class: "attempt" },
    el("td", { text: a.deployment ?? "" }), el("td", { text: a.provider ?? "" }), el("td", { text: a.outcome ?? "" }),
    el("td", { text: a.status ?? "" }), el("td", { text: `${a.prompt_tokens ?? 0} / ${a.completion_tokens ?? 0}` }),
    el("td", { text: a.cost_usd ? `$${a.cost_usd}` : "" }), el("td", { text: a.latency_ms ?? "" }),
    el("td", { text: a.error ?? "" })));
  return el("div", {}, facts, el("table", { class: "attempts" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

// ---- budgets and alerts ----
async function loadBudgets() {
  try {
    const [budgets, events, alerts] = await Promise.all([api("GET", "/admin/budgets"), api("GET", "/admin/events"),
                                                         api("GET", "/admin/ui/api/alerts")]);
    const items = budgets.data || [];
    const columns = [...new Set(items.flatMap(b => Object.keys(b)))];
    document.querySelector("#budgets-table thead").replaceChildren(el("tr", {}, ...columns.map(c => el("th", { text: c }))));
    document.querySelector("#budgets-table tbody").replaceChildren(...items.map(b =>
      el("tr", {}, ...columns.map(c => el("td", { text: typeof b[c] === "object" && b[c] !== null ? JSON.stringify(b[c]) : (b[c] ?? "") })))));
    document.getElementById("events-list").replaceChildren(...(events.data || []).map(e => el("li", { text: JSON.stringify(e) })));
    document.getElementById("alerts-list").replaceChildren(...(alerts.data || []).map(a =>
      el("li", { text: `${a.at || a.time || ""} ${a.kind || ""} ${a.scope || ""} ${a.subject || ""}: ${a.message || ""}` })));
  } catch (error) { show(error.message, true); }
}

// ---- audit ----
async function loadAudit(event) {
  if (event) event.preventDefault();
  try {
    const data = await api("GET", `/admin/ui/api/audit?${query(document.getElementById("audit-form"))}`);
    document.querySelector("#audit-table tbody").replaceChildren(...data.data.map(a =>
      el("tr", { "data-action": a.action, "data-outcome": a.outcome },
        el("td", { text: a.ts.slice(0, 19).replace("T", " ") }), el("td", { class: "who", text: a.email ? `${a.email} (${a.actor})` : a.actor || "(anonymous)" }),
        el("td", { text: a.role }), el("td", { class: "action", text: a.action }), el("td", { class: "target", text: a.target }),
        el("td", { class: "outcome", text: a.outcome }), el("td", { class: "diff", text: JSON.stringify(a.diff) }),
        el("td", { text: `${a.client} ${a.user_agent}`.trim() }))));
  } catch (error) { show(error.message, true); }
}

// ---- start ----
const loaders = { keys: loadKeys, teams: loadTeams, spend: loadSpend, requests: loadRequests, budgets: loadBudgets, audit: loadAudit };

function openTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== `tab-${name}`;
  show("");
  document.body.dataset.loaded = "";  // set to the tab's name once its data is drawn (tests wait on it)
  loaders[name]().then(() => { document.body.dataset.loaded = name; }, error => show(error.message, true));
}

async function start() {
  try {
    state.me = await api("GET", "/admin/ui/api/me");
  } catch (error) {
    window.location.href = "/admin/ui";
    return;
  }
  document.body.dataset.role = state.me.role;
  document.getElementById("me-name").textContent = state.me.email || state.me.name || state.me.subject;
  document.getElementById("me-role").textContent = state.me.role + (state.me.teams.length ? ` of ${state.me.teams.join(", ")}` : "");
  document.getElementById("logout-csrf").value = state.me.csrf;
  if (state.me.role === "viewer") for (const node of document.querySelectorAll(".write")) node.remove();
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => openTab(button.dataset.tab));
  if (state.me.role !== "admin") for (const node of document.querySelectorAll(".admin-only")) node.remove();
  const teamForm = document.getElementById("team-form");
  if (teamForm && state.me.features.teams) {
    teamForm.hidden = false;
    teamForm.addEventListener("submit", submitTeam);
    document.getElementById("team-cancel").addEventListener("click", resetTeamForm);
  }
  const keyForm = document.getElementById("key-form");
  if (keyForm) {
    keyForm.addEventListener("submit", submitKey);
    document.getElementById("key-cancel").addEventListener("click", resetKeyForm);
  }
  document.getElementById("new-secret-done").addEventListener("click", () => {
    document.getElementById("new-secret-value").textContent = "";
    document.getElementById("new-secret").hidden = true;
  });
  const spendForm = document.getElementById("spend-form");
  spendForm.addEventListener("submit", loadSpend);
  for (const button of spendForm.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => { setRange(spendForm, Number(button.dataset.range)); loadSpend(); });
  }
  setRange(spendForm, 168);
  document.getElementById("requests-form").addEventListener("submit", loadRequests);
  document.getElementById("audit-form").addEventListener("submit", loadAudit);
  document.body.dataset.ready = "1";
  openTab("keys");
}

start();
