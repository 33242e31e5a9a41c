// The file path's own decoding and enlargement (runtime/image/small-jpeg.ts, enlarge.ts) against sharp's,
// on the embeddings of every 6th flowers128 photo (720 of 4,317, every class, every size the set has)
// through the default backbone, embedded twice. test/unit/enlarge.test.ts and small-jpeg.test.ts
// compare the tensors themselves.

import { describe, expect, it } from 'vitest';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { embedFiles } from '../../runtime/embeddings/embed-files.js';
import { DEFAULT_BACKBONE_ID } from '../../runtime/models/catalog.js';
import { resolveModel } from '../../runtime/models/resolve.js';
import { MODEL_DIR, flowerPhotos, tempDir } from '../support/paths.js';
import { cosine } from '../../runtime/eval/metrics.js';

describe('embedding from files with photos enlarged in edgetune', () => {
  it('gives every 6th flowers128 photo the embedding sharp-only preprocessing gives, bit for bit', { timeout: 600_000 }, async () => {
    const paths = flowerPhotos(6);
    const cache = tempDir();
    const backbone = await Backbone.open(await resolveModel(DEFAULT_BACKBONE_ID, { modelDir: MODEL_DIR }), { cacheDir: cache.path });
    try {
      const bySharp = await embedFiles(paths, backbone, { fastEnlarge: false });
      const fast = await embedFiles(paths, backbone);
      let lowest = 1;
      let identical = 0;
      for (const [i, outcome] of fast.entries()) {
        const reference = bySharp[i]!;
        expect(outcome.error ?? reference.error, paths[i]).toBeUndefined();
        lowest = Math.min(lowest, cosine(outcome.embedding!, reference.embedding!));
        if (Buffer.from(outcome.embedding!.buffer).equals(Buffer.from(reference.embedding!.buffer))) identical++;
      }
      expect(paths.length).toBe(720);
      expect(lowest).toBeGreaterThanOrEqual(0.999);
      expect(identical).toBe(paths.length);
    } finally {
      await backbone.close();
      cache.remove();
    }
  });
});
