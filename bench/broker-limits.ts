// Broker limits, measured on real brokers in one run.
//  1. Reconnect storm: --devices simulated devices (real MQTT clients, each publishing its online state)
//     reconnect after a broker restart; time until every one is authenticated and online in the
//     console's registry. Embedded broker with the SHA-256 verifier against the scrypt one it replaced
//     (rounds interleaved), and mosquitto with the password file the console writes.
//  2. What one unauthenticated client costs each broker: a CONNECT declaring 200 MB, streamed; the
//     broker's peak memory over its idle memory, without and with the packet limit.
//
//   npm run bench -- broker-limits [--devices 2000] [--rounds 1] [--json]

import { type ChildProcess, spawn } from 'node:child_process';
import { type EventEmitter, once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker } from '../console/broker.js';
import { DeviceCredentials } from '../console/credentials.js';
import { writeMosquittoConfig } from '../console/mosquitto.js';
import { FleetConsole } from '../console/service.js';
import { topics } from '../runtime/sync/protocol.js';
import { freePort } from './free-port.js';
import { remainingLength } from './mqtt-wire.js';
import { printTable } from './table.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '1' },
    deadline: { type: 'string', default: '240' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.devices);
const ROUNDS = Number(values.rounds);
const DEADLINE_S = Number(values.deadline);
const MOSQUITTO = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto';
const root = mkdtempSync(join(tmpdir(), 'edgetune-bench-broker-'));
const ids = Array.from({ length: N }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
// Under a storm of 2,000 logins a broker resets some connections; the client retries (counted, shown).
let resets = 0;
process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'ECONNRESET') throw err;
  resets++;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every device connects (retrying until the broker is up) and publishes its online state. */
let stopped = false;
async function storm(url: string, password: (id: string) => string, protocolVersion: 4 | 5, clients: MqttClient[]): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      while (!stopped) {
        const client = mqtt.connect(url, {
          username: id,
          password: password(id),
          clientId: id,
          protocolVersion,
          reconnectPeriod: 0,
          connectTimeout: 600_000,
        });
        clients.push(client);
        client.on('error', () => undefined); // the race below decides; late errors are the broker's answer
        const ok = await Promise.race([
          once(client as unknown as EventEmitter, 'connect').then(() => true),
          once(client as unknown as EventEmitter, 'error').then(() => false),
          once(client as unknown as EventEmitter, 'close').then(() => false),
        ]);
        if (ok) {
          await client.publishAsync(
            topics.device('bench', id, 'state'),
            Buffer.from(JSON.stringify({ protocol: 1, device: id, online: true })),
            { qos: 1, retain: true },
          );
          return;
        }
        client.end(true);
        await sleep(100);
      }
    }),
  );
}

/** Seconds until every device is online in the registry, or null when the deadline came first (then
 * how many made it is in `lastOnline`). */
let lastOnline = 0;
async function allOnline(fleet: FleetConsole, since: number): Promise<number | null> {
  for (;;) {
    lastOnline = fleet.registry.devices().filter((d) => d.online && d.lastSeen >= since).length;
    if (lastOnline === N) return (Date.now() - since) / 1000;
    if (Date.now() - since > DEADLINE_S * 1000) return null;
    await sleep(20);
  }
}

