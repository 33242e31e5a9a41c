// The fleet console's web UI and JSON API: one page (devices, accuracy chart, fleet heads, problems,
// actions) and the routes it calls, every one behind an API token; live updates as Server-Sent Events.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute } from 'node:path';
import { writeDurably } from '../core/durable.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { pushedConfig } from '../agent/pushed-config.js';
import { HttpError, listen, readJson, requireToken, sendJson } from '../core/json-api.js';
import { ConsoleError, type FleetConsole } from './service.js';
import { type BuiltPage, loadPage, sendPage } from '../core/web-page.js';
import type { DeviceJson, DevicesJson, FleetJson } from './api-types.js';
import { parseTableQuery, tablePage } from './device-table.js';
import { datasetTarGz, deviceHeadFile, fleetHeadFile } from './exports.js';
import { LogFollows } from './log-follow.js';
import { parseScope, setFleetConfig } from './fleet-config.js';
import { configFields } from './config-fields.js';
import { fleetAccuracy } from './fleet-accuracy.js';
import { SettingError, settingsToValues } from './config-settings.js';
import type { DeviceView } from './device-view.js';

export interface ConsoleWebOptions {
  /** Bind address (default 127.0.0.1: put a TLS proxy in front to serve a network). */
  host?: string;
  port: number;
  /** Where the API token lives; created with mode 0600 on first run. */
  tokenFile: string;
  /** Seconds between heartbeats on the event stream (default 15), which keep proxies from closing it. */
  heartbeatSeconds?: number;
  log?: Logger;
}

export interface ConsoleWeb {
  /** The page with its token, as the console prints it: `http://host:port/?token=...`. */
  url: string;
  /** The server's base URL, for API clients (`${origin}/api/devices`). */
  origin: string;
  token: string;
  close(): Promise<void>;
}

/** Accuracy points per device in /api/devices (the newest ones): enough for the chart, and a
 * 200-device fleet's reply stays around a megabyte. `?history=N` asks for up to MAX_HISTORY. */
const HISTORY_PER_DEVICE = 200;
const MAX_HISTORY = 5000;

const TOKEN_BYTES = 32;

/** Reads the API token, or creates one (mode 0600). A token file others can read is refused. */
export function loadOrCreateApiToken(file: string): { token: string; created: boolean } {
  if (!existsSync(file)) {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    writeDurably(file, new TextEncoder().encode(`${token}\n`), { mode: 0o600 });
    return { token, created: true };
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new ConsoleError(
      'CONSOLE_TOKEN_FILE_MODE',
      `${file}: the API token file is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`,
    );
  }
  const token = readFileSync(file, 'utf8').trim();
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(token)) {
    throw new ConsoleError(
      'CONSOLE_TOKEN_FILE_BAD',
      `${file}: expected one API token of 16-256 letters, digits, "-" or "_"; delete the file to have a new one created`,
    );
  }
  return { token, created: false };
}

export async function startConsoleWeb(console_: FleetConsole, options: ConsoleWebOptions): Promise<ConsoleWeb> {
  const log = options.log ?? silentLogger;
  const host = options.host ?? '127.0.0.1';
  const { token, created } = loadOrCreateApiToken(options.tokenFile);
  const page = await loadPage('console');
  if (created) log.info('console API token created', { file: options.tokenFile });
  const events = new EventStream(console_, (options.heartbeatSeconds ?? 15) * 1000);
  const logs = new LogFollows(console_);
  let server;
  try {
    server = await listen(
      (req, res) => handle(console_, { token, events, logs, page }, req, res),
      { host, port: options.port },
      (fields) =>
        log.error('console web request failed', { ...fields, url: typeof fields.url === 'string' ? withoutToken(fields.url) : fields.url }),
    );
  } catch (err) {
    events.close();
    logs.close();
    throw err;
  }
  const url = `${server.url}/?token=${token}`;
  log.info('console web listening', { url: `${server.url}/` });
  if (!isLoopback(host))
    log.warn(
      'the console web UI is served over plain HTTP beyond this machine: the API token travels in clear text; put a TLS proxy in front',
      { host },
    );
  return {
    url,
    origin: server.url,
    token,
    close: async () => {
      events.close();
      logs.close();
      await server.close();
    },
  };
}

