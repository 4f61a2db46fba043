// The phones of /simulator (docs/simulator.md). Plain JavaScript, no build step.
// The server holds every state that matters (sessions, inboxes, the clock) and answers
// GET api/state once a second; this script draws it and sends what the keys do.
"use strict";

const config = JSON.parse(document.getElementById("config").textContent);
const MMI_ERROR = "Connection problem or invalid MMI code.";
const phones = new Map(); // number -> {el, typed, shown: {kind, text}}
let logSeen = 0;
let active = null;

async function api(method, path, body) {
  const response = await fetch("api/" + path, {
    method, headers: {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)});
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || "the service answered " + response.status);
  return answer;
}

function notice(text) { document.getElementById("notice").textContent = text; }

// --- one phone ---------------------------------------------------------------------

function addPhone(number) {
  const el = document.getElementById("phone-template").content.firstElementChild.cloneNode(true);
  el.dataset.phone = number;
  const phone = {el, number, typed: "", shown: {kind: "IDLE", text: ""}, inbox: 0};
  phones.set(number, phone);
  el.addEventListener("focus", () => { active = phone; });
  el.addEventListener("click", () => { active = phone; });
  el.querySelectorAll("[data-key]").forEach(key =>
    key.addEventListener("click", () => press(phone, key.dataset.key)));
  el.querySelector(".call").addEventListener("click", () => call(phone));
  el.querySelector(".end").addEventListener("click", () => end(phone));
  el.querySelector(".clear").addEventListener("click", () => backspace(phone));
  el.querySelector(".remove").addEventListener("click", () =>
    api("DELETE", "phones/" + encodeURIComponent(number)).then(() => {
      phones.delete(number); el.remove(); }));
  el.querySelector(".write").addEventListener("submit", event => {
    event.preventDefault(); sendSms(phone); });
  el.querySelector(".paybill").addEventListener("submit", event => {
    event.preventDefault(); payBill(phone); });
  el.querySelector(".prompt-ok").addEventListener("click", () => answerPrompt(phone, true));
  el.querySelector(".prompt-cancel").addEventListener("click", () => answerPrompt(phone, false));
  document.getElementById("phones").appendChild(el);
  draw(phone);
  return phone;
}

function press(phone, key) {
  if (["END", "ERROR", "DROPPED"].includes(phone.shown.kind)) phone.shown = {kind: "IDLE", text: ""};
  phone.typed += key;
  draw(phone);
}

function backspace(phone) { phone.typed = phone.typed.slice(0, -1); draw(phone); }

async function call(phone) {
  const typed = phone.typed;
  if (!typed) return;
  phone.typed = "";
  const ussd = phone.shown.kind === "CON";
  phone.calls = (phone.calls || 0) + 1; // a poll overlapping this call must not undo it
  try {
    const screen = await api("POST", "ussd", ussd
      ? {phone: phone.number, action: "reply", input: typed}
      : {phone: phone.number, action: "dial", code: typed});
    phone.shown = {kind: screen.kind, text: screen.text};
    phone.secondsLeft = config.hopTimeout;
  } catch (error) { notice(error.message); }
  phone.calls += 1;
  phone.el.dataset.hops = (Number(phone.el.dataset.hops) || 0) + 1; // tests wait on it
  draw(phone);
}

async function end(phone) {
  if (phone.shown.kind === "CON") {
    await api("POST", "ussd", {phone: phone.number, action: "cancel"}).catch(e => notice(e.message));
  }
  phone.typed = "";
  phone.shown = {kind: "IDLE", text: ""};
  draw(phone);
}

function draw(phone) {
  const screen = phone.el.querySelector(".screen");
  const {kind, text} = phone.shown;
  screen.dataset.kind = kind;
  screen.querySelector(".text").textContent =
    kind === "IDLE" ? (phone.typed ? "" : "Safaricom") : text;
  screen.querySelector(".input").textContent =
    kind === "CON" || kind === "IDLE" ? phone.typed + "▏" : "";
  screen.querySelector(".timer").textContent =
    kind === "CON" && phone.secondsLeft !== undefined ? phone.secondsLeft + " s" : "";
}

// --- SMS and M-Pesa ----------------------------------------------------------------

async function sendSms(phone) {
  const input = phone.el.querySelector(".sms-text");
  try {
    await api("POST", "sms", {phone: phone.number, text: input.value});
    input.value = "";
  } catch (error) { notice(error.message); }
}

async function payBill(phone) {
  const form = phone.el.querySelector(".paybill");
  const field = name => form.querySelector(".pay-" + name).value;
  const result = form.querySelector(".pay-result");
  result.textContent = "Sending…";
  try {
    const done = await api("POST", "paybill", {phone: phone.number, business: field("business"),
      account: field("account"), amount: field("amount"), pin: field("pin")});
    result.textContent = done.text;
    if (done.ok) form.querySelector(".pay-pin").value = "";
  } catch (error) { result.textContent = error.message; }
}

