// A fleet of thousands through mosquitto: --devices simulated devices (the agent's own broker link and
// durable outbox, publishing the agent's state with vitals, retained, with a last will) join a console
// on an external mosquitto; then mosquitto restarts and every device reconnects with backoff and jitter.
// Measures the time until all are online in the registry, and the web API's response times for the
// page (one 50-row page, sorted and filtered; the whole table) while the storm goes on, and how many
// event-stream messages the page got for how many console events.
//
//   npm run bench -- fleet-scale [--devices 2000] [--json]

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DeviceCredentials } from '../console/credentials.js';
import { writeMosquittoConfig } from '../console/mosquitto.js';
import { FleetConsole } from '../console/service.js';
import { startConsoleWeb } from '../console/web.js';
import { silentLogger } from '../core/log.js';
import { until } from '../core/wait.js';
import { readVitals } from '../devices/vitals.js';
import { DeviceLink } from '../runtime/sync/link.js';
import { Outbox } from '../runtime/sync/outbox.js';
import { PROTOCOL_VERSION, topics } from '../runtime/sync/protocol.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '2000' }, json: { type: 'boolean', default: false } } });
const n = Number(values.devices);
const dir = mkdtempSync(join(tmpdir(), 'edgetune-bench-scale-'));
const fleetId = 'bench';
const consoleLogin = { username: 'console', password: 'bench-console-secret' };

const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as AddressInfo).port;
    s.close(() => resolve(p));
  });
});

let started = performance.now();
mkdirSync(join(dir, 'console'), { recursive: true });
const credentials = new DeviceCredentials(join(dir, 'console', 'registry.db'));
const ids = Array.from({ length: n }, (_, i) => `pi-${String(i).padStart(4, '0')}`);
const passwords = ids.map((id) => credentials.issue(id));
credentials.close();
const issueMs = performance.now() - started;

let mosquitto: ChildProcess;
async function startMosquitto(): Promise<void> {
  const creds = new DeviceCredentials(join(dir, 'console', 'registry.db'));
  const files = writeMosquittoConfig(join(dir, 'mosquitto'), {
    fleet: fleetId,
    port,
    credentials: creds,
    console: consoleLogin,
    ...(process.getuid?.() === 0 ? { user: 'root' } : {}),
  });
  creds.close();
  mosquitto = spawn('/usr/sbin/mosquitto', ['-c', files.config], { stdio: ['ignore', 'ignore', 'ignore'] });
  await new Promise((r) => setTimeout(r, 300));
}
mkdirSync(join(dir, 'mosquitto'), { recursive: true });
await startMosquitto();

const fleet = await FleetConsole.start({
  dir: join(dir, 'console'),
  fleet: fleetId,
  externalBroker: { url: `mqtt://127.0.0.1:${port}`, ...consoleLogin, protocolVersion: 5 },
  log: silentLogger,
});
const web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(dir, 'console', 'web-token') });

// The page's event stream, counted.
let sseMessages = 0;
const sse = request(`${web.origin}/api/events?token=${web.token}`, (res) => {
  res.on('data', (chunk: Buffer) => (sseMessages += (chunk.toString().match(/^event: /gm) ?? []).length));
});
sse.end();

const vitals = readVitals({ thermalFile: '/sys/class/thermal/thermal_zone0/temp', dataDir: dir });
const links = ids.map((id, i) => {
  const stateTopic = topics.device(fleetId, id, 'state');
  const outbox = new Outbox(':memory:');
  const state = () =>
    Buffer.from(
      JSON.stringify({
        protocol: PROTOCOL_VERSION,
        device: id,
        online: true,
        backbone: 'bench',
        dim: 8,
        release: '0.1.0',
        updatable: true,
        vitals: { ...vitals, cpuTempC: 40 + (i % 40) },
        uptimeSeconds: i,
        sources: [],
        at: new Date().toISOString(),
      }),
    );
  const link: DeviceLink = new DeviceLink(outbox, {
    url: `mqtt://127.0.0.1:${port}`,
    username: id,
    password: passwords[i]!,
    will: { topic: stateTopic, payload: JSON.stringify({ protocol: PROTOCOL_VERSION, device: id, online: false }) },
    onConnect: async () => {
      await link.publishNow(stateTopic, state(), { retain: true });
    },
  });
  return link;
});

