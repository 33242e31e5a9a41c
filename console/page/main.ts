// The console's one page: devices with their state and actions, holdout accuracy over time (inline
// SVG), fleet heads and problems, kept live by Server-Sent Events.

import type {
  ClassJson,
  ClassesJson,
  DeviceJson,
  DeviceTrainJson,
  DevicesJson,
  FleetAccuracyJson,
  FleetJson,
  MergeJson,
  PushHeadJson,
  RollbackJson,
  RolloutJson,
  RolloutsJson,
} from '../api-types.js';
import { ApiClient, takeToken } from '../../web/api.js';
import { byId, child, el, percent, setText, svg } from '../../web/dom.js';
import { startConfigEditor } from './config-editor.js';
import { renderFleetAccuracy } from './fleet-accuracy.js';

const NO_TOKEN = 'wrong or missing API token: open the URL the console printed (http://host:port/?token=...)';
const api = new ApiClient({ token: takeToken('edgetune-console-token'), unauthorized: NO_TOKEN });

const COLORS = ['#2f6fed', '#e8590c', '#1aa260', '#b43fd1', '#d6336c', '#0c8599', '#8c6d1f', '#495057'];
const rows = new Map<string, HTMLTableRowElement>();
const busy = new Set<string>();
let devices: DeviceJson[] = [];
let fleet: FleetJson | null = null;

function status(text: string, isError = false): void {
  const node = byId('status');
  node.textContent = text;
  node.title = text;
  node.className = isError ? 'err' : '';
}
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function ago(at: number): string {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(at).toLocaleDateString();
}
const clock = (at: number) => new Date(at).toLocaleTimeString();

// ---- devices table: one row per device, created once and updated in place (no jank, no lost focus)
function deviceRow(id: string): HTMLTableRowElement {
  const existing = rows.get(id);
  if (existing) return existing;
  const cell = (name: string) => el('td', { className: name });
  const row = el('tr', { dataset: { device: id } }, [
    ...['id', 'online', 'seen', 'release', 'vitals', 'backbone', 'head', 'fleet', 'classes', 'accuracy', 'actions'].map(cell),
  ]);
  child(row, '.id').append(el('a', { className: 'name', target: '_blank', rel: 'noopener' }), el('span', { className: 'tags' }));
  child(row, '.online').append(el('span', { className: 'dot' }), el('span', { className: 'text' }));
  child(row, '.seen').append(el('time'));
  const action = (label: string, name: string, run: (id: string) => void) => {
    const button = el('button', { textContent: label, onclick: () => run(id), dataset: { action: label } });
    button.setAttribute('aria-label', `${name} ${id}`);
    return button;
  };
  child(row, '.actions').append(
    action('push head', 'push head to', pushHead),
    ' ',
    action('retrain', 'retrain', retrain),
    ' ',
    action('config…', 'push config to', openConfig),
    ' ',
    action('logs', 'show the logs of', openLogs),
    ' ',
    action('head ↓', 'download the head of', (d) => void download(`/api/heads/device/${encodeURIComponent(d)}`, `${d}.head`)),
    ' ',
    action(
      'photos ↓',
      'download the labelled photos of',
      (d) => void download(`/api/devices/${encodeURIComponent(d)}/dataset.tar.gz`, `${d}-dataset.tar.gz`),
    ),
  );
  rows.set(id, row);
  return row;
}

