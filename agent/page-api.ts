// The routes the labelling page needs beyond the sample API: browsing with filters, orders and
// counts; labelling many samples at once; the current head's score per class; live events.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readJson, sendJson } from '../core/json-api.js';
import { EventStream } from '../core/event-stream.js';
import { type BrowseQuery, SAMPLE_ORDERS, SIMPLE_FILTERS, type SampleFilter, type SampleOrder } from '../runtime/samples/browse.js';
import type { BrowseJson, BulkLabelJson, FilterCountsJson, SampleJson, ScoresJson } from './api-types.js';
import { AGENT_EVENT_NAMES, type AgentEvents } from './events.js';

export interface PageApi {
  device: string;
  events: AgentEvents;
  headVersion(): number | null;
  browse(query: BrowseQuery): { samples: SampleJson[]; total: number };
  filterCounts(asOf?: number): FilterCountsJson;
  setLabels(ids: string[], label: string | null): number;
  /** Undefined for an unknown sample; empty scores when there is no head or no embedding. */
  scores(id: string): ScoresJson | undefined;
}

const MAX_PAGE = 200;
const MAX_BULK = 1000;

function filterParam(text: string | null): SampleFilter {
  if (text === null) return { kind: 'all' };
  if ((SIMPLE_FILTERS as readonly string[]).includes(text)) return { kind: text as (typeof SIMPLE_FILTERS)[number] };
  const match = /^(label|predicted):(.{1,64})$/.exec(text);
  if (match) return { kind: match[1] as 'label' | 'predicted', label: match[2]! };
  throw new HttpError(
    'BAD_REQUEST',
    `query parameter "filter" must be one of ${SIMPLE_FILTERS.join(', ')}, label:<class> or predicted:<class>; got "${text}"`,
  );
}

function orderParam(text: string | null): SampleOrder {
  if (text === null) return 'newest';
  if ((SAMPLE_ORDERS as readonly string[]).includes(text)) return text as SampleOrder;
  throw new HttpError('BAD_REQUEST', `query parameter "order" must be one of ${SAMPLE_ORDERS.join(', ')}; got "${text}"`);
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new HttpError('BAD_REQUEST', `query parameter "${name}" must be an integer from 0 to ${max}`);
  return n;
}

function browse(api: PageApi, url: URL): BrowseJson {
  const filter = filterParam(url.searchParams.get('filter'));
  const asOf = intParam(url, 'asOf', Date.now(), Number.MAX_SAFE_INTEGER);
  const query = {
    filter,
    order: orderParam(url.searchParams.get('order')),
    limit: intParam(url, 'limit', 60, MAX_PAGE),
    offset: intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER),
    asOf,
  };
  const { samples, total } = api.browse(query);
  const all = api.browse({ ...query, asOf: Number.MAX_SAFE_INTEGER, limit: 0, offset: 0 }).total;
  return { samples, total, asOf, newer: all - total, counts: api.filterCounts(asOf), headVersion: api.headVersion() };
}

function bulkBody(body: Record<string, unknown>): { ids: string[]; label: string | null } {
  const { ids, label } = body;
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > MAX_BULK ||
    !ids.every((id) => typeof id === 'string' && /^[0-9a-f]{64}$/.test(id))
  )
    throw new HttpError('BAD_REQUEST', `field "ids" must be an array of 1 to ${MAX_BULK} sample ids`);
  if (label !== null && typeof label !== 'string') throw new HttpError('LABEL_INVALID', 'field "label" must be a string or null');
  return { ids: ids as string[], label };
}

/** Serves a page route and returns true, or returns false for a path that is not one. */
export class PageRoutes {
  private readonly stream = new EventStream(15_000);
  private readonly forward: (() => void)[];

  constructor(private readonly api: PageApi) {
    this.forward = AGENT_EVENT_NAMES.map((name) => {
      const listener = (data: unknown) => this.stream.broadcast(name, data);
      api.events.on(name, listener);
      return () => api.events.off(name, listener);
    });
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' && path === '/api/events') {
      this.stream.add(res, { device: this.api.device, headVersion: this.api.headVersion() });
      return true;
    }
    if (method === 'GET' && path === '/api/browse') {
      sendJson(res, 200, browse(this.api, url));
      return true;
    }
    if (method === 'POST' && path === '/api/samples/labels') {
      const { ids, label } = bulkBody(await readJson(req));
      sendJson(res, 200, { labelled: this.api.setLabels(ids, label) } satisfies BulkLabelJson);
      return true;
    }
    const scores = /^\/api\/samples\/([0-9a-f]{64})\/scores$/.exec(path);
    if (method === 'GET' && scores) {
      const reply = this.api.scores(scores[1]!);
      if (!reply) throw new HttpError('SAMPLE_NOT_FOUND', `no sample ${scores[1]}`);
      sendJson(res, 200, reply);
      return true;
    }
    return false;
  }

  close(): void {
    for (const off of this.forward) off();
    this.stream.close();
  }
}
