// DOM building and in-place updates: elements are keyed by daemon, frontend, pool and
// backend name, and a cell whose value changes flashes.
import { since, vip, protoPort, HEALTH_TEXT } from './format.js';

const FOLD_KEY = 'maglev.folded';

function loadFolded() {
  try {
    return new Set(JSON.parse(localStorage.getItem(FOLD_KEY) || '[]'));
  } catch {
    return new Set();
  }
}

const folded = loadFolded();

function saveFolded() {
  try {
    localStorage.setItem(FOLD_KEY, JSON.stringify([...folded]));
  } catch {
    // Private mode or full storage: folding still works, it is just not remembered.
  }
}

/** createElement with attributes (`class`, `data-*`, anything) and children. */
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else n.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) n.append(c);
  return n;
}

/** Sets a node's text; flashes it when it had a value before and the value changed. */
export function setText(node, value, flash = true) {
  const v = String(value ?? '');
  if (node.textContent === v && node.dataset.set === '1') return;
  const had = node.dataset.set === '1';
  node.textContent = v;
  node.dataset.set = '1';
  if (had && flash) flashNode(node);
}

/** Highlights a node briefly (restarting the animation if it is running). */
export function flashNode(node) {
  node.classList.remove('flash');
  void node.offsetWidth; // restart the animation
  node.classList.add('flash');
}

function setClass(node, prefix, value) {
  for (const c of [...node.classList]) if (c.startsWith(prefix)) node.classList.remove(c);
  node.classList.add(prefix + value);
}

function find(parent, selector) {
  return parent.querySelector(selector);
}

function sel(attr, value) {
  return `[${attr}="${CSS.escape(value)}"]`;
}

/** The tab of one daemon: reachable mark, name, version. */
export function renderTab(nav, d, active) {
  let tab = find(nav, sel('data-tab', d.name));
  if (!tab) {
    tab = el('button', { type: 'button', role: 'tab', class: 'tab', 'data-tab': d.name },
      el('span', { class: 'mark', 'aria-hidden': 'true' }),
      el('span', { class: 'tname', text: d.name }),
      el('span', { class: 'tver' }),
      el('span', { class: 'tvpp badge' }));
    nav.append(tab);
  }
  tab.classList.toggle('reachable', d.reachable);
  tab.classList.toggle('unreachable', !d.reachable);
  tab.classList.toggle('active', active);
  tab.setAttribute('aria-selected', String(active));
  setText(find(tab, '.mark'), d.reachable ? '●' : '✕', false);
  setText(find(tab, '.tver'), d.version ? `v${d.version}` : '', false);
  const b = vppBadge(d.vpp);
  const tvpp = find(tab, '.tvpp');
  setText(tvpp, 'VPP', false);
  setClass(tvpp, 'v-', b.cls);
  tvpp.title = b.text;
  tab.title = d.reachable ? `${d.addr}: reachable · ${b.text}` : `${d.addr}: unreachable: ${d.error}`;
  return tab;
}

function vppBadge(v) {
  if (!v || !v.enabled) return { cls: 'off', text: 'VPP off' };
  if (!v.connected) return { cls: 'down', text: 'VPP disconnected' };
  const mode = v.legacy ? 'legacy lb API' : `lb API ${v.api_generation}`;
  return { cls: 'up', text: `VPP ${v.version} · ${mode}${v.dry_run ? ' · dry run' : ''}` };
}

