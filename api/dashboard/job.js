// One job's page (#/jobs/ID): status, progress and ETA, facts, warnings, live training curves
// (the event stream, or polling where the server has none), other runs overlaid to compare,
// the config, and the job's log.

import { ApiError, getJSON, query, send, sleep, streamEvents } from "./api.js";
import { COLOURS, lineChart } from "./chart.js";
import {
  definitionList,
  duration,
  errorBox,
  fill,
  h,
  pretty,
  progressBar,
  shortId,
  statusBadge,
  tagChips,
  when,
} from "./dom.js";
import { FINISHED, waiting } from "./jobs.js";

const MAX_COMPARED = 7; // plus this job: the API compares at most 8

export async function jobPage(root, [id], page) {
  const base = `/v1/jobs/${encodeURIComponent(id)}`;
  let job = await getJSON(base, { signal: page.signal });
  let metrics = (await getJSON(`${base}/metrics`, { signal: page.signal })).metrics;
  const compared = new Map(); // job id -> {label, metrics}
  const el = {
    head: h("div", { class: "page-head" }),
    actionError: h("div"),
    summary: h("section", { class: "card" }),
    warnings: h("div"),
    compare: h("details", { class: "compare" }),
    legend: h("div", { class: "legend" }),
    charts: h("div", { class: "charts", id: "charts" }),
    logs: h("pre", { class: "logs", id: "logs" }, "loading…"),
  };
  const card = (title, ...children) =>
    h("section", { class: "card" }, h("h2", {}, title), children);
  root.append(
    el.head,
    el.actionError,
    el.summary,
    el.warnings,
    card("Training curves", el.compare, el.legend, el.charts),
    card("Config", pretty({ seed: job.seed, ...job.config })),
    card("Logs", el.logs),
  );

  const act = async (run) => {
    fill(el.actionError);
    try {
      await run();
    } catch (error) {
      fill(el.actionError, errorBox(error));
    }
  };
  const actions = {
    cancel: () =>
      act(async () => {
        job = await send("POST", `${base}/cancel`);
        renderJob();
      }),
    remove: () =>
      act(async () => {
        if (!window.confirm(`Delete job ${job.name || job.id}?`)) return;
        await send("DELETE", base);
        location.hash = "#/jobs";
      }),
    // Back in the queue from its checkpoint: the page starts over to follow it live.
    resume: () =>
      act(async () => {
        await send("POST", `${base}/resume`);
        window.location.reload();
      }),
    // The same spec as a new job (a new seed is the usual change: the form does the rest).
    clone: () =>
      act(async () => {
        const copy = await send("POST", `${base}/clone`, { seed: job.seed + 1 });
        location.hash = `#/jobs/${encodeURIComponent(copy.id)}`;
      }),
  };
  const renderJob = () => {
    fill(el.head, jobHead(job, actions));
    fill(el.summary, progressBar(job.progress, job.status), jobFacts(job));
    fill(el.warnings, warningsCard(job.warnings));
  };
  const renderCharts = () => {
    const runs = [{ label: job.name || shortId(job.id), metrics }, ...compared.values()];
    fill(
      el.legend,
      runs.length > 1
        ? runs.map((r, i) => h("span", { class: `swatch colour-${i}` }, r.label))
        : null,
    );
    fill(el.charts, charts(runs, FINISHED.has(job.status)));
  };
  const compare = async (others, chosen) => {
    const found = chosen.length
      ? (await getJSON(`/v1/jobs/compare${query({ job: chosen })}`, { signal: page.signal })).jobs
      : {};
    compared.clear();
    for (const other of others.filter((o) => chosen.includes(o.id))) {
      const label = other.name || shortId(other.id);
      compared.set(other.id, { label, metrics: found[other.id]?.metrics || {} });
    }
    renderCharts();
  };

  renderJob();
  renderCharts();
  comparePicker(el.compare, job, compare, page).catch(page.report);
  followLogs(base, el.logs, page);
  if (FINISHED.has(job.status)) return;

  const onEvent = ({ type, data }) => {
    if (type === "metrics") {
      for (const { name, step, value } of data.points || []) {
        upsert((metrics[name] ??= { steps: [], values: [] }), step, value);
      }
      renderCharts();
      return;
    }
    if (type === "progress") job = { ...job, progress: data };
    else if (type === "warning") job = { ...job, warnings: [...(job.warnings || []), data] };
    else if (type === "end") job = data;
    else if (type === "status") {
      job = { ...job, status: data.status };
      // The rest (started, worker, model) from the job itself.
      getJSON(base, { signal: page.signal })
        .then((found) => {
          job = found;
          renderJob();
        })
        .catch(page.report);
    }
    renderJob();
  };
  const reload = async () => {
    job = await getJSON(base, { signal: page.signal });
    metrics = (await getJSON(`${base}/metrics`, { signal: page.signal })).metrics;
    renderJob();
    renderCharts();
    return FINISHED.has(job.status) ? "stop" : null;
  };
  if (await followEvents(`${base}/events`, onEvent, page)) {
    await reload(); // the final state, with every metric point
  } else {
    await page.every(2000, reload); // no event stream on this server: ask every 2 s
  }
}

