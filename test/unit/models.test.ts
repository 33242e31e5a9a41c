import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../core/errors.js';
import { CATALOG, DEFAULT_BACKBONE_ID, catalogEntry } from '../../runtime/models/catalog.js';
import { parseManifest } from '../../runtime/models/manifest.js';
import { loadLabels, resolveModel } from '../../runtime/models/resolve.js';
import { sha256Hex } from '../../core/hash.js';
import { MODEL_DIR, modelPath, tempDir } from '../support/paths.js';

const tmp = tempDir();
const TINY = catalogEntry('mobilenet_v1_0.25_128_quant')!;
let server: Server;
let baseUrl: string;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/good.tflite') res.end(readFileSync(modelPath(TINY.file)));
    else if (req.url === '/bad.tflite') res.end(readFileSync(modelPath(TINY.file)).subarray(0, 1000));
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
  tmp.remove();
});

async function errorOf(promise: Promise<unknown>): Promise<ModelError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ModelError);
  return error as ModelError;
}

describe('catalog', () => {
  it('every catalog entry matches the real file in the model dir', () => {
    for (const m of CATALOG) {
      const bytes = readFileSync(join(MODEL_DIR, m.file));
      expect(sha256Hex(bytes), m.id).toBe(m.sha256);
      expect(bytes.length, m.id).toBe(m.bytes);
      expect(parseManifest(m, 'catalog')).toEqual(m);
    }
  });

  it('the default backbone is the Coral embedding extractor', () => {
    expect(catalogEntry(DEFAULT_BACKBONE_ID)?.output).toMatchObject({ kind: 'embedding', dim: 1024 });
  });
});

describe('model resolution', () => {
  it('finds a catalog model in EDGETUNE_MODEL_DIR and verifies it', async () => {
    const found = await resolveModel(DEFAULT_BACKBONE_ID, {
      modelDir: MODEL_DIR,
      cacheDir: tmp.path,
      download: false,
    });
    expect(found.location).toBe('model-dir');
    expect(found.bytes.length).toBe(3251736);
  });

  it('an explicit path wins and uses the catalog manifest for a known file name', async () => {
    const found = await resolveModel(modelPath(TINY.file), { cacheDir: tmp.path });
    expect(found.location).toBe('path');
    expect(found.manifest.id).toBe(TINY.id);
  });

  it('a truncated model file is a checksum error naming file, sizes and model', async () => {
    const dir = join(tmp.path, 'truncated');
    mkdirSync(dir);
    writeFileSync(join(dir, TINY.file), readFileSync(modelPath(TINY.file)).subarray(0, 4096));
    const error = await errorOf(resolveModel(TINY.id, { modelDir: dir, cacheDir: tmp.path, download: false }));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.message).toContain(join(dir, TINY.file));
    expect(error.message).toMatch(/4096 bytes, expected 525598/);
  });

  it('a file that is not a model, with a manifest claiming it is, fails its checksum', async () => {
    const path = join(tmp.path, 'page.tflite');
    writeFileSync(path, '<html>login</html>');
    writeFileSync(`${path}.json`, JSON.stringify({ ...TINY, file: 'page.tflite' }));
    expect((await errorOf(resolveModel(path))).code).toBe('CHECKSUM_MISMATCH');
  });

  it('a sidecar manifest with a wrong field names the file and the field', async () => {
    const path = join(tmp.path, 'custom.tflite');
    copyFileSync(modelPath(TINY.file), path);
    writeFileSync(`${path}.json`, JSON.stringify({ ...TINY, input: { ...TINY.input, layout: 'HWC' } }));
    const error = await errorOf(resolveModel(path));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toMatch(/custom\.tflite\.json: field "input\.layout"/);
  });

  it('an unknown file without a manifest asks for one', async () => {
    const path = join(tmp.path, 'mystery.onnx');
    writeFileSync(path, 'x');
    expect((await errorOf(resolveModel(path))).code).toBe('MANIFEST_MISSING');
  });

  it('an unknown id lists the catalog', async () => {
    const error = await errorOf(resolveModel('resnet50'));
    expect(error.code).toBe('MODEL_UNKNOWN');
    expect(error.message).toContain(DEFAULT_BACKBONE_ID);
  });

  it('downloads a missing model, verifies it, caches it, and uses the cache next time', async () => {
    const cacheDir = join(tmp.path, 'download-cache');
    const catalog = [{ ...TINY, source: `${baseUrl}/good.tflite` }];
    const first = await resolveModel(TINY.id, { catalog, modelDir: join(tmp.path, 'empty'), cacheDir });
    expect(first.location).toBe('download');
    const second = await resolveModel(TINY.id, { catalog, modelDir: join(tmp.path, 'empty'), cacheDir });
    expect(second.location).toBe('cache');
    expect(requests.filter((r) => r === '/good.tflite')).toHaveLength(1);
  });

  it('a download with the wrong checksum is refused and not kept', async () => {
    const cacheDir = join(tmp.path, 'bad-cache');
    const catalog = [{ ...TINY, source: `${baseUrl}/bad.tflite` }];
    const error = await errorOf(resolveModel(TINY.id, { catalog, modelDir: join(tmp.path, 'empty'), cacheDir }));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.message).toContain('not kept');
    expect((await errorOf(resolveModel(TINY.id, { catalog, modelDir: join(tmp.path, 'empty'), cacheDir, download: false }))).code).toBe(
      'MODEL_NOT_FOUND',
    );
  });

  it('an HTTP error on download is a DOWNLOAD_FAILED naming the URL', async () => {
    const catalog = [{ ...TINY, source: `${baseUrl}/missing.tflite` }];
    const error = await errorOf(resolveModel(TINY.id, { catalog, modelDir: join(tmp.path, 'empty'), cacheDir: join(tmp.path, 'c3') }));
    expect(error.code).toBe('DOWNLOAD_FAILED');
    expect(error.message).toMatch(/missing\.tflite: download failed: HTTP 404/);
  });

  it('loads the ImageNet labels of a classifier: 1001 lines, background first', async () => {
    const model = await resolveModel('mobilenet_v2_1.0_224_quant', { modelDir: MODEL_DIR });
    const labels = await loadLabels(model, { modelDir: MODEL_DIR });
    expect(labels).toHaveLength(1001);
    expect(labels[0]).toBe('background');
  });
});
