// The dashboard's entry point: hash routes, the API-key prompt, and each page's lifetime
// (its polls and streams stop when the user navigates away).

import { ApiError, currentKey, getJSON, onKeyNeeded, setKey, sleep } from "./api.js";
import { errorBox, h } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { datasetsPage, registryPage } from "./lists.js";
import { modelPage, modelsPage } from "./models.js";
import { submitPage } from "./submit.js";

const ROUTES = [
  [/^#\/jobs\/([^/?]+)$/, jobPage, "jobs"],
  [/^#\/jobs$/, jobsPage, "jobs"],
  [/^#\/models\/([^/?]+)$/, modelPage, "models"],
  [/^#\/models$/, modelsPage, "models"],
  [/^#\/datasets$/, datasetsPage, "datasets"],
  [/^#\/registry$/, registryPage, "registry"],
  [/^#\/submit$/, submitPage, "submit"],
];

let current = null; // the page on screen: {abort()}

/** What a page gets: a signal that aborts when it is left, polling, error reporting. */
function pageContext(banner) {
  const controller = new AbortController();
  const page = {
    signal: controller.signal,
    abort: () => controller.abort(),
    report(error) {
      if (controller.signal.aborted || error?.name === "AbortError") return null;
      // The server's refusals are shown on the page; anything else is a bug in this code.
      if (error instanceof ApiError) console.warn(error);
      else console.error(error);
      const box = errorBox(error);
      banner.append(box);
      return box;
    },
    /** Run fn now and every `ms` after it finishes, until it returns "stop" or the page goes. */
    async every(ms, fn) {
      let shown = null;
      while (!controller.signal.aborted) {
        try {
          const outcome = await fn();
          shown?.remove();
          shown = null;
          if (outcome === "stop") return;
        } catch (error) {
          shown?.remove();
          shown = page.report(error);
        }
        try {
          await sleep(ms, controller.signal);
        } catch {
          return;
        }
      }
    },
  };
  return page;
}

async function route() {
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    location.replace("#/jobs");
    return;
  }
  current?.abort();
  const main = document.getElementById("view");
  const banner = h("div", { class: "banner" });
  const content = h("div");
  main.replaceChildren(banner, content);
  const page = pageContext(banner);
  current = page;
  const found = ROUTES.map(([pattern, view, section]) => [
    location.hash.match(pattern),
    view,
    section,
  ]).find(([match]) => match);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.section === found?.[2]);
  }
  if (!found) {
    content.append(
      h("h1", {}, "Not found"),
      h("p", {}, "No such page. "),
      h("a", { href: "#/jobs" }, "Back to the jobs"),
    );
    return;
  }
  const [match, view] = found;
  try {
    await view(content, match.slice(1).map(decodeURIComponent), page);
  } catch (error) {
    page.report(error);
  }
}

// -- the API key ----------------------------------------------------------------------------
function askForKey(reason) {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  document.getElementById("key-reason").textContent = reason || "";
  input.value = "";
  return new Promise((resolve) => {
    // A property, not a listener: a later prompt replaces this handler.
    form.onsubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      setKey(key);
      dialog.close();
      showCaller();
      resolve(key);
    };
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

async function showCaller() {
  const who = document.getElementById("caller");
  const forget = document.getElementById("forget-key");
  forget.hidden = !currentKey();
  try {
    const caller = await getJSON("/v1/keys/current");
    who.textContent =
      caller.auth_required || caller.key_id
        ? `tenant ${caller.tenant}`
        : "open API (no key needed)";
  } catch {
    who.textContent = "";
  }
}

function start() {
  onKeyNeeded(askForKey);
  document
    .getElementById("key-dialog")
    .addEventListener("cancel", (event) => event.preventDefault());
  document.getElementById("forget-key").addEventListener("click", () => {
    setKey(null);
    location.reload();
  });
  window.addEventListener("hashchange", route);
  showCaller();
  route();
}

start();
