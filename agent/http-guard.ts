// Who may drive the agent's local API: the device owner. Three checks before any route runs:
// - the Host header is one this device answers to (an IP literal, localhost, its host name, or
//   http.allowedHosts), so a DNS-rebinding page on another origin cannot read it;
// - a browser request from another site is refused (Sec-Fetch-Site, Origin), except following a
//   link to the page itself; writes carry a content type a cross-site form cannot send;
// - with a token, everything but the page and the login needs it: a bearer header, or the session
//   cookie the page gets by logging in once (HttpOnly, SameSite=Strict).

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { HttpError } from '../core/json-api.js';

export const SESSION_COOKIE = 'edgetune_session';

export interface GuardOptions {
  token?: string | undefined;
  allowedHosts: string[];
}

/** The names this device answers to, lower case, without ports. */
export function deviceHostNames(extra: string[]): Set<string> {
  const name = hostname().toLowerCase();
  return new Set(['localhost', name, `${name}.local`, ...extra.map((h) => h.toLowerCase())]);
}

export function checkHost(req: IncomingMessage, names: Set<string>): void {
  const host = (req.headers.host ?? '').toLowerCase();
  const bare = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  if (isIP(bare) !== 0 || names.has(bare)) return;
  throw new HttpError(
    'HOST_NOT_ALLOWED',
    `Host ${JSON.stringify(req.headers.host ?? '')} is not a name of this device: use its IP address, or add the name to http.allowedHosts`,
  );
}

/** Refuses requests a page on another origin made; a link to the page itself is fine. */
export function checkSameOrigin(req: IncomingMessage, method: string, path: string): void {
  const site = req.headers['sec-fetch-site'];
  const navigation = method === 'GET' && path === '/' && req.headers['sec-fetch-mode'] === 'navigate';
  if (site !== undefined && site !== 'same-origin' && site !== 'none' && !navigation) {
    throw new HttpError('CROSS_ORIGIN', `requests from another site (Sec-Fetch-Site: ${site}) are refused`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !navigation && origin !== `http://${req.headers.host ?? ''}`) {
    throw new HttpError('CROSS_ORIGIN', `requests from ${origin} are refused: only the agent's own page may call its API`);
  }
}

/** A cross-site form or no-cors fetch can only send text/plain, form or multipart bodies. */
export function checkContentType(req: IncomingMessage, expected: 'json' | 'image' | 'none'): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const ok =
    expected === 'image'
      ? type.startsWith('image/') || type === 'application/octet-stream'
      : type === 'application/json' || (expected === 'none' && type === '');
  if (!ok) {
    const want = expected === 'image' ? 'image/* or application/octet-stream' : 'application/json';
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${JSON.stringify(type)} is not accepted here: send ${want}`);
  }
}

/** The session cookie's value: derived from the token, so it changes when the token does. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('edgetune agent session').digest('hex');
}

export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${30 * 24 * 3600}`;
}

/** True when the request carries the token (bearer header) or the session cookie. */
export function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ') && same(header.slice(7), token)) return true;
  const cookie = (req.headers.cookie ?? '')
    .split(';')
    .map((c) => c.trim())
    .find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  return cookie !== undefined && same(cookie.slice(SESSION_COOKIE.length + 1), sessionValue(token));
}

export function same(given: string, expected: string): boolean {
  const a = createHmac('sha256', 'compare').update(given).digest();
  const b = createHmac('sha256', 'compare').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1' || address === 'localhost';
}
