// weft ui: draws the view the server pushes over Server-Sent Events
// (/events), and sends actions (restart, logs) with the X-Weft-UI header
// the server requires of them.
'use strict';

const ACTION = { 'X-Weft-UI': '1' };
const pending = new Set(); // containers whose restart is in flight

// el builds an element: attributes (data-*, class, …) and children (nodes
// or text). Text is never parsed as HTML.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

const pill = (cls, text) => el('span', { class: 'pill ' + cls }, text);
const $ = (id) => document.getElementById(id);
const ready = (c) => c.state === 'running' && (c.health === 'healthy' || c.health === 'none');
const fmtTime = (t) => new Date(t).toLocaleTimeString();

function render(v) {
  $('cluster').textContent = v.cluster;
  document.title = 'weft · ' + v.cluster;
  const hosts = v.hosts || [];
  const all = hosts.flatMap((h) => h.containers || []);
  const down = hosts.filter((h) => h.down).map((h) => h.name);
  $('summary').textContent =
    `${hosts.length - down.length}/${hosts.length} hosts up · ${all.filter(ready).length}/${all.length} containers ready` +
    (down.length ? ` · DOWN: ${down.join(', ')}` : '');

  const notes = [];
  if (v.error) notes.push(v.error);
  if (v.stale) notes.push('STALE: the store has no quorum; this is the agents\' last copy.');
  for (const u of v.unreachable || []) notes.push('not reached: ' + u);
  const banner = $('banner');
  banner.hidden = notes.length === 0;
  banner.className = v.error || v.stale ? 'bad' : '';
  banner.replaceChildren(...notes.map((n) => el('div', {}, n)));

  $('hosts').replaceChildren(...hosts.map(hostCard));
  $('services').replaceChildren(
    el('tr', {}, el('th', {}, 'service'), el('th', {}, 'runs on'), el('th', {}, 'ready')),
    ...(v.services || []).map((s) => el('tr', { 'data-service': s.name, class: s.ready < s.instances ? 'bad' : '' },
      el('td', {}, el('b', {}, s.name)), el('td', {}, s.hosts.join(', ')),
      el('td', { class: 'num' }, `${s.ready}/${s.instances}`))));
  $('vips').replaceChildren(...vipRows(v.vips || []));
  $('routes').replaceChildren(...routeRows(v.routes || []));
  const shifts = v.shifts || [];
  $('shifts').hidden = shifts.length === 0;
  $('shifts-table').replaceChildren(
    el('tr', {}, ...['route', 'to', 'state', 'at', 'failed intervals'].map((t) => el('th', {}, t))),
    ...shifts.map((s) => el('tr', { 'data-shift': s.route, title: s.message || '' },
      el('td', {}, el('code', {}, s.route)), el('td', {}, s.to), el('td', {}, pill(s.state === 'rolled-back' ? 'down' : s.state === 'promoted' ? 'up' : 'wait', s.state)),
      el('td', { class: 'num' }, `${s.percent}%`), el('td', { class: 'num' }, `${s.failed}/${s.threshold}`))));
  const faults = v.faults || [];
  $('faults').hidden = faults.length === 0;
  $('faults-table').replaceChildren(
    el('tr', {}, ...['fault', 'target', 'how', 'until'].map((t) => el('th', {}, t))),
    ...faults.map((f) => el('tr', { 'data-fault': f.id, class: 'bad' },
      el('td', {}, el('b', {}, f.kind)), el('td', {}, f.target || '—'), el('td', {}, f.mechanism || '—'),
      el('td', {}, fmtTime(f.expires)))));
  const events = v.events || [];
  $('events').replaceChildren(...(events.length ? events.map((e) =>
    el('li', { 'data-kind': e.kind }, el('time', {}, fmtTime(e.at)), el('span', { class: 'kind kind-' + e.kind }, e.kind), e.text))
    : [el('li', { class: 'empty' }, 'nothing has happened since the page opened')]));
}

function hostCard(h) {
  const cs = h.containers || [];
  const etcd = h.manager ? `etcd ${h.etcd_member}` : 'worker';
  return el('div', { class: 'host' + (h.down ? ' down' : ''), 'data-host': h.name, 'data-down': String(h.down) },
    el('h3', {}, h.name, pill(h.down ? 'down' : 'up', h.down ? 'DOWN' : 'UP'), el('small', {}, etcd)),
    el('div', { class: 'meta' },
      'subnet ', el('b', {}, h.subnet), ' · underlay ', el('code', {}, h.address),
      ' · bridge ', el('code', {}, h.overlay_addr), el('br'),
      'VXLAN: VTEP ', el('code', { 'data-vtep': h.vtep }, h.vtep), ' · ',
      el('b', { 'data-peers': h.peers }, h.peers), ` remote container${h.peers === 1 ? '' : 's'} over `,
      el('b', {}, h.remote_vteps), ` other VTEP${h.remote_vteps === 1 ? '' : 's'}`,
      h.firewall ? ` · firewall ${h.firewall.on ? 'on' : 'off'}` : ''),
    h.down ? el('div', { class: 'lastseen' }, 'not answering: its containers as last reported') : null,
    cs.length === 0 ? el('div', { class: 'empty' }, 'no containers') :
      el('table', {},
        el('tr', {}, ...['container', 'address', 'state', 'health', 'restarts', ''].map((t) => el('th', {}, t))),
        ...cs.map(containerRow)));
}