/** The optional "canaries" field of a request body: device ids. */
function canariesField(body: Record<string, unknown>): string[] | undefined {
  const canaries = body.canaries;
  if (canaries === undefined) return undefined;
  if (!(Array.isArray(canaries) && canaries.every((c) => typeof c === 'string')))
    throw new HttpError('BAD_REQUEST', 'field "canaries" must be an array of device ids');
  return canaries as string[];
}

/** `values` (nested, as the agent's config), or `settings` ({"head.unknownThreshold": "0.7"}: each value
 * JSON or else text, as the CLI takes them). */
function configValues(body: Record<string, unknown>): unknown {
  if (body.settings === undefined) return body.values;
  const settings = body.settings;
  if (typeof settings !== 'object' || settings === null || !Object.values(settings).every((v) => typeof v === 'string'))
    throw new HttpError('BAD_REQUEST', 'field "settings" must map SECTION.FIELD to a value as text, e.g. {"head.unknownThreshold": "0.7"}');
  try {
    return settingsToValues(Object.entries(settings as Record<string, string>).map(([field, value]) => ({ field, value })));
  } catch (err) {
    if (err instanceof SettingError) throw new HttpError('BAD_REQUEST', `field "settings": ${err.message}`);
    throw err;
  }
}

/** The optional "tag" field: only the devices with this tag. */
function tagField(body: Record<string, unknown>): { tag?: string } {
  if (body.tag === undefined) return {};
  if (typeof body.tag !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(body.tag))
    throw new HttpError('BAD_REQUEST', 'field "tag" must be a tag (1-64 letters, digits, ".", "_", ":" or "-")');
  return { tag: body.tag };
}

function optionalPositive(body: Record<string, unknown>, field: string): Record<string, number> {
  const value = body[field];
  if (value === undefined) return {};
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new HttpError('BAD_REQUEST', `field "${field}" must be a positive integer (milliseconds)`);
  return { [field]: value };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** A request URL for the log, with its ?token= (EventSource sends it there) blanked out. */
function withoutToken(url: string): string {
  return url.replace(/([?&]token=)[^&]*/g, '$1***');
}

interface Context {
  token: string;
  events: EventStream;
  logs: LogFollows;
  page: BuiltPage;
}

const DEVICE_GET = /^\/api\/devices\/([A-Za-z0-9._-]{1,64})\/(logs|dataset\.tar\.gz|samples)$/;
const HEAD_FILE = /^\/api\/heads\/(device|fleet)\/([A-Za-z0-9._-]{1,64})$/;

function sendFile(res: ServerResponse, file: { name: string; bytes: Buffer }, type: string): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': file.bytes.length,
    'content-disposition': `attachment; filename="${file.name}"`,
    'cache-control': 'no-store',
  });
  res.end(file.bytes);
}

const DEVICE_ROUTE = /^\/api\/devices\/([A-Za-z0-9._-]{1,64})\/(push-head|train|config)$/;

