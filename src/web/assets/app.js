// The dashboard: initial state by fetch, then live by server-sent events. On /admin/ it
// adds the action buttons, the weight editor and the event panel.
import { renderDaemon, renderTab, tick, el } from './render.js';
import { levelRank, clock } from './format.js';

const admin = location.pathname.startsWith('/admin/');
const root = document.getElementById('daemons');
const tabs = document.getElementById('tabs');
const streamMark = document.getElementById('stream');
const statusLine = document.getElementById('status');
const TAB_KEY = 'maglev.tab';

const views = new Map(); // daemon name -> latest view
let order = []; // daemon names in --server order
let epoch = null;
let skew = 0; // server clock - browser clock (ms)
let csrf = '';
let source = null;
let lastId = '';
let active = localStorage.getItem(TAB_KEY) || '';
let opens = 0; // event streams opened (shown as data-streams on <body>, for the curious)

const ctx = { admin, skew: () => skew };

function apply(view, force = false) {
  const old = views.get(view.name);
  if (!force && old && old.rev > view.rev) return; // an older copy (fetch raced an event)
  views.set(view.name, view);
  if (!order.includes(view.name)) order.push(view.name);
  draw(view.name);
}

function draw(name) {
  if (!order.includes(active)) active = order[0] || '';
  for (const n of order) {
    const v = views.get(n);
    if (v) renderTab(tabs, v, n === active);
  }
  const v = views.get(name);
  if (v) renderDaemon(root, v, ctx);
  for (const sec of root.children) sec.hidden = sec.dataset.daemon !== active;
}

tabs.addEventListener('click', (ev) => {
  const tab = ev.target.closest('[data-tab]');
  if (!tab) return;
  active = tab.dataset.tab;
  try { localStorage.setItem(TAB_KEY, active); } catch { /* not remembered */ }
  for (const n of order) draw(n);
});

async function fetchState() {
  const r = await fetch('/view/api/state', { cache: 'no-store' });
  if (!r.ok) throw new Error(`state: HTTP ${r.status}`);
  const s = await r.json();
  skew = s.now_ms - Date.now();
  const fresh = epoch !== s.epoch;
  epoch = s.epoch;
  order = s.daemons.map((d) => d.name);
  for (const d of s.daemons) apply(d, fresh);
  document.getElementById('footer').textContent = '';
}

function showStatus(text, bad) {
  statusLine.textContent = text;
  statusLine.classList.toggle('bad', !!bad);
  statusLine.hidden = !text;
}

// ---------------------------------------------------------------- event stream

function openStream() {
  if (source) source.close();
  const url = '/view/api/events' + (lastId ? `?last=${encodeURIComponent(lastId)}` : '');
  source = new EventSource(url);
  document.body.dataset.streams = String(++opens);
  const remember = (ev) => { if (ev.lastEventId) lastId = ev.lastEventId; };
  source.addEventListener('open', () => setStream(true));
  source.addEventListener('error', () => {
    setStream(false);
    // The browser retries a dropped stream itself, but gives up on an HTTP error (a 503 when
    // the server is full, a proxy's 502): then the page retries.
    if (source.readyState === EventSource.CLOSED) setTimeout(openStream, 5000);
  });
  for (const kind of ['hello', 'resync']) {
    source.addEventListener(kind, (ev) => {
      remember(ev);
      fetchState().catch((e) => showStatus(String(e), true));
    });
  }
  source.addEventListener('daemon', (ev) => {
    remember(ev);
    try { apply(JSON.parse(ev.data)); } catch (e) { console.warn('bad daemon event', e); }
  });
  source.addEventListener('log', (ev) => {
    remember(ev);
    try { addLine(JSON.parse(ev.data)); } catch (e) { console.warn('bad log event', e); }
  });
}

function setStream(up) {
  streamMark.textContent = up ? 'live' : 'reconnecting';
  streamMark.classList.toggle('live', up);
}

// A laptop that slept: timers stop, the clock jumps. Reopen the stream (it resumes from
// lastId, or the server says resync) instead of trusting a connection that may be dead.
let lastTick = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - lastTick > 5000) {
    console.info(`clock jumped ${now - lastTick} ms: reconnecting the event stream`);
    openStream();
  }
  lastTick = now;
  tick(root, skew);
}, 1000);

// ---------------------------------------------------------------- admin

const panel = document.getElementById('panel');
const events = document.getElementById('events');
const level = document.getElementById('level');
const LEVEL_KEY = 'maglev.level';

function addLine(line) {
  if (!admin) return;
  const li = el('li', { class: `l-${line.level} k-${line.kind}`, 'data-rank': String(levelRank(line.level)) },
    el('time', { text: clock(line.at_ms) }),
    el('span', { class: 'ldaemon', text: line.daemon }),
    el('span', { class: 'lkind', text: line.kind }),
    el('span', { class: 'ltext', text: line.text }));
  li.hidden = levelRank(line.level) < levelRank(level.value);
  events.prepend(li);
  while (events.children.length > 500) events.lastChild.remove();
}

function applyLevel() {
  const min = levelRank(level.value);
  for (const li of events.children) li.hidden = Number(li.dataset.rank) < min;
}

async function post(url, body) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (r.status === 401) {
    location.assign('/admin/login');
    return null;
  }
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

async function act(button) {
  const d = button.dataset;
  const body = { action: d.act, daemon: d.daemon };
  if (d.backend) body.backend = d.backend;
  if (d.act === 'set-weight') {
    const input = button.parentElement.querySelector('.w-input');
    body.frontend = d.frontend;
    body.pool = d.pool;
    body.weight = Number(input.value);
  } else if (d.act === 'sync') {
    body.frontend = d.frontend || '';
  }
  button.disabled = true;
  try {
    const r = await post('/admin/api/action', body);
    if (r) showStatus(r.body.message || r.body.error || `HTTP ${r.status}`, !r.body.ok);
  } catch (e) {
    showStatus(`action failed: ${e}`, true);
  } finally {
    button.disabled = false;
  }
}

async function startAdmin() {
  const r = await fetch('/admin/api/session', { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) {
    location.assign('/admin/login');
    return;
  }
  const s = await r.json();
  csrf = s.csrf;
  const user = document.getElementById('user');
  user.textContent = s.user;
  user.hidden = false;
  const logout = document.getElementById('logout');
  logout.hidden = false;
  logout.addEventListener('click', async () => {
    await post('/admin/api/logout', {});
    location.assign('/view/');
  });
  panel.hidden = false;
  level.value = localStorage.getItem(LEVEL_KEY) || 'info';
  level.addEventListener('change', () => {
    try { localStorage.setItem(LEVEL_KEY, level.value); } catch { /* not remembered */ }
    applyLevel();
  });
  document.getElementById('clear').addEventListener('click', () => events.replaceChildren());
  root.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    ev.preventDefault(); // a button in a card's title line must not fold the card
    act(b);
  });
  document.body.classList.add('admin');
}

async function start() {
  if (admin) await startAdmin();
  openStream();
  fetchState().catch((e) => showStatus(String(e), true));
}

start().catch((e) => showStatus(String(e), true));