started = performance.now();
for (const link of links) link.start();
let lastReport = 0;
const onlineSince = (t: number) => {
  const online = fleet.devices().filter((d) => d.online && d.lastSeen !== null && d.lastSeen >= t).length;
  if (Date.now() - lastReport > 10_000) {
    lastReport = Date.now();
    process.stderr.write(`${new Date().toISOString()} ${online} of ${n} online; ${links.filter((l) => l.connected).length} links up\n`);
  }
  return online;
};
const t0 = Date.now();
await until(`${n} devices online`, () => onlineSince(t0) === n, 300_000, 1000);
const connectMs = performance.now() - started;

let requestErrors = 0;
async function timed(path: string): Promise<number> {
  const t = performance.now();
  // A kept-alive socket the server has just closed fails once; the page's fetch would retry too.
  const res = await fetch(`${web.origin}${path}`, { headers: { authorization: `Bearer ${web.token}` } }).catch(() => {
    requestErrors++;
    return fetch(`${web.origin}${path}`, { headers: { authorization: `Bearer ${web.token}` } });
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return performance.now() - t;
}
const pagePath = '/api/devices?limit=50&sort=cpuTempC&order=desc&q=status:online';
const quiet = { page: [] as number[], all: [] as number[] };
for (let i = 0; i < 5; i++) {
  quiet.page.push(await timed(pagePath));
  quiet.all.push(await timed('/api/devices?history=0'));
}

// The storm: mosquitto restarts (no persistence); every device reconnects with its backoff.
const sseBefore = sseMessages;
mosquitto!.kill('SIGTERM');
await once(mosquitto!, 'close');
const restartAt = Date.now();
started = performance.now();
await startMosquitto();
const storm = { page: [] as number[] };
let allBack = false;
const sampling = (async () => {
  while (!allBack) {
    storm.page.push(await timed(pagePath));
    await new Promise((r) => setTimeout(r, 200));
  }
})();
await until(`${n} devices back online after the restart`, () => onlineSince(restartAt) === n, 300_000, 1000);
const reconnectMs = performance.now() - started;
allBack = true;
await sampling;
const sseDuringStorm = sseMessages - sseBefore;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const max = (xs: number[]) => Math.max(...xs);
const report = {
  devices: n,
  issueLoginsMs: issueMs,
  firstConnectMs: connectMs,
  reconnectAfterBrokerRestartMs: reconnectMs,
  pageQuietMedianMs: median(quiet.page),
  fullTableQuietMedianMs: median(quiet.all),
  pageDuringStormMedianMs: median(storm.page),
  pageDuringStormMaxMs: max(storm.page),
  pageSamplesDuringStorm: storm.page.length,
  sseMessagesDuringStorm: sseDuringStorm,
  requestErrors,
};

sse.destroy();
await Promise.all(links.map((l) => l.stop()));
await web.close();
await fleet.stop();
mosquitto!.kill('SIGTERM');
await once(mosquitto!, 'close');
rmSync(dir, { recursive: true, force: true });

if (values.json) console.log(JSON.stringify(report, null, 2));
else
  printTable(
    `${n} simulated devices through mosquitto (the agent's broker link, state with vitals; one machine, 2 shared cores)`,
    ['measure', 'value'],
    [
      [`issue ${n} logins (scrypt hash each)`, `${(issueMs / 1000).toFixed(1)} s`],
      [`all ${n} online in the registry, first start`, `${(connectMs / 1000).toFixed(1)} s`],
      [`all ${n} online again after a mosquitto restart`, `${(reconnectMs / 1000).toFixed(1)} s`],
      ['one 50-row page (sorted by CPU temperature, filtered), quiet', `${median(quiet.page).toFixed(0)} ms median`],
      [`the whole ${n}-row table, quiet`, `${median(quiet.all).toFixed(0)} ms median`],
      [
        'one 50-row page during the reconnect storm',
        `${median(storm.page).toFixed(0)} ms median, ${max(storm.page).toFixed(0)} ms max (${storm.page.length} requests)`,
      ],
      ['event-stream messages to the page during the storm', `${sseDuringStorm} (for ${n}+ device state changes)`],
      ['page requests that failed once on a closed keep-alive socket (retried)', String(requestErrors)],
    ],
  );