function jobHead(job, actions) {
  const finished = FINISHED.has(job.status);
  const button = (label, onclick) => h("button", { class: "button danger", onclick }, label);
  const plain = (label, onclick, title) => h("button", { class: "button", onclick, title }, label);
  const resumable =
    job.checkpoint_step !== null &&
    (job.status === "cancelled" || (job.status === "failed" && job.error_code === "timed_out"));
  return [
    h("h1", {}, job.name || shortId(job.id)),
    statusBadge(job.status),
    job.cancel_requested && !finished ? h("span", { class: "muted" }, "cancelling…") : null,
    h("span", { class: "spacer" }),
    job.model_id
      ? h("a", { class: "button", href: `#/models/${encodeURIComponent(job.model_id)}` }, "Model")
      : null,
    resumable ? plain("Resume", actions.resume, "Go on from its last checkpoint") : null,
    plain("Clone", actions.clone, "Submit the same spec again with the next seed"),
    finished ? button("Delete", actions.remove) : button("Cancel", actions.cancel),
  ];
}

function jobFacts(job) {
  const { step, total, eta_seconds: eta } = job.progress;
  const running = job.status === "running";
  const at = (value) => (value === null || value === undefined ? null : `step ${value}`);
  return definitionList([
    ["Id", h("span", { class: "mono" }, job.id)],
    ["Algorithm", job.algorithm],
    ["Progress", `${step}${total ? ` of ${total}` : ""} steps`],
    ["ETA", running && eta !== null && eta !== undefined ? duration(eta) : null],
    ["Waiting", waiting(job)],
    ["Error", job.error ? `${job.error_code || "error"}: ${job.error}` : null],
    ["Attempt", String(job.attempt)],
    ["Worker", job.worker],
    ["Heartbeat", when(job.heartbeat_at)],
    ["Queue", job.queue],
    ["Checkpoint", at(job.checkpoint_step)],
    ["Resumed from", at(job.resumed_from_step)],
    ["Created", when(job.created_at)],
    ["Started", when(job.started_at)],
    ["Finished", when(job.finished_at)],
    ["Cancelled by", job.cancelled_by],
    ["Tags", Object.keys(job.tags || {}).length ? tagChips(job.tags) : null],
    ["Registered as", job.register_as?.name],
  ]);
}

function warningsCard(warnings) {
  if (!warnings?.length) return null;
  return h(
    "section",
    { class: "card warnings" },
    h("h2", {}, `Warnings (${warnings.length})`),
    h(
      "ul",
      {},
      warnings.map((w) => h("li", {}, h("code", {}, w.code), ` at step ${w.step}: ${w.message}`)),
    ),
  );
}

