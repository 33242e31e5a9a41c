import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importModelFile } from '../../quantize/import-model.js';
import { quantizeModelFile } from '../../quantize/quantize-model.js';
import { quantizeStatic } from '../../quantize/ptq.js';
import { cosine } from '../../runtime/eval/metrics.js';
import { preprocessFile } from '../../runtime/image/preprocess.js';
import { FLOWERS_DIR, MODEL_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
const calib = join(tmp.path, 'calib');
const floatPath = join(tmp.path, 'tiny-float.onnx');
const resolve = { modelDir: MODEL_DIR };

beforeAll(async () => {
  mkdirSync(join(calib, 'daisy'), { recursive: true });
  mkdirSync(join(calib, 'rose'), { recursive: true });
  for (const c of ['daisy', 'rose'])
    for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(0, 5)) copyFileSync(join(FLOWERS_DIR, c, f), join(calib, c, f));
  writeFileSync(join(calib, 'daisy', 'camera-error.jpg'), '<html>camera offline</html>');
  await importModelFile('mobilenet_v1_0.25_128_quant', floatPath, {
    float: true,
    output: 'MobilenetV1/Logits/AvgPool_1a/AvgPool',
    resolve,
  });
});
afterAll(() => tmp.remove());

async function embed(path: string, files: string[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const manifest = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
  const out: Float32Array[] = [];
  for (const f of files) {
    const x = (await preprocessFile(f, manifest.input, { resize: 'fill' })) as Uint8Array;
    out.push(
      Float32Array.from((await session.run({ image: new ort.Tensor('uint8', x, [1, 128, 128, 3]) })).embedding!.data as Float32Array),
    );
  }
  await session.release();
  return out;
}

describe('static int8 post-training quantization', () => {
  it('quantizes a float model on calibration photos: int8 weights, fused by onnxruntime, close to float', async () => {
    const out = join(tmp.path, 'tiny-int8.onnx');
    const result = await quantizeModelFile(floatPath, calib, out, { calibrator: 'minmax', resolve });
    expect(result.calibrationImages).toBe(10);
    expect(result.skippedImages).toHaveLength(1);
    expect(result.skippedImages[0]!.error).toMatch(/camera-error\.jpg/);
    expect(result.quantizedConvs).toBe(27);
    expect(result.manifest.id).toBe('mobilenet_v1_0.25_128_quant-cut-MobilenetV1_Logits_AvgPool_1a_AvgPool-ptq');
    expect(result.layers.every((l) => l.relativeError >= 0 && l.relativeError < 0.6)).toBe(true);
    expect(result.outputCosine).toBeGreaterThan(0.9);

    // Every conv weight is int8 now, and onnxruntime turns the QDQ graph into QLinearConv.
    const optimized = join(tmp.path, 'optimized.onnx');
    await (await ort.InferenceSession.create(out, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized })).release();
    const ops = onnxProto.onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'QLinearConv')).toHaveLength(27);
    expect(ops).not.toContain('Conv');

    // On photos it has not seen, the int8 embeddings stay close to the float ones.
    const unseen = readdirSync(join(FLOWERS_DIR, 'tulip'))
      .sort()
      .slice(0, 4)
      .map((f) => join(FLOWERS_DIR, 'tulip', f));
    const [f, q] = [await embed(floatPath, unseen), await embed(out, unseen)];
    for (let i = 0; i < unseen.length; i++) expect(cosine(f[i]!, q[i]!)).toBeGreaterThan(0.9);
  });

  it('the percentile calibrator narrows ranges that min-max stretches to rare outliers', async () => {
    const inputs = await Promise.all(
      readdirSync(join(calib, 'rose')).map(
        (f) =>
          preprocessFile(
            join(calib, 'rose', f),
            { width: 128, height: 128, channels: 3, layout: 'NHWC', dtype: 'uint8' },
            { resize: 'fill' },
          ) as Promise<Uint8Array>,
      ),
    );
    const bytes = readFileSync(floatPath);
    const [minmax, percentile] = [
      await quantizeStatic(bytes, inputs, 'tiny', { calibrator: 'minmax' }),
      await quantizeStatic(bytes, inputs, 'tiny', { calibrator: 'percentile', percentile: 0.999 }),
    ];
    const widths = (r: typeof minmax) => r.layers.map((l) => l.range[1] - l.range[0]);
    expect(widths(percentile).every((w, i) => w <= widths(minmax)[i]! + 1e-6)).toBe(true);
    expect(widths(percentile).some((w, i) => w < widths(minmax)[i]! * 0.95)).toBe(true);
  });

  it('bias correction brings the int8 model closer to the float one', async () => {
    const inputs = await Promise.all(
      readdirSync(join(calib, 'rose')).map(
        (f) =>
          preprocessFile(
            join(calib, 'rose', f),
            { width: 128, height: 128, channels: 3, layout: 'NHWC', dtype: 'uint8' },
            { resize: 'fill' },
          ) as Promise<Uint8Array>,
      ),
    );
    const bytes = readFileSync(floatPath);
    const [plain, corrected] = [
      await quantizeStatic(bytes, inputs, 'tiny', { biasCorrection: false }),
      await quantizeStatic(bytes, inputs, 'tiny'),
    ];
    expect(corrected.outputCosine).toBeGreaterThan(plain.outputCosine);
    const last = (r: typeof plain) => r.layers.at(-1)!.relativeError;
    expect(last(corrected)).toBeLessThan(last(plain));
  });

  it('refuses what it cannot quantize, by name', async () => {
    await expect(quantizeModelFile('mobilenet_v1_0.25_128_quant', calib, join(tmp.path, 'x.onnx'), { resolve })).rejects.toMatchObject({
      code: 'QUANTIZE_NOT_ONNX',
    });
    const empty = join(tmp.path, 'empty');
    mkdirSync(empty);
    await expect(quantizeModelFile(floatPath, empty, join(tmp.path, 'x.onnx'), { resolve })).rejects.toThrow(
      /empty: no images to calibrate with/,
    );
    await expect(quantizeStatic(new TextEncoder().encode('not onnx at all'), [new Uint8Array(128 * 128 * 3)], 'junk.onnx')).rejects.toThrow(
      /junk\.onnx: not a valid ONNX model/,
    );
    await expect(quantizeStatic(readFileSync(floatPath), [], 'tiny-float.onnx')).rejects.toThrow(/tiny-float\.onnx: no calibration images/);
  });
});
