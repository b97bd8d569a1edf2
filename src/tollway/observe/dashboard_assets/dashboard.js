// tollway dashboard: fetch /dashboard/data.json every few seconds and redraw. No framework, no build.
// Every text from the server goes in through textContent (never innerHTML): model names and alert
// messages can carry what a client sent.
"use strict";

const REFRESH_MS = Number(document.body.dataset.refreshMs) || 5000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

const int = (n) => Number(n).toLocaleString("en-US");
const pct = (x) => (100 * x).toFixed(1) + "%";
const ms = (x) => (x === null || x === undefined ? "–" : Math.round(x).toString());

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function drawTotals(data) {
  const t = data.totals;
  document.getElementById("total-cost").textContent = usd(t.cost_usd);
  document.getElementById("total-cost").dataset.exact = t.cost_usd;
  document.getElementById("total-requests").textContent = int(t.requests);
  document.getElementById("total-tokens").textContent = int(t.prompt_tokens) + " / " + int(t.completion_tokens);
  document.getElementById("total-error-rate").textContent = pct(t.error_rate);
  document.getElementById("in-flight").textContent = int(data.in_flight);
  document.getElementById("alert-count").textContent = int(data.alerts.length);
  document.getElementById("window").textContent = "last " + data.window_h + " h (since " +
    new Date(data.since).toISOString().slice(0, 16).replace("T", " ") + " UTC)";
}

function drawModels(models) {
  const rows = models.map((m) => el("tr", {"data-model": m.provider + "/" + m.model},
    el("td", {class: "provider"}, m.provider), el("td", {class: "model"}, m.model),
    el("td", {class: "num requests"}, int(m.requests)), el("td", {class: "num errors"}, int(m.errors)),
    el("td", {class: "num error-rate"}, pct(m.error_rate)),
    el("td", {class: "num prompt-tokens"}, int(m.prompt_tokens)),
    el("td", {class: "num cached-tokens"}, int(m.cached_tokens)),
    el("td", {class: "num completion-tokens"}, int(m.completion_tokens)),
    el("td", {class: "num cost", "data-exact": m.cost_usd}, usd(m.cost_usd)),
    el("td", {class: "num ttft"}, ms(m.ttft_ms.p50) + " / " + ms(m.ttft_ms.p99)),
    el("td", {class: "num latency"}, ms(m.latency_ms.p50) + " / " + ms(m.latency_ms.p99))));
  if (!rows.length) rows.push(el("tr", {}, el("td", {colspan: 11, class: "muted"}, "no requests in this window")));
  replaceRows(document.querySelector("#models tbody"), rows);
}

function drawProviders(providers) {
  const max = Math.max(0, ...providers.map((p) => Number(p.cost_usd)));
  const rows = providers.map((p) => el("div", {class: "row", "data-provider": p.provider},
    el("span", {}, p.provider),
    el("div", {class: "bar", style: "width:" + (max > 0 ? (100 * Number(p.cost_usd) / max) : 0) + "%"}),
    el("span", {class: "num cost", "data-exact": p.cost_usd}, usd(p.cost_usd))));
  document.getElementById("provider-bars").replaceChildren(...rows);
}

function drawTimeline(timeline) {
  const chart = document.getElementById("timeline");
  const width = 600, height = 140, max = Math.max(0, ...timeline.map((h) => Number(h.cost_usd)));
  const step = timeline.length ? width / timeline.length : width;
  const nodes = timeline.map((h, i) => {
    const barHeight = max > 0 ? (height * Number(h.cost_usd)) / max : 0;
    const rect = svg("rect", {x: i * step + 1, y: height - barHeight, width: Math.max(step - 2, 1), height: barHeight});
    const title = svg("title", {});
    title.textContent = h.hour.slice(0, 13).replace("T", " ") + ":00 UTC  " + usd(h.cost_usd);
    rect.append(title);
    return rect;
  });
  const label = svg("text", {x: 2, y: 156});
  const top = timeline.reduce((best, h) => (Number(h.cost_usd) > Number(best) ? h.cost_usd : best), "0");
  label.textContent = max > 0 ? "max " + usd(top) + " per hour" : "no spend yet";
  chart.replaceChildren(...nodes, label);
}

function drawBreakers(breakers) {
  replaceRows(document.querySelector("#breakers tbody"), breakers.map((b) => el("tr", {"data-deployment": b.deployment},
    el("td", {}, b.deployment), el("td", {}, b.provider),
    el("td", {}, el("span", {class: "state " + b.state}, b.state.replace("_", "-"))),
    el("td", {class: "num"}, int(b.opened)))));
}

function drawBudgets(budgets) {
  const box = document.getElementById("budgets");
  if (budgets === null || !budgets.length) {
    box.replaceChildren(el("p", {class: "muted"}, "no budgets configured"));
    return;
  }
  box.replaceChildren(...budgets.map((b) => {
    const used = b.used === null ? 0 : b.used;
    const level = used >= 1 ? "over" : used >= 0.8 ? "high" : "";
    return el("div", {class: "budget", "data-budget": b.name},
      el("div", {}, b.name + ": " + usd(b.spent_usd) + (b.limit_usd === null ? "" : " of " + usd(b.limit_usd))),
      el("div", {class: "track"}, el("div", {class: "fill " + level, style: "width:" + Math.min(100, 100 * used) + "%"})));
  }));
}

function drawAlerts(alerts) {
  const items = alerts.map((a) => el("li", {"data-kind": a.kind},
    el("span", {class: "sev " + a.severity}, a.severity), el("strong", {}, a.title),
    el("div", {class: "muted"}, a.at.slice(0, 19).replace("T", " ") + " UTC — " + a.detail)));
  if (!items.length) items.push(el("li", {class: "muted"}, "no alerts"));
  document.getElementById("alerts").replaceChildren(...items);
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/dashboard/data.json", {credentials: "same-origin", cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    drawTotals(data);
    drawModels(data.models);
    drawProviders(data.providers);
    drawTimeline(data.timeline);
    drawBreakers(data.breakers);
    drawBudgets(data.budgets);
    drawAlerts(data.alerts);
    status.textContent = "updated " + new Date(data.generated_at).toLocaleTimeString() +
      (data.worker ? " (worker " + data.worker + ": its own requests since it started)" : "");
    status.dataset.generatedAt = data.generated_at;
  } catch (error) {
    status.textContent = "cannot refresh: " + error.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
