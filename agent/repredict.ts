// A new head answers for every stored sample, labelled ones too, so that no card shows what an
// older head said. In chunks, yielding between them: on a Pi 10,000 samples take seconds, and the
// HTTP API and the camera must not wait that long.

import type { SampleStore } from '../runtime/samples/store.js';
import type { Predictor } from './pipeline.js';

const CHUNK = 100;

/**
 * Predicts every sample with `predictor`, one transaction per chunk; stops early (returning false)
 * when `current()` says a newer head has taken over. Returns true when every sample was predicted.
 */
export async function repredictAll(
  store: SampleStore,
  backboneId: string,
  predictor: Predictor,
  current: () => boolean = () => true,
): Promise<boolean> {
  let after = '';
  for (;;) {
    if (!current()) return false;
    const rows = store.embeddingsAfter(backboneId, after, CHUNK);
    if (rows.length === 0) return true;
    store.setPredictions(
      rows.map(({ id, vector }) => {
        const p = predictor.predict(vector);
        return { id, label: p.label, score: p.score, unknown: p.unknown, distance: p.distance, head: predictor.version };
      }),
    );
    after = rows[rows.length - 1]!.id;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
