// Models (#/models) and one model's page (#/models/REF): what it is, and every figure its
// queries can draw without input (GAN samples, value and reward heatmaps, explanations, an
// episode as a GIF), fetched with the key as blobs and shown through object URLs.

import { errorOf, fetchBlob, getJSON, listAlgorithms, query, request, send } from "./api.js";
import {
  bytes,
  definitionList,
  errorBox,
  fill,
  h,
  link,
  pretty,
  relative,
  shortId,
  table,
  when,
} from "./dom.js";

const PICTURES = [
  ["image/png", "png"],
  ["image/gif", "gif"],
];
// Requests that make a better picture than a query's defaults (one sample shows nothing).
const FIGURE_REQUESTS = { samples: { n: 256, seed: 0 } };

export async function modelsPage(root, _params, page) {
  const body = await getJSON(`/v1/models${query({ limit: 200 })}`, { signal: page.signal });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Models"),
      h("span", { class: "muted" }, `${body.count}`),
    ),
    table(
      ["Model", "Kind", "Algorithm", "Job", "Registered as", "Size", "Created"],
      body.data.map((m) =>
        h(
          "tr",
          { "data-model": m.id },
          h(
            "td",
            {},
            link(
              `#/models/${encodeURIComponent(m.id)}`,
              h("span", { class: "mono" }, shortId(m.id)),
            ),
          ),
          h("td", {}, m.kind),
          h("td", {}, m.algorithm),
          h(
            "td",
            {},
            m.job_id
              ? link(
                  `#/jobs/${encodeURIComponent(m.job_id)}`,
                  h("span", { class: "mono" }, shortId(m.job_id)),
                )
              : "imported",
          ),
          h("td", {}, m.registered_as.map((r) => `${r.name} v${r.version}`).join(", ")),
          h("td", {}, bytes(m.size_bytes)),
          h("td", {}, relative(m.created_at)),
        ),
      ),
      "No models yet: a job that succeeds makes one.",
    ),
  );
}

export async function modelPage(root, [ref], page) {
  const base = `/v1/models/${encodeURIComponent(ref)}`;
  const model = await getJSON(base, { signal: page.signal });
  const details = await queryDetails(model.algorithm);
  const actionError = h("div");
  const act = (run) => () => run().catch((error) => fill(actionError, errorBox(error)));
  const remove = async () => {
    if (!window.confirm(`Delete model ${model.id}?`)) return;
    await send("DELETE", base);
    location.hash = "#/models";
  };
  const head = [
    h("h1", {}, `Model ${shortId(model.id)}`),
    h("span", { class: "badge" }, model.kind),
    h("span", { class: "spacer" }),
    model.job_id
      ? h("a", { class: "button", href: `#/jobs/${encodeURIComponent(model.job_id)}` }, "Job")
      : null,
    h("button", { class: "button", onclick: act(() => download(base, model.id)) }, "Download"),
    h("button", { class: "button danger", onclick: act(remove) }, "Delete"),
  ];

  // Queries without a required input: those that draw a picture are figures, fetched one
  // after the other; the JSON-only ones run when asked.
  const figures = [];
  const others = [];
  for (const name of model.queries) {
    const detail = details[name];
    if (!detail?.methods.includes("GET")) continue;
    const picture = PICTURES.find(([media]) => detail.media_types.includes(media));
    if (picture) figures.push({ detail, format: picture[1], body: FIGURE_REQUESTS[detail.name] });
    else others.push(jsonQuery(base, detail, page));
  }
  const needInput = model.queries.filter((name) => !details[name]?.methods.includes("GET"));
  const cards = figures.map(({ detail }) => figureCard(detail));
  root.append(
    h("div", { class: "page-head" }, head),
    actionError,
    h("section", { class: "card" }, modelFacts(model)),
    metricsSummary(model.metrics_summary),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Figures"),
      h(
        "div",
        { class: "figures", id: "figures" },
        cards.length ? cards : h("p", { class: "muted" }, "This model draws no figures."),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Other queries"),
      others,
      needInput.length
        ? h("p", { class: "muted" }, `Need a request body (use the API): ${needInput.join(", ")}`)
        : null,
    ),
    h(
      "details",
      { class: "card" },
      h("summary", {}, h("h2", {}, "Summary")),
      pretty(model.summary),
    ),
  );
  for (const [i, { detail, format, body }] of figures.entries()) {
    if (page.signal.aborted) return;
    const url = `${base}/${detail.name}?format=${format}`;
    await drawFigure(url, body, cards[i].querySelector(".figure-body"), detail.name, page);
  }
}