function renderDevices(): void {
  const body = byId('device-rows');
  const ids = new Set(devices.map((d) => d.id));
  for (const [id, row] of rows)
    if (!ids.has(id)) {
      row.remove();
      rows.delete(id);
    }
  devices.forEach((d, i) => {
    const row = deviceRow(d.id);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] ?? null);
    row.dataset.online = String(d.online);
    row.dataset.status = d.status;
    const name = child<HTMLAnchorElement>(row, '.id .name');
    setText(name, d.id + (d.canary ? ' (canary)' : ''));
    // The device's own labelling page, when it told us where it is.
    if (d.page) name.href = d.page;
    else name.removeAttribute('href');
    setText(child(row, '.id .tags'), d.tags.length ? ` ${d.tags.join(' ')}` : '');
    setText(child(row, '.online .text'), d.status);
    child(row, '.online').title = d.sourcesFailing.map((f) => `source ${f.name}: ${f.error ?? 'failing'}`).join('\n');
    const time = child<HTMLTimeElement>(row, '.seen time');
    time.dateTime = d.lastSeen === null ? '' : new Date(d.lastSeen).toISOString();
    time.title =
      d.lastSeen === null
        ? `login issued ${d.issuedAt ? new Date(d.issuedAt).toLocaleString() : ''}`
        : new Date(d.lastSeen).toLocaleString();
    setText(time, d.lastSeen === null ? 'never' : ago(d.lastSeen));
    setText(
      child(row, '.release'),
      (d.release ?? '–') + (d.update && d.update.version !== d.release ? ` (${d.update.version} ${d.update.status})` : ''),
    );
    child(row, '.release').title = d.update?.error ?? '';
    setText(child(row, '.vitals'), vitals(d));
    child(row, '.vitals').title = d.addresses.join(' ');
    setText(child(row, '.backbone'), d.backbone ?? '–');
    child(row, '.backbone').title = d.backbone ?? '';
    setText(child(row, '.head'), d.headVersion == null ? 'none' : `v${d.headVersion}${d.headKind ? ` ${d.headKind}` : ''}`);
    setText(child(row, '.fleet'), d.fleetVersion == null ? '–' : `v${d.fleetVersion}`);
    const classes = Object.entries(d.perClass)
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([c, n]) => `${c} ${n}`)
      .join(' · ');
    setText(child(row, '.classes'), classes || (d.samples ? `${d.samples} unlabelled` : '–'));
    child(row, '.classes').title = classes;
    setText(child(row, '.accuracy'), percent(d.holdoutAccuracy));
    for (const button of row.querySelectorAll('button')) {
      const running = busy.has(`${d.id}:${button.dataset.action}`);
      const offline = !d.online && button.dataset.action !== 'head ↓';
      button.disabled = offline || running;
      button.title = d.online ? '' : `${d.id} is offline`;
      button.setAttribute('aria-busy', String(running));
    }
  });
  byId('no-devices').hidden = devices.length > 0;
  const c = table.counts;
  setText(
    byId('device-count'),
    `${c.online} of ${c.all} online` +
      (c.neverConnected ? `, ${c.neverConnected} never connected` : '') +
      (c.failingSources ? `, ${c.failingSources} with failing sources` : ''),
  );
  const last = Math.min(table.total, view.offset + devices.length);
  setText(byId('page-info'), table.total === 0 ? 'no match' : `${view.offset + 1}–${last} of ${table.total}`);
  byId<HTMLButtonElement>('page-prev').disabled = view.offset === 0;
  byId<HTMLButtonElement>('page-next').disabled = last >= table.total;
  for (const th of document.querySelectorAll<HTMLElement>('#devices th[data-sort]'))
    th.setAttribute('aria-sort', th.dataset.sort === view.sort ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none');
}

const bytes = (n: number | null) => (n === null ? '–' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GB` : `${Math.round(n / 2 ** 20)} MB`);
function duration(s: number | null): string {
  if (s === null) return '–';
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}
function vitals(d: DeviceJson): string {
  if (d.status === 'never-connected') return '–';
  return [
    d.cpuTempC === null ? null : `${d.cpuTempC.toFixed(1)} °C`,
    d.load1 === null ? null : `load ${d.load1.toFixed(2)}`,
    `mem ${bytes(d.memoryAvailableBytes)}`,
    `disk ${bytes(d.diskFreeBytes)}`,
    `up ${duration(d.uptimeSeconds)}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

// ---- table view: one page of the server's filtered, sorted table
const view = { offset: 0, limit: 50, sort: 'id', order: 'asc' as 'asc' | 'desc', q: '' };
let table: DevicesJson = {
  devices: [],
  total: 0,
  offset: 0,
  limit: 50,
  counts: { all: 0, online: 0, offline: 0, neverConnected: 0, failingSources: 0 },
};
const devicesPath = () =>
  `/api/devices?${new URLSearchParams({ offset: String(view.offset), limit: String(view.limit), sort: view.sort, order: view.order, q: view.q }).toString()}`;
for (const th of document.querySelectorAll<HTMLElement>('#devices th[data-sort]'))
  th.onclick = () => {
    const sort = th.dataset.sort!;
    view.order = view.sort === sort && view.order === 'asc' ? 'desc' : 'asc';
    view.sort = sort;
    view.offset = 0;
    void refresh();
  };
let filterTimer: ReturnType<typeof setTimeout> | undefined;
byId<HTMLInputElement>('device-filter').oninput = (e) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    view.q = (e.target as HTMLInputElement).value;
    view.offset = 0;
    void refresh();
  }, 200);
};
byId('page-prev').onclick = () => {
  view.offset = Math.max(0, view.offset - view.limit);
  void refresh();
};
byId('page-next').onclick = () => {
  view.offset += view.limit;
  void refresh();
};

