// The dashboard's only script: poll the tables, send the steer buttons.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const pollSeconds = Number(
  document.querySelector('meta[name="poll-seconds"]').content) || 2;
const live = document.getElementById("live");
const outcome = document.getElementById("outcome");
const updated = document.getElementById("updated");

async function refresh() {
  let answer;
  try {
    answer = await fetch("/dashboard/live", {credentials: "same-origin"});
  } catch (error) {
    updated.textContent = "router unreachable";
    return;
  }
  if (answer.status === 401) {
    window.location.reload();  // the session ended: back to the login form
    return;
  }
  if (answer.ok) {
    live.innerHTML = await answer.text();
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  }
}

function say(text, refused, code) {
  outcome.textContent = text;
  outcome.className = "outcome " + (refused ? "refused" : "done");
  if (code) {
    const badge = document.createElement("span");
    badge.className = "code";
    badge.textContent = code;
    outcome.append(" ", badge);
  }
}

async function act(event) {
  event.preventDefault();
  const form = event.target;
  const action = event.submitter ? event.submitter.value : "shift";
  const context = form.dataset.context;
  const body = {weight: form.elements.weight.value, reason: form.elements.reason.value};
  say(`${context}: ${action}…`, false);
  try {
    const answer = await fetch(
      `/dashboard/contexts/${encodeURIComponent(context)}/${action}`, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify(body),
      });
    const found = await answer.json();
    if (answer.ok) {
      say(found.message, false);
    } else {
      say(found.message, true, found.error);
    }
  } catch (error) {
    say(`${context}: the router did not answer (${error})`, true);
  }
  await refresh();
}

for (const form of document.querySelectorAll("form.steer-row")) {
  form.addEventListener("submit", act);
}
setInterval(refresh, pollSeconds * 1000);
