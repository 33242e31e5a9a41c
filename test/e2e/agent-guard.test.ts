// The local API is the device owner's: a page on another origin (real Chromium) can neither write to
// nor read from the agent, a foreign Host header (DNS rebinding) is refused, and an agent bound beyond
// loopback makes itself a token that every read but the page then needs.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { launchChromium } from '../support/chromium.js';
import { FLOWERS_DIR, MODEL_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir();
const daisies = readdirSync(join(FLOWERS_DIR, 'daisy'))
  .sort()
  .slice(0, 3)
  .map((f) => readFileSync(join(FLOWERS_DIR, 'daisy', f)));
let open: Agent;
let browser: Browser;

async function start(id: string, http: Record<string, unknown>): Promise<Agent> {
  const config = AgentConfigSchema.parse({
    device: { id },
    data: { dir: join(tmp.path, id) },
    model: { workers: 1 },
    head: { retrainAfterLabels: 1 },
    http: { port: 0, ...http },
  });
  return Agent.start(config, { log: silentLogger });
}

/** A raw request, so the Host header can be anything (fetch does not let it be set). */
function raw(url: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  open = await start('open', {}); // the default: loopback, no token
  open.ingest(daisies[0]!, null, 'upload');
  await open.pipeline.idle();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await open?.stop();
  tmp.remove();
});

describe('a page on another origin', () => {
  it('cannot store a sample, label, train or read anything, with no token set', async () => {
    // The attacker's page: served from http://localhost:<other port>, another origin (and site) than
    // the agent's http://127.0.0.1:<port>.
    const evil = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>cat pictures</title>');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    const before = open.store.counts();
    const id = open.store.list()[0]!.id;
    const page = await browser.newPage();
    try {
      await page.goto(evilUrl);
      const outcome = await page.evaluate(
        async ({ agent, id }) => {
          const tries: Record<string, string> = {};
          const attempt = async (name: string, run: () => Promise<Response>) => {
            try {
              const r = await run();
              tries[name] = `status ${r.status} ${r.type}`;
              if (r.type !== 'opaque') tries[name] += ` ${(await r.text()).slice(0, 60)}`;
            } catch (e) {
              tries[name] = `blocked: ${(e as Error).message}`;
            }
          };
          const body = new Uint8Array(64).fill(7);
          await attempt('upload', () =>
            fetch(`${agent}/api/samples?label=pwned`, { method: 'POST', mode: 'no-cors', body, headers: { 'content-type': 'text/plain' } }),
          );
          await attempt('upload-blob', () =>
            fetch(`${agent}/api/samples?label=pwned`, { method: 'POST', mode: 'no-cors', body: new Blob([body]) }),
          );
          await attempt('train', () => fetch(`${agent}/api/train`, { method: 'POST', mode: 'no-cors' }));
          await attempt('label', () =>
            fetch(`${agent}/api/samples/${id}/label`, {
              method: 'PUT',
              body: '{"label":"pwned"}',
              headers: { 'content-type': 'application/json' },
            }),
          );
          await attempt('list', () => fetch(`${agent}/api/samples`));
          await attempt('health', () => fetch(`${agent}/health`));
          // A photo shown in an <img> would leak it to whoever looks at the attacker's page.
          tries.image = await new Promise<string>((resolve) => {
            const img = new Image();
            img.onload = () => resolve('loaded');
            img.onerror = () => resolve('refused');
            img.src = `${agent}/api/samples/${id}/image?full`;
          });
          // A form posts as a top-level navigation, which CORS never blocks.
          const form = Object.assign(document.createElement('form'), { method: 'POST', action: `${agent}/api/train`, target: 'sink' });
          const frame = Object.assign(document.createElement('iframe'), { name: 'sink' });
          document.body.append(frame, form);
          await new Promise<void>((resolve) => {
            frame.onload = () => resolve();
            form.submit();
          });
          return tries;
        },
        { agent: open.url!, id },
      );
      // Writes sent no-cors come back opaque: the page cannot see the 403, but nothing happened (below).
      expect(outcome.list).toMatch(/^blocked/);
      expect(outcome.health).toMatch(/^blocked/);
      expect(outcome.label).toMatch(/^blocked/); // the preflight is refused
      expect(outcome.image).toBe('refused');
    } finally {
      await page.close();
      evil.close();
    }
    // On disk: no new sample, no label, no head.
    expect(open.store.counts()).toEqual(before);
    expect(open.store.get(id)?.label).toBeNull();
    expect(open.store.headVersions()).toEqual([]);
    expect(readdirSync(join(tmp.path, 'open', 'images'), { recursive: true }).filter((f) => String(f).length === 67)).toHaveLength(1);
  });

  it('the server refuses what browsers mark as cross-site, other Origins and form content types', async () => {
    const url = open.url!;
    expect(await raw(url, '/api/train', { 'sec-fetch-site': 'cross-site' }, 'POST')).toBe(403);
    expect(await raw(url, '/api/samples', { 'sec-fetch-site': 'same-site' })).toBe(403);
    expect(await raw(url, '/api/train', { origin: 'http://evil.example' }, 'POST')).toBe(403);
    expect(await raw(url, '/api/samples', { 'content-type': 'text/plain', 'content-length': '0' }, 'POST')).toBe(415);
    expect(await raw(url, '/api/train', { 'content-type': 'application/x-www-form-urlencoded' }, 'POST')).toBe(415);
    // A link to the page from elsewhere still opens it.
    expect(await raw(url, '/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' })).toBe(200);
    expect(open.store.headVersions()).toEqual([]);
  });
});

