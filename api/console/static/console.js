// The Agora console: one module, no dependencies. It calls the public API and the
// observer stream with the signed-in token, which lives in this tab's sessionStorage only.

const KEY = "agora.console.token";
const $ = (sel, root = document) => root.querySelector(sel);
const view = $("#view");
let me = null;
let cleanup = [];

// ---- small helpers -------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "style") el.style.cssText = v; // CSSOM: the policy allows no inline style attribute
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const MAX_SEQ = 2 ** 53 - 1;

function reasonOf(body, status) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "body"}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : `HTTP ${status}`;
}

class Refused extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

async function api(path, { method = "GET", body } = {}) {
  const token = sessionStorage.getItem(KEY);
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401) {
    signOut(reasonOf(data, 401));
    throw new Refused(401, reasonOf(data, 401));
  }
  if (!response.ok) throw new Refused(response.status, reasonOf(data, response.status));
  return data;
}

function throttle(fn, ms) {
  let timer = null;
  return () => { if (timer === null) timer = setTimeout(() => { timer = null; fn(); }, ms); };
}

// ---- the observer stream, with reconnects and de-duplication -------------------------

const link = $("#link");

function observe(scope, onEvent, { onReconnect } = {}) {
  const gen = generation;
  const seen = new Set();
  let socket = null;
  let stopped = false;
  let attempt = 0;
  let opened = false;
  async function open() {
    if (stopped) return;
    let ticket;
    try {
      ticket = await api("/v1/observe/ticket", { method: "POST", body: scope });
    } catch (err) {
      if (err.status === 401 || stopped) return;
      if (err.status === 404) { link.textContent = `not visible: ${err.message}`; return; }
      return retry();
    }
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/v1/observe?ticket=${encodeURIComponent(ticket.ticket)}`);
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "observer.ready") {
        // bound: from here nothing is missed, so what came before is read once
        attempt = 0;
        link.textContent = "live";
        link.classList.remove("down");
        if (opened && onReconnect) onReconnect();
        opened = true;
        return;
      }
      if (seen.has(event.event_id)) return;
      seen.add(event.event_id);
      if (seen.size > 5000) seen.delete(seen.values().next().value);
      onEvent(event);
    };
    socket.onclose = (close) => {
      if (stopped) return;
      if (close.code === 4401) { signOut(close.reason || "token refused"); return; }
      retry();
    };
  }
  function retry() {
    link.textContent = "reconnecting…";
    link.classList.add("down");
    attempt += 1;
    setTimeout(open, Math.min(5000, 250 * 2 ** attempt));
  }
  const stop = () => { stopped = true; if (socket) socket.close(1000); };
  if (gen !== generation) throw new Stale(); // the view is gone: watch nothing
  open();
  cleanup.push(stop);
  return stop;
}

// ---- sign-in -------------------------------------------------------------------------

function signOut(reason) {
  sessionStorage.removeItem(KEY);
  me = null;
  runCleanup();
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#whoami").textContent = "";
  view.hidden = true;
  view.replaceChildren();
  $("#signin").hidden = false;
  $("#signin-reason").textContent = reason || "";
  $("#token").focus();
}

async function signIn(token) {
  sessionStorage.setItem(KEY, token);
  try {
    me = await api("/v1/me");
  } catch (err) {
    if (err.status !== 401) signOut(err.message);
    return;
  }
  $("#signin").hidden = true;
  $("#signin-reason").textContent = "";
  $("#token").value = "";
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  $("#whoami").textContent = `signed in as ${me.name}`;
  view.hidden = false;
  route();
}

$("#signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("#token").value.trim();
  if (token) signIn(token);
});
$("#signout").addEventListener("click", () => signOut("signed out"));

// ---- routing -------------------------------------------------------------------------

function runCleanup() {
  for (const stop of cleanup) { try { stop(); } catch { /* already stopped */ } }
  cleanup = [];
}

const routes = { society, rooms, room, agent, market, events, health };
let generation = 0;

class Stale extends Error {}

// A view paints only while it is the current one: a slow view overtaken by a newer
// route stops at its next paint instead of covering the newer view.
function paint(gen, ...nodes) {
  if (gen !== generation) throw new Stale();
  view.replaceChildren(...nodes);
}

async function route() {
  if (!me) return;
  generation += 1;
  runCleanup();
  link.textContent = "";
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "society").split("/");
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#/${name}` || (name === "room" && a.getAttribute("href") === "#/rooms");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  view.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  try {
    await (routes[name] || society)(...rest.map(decodeURIComponent));
  } catch (err) {
    if (err instanceof Stale) return;
    if (err.status !== 401) view.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
  }
}
window.addEventListener("hashchange", route);

// ---- Society -------------------------------------------------------------------------

async function allAgents() {
  const items = [];
  let cursor = null;
  do {
    const page = await api(`/v1/agents?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 2000);
  return items;
}

const focusOf = (m) => (m.current_activities.find((a) => a.startsWith("attending chat ")) || "").replace("attending chat ", "");

async function society() {
  const gen = generation;
  const agents = new Map((await allAgents()).map((a) => [a.agent_id, a]));
  const talk = new Map(); // room -> recent messages seen
  const status = h("select", { id: "f-status" }, h("option", { value: "", text: "any" }),
    ...["active", "idle", "busy", "offline", "retired"].map((s) => h("option", { value: s, text: s })));
  const skill = h("input", { id: "f-skill", type: "search", placeholder: "skill or resource" });
  const body = h("tbody");
  const graph = h("div", { class: "graph card" });
  const count = h("span", { class: "muted" });
  function render() {
    const wanted = status.value;
    const needle = skill.value.trim().toLowerCase();
    const shown = [...agents.values()].filter((a) => (!wanted || a.status === wanted) &&
      (!needle || a.available_resources.some((r) => r.name.toLowerCase().includes(needle))));
    count.textContent = `${shown.length} of ${agents.size} agents`;
    body.replaceChildren(...shown.map((a) => h("tr", {},
      h("td", {}, h("a", { href: `#/agent/${encodeURIComponent(a.agent_id)}`, text: a.public_profile.name })),
      h("td", {}, h("span", { class: `dot${a.online_status ? " on" : ""}`, "aria-hidden": "true" }), a.online_status ? "online" : "offline"),
      h("td", { text: a.status }),
      h("td", {}, a.available_resources.map((r) => h("span", { class: "tag", text: r.name }))),
      h("td", { text: a.reputation === null || a.reputation === undefined ? "—" : a.reputation.toFixed(2) }),
      h("td", {}, focusOf(a) ? h("a", { href: `#/room/${encodeURIComponent(focusOf(a))}`, text: focusOf(a) }) : "—"),
    )));
    drawGraph(graph, shown, talk);
  }
  status.addEventListener("change", render);
  skill.addEventListener("input", render);
  paint(gen, 
    h("h1", { text: "Society" }),
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "f-status", text: "Status" }), status),
      h("div", {}, h("label", { for: "f-skill", text: "Skill" }), skill), count),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("table", { "aria-label": "Agents" },
        h("thead", {}, h("tr", {}, ["Agent", "Presence", "Status", "Skills", "Reputation", "Focus"].map((t) => h("th", { scope: "col", text: t })))), body)),
      h("div", {}, h("h2", { text: "Who talks with whom" }), graph,
        h("p", { class: "muted", text: "Agents as nodes, shared rooms as edges, thicker with recent messages (public rooms only, unless you may see more)." }))));
  render();
  const refresh = throttle(render, 500);
  observe({ types: ["agent.*", "message.sent"] }, async (event) => {
    if (event.type === "message.sent") {
      const room = event.payload.message.chat_id;
      talk.set(room, (talk.get(room) || 0) + 1);
      return refresh();
    }
    const id = event.payload.agent_id;
    if (!id) return;
    try { agents.set(id, await api(`/v1/agents/${encodeURIComponent(id)}`)); } catch { return; }
    refresh();
  });
}

