// Whether a sample is in a filter of /api/browse, decided in the page as the server's query decides it
// (filterSql in runtime/samples/browse.ts): the page counts how far its shown cards reach into the
// query's results after some were labelled out of the filter. test/unit/page-filter.test.ts holds the
// two to the same answer for every filter.

import type { SampleJson } from '../api-types.js';

export function inFilter(s: Pick<SampleJson, 'status' | 'label' | 'prediction'>, filter: string): boolean {
  if (filter === 'quarantined') return s.status === 'quarantined';
  if (s.status !== 'ok') return false;
  if (filter === 'unlabelled') return s.label === null;
  if (filter === 'labelled') return s.label !== null;
  if (filter === 'unknown') return s.prediction === 'unknown';
  if (filter.startsWith('label:')) return s.label === filter.slice('label:'.length);
  if (filter.startsWith('predicted:')) return s.prediction === filter.slice('predicted:'.length);
  return true;
}