function figureCard(detail) {
  return h(
    "figure",
    { class: "figure-card", "data-query": detail.name },
    h(
      "figcaption",
      {},
      h("strong", {}, detail.name),
      " ",
      h("small", { class: "muted" }, detail.summary),
    ),
    h("div", { class: "figure-body muted" }, "waiting…"),
  );
}

function modelFacts(model) {
  const registered = model.registered_as.map(
    (r) => `${r.name} v${r.version}${r.aliases.length ? ` (${r.aliases.join(", ")})` : ""}`,
  );
  return definitionList([
    ["Id", h("span", { class: "mono" }, model.id)],
    ["Algorithm", model.algorithm],
    ["Seed", model.seed === null ? null : String(model.seed)],
    ["Registered as", registered.join("; ")],
    ["Size", bytes(model.size_bytes)],
    ["SHA-256", h("span", { class: "mono" }, model.sha256)],
    ["Created", when(model.created_at)],
  ]);
}

async function drawFigure(url, body, into, name, page) {
  into.textContent = "computing…";
  try {
    const blob = await fetchBlob(url, {
      body,
      signal: page.signal,
      onPending: () => {
        into.textContent = "computing on a worker…";
      },
    });
    const src = URL.createObjectURL(blob);
    page.signal.addEventListener("abort", () => URL.revokeObjectURL(src));
    into.className = "figure-body";
    into.replaceChildren(
      h(
        "a",
        { href: src, target: "_blank", title: "Open full size" },
        h("img", { src, alt: name }),
      ),
    );
  } catch (error) {
    if (page.signal.aborted) return;
    into.className = "figure-body";
    into.replaceChildren(errorBox(error));
  }
}

function jsonQuery(base, detail, page) {
  const out = h("div");
  const run = h(
    "button",
    {
      class: "button",
      onclick: async () => {
        out.replaceChildren(h("span", { class: "muted" }, "running…"));
        try {
          const blob = await fetchBlob(`${base}/${detail.name}`, { signal: page.signal });
          const text = await blob.text();
          let shown;
          try {
            shown = JSON.stringify(JSON.parse(text), null, 2);
          } catch {
            shown = text;
          }
          out.replaceChildren(
            h(
              "pre",
              { class: "json" },
              shown.length > 20000 ? `${shown.slice(0, 20000)}\n…` : shown,
            ),
          );
        } catch (error) {
          out.replaceChildren(errorBox(error));
        }
      },
    },
    "Run",
  );
  return h(
    "div",
    { class: "query-row" },
    h(
      "div",
      {},
      h("strong", {}, detail.name),
      " ",
      h("small", { class: "muted" }, detail.summary),
      " ",
      run,
    ),
    out,
  );
}

function metricsSummary(summary) {
  const names = Object.keys(summary || {}).sort();
  if (!names.length) return null;
  const stats = [...new Set(names.flatMap((n) => Object.keys(summary[n])))];
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Metrics"),
    table(
      ["Metric", ...stats],
      names.map((n) =>
        h(
          "tr",
          {},
          h("td", {}, n),
          stats.map((s) => h("td", { class: "num" }, formatStat(summary[n][s]))),
        ),
      ),
    ),
  );
}

function formatStat(value) {
  return typeof value === "number" ? String(Number(value.toPrecision(5))) : (value ?? "");
}

async function queryDetails(algorithm) {
  const found = (await listAlgorithms()).find((a) => a.name === algorithm);
  return Object.fromEntries((found?.query_details || []).map((q) => [q.name, q]));
}

async function download(base, id) {
  const response = await request(`${base}/file`);
  if (!response.ok) throw await errorOf(response);
  const src = URL.createObjectURL(await response.blob());
  const a = h("a", { href: src, download: `${id}.pt` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(src), 10000);
}
