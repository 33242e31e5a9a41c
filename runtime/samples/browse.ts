// Finding samples in the store: the filters and orders the labelling page offers, as SQL, with a
// count per filter. A query may be pinned to `asOf` (a creation time) so that pages of results stay
// the same while new samples arrive: the page shows those as "N new" and loads them on request.

import { UNKNOWN } from '../head/head.js';

export const SAMPLE_ORDERS = ['newest', 'oldest', 'least-confident', 'worth'] as const;
export type SampleOrder = (typeof SAMPLE_ORDERS)[number];

/** `all`, `unlabelled`, `labelled`, `unknown`, `quarantined`, `label:<class>`, `predicted:<class>`. */
export type SampleFilter =
  { kind: 'all' | 'unlabelled' | 'labelled' | 'unknown' | 'quarantined' } | { kind: 'label' | 'predicted'; label: string };

export interface BrowseQuery {
  filter: SampleFilter;
  order: SampleOrder;
  limit: number;
  offset: number;
  /** Only samples created at or before this time (ms). */
  asOf?: number;
}

export interface FilterCounts {
  all: number;
  unlabelled: number;
  labelled: number;
  unknown: number;
  quarantined: number;
  /** Labelled samples per class. */
  label: Record<string, number>;
  /** Samples per predicted class (unknown included), of those not quarantined. */
  predicted: Record<string, number>;
}

/** The filters that take no class name. */
export const SIMPLE_FILTERS = ['all', 'unlabelled', 'labelled', 'unknown', 'quarantined'] as const;

/** The WHERE clause (with its parameters) of a filter. */
export function filterSql(filter: SampleFilter, asOf?: number): { where: string; params: unknown[] } {
  const where = [filter.kind === 'quarantined' ? "status = 'quarantined'" : "status = 'ok'"];
  const params: unknown[] = [];
  if (filter.kind === 'unlabelled') where.push('label IS NULL');
  if (filter.kind === 'labelled') where.push('label IS NOT NULL');
  if (filter.kind === 'unknown') {
    where.push('prediction = ?');
    params.push(UNKNOWN);
  }
  if (filter.kind === 'label' || filter.kind === 'predicted') {
    where.push(filter.kind === 'label' ? 'label = ?' : 'prediction = ?');
    params.push(filter.label);
  }
  if (asOf !== undefined) {
    where.push('created_at <= ?');
    params.push(asOf);
  }
  return { where: where.join(' AND '), params };
}

/** Ties broken by id, so that every order is total and pages never overlap. The worth order is ranked
 * in memory (worth.ts). */
export const ORDER_SQL: Record<Exclude<SampleOrder, 'worth'>, string> = {
  newest: 'created_at DESC, id',
  oldest: 'created_at ASC, id',
  // Samples without a prediction yet come last: nothing to be unsure about.
  'least-confident': 'prediction_score IS NULL, prediction_score ASC, created_at DESC, id',
};
