// The agent as a device runs it: a separate `edgetune agent` process with the default backbone, measured
// from outside (RSS from /proc/<pid>/status, figures from its HTTP API), in one run:
//   1. sample-to-prediction latency: one photo at a time, POST to prediction visible through the API;
//   2. embed throughput with no contention: labelled photos uploaded at once (labelled are never dropped);
//   3. a camera flood: an MJPEG stream camera (test/support/fake-stream-camera.mjs, every frame new
//      content) at --fps, faster than the device embeds; embed rate under the flood, frames dropped, and
//      RSS over the whole flood until --samples frames are stored and embedded (does memory grow?).
//
// With --bundle FILE the agent is that bundle's own (its Node, under qemu-user for another CPU), run
// through `edgetune deploy try` presenting --board (default rpi-zero-2w); RSS is then the emulator
// process's, a sanity figure only (qemu's own code and translation cache are in it).
//
//   npm run bench -- agent [--samples 10000] [--fps 100] [--profile ID] [--data DIR] [--node-defaults]
//                          [--labelled 40] [--latency 10] [--bundle FILE [--board ID]] [--json]

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Running, rssMiB, startAgentProcess } from './agent-process.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '10000' },
    /** Device profile to run as (default: detected); rpi-3 is the 1 GiB board. */
    profile: { type: 'string', default: 'auto' },
    fps: { type: 'string', default: '100' },
    data: { type: 'string', default: join(sharedDir(), 'datasets', 'flowers128') },
    json: { type: 'boolean', default: false },
    /** Start the agent with Node's default flags, to see what runtime/release/node-flags.ts saves. */
    'node-defaults': { type: 'boolean', default: false },
    /** Labelled photos per class for the burst, unlabelled per class for the latency run. */
    labelled: { type: 'string', default: '40' },
    latency: { type: 'string', default: '10' },
    bundle: { type: 'string' },
    board: { type: 'string', default: 'rpi-zero-2w' },
  },
});
const SAMPLES = Number(values.samples);
const device = { profile: values.profile };
const LABELLED = Number(values.labelled);
const LATENCY = Number(values.latency);
const here = dirname(fileURLToPath(import.meta.url));
const compiled = !import.meta.url.endsWith('.ts');
async function startAgent(config: Record<string, unknown>, dir: string, env: Record<string, string> = {}): Promise<Running> {
  const bundle = values.bundle ? { file: resolve(values.bundle), board: values.board } : undefined;
  const agent = await startAgentProcess(config, dir, { env, nodeDefaults: values['node-defaults'], ...(bundle ? { bundle } : {}) });
  running.push(agent);
  return agent;
}
const classes = readdirSync(values.data).sort();
const photos = (c: string) =>
  readdirSync(join(values.data, c))
    .sort()
    .map((f) => join(values.data, c, f));
const progress = (text: string) => {
  if (!values.json) process.stderr.write(`${text}\n`);
};

