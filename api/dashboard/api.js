// Talking to the API: every request carries the key the user typed (kept in sessionStorage,
// never in a cookie, so no other site's page can make the browser send it), a 401 asks for a
// key and retries, and errors become ApiError with the server's code, message and field.

const KEY = "crucible.apiKey";
let askForKey = async () => {
  throw new Error("no way to ask for an API key");
};
let pendingKey = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || `http_${status}`;
    this.field = body?.field || null;
    this.errors = body?.errors || [];
  }
}

export function onKeyNeeded(prompt) {
  askForKey = prompt;
}

export function currentKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

async function newKey(reason) {
  // Requests refused at the same moment share one prompt.
  pendingKey ??= askForKey(reason).finally(() => {
    pendingKey = null;
  });
  return pendingKey;
}

export async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { code: `http_${response.status}`, message: response.statusText };
  }
  return new ApiError(response.status, body);
}

/** fetch() with the key; a 401 asks for a (new) key and tries again. */
export async function request(path, { method = "GET", body, accept, headers = {}, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const sent = { ...headers };
    const key = currentKey();
    if (key) sent.Authorization = `Bearer ${key}`;
    if (accept) sent.Accept = accept;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
    if (response.status !== 401 || attempt >= 5) return response;
    const error = await errorOf(response);
    setKey(null);
    await newKey(error.message);
  }
}

export async function getJSON(path, options = {}) {
  const response = await request(path, { ...options, accept: "application/json" });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

export async function send(method, path, body, options = {}) {
  const response = await request(path, { ...options, method, body });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of [value].flat()) {
      if (one !== null && one !== undefined && one !== "") search.append(key, one);
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A figure or other file, following a heavy query's 202 + Location until it is ready. */
export async function fetchBlob(path, { signal, onPending, body } = {}) {
  let url = path;
  for (let polls = 0; polls < 600; polls++) {
    const first = polls === 0 && body !== undefined;
    const response = await request(url, first ? { signal, method: "POST", body } : { signal });
    if (response.status === 202) {
      onPending?.();
      url = response.headers.get("Location") || url;
      await sleep(Number(response.headers.get("Retry-After") || 1) * 1000, signal);
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response.blob();
  }
  throw new Error("gave up waiting for the result");
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

/**
 * Server-sent events over fetch (EventSource cannot send the Authorization header): calls
 * onEvent({type, data, id}) for each event, data parsed as JSON when it is. Resolves with the
 * last event id when the server closes the stream, for a resume with Last-Event-ID.
 */
export async function streamEvents(path, { onEvent, signal, lastEventId = null }) {
  const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
  const response = await request(path, { accept: "text/event-stream", headers, signal });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "message", data: [] };
  let lastId = lastEventId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return lastId;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line === "") {
        if (event.data.length) onEvent(parsed(event, lastId));
        event = { type: "message", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = text;
      else if (field === "data") event.data.push(text);
      else if (field === "id") lastId = text;
    }
  }
}

function parsed(event, id) {
  const text = event.data.join("\n");
  try {
    return { type: event.type, data: JSON.parse(text), id };
  } catch {
    return { type: event.type, data: text, id };
  }
}

// Lists that rarely change, fetched once per page load.
let algorithms = null;
export function listAlgorithms() {
  algorithms ??= getJSON("/v1/algorithms").then((body) => body.data);
  algorithms.catch(() => {
    algorithms = null;
  });
  return algorithms;
}
