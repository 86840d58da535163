// Rows of the devices table: one <tr data-device-id> per device, a row header with its name,
// and a label on every cell (shown beside the value when the table becomes cards on a phone).
import { element, none, span, utc } from "./dom.js";

const DAY_MS = 86400000;
const KINDS = { SSL_CERTIFICATE: "SSL certificate", DOMAIN: "Domain", STANDARD: "Other" };
export const COLUMNS = 8;

/** Whole days left until ``expiresAt`` (negative once expired), as timedelta.days counts. */
export const daysLeft = (expiresAt, now) => Math.floor((Date.parse(expiresAt) - now) / DAY_MS);

function urgency(days) {
  if (days === null) return "";
  if (days < 0) return "expired";
  if (days <= 7) return "urgent";
  return days <= 30 ? "soon" : "";
}

function cell(tag, label, content, className) {
  const made = element(tag, null, className);
  made.setAttribute("role", tag === "th" ? "rowheader" : "cell");
  made.dataset.label = label;
  const value = element("div", null, "value"); // one box beside the label on narrow screens
  value.append(...[].concat(content));
  made.append(value);
  return made;
}

function daysCell(days) {
  const content = days === null ? [none("no expiry known")] : [span(String(days), "days")];
  if (days !== null && days < 0) content.push(" ", span("expired", "badge badge-expired"));
  const made = cell("td", "Days left", content, `days-left ${urgency(days)}`);
  made.dataset.testid = "days-left";
  if (days !== null) made.dataset.days = String(days);
  return made;
}

function expiresCell(expiresAt) {
  if (!expiresAt) return cell("td", "Expires (UTC)", none("no expiry known"));
  const time = element("time", utc(expiresAt, true));
  time.dateTime = expiresAt;
  return cell("td", "Expires (UTC)", time);
}

function verdict(ok, yes, no, detail) {
  const content = [span(ok ? `✓ ${yes}` : `✗ ${no}`, ok ? "good" : "bad")];
  if (!ok && detail) content.push(span(detail, "detail"));
  return content;
}

export function deviceRow(device, now) {
  const days = device.expiresAt ? daysLeft(device.expiresAt, now) : null;
  const ssl = device.sslDetails;
  const row = element("tr", null, urgency(days));
  row.setAttribute("role", "row");
  row.dataset.deviceId = device.id;
  const name = cell("th", "Device", span(device.name, "device-name"), "device");
  name.scope = "row";
  name.tabIndex = -1; // "Show more" moves the focus to the first new device
  const chain = ssl
    ? verdict(ssl.chainTrusted, "Trusted", "Not trusted", ssl.chainTrustError)
    : none("not a certificate");
  let host = none(ssl ? "not checked: a PEM certificate has no host" : "not a certificate");
  if (ssl && ssl.hostnameMatches !== null) host = verdict(ssl.hostnameMatches, "Matches", "Mismatch");
  const error = device.lastUpdateError ? span(device.lastUpdateError, "bad") : none("no error");
  row.append(
    name,
    daysCell(days),
    expiresCell(device.expiresAt),
    cell("td", "Kind", KINDS[device.category] || device.category, "kind"),
    cell("td", "Organization", device.organization.name),
    cell("td", "Chain", chain, "verdict"),
    cell("td", "Host name", host, "verdict"),
    cell("td", "Last update error", error, "error"),
  );
  return row;
}

export function emptyRow(text) {
  const row = element("tr");
  row.setAttribute("role", "row");
  const only = cell("td", "", text, "empty");
  only.colSpan = COLUMNS;
  row.append(only);
  return row;
}