async function answerPrompt(phone, accept) {
  const box = phone.el.querySelector(".prompt");
  const pin = box.querySelector(".prompt-pin");
  try {
    const done = await api("POST", "prompt",
      {phone: phone.number, id: box.dataset.id, accept, pin: pin.value});
    notice(done.text);
    pin.value = "";
  } catch (error) { notice(error.message); }
}

function list(ol, items, line) {
  const html = items.map(line).join("");
  if (ol.dataset.html !== html) { ol.innerHTML = html; ol.dataset.html = html; }
}

function escape(text) {
  return String(text).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
}

function clockTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

// --- the poll ------------------------------------------------------------------------

// `current`: no call of this phone started or ended while the poll was on its way, so
// its USSD state is not older than what the page shows (a dial answered during the poll
// must not be taken for a dropped session).
function update(phone, state, current) {
  const el = phone.el;
  el.querySelector(".name").textContent = state.name || "Stranger";
  el.querySelector(".roles").textContent = state.roles ? "(" + state.roles.replace(/,/g, ", ") + ")" : "(not a member)";
  el.querySelector(".number").textContent = state.phone;
  el.querySelector(".pin").textContent = state.pin ? "PIN " + state.pin : "";
  el.querySelector(".remove").hidden = !state.added; // the demo's own people stay
  if (current && state.ussd) {
    phone.secondsLeft = state.ussd.secondsLeft;
    if (phone.shown.kind !== "CON") phone.shown = {kind: "CON", text: state.ussd.screen};
  } else if (current && phone.shown.kind === "CON") {
    phone.shown = {kind: "DROPPED", text: MMI_ERROR};
  }
  draw(phone);
  list(el.querySelector(".inbox"), state.inbox.slice().reverse(), m =>
    `<li data-state="${escape(m.state)}"><b>${escape(m.sender)}</b> <small>${escape(m.when)} · ${m.state === "Sent" ? "arriving" : "delivered"}</small><br>${escape(m.text)}</li>`);
  list(el.querySelector(".outbox"), state.outbox.slice().reverse(), m =>
    `<li><b>to ${escape(m.to)}</b> <small>${escape(m.when)} · ${escape(m.state)}</small><br>${escape(m.text)}</li>`);
  el.querySelector(".unread").textContent = state.inbox.length ? `(${state.inbox.length})` : "";
  const box = el.querySelector(".prompt");
  const prompt = state.prompts[0];
  box.hidden = !prompt;
  if (prompt && box.dataset.id !== prompt.id) {
    box.dataset.id = prompt.id;
    box.querySelector(".prompt-text").textContent =
      `Pay Ksh ${prompt.amount.toLocaleString()} to HARAMBEE ${prompt.shortcode}, account ${prompt.account}? Enter M-PESA PIN:`;
  }
}

async function poll() {
  try {
    const calls = new Map([...phones].map(([number, phone]) => [number, phone.calls || 0]));
    const state = await api("GET", "state?since=" + logSeen);
    document.getElementById("clock").textContent = `${state.clock.local} ${state.clock.zone}`;
    for (const item of state.phones) {
      const phone = phones.get(item.phone) || addPhone(item.phone);
      update(phone, item, (calls.get(item.phone) || 0) === (phone.calls || 0));
    }
    const log = document.getElementById("log");
    for (const entry of state.log) {
      logSeen = Math.max(logSeen, entry.n);
      const li = document.createElement("li");
      li.dataset.kind = entry.kind;
      li.textContent = `${clockTime(entry.at)} ${entry.kind.toUpperCase()} ${entry.phone} ${entry.what}` +
        (entry.ms ? ` (${entry.ms} ms)` : "");
      log.prepend(li);
    }
  } catch (error) { notice(error.message); }
  setTimeout(poll, 1000);
}

// --- the page ------------------------------------------------------------------------

document.addEventListener("keydown", event => {
  if (!active || event.target.closest("input, textarea") || event.ctrlKey || event.metaKey) return;
  if (event.key === "Enter") call(active);
  else if (event.key === "Escape") end(active);
  else if (event.key === "Backspace") backspace(active);
  else if (event.key.length === 1) press(active, event.key);
  else return;
  event.preventDefault();
});

document.querySelectorAll("[data-clock]").forEach(button =>
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const done = await api("POST", "clock", {to: button.dataset.clock});
      notice("Duties ran as of " + done.clock.local);
    } catch (error) { notice(error.message); }
    button.disabled = false;
  }));

document.getElementById("add-form").addEventListener("submit", async event => {
  event.preventDefault();
  const input = document.getElementById("add-phone");
  try {
    await api("POST", "phones", {phone: input.value});
    input.value = "";
  } catch (error) { notice(error.message); }
});

poll();
