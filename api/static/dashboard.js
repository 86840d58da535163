// dstrack dashboard: what expires soon. Plain JavaScript modules, no build step, same origin.
// Signs in with an API token, then lists devices soonest expiry first, the forecast chart and
// the open alerts, for the chosen organization and expiry window.
import { Unauthorized, graphql, storedToken } from "./api.js";
import { alertsPanel } from "./alerts.js";
import { drawChart, summarize, tabulate } from "./chart.js";
import { deviceRow, emptyRow } from "./devices.js";
import { $, element, plural } from "./dom.js";

const PAGE_SIZE = 100;
const FORECAST_WEEKS = 26;
const DAY_MS = 86400000;
const WINDOWS = ["7", "30", "90"];

const ME = "query Me { me { name securityLevel { name } } }";
const ORGANIZATIONS = `query Organizations($after: String) {
  organizations(first: 100, after: $after) {
    edges { node { id name } } pageInfo { hasNextPage endCursor } } }`;
const DEVICES = `query Expiring($first: Int, $after: String, $filter: DeviceFilter) {
  devices(first: $first, after: $after, filter: $filter, orderBy: EXPIRES_AT) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name category expiresAt lastUpdateError organization { id name }
                   sslDetails { chainTrusted chainTrustError hostnameMatches } } } } }`;
const FORECAST = `query Forecast($weeks: Int, $org: ID) {
  expiryForecast(weeks: $weeks, organizationId: $org) { weekStart count } }`;

const ui = {
  signIn: $("sign-in"), form: $("token-form"), token: $("token"), submit: $("token-submit"),
  tokenMessage: $("token-message"), dashboard: $("dashboard"), session: $("session"),
  who: $("who"), signOut: $("sign-out"), heading: $("page-heading"),
  org: $("org-filter"), window: $("window-filter"), refresh: $("refresh"),
  status: $("status"), problem: $("problem"), rows: document.querySelector("#devices tbody"),
  caption: $("devices-caption"), loadMore: $("load-more"),
  chart: $("chart-drawing"), chartSummary: $("chart-summary"),
  chartRows: document.querySelector("#chart-table tbody"),
};
const alerts = alertsPanel(
  { list: $("alerts-list"), message: $("alerts-message"), count: $("alerts-count"), heading: $("alerts-heading") },
  { failed, done: (text) => { ui.status.textContent = text; } },
);

// Each listing asks again when a filter changes; only the answer to the latest ask is shown.
const latest = { devices: 0, forecast: 0 };
let endCursor = null;
let shown = 0;
let forecast = [];

// -- signing in and out --------------------------------------------------------------------
function tokenMessage(text, isError) {
  ui.tokenMessage.textContent = text;
  ui.tokenMessage.classList.toggle("info", !isError);
}

async function signIn(token, quiet) {
  ui.submit.disabled = true;
  if (!quiet) tokenMessage("Checking the token…", false);
  try {
    const data = await graphql(ME, {}, token);
    storedToken.set(token);
    ui.token.value = "";
    tokenMessage("", false);
    await openDashboard(data.me);
  } catch (error) {
    const refused = error instanceof Unauthorized;
    if (refused) storedToken.clear(); // a server out of reach keeps it for the next try
    tokenMessage(
      !refused ? error.message
        : quiet ? "Your session has ended. Sign in again with your API token."
          : "This API token was not accepted: it is wrong, revoked, or belongs to no user. Check it and try again.",
      true,
    );
    if (!quiet) {
      ui.token.focus();
      ui.token.select();
    }
  } finally {
    ui.submit.disabled = false;
  }
}

function signOut(message, isError) {
  storedToken.clear();
  latest.devices += 1; // answers on their way are dropped
  latest.forecast += 1;
  alerts.reset();
  ui.dashboard.hidden = true;
  ui.session.hidden = true;
  ui.signIn.hidden = false;
  for (const list of [ui.rows, ui.chart, ui.chartRows]) list.replaceChildren();
  ui.org.replaceChildren(option("", "All organizations"));
  tokenMessage(message, isError);
  ui.token.focus();
}

async function openDashboard(me) {
  ui.who.textContent = `Signed in as ${me.name} (${me.securityLevel.name})`;
  ui.signIn.hidden = true;
  ui.session.hidden = false;
  ui.dashboard.hidden = false;
  ui.heading.focus();
  readFiltersFromAddress();
  await loadOrganizations();
  await refreshAll();
}

/** Shows a failure; a token revoked or expired meanwhile goes back to the sign-in form. */
function failed(error) {
  if (error instanceof Unauthorized) {
    signOut("Your API token is no longer accepted. Sign in again.", true);
  } else {
    ui.problem.textContent = error.message;
  }
}