/** One daemon's section (head, then one foldable card per frontend). */
export function renderDaemon(root, d, ctx) {
  let sec = find(root, `section${sel('data-daemon', d.name)}`);
  if (!sec) {
    sec = el('section', { class: 'daemon', 'data-daemon': d.name, role: 'tabpanel' },
      el('div', { class: 'dhead' },
        el('span', { class: 'reach' }),
        el('span', { class: 'addr', text: d.addr }),
        el('span', { class: 'dver' }),
        el('span', { class: 'vpp badge' }),
        ctx.admin ? el('button', { type: 'button', class: 'act', 'data-act': 'sync', 'data-daemon': d.name, text: 'sync VPP (all)' }) : '',
        el('span', { class: 'derror' })),
      el('div', { class: 'fronts' }));
    root.append(sec);
  }
  sec.classList.toggle('unreachable', !d.reachable);
  const reach = find(sec, '.reach');
  setText(reach, d.reachable ? 'reachable' : 'unreachable', true);
  setClass(reach, 'r-', d.reachable ? 'up' : 'down');
  setText(find(sec, '.dver'), d.version ? `maglev ${d.version}` : '', false);
  const b = vppBadge(d.vpp);
  const badge = find(sec, '.vpp');
  setText(badge, b.text);
  setClass(badge, 'v-', b.cls);
  setText(find(sec, '.derror'), d.reachable ? '' : d.error, false);

  const fronts = find(sec, '.fronts');
  const names = new Set(d.frontends.map((f) => f.name));
  for (const card of [...fronts.children]) if (!names.has(card.dataset.frontend)) card.remove();
  let prev = null;
  for (const f of d.frontends) {
    let card = find(fronts, `details${sel('data-frontend', f.name)}`);
    if (!card) card = frontCard(d.name, f, ctx);
    if (prev ? prev.nextSibling !== card : fronts.firstChild !== card) {
      if (prev) prev.after(card); else fronts.prepend(card);
    }
    updateFront(card, d.name, f, ctx);
    prev = card;
  }
}

function frontCard(daemon, f, ctx) {
  const key = `${daemon}/${f.name}`;
  const card = el('details', { class: 'front', 'data-frontend': f.name, open: !folded.has(key) },
    el('summary', {},
      el('span', { class: 'icon', role: 'img' }),
      el('span', { class: 'fname', text: f.name }),
      el('span', { class: 'vip' }),
      el('span', { class: 'pp' }),
      el('span', { class: 'fstate' }),
      el('span', { class: 'apool' }),
      el('span', { class: 'desc' }),
      ctx.admin ? el('button', { type: 'button', class: 'act', 'data-act': 'sync', 'data-daemon': daemon, 'data-frontend': f.name, text: 'sync VPP' }) : ''),
    el('div', { class: 'pools' }));
  card.addEventListener('toggle', () => {
    if (card.open) folded.delete(key); else folded.add(key);
    saveFolded();
  });
  return card;
}

function updateFront(card, daemon, f, ctx) {
  const icon = find(card, '.icon');
  setClass(icon, 'h-', f.health);
  icon.title = HEALTH_TEXT[f.health] || f.health;
  icon.setAttribute('aria-label', icon.title);
  setText(find(card, '.vip'), vip(f.address));
  setText(find(card, '.pp'), protoPort(f));
  const st = find(card, '.fstate');
  setText(st, f.state);
  setClass(st, 's-', f.state);
  setText(find(card, '.apool'), f.active_pool ? `pool ${f.active_pool}` : 'no active pool');
  setText(find(card, '.desc'), f.description, false);

  const pools = find(card, '.pools');
  const sig = f.pools.map((p) => `${p.name}:${p.backends.map((b) => b.name).join(',')}`).join('|');
  if (pools.dataset.sig !== sig) {
    pools.replaceChildren(...f.pools.map((p) => poolTable(daemon, f.name, p, ctx)));
    pools.dataset.sig = sig;
  }
  for (const p of f.pools) {
    const box = find(pools, `div${sel('data-pool', p.name)}`);
    if (!box) continue;
    box.classList.toggle('active', p.active);
    setText(find(box, '.pactive'), p.active ? 'active' : '', false);
    for (const b of p.backends) {
      const row = find(box, `tr${sel('data-backend', b.name)}`);
      if (row) updateRow(row, b, ctx);
    }
  }
}

