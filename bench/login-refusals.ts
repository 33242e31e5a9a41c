// What failed broker logins cost, on both brokers, in one run:
//  1. refusal time for a login that exists (wrong password) against one that does not: the same, so
//     refusals do not tell which device ids exist;
//  2. a device's good login, alone and while a flood of wrong-password connects comes from another
//     address (127.0.0.2): failed logins cost the one who fails them, not the fleet.
// The embedded broker's refusals are delayed on purpose (console/login-guard.ts: the same delay
// whether or not the login exists, doubling per failure); its figures are run with a 5 ms base delay
// so the bench ends. mosquitto refuses at once with its password file (a fast PBKDF2 of a 256-bit
// secret); it has no per-login backoff (docs/protocol.md).
//
//   npm run bench -- login-refusals [--tries 40] [--flood 400] [--json]

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBroker } from '../console/broker.js';
import { DeviceCredentials } from '../console/credentials.js';
import { writeMosquittoConfig } from '../console/mosquitto.js';
import { freePort } from './free-port.js';
import { remainingLength } from './mqtt-wire.js';
import { printTable } from './table.js';

const { values } = parseArgs({
  options: {
    tries: { type: 'string', default: '40' },
    flood: { type: 'string', default: '400' },
    json: { type: 'boolean', default: false },
  },
});
const TRIES = Number(values.tries);
const FLOOD = Number(values.flood);
const MOSQUITTO = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto';
const root = mkdtempSync(join(tmpdir(), 'edgetune-bench-logins-'));

/** An MQTT 3.1.1 CONNECT with a client id equal to the username. */
function connectPacket(username: string, password: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
  };
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0b1100_0010, 0, 60]), str(username), str(username), str(password)]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** Milliseconds from sending CONNECT to the CONNACK (or the close), and whether it was accepted. */
async function login(port: number, username: string, password: string, localAddress = '127.0.0.1'): Promise<{ ms: number; ok: boolean }> {
  const socket: Socket = tcpConnect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  const started = process.hrtime.bigint();
  socket.write(connectPacket(username, password));
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d[0] === 0x20 && d[3] === 0));
    socket.once('close', () => resolve(false));
    socket.once('error', () => resolve(false));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  socket.destroy();
  return { ms, ok };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));

interface Row {
  broker: string;
  existing: number;
  unknown: number;
  goodAlone: number;
  goodDuringFlood: number;
  goodAcceptedDuringFlood: string;
}

async function measure(broker: string, port: number, device: { id: string; password: string }): Promise<Row> {
  const existing: number[] = [];
  const unknown: number[] = [];
  // Interleaved, each from its own loopback address so the per-address backoff treats them alike.
  for (let i = 0; i < TRIES; i++) {
    existing.push((await login(port, device.id, 'wrong-password', `127.0.1.${(i % 250) + 1}`)).ms);
    unknown.push((await login(port, 'pi-ghost', 'wrong-password', `127.0.2.${(i % 250) + 1}`)).ms);
  }
  const alone: number[] = [];
  for (let i = 0; i < 10; i++) alone.push((await login(port, device.id, device.password)).ms);
  let flooding = true;
  const flood = (async () => {
    let sent = 0;
    while (flooding && sent < FLOOD) {
      await Promise.all(Array.from({ length: 20 }, (_, k) => login(port, `ghost-f${sent + k}`, 'wrong', '127.0.0.2')));
      sent += 20;
    }
  })();
  const during: { ms: number; ok: boolean }[] = [];
  for (let i = 0; i < 10; i++) during.push(await login(port, device.id, device.password));
  flooding = false;
  await flood;
  return {
    broker,
    existing: median(existing),
    unknown: median(unknown),
    goodAlone: median(alone),
    goodDuringFlood: median(during.map((d) => d.ms)),
    goodAcceptedDuringFlood: `${during.filter((d) => d.ok).length} of ${during.length}`,
  };
}

async function embedded(): Promise<Row> {
  const credentials = new DeviceCredentials(join(root, 'embedded.db'));
  const password = credentials.issue('pi-1');
  const broker = await startBroker({
    fleet: 'bench',
    port: 0,
    credentials,
    console: { username: 'console-bench', password: 'bench-console-secret-4711' },
    logins: { baseDelayMs: 5, maxDelayMs: 200 },
  });
  try {
    return await measure('embedded (aedes), 5 ms base delay', Number(new URL(broker.url).port), { id: 'pi-1', password });
  } finally {
    await broker.close();
    credentials.close();
  }
}

async function mosquitto(): Promise<Row> {
  const credentials = new DeviceCredentials(join(root, 'mosquitto.db'));
  const password = credentials.issue('pi-1');
  const port = await freePort();
  const files = writeMosquittoConfig(join(root), {
    fleet: 'bench',
    port,
    credentials,
    console: { username: 'console-bench', password: 'bench-console-secret-4711' },
    ...(process.getuid?.() === 0 ? { user: 'root' } : {}),
  });
  credentials.close();
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', files.config], { stdio: 'ignore' });
  try {
    for (;;) {
      const up = await login(port, 'pi-1', password).catch(() => ({ ok: false, ms: 0 }));
      if (up.ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return await measure('mosquitto (password file)', port, { id: 'pi-1', password });
  } finally {
    child.kill('SIGTERM');
    await once(child, 'close');
  }
}

const rows = [await embedded(), await mosquitto()];
rmSync(root, { recursive: true, force: true });
if (values.json) console.log(JSON.stringify({ tries: TRIES, flood: FLOOD, rows }, null, 2));
else
  printTable(
    `failed broker logins (median ms of ${TRIES} refusals each, interleaved; a good login 10 times alone, then during ${FLOOD} wrong-password connects from another address)`,
    ['broker', 'refusal: login exists', 'refusal: no such login', 'good login alone', 'good login during flood', 'accepted during flood'],
    rows.map((r) => [r.broker, fmt(r.existing), fmt(r.unknown), fmt(r.goodAlone), fmt(r.goodDuringFlood), r.goodAcceptedDuringFlood]),
  );