// ---- downloads: fetched with the token, handed to the browser as a file
async function download(path: string, name: string): Promise<void> {
  status(`downloading ${name}…`);
  try {
    const res = await fetch(path, { headers: { authorization: `Bearer ${api.token}` } });
    if (!res.ok) throw new Error(((await res.json().catch(() => ({}))) as { error?: string }).error ?? `${res.status}`);
    const disposition = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? name;
    const url = URL.createObjectURL(await res.blob());
    const a = el('a', { href: url, download: disposition });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status(`downloaded ${disposition}`);
  } catch (e) {
    status(`download of ${name} failed: ${message(e)}`, true);
  }
}

// ---- logs: a device's lines, streamed while the dialog is open
let logStream: EventSource | null = null;
function openLogs(id: string): void {
  setText(byId('logs-device'), id);
  const out = byId('log-lines');
  out.replaceChildren();
  logStream?.close();
  logStream = new EventSource(`/api/devices/${encodeURIComponent(id)}/logs?token=${encodeURIComponent(api.token)}`);
  logStream.addEventListener('lines', (e) => {
    const { lines } = JSON.parse((e as MessageEvent<string>).data) as {
      lines: { time: string; level: string; msg: string; fields: string }[];
    };
    out.append(
      ...lines.map((l) =>
        el('div', {
          className: `log ${l.level}`,
          textContent: `${l.time.slice(11, 19)} ${l.level} ${l.msg} ${l.fields === '{}' ? '' : l.fields}`,
        }),
      ),
    );
    while (out.childElementCount > 1000) out.firstElementChild?.remove();
    out.scrollTop = out.scrollHeight;
  });
  logStream.addEventListener('dropped', (e) => {
    const { dropped } = JSON.parse((e as MessageEvent<string>).data) as { dropped: number };
    out.append(el('div', { className: 'log dropped', textContent: `… ${dropped} lines not sent (more than 100 a second)` }));
  });
  logStream.addEventListener('failed', (e) => {
    out.append(
      el('div', { className: 'log error', textContent: (JSON.parse((e as MessageEvent<string>).data) as { error: string }).error }),
    );
  });
  byId<HTMLDialogElement>('logs-dialog').showModal();
}
byId<HTMLDialogElement>('logs-dialog').onclose = () => {
  logStream?.close();
  logStream = null;
};
byId('logs-close').onclick = () => byId<HTMLDialogElement>('logs-dialog').close();

// ---- rollouts: the running one (or the last), per stage and device
function renderRollout(r: RolloutJson | undefined): void {
  const box = byId('rollout');
  if (!r) {
    box.replaceChildren(el('p', { className: 'muted', textContent: 'no rollout yet' }));
    return;
  }
  const what = r.kind === 'agent-update' ? `agent ${r.subject}` : `fleet head ${r.subject}`;
  box.replaceChildren(
    el('p', { className: 'rollout-title', textContent: r.endedAt === null ? `${what}: rolling out…` : (r.summary ?? what) }),
    ...(r.unable.length
      ? [
          el(
            'ul',
            { className: 'unable' },
            r.unable.map((u) => el('li', { dataset: { device: u.device }, textContent: `cannot take it: ${u.device}: ${u.reason}` })),
          ),
        ]
      : []),
    ...r.stages.map((stage) =>
      el('div', { className: 'stage', dataset: { stage: stage.name } }, [
        el('b', { textContent: `${stage.name} ` }),
        el('span', {
          className: 'muted',
          textContent:
            stage.summary ??
            `${stage.devices.filter((d) => d.done).length} of ${stage.devices.length} done, until ${clock(stage.deadline)}`,
        }),
        el(
          'ul',
          {},
          stage.devices.map((d) =>
            el('li', { dataset: { device: d.device, status: d.status }, className: d.done ? (d.ok ? 'ok' : 'err') : '' }, [
              `${d.device}: ${d.status}${d.detail ? ` (${d.detail})` : ''}`,
            ]),
          ),
        ),
      ]),
    ),
  );
}

