// The accuracy the foundation promises, on the real 5-class flowers128 photos through the real CLI.
// Slow (it embeds 4,317 photos once, about a minute on 2 cores); the second eval reuses the cache.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { FLOWERS_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const cacheDir = join(tmp.path, 'cache');

describe('flowers128 accuracy (slow)', () => {
  it('softmax head on the seeded stratified 80/20 split reaches at least 0.72', { timeout: 600_000 }, async () => {
    const r = await runCli(['eval', '--data', FLOWERS_DIR, '--json', '--cache-dir', cacheDir]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.test).toBe(864);
    expect(result.failed).toBe(0);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.72);
  });

  it('10 shots per class, 10 repeats: at least 0.55, beating a plain logistic regression (about 0.53)', { timeout: 300_000 }, async () => {
    const r = await runCli(['eval', '--data', FLOWERS_DIR, '--shots', '10', '--repeats', '10', '--json', '--cache-dir', cacheDir]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.runs).toHaveLength(10);
    expect(result.train).toBe(50);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.55);
  });
});
