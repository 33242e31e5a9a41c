// A fleet of thousands through mosquitto: --devices simulated devices (bench/fleet-sim-devices.ts, in
// a process of their own: the agent's broker link and outbox, the agent's state with vitals, retained,
// with a last will) join a console on an external mosquitto; then mosquitto restarts and every device
// reconnects with backoff and jitter. Measured per console mode, interleaved in one run (immediate,
// batched, immediate, batched: the machine is shared, so figures drift; compare within a run):
// "immediate" writes each device message as it arrives and rebuilds the device table per request (the
// console before batching); "batched" writes a run of states in one transaction and keeps the table
// built. Measures the time until all are online in the registry again, and the web API's response
// times for the page (one 50-row page, sorted and filtered; the whole table) while the storm goes on.
//
//   npm run bench -- fleet-scale [--devices 2000] [--rounds 2] [--json]

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeviceCredentials } from '../console/credentials.js';
import { writeMosquittoConfig } from '../console/mosquitto.js';
import { FleetConsole } from '../console/service.js';
import { startConsoleWeb } from '../console/web.js';
import { silentLogger } from '../core/log.js';
import { until } from '../core/wait.js';
import { freePort } from './free-port.js';
import { printTable } from './table.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const n = Number(values.devices);
const rounds = Number(values.rounds);
const dir = mkdtempSync(join(tmpdir(), 'edgetune-bench-scale-'));
const fleetId = 'bench';
const consoleLogin = { username: 'console', password: 'bench-console-secret' };
type Mode = 'immediate' | 'batched';

const port = await freePort();

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
async function stopMosquitto(): Promise<void> {
  mosquitto.kill('SIGTERM');
  await once(mosquitto, 'close');
}
mkdirSync(join(dir, 'mosquitto'), { recursive: true });
await startMosquitto();

async function startConsole(mode: Mode) {
  const fleet = await FleetConsole.start({
    dir: join(dir, 'console'),
    fleet: fleetId,
    externalBroker: { url: `mqtt://127.0.0.1:${port}`, ...consoleLogin, protocolVersion: 5 },
    ingest: mode,
    log: silentLogger,
  });
  const web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(dir, 'console', 'web-token') });
  // The page's event stream, counted.
  const sse = { messages: 0 };
  const stream = request(`${web.origin}/api/events?token=${web.token}`, (res) => {
    res.on('data', (chunk: Buffer) => (sse.messages += (chunk.toString().match(/^event: /gm) ?? []).length));
  });
  stream.on('error', () => {});
  stream.end();
  return {
    fleet,
    web,
    sse,
    close: async () => {
      stream.destroy();
      await web.close();
      await fleet.stop();
    },
  };
}
type Running = Awaited<ReturnType<typeof startConsole>>;

let lastReport = 0;
/** Devices online in the registry whose last message came after `t` (read the same way in both modes). */
function onlineSince(running: Running, t: number): number {
  const online = running.fleet.registry.devices().filter((d) => d.online && d.lastSeen >= t).length;
  if (Date.now() - lastReport > 10_000) {
    lastReport = Date.now();
    process.stderr.write(`${new Date().toISOString()} ${online} of ${n} online\n`);
  }
  return online;
}

async function timed(running: Running, path: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${running.web.origin}${path}`, { headers: { authorization: `Bearer ${running.web.token}` } });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return performance.now() - t;
}
const pagePath = '/api/devices?limit=50&sort=cpuTempC&order=desc&q=status:online';
const tablePath = '/api/devices?history=0';

// The devices, in their own process.
const simConfig = join(dir, 'devices.json');
writeFileSync(
  simConfig,
  JSON.stringify({ url: `mqtt://127.0.0.1:${port}`, fleet: fleetId, devices: ids.map((id, i) => ({ id, password: passwords[i] })) }),
);
let running = await startConsole('immediate');
started = performance.now();
const t0 = Date.now();
const simulator = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'fleet-sim-devices.js'), simConfig], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
await until(`${n} devices online`, () => onlineSince(running, t0) === n, 300_000, 500);
const connectMs = performance.now() - started;

