// After a head change every sample, labelled or not, carries the new head's prediction and version;
// a newer head change stops an older re-prediction that is still running.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { repredictAll } from '../../agent/repredict.js';
import { SampleStore } from '../../runtime/samples/store.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir('edgetune-repredict-');
afterAll(() => tmp.remove());

function storeWith(n: number): SampleStore {
  const store = SampleStore.open(`${tmp.path}/${n}-${Date.now()}`, { embeddingsOnly: true });
  for (let i = 0; i < n; i++) {
    const { sample } = store.add(randomBytes(32), { origin: 'test', label: i % 2 ? 'daisy' : null });
    store.putEmbedding(sample.id, 'bb', Float32Array.of(i / n, 1 - i / n));
  }
  return store;
}

// A "head" whose answer is known: the larger of the two values.
const predictor = (version: number) => ({
  version,
  predict: (e: Float32Array) => ({
    ...(e[0]! > e[1]! ? { label: 'rose', score: e[0]! } : { label: 'daisy', score: e[1]! }),
    unknown: false,
    distance: null,
  }),
});

describe('re-predicting after a head change', () => {
  it('gives every sample, labelled ones too, the new head prediction and version', async () => {
    const store = storeWith(150);
    expect(await repredictAll(store, 'bb', predictor(3))).toBe(true);
    const samples = store.list({ limit: 1000 });
    expect(samples).toHaveLength(150);
    expect(new Set(samples.map((s) => s.predictionHead))).toEqual(new Set([3]));
    expect(samples.filter((s) => s.label !== null).every((s) => s.predictionHead === 3)).toBe(true);
    const row = samples[0]!;
    const [a, b] = store.getEmbedding(row.id, 'bb')!;
    expect(row.prediction).toBe(a! > b! ? 'rose' : 'daisy');
    store.close();
  });

  it('stops between chunks when a newer head takes over, leaving the rest to it', async () => {
    const store = storeWith(150);
    let chunks = 0;
    const finished = await repredictAll(store, 'bb', predictor(1), () => chunks++ < 1);
    expect(finished).toBe(false);
    const predicted = store.list({ limit: 1000 }).filter((s) => s.predictionHead === 1);
    expect(predicted).toHaveLength(100);
    store.close();
  });
});
