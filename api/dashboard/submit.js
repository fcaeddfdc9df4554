// The submission form (#/submit), built from the chosen algorithm's config_schema: a field
// per top-level property, with its default, its description as help, enums as selects,
// numbers and booleans typed, anything nested as a JSON textarea. Only fields changed from
// their defaults are sent, so the server's defaults stay the source of truth. A 422 puts the
// server's message next to the field it names.

import { ApiError, listAlgorithms, send } from "./api.js";
import { errorBox, h } from "./dom.js";

let chosenAlgorithm = "";

export async function submitPage(root, _params, page) {
  const algorithms = await listAlgorithms();
  if (!algorithms.find((a) => a.name === chosenAlgorithm))
    chosenAlgorithm = algorithms[0]?.name || "";
  const picker = h(
    "select",
    { name: "algorithm", id: "algorithm" },
    algorithms.map((a) =>
      h(
        "option",
        { value: a.name, selected: a.name === chosenAlgorithm },
        `${a.name} (${a.family})`,
      ),
    ),
  );
  const description = h("p", { class: "muted" });
  const configFields = h("div", { class: "fields", id: "config-fields" });
  const formError = h("div", { class: "form-error" });
  const general = [
    field(
      "name",
      "Name",
      h("input", { type: "text", name: "name", maxlength: 200, placeholder: "optional" }),
      "Shown in lists; need not be unique.",
    ),
    field(
      "seed",
      "Seed",
      h("input", { type: "number", name: "seed", value: "0", min: 0, step: 1 }),
      "Every random number of the run comes from it.",
    ),
    field(
      "tags",
      "Tags",
      h("input", { type: "text", name: "tags", placeholder: "team=vision, baseline" }),
      "key=value pairs (or bare keys), separated by commas.",
    ),
  ];
  const submit = h("button", { type: "submit", class: "button primary" }, "Submit job");
  const form = h(
    "form",
    { id: "submit-form", novalidate: true },
    h("div", { class: "fields" }, field("algorithm", "Algorithm", picker, null), general),
    description,
    h("h2", {}, "Config"),
    configFields,
    formError,
    submit,
  );
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "New job")),
    h("section", { class: "card" }, form),
  );

  let inputs = [];
  const build = () => {
    const algorithm = algorithms.find((a) => a.name === chosenAlgorithm);
    description.textContent = algorithm?.description || "";
    inputs = configInputs(algorithm?.config_schema || { properties: {} });
    configFields.replaceChildren(...inputs.map((i) => i.row));
  };
  picker.addEventListener("change", () => {
    chosenAlgorithm = picker.value;
    build();
  });
  build();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    formError.replaceChildren();
    const config = {};
    let invalid = false;
    for (const input of inputs) {
      try {
        const value = input.read();
        if (value !== undefined) config[input.name] = value;
      } catch (error) {
        showFieldError(form, `config.${input.name}`, error.message);
        invalid = true;
      }
    }
    if (invalid) return;
    const spec = {
      algorithm: chosenAlgorithm,
      config,
      seed: Number(form.elements.seed.value || 0),
      tags: parseTags(form.elements.tags.value),
    };
    if (form.elements.name.value.trim()) spec.name = form.elements.name.value.trim();
    submit.disabled = true;
    try {
      const job = await send("POST", "/v1/jobs", spec, { signal: page.signal });
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const problems = error.errors?.length
        ? error.errors
        : [{ field: error.field, message: error.message }];
      for (const problem of problems) {
        if (!showFieldError(form, problem.field || "", problem.message)) {
          formError.append(errorBox({ code: error.code, message: problem.message }));
        }
      }
    } finally {
      submit.disabled = false;
    }
  });
}

function field(name, label, input, help) {
  input.id ||= `field-${name}`;
  return h(
    "div",
    { class: "field", "data-field": name },
    h("label", { for: input.id }, label),
    input,
    help ? h("small", { class: "help" }, help) : null,
    h("div", { class: "field-error", role: "alert" }),
  );
}

/** Put `message` beside the field `path` names, or its closest enclosing field. */
function showFieldError(form, path, message) {
  const parts = path.split(".");
  for (let n = parts.length; n > 0; n--) {
    const row = form.querySelector(
      `.field[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`,
    );
    if (row) {
      row.querySelector(".field-error").textContent =
        n < parts.length ? `${parts.slice(n).join(".")}: ${message}` : message;
      return true;
    }
  }
  return false;
}

function parseTags(text) {
  const tags = {};
  for (const part of text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 0) tags[part] = "";
    else tags[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return tags;
}

// -- schema to inputs -----------------------------------------------------------------------
function configInputs(schema) {
  const defs = schema.$defs || {};
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) =>
    configInput(name, prop, defs, required.has(name)),
  );
}

