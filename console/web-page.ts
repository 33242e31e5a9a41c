// The console's one page: devices with their state and actions, holdout accuracy over time (inline
// SVG), fleet heads and problems, kept live by Server-Sent Events. No build step, no framework, no
// external assets; the inline script and style are allowed by hash in the page's CSP.

import { createHash } from 'node:crypto';

const STYLE = `
  * { box-sizing: border-box; }
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 16px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header span { opacity: .9; }
  main { padding: 16px; max-width: 1400px; }
  h2 { font-size: 16px; margin: 0; }
  section { background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 2px rgba(0,0,0,.1); margin-bottom: 16px; overflow-x: auto; }
  .bar { display: flex; gap: 8px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
  .bar h2 { margin-right: auto; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  #devices { table-layout: fixed; min-width: 1100px; }
  #devices th:nth-child(1) { width: 13%; } #devices th:nth-child(2) { width: 8%; } #devices th:nth-child(3) { width: 9%; }
  #devices th:nth-child(4) { width: 12%; } #devices th:nth-child(5) { width: 10%; } #devices th:nth-child(6) { width: 5%; }
  #devices th:nth-child(8) { width: 7%; } #devices th:nth-child(9) { width: 250px; }
  #fleet-heads td:nth-child(3), #fleet-heads td:nth-child(5) { white-space: normal; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e6ec; vertical-align: middle; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  th { font-size: 13px; color: #5a6374; font-weight: 600; }
  td.classes { font-size: 13px; }
  #devices td { height: 46px; }
  td.actions { white-space: nowrap; overflow: visible; }
  button { font: inherit; font-size: 13px; border: 1px solid #b8bfcc; background: #fff; border-radius: 4px; padding: 2px 8px; cursor: pointer; }
  button:hover:not(:disabled) { border-color: #2f6fed; }
  button:disabled { opacity: .45; cursor: default; }
  button.primary { background: #2f6fed; color: #fff; border-color: #2f6fed; }
  .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; background: #b8bfcc; margin-right: 6px; }
  tr[data-online="true"] .dot { background: #1aa260; }
  .badge { font-size: 12px; border-radius: 10px; padding: 1px 8px; background: #e3e6ec; }
  .badge.released { background: #d7f3e3; color: #0d6b3a; }
  .badge.canary { background: #fff1c7; color: #7a5600; }
  .badge.rolled-back { background: #fde0e0; color: #9b1c1c; }
  .muted { color: #6b7385; }
  #status { min-height: 1.4em; margin: 0 0 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .err { color: #b00020; }
  #live.on::before { content: "●"; color: #2bd47d; margin-right: 4px; }
  #live.off::before { content: "●"; color: #f0a020; margin-right: 4px; }
  figure { margin: 0; }
  #chart { width: 100%; height: auto; aspect-ratio: 1000 / 240; display: block; }
  #chart text { font-size: 11px; fill: #6b7385; }
  #chart .grid { stroke: #e3e6ec; }
  #legend { display: flex; gap: 16px; flex-wrap: wrap; font-size: 13px; min-height: 1.4em; }
  .swatch { display: inline-block; width: 12px; height: 3px; margin-right: 4px; vertical-align: middle; }
  .cols { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; }
  @media (max-width: 900px) { .cols { grid-template-columns: minmax(0, 1fr); } }
  #problems { list-style: none; margin: 0; padding: 0; font-size: 13px; max-height: 320px; overflow-y: auto; }
  #problems li { padding: 4px 0; border-bottom: 1px solid #e3e6ec; white-space: normal; }
  #problems code { background: #f4f5f7; padding: 0 4px; border-radius: 3px; }
  dialog { border: 0; border-radius: 8px; box-shadow: 0 8px 30px rgba(0,0,0,.3); min-width: 340px; }
  dialog label { display: flex; justify-content: space-between; gap: 12px; margin: 8px 0; }
  dialog input, dialog select { font: inherit; width: 130px; }
  dialog .buttons { display: flex; gap: 8px; justify-content: flex-end; margin-top: 12px; }
`;

