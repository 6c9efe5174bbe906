// Atoll dashboard: the only script the pages load. It never builds markup from data: text
// from the server goes into textContent only.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function toHex(text) {
  return "0x" + Array.from(new TextEncoder().encode(text))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

function showError(id, message) {
  const el = document.getElementById(id);
  if (el) { el.textContent = message; el.hidden = false; }
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(answer.error || ("refused: " + response.status)); }
  return answer;
}

async function postForm(url, fields) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "Accept": "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: new URLSearchParams(fields).toString(),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(answer.error || ("refused: " + response.status)); }
  return answer;
}

function wallet() {
  if (!window.ethereum || typeof window.ethereum.request !== "function") {
    throw new Error("No browser wallet found: install one, or run `atoll ui login`.");
  }
  return window.ethereum;
}

async function signIn() {
  try {
    const eth = wallet();
    const accounts = await eth.request({ method: "eth_requestAccounts" });
    const address = accounts[0];
    const { message } = await postJson("/ui/siwe/message", { address });
    const signature = await eth.request({ method: "personal_sign", params: [toHex(message), address] });
    await postJson("/ui/siwe/verify", { message, signature });
    window.location.assign("/ui/");
  } catch (err) {
    showError("siwe-error", err.message || String(err));
  }
}

async function decide(form, decision) {
  const reason = form.querySelector('[name="reason"]').value;
  try {
    const eth = wallet();
    const who = document.getElementById("who").textContent.trim();
    const prepared = await postForm(form.dataset.prepare, { decision, reason });
    const signature = await eth.request({ method: "personal_sign", params: [prepared.hash, who] });
    await postForm(form.dataset.decide, {
      decision, reason, nonce: String(prepared.nonce), signature,
    });
    window.location.reload();
  } catch (err) {
    showError("decide-error", err.message || String(err));
  }
}

function follow(live) {
  const url = live.dataset.events;
  if (!url) { return; }
  const status = document.getElementById("status");
  const log = document.getElementById("log");
  const note = document.getElementById("log-note");
  const source = new EventSource(url);
  source.addEventListener("status", (e) => {
    const data = JSON.parse(e.data);
    if (status) { status.textContent = data.text; }
  });
  source.addEventListener("log", (e) => {
    if (log) { log.append(document.createTextNode(JSON.parse(e.data).text)); }
  });
  source.addEventListener("log-refused", (e) => {
    if (note) { note.textContent = JSON.parse(e.data).text; }
  });
  source.addEventListener("end", () => {
    source.close();
    live.dataset.ended = "1";
    // a job that ended while watched: its results, receipt and review come with the page of
    // an ended job, which streams its log again (as released) when it loads
    if (!live.dataset.terminal) { window.location.reload(); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const siwe = document.getElementById("siwe");
  if (siwe) { siwe.addEventListener("click", signIn); }
  const form = document.getElementById("decide");
  if (form) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const decision = e.submitter ? e.submitter.value : "approve";
      decide(form, decision);
    });
  }
  const live = document.getElementById("live");
  if (live) { follow(live); }
});