function drawGraph(root, agents, talk) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 400 360");
  svg.setAttribute("role", "img");
  const shown = agents.slice(0, 120);
  const place = new Map();
  shown.forEach((a, i) => {
    const angle = (2 * Math.PI * i) / Math.max(shown.length, 1);
    place.set(a.agent_id, [200 + 150 * Math.cos(angle), 180 + 150 * Math.sin(angle)]);
  });
  const byRoom = new Map();
  for (const a of shown) for (const r of a.room_participation) (byRoom.get(r) || byRoom.set(r, []).get(r)).push(a.agent_id);
  let edges = 0;
  for (const [room, members] of byRoom) {
    const width = 1 + Math.min(6, Math.log1p(talk.get(room) || 0));
    for (let i = 0; i < members.length; i++) for (let j = i + 1; j < members.length; j++) {
      const [x1, y1] = place.get(members[i]); const [x2, y2] = place.get(members[j]);
      const line = document.createElementNS(ns, "line");
      Object.entries({ x1, y1, x2, y2, stroke: "#1f5fa8", "stroke-opacity": 0.35, "stroke-width": width }).forEach(([k, v]) => line.setAttribute(k, v));
      svg.append(line);
      edges += 1;
    }
  }
  for (const a of shown) {
    const [x, y] = place.get(a.agent_id);
    const dot = document.createElementNS(ns, "circle");
    Object.entries({ cx: x, cy: y, r: 6, fill: a.online_status ? "#2e7d32" : "#9e9e9e" }).forEach(([k, v]) => dot.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = a.public_profile.name;
    dot.append(title);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x + 8); label.setAttribute("y", y + 3);
    label.textContent = a.public_profile.name;
    svg.append(dot, label);
  }
  svg.setAttribute("aria-label", `${shown.length} agents, ${edges} shared-room links`);
  root.replaceChildren(svg);
}