// Plain browser JavaScript, in a TypeScript string: no backticks or template placeholders inside.
const SCRIPT = `
'use strict';
const KEY = 'edgetune-console-token';
const params = new URLSearchParams(location.search);
const token = params.get('token') || sessionStorage.getItem(KEY) || '';
// Keep the token out of the address bar and history once the page has it.
if (params.has('token')) { sessionStorage.setItem(KEY, token); history.replaceState(null, '', location.pathname); }

const COLORS = ['#2f6fed', '#e8590c', '#1aa260', '#b43fd1', '#d6336c', '#0c8599', '#8c6d1f', '#495057'];
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
const rows = new Map();
const busy = new Set();
let devices = [];
let fleet = null;
let classes = [];

function status(text, isError) { $('status').textContent = text; $('status').title = text; $('status').className = isError ? 'err' : ''; }

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Error('wrong or missing API token: open the URL the console printed (http://host:port/?token=...)');
  if (!res.ok) throw new Error(data.error || res.status + ' ' + res.statusText);
  return data;
}

function el(tag, props, children) {
  const node = Object.assign(document.createElement(tag), props || {});
  for (const c of children || []) node.append(c);
  return node;
}
function svg(tag, attrs, children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children || []) node.append(c);
  return node;
}

function ago(at) {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(at).toLocaleDateString();
}
const pct = (v) => (v == null ? '–' : (v * 100).toFixed(1) + ' %');
const clock = (at) => new Date(at).toLocaleTimeString();

// ---- devices table: one row per device, created once and updated in place (no jank, no lost focus)
function deviceRow(id) {
  let row = rows.get(id);
  if (row) return row;
  const cell = (name) => el('td', { className: name });
  row = el('tr', {}, [cell('id'), cell('online'), cell('seen'), cell('backbone'), cell('head'), cell('fleet'), cell('classes'), cell('accuracy'), cell('actions')]);
  row.dataset.device = id;
  row.querySelector('.online').append(el('span', { className: 'dot' }), el('span', { className: 'text' }));
  row.querySelector('.seen').append(el('time'));
  const action = (label, name, run) => {
    const button = el('button', { textContent: label, onclick: () => run(id) });
    button.setAttribute('aria-label', name + ' ' + id);
    button.dataset.action = label;
    return button;
  };
  row.querySelector('.actions').append(
    action('push head', 'push head to', pushHead), ' ',
    action('retrain', 'retrain', retrain), ' ',
    action('config…', 'push config to', openConfig),
  );
  rows.set(id, row);
  return row;
}

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

function renderDevices() {
  const body = $('device-rows');
  const ids = devices.map((d) => d.id);
  for (const [id, row] of rows) if (!ids.includes(id)) { row.remove(); rows.delete(id); }
  devices.forEach((d, i) => {
    const row = deviceRow(d.id);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    row.dataset.online = String(d.online);
    setText(row.querySelector('.id'), d.id + (d.canary ? ' (canary)' : ''));
    setText(row.querySelector('.online .text'), d.online ? 'online' : 'offline');
    const time = row.querySelector('.seen time');
    time.dateTime = new Date(d.lastSeen).toISOString();
    time.title = new Date(d.lastSeen).toLocaleString();
    setText(time, ago(d.lastSeen));
    setText(row.querySelector('.backbone'), d.backbone || '–');
    row.querySelector('.backbone').title = d.backbone || '';
    setText(row.querySelector('.head'), d.headVersion == null ? 'none' : 'v' + d.headVersion + (d.headKind ? ' ' + d.headKind : ''));
    setText(row.querySelector('.fleet'), d.fleetVersion == null ? '–' : 'v' + d.fleetVersion);
    const classes = Object.entries(d.perClass).sort((a, b) => a[0].localeCompare(b[0])).map(([c, n]) => c + ' ' + n).join(' · ');
    setText(row.querySelector('.classes'), classes || (d.samples ? d.samples + ' unlabelled' : '–'));
    row.querySelector('.classes').title = classes;
    setText(row.querySelector('.accuracy'), pct(d.holdoutAccuracy));
    for (const button of row.querySelectorAll('button')) {
      const running = busy.has(d.id + ':' + button.dataset.action);
      button.disabled = !d.online || running;
      button.title = d.online ? '' : d.id + ' is offline';
      button.setAttribute('aria-busy', String(running));
    }
  });
  $('no-devices').hidden = devices.length > 0;
  setText($('device-count'), devices.filter((d) => d.online).length + ' of ' + devices.length + ' online');
}

function refreshAges() {
  for (const d of devices) { const row = rows.get(d.id); if (row) setText(row.querySelector('.seen time'), ago(d.lastSeen)); }
}

// ---- accuracy chart: one line per device, time on x, holdout accuracy 0-100 % on y
function renderChart() {
  const W = 1000, H = 240, L = 44, R = 12, T = 10, B = 26;
  const chart = $('chart');
  const series = devices.map((d, i) => ({ id: d.id, color: COLORS[i % COLORS.length], points: d.accuracy })).filter((s) => s.points.length > 0);
  const all = series.flatMap((s) => s.points.map((p) => p.at));
  const parts = [];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    const y = T + (1 - v) * (H - T - B);
    parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    parts.push(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, [Math.round(v * 100) + ' %']));
  }
  if (all.length === 0) {
    parts.push(svg('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle' }, ['no holdout accuracy reported yet']));
  } else {
    // Time runs up to now, over at least a minute; a device's accuracy holds until its next report.
    const t1 = Math.max(Date.now(), ...all), t0 = Math.min(t1 - 60000, ...all);
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v) * (H - T - B);
    parts.push(svg('text', { x: L, y: H - 6 }, [clock(t0)]), svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, [clock(t1)]));
    for (const s of series) {
      const g = svg('g', { 'data-device': s.id });
      const steps = s.points.flatMap((p, i) => {
        const next = i + 1 < s.points.length ? s.points[i + 1].at : t1;
        return [x(p.at).toFixed(1) + ',' + y(p.accuracy).toFixed(1), x(next).toFixed(1) + ',' + y(p.accuracy).toFixed(1)];
      });
      g.append(svg('polyline', { points: steps.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
      for (const p of s.points) {
        const label = s.id + ': ' + pct(p.accuracy) + ' at ' + new Date(p.at).toLocaleString() + (p.headVersion == null ? '' : ', head v' + p.headVersion) + (p.fleetVersion == null ? '' : ', fleet v' + p.fleetVersion);
        g.append(svg('circle', { cx: x(p.at).toFixed(1), cy: y(p.accuracy).toFixed(1), r: 3, fill: s.color }, [svg('title', {}, [label])]));
      }
      parts.push(g);
    }
  }
  chart.replaceChildren(...parts);
  $('legend').replaceChildren(...series.map((s) => {
    const swatch = el('span', { className: 'swatch' });
    swatch.style.background = s.color;
    return el('span', {}, [swatch, s.id + ' ' + pct(s.points[s.points.length - 1].accuracy)]);
  }));
}

// ---- fleet heads and problems
function renderFleet() {
  setText($('fleet'), fleet.fleet);
  setText($('broker'), fleet.broker);
  $('fleet-head-rows').replaceChildren(...fleet.heads.map((h) => {
    const row = el('tr', {}, [
      el('td', { textContent: 'v' + h.version }),
      el('td', {}, [el('span', { className: 'badge ' + h.status, textContent: h.status })]),
      el('td', { textContent: h.merged.join(', ') || '–' }),
      el('td', { textContent: h.heldBack.map((x) => x.device).join(', ') || '–', title: h.heldBack.map((x) => x.device + ': ' + x.reason).join('\\n') }),
      el('td', { title: h.note || '' }, [h.note || '', ...(h.status === 'held' ? [' ', el('button', { textContent: 'release', className: 'release-held', onclick: () => releaseHeld(h.version) })] : [])]),
      el('td', { textContent: clock(h.createdAt), title: new Date(h.createdAt).toLocaleString() }),
    ]);
    row.dataset.version = String(h.version);
    row.dataset.status = h.status;
    return row;
  }));
  $('no-fleet-heads').hidden = fleet.heads.length > 0;
  const canRollBack = fleet.released != null && fleet.heads.some((h) => h.status === 'superseded' && h.version < fleet.released);
  $('rollback').disabled = !canRollBack || busy.has('fleet');
  $('rollback').title = canRollBack ? 'publish the previously released head again, as a new version' : 'needs a released fleet head with an earlier one to go back to';
  $('merge').disabled = busy.has('fleet');
  $('problems').replaceChildren(...(fleet.problems.length === 0 ? [el('li', { className: 'muted', textContent: 'no problems' })] : fleet.problems.slice(0, 30).map((p) =>
    el('li', {}, [el('span', { className: 'muted', textContent: clock(p.at) + ' ' }), el('b', { textContent: (p.device || 'broker') + ' ' }), el('code', { textContent: p.code }), ' ' + p.message]))));
}

// ---- classes: the operator decides which enter the fleet head
function renderClasses() {
  $('classes').replaceChildren(...(classes.length === 0 ? [el('li', { className: 'muted', textContent: 'no classes yet' })] : classes.map((c) => {
    const item = el('li', {}, [
      el('b', { textContent: c.label + ' ' }), el('span', { className: 'badge ' + c.status, textContent: c.status }),
      el('span', { className: 'muted', textContent: ' ' + (c.devices.join(', ') || 'no device') + ' ' }),
      ...(c.status === 'fleet' ? [] : [
        el('button', { textContent: 'accept', className: 'accept-class', disabled: c.status === 'accepted', onclick: () => decideClass(c.label, 'accept') }),
        el('button', { textContent: 'refuse', className: 'refuse-class', disabled: c.status === 'refused', onclick: () => decideClass(c.label, 'refuse') }),
      ]),
    ]);
    item.dataset.label = c.label;
    item.dataset.status = c.status;
    return item;
  })));
}
const decideClass = (label, decision) => act('fleet', decision + 'ing class ' + label, async () => {
  await api('POST', '/api/classes/' + decision, { label });
  return 'class ' + label + ' ' + decision + 'ed: it takes effect at the next merge';
});
const releaseHeld = (version) => act('fleet', 'releasing fleet head v' + version, async () => {
  await api('POST', '/api/fleet/' + version + '/release', {});
  return 'fleet head v' + version + ' released by the operator';
});

// ---- data: fetched on load, on every event from the console, and after every action
let refreshing = null, again = false, timer = null;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const [d, f, c] = await Promise.all([api('GET', '/api/devices'), api('GET', '/api/fleet'), api('GET', '/api/classes')]);
      devices = d.devices; fleet = f; classes = c.classes;
      renderDevices(); renderChart(); renderFleet(); renderClasses();
    } catch (e) { status(e.message, true); }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; await refresh(); }
}
// A throttle, not a debounce: a fleet that never stops talking still gets a refresh every 250 ms.
function soon() { if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, 250); }

async function act(key, what, run) {
  busy.add(key);
  if (devices.length) renderDevices();
  if (fleet) renderFleet();
  status(what + '…');
  try { status(await run()); }
  catch (e) { status(what + ' failed: ' + e.message, true); }
  finally { busy.delete(key); await refresh(); }
}

const pushHead = (id) => act(id + ':push head', 'pushing the fleet head to ' + id, async () => {
  const r = await api('POST', '/api/devices/' + encodeURIComponent(id) + '/push-head', {});
  return r.applied === false ? id + ' verified the fleet head but did not apply it (' + r.reason + ')' : id + ' applied fleet head v' + r.fleetVersion;
});
const retrain = (id) => act(id + ':retrain', 'retraining ' + id, async () => {
  const r = await api('POST', '/api/devices/' + encodeURIComponent(id) + '/train', {});
  return r.kept ? id + ' kept a new head v' + r.version : id + ' kept its head: ' + (r.reason || 'the new one was not better');
});

let configDevice = null;
function openConfig(id) {
  configDevice = id;
  const d = devices.find((x) => x.id === id);
  const c = (d && d.config) || {};
  $('config-device').textContent = id;
  $('cfg-threshold').value = c.head && c.head.unknownThreshold != null ? c.head.unknownThreshold : '';
  $('cfg-retrain').value = c.head && c.head.retrainAfterLabels != null ? c.head.retrainAfterLabels : '';
  $('cfg-apply').value = (c.fleet && c.fleet.apply) || '';
  $('config-error').textContent = '';
  $('config-dialog').showModal();
}
$('config-cancel').onclick = () => $('config-dialog').close();
$('config-form').onsubmit = async (event) => {
  event.preventDefault();
  const head = {}, fleetConfig = {};
  if ($('cfg-threshold').value !== '') head.unknownThreshold = Number($('cfg-threshold').value);
  if ($('cfg-retrain').value !== '') head.retrainAfterLabels = Number($('cfg-retrain').value);
  if ($('cfg-apply').value !== '') fleetConfig.apply = $('cfg-apply').value;
  const body = {};
  if (Object.keys(head).length) body.head = head;
  if (Object.keys(fleetConfig).length) body.fleet = fleetConfig;
  const id = configDevice;
  $('config-send').disabled = true;
  try {
    await api('POST', '/api/devices/' + encodeURIComponent(id) + '/config', body);
    $('config-dialog').close();
    status(id + ' applied the config ' + JSON.stringify(body));
    await refresh();
  } catch (e) {
    $('config-error').textContent = e.message;
  } finally { $('config-send').disabled = false; }
};

$('merge').onclick = () => act('fleet', 'merging the device heads', async () => {
  const r = await api('POST', '/api/merge', {});
  const merged = 'fleet head v' + r.version + ' from ' + r.merged.join(', ');
  return r.status === 'released' ? merged + ': released' : merged + ': ' + r.status + (r.reason ? ' (' + r.reason + ')' : '');
});
$('rollback').onclick = () => act('fleet', 'rolling back', async () => {
  const r = await api('POST', '/api/rollback', {});
  return 'fleet head v' + r.version + ' restores v' + r.restored + ' in place of v' + r.replaced;
});

function connect() {
  const events = new EventSource('/api/events?token=' + encodeURIComponent(token));
  events.onopen = () => { $('live').className = 'on'; $('live').textContent = 'live'; refresh(); };
  // EventSource retries by itself, unless the server refused the stream (a wrong token).
  events.onerror = () => { $('live').className = 'off'; $('live').textContent = events.readyState === EventSource.CLOSED ? 'disconnected: reload the page' : 'reconnecting…'; };
  events.addEventListener('change', soon);
  events.addEventListener('head', soon);
}

if (!token) status('no API token: open the URL the console printed (http://host:port/?token=...)', true);
else { refresh(); connect(); }
setInterval(() => { refreshAges(); if (devices.length) renderChart(); }, 5000);
`;

