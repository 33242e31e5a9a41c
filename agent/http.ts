// The agent's local HTTP API and labelling page. Plain node:http: a dozen routes do not need a framework.
// Changes need "Authorization: Bearer <token>" when a token is configured; reads are open on the bind
// address (loopback by default).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, type RunningServer, listen, readBody, readJson, requireToken, sendJson } from '../core/json-api.js';
import { thumbnail } from '../runtime/image/thumbnail.js';
import type { Sample } from '../runtime/samples/store.js';
import type { Logger } from '../core/log.js';
import { type BuiltPage, loadPage, sendPage } from '../core/web-page.js';
import type { ClassCountJson, HeadJson, HealthJson } from './api-types.js';

export interface AgentApi {
  health(): HealthJson;
  metrics(): string;
  listSamples(query: { labelled?: boolean; limit: number; offset: number }): Sample[];
  getSample(id: string): Sample | undefined;
  sampleImage(id: string): Buffer | undefined;
  upload(bytes: Buffer, label: string | null): { sample: Sample; created: boolean; queued: boolean };
  setLabel(id: string, label: string | null): Sample;
  deleteSample(id: string): boolean;
  classes(): ClassCountJson[];
  head(): HeadJson;
  train(): Promise<Record<string, unknown>>;
  rollback(version: number): Record<string, unknown>;
  capture(): Promise<Record<string, unknown>>;
}

export interface HttpOptions {
  host: string;
  port: number;
  token?: string | undefined;
  maxUploadBytes: number;
}

export async function startHttpServer(api: AgentApi, options: HttpOptions, log: Logger): Promise<RunningServer> {
  const page = await loadPage('agent');
  return listen(
    (req, res) => handle(api, options, page, req, res),
    { host: options.host, port: options.port },
    (fields) => log.error('http request failed', fields),
  );
}

function labelFrom(value: unknown, field: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw new HttpError('LABEL_INVALID', `field "${field}" must be a string or null`);
  return value;
}

async function handle(api: AgentApi, options: HttpOptions, page: BuiltPage, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const sampleMatch = /^\/api\/samples\/([0-9a-f]{64})(\/image|\/label)?$/.exec(path);

  if (method === 'GET' && path === '/') return sendPage(res, page);
  if (method === 'GET' && path === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return;
  }
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
    return sendJson(res, 200, {
      samples: api.listSamples({
        ...(labelled === null ? {} : { labelled: labelled === 'true' }),
        limit,
        offset,
      }),
    });
  }
  if (method === 'POST' && path === '/api/samples') {
    requireToken(req, options.token);
    const bytes = await readBody(req, options.maxUploadBytes);
    if (bytes.length === 0) throw new HttpError('EMPTY_BODY', 'POST an image as the request body');
    const result = api.upload(bytes, url.searchParams.get('label'));
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
      requireToken(req, options.token);
      const body = await readJson(req);
      return sendJson(res, 200, { sample: api.setLabel(id, labelFrom(body.label, 'label')) });
    }
    if (method === 'DELETE' && sub === '/label') {
      requireToken(req, options.token);
      return sendJson(res, 200, { sample: api.setLabel(id, null) });
    }
    if (method === 'DELETE' && sub === undefined) {
      requireToken(req, options.token);
      if (!api.deleteSample(id)) throw new HttpError('SAMPLE_NOT_FOUND', `no sample ${id}`);
      return sendJson(res, 200, { deleted: id });
    }
  }
  if (method === 'GET' && path === '/api/classes') return sendJson(res, 200, { classes: api.classes() });
  if (method === 'GET' && path === '/api/head') return sendJson(res, 200, api.head());
  if (method === 'POST' && path === '/api/train') {
    requireToken(req, options.token);
    return sendJson(res, 200, await api.train());
  }
  if (method === 'POST' && path === '/api/capture') {
    requireToken(req, options.token);
    return sendJson(res, 201, await api.capture());
  }
  if (method === 'POST' && path === '/api/head/rollback') {
    requireToken(req, options.token);
    const body = await readJson(req);
    if (!Number.isInteger(body.version)) throw new HttpError('BAD_REQUEST', 'field "version" must be an integer');
    return sendJson(res, 200, api.rollback(body.version as number));
  }
  throw new HttpError('NOT_FOUND', `no route ${method} ${path}`);
}