function deref(schema, defs) {
  let s = schema || {};
  while (s.$ref) s = defs[s.$ref.split("/").pop()] || {};
  if (s.allOf?.length === 1) return deref(s.allOf[0], defs);
  return s;
}

/** What kind of input a property gets: {kind, choices?, nullable}. */
function inputKind(prop, defs) {
  let s = deref(prop, defs);
  let nullable = false;
  const members = s.anyOf || s.oneOf;
  if (members) {
    const kept = members.map((m) => deref(m, defs)).filter((m) => m.type !== "null");
    nullable = kept.length < members.length;
    if (kept.every((m) => m.enum || "const" in m)) {
      return { kind: "select", choices: kept.flatMap((m) => m.enum || [m.const]), nullable };
    }
    if (kept.length !== 1) return { kind: "json", nullable };
    s = kept[0];
  }
  if (s.enum) return { kind: "select", choices: s.enum, nullable };
  if ("const" in s) return { kind: "select", choices: [s.const], nullable };
  if (s.type === "boolean") return { kind: "boolean", nullable };
  if (s.type === "integer" || s.type === "number") {
    return {
      kind: "number",
      integer: s.type === "integer",
      nullable,
      min: s.minimum,
      max: s.maximum,
    };
  }
  if (s.type === "string") return { kind: "string", nullable };
  const flat =
    s.type === "array" && ["integer", "number", "string"].includes(deref(s.items, defs).type);
  return { kind: flat ? "list" : "json", nullable };
}

// One builder per kind of input: (attributes, spec, default) -> {input, read}. `read` answers
// the value to send, undefined to leave the field to the server, or throws a message.
const INPUTS = {
  select(attrs, spec, fallback) {
    const choices = spec.nullable ? [null, ...spec.choices] : spec.choices;
    const chosen = JSON.stringify(fallback ?? null);
    const option = (c, i) =>
      h(
        "option",
        { value: String(i), selected: JSON.stringify(c) === chosen },
        c === null ? "(none)" : String(c),
      );
    const input = h("select", attrs, choices.map(option));
    return { input, read: () => choices[Number(input.value)] };
  },
  boolean(attrs, _spec, fallback) {
    const input = h("input", { ...attrs, type: "checkbox", checked: Boolean(fallback) });
    return { input, read: () => input.checked };
  },
  number(attrs, spec, fallback) {
    const step = spec.integer ? 1 : "any";
    const input = h("input", {
      ...attrs,
      type: "number",
      value: fallback ?? "",
      step,
      min: spec.min,
      max: spec.max,
      placeholder: fallback === null ? "(none)" : "",
    });
    const read = () => {
      if (input.value.trim() === "") return spec.nullable ? null : undefined;
      const value = Number(input.value);
      if (!Number.isFinite(value)) throw new Error("not a number");
      return value;
    };
    return { input, read };
  },
  string(attrs, spec, fallback) {
    const input = h("input", { ...attrs, type: "text", value: fallback ?? "" });
    return { input, read: () => (input.value === "" && spec.nullable ? null : input.value) };
  },
  list(attrs, _spec, fallback) {
    const input = h("input", {
      ...attrs,
      type: "text",
      placeholder: "[...] or the server's default",
    });
    input.value = fallback === undefined ? "" : JSON.stringify(fallback);
    return { input, read: () => parseJSON(input.value) };
  },
  json(attrs, _spec, fallback) {
    const placeholder = fallback === undefined ? "JSON, or empty for the server's default" : "";
    const input = h("textarea", { ...attrs, rows: 3, spellcheck: "false", placeholder });
    input.value = fallback === undefined ? "" : JSON.stringify(fallback, null, 1);
    return { input, read: () => parseJSON(input.value) };
  },
};

function parseJSON(text) {
  if (text.trim() === "") return undefined; // the server's default
  try {
    return JSON.parse(text);
  } catch {
    throw new Error("not valid JSON");
  }
}

function configInput(name, prop, defs, required) {
  const spec = inputKind(prop, defs);
  const fallback = prop.default;
  const attrs = { id: `config-${name}`, name: `config.${name}` };
  const { input, read } = INPUTS[spec.kind](attrs, spec, fallback);
  const title = prop.title || name;
  const row = field(
    `config.${name}`,
    required ? `${title} *` : title,
    input,
    prop.description || "",
  );
  row.classList.add(`kind-${spec.kind}`);
  return {
    name,
    row,
    read: () => {
      const value = read();
      if (value === undefined) return undefined;
      // Unchanged from the default: leave it to the server.
      if (!required && fallback !== undefined && JSON.stringify(value) === JSON.stringify(fallback))
        return undefined;
      return value;
    },
  };
}
