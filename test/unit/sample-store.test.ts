import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../core/hash.js';
import { SampleStore } from '../../runtime/samples/store.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
let n = 0;
const storeDir = () => join(tmp.path, `s${n++}`);
const bytesOf = (i: number) => new TextEncoder().encode(`image-${i}`);

describe('sample store', () => {
  it('stores images by content: the same bytes twice are one sample', () => {
    const store = SampleStore.open(storeDir());
    const a = store.add(bytesOf(1), { origin: 'inbox' });
    const b = store.add(bytesOf(1), { origin: 'upload', label: 'cat' });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.sample.label).toBe('cat');
    expect(store.readImage(a.sample.id)?.toString()).toBe('image-1');
    expect(a.sample.id).toBe(sha256Hex(bytesOf(1)));
    store.close();
  });

  it('labels, relabels, unlabels and deletes, and survives reopening', () => {
    const dir = storeDir();
    const store = SampleStore.open(dir);
    const { sample } = store.add(bytesOf(2), { origin: 'inbox' });
    store.setLabel(sample.id, 'dog');
    store.setLabel(sample.id, 'cat');
    const other = store.add(bytesOf(3), { origin: 'inbox', label: 'cat' }).sample;
    store.setLabel(other.id, null);
    store.close();
    const again = SampleStore.open(dir);
    expect(again.get(sample.id)?.label).toBe('cat');
    expect(again.get(other.id)?.label).toBeNull();
    expect(again.delete(sample.id)).toBe(true);
    expect(existsSync(again.imagePath(sample.id))).toBe(false);
    expect(again.get(sample.id)).toBeUndefined();
    again.close();
  });

  it('labels many samples all or none', () => {
    const store = SampleStore.open(storeDir());
    const a = store.add(bytesOf(4), { origin: 'x' }).sample;
    expect(() =>
      store.setLabels([
        { id: a.id, label: 'cat' },
        { id: 'missing', label: 'dog' },
      ]),
    ).toThrow(/no sample missing/);
    expect(store.get(a.id)?.label).toBeNull();
    store.close();
  });

  it('keeps the holdout split stable by content hash, about the configured share', () => {
    const store = SampleStore.open(storeDir(), { holdoutFraction: 0.2 });
    const splits = Array.from({ length: 500 }, (_, i) => store.add(bytesOf(1000 + i), { origin: 'x' }).sample.split);
    const holdout = splits.filter((s) => s === 'holdout').length;
    expect(holdout).toBeGreaterThan(70);
    expect(holdout).toBeLessThan(130);
    const again = Array.from({ length: 500 }, (_, i) => store.splitOf(sha256Hex(bytesOf(1000 + i))));
    expect(again).toEqual(splits);
    store.close();
  });

  it('returns labelled embeddings per backbone and split', () => {
    const store = SampleStore.open(storeDir(), { holdoutFraction: 0 });
    const ids = [5, 6, 7].map((i) => store.add(bytesOf(i), { origin: 'x', label: i === 7 ? null : `c${i}` }).sample.id);
    ids.forEach((id, i) => store.putEmbedding(id, 'bb', new Float32Array([i, i + 0.5])));
    store.putEmbedding(ids[0]!, 'other', new Float32Array([9, 9, 9]));
    const set = store.labelledSet('bb');
    expect(set.labels).toEqual(['c5', 'c6']);
    expect(Array.from(set.embeddings)).toEqual([0, 0.5, 1, 1.5]);
    expect(store.labelledSet('bb', 'holdout').ids).toEqual([]);
    store.close();
  });

  it('retention deletes quarantined, then unlabelled, oldest first, and labelled last', () => {
    const store = SampleStore.open(storeDir());
    const labelled = store.add(bytesOf(10), { origin: 'x', label: 'a', createdAt: 1 }).sample.id;
    const oldUnlabelled = store.add(bytesOf(11), { origin: 'x', createdAt: 2 }).sample.id;
    const newUnlabelled = store.add(bytesOf(12), { origin: 'x', createdAt: 3 }).sample.id;
    const bad = store.quarantine(bytesOf(13), { origin: 'x', error: 'not an image' }).id;
    expect(store.enforceRetention({ maxSamples: 2 })).toBe(2);
    expect(store.get(bad)).toBeUndefined();
    expect(store.get(oldUnlabelled)).toBeUndefined();
    expect(store.get(newUnlabelled)).toBeDefined();
    expect(store.get(labelled)).toBeDefined();
    expect(store.enforceRetention({ maxBytes: 8 })).toBe(1);
    expect(store.get(labelled)).toBeDefined();
    store.close();
  });

  it('keeps no image files in embeddings-only mode', () => {
    const dir = storeDir();
    const store = SampleStore.open(dir, { embeddingsOnly: true });
    const { sample } = store.add(bytesOf(20), { origin: 'x', label: 'a' });
    expect(sample.hasImage).toBe(false);
    expect(store.readImage(sample.id)).toBeUndefined();
    expect(readdirSync(join(dir, 'images'))).toEqual([]);
    store.close();
  });

  it('saves head versions atomically and rolls back to an older one', () => {
    const dir = storeDir();
    const store = SampleStore.open(dir);
    const v1 = store.saveHead(new Uint8Array([1]), { parent: null, accuracy: 0.5 });
    const v2 = store.saveHead(new Uint8Array([2]), { parent: v1, accuracy: 0.6 });
    expect(store.currentHeadVersion()).toBe(v2);
    store.setCurrentHead(v1);
    store.close();
    const again = SampleStore.open(dir);
    expect(again.currentHeadVersion()).toBe(v1);
    expect(Array.from(again.headFile(v2)!)).toEqual([2]);
    expect(again.headVersions().map((h) => [h.version, h.current])).toEqual([
      [v1, true],
      [v2, false],
    ]);
    expect(() => again.setCurrentHead(99)).toThrow(/no head version 99/);
    again.close();
  });
});
