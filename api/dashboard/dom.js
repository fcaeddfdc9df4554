// Building the page from nodes, never from HTML strings: every value from the API goes in as
// text, so a job named "<img onerror=...>" shows as those characters and runs nothing.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  append(el, children);
  return el;
}

export function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace el's children (replaceChildren would show a null as the text "null"). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}

export function progressBar(progress, status) {
  const fraction = status === "succeeded" ? 1 : (progress?.fraction ?? 0);
  const bar = h("div", { class: `progress-fill status-${status}` });
  bar.style.width = `${Math.round(fraction * 1000) / 10}%`; // CSSOM: allowed by the CSP
  const label = progress?.total ? `${progress.step} / ${progress.total}` : `${progress?.step ?? 0}`;
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuenow": Math.round(fraction * 100) },
    bar,
    h("span", { class: "progress-label" }, label),
  );
}

export function tagChips(tags) {
  return h(
    "span",
    { class: "tags" },
    Object.entries(tags || {}).map(([k, v]) => h("span", { class: "tag" }, v ? `${k}=${v}` : k)),
  );
}

export function errorBox(error) {
  const text = error?.code ? `${error.code}: ${error.message}` : String(error?.message || error);
  return h("div", { class: "error", role: "alert" }, text);
}

export function definitionList(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/** A table in a box that scrolls sideways on a narrow screen, rather than the page. */
export function table(headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      headers.map((t) => h("th", {}, t)),
    ),
  );
  return h("div", { class: "table-wrap" }, h("table", {}, head, h("tbody", {}, rows)));
}

export function pretty(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// -- formatting ---------------------------------------------------------------------------
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return `${date.toLocaleString()} (${ago(date)})`;
}

/** "12 s ago", with the full date and time as its tooltip: for tables. */
export function relative(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("span", { title: date.toLocaleString(), class: "nowrap" }, ago(date));
}

export function ago(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  return seconds >= 0 ? `${duration(seconds)} ago` : `in ${duration(-seconds)}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function shortId(id) {
  return String(id).slice(0, 8);
}

export function number(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(4)));
}
