// A fleet head reaching many devices: the console (embedded broker) releases a signed fleet head and
// --devices device clients receive, verify, decode and durably save it. Each client is the agent's own
// fleet-sync code (broker link, outbox, signature and version checks, SQLite sample store) without the
// backbone, which plays no part in applying a head.
//
//   npm run bench -- fleet [--devices 200] [--json]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FleetConsole } from '../console/service.js';
import { AgentConfigSchema } from '../agent/config.js';
import { FleetSync } from '../agent/fleet-sync.js';
import { silentLogger } from '../core/log.js';
import { type Head, encodeHead } from '../runtime/head/index.js';
import { SampleStore } from '../runtime/samples/store.js';
import { until } from '../core/wait.js';
import { BENCH_BACKBONE, BENCH_DIM, syntheticHeads } from './synthetic-heads.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } });
const n = Number(values.devices);
const dir = mkdtempSync(join(tmpdir(), 'edgetune-bench-fleet-'));
const fleet = await FleetConsole.start({
  dir: join(dir, 'console'),
  fleet: 'bench',
  broker: { host: '127.0.0.1', port: 0 },
  minCanaryHoldout: 0,
});

interface BenchDevice {
  id: string;
  sync: FleetSync;
  store: SampleStore;
  applied: number | null;
}

let started = performance.now();
const devices: BenchDevice[] = [];
for (let i = 0; i < n; i++) {
  const id = `pi-${String(i).padStart(3, '0')}`;
  const config = AgentConfigSchema.parse({
    device: { id },
    data: { dir: join(dir, id) },
    fleet: { ...fleet.addDevice(id).fleet, publishDelayMs: 0 },
  });
  const store = SampleStore.open(config.data.dir);
  const device: BenchDevice = { id, store, applied: null, sync: undefined as unknown as FleetSync };
  device.sync = new FleetSync(
    config.fleet!,
    id,
    store,
    { id: BENCH_BACKBONE, dim: BENCH_DIM },
    {
      applyHead: (head: Head, fleetVersion: number) => {
        const version = store.saveHead((v) => encodeHead(head.withMeta({ version: v, metrics: { fleetVersion } })), {
          parent: store.currentHeadVersion(),
          accuracy: null,
          metrics: { fleetVersion },
        });
        device.applied = performance.now();
        return { headVersion: version, fleetVersion, accuracyBefore: null, accuracyAfter: null, holdout: 0, lost: 0, gained: 0 };
      },
      rollbackFleet: () => ({}),
      train: async () => ({}),
      configure: () => ({}),
      logs: () => ({}),
      samples: () => ({}),
      state: () => ({ headVersion: store.currentHeadVersion(), samples: 0 }),
    },
    silentLogger,
  );
  device.sync.start();
  devices.push(device);
}
await until(`${n} devices online`, () => fleet.devices().filter((d) => d.online).length === n, 120_000);
const connectMs = performance.now() - started;

// Three devices send heads; the console merges them and releases the fleet head to everyone.
const heads = syntheticHeads(3);
heads.forEach((head, i) => devices[i]!.sync.publishHead(head));
await until('3 device heads at the console', () => fleet.registry.deviceHeadCount() === 3, 30_000);
started = performance.now();
const rollout = await fleet.mergeAndRollout();
const releasedMs = performance.now() - started;
await until('every device applied the fleet head', () => devices.every((d) => d.applied !== null), 120_000);
const lastApplied = Math.max(...devices.map((d) => d.applied!)) - started;
const firstApplied = Math.min(...devices.map((d) => d.applied!)) - started;
const sorted = devices.map((d) => d.applied! - started).sort((a, b) => a - b);
const p50 = sorted[Math.floor(n / 2)]!;

const report = {
  devices: n,
  connectMs,
  mergeAndReleaseMs: releasedMs,
  firstAppliedMs: firstApplied,
  medianAppliedMs: p50,
  allAppliedMs: lastApplied,
  fleetVersion: rollout.version,
  messageBytes: fleet.registry.fleetHead(rollout.version)!.message.length,
};
await Promise.all(devices.map((d) => d.sync.stop()));
for (const d of devices) d.store.close();
await fleet.stop();
rmSync(dir, { recursive: true, force: true });

if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  printTable(
    `a signed fleet head reaching ${n} devices (embedded broker, one machine)`,
    ['measure', 'value'],
    [
      [`${n} devices connected and online at the console`, `${(connectMs / 1000).toFixed(1)} s`],
      ['merge 3 heads, sign, release (retained)', `${releasedMs.toFixed(0)} ms`],
      ['first device applied it', `${firstApplied.toFixed(0)} ms`],
      ['half the devices applied it', `${p50.toFixed(0)} ms`],
      [`all ${n} devices applied it (verified, decoded, saved)`, `${(lastApplied / 1000).toFixed(2)} s`],
      ['fleet head message', `${report.messageBytes} bytes`],
    ],
  );
}