interface Round {
  mode: Mode;
  reconnectMs: number;
  quietPage: number[];
  quietTable: number[];
  stormPage: number[];
  stormTable: number[];
  sse: number;
  transactions: number | null;
}
const results: Round[] = [];
const modes: Mode[] = Array.from({ length: rounds }, () => ['immediate', 'batched'] as Mode[]).flat();
for (const [i, mode] of modes.entries()) {
  if (i > 0) {
    await running.close();
    running = await startConsole(mode);
  }
  const round: Round = { mode, reconnectMs: 0, quietPage: [], quietTable: [], stormPage: [], stormTable: [], sse: 0, transactions: null };
  for (let k = 0; k < 5; k++) {
    round.quietPage.push(await timed(running, pagePath));
    round.quietTable.push(await timed(running, tablePath));
  }
  // The storm: mosquitto restarts (no persistence); every device reconnects with its backoff.
  const sseBefore = running.sse.messages;
  const transactionsBefore = running.fleet.ingest?.stats.transactions ?? 0;
  await stopMosquitto();
  const restartAt = Date.now();
  started = performance.now();
  await startMosquitto();
  let allBack = false;
  const sampling = (async () => {
    // As often as the page fetches in a storm (at most four times a second), every fourth the whole table.
    for (let k = 0; !allBack; k++) {
      const took = k % 4 === 3 ? await timed(running, tablePath) : await timed(running, pagePath);
      (k % 4 === 3 ? round.stormTable : round.stormPage).push(took);
      await new Promise((r) => setTimeout(r, Math.max(0, 250 - took)));
    }
  })();
  await until(`${n} devices back online after the restart`, () => onlineSince(running, restartAt) === n, 300_000, 200);
  round.reconnectMs = performance.now() - started;
  allBack = true;
  await sampling;
  round.sse = running.sse.messages - sseBefore;
  if (running.fleet.ingest) round.transactions = running.fleet.ingest.stats.transactions - transactionsBefore;
  results.push(round);
  process.stderr.write(`${mode}: all back in ${(round.reconnectMs / 1000).toFixed(1)} s\n`);
}

simulator.kill('SIGTERM');
await once(simulator, 'close');
await running.close();
await stopMosquitto();
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const max = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);
const ms = (x: number) => `${x.toFixed(0)} ms`;
const byMode = (mode: Mode) => results.filter((r) => r.mode === mode);
const pooled = (mode: Mode, key: 'quietPage' | 'quietTable' | 'stormPage' | 'stormTable') => byMode(mode).flatMap((r) => r[key]);
const report = {
  devices: n,
  issueLoginsMs: issueMs,
  firstConnectMs: connectMs,
  rounds: results,
  summary: Object.fromEntries(
    (['immediate', 'batched'] as Mode[]).map((mode) => [
      mode,
      {
        reconnectMs: byMode(mode).map((r) => r.reconnectMs),
        pageQuietMedianMs: median(pooled(mode, 'quietPage')),
        tableQuietMedianMs: median(pooled(mode, 'quietTable')),
        pageStormMedianMs: median(pooled(mode, 'stormPage')),
        pageStormMaxMs: max(pooled(mode, 'stormPage')),
        tableStormMedianMs: median(pooled(mode, 'stormTable')),
        tableStormMaxMs: max(pooled(mode, 'stormTable')),
      },
    ]),
  ),
};

if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    `${n} simulated devices through mosquitto (their own process; one machine, 2 shared cores)`,
    ['measure', 'value'],
    [
      [`issue ${n} logins`, `${(issueMs / 1000).toFixed(1)} s`],
      [`all ${n} online in the registry, first start`, `${(connectMs / 1000).toFixed(1)} s`],
    ],
  );
  printTable(
    `each mosquitto restart, in run order (page: 50 rows sorted by CPU temperature, filtered; table: all ${n} rows)`,
    [
      'console',
      'all online again',
      'page quiet',
      'page in the storm: median / max (n)',
      'table in the storm: median / max',
      'events to the page',
      'write transactions',
    ],
    results.map((r) => [
      r.mode,
      `${(r.reconnectMs / 1000).toFixed(1)} s`,
      ms(median(r.quietPage)),
      `${ms(median(r.stormPage))} / ${ms(max(r.stormPage))} (${r.stormPage.length})`,
      `${ms(median(r.stormTable))} / ${ms(max(r.stormTable))}`,
      String(r.sse),
      r.transactions === null ? `${n}+ (one per message)` : String(r.transactions),
    ]),
  );
}
