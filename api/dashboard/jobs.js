// The jobs list (#/jobs): live status and progress, filters, search, tags.

import { getJSON, listAlgorithms, query } from "./api.js";
import {
  duration,
  h,
  link,
  progressBar,
  relative,
  shortId,
  statusBadge,
  table,
  tagChips,
} from "./dom.js";

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const filters = { status: "", algorithm: "", search: "" }; // kept while the page is open

function options(values, chosen, none) {
  return [
    h("option", { value: "" }, none),
    ...values.map((v) => h("option", { value: v, selected: v === chosen }, v)),
  ];
}

/** Where a queued job stands, or null. */
export function waiting(job) {
  if (job.status !== "queued") return null;
  const parts = [];
  if (job.queue_position !== null && job.queue_position !== undefined) {
    parts.push(`#${job.queue_position} in line`);
  }
  if (job.estimated_start_seconds !== null && job.estimated_start_seconds !== undefined) {
    parts.push(`starts in about ${duration(job.estimated_start_seconds)}`);
  }
  return parts.length ? parts.join(", ") : "waiting for a worker";
}

function progressCell(job) {
  const eta =
    job.status === "running" &&
    job.progress?.eta_seconds !== null &&
    job.progress?.eta_seconds !== undefined
      ? `ETA ${duration(job.progress.eta_seconds)}`
      : waiting(job);
  return h(
    "div",
    { class: "progress-cell" },
    progressBar(job.progress, job.status),
    eta ? h("small", { class: "muted" }, eta) : null,
  );
}

// -- #/jobs ---------------------------------------------------------------------------------
export async function jobsPage(root, _params, page) {
  const algorithms = (await listAlgorithms().catch(() => [])).map((a) => a.name);
  const status = h(
    "select",
    { name: "status", "aria-label": "Status" },
    options(STATUSES, filters.status, "any status"),
  );
  const algorithm = h(
    "select",
    { name: "algorithm", "aria-label": "Algorithm" },
    options(algorithms, filters.algorithm, "any algorithm"),
  );
  const search = h("input", {
    type: "search",
    name: "search",
    placeholder: "Search by name",
    value: filters.search,
  });
  const count = h("span", { class: "muted" });
  const list = h("div", { id: "jobs-list" });
  let latest = null;
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Jobs"),
      count,
      h("a", { class: "button", href: "#/submit" }, "New job"),
    ),
    h("div", { class: "filters" }, status, algorithm, search),
    list,
  );

  let shownText = "";
  const refresh = async () => {
    const params = query({ status: filters.status, algorithm: filters.algorithm, limit: 200 });
    latest = await getJSON(`/v1/jobs${params}`, { signal: page.signal });
    // Rebuilt only when something changed, so a click is not lost to a redraw.
    const text = JSON.stringify(latest);
    if (text !== shownText) render();
    shownText = text;
  };
  const render = () => {
    const words = filters.search.trim().toLowerCase();
    const shown = latest.data.filter(
      (job) => !words || `${job.name || ""} ${job.id}`.toLowerCase().includes(words),
    );
    count.textContent = `${shown.length} of ${latest.count}`;
    list.replaceChildren(
      table(
        ["Name", "Algorithm", "Status", "Progress", "Tags", "Created", "Model"],
        shown.map((job) =>
          h(
            "tr",
            { "data-job": job.id },
            h(
              "td",
              {},
              link(`#/jobs/${encodeURIComponent(job.id)}`, job.name || shortId(job.id)),
              h("div", { class: "muted mono" }, shortId(job.id)),
            ),
            h("td", {}, job.algorithm),
            h("td", {}, statusBadge(job.status)),
            h("td", {}, progressCell(job)),
            h("td", {}, tagChips(job.tags)),
            h("td", {}, relative(job.created_at)),
            h(
              "td",
              {},
              job.model_id ? link(`#/models/${encodeURIComponent(job.model_id)}`, "model") : "",
            ),
          ),
        ),
        "No jobs match.",
      ),
    );
  };
  for (const [input, key] of [
    [status, "status"],
    [algorithm, "algorithm"],
  ]) {
    input.addEventListener("change", () => {
      filters[key] = input.value;
      refresh().catch(page.report);
    });
  }
  search.addEventListener("input", () => {
    filters.search = search.value;
    if (latest) render();
  });
  page.every(2000, refresh);
}