/** One chart per metric name, each run in its own colour. */
function charts(runs, finished) {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  if (!names.length) {
    const text = finished ? "This job reported no metrics." : "No metrics reported yet.";
    return h("p", { class: "muted" }, text);
  }
  const empty = { steps: [], values: [] };
  return names.map((name) =>
    h(
      "figure",
      { class: "chart-card", "data-metric": name },
      h("figcaption", {}, name),
      lineChart(
        name,
        runs.map((r, i) => ({ label: r.label, colour: COLOURS[i], ...(r.metrics[name] || empty) })),
      ),
    ),
  );
}

/** Checkboxes of the other runs of the same algorithm; `compare(others, chosenIds)`. */
async function comparePicker(into, job, compare, page) {
  const url = `/v1/jobs${query({ algorithm: job.algorithm, limit: 50 })}`;
  const others = (await getJSON(url, { signal: page.signal })).data.filter((o) => o.id !== job.id);
  const note = h("small", { class: "muted" });
  const boxes = others.map((other) => {
    const box = h("input", { type: "checkbox", value: other.id });
    box.addEventListener("change", () => {
      const chosen = [...into.querySelectorAll("input:checked")].map((b) => b.value);
      note.textContent = chosen.length > MAX_COMPARED ? `At most ${MAX_COMPARED} other runs.` : "";
      if (chosen.length > MAX_COMPARED) box.checked = false;
      else compare(others, chosen).catch(page.report);
    });
    const label = `${other.name || shortId(other.id)} `;
    return h("label", { class: "check" }, box, label, statusBadge(other.status));
  });
  fill(
    into,
    h("summary", {}, `Compare with other ${job.algorithm} runs (${others.length})`),
    others.length
      ? h("div", { class: "compare-list" }, boxes)
      : h("p", { class: "muted" }, "No other runs of this algorithm."),
    note,
  );
}

/** Add a point; a step sent again (after a resume from a checkpoint) takes the new value. */
function upsert(series, step, value) {
  const { steps, values } = series;
  if (!steps.length || step > steps.at(-1)) {
    steps.push(step);
    values.push(value);
    return;
  }
  let i = steps.findIndex((s) => s >= step);
  if (steps[i] === step) values[i] = value;
  else {
    if (i < 0) i = steps.length;
    steps.splice(i, 0, step);
    values.splice(i, 0, value);
  }
}

/** Follow the SSE stream until its `end` event: true; false when the server has none. */
async function followEvents(url, onEvent, page) {
  let lastId = null;
  let ended = false;
  let failures = 0;
  while (!page.signal.aborted && !ended) {
    try {
      lastId = await streamEvents(url, {
        signal: page.signal,
        lastEventId: lastId,
        onEvent: (event) => {
          failures = 0;
          if (event.type === "end") ended = true;
          onEvent(event);
        },
      });
    } catch (error) {
      if (page.signal.aborted) return true;
      if (error instanceof ApiError && [404, 405, 406].includes(error.status)) return false;
      if (++failures > 3) return false;
    }
    if (!ended) await sleep(1000, page.signal).catch(() => {});
  }
  return true;
}

/** Append the job's log lines as they come (pages every 2 s); a server without job logs
 * says so instead. */
function followLogs(base, box, page) {
  let after = 0;
  let lines = [];
  page.every(2000, async () => {
    let body;
    do {
      try {
        body = await getJSON(`${base}/logs${query({ after, limit: 500 })}`, {
          signal: page.signal,
        });
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          box.textContent = "This server does not keep job logs.";
          return "stop";
        }
        throw error;
      }
      for (const entry of body.data) {
        const who = [entry.worker, entry.attempt ? `attempt ${entry.attempt}` : null]
          .filter(Boolean)
          .join(" ");
        const time = entry.time.replace("T", " ").slice(0, 23);
        const where = who ? `[${who}] ` : "";
        lines.push(`${time} ${entry.level.padEnd(7)} ${where}${entry.logger}: ${entry.message}`);
      }
      after = body.next_after ?? after;
    } while (body.has_more && !page.signal.aborted);
    lines = lines.slice(-2000);
    box.textContent = lines.length ? lines.join("\n") : "No log lines yet.";
    return body.job_finished ? "stop" : null;
  });
}
