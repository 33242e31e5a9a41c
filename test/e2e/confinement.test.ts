// Paths and names stay where they belong: a manifest's files are names beside it, reserved class names
// are refused everywhere a class is named, the CLI prints no terminal escapes, a head with a NaN is
// refused on load, and a typo anywhere in a config is an error with the nearest field.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateLabel } from '../../devices/sources/source.js';
import { readFolderDataset } from '../../runtime/dataset/folder.js';
import { decodeHead, encodeHead, saveHead, trainHead } from '../../runtime/head/index.js';
import { CATALOG } from '../../runtime/models/catalog.js';
import { parseManifest } from '../../runtime/models/manifest.js';
import { pushedConfig } from '../../agent/pushed-config.js';
import { runCli } from '../support/cli.js';
import { FLOWERS_DIR, IMAGES_DIR, modelPath, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const BACKBONE = 'mobilenet_v1_1.0_224_quant_embedding_extractor';
const photo = join(IMAGES_DIR, 'cat.bmp');

function headWith(labels: string[]) {
  const dim = 1024;
  const x = new Float32Array(labels.length * dim).map((_, i) => Math.sin(i));
  return trainHead(
    'prototype',
    x,
    Int32Array.from(labels, (_, i) => i),
    { backboneId: BACKBONE, dim, labels },
  ).head;
}

describe('model manifests', () => {
  it('refuse a labels or model file that is a path, naming the field', () => {
    const classifier = CATALOG.find((m) => m.labels)!;
    for (const labels of ['../../home/user/secret.txt', '/etc/passwd', 'sub/labels.txt', '..']) {
      expect(() => parseManifest({ ...classifier, labels }, 'm.tflite.json')).toThrow(
        /m\.tflite\.json: field "labels": must be a file name beside the manifest/,
      );
    }
    expect(() => parseManifest({ ...classifier, file: '../other.tflite' }, 'm.json')).toThrow(/field "file"/);
  });

  it('edgetune classify with such a sidecar exits 1 and prints nothing of the file outside', async () => {
    const dir = join(tmp.path, 'models', 'a', 'b');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(tmp.path, 'models', 'secret.txt'), 'SECRET-LINE\n'.repeat(1001));
    const entry = CATALOG.find((m) => m.labels)!;
    const model = join(dir, entry.file);
    symlinkSync(modelPath(entry.file), model);
    writeFileSync(`${model}.json`, JSON.stringify({ ...entry, labels: '../../secret.txt' }));
    const r = await runCli(['classify', '--model', model, photo]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/field "labels": must be a file name beside the manifest/);
    expect(r.stdout + r.stderr).not.toContain('SECRET-LINE');
  });
});

describe('reserved class names', () => {
  it('"unknown" (any case) cannot be a label, a dataset class or a head class', () => {
    for (const name of ['unknown', 'Unknown', ' UNKNOWN ', '__proto__']) {
      expect(() => validateLabel(name, 'upload')).toThrow(/is reserved/);
    }
    expect(() => headWith(['daisy', 'unknown'])).toThrow(/class "unknown" is reserved \(the answer below the threshold\)/);
    const data = join(tmp.path, 'dataset');
    for (const c of ['daisy', 'unknown']) {
      mkdirSync(join(data, c), { recursive: true });
      symlinkSync(join(FLOWERS_DIR, 'daisy', '100080576_f52e8ee070_n.jpg'), join(data, c, 'a.jpg'));
    }
    expect(() => readFolderDataset(data)).toThrow(/dataset\/unknown: class "unknown" is reserved/);
  });
});

describe('CLI output', () => {
  it('shows control characters in labels as \\u escapes, never raw terminal sequences', async () => {
    const file = join(tmp.path, 'escape.head');
    saveHead(file, headWith(['\u001b[2Jdaisy\r', '\u001b]0;pwned\u0007rose']));
    const r = await runCli(['predict', '--head', file, photo]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    // Whichever class it predicts, its name is printed escaped.
    expect(r.stdout).toMatch(/\\u001b\[2Jdaisy\\u000d|\\u001b\]0;pwned\\u0007rose/);
    const json = await runCli(['predict', '--head', file, photo, '--json']);
    expect(JSON.parse(json.stdout).labels).toEqual(['\u001b[2Jdaisy\r', '\u001b]0;pwned\u0007rose']);
  });
});

describe('head files', () => {
  it('a head with a NaN weight is refused on load, by the library and by predict', async () => {
    const bytes = Buffer.from(encodeHead(headWith(['daisy', 'rose'])));
    const headerLength = bytes.readUInt32LE(8);
    bytes.writeFloatLE(Number.NaN, 12 + headerLength + 4 * 7);
    createHash('sha256')
      .update(bytes.subarray(0, bytes.length - 32))
      .digest()
      .copy(bytes, bytes.length - 32);
    expect(() => decodeHead(bytes, { where: 'nan.head' })).toThrow(/nan\.head: NaN in weights\[7\]: a head's numbers must be finite/);
    const file = join(tmp.path, 'nan.head');
    writeFileSync(file, bytes);
    const r = await runCli(['predict', '--head', file, photo]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NaN in weights\[7\].*\[HEAD_INVALID\]/);
    expect(r.stdout).not.toMatch(/NaN/);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });
});

describe('a config pushed by the console', () => {
  it('cannot name a file, folder or command on the device, nor open its local API', () => {
    const refused: [Record<string, Record<string, unknown>>, string][] = [
      [{ sources: { inbox: { dir: '/etc' } } }, 'sources.inbox.dir'],
      [{ sources: { camera: { command: ['sh', '-c', 'id'] } } }, 'sources.camera.command'],
      [{ device: { thermalFile: '/home/pi/.ssh/id_ed25519' } }, 'device.thermalFile'],
      [{ http: { host: '0.0.0.0' } }, 'http.host'],
      [{ http: { token: 'console-chosen' } }, 'http.token'],
    ];
    for (const [values, field] of refused)
      expect(() => pushedConfig.parse(values)).toThrow(
        new RegExp(`field "${field.replace(/\./g, '\\.')}" cannot be pushed \\(it names a file or command on the device`),
      );
    expect(() => pushedConfig.parse({ model: { backbone: '../../tmp/evil.onnx' } })).toThrow(
      /field "model\.backbone" can be pushed only as a catalog id .*"\.\.\/\.\.\/tmp\/evil\.onnx"/,
    );
    expect(pushedConfig.parse({ model: { backbone: CATALOG[0]!.id }, head: { unknownThreshold: 0.6 } })).toEqual({
      model: { backbone: CATALOG[0]!.id },
      head: { unknownThreshold: 0.6 },
    });
  });
});