// ---- merge policy and its verdicts
function renderPolicy(f: FleetJson): void {
  const p = f.policy;
  const after = byId<HTMLInputElement>('policy-after');
  const every = byId<HTMLInputElement>('policy-every');
  if (document.activeElement !== after) after.value = p.afterHeads ? String(p.afterHeads) : '';
  if (document.activeElement !== every) every.value = p.everyMs ? String(p.everyMs / 60000) : '';
  setText(byId('policy-new'), `${p.newHeads} new device heads since the last merge`);
  byId('verdict-rows').replaceChildren(
    ...p.verdicts.map((v) => {
      const d = v.details as {
        merged?: string[];
        heldBack?: { device: string }[];
        canaries?: { device: string; before: number | null; after: number | null; lost?: number; gained?: number }[];
        reason?: string;
        summaries?: string[];
      };
      const numbers = [
        d.merged ? `merged ${d.merged.length}` : '',
        d.heldBack?.length ? `held back ${d.heldBack.map((h) => h.device).join(', ')}` : '',
        ...(d.canaries ?? []).map(
          (c) =>
            `${c.device} ${percent(c.before)} → ${percent(c.after)}${c.lost === undefined ? '' : ` (lost ${c.lost}, gained ${c.gained})`}`,
        ),
        d.reason ?? '',
      ].filter(Boolean);
      return el('tr', { dataset: { verdict: v.verdict } }, [
        el('td', { textContent: clock(v.at), title: new Date(v.at).toLocaleString() }),
        el('td', { textContent: v.trigger }),
        el('td', {}, [el('span', { className: `badge ${v.verdict.split(' ')[0]}`, textContent: v.verdict })]),
        el('td', { textContent: v.version === null ? '–' : `v${v.version}` }),
        el('td', { className: 'numbers', textContent: numbers.join(' · '), title: (d.summaries ?? []).join('\n') }),
      ]);
    }),
  );
  byId('no-verdicts').hidden = p.verdicts.length > 0;
}
byId<HTMLFormElement>('policy-form').onsubmit = (event) => {
  event.preventDefault();
  const after = byId<HTMLInputElement>('policy-after').value;
  const every = byId<HTMLInputElement>('policy-every').value;
  void act('fleet', 'setting the merge policy', async () => {
    const body = { ...(after ? { afterHeads: Number(after) } : {}), ...(every ? { everyMs: Math.round(Number(every) * 60000) } : {}) };
    await api.request('POST', '/api/merge-policy', body);
    return `merge policy: ${after ? `after ${after} new heads` : 'no head count'}, ${every ? `every ${every} min` : 'no schedule'}`;
  });
};

function refreshAges(): void {
  for (const d of devices) {
    const row = rows.get(d.id);
    if (row && d.lastSeen !== null) setText(child(row, '.seen time'), ago(d.lastSeen));
  }
}

