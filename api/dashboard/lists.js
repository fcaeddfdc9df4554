// Datasets (#/datasets, with delete) and registered model names (#/registry).

import { getJSON, query, send } from "./api.js";
import { bytes, errorBox, h, link, relative, shortId, table } from "./dom.js";

export async function datasetsPage(root, _params, page) {
  const list = h("div", { id: "datasets-list" });
  const actionError = h("div");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Datasets")), actionError, list);
  const refresh = async () => {
    const body = await getJSON(`/v1/datasets${query({ limit: 200 })}`, { signal: page.signal });
    list.replaceChildren(
      table(
        ["Name", "Kind", "About", "Rows", "Size", "Used by", "Created", ""],
        body.data.map((d) =>
          h(
            "tr",
            { "data-dataset": d.id },
            h(
              "td",
              {},
              d.name || shortId(d.id),
              h("div", { class: "muted mono" }, d.builtin ? "built-in" : shortId(d.id)),
            ),
            h("td", {}, d.kind),
            h("td", { class: "about" }, about(d)),
            h("td", { class: "num" }, d.rows ?? ""),
            h("td", { class: "num" }, bytes(d.size_bytes)),
            h(
              "td",
              {},
              (d.used_by || []).map((id) =>
                link(`#/jobs/${encodeURIComponent(id)}`, shortId(id), " "),
              ),
            ),
            h("td", {}, d.builtin ? "" : relative(d.created_at)),
            h(
              "td",
              {},
              d.builtin
                ? ""
                : h(
                    "button",
                    {
                      class: "button danger small",
                      onclick: async () => {
                        if (!window.confirm(`Delete dataset ${d.name || d.id}?`)) return;
                        actionError.replaceChildren();
                        try {
                          await send("DELETE", `/v1/datasets/${encodeURIComponent(d.id)}`);
                          await refresh();
                        } catch (error) {
                          actionError.replaceChildren(errorBox(error));
                        }
                      },
                    },
                    "Delete",
                  ),
            ),
          ),
        ),
        "No datasets. Upload one with POST /v1/datasets.",
      ),
    );
  };
  await refresh();
}

/** A line about a dataset: a built-in's description, an upload's scalar facts. */
function about(dataset) {
  const summary = dataset.summary || {};
  if (dataset.builtin) {
    return `${summary.description || ""} (${(summary.algorithms || []).join(", ")})`;
  }
  return Object.entries(summary)
    .filter(
      ([, v]) =>
        ["string", "number", "boolean"].includes(typeof v) ||
        (Array.isArray(v) && v.every((x) => typeof x === "number")),
    )
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? `[${v.join(", ")}]` : v}`)
    .join(" · ");
}

export async function registryPage(root, _params, page) {
  const body = await getJSON(`/v1/registry${query({ limit: 200 })}`, { signal: page.signal });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Registry"),
      h("span", { class: "muted" }, `${body.count} names`),
    ),
  );
  if (!body.data.length) {
    root.append(
      h(
        "p",
        { class: "muted" },
        "No registered names. Submit a job with register_as, or POST /v1/registry/{name}/versions.",
      ),
    );
    return;
  }
  const described = await Promise.all(
    body.data.map((n) =>
      getJSON(`/v1/registry/${encodeURIComponent(n.name)}`, { signal: page.signal }),
    ),
  );
  for (const name of described) {
    root.append(
      h(
        "section",
        { class: "card", "data-name": name.name },
        h(
          "h2",
          {},
          name.name,
          " ",
          h("small", { class: "muted" }, `latest v${name.latest_version}`),
        ),
        h(
          "div",
          { class: "tags" },
          Object.entries(name.aliases).map(([alias, version]) =>
            link(
              `#/models/${encodeURIComponent(`${name.name}@${alias}`)}`,
              h("span", { class: "tag" }, `${alias} → v${version}`),
            ),
          ),
        ),
        table(
          ["Version", "Model", "Aliases", "Created"],
          name.versions.map((v) =>
            h(
              "tr",
              {},
              h("td", {}, `v${v.version}`),
              h(
                "td",
                {},
                link(
                  `#/models/${encodeURIComponent(v.model_id)}`,
                  h("span", { class: "mono" }, shortId(v.model_id)),
                ),
              ),
              h("td", {}, v.aliases.join(", ")),
              h("td", {}, relative(v.created_at)),
            ),
          ),
        ),
      ),
    );
  }
}