async function embeddedRound(scheme: 'sha256' | 'scrypt'): Promise<string> {
  const dir = join(root, `embedded-${scheme}-${Math.random().toString(36).slice(2)}`);
  const fleet = await FleetConsole.start({ dir, fleet: 'bench', broker: { port: await freePort() } });
  const passwords = new Map<string, string>();
  if (scheme === 'sha256') for (const id of ids) passwords.set(id, fleet.credentials.issue(id));
  else {
    // One scrypt hash for every device (issuing 2,000 costs minutes; verifying them is what is measured).
    const password = fleet.credentials.issueScrypt(ids[0]!);
    const db = new Database(join(dir, 'registry.db'));
    const row = db.prepare('SELECT salt, hash, mosquitto FROM credentials WHERE device = ?').get(ids[0]) as Record<string, unknown>;
    const insert = db.prepare(
      `INSERT OR REPLACE INTO credentials (device, salt, hash, mosquitto, created_at, scheme) VALUES (?, ?, ?, ?, ?, 'scrypt')`,
    );
    db.transaction(() => ids.forEach((id) => insert.run(id, row.salt, row.hash, row.mosquitto, Date.now())))();
    db.close();
    for (const id of ids) passwords.set(id, password);
  }
  await fleet.restartBroker();
  const started = Date.now();
  const clients: MqttClient[] = [];
  const stormed = storm(fleet.brokerUrl, (id) => passwords.get(id)!, 4, clients);
  const seconds = await allOnline(fleet, started);
  stopped = true;
  await Promise.race([stormed, sleep(2000)]);
  for (const c of clients) c.end(true);
  await fleet.stop();
  rmSync(dir, { recursive: true, force: true });
  stopped = false;
  return seconds === null ? `> ${DEADLINE_S} (${lastOnline} of ${N} online)` : seconds.toFixed(1);
}

function startMosquittoProcess(config: string): ChildProcess {
  return spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function waitForPort(port: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
}

async function mosquittoRound(): Promise<string> {
  const dir = join(root, `mosquitto-${Math.random().toString(36).slice(2)}`);
  const port = await freePort();
  mkdirSync(dir + '-console', { recursive: true });
  const credentials = new DeviceCredentials(join(dir + '-console', 'registry.db'));
  const passwords = new Map(ids.map((id) => [id, credentials.issue(id)]));
  const consoleLogin = { username: 'console-bench', password: 'bench-console-secret-4711' };
  const files = writeMosquittoConfig(dir, {
    fleet: 'bench',
    port,
    credentials,
    console: consoleLogin,
    ...(process.getuid?.() === 0 ? { user: 'root' } : {}),
  });
  credentials.close();
  let broker = startMosquittoProcess(files.config);
  await waitForPort(port);
  const fleet = await FleetConsole.start({
    dir: dir + '-console',
    fleet: 'bench',
    externalBroker: { url: `mqtt://127.0.0.1:${port}`, ...consoleLogin, protocolVersion: 5 },
  });
  broker.kill('SIGTERM');
  await once(broker, 'close');
  const started = Date.now();
  broker = startMosquittoProcess(files.config);
  const clients: MqttClient[] = [];
  const stormed = storm(`mqtt://127.0.0.1:${port}`, (id) => passwords.get(id)!, 5, clients);
  const seconds = await allOnline(fleet, started);
  stopped = true;
  await Promise.race([stormed, sleep(2000)]);
  stopped = false;
  for (const c of clients) c.end(true);
  await fleet.stop();
  broker.kill('SIGTERM');
  await once(broker, 'close');
  rmSync(dir, { recursive: true, force: true });
  rmSync(dir + '-console', { recursive: true, force: true });
  return seconds === null ? `> ${DEADLINE_S} (${lastOnline} of ${N} online)` : seconds.toFixed(1);
}

/** Streams a CONNECT that declares 200 MB to the port; resolves when the broker closes it or all is sent. */
async function bigConnect(port: number): Promise<void> {
  const declared = 200 * 1024 * 1024;
  const socket = tcpConnect(port, '127.0.0.1');
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => (closed = true));
  await once(socket, 'connect');
  socket.write(Buffer.from([0x10, ...remainingLength(declared)]));
  const chunk = Buffer.alloc(1024 * 1024);
  for (let sent = 0; sent < declared && !closed; sent += chunk.length) {
    if (!socket.write(chunk))
      await new Promise<void>((resolve) => {
        const done = () => (socket.off('drain', done), socket.off('close', done), resolve());
        socket.on('drain', done);
        socket.on('close', done);
      });
  }
  await sleep(500);
  socket.destroy();
}

