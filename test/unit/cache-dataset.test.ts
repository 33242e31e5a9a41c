import { appendFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFolderDataset, shotSplit, stratifiedSplit } from '../../runtime/dataset/folder.js';
import { EmbeddingCache } from '../../runtime/embeddings/cache.js';
import { DatasetError, ModelError } from '../../core/errors.js';
import { FLOWERS_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const hash = (n: number) => n.toString(16).padStart(64, '0');

describe('embedding cache', () => {
  it('keeps embeddings across reopen, keyed by image hash', () => {
    const dir = join(tmp.path, 'c1');
    const cache = EmbeddingCache.open(dir, 'bb', 4);
    cache.put(hash(1), new Float32Array([1, 2, 3, 4]));
    cache.put(hash(2), new Float32Array([5, 6, 7, 8]));
    cache.close();
    const again = EmbeddingCache.open(dir, 'bb', 4);
    expect(again.size).toBe(2);
    expect(Array.from(again.get(hash(2))!)).toEqual([5, 6, 7, 8]);
    expect(again.get(hash(3))).toBeUndefined();
    again.close();
  });

  it('cuts off a record torn by a crash and keeps the rest', () => {
    const dir = join(tmp.path, 'c2');
    const cache = EmbeddingCache.open(dir, 'bb', 2);
    cache.put(hash(1), new Float32Array([1, 2]));
    cache.close();
    appendFileSync(cache.path, Buffer.alloc(17, 0xab)); // half a record
    const again = EmbeddingCache.open(dir, 'bb', 2);
    expect(again.size).toBe(1);
    again.put(hash(2), new Float32Array([3, 4]));
    again.close();
    expect(statSync(cache.path).size).toBe(16 + 2 * (32 + 8));
    expect(Array.from(EmbeddingCache.open(dir, 'bb', 2).get(hash(2))!)).toEqual([3, 4]);
  });

  it('refuses a cache of another dimension and a file that is not a cache', () => {
    const dir = join(tmp.path, 'c3');
    EmbeddingCache.open(dir, 'bb', 2).close();
    expect(() => EmbeddingCache.open(dir, 'bb', 3)).toThrow(/holds 2-d embeddings, the backbone gives 3/);
    writeFileSync(join(dir, 'embeddings', 'junk.bin'), 'this is not a cache file at all');
    const error = (() => {
      try {
        EmbeddingCache.open(dir, 'junk', 2);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('CACHE_INVALID');
  });
});

describe('folder datasets', () => {
  it('reads flowers128: five classes, 4317 photos', () => {
    const ds = readFolderDataset(FLOWERS_DIR);
    expect(ds.classes).toEqual(['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']);
    expect(ds.items).toHaveLength(4317);
    expect(ds.items.filter((i) => i.label === 1)).toHaveLength(1052);
  });

  it('splits 80/20 per class, the same way for the same seed', () => {
    const labels = readFolderDataset(FLOWERS_DIR).items.map((i) => i.label);
    const a = stratifiedSplit(labels, 5, 0.2, 42);
    const b = stratifiedSplit(labels, 5, 0.2, 42);
    expect(a).toEqual(b);
    expect(a.train.length + a.test.length).toBe(4317);
    expect(a.test.filter((i) => labels[i] === 0)).toHaveLength(Math.round(764 * 0.2));
    expect(new Set([...a.train, ...a.test]).size).toBe(4317);
    expect(stratifiedSplit(labels, 5, 0.2, 43).test).not.toEqual(a.test);
  });

  it('takes K shots per class for training and tests on the rest', () => {
    const labels = [0, 0, 0, 1, 1, 1, 1];
    const { train, test } = shotSplit(labels, 2, 2, 1);
    expect(train.filter((i) => labels[i] === 0)).toHaveLength(2);
    expect(train.filter((i) => labels[i] === 1)).toHaveLength(2);
    expect(test).toHaveLength(3);
    expect(() => shotSplit(labels, 2, 3, 1)).toThrow(DatasetError);
  });

  it('names the folder when it is missing, empty, or has an empty class', () => {
    expect(() => readFolderDataset(join(tmp.path, 'none'))).toThrow(/none: not a folder/);
    mkdirSync(join(tmp.path, 'd1', 'cats'), { recursive: true });
    expect(() => readFolderDataset(join(tmp.path, 'd1'))).toThrow(/d1\/cats: class folder has no images/);
    mkdirSync(join(tmp.path, 'd2'));
    expect(() => readFolderDataset(join(tmp.path, 'd2'))).toThrow(/no class sub-folders/);
  });
});
