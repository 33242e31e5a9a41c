// The agent's local HTTP API and labelling page. Plain node:http: a dozen routes do not need a framework.
// Every request passes the guards in http-guard.ts first (Host, same origin, content type); with a
// token, every route but the page and the login needs it (bearer header or the page's session cookie).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { rmSync } from 'node:fs';
import { HttpError, type RunningServer, listen, readJson, sendJson } from '../core/json-api.js';
import {
  authorized,
  checkContentType,
  checkHost,
  checkSameOrigin,
  deviceHostNames,
  isLoopback,
  same,
  sessionCookie,
} from './http-guard.js';
import { Slots, type UploadedFile, receiveUpload } from './upload.js';
import { thumbnail } from '../runtime/image/thumbnail.js';
import type { Sample, SampleOrder } from '../runtime/samples/store.js';
import type { Logger } from '../core/log.js';
import { type BuiltPage, loadPage, sendPage } from '../core/web-page.js';
import type { ClassCountJson, HeadJson, HealthJson } from './api-types.js';
import { type PageApi, PageRoutes } from './page-api.js';

export interface AgentApi {
  health(): HealthJson;
  metrics(): string;
  listSamples(query: { labelled?: boolean; limit: number; offset: number; order?: SampleOrder }): Sample[];
  getSample(id: string): Sample | undefined;
  sampleImage(id: string): Buffer | undefined;
  /** Resolves when the embedding queue has room for an upload; rejects (QUEUE_FULL) after a bounded wait. */
  waitForQueueRoom(): Promise<void>;
  upload(file: UploadedFile, label: string | null): Promise<{ sample: Sample; created: boolean; queued: boolean }>;
  setLabel(id: string, label: string | null): Sample;
  deleteSample(id: string): boolean;
  classes(): ClassCountJson[];
  newClass(label: string, ids: string[]): { label: string; samples: Sample[] };
  head(): HeadJson;
  train(): Promise<Record<string, unknown>>;
  rollback(version: number): Record<string, unknown>;
  capture(): Promise<Record<string, unknown>>;
  /** What the labelling page browses and listens to (agent/page-api.ts). */
  page: PageApi;
}

export interface HttpOptions {
  host: string;
  port: number;
  token?: string | undefined;
  maxUploadBytes: number;
  /** Uploads received at once; more wait up to `uploadWaitMs`, then get 503. */
  maxConcurrentUploads: number;
  uploadWaitMs: number;
  /** Where uploads are streamed to (on the store's filesystem). */
  incomingDir: string;
  /** Host names (besides IP literals, localhost and the host name) the API answers to. */
  allowedHosts: string[];
}

export async function startHttpServer(api: AgentApi, options: HttpOptions, log: Logger): Promise<RunningServer> {
  const uploads = new Slots(options.maxConcurrentUploads);
  const names = deviceHostNames(options.allowedHosts);
  const page = await loadPage('agent');
  const pageRoutes = new PageRoutes(api.page);
  const server = await listen(
    async (req, res) => {
      checkHost(req, names);
      await handle(api, options, page, uploads, pageRoutes, req, res);
    },
    { host: options.host, port: options.port },
    (fields) => log.error('http request failed', fields),
  );
  return {
    ...server,
    close: async () => {
      pageRoutes.close();
      await server.close();
    },
  };
}

/** What a request's body must be: an image for uploads, JSON for the routes that read one. */
function bodyKind(method: string, path: string): 'json' | 'image' | 'none' {
  if (method === 'POST' && path === '/api/samples') return 'image';
  if (method === 'PUT' || path === '/api/head/rollback' || path === '/api/samples/labels' || path === '/api/classes') return 'json';
  return 'none';
}

function liveness(health: Record<string, unknown>): Record<string, unknown> {
  const fleet = health.fleet as { connected?: unknown; queued?: unknown } | undefined;
  return {
    status: health.status,
    release: health.release,
    ...(fleet ? { fleet: { connected: fleet.connected, queued: fleet.queued } } : {}),
  };
}

/** POST /api/login {"token"}: the page's one login; the answer sets the session cookie. */
async function login(token: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  checkContentType(req, 'json');
  const body = await readJson(req);
  if (!token) return sendJson(res, 200, { loggedIn: true, tokenRequired: false });
  if (typeof body.token !== 'string' || !same(body.token, token)) throw new HttpError('UNAUTHORIZED', 'wrong token');
  sendJson(res, 200, { loggedIn: true, tokenRequired: true }, { 'set-cookie': sessionCookie(token) });
}

/** Refusals (busy, queue full) come before the body is read, so nothing is stored and nothing acknowledged. */
async function receiveAndStore(api: AgentApi, options: HttpOptions, uploads: Slots, req: IncomingMessage, label: string | null) {
  const release = await uploads.acquire(options.uploadWaitMs);
  if (!release) throw new HttpError('UPLOADS_BUSY', `${uploads.size} uploads are being received; nothing was stored: retry later`);
  try {
    await api.waitForQueueRoom();
    const file = await receiveUpload(req, options.incomingDir, options.maxUploadBytes);
    try {
      return await api.upload(file, label);
    } finally {
      rmSync(file.path, { force: true });
    }
  } finally {
    release();
  }
}

