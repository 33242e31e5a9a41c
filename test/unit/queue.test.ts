import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../../agent/queue.js';

const item = (id: number, labelled = false) => ({ id, labelled });

describe('BoundedQueue drop policy', () => {
  it('drops the oldest unlabelled item when full, keeping the newest frame', () => {
    const dropped: number[] = [];
    const q = new BoundedQueue<ReturnType<typeof item>>(3, 'oldest', (i) => dropped.push(i.id));
    for (let i = 1; i <= 5; i++) expect(q.push(item(i))).toBe(true);
    expect(dropped).toEqual([1, 2]);
    expect(q.clear().map((i) => i.id)).toEqual([3, 4, 5]);
  });

  it('drops the incoming item when the policy is newest', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(2, 'newest');
    expect(q.push(item(1))).toBe(true);
    expect(q.push(item(2))).toBe(true);
    expect(q.push(item(3))).toBe(false);
    expect(q.dropped).toBe(1);
    expect(q.clear().map((i) => i.id)).toEqual([1, 2]);
  });

  it('never drops a labelled item, even over the limit, and never evicts one', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(2, 'oldest');
    q.push(item(1, true));
    q.push(item(2, true));
    expect(q.push(item(3, true))).toBe(true);
    expect(q.length).toBe(3);
    // Full of labelled items: an unlabelled frame has nothing to evict and is itself dropped.
    expect(q.push(item(4))).toBe(false);
    expect(q.clear().map((i) => i.id)).toEqual([1, 2, 3]);
  });
});
