// Plain node:http helpers shared by the agent's API and the fleet console's: JSON replies, bounded
// bodies, bearer tokens, and errors that carry their HTTP status.

import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpStatusOf } from './error-catalogue.js';
import { EdgetuneError, type ErrorCode, errorMessage } from './errors.js';

/** A request the HTTP layer itself refuses (bad JSON, no token, no route); its status is the catalogue's. */
export class HttpError extends EdgetuneError {
  get status(): number {
    return httpStatusOf(this.code);
  }
}

/** The status and body a thrown error answers with: the catalogue's status for its code, else a 500. */
export function errorReply(err: unknown): { status: number; code: ErrorCode } {
  if (err instanceof EdgetuneError) return { status: httpStatusOf(err.code), code: err.code };
  return { status: 500, code: 'INTERNAL' };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Listens with `handle`; a thrown error becomes a JSON error reply with its catalogue status. A 5xx (any
 * error without a code included) is the server's fault, so `onServerError` logs it with its stack.
 */
export async function listen(
  handle: Handler,
  options: { host: string; port: number },
  onServerError: (fields: Record<string, unknown>) => void,
): Promise<RunningServer> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const { status, code } = errorReply(err);
      if (status >= 500)
        onServerError({
          method: req.method,
          url: req.url,
          status,
          code,
          error: errorMessage(err),
          stack: err instanceof Error ? err.stack : undefined,
        });
      if (!res.headersSent) sendJson(res, status, { error: errorMessage(err), code });
      else res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendHtml(res: ServerResponse, html: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError('PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError('PAYLOAD_TOO_LARGE', `body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, 64 * 1024);
  try {
    const value = JSON.parse(body.toString('utf8') || '{}') as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new HttpError('BAD_JSON', `request body must be a JSON object: ${errorMessage(err)}`);
  }
}

/** Accepts "Authorization: Bearer <token>", or ?token= where a header cannot be set (EventSource). */
export function requireToken(req: IncomingMessage, token: string | undefined, url?: URL): void {
  if (!token) return;
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ') && sameSecret(header.slice(7), token)) return;
  const query = url?.searchParams.get('token');
  if (query && sameSecret(query, token)) return;
  throw new HttpError('UNAUTHORIZED', 'missing or wrong bearer token');
}

/** Compares in constant time (of the digests), so response timing does not reveal the token. */
function sameSecret(given: string, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(token));
}