const BODY = `
<header>
  <h1>edgetune console</h1>
  <span>fleet <b id="fleet">…</b></span>
  <span>broker <b id="broker">…</b></span>
  <span id="live" class="off">connecting…</span>
</header>
<main>
  <p id="status" role="status" aria-live="polite"></p>
  <section aria-labelledby="devices-title">
    <div class="bar">
      <h2 id="devices-title">Devices <span id="device-count" class="muted"></span></h2>
      <button id="merge" class="primary">merge &amp; roll out</button>
      <button id="rollback" disabled>roll back</button>
    </div>
    <table id="devices" aria-labelledby="devices-title">
      <thead><tr><th>device</th><th>online</th><th>last seen</th><th>backbone</th><th>head</th><th>fleet</th><th>samples per class</th><th>holdout</th><th>actions</th></tr></thead>
      <tbody id="device-rows"></tbody>
      <tbody><tr id="no-devices"><td colspan="9" class="muted">No device has connected yet: add one with <code>edgetune console add-device ID</code> and start its agent.</td></tr></tbody>
    </table>
  </section>
  <section aria-labelledby="chart-title">
    <h2 id="chart-title">Holdout accuracy over time</h2>
    <figure>
      <svg id="chart" viewBox="0 0 1000 240" role="img" aria-labelledby="chart-title"></svg>
      <figcaption id="legend"></figcaption>
    </figure>
  </section>
  <div class="cols">
    <section aria-labelledby="heads-title">
      <h2 id="heads-title">Fleet heads</h2>
      <table id="fleet-heads" aria-labelledby="heads-title">
        <thead><tr><th>version</th><th>status</th><th>merged</th><th>held back</th><th>note</th><th>created</th></tr></thead>
        <tbody id="fleet-head-rows"></tbody>
        <tbody><tr id="no-fleet-heads"><td colspan="6" class="muted">No fleet head yet: train heads on devices, then merge &amp; roll out.</td></tr></tbody>
      </table>
      <h3 id="classes-title">Classes</h3>
      <ul id="classes" aria-labelledby="classes-title"></ul>
    </section>
    <section aria-labelledby="problems-title">
      <h2 id="problems-title">Problems</h2>
      <ul id="problems"></ul>
    </section>
  </div>
</main>
<dialog id="config-dialog" aria-labelledby="config-title">
  <form id="config-form">
    <h2 id="config-title">Push config to <span id="config-device"></span></h2>
    <label>unknown threshold <input id="cfg-threshold" type="number" min="0" max="1" step="any" placeholder="unchanged"></label>
    <label>retrain after labels <input id="cfg-retrain" type="number" min="0" step="1" placeholder="unchanged"></label>
    <label>fleet heads <select id="cfg-apply"><option value="">unchanged</option><option value="replace">replace</option><option value="merge">merge</option><option value="off">off</option></select></label>
    <p id="config-error" class="err" role="alert"></p>
    <div class="buttons"><button type="button" id="config-cancel">cancel</button><button type="submit" id="config-send" class="primary">send config</button></div>
  </form>
</dialog>
`;

const hash = (text: string) => `sha256-${createHash('sha256').update(text).digest('base64')}`;

let page: { html: string; scriptHash: string; styleHash: string } | undefined;

/** The page, with the CSP hashes of its inline script and style. */
export function consolePage(): { html: string; scriptHash: string; styleHash: string } {
  page ??= {
    html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>edgetune console</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`,
    scriptHash: hash(SCRIPT),
    styleHash: hash(STYLE),
  };
  return page;
}
