// The devices table of a fleet of thousands: filtered, sorted and paged on the server, so the page
// only ever holds one page of rows. A filter is words that must all match: plain text matches the id,
// tags, release, status, addresses and backbone; `field:value` matches one field (status:offline,
// tag:north, release:0.2.0, problem:yes); `field>n` / `field<n` compare a number (cpuTempC>70).

import type { DeviceView } from './device-view.js';

export const SORTABLE = [
  'id',
  'status',
  'lastSeen',
  'release',
  'uptimeSeconds',
  'cpuTempC',
  'load1',
  'memoryAvailableBytes',
  'diskFreeBytes',
  'headVersion',
  'fleetVersion',
  'holdoutAccuracy',
  'samples',
  'backbone',
] as const;
export type SortField = (typeof SORTABLE)[number];

export interface TableQuery {
  filter: string;
  sort: SortField;
  order: 'asc' | 'desc';
  offset: number;
  /** null: every row. */
  limit: number | null;
}

export interface TablePage {
  rows: DeviceView[];
  /** Rows that match the filter (of all `counts.all`). */
  total: number;
  counts: { all: number; online: number; offline: number; neverConnected: number; failingSources: number };
}

export function parseTableQuery(params: URLSearchParams, fail: (message: string) => never): TableQuery {
  const sort = params.get('sort') ?? 'id';
  if (!(SORTABLE as readonly string[]).includes(sort)) fail(`query parameter "sort" must be one of ${SORTABLE.join(', ')}`);
  const order = params.get('order') ?? 'asc';
  if (order !== 'asc' && order !== 'desc') fail('query parameter "order" must be asc or desc');
  const int = (name: string, max: number) => {
    const text = params.get(name);
    if (text === null) return null;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > max) fail(`query parameter "${name}" must be an integer from 0 to ${max}`);
    return n;
  };
  return {
    filter: (params.get('q') ?? '').slice(0, 500),
    sort: sort as SortField,
    order,
    offset: int('offset', 1e6) ?? 0,
    limit: int('limit', 5000),
  };
}

export function tablePage(views: DeviceView[], query: TableQuery): TablePage {
  const matches = compileFilter(query.filter);
  const rows = views.filter(matches);
  const dir = query.order === 'asc' ? 1 : -1;
  const key = query.sort;
  rows.sort((a, b) => {
    const x = a[key];
    const y = b[key];
    // Missing values sort last either way.
    if (x === null || x === undefined) return y === null || y === undefined ? a.id.localeCompare(b.id) : 1;
    if (y === null || y === undefined) return -1;
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), 'en', { numeric: true });
    return c === 0 ? a.id.localeCompare(b.id) : c * dir;
  });
  return {
    rows: query.limit === null ? rows.slice(query.offset) : rows.slice(query.offset, query.offset + query.limit),
    total: rows.length,
    counts: {
      all: views.length,
      online: views.filter((v) => v.status === 'online').length,
      offline: views.filter((v) => v.status === 'offline').length,
      neverConnected: views.filter((v) => v.status === 'never-connected').length,
      failingSources: views.filter((v) => v.sourcesFailing.length > 0).length,
    },
  };
}

function compileFilter(text: string): (view: DeviceView) => boolean {
  const tests = text
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .map((word): ((v: DeviceView) => boolean) => {
      const compare = /^([a-z0-9]+)([<>])(-?[\d.]+)$/i.exec(word);
      if (compare) {
        const [, field, op, value] = compare as unknown as [string, string, string, string];
        return (v) => {
          const x = numberField(v, field);
          return x !== null && (op === '>' ? x > Number(value) : x < Number(value));
        };
      }
      const pair = /^([a-z]+):(.*)$/.exec(word);
      if (pair) {
        const [, field, value] = pair as unknown as [string, string, string];
        if (field === 'tag') return (v) => v.tags.some((t) => t.toLowerCase() === value);
        if (field === 'status') return (v) => v.status === value;
        if (field === 'problem') return (v) => (v.sourcesFailing.length > 0 || v.status !== 'online') === (value === 'yes');
        return (v) => String((v as unknown as Record<string, unknown>)[field] ?? '').toLowerCase() === value;
      }
      return (v) => haystack(v).includes(word);
    });
  return (v) => tests.every((t) => t(v));
}

function numberField(view: DeviceView, field: string): number | null {
  const entry = Object.entries(view).find(([k]) => k.toLowerCase() === field.toLowerCase());
  return typeof entry?.[1] === 'number' ? entry[1] : null;
}

function haystack(v: DeviceView): string {
  return [v.id, v.status, v.release ?? '', v.backbone ?? '', ...v.tags, ...v.addresses].join(' ').toLowerCase();
}