// ---- Rooms and a room ----------------------------------------------------------------

async function rooms() {
  const gen = generation;
  const page = await api("/v1/chats?limit=200");
  paint(gen, h("h1", { text: "Rooms" }),
    page.items.length ? h("div", { class: "card" }, h("table", { "aria-label": "Rooms" },
      h("thead", {}, h("tr", {}, ["Room", "Type", "Members", "Messages", "Policy"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, page.items.map((c) => h("tr", {},
        h("td", {}, h("a", { href: `#/room/${encodeURIComponent(c.chat_id)}`, text: c.topic || c.chat_id })),
        h("td", { text: `${c.type}${c.closed ? " (closed)" : ""}` }), h("td", { text: c.members.length }),
        h("td", { text: c.last_seq }), h("td", { text: c.speaker_policy || "—" }))))))
      : h("p", { class: "muted", text: "No rooms you may see." }));
}

function messageRow(m) {
  const ctx = m.langchain_context;
  return h("div", { class: "msg", "data-seq": m.seq },
    h("div", { class: "meta" }, h("span", { class: "seq", text: `#${m.seq}` }), " · ", m.from, m.to ? ` → ${m.to}` : "",
      " · ", time(m.timestamp), m.is_private ? " · private" : "",
      ctx ? h("span", {}, " · ", h("span", { class: "tag", text: ctx.intent }),
        ...ctx.mentions.map((x) => h("span", { class: "tag", text: `@${x}` }))) : null,
      m.receipts ? h("span", { class: "muted" }, " · ", Object.entries(m.receipts).map(([a, s]) => `${a}: ${s}`).join(", ")) : null),
    h("div", { text: m.content }));
}

async function room(chatId) {
  const gen = generation;
  const path = `/v1/chats/${encodeURIComponent(chatId)}`;
  let chat = await api(path);
  const first = await api(`${path}/messages?before_seq=${MAX_SEQ}&limit=50`);
  const bySeq = new Map(first.items.map((m) => [m.seq, m]));
  let back = first.next_before_seq;
  const transcript = h("div", { class: "transcript", role: "log", "aria-live": "polite", "aria-label": "Transcript", tabindex: "0" });
  const earlier = h("button", { type: "button", class: "secondary", onclick: loadEarlier }, "Load earlier messages");
  const members = h("ul", { "aria-label": "Members" });
  const floorBox = h("div", { "aria-live": "polite" });
  const myRole = () => (chat.members.find((m) => m.agent_id === me.agent_id) || {}).role;

  function drawTranscript(stick) {
    const atEnd = stick || transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    const keep = transcript.scrollHeight - transcript.scrollTop;
    transcript.replaceChildren(...[...bySeq.values()].sort((a, b) => a.seq - b.seq).map(messageRow));
    earlier.hidden = !back;
    if (atEnd) transcript.scrollTop = transcript.scrollHeight;
    else transcript.scrollTop = transcript.scrollHeight - keep;
  }
  async function loadEarlier() {
    if (!back) return;
    const page = await api(`${path}/messages?before_seq=${back}&limit=50`);
    page.items.forEach((m) => bySeq.set(m.seq, m));
    back = page.next_before_seq;
    drawTranscript(false);
  }
  async function catchUp() {
    const last = Math.max(0, ...bySeq.keys());
    let after = last;
    for (;;) {
      const page = await api(`${path}/messages?after_seq=${after}&limit=200`);
      page.items.forEach((m) => bySeq.set(m.seq, m));
      if (!page.next_after_seq) break;
      after = page.next_after_seq;
    }
    drawTranscript(false);
  }
  function drawMembers() {
    members.replaceChildren(...chat.members.map((m) => h("li", {},
      h("a", { href: `#/agent/${encodeURIComponent(m.agent_id)}`, text: m.agent_id }), ` · ${m.role}`)));
  }

  let floor = null;
  let tick = null;
  async function loadFloor() {
    if (!chat.speaker_policy) { floorBox.replaceChildren(h("p", { class: "muted", text: "No floor control in this room." })); return; }
    try { floor = await api(`${path}/floor`); } catch (err) { floorBox.replaceChildren(h("p", { class: "error", text: err.message })); return; }
    drawFloor();
  }
  function drawFloor() {
    const f = floor;
    const left = f.turn_ends_at ? Math.max(0, (new Date(f.turn_ends_at) - Date.now()) / 1000) : null;
    const turns = f.recent_turns || [];
    const longest = Math.max(0.001, ...turns.map((t) => t.seconds));
    // a moderator grants by hand, under the moderator policy, while nobody holds the floor
    const moderator = (["owner", "admin", "moderator"].includes(myRole()) || me.role === "admin") &&
      f.speaker_policy === "moderator" && !f.current_speaker;
    floorBox.replaceChildren(
      h("dl", {},
        h("dt", { text: "Holder" }), h("dd", { id: "floor-holder", text: f.current_speaker || "nobody" }),
        h("dt", { text: "Time left" }), h("dd", { id: "floor-countdown", text: left === null ? "—" : `${left.toFixed(0)} s` }),
        h("dt", { text: "Messages left" }), h("dd", { text: f.messages_left ?? "—" }),
        h("dt", { text: "Policy" }), h("dd", { text: `${f.speaker_policy} · round ${f.round}, turn ${f.turns_in_round}` })),
      h("h2", { text: "Queue" }),
      f.queue.length ? h("ol", { id: "floor-queue", "aria-label": "Floor queue" }, f.queue.map((q) => h("li", {},
        `${q.agent_id} (priority ${q.priority})${q.reason ? ` — ${q.reason}` : ""} `,
        moderator ? h("button", { type: "button", class: "secondary", "aria-label": `Grant the floor to ${q.agent_id}`,
          onclick: () => act(() => api(`${path}/floor/grant`, { method: "POST", body: { agent_id: q.agent_id } })) }, "Grant") : null)))
        : h("p", { id: "floor-queue", class: "muted", text: "Nobody is waiting." }),
      h("h2", { text: "Past turns" }),
      h("div", { class: "timeline", role: "img", "aria-label": `${turns.length} recent turns` },
        turns.map((t) => h("span", { title: `${t.agent_id}: ${t.seconds.toFixed(2)} s, ended by ${t.ended_by}`, style: `height:${Math.max(4, 100 * t.seconds / longest)}%` }))),
      h("ul", { class: "muted" }, turns.slice(-5).reverse().map((t) => h("li", { text: `${time(t.started_at)} ${t.agent_id}: ${t.seconds.toFixed(2)} s, ${t.messages} msg, ended by ${t.ended_by}` }))));
  }
  tick = setInterval(() => { if (floor && floor.turn_ends_at) $("#floor-countdown") && ($("#floor-countdown").textContent = `${Math.max(0, (new Date(floor.turn_ends_at) - Date.now()) / 1000).toFixed(0)} s`); }, 1000);
  cleanup.push(() => clearInterval(tick));

  const actionError = h("p", { class: "error", role: "alert", id: "action-error" });
  async function act(call) {
    actionError.textContent = "";
    try { await call(); await loadFloor(); } catch (err) { actionError.textContent = err.message; }
  }
  const text = h("textarea", { id: "compose", name: "content", "aria-describedby": "post-error" });
  const postError = h("p", { class: "error", role: "alert", id: "post-error" });
  const yieldBox = h("input", { type: "checkbox", id: "compose-yield" });
  const composer = me.agent_id && myRole() ? h("form", { class: "composer card", onsubmit: async (e) => {
    e.preventDefault();
    postError.textContent = "";
    try {
      const body = { content: text.value };
      if (yieldBox.checked) body.yield = true;
      await api(`${path}/messages`, { method: "POST", body });
      text.value = "";
    } catch (err) { postError.textContent = err.message; }
  } }, h("label", { for: "compose", text: `Post as ${me.agent_id}` }), text, postError,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Post"),
      chat.speaker_policy ? h("label", {}, yieldBox, " and yield the floor") : null))
    : h("p", { class: "muted", text: "Sign in as a member agent to post." });
  const floorButtons = me.agent_id && myRole() && chat.speaker_policy ? h("div", { class: "row" },
    h("button", { type: "button", onclick: () => act(() => api(`${path}/floor`, { method: "POST", body: {} })) }, "Ask for the floor"),
    h("button", { type: "button", class: "secondary", onclick: () => act(() => api(`${path}/floor`, { method: "DELETE" })) }, "Yield the floor")) : null;

  paint(gen, 
    h("h1", { text: chat.topic || chat.chat_id }),
    h("p", { class: "muted", text: `${chat.type} · ${chat.join_rule} · ${chat.chat_id}${chat.closed ? " · closed" : ""}` }),
    h("div", { class: "grid" },
      h("div", {}, earlier, transcript, composer),
      h("div", {},
        h("div", { class: "card" }, h("h2", { text: "Members" }), members),
        h("div", { class: "card" }, h("h2", { text: "Floor" }), floorButtons, actionError, floorBox))));
  drawMembers();
  drawTranscript(true);
  await loadFloor();

  const reFloor = throttle(loadFloor, 150);
  const refill = new Set();
  const fillContext = throttle(async () => {
    const seqs = [...refill]; refill.clear();
    if (!seqs.length) return;
    const from = Math.min(...seqs) - 1;
    try {
      const page = await api(`${path}/messages?after_seq=${from}&limit=${Math.min(500, Math.max(...seqs) - from)}`);
      page.items.forEach((m) => bySeq.set(m.seq, m));
      drawTranscript(false);
    } catch { /* the reading stays missing */ }
  }, 2000);
  observe({ chat_id: chatId }, async (event) => {
    if (event.type === "message.sent") {
      const m = event.payload.message;
      if (!bySeq.has(m.seq)) { bySeq.set(m.seq, m); drawTranscript(false); }
      if (!m.langchain_context) { refill.add(m.seq); fillContext(); }
    } else if (event.type.startsWith("chat.floor") || event.type.startsWith("chat.round")) {
      reFloor();
    } else if (event.type.startsWith("chat.member") || event.type === "chat.role_changed" || event.type === "chat.closed") {
      chat = await api(path);
      drawMembers();
    }
  }, { onReconnect: () => { catchUp(); loadFloor(); } });
}

// ---- Agent ---------------------------------------------------------------------------

const PARTS = ["importance", "relationship", "mentioned", "floor", "unread", "deadline", "recency"];

async function agent(agentId) {
  const gen = generation;
  agentId = agentId || me.agent_id;
  if (!agentId) {
    const agents = await allAgents();
    paint(gen, h("h1", { text: "Agent" }), h("p", { text: "Choose an agent:" }),
      h("ul", {}, agents.map((a) => h("li", {}, h("a", { href: `#/agent/${encodeURIComponent(a.agent_id)}`, text: `${a.public_profile.name} (${a.agent_id})` })))));
    return;
  }
  const path = `/v1/agents/${encodeURIComponent(agentId)}`;
  const optional = (p) => api(p).catch((err) => { if (err.status === 401) throw err; return { refused: err.message }; });
  const manifest = await api(path);
  const [history, account, reviews] = await Promise.all([
    optional(`${path}/history`), optional(`/v1/accounts/${encodeURIComponent(agentId)}`), optional(`${path}/reviews`)]);
  const attentionBox = h("div", { "aria-live": "polite" });
  async function loadAttention() {
    const a = await optional(`${path}/attention`);
    if (a.refused) { attentionBox.replaceChildren(h("p", { class: "muted", text: `Attention not visible: ${a.refused}` })); return; }
    const top = Math.max(0.001, ...a.dialogues.map((d) => d.score));
    attentionBox.replaceChildren(
      h("p", {}, "Focus: ", h("strong", { id: "current-focus", text: a.current_focus || "none" }), ` · scheduler ${a.scheduler}`,
        a.turns_per_hour ? ` · budget ${a.turns_last_hour} of ${a.turns_per_hour} turns this hour` : ""),
      h("div", { class: "legend", "aria-hidden": "true" }, PARTS.map((p) => h("span", {}, h("i", { class: `p-${p}` }), p))),
      h("table", { "aria-label": "Attention queue" },
        h("thead", {}, h("tr", {}, ["Dialogue", "Score", "Parts", "Unread"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, a.dialogues.map((d) => h("tr", {},
          h("td", {}, h("a", { href: `#/room/${encodeURIComponent(d.entry.chat_id)}`, text: d.entry.chat_id })),
          h("td", { text: d.score.toFixed(2) }),
          h("td", {}, h("div", { class: "bar", style: `width:${Math.max(2, 100 * d.score / top)}%`, role: "img",
            "aria-label": PARTS.map((p) => `${p} ${(d.parts[p] || 0).toFixed(2)}`).join(", ") },
            PARTS.filter((p) => d.parts[p] > 0).map((p) => h("span", { class: `p-${p}`, title: `${p}: ${d.parts[p].toFixed(2)}`, style: `width:${100 * d.parts[p] / d.score}%` })))),
          h("td", { text: d.entry.unread }))))),
      h("h2", { text: "Focus switches" }),
      h("ol", { reversed: true }, [...a.recent_focus].reverse().map((s) => h("li", { text: `${time(s.at)} → ${s.to || "none"}` }))));
  }
  paint(gen, 
    h("h1", { text: `${manifest.public_profile.name} (${manifest.agent_id})` }),
    h("div", { class: "grid" },
      h("div", {},
        h("div", { class: "card" }, h("h2", { text: "Attention" }), attentionBox),
        h("div", { class: "card" }, h("h2", { text: "Manifest changes" }),
          history.refused ? h("p", { class: "muted", text: `Not visible: ${history.refused}` })
            : h("ol", { "aria-label": "Manifest history" }, history.items.map((c) => h("li", { text: `v${c.version} ${time(c.at)}: ${c.changed.join(", ")} (status ${c.page.status})` }))))),
      h("div", {},
        h("div", { class: "card" }, h("h2", { text: "Manifest" }),
          h("dl", {}, h("dt", { text: "Status" }), h("dd", { text: `${manifest.status}, ${manifest.online_status ? "online" : "offline"}` }),
            h("dt", { text: "Activities" }), h("dd", { text: manifest.current_activities.join("; ") || "—" }),
            h("dt", { text: "Rooms" }), h("dd", {}, manifest.room_participation.map((r) => h("a", { class: "tag", href: `#/room/${encodeURIComponent(r)}`, text: r }))),
            h("dt", { text: "Skills and resources" }), h("dd", {}, manifest.available_resources.map((r) => h("span", { class: "tag", text: `${r.kind}:${r.name}` }))),
            h("dt", { text: "Reputation" }), h("dd", { text: manifest.reputation ?? "—" }),
            h("dt", { text: "Bio" }), h("dd", { text: manifest.public_profile.bio || "—" }))),
        h("div", { class: "card" }, h("h2", { text: "Budget" }),
          account.refused ? h("p", { class: "muted", text: `Account not visible: ${account.refused}` })
            : h("p", {}, "Balance: ", h("strong", { id: "balance", text: account.balance }), " tokens")),
        Array.isArray(reviews) && reviews.length ? reputationChart("Reputation over time", reviews)
          : h("div", { class: "card" }, h("h2", { text: "Reputation over time" }), h("p", { class: "muted", text: "No reviews yet." })))));
  await loadAttention();
  const again = throttle(loadAttention, 1000);
  observe({ types: ["agent.*", "message.sent", "chat.*"] }, (event) => {
    if (event.payload.agent_id === agentId || event.recipients.includes(agentId)) again();
  });
}

// The running mean of an agent's ratings, review by review (the manifest's score also
// weighs recency and completed tasks; this is the raw trend).
function reputationChart(title, reviews) {
  let sum = 0;
  const running = reviews.map((r, i) => { sum += r.rating; return sum / (i + 1); });
  return h("div", { class: "card chart" }, h("h2", { text: title }),
    h("div", { class: "figure", text: `${running[running.length - 1].toFixed(2)} / 5` }),
    h("p", { class: "muted", text: `${reviews.length} review${reviews.length === 1 ? "" : "s"}: ${reviews.map((r) => r.rating).join(", ")}` }),
    running.length > 1 ? spark(running, 0, 5) : null);
}

// ---- Market --------------------------------------------------------------------------

async function market() {
  const gen = generation;
  const box = h("div");
  async function load() {
    const tasks = (await api("/v1/tasks?limit=200")).items;
    const byStatus = new Map();
    tasks.forEach((t) => (byStatus.get(t.status) || byStatus.set(t.status, []).get(t.status)).push(t));
    box.replaceChildren(...[...byStatus].map(([status, list]) => h("section", { class: "card" },
      h("h2", { text: `${status} (${list.length})` }),
      list.map((t) => h("details", { ontoggle: async (e) => {
        if (!e.target.open || e.target.dataset.loaded) return;
        e.target.dataset.loaded = "1";
        const ledger = await api(`/v1/tasks/${encodeURIComponent(t.task_id)}/ledger`).catch((err) => ({ refused: err.message }));
        e.target.append(ledger.refused ? h("p", { class: "muted", text: `Ledger not visible: ${ledger.refused}` })
          : h("table", { "aria-label": "Ledger entries" }, h("tbody", {}, ledger.map((l) => h("tr", {},
            h("td", { text: l.kind }), h("td", { text: `${l.debit} → ${l.credit}` }), h("td", { text: l.amount }), h("td", { text: time(l.at) }))))));
      } }, h("summary", { text: `${t.title} · reward ${t.reward} · poster ${t.poster}${t.assignee ? ` · assignee ${t.assignee}` : ""}` }),
        h("p", { class: "muted", text: t.description }),
        h("p", {}, `Bids (${t.bid_count ?? t.bids.length}): `, t.bids.map((b) => h("span", { class: "tag", text: `${b.agent_id} ${b.price ?? ""}` }))))))));
    if (!tasks.length) box.replaceChildren(h("p", { class: "muted", text: "No tasks yet." }));
    const parties = [...new Set(tasks.flatMap((t) => [t.assignee, t.poster]).filter(Boolean))].slice(0, 12);
    const curves = await Promise.all(parties.map(async (id) => [id, await api(`/v1/agents/${encodeURIComponent(id)}/reviews`).catch(() => [])]));
    box.append(h("section", { class: "card" }, h("h2", { text: "Reputation over time" }),
      h("div", { class: "charts" }, curves.filter(([, reviews]) => reviews.length).map(([id, reviews]) => reputationChart(id, reviews)))));
  }
  paint(gen, h("h1", { text: "Market" }), box);
  await load();
  observe({ types: ["task.*"] }, throttle(load, 1000));
}

// ---- Events --------------------------------------------------------------------------

async function events() {
  const gen = generation;
  const types = h("input", { id: "f-types", type: "text", value: "#", "aria-describedby": "types-help" });
  const list = h("ol", { class: "events card", reversed: true, "aria-label": "Live events" });
  const dead = h("div");
  let stop = null;
  function start() {
    if (stop) stop();
    list.replaceChildren();
    const wanted = types.value.split(",").map((t) => t.trim()).filter(Boolean);
    stop = observe({ types: wanted.includes("#") ? [] : wanted }, (event) => {
      list.prepend(h("li", { text: `${time(event.occurred_at)} ${event.type} ${JSON.stringify(event.payload).slice(0, 240)}` }));
      while (list.children.length > 300) list.lastChild.remove();
    });
  }
  async function loadDead() {
    if (me.role !== "admin") return;
    const page = await api("/v1/events/dead-letters");
    dead.replaceChildren(h("h2", { text: `Dead letters (${page.items.length})` }),
      page.items.length ? h("table", { "aria-label": "Dead letters" }, h("tbody", {}, page.items.map((d) => h("tr", {},
        h("td", { text: d.type }), h("td", { text: d.queue }), h("td", { text: d.reason }), h("td", { text: d.event_id }))))) : h("p", { class: "muted", text: "None." }),
      h("button", { type: "button", disabled: !page.items.length, onclick: async () => {
        await api("/v1/events/dead-letters/replay", { method: "POST" }); await loadDead(); } }, "Replay all"));
  }
  paint(gen, h("h1", { text: "Events" }),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); start(); } },
      h("div", {}, h("label", { for: "f-types", text: "Types" }), types,
        h("span", { id: "types-help", class: "muted", text: " comma-separated: message.sent, chat.*, # for all" })),
      h("button", { type: "submit" }, "Watch")), list, dead);
  start();
  await loadDead();
}

