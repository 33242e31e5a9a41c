// The int8 round trip on the default backbone, as issue 3 asks for it: dequantize the TFLite int8 model
// to float (`model import --float`), quantize it again with our PTQ on 100 flowers128 photos, and compare
// `edgetune eval` on flowers128 (seeded 80/20 split) with the original int8 model. Slow: it embeds the
// 4,317 photos with both models (about two minutes on 2 cores).

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { FLOWERS_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

async function evalAccuracy(model: string): Promise<number> {
  const r = await runCli(['eval', '--data', FLOWERS_DIR, '--model', model, '--json', '--cache-dir', join(tmp.path, 'cache')]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { accuracy: number }).accuracy;
}

describe('PTQ round trip (slow)', () => {
  it(
    'float import + our PTQ on 100 photos stays within 1 point of the original int8 model on flowers128',
    { timeout: 900_000 },
    async () => {
      const float = join(tmp.path, 'v1-float.onnx');
      const int8 = join(tmp.path, 'v1-ptq.onnx');
      const imported = await runCli([
        'model',
        'import',
        'mobilenet_v1_1.0_224_quant_embedding_extractor',
        '--float',
        '-o',
        float,
        '--json',
      ]);
      expect(imported.code, imported.stderr).toBe(0);
      const quantized = await runCli(['quantize', float, '--calibrate', FLOWERS_DIR, '--images', '100', '-o', int8, '--json']);
      expect(quantized.code, quantized.stderr).toBe(0);
      expect((JSON.parse(quantized.stdout) as { outputCosine: number }).outputCosine).toBeGreaterThan(0.97);
      const [original, ours] = [await evalAccuracy('mobilenet_v1_1.0_224_quant_embedding_extractor'), await evalAccuracy(int8)];
      expect(original).toBeGreaterThanOrEqual(0.72);
      expect(Math.abs(ours - original)).toBeLessThanOrEqual(0.01);
    },
  );
});
