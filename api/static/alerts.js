// The open alerts panel: newest open alerts, each with an Acknowledge button.
import { graphql } from "./api.js";
import { element, span, utc } from "./dom.js";

const SHOWN = 50;
const OPEN_ALERTS = `query OpenAlerts($first: Int, $filter: AlertFilter) {
  alerts(first: $first, filter: $filter) {
    totalCount edges { node { id kind severity message createdAt
                              device { id name organization { name } } } } } }`;
const ACKNOWLEDGE = `mutation Acknowledge($id: ID!) {
  acknowledgeAlert(id: $id) { alert { id state } errors { code message } } }`;
const SEVERITIES = { CRITICAL: "Critical", WARNING: "Warning", INFO: "Info" };

/**
 * ``ui``: {list, message, count, heading}; ``report``: {failed(error), done(text)} — how the
 * page shows a failure (an expired token included) and announces an acknowledgement.
 */
export function alertsPanel(ui, report) {
  let latest = 0;

  function showCount(total, listed) {
    ui.count.textContent = total ? `(${total})` : "";
    ui.message.textContent = total === 0
      ? "No open alert." : listed < total ? `The newest ${listed} of ${total} are shown.` : "";
  }

  async function acknowledge(alert, item, button) {
    button.disabled = true;
    let payload;
    try {
      payload = (await graphql(ACKNOWLEDGE, { id: alert.id })).acknowledgeAlert;
    } catch (error) {
      button.disabled = false;
      report.failed(error);
      return;
    }
    if (payload.errors.length) {
      button.disabled = false;
      report.failed(new Error(payload.errors.map((e) => e.message).join(" ")));
      return;
    }
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    const left = ui.list.children.length;
    showCount(left, left);
    report.done(`Alert acknowledged: ${alert.message}`);
    (next ? next.querySelector("button") : ui.heading).focus();
  }

  function alertItem(alert) {
    const item = element("li", null, `alert severity-${alert.severity.toLowerCase()}`);
    item.dataset.alertId = alert.id;
    const message = element("p", null, "alert-message");
    message.append(span(SEVERITIES[alert.severity] || alert.severity, "severity"), " ", alert.message);
    const device = alert.device;
    const meta = element("p", `${device.name} · ${device.organization.name} · raised ${utc(alert.createdAt, true)} UTC`, "alert-meta");
    const button = element("button", "Acknowledge", "button-quiet");
    button.type = "button";
    button.dataset.testid = "ack-button";
    button.setAttribute("aria-label", `Acknowledge: ${alert.message}`);
    button.addEventListener("click", () => acknowledge(alert, item, button));
    item.append(message, meta, button);
    return item;
  }

  async function load(organizationId) {
    const mine = ++latest;
    const filter = { state: "OPEN" };
    if (organizationId) filter.organizationId = organizationId;
    let data;
    try {
      data = await graphql(OPEN_ALERTS, { first: SHOWN, filter });
    } catch (error) {
      if (mine !== latest) return;
      ui.list.replaceChildren();
      ui.count.textContent = "";
      ui.message.textContent = "Open alerts could not be loaded.";
      report.failed(error);
      return;
    }
    if (mine !== latest) return;
    const { edges, totalCount } = data.alerts;
    ui.list.replaceChildren(...edges.map((edge) => alertItem(edge.node)));
    showCount(totalCount, edges.length);
  }

  function reset() {
    latest += 1; // an answer on its way is dropped
    ui.list.replaceChildren();
    ui.count.textContent = "";
    ui.message.textContent = "";
  }

  return { load, reset };
}