// ---- accuracy chart: one line per device, time on x, holdout accuracy 0-100 % on y
function renderChart(): void {
  const [W, H, L, R, T, B] = [1000, 240, 44, 12, 10, 26];
  const series = devices
    .map((d, i) => ({ id: d.id, color: COLORS[i % COLORS.length] ?? '#495057', points: d.accuracy }))
    .filter((s) => s.points.length > 0);
  const all = series.flatMap((s) => s.points.map((p) => p.at));
  const y = (v: number) => T + (1 - v) * (H - T - B);
  const parts: SVGElement[] = [];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    parts.push(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, [`${Math.round(v * 100)} %`]));
  }
  if (all.length === 0) {
    parts.push(svg('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle' }, ['no holdout accuracy reported yet']));
  } else {
    // Time runs up to now, over at least a minute; a device's accuracy holds until its next report.
    const t1 = Math.max(Date.now(), ...all);
    const t0 = Math.min(t1 - 60000, ...all);
    const x = (t: number) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    parts.push(svg('text', { x: L, y: H - 6 }, [clock(t0)]), svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, [clock(t1)]));
    for (const s of series) {
      const g = svg('g', { 'data-device': s.id });
      const steps = s.points.flatMap((p, i) => {
        const next = s.points[i + 1]?.at ?? t1;
        return [`${x(p.at).toFixed(1)},${y(p.accuracy).toFixed(1)}`, `${x(next).toFixed(1)},${y(p.accuracy).toFixed(1)}`];
      });
      g.append(svg('polyline', { points: steps.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
      for (const p of s.points) {
        const label =
          `${s.id}: ${percent(p.accuracy)} at ${new Date(p.at).toLocaleString()}` +
          (p.headVersion == null ? '' : `, head v${p.headVersion}`) +
          (p.fleetVersion == null ? '' : `, fleet v${p.fleetVersion}`);
        g.append(svg('circle', { cx: x(p.at).toFixed(1), cy: y(p.accuracy).toFixed(1), r: 3, fill: s.color }, [svg('title', {}, [label])]));
      }
      parts.push(g);
    }
  }
  byId('chart').replaceChildren(...parts);
  byId('legend').replaceChildren(
    ...series.map((s) => {
      const swatch = el('span', { className: 'swatch' });
      swatch.style.background = s.color;
      return el('span', {}, [swatch, `${s.id} ${percent(s.points[s.points.length - 1]?.accuracy)}`]);
    }),
  );
}

// ---- fleet heads and problems
function renderFleet(f: FleetJson): void {
  setText(byId('fleet'), f.fleet);
  setText(byId('broker'), f.broker);
  byId('fleet-head-rows').replaceChildren(
    ...f.heads.map((h) =>
      el('tr', { dataset: { version: String(h.version), status: h.status } }, [
        el('td', { textContent: `v${h.version}` }),
        el('td', {}, [el('span', { className: `badge ${h.status}`, textContent: h.status })]),
        el('td', { textContent: h.merged.join(', ') || '–' }),
        el('td', {
          textContent: h.heldBack.map((x) => x.device).join(', ') || '–',
          title: h.heldBack.map((x) => `${x.device}: ${x.reason}`).join('\n'),
        }),
        el('td', { title: h.note ?? '' }, [
          h.note ?? '',
          ...(h.status === 'held'
            ? [' ', el('button', { textContent: 'release', className: 'release-held', onclick: () => void releaseHeld(h.version) })]
            : []),
        ]),
        el('td', { textContent: clock(h.createdAt), title: new Date(h.createdAt).toLocaleString() }),
        el('td', {}, [
          el('button', {
            textContent: '↓',
            title: `download fleet head v${h.version} (edgetune predict --head)`,
            dataset: { download: String(h.version) },
            onclick: () => void download(`/api/heads/fleet/${h.version}`, `fleet-v${h.version}.head`),
          }),
        ]),
      ]),
    ),
  );
  byId('no-fleet-heads').hidden = f.heads.length > 0;
  const released = f.released;
  const canRollBack = released != null && f.heads.some((h) => h.status === 'superseded' && h.version < released);
  const rollback = byId<HTMLButtonElement>('rollback');
  rollback.disabled = !canRollBack || busy.has('fleet');
  rollback.title = canRollBack
    ? 'publish the previously released head again, as a new version'
    : 'needs a released fleet head with an earlier one to go back to';
  byId<HTMLButtonElement>('merge').disabled = busy.has('fleet');
  byId('problems').replaceChildren(
    ...(f.problems.length === 0
      ? [el('li', { className: 'muted', textContent: 'no problems' })]
      : f.problems
          .slice(0, 30)
          .map((p) =>
            el('li', {}, [
              el('span', { className: 'muted', textContent: `${clock(p.at)} ` }),
              el('b', { textContent: `${p.device ?? 'broker'} ` }),
              el('code', { textContent: p.code }),
              ` ${p.message}`,
            ]),
          )),
  );
}

// ---- classes: the operator decides which enter the fleet head
function renderClasses(classes: ClassJson[]): void {
  byId('classes').replaceChildren(
    ...(classes.length === 0
      ? [el('li', { className: 'muted', textContent: 'no classes yet' })]
      : classes.map((c) =>
          el('li', { dataset: { label: c.label, status: c.status } }, [
            el('b', { textContent: `${c.label} ` }),
            el('span', { className: `badge ${c.status}`, textContent: c.status }),
            el('span', { className: 'muted', textContent: ` ${c.devices.join(', ') || 'no device'} ` }),
            ...(c.status === 'fleet'
              ? []
              : (['accept', 'refuse'] as const).map((decision) =>
                  el('button', {
                    textContent: decision,
                    className: `${decision}-class`,
                    disabled: c.status === (decision === 'accept' ? 'accepted' : 'refused'),
                    onclick: () => void decideClass(c.label, decision),
                  }),
                )),
          ]),
        )),
  );
}
const decideClass = (label: string, decision: 'accept' | 'refuse') =>
  act('fleet', `${decision === 'accept' ? 'accepting' : 'refusing'} class ${label}`, async () => {
    await api.request('POST', `/api/classes/${decision}`, { label });
    return `class ${label} ${decision}ed: it takes effect at the next merge`;
  });
const releaseHeld = (version: number) =>
  act('fleet', `releasing fleet head v${version}`, async () => {
    await api.request('POST', `/api/fleet/${version}/release`, {});
    return `fleet head v${version} released by the operator`;
  });

// ---- data: fetched on load, on every event from the console, and after every action
let refreshing: Promise<void> | null = null;
let again = false;
let timer: ReturnType<typeof setTimeout> | null = null;
async function refresh(): Promise<void> {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      const [d, f, r, c, a] = await Promise.all([
        api.get<DevicesJson>(devicesPath()),
        api.get<FleetJson>('/api/fleet'),
        api.get<RolloutsJson>('/api/rollouts'),
        api.get<ClassesJson>('/api/classes'),
        api.get<FleetAccuracyJson>('/api/fleet/accuracy'),
      ]);
      table = d;
      devices = d.devices;
      fleet = f;
      renderDevices();
      renderChart();
      renderFleet(f);
      renderPolicy(f);
      renderRollout(r.current ?? r.recent[0]);
      renderClasses(c.classes);
      renderFleetAccuracy(a);
    } catch (e) {
      status(message(e), true);
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) {
    again = false;
    await refresh();
  }
}
// A throttle, not a debounce: a fleet that never stops talking still gets a refresh every 250 ms.
function soon(): void {
  timer ??= setTimeout(() => {
    timer = null;
    void refresh();
  }, 250);
}

