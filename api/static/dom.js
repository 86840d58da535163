// Small DOM and formatting helpers of the dashboard. Text always goes in as text, never as HTML.

export const $ = (id) => document.getElementById(id);

export function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = text;
  if (className) made.className = className;
  return made;
}

export const span = (text, className) => element("span", text, className);

/** A dash for "nothing here", with what it means for screen readers and on hover. */
export function none(meaning) {
  const dash = span("—", "none");
  dash.setAttribute("aria-label", meaning);
  dash.title = meaning;
  return dash;
}

/** "2026-05-04" or, with the time, "2026-05-04 13:20" (UTC). */
export function utc(iso, withTime) {
  const text = new Date(iso).toISOString();
  return withTime ? `${text.slice(0, 10)} ${text.slice(11, 16)}` : text.slice(0, 10);
}

/** "May 4" (UTC). */
export function shortDate(iso) {
  return new Date(iso).toLocaleDateString("en", { month: "short", day: "numeric", timeZone: "UTC" });
}

export const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