// -- filters -------------------------------------------------------------------------------
function option(value, text) {
  const made = element("option", text);
  made.value = value;
  return made;
}

async function loadOrganizations() {
  const found = [];
  let after = null;
  try {
    for (let page = 0; page < 100; page += 1) {
      const { organizations } = await graphql(ORGANIZATIONS, { after });
      found.push(...organizations.edges.map((edge) => edge.node));
      if (!organizations.pageInfo.hasNextPage) break;
      after = organizations.pageInfo.endCursor;
    }
  } catch (error) {
    failed(error);
  }
  const wanted = ui.org.dataset.wanted || "";
  found.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));
  ui.org.replaceChildren(option("", "All organizations"), ...found.map((o) => option(o.id, o.name)));
  ui.org.value = found.some((o) => o.id === wanted) ? wanted : "";
}

function readFiltersFromAddress() {
  const params = new URLSearchParams(window.location.search);
  ui.org.dataset.wanted = params.get("organization") || "";
  const within = params.get("within") || "";
  ui.window.value = WINDOWS.includes(within) ? within : "";
}

function writeFiltersToAddress() {
  const params = new URLSearchParams();
  if (ui.org.value) params.set("organization", ui.org.value);
  if (ui.window.value) params.set("within", ui.window.value);
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

function deviceFilter() {
  const filter = { active: true };
  if (ui.org.value) filter.organizationId = ui.org.value;
  if (ui.window.value) {
    filter.expiringBefore = new Date(Date.now() + Number(ui.window.value) * DAY_MS).toISOString();
  }
  return filter;
}

const organizationScope = () => (ui.org.value ? ` of ${ui.org.selectedOptions[0].textContent}` : "");
const windowScope = () => (ui.window.value ? ` expiring within ${ui.window.value} days (or expired)` : "");

async function refreshAll() {
  ui.problem.textContent = "";
  writeFiltersToAddress();
  await Promise.all([loadDevices(false), loadForecast(), alerts.load(ui.org.value)]);
}

// -- the devices table ---------------------------------------------------------------------
async function loadDevices(more) {
  const mine = ++latest.devices;
  ui.status.textContent = more ? "Loading more devices…" : "Loading devices…";
  ui.loadMore.disabled = true;
  let data;
  try {
    data = await graphql(DEVICES, { first: PAGE_SIZE, after: more ? endCursor : null, filter: deviceFilter() });
  } catch (error) {
    if (mine === latest.devices) {
      ui.status.textContent = "";
      failed(error);
    }
    return;
  } finally {
    ui.loadMore.disabled = false;
  }
  if (mine !== latest.devices) return;
  const { edges, pageInfo, totalCount } = data.devices;
  if (!more) {
    ui.rows.replaceChildren();
    shown = 0;
  }
  const now = Date.now();
  ui.rows.append(...edges.map((edge) => deviceRow(edge.node, now)));
  shown += edges.length;
  endCursor = pageInfo.endCursor;
  ui.loadMore.hidden = !pageInfo.hasNextPage;
  const scope = `${organizationScope()}${windowScope()}`;
  if (totalCount === 0) ui.rows.append(emptyRow(`No active device${scope}.`));
  const summary = `${shown} of ${plural(totalCount, "active device")}${scope}, soonest expiry first.`;
  ui.status.textContent = `Showing ${summary}`;
  ui.caption.textContent = `Devices: ${summary}`;
  if (more && edges.length) ui.rows.children[shown - edges.length].querySelector("th").focus();
}

// -- the forecast --------------------------------------------------------------------------
async function loadForecast() {
  const mine = ++latest.forecast;
  let data;
  try {
    data = await graphql(FORECAST, { weeks: FORECAST_WEEKS, org: ui.org.value || null });
  } catch (error) {
    if (mine === latest.forecast) failed(error);
    return;
  }
  if (mine !== latest.forecast) return;
  forecast = data.expiryForecast;
  drawChart(ui.chart, forecast);
  ui.chartSummary.textContent = summarize(forecast, organizationScope());
  tabulate(ui.chartRows, forecast);
}

// -- wiring --------------------------------------------------------------------------------
ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  if (!token) {
    tokenMessage("Enter your API token.", true);
    ui.token.focus();
    return;
  }
  signIn(token, false);
});
ui.signOut.addEventListener("click", () => signOut("You are signed out.", false));
ui.org.addEventListener("change", () => refreshAll());
ui.window.addEventListener("change", () => {
  writeFiltersToAddress();
  loadDevices(false);
});
ui.refresh.addEventListener("click", () => refreshAll());
ui.loadMore.addEventListener("click", () => loadDevices(true));
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { if (forecast.length && !ui.dashboard.hidden) drawChart(ui.chart, forecast); }, 150);
});

const stored = storedToken.get();
if (stored) signIn(stored, true);
