// A shell glob names hundreds of photos by absolute path. onnxruntime's telemetry once matched that
// command line with a recursive regex and overflowed the inference worker's stack (exit 139, SIGSEGV).

import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { FLOWERS_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
const cacheDir = join(tmp.path, 'cache');
const head = join(tmp.path, 'flowers.head');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
/** 600 photos as absolute paths, as `flowers128/*\/*` expands: about 45 kB of command line. */
const photos = CLASSES.flatMap((c) =>
  readdirSync(join(FLOWERS_DIR, c))
    .sort()
    .slice(0, 120)
    .map((f) => join(FLOWERS_DIR, c, f)),
);

beforeAll(async () => {
  const data = join(tmp.path, 'train');
  for (const c of CLASSES) {
    mkdirSync(join(data, c), { recursive: true });
    for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(200, 208)) symlinkSync(join(FLOWERS_DIR, c, f), join(data, c, f));
  }
  const train = await runCli(['train', '--data', data, '-o', head, '--cache-dir', cacheDir]);
  expect(train.code, train.stderr).toBe(0);
}, 120_000);
afterAll(() => tmp.remove());

describe('a long command line', () => {
  it('predict over 600 photos named by absolute path exits 0 on onnx, then on tflite', async () => {
    expect(photos).toHaveLength(600);
    expect(photos.join(' ').length).toBeGreaterThan(40_000);
    // The first run embeds every photo; the second loads the other engine with the same command line and
    // answers from the embedding cache, which keeps the test short.
    for (const engine of ['onnx', 'tflite']) {
      const r = await runCli(['predict', '--head', head, '--engine', engine, '--cache-dir', cacheDir, '--json', ...photos]);
      expect(r.code, `${engine}: ${r.stderr.slice(-400)}`).toBe(0);
      const results = JSON.parse(r.stdout).results as { image: string; label: string }[];
      expect(results).toHaveLength(600);
      expect(results.every((x) => CLASSES.includes(x.label) || x.label === 'unknown')).toBe(true);
      const right = results.filter((x) => x.image.includes(`/${x.label}/`)).length;
      expect(right / 600).toBeGreaterThan(0.35); // 8 photos per class: well above chance (0.2)
    }
  }, 240_000);
});