async function act(key: string, what: string, run: () => Promise<string>): Promise<void> {
  busy.add(key);
  if (devices.length) renderDevices();
  if (fleet) renderFleet(fleet);
  status(`${what}…`);
  try {
    status(await run());
  } catch (e) {
    status(`${what} failed: ${message(e)}`, true);
  } finally {
    busy.delete(key);
    await refresh();
  }
}

const deviceApi = (id: string, action: string) => `/api/devices/${encodeURIComponent(id)}/${action}`;

const pushHead = (id: string) =>
  act(`${id}:push head`, `pushing the fleet head to ${id}`, async () => {
    const r = await api.request<PushHeadJson>('POST', deviceApi(id, 'push-head'), {});
    return r.applied === false
      ? `${id} verified the fleet head but did not apply it (${r.reason})`
      : `${id} applied fleet head v${r.fleetVersion}`;
  });
const retrain = (id: string) =>
  act(`${id}:retrain`, `retraining ${id}`, async () => {
    const r = await api.request<DeviceTrainJson>('POST', deviceApi(id, 'train'), {});
    return r.kept ? `${id} kept a new head v${r.version}` : `${id} kept its head: ${r.reason ?? 'the new one was not better'}`;
  });

const input = (id: string) => byId<HTMLInputElement>(id);
let configDevice = '';
function openConfig(id: string): void {
  configDevice = id;
  const config = devices.find((x) => x.id === id)?.config ?? {};
  const section = (value: unknown) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
  const shown = (value: unknown) => (typeof value === 'number' || typeof value === 'string' ? String(value) : '');
  byId('config-device').textContent = id;
  input('cfg-threshold').value = shown(section(config.head).unknownThreshold);
  input('cfg-retrain').value = shown(section(config.head).retrainAfterLabels);
  byId<HTMLSelectElement>('cfg-apply').value = shown(section(config.fleet).apply);
  byId('config-error').textContent = '';
  byId('config-diff').replaceChildren();
  confirmed = '';
  setText(byId('config-send'), 'show changes');
  byId<HTMLDialogElement>('config-dialog').showModal();
}