const running: Running[] = [];

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^(edgetune_\w+) ([\d.e+-]+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const work = mkdtempSync(join(tmpdir(), 'edgetune-bench-agent-'));
try {
  // 1 + 2: latency and uncontended throughput.
  const agent = await startAgent({ device, data: { dir: join(work, 'a') }, head: { retrainAfterLabels: 0 }, http: { port: 0 } }, work);
  const upload = (file: string, label?: string) =>
    json<{ sample: { id: string } }>(`${agent.url}/api/samples${label ? `?label=${label}` : ''}`, {
      method: 'POST',
      body: readFileSync(file),
      headers: { 'content-type': 'image/jpeg' },
    });
  const labelled = classes.flatMap((c) =>
    photos(c)
      .slice(0, LABELLED)
      .map((f) => [f, c] as const),
  );
  progress(`uploading ${labelled.length} labelled photos at once`);
  const started = performance.now();
  await Promise.all(labelled.map(([f, c]) => upload(f, c)));
  while ((await metrics(agent.url)).edgetune_embedded_total! < labelled.length) await sleep(20);
  const uncontendedPerSecond = labelled.length / ((performance.now() - started) / 1000);
  await json(`${agent.url}/api/train`, { method: 'POST' });

  progress('sample-to-prediction latency, one photo at a time');
  const latencies: number[] = [];
  for (const c of classes) {
    for (const file of photos(c).slice(100, 100 + LATENCY)) {
      const t0 = performance.now();
      const { sample } = await upload(file);
      for (;;) {
        const { sample: s } = await json<{ sample: { prediction: string | null } }>(`${agent.url}/api/samples/${sample.id}`);
        if (s.prediction) break;
        await sleep(2);
      }
      latencies.push(performance.now() - t0);
    }
  }
  const idleRss = rssMiB(agent.child.pid!);
  await agent.stop();

  // 3: the camera flood: an MJPEG stream whose every frame is new content.
  const fakeStream = resolve(here, compiled ? '../../test/support/fake-stream-camera.mjs' : '../test/support/fake-stream-camera.mjs');
  const flood = await startAgent(
    {
      device,
      data: { dir: join(work, 'b') },
      sources: { camera: { command: [process.execPath, fakeStream, join(values.data, classes[0]!)], stream: true } },
      http: { port: 0 },
    },
    work,
    { FPS: values.fps },
  );
  const timeline: { received: number; embedded: number; dropped: number; rss: number; heap: number; external: number; seconds: number }[] =
    [];
  const floodStart = performance.now();
  let peak = 0;
  for (;;) {
    const m = await metrics(flood.url);
    const mem = rssMiB(flood.child.pid!);
    peak = Math.max(peak, mem.peak);
    timeline.push({
      received: m.edgetune_received_total!,
      embedded: m.edgetune_embedded_total!,
      dropped: m.edgetune_dropped_total!,
      rss: mem.rss,
      heap: m.edgetune_process_heap_used_bytes! / 2 ** 20,
      external: m.edgetune_process_external_bytes! / 2 ** 20,
      seconds: (performance.now() - floodStart) / 1000,
    });
    const last = timeline.at(-1)!;
    if (timeline.length % 20 === 0)
      progress(
        `flood: ${last.received} frames, ${last.embedded} embedded, ${last.dropped} dropped, RSS ${last.rss.toFixed(0)} MiB (JS heap ${last.heap.toFixed(0)}, external ${last.external.toFixed(0)})`,
      );
    if (last.embedded >= SAMPLES) break;
    await sleep(500);
  }
  const floodSamples = (await json<{ samples: number }>(`${flood.url}/health`)).samples;
  await flood.stop();

  const end = timeline.at(-1)!;
  const at = (fraction: number) => timeline.find((t) => t.embedded >= fraction * SAMPLES) ?? end;
  const early = at(0.2);
  const report = {
    profile: values.profile,
    ...(values.bundle ? { bundle: values.bundle, board: values.board } : {}),
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), max: Math.max(...latencies), samples: latencies.length },
    uncontendedEmbedPerSecond: uncontendedPerSecond,
    idleRssMiB: idleRss.rss,
    flood: {
      frames: end.received,
      seconds: end.seconds,
      framesPerSecond: end.received / end.seconds,
      embedPerSecond: end.embedded / end.seconds,
      embedded: end.embedded,
      dropped: end.dropped,
      storedSamples: floodSamples,
      rssMiB: { at20: early.rss, at50: at(0.5).rss, at100: end.rss, peak },
      rssGrowthMiB20to100: end.rss - early.rss,
    },
    embedRatioFloodOverUncontended: end.embedded / end.seconds / uncontendedPerSecond,
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    printTable(
      `agent (separate process, default backbone, profile ${values.profile}${values.bundle ? `, ${values.bundle} under deploy try on ${values.board}` : ''})`,
      ['measure', 'value'],
      [
        [
          'sample to prediction p50 / p95 / max',
          `${report.latencyMs.p50.toFixed(0)} / ${report.latencyMs.p95.toFixed(0)} / ${report.latencyMs.max.toFixed(0)} ms (${latencies.length} photos)`,
        ],
        ['embed rate, labelled burst', `${uncontendedPerSecond.toFixed(1)} images/s`],
        ['camera frames', `${end.received} in ${end.seconds.toFixed(0)} s (${report.flood.framesPerSecond.toFixed(0)}/s)`],
        [
          'embed rate under the flood',
          `${report.flood.embedPerSecond.toFixed(1)} images/s (x${report.embedRatioFloodOverUncontended.toFixed(2)} of the burst rate)`,
        ],
        [
          'frames dropped by the queue',
          `${end.dropped} (${((100 * end.dropped) / end.received).toFixed(0)} %), stored samples ${floodSamples}`,
        ],
        ['RSS idle after latency run', `${idleRss.rss.toFixed(0)} MiB`],
        ['RSS at 20 / 50 / 100 % of the samples', `${early.rss.toFixed(0)} / ${at(0.5).rss.toFixed(0)} / ${end.rss.toFixed(0)} MiB`],
        ['RSS peak (VmHWM) during the flood', `${peak.toFixed(0)} MiB`],
      ],
    );
  }
} finally {
  // An error mid-run leaves an agent writing into `work`: stop it first, so the error is the one reported.
  await Promise.all(running.map((r) => r.stop()));
  rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}
