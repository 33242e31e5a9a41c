// The labelling page decides in the browser which shown cards are still in the filter (to know where
// the next page starts); the server decides it in SQL. Every filter, over samples in every state, must
// get the same answer from both.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inFilter } from '../../agent/page/sample-filter.js';
import { type SampleFilter } from '../../runtime/samples/browse.js';
import { SampleStore } from '../../runtime/samples/store.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const filterText = (f: SampleFilter) => ('label' in f ? `${f.kind}:${f.label}` : f.kind);

describe('the page filter and the store query', () => {
  it('find the same samples for every filter', () => {
    const store = SampleStore.open(join(tmp.path, 'store'));
    let n = 0;
    const bytes = () => new TextEncoder().encode(`image-${n++}`);
    // Every combination of label and prediction, as ok samples; quarantined ones with and without a label.
    for (const label of [null, 'daisy', 'rose'])
      for (const prediction of [null, 'daisy', 'rose', 'unknown']) {
        const { sample } = store.add(bytes(), { origin: 'test', label });
        if (prediction) store.setPrediction(sample.id, { label: prediction, score: 0.5, unknown: prediction === 'unknown', head: 1 });
      }
    for (const label of [null, 'daisy']) store.quarantine(bytes(), { origin: 'test', error: 'not an image', label });

    const filters: SampleFilter[] = [
      { kind: 'all' },
      { kind: 'unlabelled' },
      { kind: 'labelled' },
      { kind: 'unknown' },
      { kind: 'quarantined' },
      ...['daisy', 'rose', 'tulip'].flatMap((label) => [
        { kind: 'label' as const, label },
        { kind: 'predicted' as const, label },
      ]),
    ];
    const everything = store.browse({ filter: { kind: 'all' }, order: 'newest', limit: 100, offset: 0 }).samples;
    const quarantined = store.browse({ filter: { kind: 'quarantined' }, order: 'newest', limit: 100, offset: 0 }).samples;
    const samples = [...everything, ...quarantined];
    expect(samples).toHaveLength(14);
    const sizes: Record<string, number> = {};
    for (const filter of filters) {
      const query = store.browse({ filter, order: 'newest', limit: 100, offset: 0 }).samples.map((s) => s.id);
      const page = samples.filter((s) => inFilter(s, filterText(filter))).map((s) => s.id);
      expect([...page].sort(), filterText(filter)).toEqual([...query].sort());
      sizes[filterText(filter)] = query.length;
    }
    // The answers are not trivially empty or full.
    expect(sizes).toEqual({
      all: 12,
      unlabelled: 4,
      labelled: 8,
      unknown: 3,
      quarantined: 2,
      'label:daisy': 4,
      'predicted:daisy': 3,
      'label:rose': 4,
      'predicted:rose': 3,
      'label:tulip': 0,
      'predicted:tulip': 0,
    });
    store.close();
  });
});
