// Memory of the agent under an upload flood: --uploads photos of about --mib MiB each (distinct
// high-detail JPEGs made here), all POSTed at once, RSS of the agent process sampled every 20 ms from
// /proc until every upload is answered and embedded. With --before DIR (a built checkout of an earlier
// commit) the same flood hits that agent too, the two alternating --rounds times in this one run (the
// machine is shared: alternating keeps the comparison fair).
//
//   npm run bench -- agent-uploads [--uploads 12] [--mib 19.5] [--rounds 1] [--before DIR] [--json]

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { CLI, rssMiB, startAgentProcess } from './agent-process.js';
import { printTable, sharedDir } from './table.js';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '12' },
    mib: { type: 'string', default: '19.5' }, // under the default 20 MiB upload limit
    rounds: { type: 'string', default: '1' },
    before: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const UPLOADS = Number(values.uploads);
const progress = (text: string) => {
  if (!values.json) process.stderr.write(`${text}\n`);
};

/** A JPEG of about `mib` MiB: noise at quality 100 barely compresses. */
async function bigJpeg(seed: number, mib: number): Promise<Buffer> {
  const side = Math.round(Math.sqrt((mib * 1024 * 1024) / 2.95));
  const pixels = Buffer.alloc(side * side * 3);
  let x = seed * 2654435761;
  for (let i = 0; i < pixels.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    pixels[i] = x >>> 24;
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } })
    .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

interface Outcome {
  variant: string;
  startMiB: number;
  /** Peak until every upload was answered (receiving and storing). */
  answeredPeakMiB: number;
  /** Peak until every upload was also embedded. */
  peakMiB: number;
  endMiB: number;
  statuses: Record<string, number>;
  embedded: number;
  seconds: number;
}

async function flood(variant: string, cli: string, photos: Buffer[], work: string): Promise<Outcome> {
  const dir = mkdtempSync(join(work, `${variant}-`));
  const agent = await startAgentProcess(
    { device: { id: 'bench' }, data: { dir: join(dir, 'data') }, head: { retrainAfterLabels: 0 }, http: { port: 0 }, queue: { limit: 64 } },
    dir,
    { cli },
  );
  try {
    const pid = agent.child.pid!;
    // One small photo first: the engine's first inference allocates its working memory, which is not
    // what the flood costs.
    const warm = await fetch(`${agent.url}/api/samples`, { method: 'POST', body: warmUp, headers: { 'content-type': 'image/jpeg' } });
    await warm.arrayBuffer();
    await until(agent.url, 1);
    const startMiB = rssMiB(pid).rss;
    let peakMiB = startMiB;
    const sampler = setInterval(() => (peakMiB = Math.max(peakMiB, rssMiB(pid).rss)), 20);
    const began = performance.now();
    const replies = await Promise.all(
      photos.map((body) => fetch(`${agent.url}/api/samples`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } })),
    );
    const statuses: Record<string, number> = {};
    for (const r of replies) {
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      await r.arrayBuffer();
    }
    const answeredPeakMiB = peakMiB;
    const embedded = (await until(agent.url, 1 + (statuses['201'] ?? 0))) - 1;
    clearInterval(sampler);
    peakMiB = Math.max(peakMiB, rssMiB(pid).rss);
    return {
      variant,
      startMiB,
      answeredPeakMiB,
      peakMiB,
      endMiB: rssMiB(pid).rss,
      statuses,
      embedded,
      seconds: (performance.now() - began) / 1000,
    };
  } finally {
    await agent.stop();
  }
}

/** Waits until `count` samples are embedded or quarantined and the queue is empty; returns the embedded. */
async function until(url: string, count: number): Promise<number> {
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const embedded = metric('edgetune_embedded_total');
    if (metric('edgetune_queue_length') === 0 && embedded + metric('edgetune_samples_quarantined') >= count) return embedded;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const warmUp = readFileSync(
  join(sharedDir(), 'datasets', 'flowers128', 'daisy', readdirSync(join(sharedDir(), 'datasets', 'flowers128', 'daisy')).sort()[0]!),
);
const work = mkdtempSync(join(tmpdir(), 'edgetune-bench-uploads-'));
try {
  progress(`making ${UPLOADS} JPEGs of about ${values.mib} MiB`);
  const photos = await Promise.all(Array.from({ length: UPLOADS }, (_, i) => bigJpeg(i + 1, Number(values.mib))));
  const variants: [string, string][] = [['this checkout', CLI]];
  if (values.before) variants.unshift(['before', join(values.before, 'dist/bin/edgetune.js')]);
  const outcomes: Outcome[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [variant, cli] of variants) {
      progress(`round ${round + 1}: ${variant}`);
      outcomes.push(await flood(variant, cli, photos, work));
    }
  }
  if (values.json) console.log(JSON.stringify({ uploads: UPLOADS, bytes: photos.map((p) => p.length), outcomes }, null, 2));
  else {
    const mib = (photos.reduce((a, p) => a + p.length, 0) / UPLOADS / 2 ** 20).toFixed(1);
    printTable(
      `agent RSS, ${UPLOADS} parallel uploads of ${mib} MiB each (sampled every 20 ms)`,
      ['agent', 'RSS warm MiB', 'peak receiving MiB', 'peak MiB', 'after MiB', 'answers', 'embedded', 'seconds'],
      outcomes.map((o) => [
        o.variant,
        Math.round(o.startMiB),
        Math.round(o.answeredPeakMiB),
        Math.round(o.peakMiB),
        Math.round(o.endMiB),
        Object.entries(o.statuses)
          .map(([s, n]) => `${n}x${s}`)
          .join(' '),
        o.embedded,
        Number(o.seconds.toFixed(1)),
      ]),
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