async function handle(console_: FleetConsole, ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://console');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (method === 'GET' && path === '/') return sendPage(res, ctx.page);
  if (method === 'GET' && path === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (!path.startsWith('/api/')) throw new HttpError('NOT_FOUND', `no route ${method} ${path}`);
  // EventSource cannot send headers, so reads may carry the token in the URL; a write never does (a URL
  // ends up in logs, history and Referer headers).
  requireToken(req, ctx.token, method === 'GET' ? url : undefined);

  if (method === 'GET' && path === '/api/devices') {
    const query = parseTableQuery(url.searchParams, (m) => {
      throw new HttpError('BAD_REQUEST', m);
    });
    const page = tablePage(console_.devices(), query);
    const reply: DevicesJson = {
      devices: withHistory(console_, page.rows, historyParam(url)),
      total: page.total,
      offset: query.offset,
      limit: query.limit,
      counts: page.counts,
    };
    return sendJson(res, 200, reply);
  }
  if (method === 'GET' && path === '/api/fleet') return sendJson(res, 200, fleetView(console_));
  if (method === 'GET' && path === '/api/fleet/accuracy') {
    const asked = url.searchParams.get('version');
    const version = asked === null ? (console_.registry.releasedFleetHeads()[0]?.version ?? null) : Number(asked);
    if (version !== null && !(Number.isInteger(version) && version > 0))
      throw new HttpError('BAD_REQUEST', 'query parameter "version" must be a positive integer');
    return sendJson(res, 200, fleetAccuracy(console_.devices(), version));
  }
  if (method === 'GET' && path === '/api/events') return ctx.events.add(res);
  if (method === 'POST' && path === '/api/merge') {
    const body = await readJson(req);
    const canaries = canariesField(body);
    return sendJson(res, 200, await console_.mergeAndRollout({ ...(canaries ? { canaries } : {}), ...tagField(body) }));
  }
  if (method === 'GET' && path === '/api/config/fields') return sendJson(res, 200, { fields: configFields() });
  if (method === 'GET' && path === '/api/config')
    return sendJson(res, 200, { layers: Object.fromEntries(console_.registry.configLayers()) });
  if (method === 'POST' && path === '/api/config') {
    const body = await readJson(req);
    if (typeof body.scope !== 'string') throw new HttpError('BAD_REQUEST', 'field "scope" must be "fleet", "tag:NAME" or "device:ID"');
    const targets = await setFleetConfig(console_, parseScope(body.scope), configValues(body), body.dryRun === true);
    if (body.dryRun !== true) console_.emit('change', { type: 'config' });
    return sendJson(res, 200, { scope: body.scope, dryRun: body.dryRun === true, targets });
  }
  if (method === 'POST' && path === '/api/merge-policy') {
    const body = await readJson(req);
    const settings = { ...optionalPositive(body, 'afterHeads'), ...optionalPositive(body, 'everyMs') };
    console_.policy.update(settings);
    return sendJson(res, 200, console_.policy.settings);
  }
  if (method === 'POST' && path === '/api/rollback') return sendJson(res, 200, await console_.rollouts.rollback());
  if (method === 'POST' && path === '/api/agent-update') {
    const body = await readJson(req);
    if (typeof body.bundle !== 'string' || !isAbsolute(body.bundle))
      throw new HttpError('BAD_REQUEST', 'field "bundle" must be the absolute path of a bundle file on the console machine');
    const canaries = canariesField(body);
    const options = {
      ...(canaries ? { canaries } : {}),
      ...tagField(body),
      ...optionalPositive(body, 'stageTimeoutMs'),
    };
    if (body.wait !== false) return sendJson(res, 200, await console_.pushAgentUpdate(body.bundle, options));
    // Answer once it has begun (or at once with its refusal); progress is at GET /api/rollouts.
    const started = await new Promise<unknown>((resolve, reject) => {
      console_.pushAgentUpdate(body.bundle as string, { ...options, started: resolve }).catch(reject);
    });
    return sendJson(res, 202, { progress: started });
  }
  if (method === 'GET' && path === '/api/rollouts') {
    const [current, ...recent] = console_.progress.current ? console_.progress.list() : [undefined, ...console_.progress.list()];
    return sendJson(res, 200, { current: current ?? null, recent });
  }

  const heads = HEAD_FILE.exec(path);
  if (method === 'GET' && heads) {
    const [, kind, name] = heads as unknown as [string, 'device' | 'fleet', string];
    const version = url.searchParams.get('version');
    const parsed = kind === 'fleet' ? Number(name) : version === null ? undefined : Number(version);
    if (parsed !== undefined && !(Number.isInteger(parsed) && parsed > 0))
      throw new HttpError(
        'BAD_REQUEST',
        kind === 'fleet' ? 'a fleet head version is a positive integer' : 'query parameter "version" must be a positive integer',
      );
    const file =
      kind === 'fleet' ? fleetHeadFile(console_.registry, console_.keys, parsed!) : deviceHeadFile(console_.registry, name, parsed);
    return sendFile(res, file, 'application/octet-stream');
  }
  const get = DEVICE_GET.exec(path);
  if (method === 'GET' && get) {
    const [, device, what] = get as unknown as [string, string, 'logs' | 'dataset.tar.gz' | 'samples'];
    requireOnlineDevice(console_, device);
    if (what === 'logs') return ctx.logs.add(device, res);
    const page = (args: Record<string, unknown>) => console_.command(device, 'samples', args);
    if (what === 'samples') {
      const offset = Number(url.searchParams.get('offset') ?? 0);
      if (!Number.isInteger(offset) || offset < 0) throw new HttpError('BAD_REQUEST', 'query parameter "offset" must be an integer >= 0');
      return sendJson(res, 200, await page({ offset, limit: 200, maxBytes: 1024 * 1024 }));
    }
    const archive = await datasetTarGz(device, page);
    return sendFile(res, archive, 'application/gzip');
  }
  const tags = /^\/api\/devices\/([A-Za-z0-9._-]{1,64})\/tags$/.exec(path);
  if (method === 'POST' && tags) {
    const body = await readJson(req);
    const list = body.tags;
    if (!Array.isArray(list) || !list.every((t) => typeof t === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(t)))
      throw new HttpError('BAD_REQUEST', 'field "tags" must be an array of tags (1-64 letters, digits, ".", "_", ":" or "-")');
    console_.registry.setTags(tags[1]!, [...new Set(list as string[])].sort());
    console_.emit('change', { type: 'tags', device: tags[1] });
    return sendJson(res, 200, { device: tags[1], tags: console_.registry.allTags().get(tags[1]!) ?? [] });
  }

  if (method === 'GET' && path === '/api/classes') return sendJson(res, 200, { classes: console_.classView() });
  const classAction = /^\/api\/classes\/(accept|refuse)$/.exec(path)?.[1];
  if (method === 'POST' && classAction) {
    const { label } = await readJson(req);
    if (typeof label !== 'string') throw new HttpError('BAD_REQUEST', 'field "label" must be the class name');
    return sendJson(res, 200, { classes: console_.decideClass(label, classAction === 'accept' ? 'accepted' : 'refused') });
  }
  const held = /^\/api\/fleet\/(\d{1,9})\/release$/.exec(path)?.[1];
  if (method === 'POST' && held) return sendJson(res, 200, await console_.rollouts.releaseHeld(Number(held)));
  const quarantined = /^\/api\/devices\/([A-Za-z0-9._-]{1,64})\/release$/.exec(path)?.[1];
  if (method === 'POST' && quarantined) {
    if (!console_.releaseDevice(quarantined)) throw new HttpError('DEVICE_NOT_QUARANTINED', `device "${quarantined}" is not quarantined`);
    return sendJson(res, 200, { device: quarantined, quarantined: false });
  }

  const match = DEVICE_ROUTE.exec(path);
  if (method === 'POST' && match) {
    const [, device, action] = match as unknown as [string, string, 'push-head' | 'train' | 'config'];
    // Validate the body before anything reaches the device: a 400 names the field.
    const body = await readJson(req);
    const config = action === 'config' ? pushedConfig.parse(body, 'config body') : undefined;
    requireOnlineDevice(console_, device);
    if (action === 'push-head') return sendJson(res, 200, await console_.rollouts.pushTo(device));
    if (action === 'train') return sendJson(res, 200, await console_.command(device, 'train'));
    return sendJson(res, 200, await console_.command(device, 'config', config));
  }
  throw new HttpError('NOT_FOUND', `no route ${method} ${path}`);
}

function requireOnlineDevice(console_: FleetConsole, device: string): void {
  const row = console_.registry.device(device);
  if (!row) throw new HttpError('DEVICE_NOT_FOUND', `no device "${device}" in fleet "${console_.fleet}"`);
  // A command to an offline device would only time out: say so now.
  if (!row.online)
    throw new HttpError('DEVICE_OFFLINE', `device "${device}" is offline; it gets the released fleet head when it reconnects`);
}

function historyParam(url: URL): number {
  const text = url.searchParams.get('history');
  if (text === null) return HISTORY_PER_DEVICE;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > MAX_HISTORY)
    throw new HttpError('BAD_REQUEST', `query parameter "history" must be an integer from 0 to ${MAX_HISTORY}`);
  return n;
}

