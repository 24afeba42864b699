// The demo page: two forms that call /v1/rerank and /v1/ask and draw the answers.
// Plain DOM code, no build step; text from the server is always inserted as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// The API key the user typed, if the server wants one: kept for this tab only (sessionStorage),
// sent as a Bearer token with each API call, never put in a URL.
const KEY_STORAGE = "qwen3-rerank-api-key";

function apiHeaders() {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: apiHeaders(),
    body: JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (response.status === 401) {
    throw new Error("401: this server needs an API key; enter it in the API key field above.");
  }
  if (!response.ok) {
    throw new Error(`${response.status}: ${describeError(payload.detail) || response.statusText}`);
  }
  return payload;
}

function describeError(detail) {
  if (Array.isArray(detail)) {
    return detail.map((item) => `${(item.loc || []).slice(1).join(".")}: ${item.msg}`).join("; ");
  }
  return detail;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(id, message, isError = false) {
  $(id).textContent = message;
  $(id).classList.toggle("error", isError);
}

async function submitting(button, work) {
  button.disabled = true;
  try {
    await work();
  } finally {
    button.disabled = false;
  }
}

function renderRanking(results, documents) {
  const list = $("rerank-results");
  list.replaceChildren();
  for (const result of results) {
    const item = element("li", "result");
    item.dataset.index = result.index;
    const row = element("div", "row");
    const track = element("div", "track");
    const bar = element("div", "bar");
    bar.style.width = `${(result.relevance_score * 100).toFixed(1)}%`;
    track.append(bar);
    row.append(track, element("span", "score", result.relevance_score.toFixed(4)),
      element("span", "text", documents[result.index]));
    item.append(row);
    list.append(item);
  }
}

async function rerank(event) {
  event.preventDefault();
  const documents = $("rerank-documents").value.split("\n").map((line) => line.trim()).filter(Boolean);
  const instruction = $("rerank-instruction").value.trim();
  const body = { query: $("rerank-query").value, documents };
  if (instruction) body.instruction = instruction;
  setStatus("rerank-status", `Scoring ${documents.length} documents…`);
  await submitting($("rerank-submit"), async () => {
    try {
      const started = performance.now();
      const response = await postJson("/v1/rerank", body);
      renderRanking(response.results, documents);
      const ms = Math.round(performance.now() - started);
      setStatus("rerank-status", `${response.results.length} documents ranked in ${ms} ms by ${response.model}.`);
    } catch (error) {
      $("rerank-results").replaceChildren();
      setStatus("rerank-status", error.message, true);
    }
  });
}

// "[2]" in the answer becomes a link to passage 2; everything else stays plain text.
function renderAnswer(answer, passageCount) {
  const container = $("ask-answer");
  container.replaceChildren();
  let last = 0;
  for (const match of answer.matchAll(/\[(\d+)\]/g)) {
    const number = Number(match[1]);
    if (number < 1 || number > passageCount) continue;
    container.append(document.createTextNode(answer.slice(last, match.index)));
    const link = element("a", "citation", match[0]);
    link.href = `#passage-${number}`;
    container.append(link);
    last = match.index + match[0].length;
  }
  container.append(document.createTextNode(answer.slice(last)));
}

function renderPassages(passages) {
  const list = $("ask-passages");
  list.replaceChildren();
  for (const passage of passages) {
    const item = element("li", "passage");
    item.id = `passage-${passage.rank}`;
    item.value = passage.rank;
    item.append(element("div", "source", `${passage.source} · score ${passage.score.toFixed(4)}`),
      element("div", "text", passage.text));
    list.append(item);
  }
}

async function ask(event) {
  event.preventDefault();
  setStatus("ask-status", "Retrieving, reranking and answering…");
  await submitting($("ask-submit"), async () => {
    try {
      const response = await postJson("/v1/ask", { question: $("ask-question").value });
      renderAnswer(response.answer, response.passages.length);
      renderPassages(response.passages);
      const total = Object.values(response.timings).reduce((sum, seconds) => sum + seconds, 0);
      setStatus("ask-status", `${response.passages.length} passages, ${total.toFixed(2)} s.`);
    } catch (error) {
      $("ask-answer").replaceChildren();
      $("ask-passages").replaceChildren();
      setStatus("ask-status", error.message, true);
    }
  });
}

function showTab(name) {
  for (const other of ["rerank", "ask"]) {
    $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
    $(`panel-${other}`).hidden = other !== name;
  }
}

// The header names the served model, and says when /v1/ask cannot answer, so nobody has to guess.
async function describeServer() {
  try {
    const response = await fetch("/readyz");
    const status = await response.json();
    // "not configured" means no sample corpus to index at start-up, not an empty store: say nothing then.
    const corpus = status.corpus === "not configured" ? "" : ` (sample corpus ${status.corpus})`;
    const rag = status.rag === "ok" ? `Ask ready${corpus}` : `Ask unavailable (${status.rag})`;
    $("model-line").textContent = `${status.model} on ${status.device} · ${rag} · `;
    const docs = element("a", "", "API docs");
    docs.href = "/docs";
    $("model-line").append(docs);
  } catch {
    // The page still works without the header line.
  }
}

$("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
$("api-key").addEventListener("change", () => sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim()));
$("rerank-form").addEventListener("submit", rerank);
$("ask-form").addEventListener("submit", ask);
$("tab-rerank").addEventListener("click", () => showTab("rerank"));
$("tab-ask").addEventListener("click", () => showTab("ask"));
describeServer();