function labelFrom(value: unknown, field: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw new HttpError('LABEL_INVALID', `field "${field}" must be a string or null`);
  return value;
}

async function handle(
  api: AgentApi,
  options: HttpOptions,
  page: BuiltPage,
  uploads: Slots,
  pageRoutes: PageRoutes,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const sampleMatch = /^\/api\/samples\/([0-9a-f]{64})(\/image|\/label)?$/.exec(path);
  checkSameOrigin(req, method, path);

  if (method === 'GET' && path === '/') return sendPage(res, page);
  if (method === 'GET' && path === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (method === 'POST' && path === '/api/login') return login(options.token, req, res);
  const token = options.token;
  if (token && !authorized(req, token)) {
    // The release health check runs on the device itself: it learns that the agent is up, nothing more.
    if (method === 'GET' && path === '/health' && isLoopback(req.socket.remoteAddress)) return sendJson(res, 200, liveness(api.health()));
    throw new HttpError('UNAUTHORIZED', 'this agent needs its token: "Authorization: Bearer <token>", or log in on its page');
  }
  if (method !== 'GET') checkContentType(req, bodyKind(method, path));
  // The page's browse, events, bulk-label and scores routes sit behind the same guards.
  if (await pageRoutes.handle(req, res, url)) return;
  if (method === 'GET' && path === '/health') return sendJson(res, 200, api.health());
  if (method === 'GET' && path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(api.metrics());
    return;
  }
  if (method === 'GET' && path === '/api/samples') {
    const labelled = url.searchParams.get('labelled');
    const limit = Math.min(500, Number(url.searchParams.get('limit') ?? 50) || 50);
    const offset = Number(url.searchParams.get('offset') ?? 0) || 0;
    const order = url.searchParams.get('order') ?? 'newest';
    if (order !== 'newest' && order !== 'worth') throw new HttpError('BAD_REQUEST', `order must be "newest" or "worth", got "${order}"`);
    return sendJson(res, 200, {
      samples: api.listSamples({
        // Worth labelling: only unlabelled samples can be.
        ...(order === 'worth' ? { labelled: false } : labelled === null ? {} : { labelled: labelled === 'true' }),
        limit,
        offset,
        order,
      }),
    });
  }
  if (method === 'POST' && path === '/api/samples') {
    const result = await receiveAndStore(api, options, uploads, req, url.searchParams.get('label'));
    return sendJson(res, result.created ? 201 : 200, result);
  }
  if (sampleMatch) {
    const [, id, sub] = sampleMatch as unknown as [string, string, string | undefined];
    if (method === 'GET' && sub === '/image') {
      const bytes = api.sampleImage(id);
      if (!bytes) throw new HttpError('IMAGE_NOT_FOUND', `sample ${id} has no stored image`);
      const body = url.searchParams.has('full') ? bytes : await thumbnail(bytes, `sample ${id.slice(0, 12)}`);
      res.writeHead(200, {
        'content-type': url.searchParams.has('full') ? 'application/octet-stream' : 'image/jpeg',
        'cache-control': 'max-age=3600',
      });
      res.end(body);
      return;
    }
    if (method === 'GET' && sub === undefined) {
      const sample = api.getSample(id);
      if (!sample) throw new HttpError('SAMPLE_NOT_FOUND', `no sample ${id}`);
      return sendJson(res, 200, { sample });
    }
    if (method === 'PUT' && sub === '/label') {
      const body = await readJson(req);
      return sendJson(res, 200, { sample: api.setLabel(id, labelFrom(body.label, 'label')) });
    }
    if (method === 'DELETE' && sub === '/label') {
      return sendJson(res, 200, { sample: api.setLabel(id, null) });
    }
    if (method === 'DELETE' && sub === undefined) {
      if (!api.deleteSample(id)) throw new HttpError('SAMPLE_NOT_FOUND', `no sample ${id}`);
      return sendJson(res, 200, { deleted: id });
    }
  }
  if (method === 'GET' && path === '/api/classes') return sendJson(res, 200, { classes: api.classes() });
  if (method === 'POST' && path === '/api/classes') {
    const body = await readJson(req);
    const samples = body.samples;
    if (!Array.isArray(samples) || !samples.every((s): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s))) {
      throw new HttpError('BAD_REQUEST', 'field "samples" must be a list of sample ids');
    }
    const label = labelFrom(body.label, 'label');
    if (label === null) throw new HttpError('LABEL_INVALID', 'field "label" must name the new class');
    return sendJson(res, 201, api.newClass(label, samples));
  }
  if (method === 'GET' && path === '/api/head') return sendJson(res, 200, api.head());
  if (method === 'POST' && path === '/api/train') {
    return sendJson(res, 200, await api.train());
  }
  if (method === 'POST' && path === '/api/capture') {
    return sendJson(res, 201, await api.capture());
  }
  if (method === 'POST' && path === '/api/head/rollback') {
    const body = await readJson(req);
    if (!Number.isInteger(body.version)) throw new HttpError('BAD_REQUEST', 'field "version" must be an integer');
    return sendJson(res, 200, api.rollback(body.version as number));
  }
  throw new HttpError('NOT_FOUND', `no route ${method} ${path}`);
}