function withHistory(console_: FleetConsole, rows: DeviceView[], perDevice: number): DeviceJson[] {
  const points =
    perDevice > 0
      ? console_.registry.latestAccuracy(
          perDevice,
          rows.map((r) => r.id),
        )
      : new Map<string, DeviceJson['accuracy']>();
  return rows.map((view) => ({ ...view, accuracy: points.get(view.id) ?? [] }));
}

function fleetView(console_: FleetConsole): FleetJson {
  const heads = console_.registry.fleetHeads(50).map(({ message: _message, ...head }) => head);
  return {
    fleet: console_.fleet,
    broker: console_.brokerUrl,
    canaries: console_.canaries,
    released: heads.find((h) => h.status === 'released')?.version ?? null,
    heads,
    quarantined: console_.quarantine.list(),
    problems: console_.registry.problems(50),
    policy: { ...console_.policy.settings, newHeads: console_.policy.newHeads(), verdicts: console_.registry.verdicts(30) },
  };
}

/** Server-Sent Events: a `change` or `head` message per console event, and a heartbeat comment. Events
 * are sent at most every COALESCE_MS: a quiet fleet's come one by one as before; when more than
 * MAX_SINGLE arrive in one window (2,000 devices reconnecting), one `changes` message says how many,
 * of which kinds and devices, and the page fetches once. */