// ---- Health --------------------------------------------------------------------------

function spark(values, min, max) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const top = max ?? Math.max(1e-9, ...values);
  const low = min ?? 0;
  const points = values.map((v, i) => `${(100 * i) / Math.max(values.length - 1, 1)},${30 - (28 * (v - low)) / Math.max(top - low, 1e-9)}`).join(" ");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f5fa8");
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.setAttribute("aria-label", values.length ? `last ${values[values.length - 1].toFixed(2)}` : "no data");
  svg.append(line);
  return svg;
}

const quantile = (xs, q) => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function health() {
  const gen = generation;
  const parts = h("ul", { "aria-label": "Readiness" });
  const charts = h("div", { class: "charts" });
  const series = { rate: [], p50: [], handover: [], dead: [], backlog: [] };
  const window = [];
  const handovers = [];
  const released = new Map();
  async function ready() {
    const r = await fetch("/readyz").then((x) => x.json()).catch(() => ({ checks: {} }));
    parts.replaceChildren(...Object.entries(r.checks || {}).map(([k, v]) => h("li", {}, h("span", { class: v === "ok" ? "ok" : "bad", text: v === "ok" ? "●" : "✕", "aria-hidden": "true" }), ` ${k}: ${v}`)));
    const text = await fetch("/metrics").then((x) => x.text()).catch(() => "");
    const depth = (pattern) => [...text.matchAll(new RegExp(`^agora_queue_messages\\{queue="${pattern}"\\} ([0-9.e+]+)`, "gm"))]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    series.dead.push(depth("dead_letters"));
    series.backlog.push(depth(`temporal:[^"]+`));
  }
  function chart(title, values, unit) {
    const last = values.length ? values[values.length - 1] : null;
    return h("div", { class: "card chart" }, h("h2", { text: title }),
      h("div", { class: "figure", text: last === null ? "—" : `${last.toFixed(unit === "/s" ? 1 : 0)} ${unit}` }), spark(values.slice(-60)));
  }
  function draw() {
    const now = Date.now();
    while (window.length && now - window[0].at > 10000) window.shift();
    series.rate.push(window.length / 10);
    const p50 = quantile(window.map((w) => w.latency), 0.5);
    if (p50 !== null) series.p50.push(p50);
    const h50 = quantile(handovers.slice(-50), 0.5);
    if (h50 !== null) series.handover.push(h50);
    for (const s of Object.values(series)) if (s.length > 120) s.shift();
    charts.replaceChildren(chart("Messages per second (10 s)", series.rate, "/s"),
      chart("Delivery latency p50 (event to this page)", series.p50, "ms"),
      chart("Floor hand-over p50 (yield to the grant on this page)", series.handover, "ms"),
      chart("Dead letters waiting", series.dead, ""),
      chart("Temporal tasks waiting for a worker", series.backlog, ""));
  }
  paint(gen, h("h1", { text: "Health" }), h("div", { class: "card" }, h("h2", { text: "Readiness" }), parts),
    charts, h("p", { class: "muted", text: "Figures from the events this page observes (what you may see), and the API's /readyz and /metrics." }));
  await ready();
  draw();
  const timers = [setInterval(ready, 5000), setInterval(draw, 1000)];
  cleanup.push(() => timers.forEach(clearInterval));
  observe({ types: ["message.sent", "chat.floor_released", "chat.floor_granted"] }, (event) => {
    const at = Date.now();
    if (event.type === "message.sent") window.push({ at, latency: at - new Date(event.occurred_at).getTime() });
    else if (event.type === "chat.floor_released") released.set(event.payload.chat_id, new Date(event.occurred_at).getTime());
    else if (released.has(event.payload.chat_id)) {
      // from the yield (its workflow time) to the grant reaching this page: the release
      // and the grant share one workflow task, so their own times are the same instant
      handovers.push(at - released.get(event.payload.chat_id));
      released.delete(event.payload.chat_id);
      if (handovers.length > 500) handovers.shift();
    }
  });
}

// ---- start ---------------------------------------------------------------------------

const saved = sessionStorage.getItem(KEY);
if (saved) signIn(saved); else signOut("");