function rssOf(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(field))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function aedesCost(limit: number): Promise<number> {
  const dir = join(root, `aedes-mem-${limit}`);
  const credentials = new DeviceCredentials(join(dir + '.db'));
  const broker = await startBroker({
    fleet: 'bench',
    port: 0,
    credentials,
    console: { username: 'c', password: 'secret-secret' },
    maxPacketBytes: limit,
  });
  global.gc?.();
  const idle = process.memoryUsage().rss;
  let peak = idle;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  await bigConnect(Number(new URL(broker.url).port));
  clearInterval(timer);
  await broker.close();
  credentials.close();
  return (peak - idle) / 1024 / 1024;
}

async function mosquittoCost(limit: number | null): Promise<number> {
  const dir = join(root, `mosquitto-mem-${limit}`);
  const port = await freePort();
  const credentials = new DeviceCredentials(join(dir + '.db'));
  const files = writeMosquittoConfig(dir, {
    fleet: 'bench',
    port,
    credentials,
    console: { username: 'c', password: 'secret-secret' },
    maxPacketBytes: limit,
    ...(process.getuid?.() === 0 ? { user: 'root' } : {}),
  });
  credentials.close();
  const broker = startMosquittoProcess(files.config);
  await waitForPort(port);
  const idle = rssOf(broker.pid!, 'VmRSS');
  await bigConnect(port);
  const peak = rssOf(broker.pid!, 'VmHWM');
  broker.kill('SIGTERM');
  await once(broker, 'close');
  return peak - idle;
}

const reconnect: { broker: string; verifier: string; seconds: string[] }[] = [
  { broker: 'embedded (aedes)', verifier: 'scrypt (before)', seconds: [] },
  { broker: 'embedded (aedes)', verifier: 'SHA-256 of a 256-bit secret (after)', seconds: [] },
  { broker: 'mosquitto', verifier: 'its password file (PBKDF2-SHA512 of a 256-bit secret, 1 iteration)', seconds: [] },
];
for (let r = 0; r < ROUNDS; r++) {
  const round = async (row: number, run: () => Promise<string>) => {
    const label = `${reconnect[row]!.broker}, ${reconnect[row]!.verifier}`;
    process.stderr.write(`round ${r + 1}: ${label}...`);
    const result = await run();
    reconnect[row]!.seconds.push(result);
    process.stderr.write(` ${result} s\n`);
  };
  // The scrypt round last: it is the one that may run into the deadline.
  await round(1, () => embeddedRound('sha256'));
  await round(2, () => mosquittoRound());
  await round(0, () => embeddedRound('scrypt'));
}
process.stderr.write('memory of one unauthenticated client...\n');
const memory = [
  { broker: 'embedded (aedes)', before: await aedesCost(Infinity), after: await aedesCost(2 * 1024 * 1024) },
  { broker: 'mosquitto', before: await mosquittoCost(null), after: await mosquittoCost(2 * 1024 * 1024) },
];
rmSync(root, { recursive: true, force: true });

if (values.json) console.log(JSON.stringify({ devices: N, reconnect, memory, resets }, null, 2));
else {
  printTable(
    `${N} devices reconnect after a broker restart: seconds until all are authenticated and online in the registry (${ROUNDS} round(s), interleaved)`,
    ['broker', 'verifier', `seconds (${resets} connections reset and retried)`],
    reconnect.map((r) => [r.broker, r.verifier, r.seconds.join(' / ')]),
  );
  console.log('');
  printTable(
    'one unauthenticated client streaming a CONNECT that declares 200 MB: broker memory over idle (MB)',
    ['broker', 'no packet limit (before)', '2 MB limit, before login (after)'],
    memory.map((m) => [m.broker, m.before.toFixed(1), m.after.toFixed(1)]),
  );
}