const COALESCE_MS = 250;
const MAX_SINGLE = 20;

class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private readonly timer: NodeJS.Timeout;
  private pending: { event: string; data: unknown }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** Messages written and console events seen, for the fleet bench. */
  readonly stats = { events: 0, messages: 0 };
  private readonly onChange = (event: unknown) => this.queue('change', event);
  private readonly onHead = (event: unknown) => this.queue('head', event);

  constructor(
    private readonly console_: FleetConsole,
    heartbeatMs: number,
  ) {
    console_.on('change', this.onChange);
    console_.on('head', this.onHead);
    this.timer = setInterval(() => this.write(`: heartbeat ${new Date().toISOString()}\n\n`), heartbeatMs);
    this.timer.unref();
  }

  add(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // A dropped stream reconnects after 2 s; the page re-fetches on every (re)connect.
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ fleet: this.console_.fleet })}\n\n`);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  close(): void {
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    this.console_.off('change', this.onChange);
    this.console_.off('head', this.onHead);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private queue(event: string, data: unknown): void {
    this.stats.events++;
    if (this.clients.size === 0) return;
    this.pending.push({ event, data: data ?? {} });
    this.flushTimer ??= setTimeout(() => this.flush(), COALESCE_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length <= MAX_SINGLE) {
      for (const { event, data } of batch) this.broadcast(event, data);
      return;
    }
    const types = new Map<string, number>();
    const devices = new Set<string>();
    for (const { data } of batch) {
      const { type, device } = data as { type?: string; device?: string };
      types.set(type ?? 'head', (types.get(type ?? 'head') ?? 0) + 1);
      if (device) devices.add(device);
    }
    this.broadcast('changes', {
      count: batch.length,
      types: Object.fromEntries(types),
      devices: [...devices].slice(0, 100),
      moreDevices: Math.max(0, devices.size - 100),
    });
  }

  private broadcast(event: string, data: unknown): void {
    this.stats.messages++;
    this.write(`event: ${event}\ndata: ${JSON.stringify(data ?? {})}\n\n`);
  }

  private write(text: string): void {
    for (const res of this.clients) res.write(text);
  }
}