describe('DNS rebinding', () => {
  it('answers only to its own names: an IP address, localhost, its host name, http.allowedHosts', async () => {
    const url = open.url!;
    const port = new URL(url).port;
    expect(await raw(url, '/health', { host: `attacker.example:${port}` })).toBe(421);
    expect(await raw(url, '/api/samples', { host: 'rebind.attacker.example' })).toBe(421);
    expect(await raw(url, '/health', { host: `127.0.0.1:${port}` })).toBe(200);
    expect(await raw(url, '/health', { host: `localhost:${port}` })).toBe(200);
    expect(await raw(url, '/health', { host: `[::1]:${port}` })).toBe(200);
  });
});

describe('bound beyond loopback', () => {
  it('makes a token (0600, in the data folder) that every route but the page needs; the page logs in with a cookie', async () => {
    const agent = await start('lan', { host: '0.0.0.0', allowedHosts: ['pi.lan'] });
    const file = join(tmp.path, 'lan', 'http-token');
    let made = '';
    try {
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      made = readFileSync(file, 'utf8');
      const token = made.trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      const url = `http://127.0.0.1:${new URL(agent.url!).port}`;
      const upload = (headers: Record<string, string>) =>
        fetch(`${url}/api/samples`, { method: 'POST', body: daisies[1], headers: { 'content-type': 'image/jpeg', ...headers } });
      expect((await upload({})).status).toBe(401);
      expect(agent.store.counts().samples).toBe(0);
      expect((await upload({ authorization: `Bearer ${token}` })).status).toBe(201);
      const id = agent.store.list()[0]!.id;
      for (const path of ['/api/samples', `/api/samples/${id}`, `/api/samples/${id}/image?full`, '/metrics', '/api/head', '/api/classes']) {
        expect((await fetch(`${url}${path}`)).status, path).toBe(401);
      }
      // From the device itself, /health says only that the agent is up (the release check needs that).
      const liveness = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
      expect(liveness).toEqual({ status: 'ok', release: null });
      expect((await fetch(`${url}/`)).status).toBe(200);
      expect(await raw(url, '/health', { host: 'pi.lan' })).toBe(200);
      // The page's login: a wrong token is refused, the right one sets an HttpOnly, SameSite=Strict cookie.
      const login = (given: string) =>
        fetch(`${url}/api/login`, {
          method: 'POST',
          body: JSON.stringify({ token: given }),
          headers: { 'content-type': 'application/json' },
        });
      expect((await login('wrong-token')).status).toBe(401);
      const ok = await login(token);
      const cookie = ok.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^edgetune_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\//);
      expect(cookie).not.toContain(token);
      const session = cookie.split(';')[0]!;
      const image = await fetch(`${url}/api/samples/${id}/image?full`, { headers: { cookie: session } });
      expect(image.status).toBe(200);
      expect(Buffer.from(await image.arrayBuffer()).equals(daisies[1]!)).toBe(true);
      expect((await fetch(`${url}/health`, { headers: { cookie: session } }).then((r) => r.json())) as object).toHaveProperty('samples', 1);
    } finally {
      await agent.stop();
    }
    // The next start reuses the token it made.
    const again = await start('lan', { host: '0.0.0.0' });
    await again.stop();
    expect(readFileSync(file, 'utf8')).toBe(made);
  });
});