const COLUMNS = [
  ['backend', 'c-name'], ['address', 'c-addr'], ['state', 'c-state'], ['health', 'c-health'],
  ['weight', 'c-cw'], ['effective', 'c-ew'], ['buckets', 'c-buckets'], ['last result', 'c-last'],
  ['since', 'c-since'],
];

function poolTable(daemon, frontend, p, ctx) {
  const head = COLUMNS.map(([t]) => el('th', { scope: 'col', text: t }));
  if (ctx.admin) head.push(el('th', { scope: 'col', text: 'actions' }));
  const rows = p.backends.map((b) => {
    const cells = COLUMNS.map(([, c]) => el('td', { class: c }));
    if (ctx.admin) {
      const data = { 'data-daemon': daemon, 'data-backend': b.name };
      cells.push(el('td', { class: 'c-act' },
        el('button', { type: 'button', class: 'act pr', ...data }),
        el('button', { type: 'button', class: 'act ed', ...data }),
        el('span', { class: 'weight' },
          el('input', { type: 'number', min: '0', max: '100', class: 'w-input', 'aria-label': `weight of ${b.name}`, ...data, 'data-frontend': frontend, 'data-pool': p.name }),
          el('button', { type: 'button', class: 'act', 'data-act': 'set-weight', ...data, 'data-frontend': frontend, 'data-pool': p.name, text: 'set' }))));
    }
    return el('tr', { 'data-backend': b.name }, ...cells);
  });
  return el('div', { class: 'pool', 'data-pool': p.name },
    el('h3', {}, el('span', { text: `pool ${p.name}` }), ' ', el('span', { class: 'pactive' })),
    el('div', { class: 'scroll' },
      el('table', {}, el('thead', {}, el('tr', {}, ...head)), el('tbody', {}, ...rows))));
}

function updateRow(row, b, ctx) {
  setText(find(row, '.c-name'), b.name, false);
  setText(find(row, '.c-addr'), b.address);
  const st = find(row, '.c-state');
  setText(st, b.state);
  setClass(st, 's-', b.state);
  setText(find(row, '.c-health'), b.health_top ? `${b.health}/${b.health_top}` : '');
  setText(find(row, '.c-cw'), b.configured_weight);
  setText(find(row, '.c-ew'), `${b.effective_weight}${b.weight_overridden ? '*' : ''}`);
  find(row, '.c-ew').title = b.weight_overridden ? 'runtime override' : '';
  setText(find(row, '.c-buckets'), b.buckets === null || b.buckets === undefined ? '–' : b.buckets);
  const last = find(row, '.c-last');
  setText(last, [b.last_code, b.last_detail].filter(Boolean).join(' '));
  const sinceCell = find(row, '.c-since');
  const s = b.since_ms === null || b.since_ms === undefined ? '' : String(b.since_ms);
  if (sinceCell.dataset.since !== s) {
    const had = sinceCell.dataset.since !== undefined;
    sinceCell.dataset.since = s;
    tickCell(sinceCell, ctx.skew());
    if (had) flashNode(sinceCell);
  }
  if (ctx.admin) {
    const pr = find(row, '.pr');
    const paused = b.state === 'paused';
    pr.dataset.act = paused ? 'resume' : 'pause';
    pr.textContent = paused ? 'resume' : 'pause';
    const ed = find(row, '.ed');
    ed.dataset.act = b.enabled ? 'disable' : 'enable';
    ed.textContent = b.enabled ? 'disable' : 'enable';
    const input = find(row, '.w-input');
    if (document.activeElement !== input) input.value = String(b.configured_weight);
  }
}

function tickCell(cell, skew) {
  const s = cell.dataset.since;
  cell.textContent = s ? since(Date.now() + skew - Number(s)) : '';
}

/** Refreshes every "since" cell (called once a second). */
export function tick(root, skew) {
  for (const cell of root.querySelectorAll('.c-since')) tickCell(cell, skew);
}
