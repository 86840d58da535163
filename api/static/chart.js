// The forecast chart: a bar per week drawn as plain SVG, with a sentence and a table that say
// the same for screen readers (the drawing itself is hidden from them).
import { element, plural, shortDate, utc } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const HEIGHT = 130;
const LEFT = 34;
const BOTTOM = 26;
const TOP = 10;

function svg(tag, attributes, text) {
  const made = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, String(value));
  if (text !== undefined) made.textContent = text;
  return made;
}

/** Draws ``weeks`` ([{weekStart, count}]) into ``container``, as wide as it is. */
export function drawChart(container, weeks) {
  const width = Math.max(container.clientWidth || 600, 280);
  const max = Math.max(1, ...weeks.map((week) => week.count));
  const slot = (width - LEFT) / Math.max(weeks.length, 1);
  const labelEvery = slot * 4 >= 56 ? 4 : 8;
  const y = (count) => TOP + (HEIGHT - TOP - BOTTOM) * (1 - count / max);
  const drawing = svg("svg", {
    viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, "aria-hidden": "true", focusable: "false",
  });
  const ticks = max <= 4 ? [...Array(max + 1).keys()] : [0, Math.round(max / 2), max];
  for (const value of ticks) {
    drawing.append(
      svg("line", { x1: LEFT, x2: width, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: LEFT - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, value),
    );
  }
  weeks.forEach((week, i) => {
    const x = LEFT + i * slot;
    const bar = svg("rect", {
      x: x + slot * 0.15, width: Math.max(slot * 0.7, 1), y: y(week.count),
      height: Math.max(y(0) - y(week.count), 0), class: i === 0 ? "bar bar-now" : "bar",
    });
    bar.append(svg("title", {}, `Week of ${shortDate(week.weekStart)}: ${week.count}`));
    drawing.append(bar);
    if (i % labelEvery === 0) {
      const label = i === 0 ? "This week" : shortDate(week.weekStart);
      drawing.append(svg("text", { x: x + slot / 2, y: HEIGHT - 8, class: "axis", "text-anchor": "middle" }, label));
    }
  });
  container.replaceChildren(drawing);
}

/** One sentence: how many expire, the busiest week, this week. ``scope``: " of Acme" or "". */
export function summarize(weeks, scope) {
  const total = weeks.reduce((sum, week) => sum + week.count, 0);
  if (total === 0) return `No active device${scope} expires in the next ${weeks.length} weeks.`;
  const busiest = weeks.reduce((best, week) => (week.count > best.count ? week : best), weeks[0]);
  return `${plural(total, "device")}${scope} expire in the next ${weeks.length} weeks; `
    + `the busiest week starts ${shortDate(busiest.weekStart)}, with ${busiest.count}. `
    + `This week: ${weeks[0].count}.`;
}

/** The weeks as table rows: week start (a row header) and count. */
export function tabulate(tbody, weeks) {
  tbody.replaceChildren(...weeks.map((week) => {
    const row = element("tr");
    const start = element("th", utc(week.weekStart, false));
    start.scope = "row";
    row.append(start, element("td", String(week.count)));
    return row;
  }));
}
