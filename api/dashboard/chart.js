// Small line charts drawn as SVG: one per metric, several runs overlaid in distinct colours.

import { number } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 360;
const HEIGHT = 190;
const PAD = { left: 52, right: 12, top: 10, bottom: 26 };
export const COLOURS = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#9333ea",
  "#ea580c",
  "#0891b2",
  "#ca8a04",
  "#db2777",
];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

/** About `count` round tick values covering [low, high]. */
export function ticks(low, high, count = 4) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const found = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    found.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return found;
}

/**
 * series: [{label, colour, steps: [...], values: [...]}]. Non-finite values are skipped.
 * The chart says how many points it drew in data-points (the browser tests read it).
 */
export function lineChart(title, series) {
  const points = series.map((s) =>
    s.steps
      .map((step, i) => [step, s.values[i]])
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  );
  const all = points.flat();
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": title,
    "data-points": all.length,
  });
  if (!all.length) {
    root.append(
      svg("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "chart-empty" }, "no points yet"),
    );
    return root;
  }
  let [x0, x1] = extent(all.map((p) => p[0]));
  let [y0, y1] = extent(all.map((p) => p[1]));
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const margin = (y1 - y0) * 0.05; // no point on the frame
  [y0, y1] = [y0 - margin, y1 + margin];
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * innerW;
  const sy = (y) => PAD.top + (1 - (y - y0) / (y1 - y0)) * innerH;

  const grid = svg("g", { class: "chart-grid" });
  for (const t of ticks(y0, y1)) {
    grid.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: sy(t), y2: sy(t) }));
    grid.append(svg("text", { x: PAD.left - 6, y: sy(t) + 4, class: "tick-y" }, number(t)));
  }
  for (const t of ticks(x0, x1)) {
    grid.append(svg("text", { x: sx(t), y: HEIGHT - 8, class: "tick-x" }, number(t)));
  }
  grid.append(
    svg("line", {
      x1: PAD.left,
      x2: PAD.left,
      y1: PAD.top,
      y2: HEIGHT - PAD.bottom,
      class: "axis",
    }),
    svg("line", {
      x1: PAD.left,
      x2: WIDTH - PAD.right,
      y1: HEIGHT - PAD.bottom,
      y2: HEIGHT - PAD.bottom,
      class: "axis",
    }),
  );
  root.append(grid);

  series.forEach((s, i) => {
    const line = points[i].map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    const colour = s.colour || COLOURS[i % COLOURS.length];
    if (!points[i].length) return;
    const label = svg("title", {}, `${s.label}: last ${number(points[i].at(-1)[1])}`);
    if (points[i].length === 1) {
      const [[x, y]] = points[i];
      root.append(svg("circle", { cx: sx(x), cy: sy(y), r: 3, fill: colour }, label));
    } else {
      const attrs = { points: line, fill: "none", stroke: colour, "stroke-width": 1.6 };
      root.append(svg("polyline", attrs, label));
    }
  });
  return root;
}

function extent(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return [low, high];
}