/** What the push would change, field by field, against what the device last reported. */
function configDiff(current: Record<string, unknown>, body: Record<string, Record<string, unknown>>): string[] {
  const lines: string[] = [];
  for (const [section, fields] of Object.entries(body))
    for (const [field, value] of Object.entries(fields)) {
      const before = ((current[section] ?? {}) as Record<string, unknown>)[field];
      if (before !== value)
        lines.push(`${section}.${field}: ${before === undefined ? '(unset)' : JSON.stringify(before)} → ${JSON.stringify(value)}`);
    }
  return lines;
}
let confirmed = '';
byId('config-cancel').onclick = () => byId<HTMLDialogElement>('config-dialog').close();
byId<HTMLFormElement>('config-form').onsubmit = async (event) => {
  event.preventDefault();
  const head: Record<string, number> = {};
  const fleetConfig: Record<string, string> = {};
  if (input('cfg-threshold').value !== '') head.unknownThreshold = Number(input('cfg-threshold').value);
  if (input('cfg-retrain').value !== '') head.retrainAfterLabels = Number(input('cfg-retrain').value);
  const apply = byId<HTMLSelectElement>('cfg-apply').value;
  if (apply !== '') fleetConfig.apply = apply;
  const body: Record<string, unknown> = {};
  if (Object.keys(head).length) body.head = head;
  if (Object.keys(fleetConfig).length) body.fleet = fleetConfig;
  const id = configDevice;
  const send = byId<HTMLButtonElement>('config-send');
  // First the diff, then (same body, second press) the push.
  const key = JSON.stringify(body);
  if (confirmed !== key) {
    const diff = configDiff(devices.find((x) => x.id === id)?.config ?? {}, body as Record<string, Record<string, unknown>>);
    byId('config-diff').replaceChildren(...(diff.length ? diff : ['no change']).map((line) => el('li', { textContent: line })));
    confirmed = diff.length ? key : '';
    setText(send, diff.length ? `push ${diff.length} change${diff.length === 1 ? '' : 's'}` : 'show changes');
    return;
  }
  send.disabled = true;
  try {
    await api.request('POST', deviceApi(id, 'config'), body);
    byId<HTMLDialogElement>('config-dialog').close();
    status(`${id} applied the config ${JSON.stringify(body)}`);
    await refresh();
  } catch (e) {
    byId('config-error').textContent = message(e);
  } finally {
    send.disabled = false;
  }
};

byId('merge').onclick = () =>
  act('fleet', 'merging the device heads', async () => {
    const tag = byId<HTMLInputElement>('merge-tag').value.trim();
    const r = await api.request<MergeJson>('POST', '/api/merge', tag ? { tag } : {});
    const merged = `fleet head v${r.version} from ${r.merged.join(', ')}`;
    if (r.status === 'released-to-tag') return `${merged}: released to the devices tagged ${tag}`;
    return r.status === 'released' ? `${merged}: released` : `${merged}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`;
  });
byId<HTMLFormElement>('update-form').onsubmit = (event) => {
  event.preventDefault();
  const bundle = byId<HTMLInputElement>('update-bundle').value.trim();
  const tag = byId<HTMLInputElement>('update-tag').value.trim();
  void act('fleet', `pushing ${bundle}`, async () => {
    // Answered once it has begun; its stages show under Rollout as they go.
    const r = await api.request<{ progress: RolloutJson }>('POST', '/api/agent-update', { bundle, wait: false, ...(tag ? { tag } : {}) });
    return `agent update ${r.progress.subject} started${tag ? ` for the devices tagged ${tag}` : ''}`;
  });
};
byId('rollback').onclick = () =>
  act('fleet', 'rolling back', async () => {
    const r = await api.request<RollbackJson>('POST', '/api/rollback', {});
    return `fleet head v${r.version} restores v${r.restored} in place of v${r.replaced}`;
  });

function connect(): void {
  const live = byId('live');
  const events = new EventSource(`/api/events?token=${encodeURIComponent(api.token)}`);
  events.onopen = () => {
    live.className = 'on';
    live.textContent = 'live';
    void refresh();
  };
  // EventSource retries by itself, unless the server refused the stream (a wrong token).
  events.onerror = () => {
    live.className = 'off';
    live.textContent = events.readyState === EventSource.CLOSED ? 'disconnected: reload the page' : 'reconnecting…';
  };
  events.addEventListener('change', soon);
  events.addEventListener('changes', soon);
  events.addEventListener('head', soon);
}

if (!api.token) status('no API token: open the URL the console printed (http://host:port/?token=...)', true);
else {
  void refresh();
  connect();
  startConfigEditor({ api, status, refresh });
}
setInterval(() => {
  refreshAges();
  if (devices.length) renderChart();
}, 5000);