function containerRow(c) {
  const busy = pending.has(c.container);
  return el('tr', {
    'data-container': c.container, 'data-service': c.service, 'data-state': c.state,
    'data-health': c.health, 'data-pid': c.pid, 'data-restarts': c.restarts,
    class: ready(c) ? '' : 'bad', title: c.message || '',
  },
    el('td', {}, el('b', {}, c.container)),
    el('td', {}, el('code', {}, c.ip)),
    el('td', {}, pill(c.state, c.state)),
    el('td', {}, pill(c.health, c.health)),
    el('td', { class: 'num' }, c.restarts),
    el('td', {},
      el('button', { type: 'button', 'data-action': 'restart', disabled: busy, onclick: (e) => restart(c.container, e.target) }, busy ? 'restarting…' : 'restart'),
      ' ',
      el('button', { type: 'button', 'data-action': 'logs', onclick: () => openLogs(c.container) }, 'logs')));
}

function vipRows(vips) {
  if (!vips.length) return [el('tr', {}, el('td', { class: 'empty' }, 'no VIPs in the cluster file'))];
  return [el('tr', {}, ...['vip', 'address', 'mode', 'held by', 'last failover'].map((t) => el('th', {}, t))),
    ...vips.map((v) => {
      const holders = v.mode === 'active-active' ? (v.holders || []).join(', ') : v.holder;
      const f = v.last_failover;
      return el('tr', { 'data-vip': v.name, class: holders ? '' : 'bad' },
        el('td', {}, el('b', {}, v.name)), el('td', {}, el('code', {}, `${v.address}:${v.port}`)), el('td', {}, v.mode),
        el('td', {}, holders || pill('down', 'nobody')),
        el('td', {}, f ? `${fmtTime(f.at)} ${f.from || 'nobody'} → ${f.to} (${f.cause}, ${Math.round(f.duration_ms)} ms)` : '—'));
    })];
}

function routeRows(routes) {
  if (!routes.length) return [el('tr', {}, el('td', { class: 'empty' }, 'no gateway routes in the cluster file'))];
  const rows = [el('tr', {}, ...['prefix', 'to', 'share'].map((t) => el('th', {}, t)))];
  for (const r of routes) {
    const backends = r.backends && r.backends.length ? r.backends : [{ service: r.service, weight: 1 }];
    const sum = backends.reduce((s, b) => s + b.weight, 0);
    backends.forEach((b, i) => {
      const share = sum > 0 ? Math.round((100 * b.weight) / sum) : 0;
      const bar = el('span', { class: 'bar' });
      bar.style.width = `${share * 1.2}px`;
      rows.push(el('tr', { 'data-route': r.prefix, 'data-backend': b.service, 'data-weight': b.weight },
        el('td', {}, i === 0 ? el('code', {}, r.prefix) : ''), el('td', {}, b.service),
        el('td', {}, bar, `${share}%`, r.backends && r.backends.length ? ` (weight ${b.weight})` : '',
          i === 0 && r.live_by ? [' ', el('span', { class: 'pill wait', title: 'live weights, not the file\'s' }, `live: ${r.live_by}`)] : '')));
    });
    if (r.match) {
      rows.push(el('tr', { 'data-route': r.prefix }, el('td', {}), el('td', {}, r.match.service),
        el('td', {}, `when ${r.match.header}: ${r.match.value}`)));
    }
  }
  return rows;
}

function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

async function restart(name, button) {
  pending.add(name);
  button.disabled = true;
  button.textContent = 'restarting…';
  try {
    const r = await fetch('/api/restart', {
      method: 'POST', headers: { ...ACTION, 'Content-Type': 'application/json' }, body: JSON.stringify({ container: name }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    toast(`restarted ${body.container} on ${body.host}`);
  } catch (e) {
    toast(`restart ${name}: ${e.message}`, true);
  } finally {
    pending.delete(name);
    if (lastView) render(lastView);
  }
}

let logAbort = null;
const LOG_KEEP = 256 * 1024; // characters kept in the panel

async function openLogs(name) {
  if (logAbort) logAbort.abort();
  const ctl = new AbortController();
  logAbort = ctl;
  const follow = $('logs-follow').checked;
  $('logs-title').textContent = `logs of ${name}`;
  const body = $('logs-body');
  body.textContent = '';
  $('logs').hidden = false;
  try {
    const r = await fetch(`/api/logs?container=${encodeURIComponent(name)}${follow ? '&follow=1' : ''}`, { headers: ACTION, signal: ctl.signal });
    if (!r.ok) {
      const b = await r.json().catch(() => ({}));
      throw new Error(b.error || r.statusText);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const atEnd = body.scrollTop + body.clientHeight >= body.scrollHeight - 4;
      let text = body.textContent + dec.decode(value, { stream: true });
      if (text.length > LOG_KEEP) text = text.slice(text.length - LOG_KEEP);
      body.textContent = text;
      if (atEnd) body.scrollTop = body.scrollHeight;
    }
  } catch (e) {
    if (e.name !== 'AbortError') body.textContent += `\n[${e.message}]`;
  }
}

function closeLogs() {
  if (logAbort) logAbort.abort();
  logAbort = null;
  $('logs').hidden = true;
}

function setConn(live) {
  const c = $('conn');
  c.dataset.live = String(live);
  c.className = 'pill ' + (live ? 'live' : 'wait');
  c.textContent = live ? 'live' : 'reconnecting…';
}

let lastView = null;

function start() {
  $('logs-close').addEventListener('click', closeLogs);
  const es = new EventSource('/events');
  es.addEventListener('view', (e) => {
    lastView = JSON.parse(e.data);
    render(lastView);
    setConn(true);
    document.body.dataset.views = String(Number(document.body.dataset.views || 0) + 1);
  });
  es.addEventListener('error', () => setConn(false));
}

start();
