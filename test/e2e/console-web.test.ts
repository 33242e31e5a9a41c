import { chmodSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetConsole } from '../../console/service.js';
import { type ConsoleWeb, loadOrCreateApiToken, startConsoleWeb } from '../../console/web.js';
import type { Agent } from '../../agent/agent.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// The console's web UI and API: the token, the routes' errors, and the page in Debian's Chromium
// (playwright-core) watching a real agent join, train, and take a fleet head pushed from the page.
const CLASSES = ['daisy', 'sunflower', 'tulip'];

const tmp = tempDir();
const tokenFile = join(tmp.path, 'console', 'web-token');
let fleet: FleetConsole;
let web: ConsoleWeb;
let agent: Agent | undefined;
let browser: Browser | undefined;
let page: Page;

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({
    dir: join(tmp.path, 'console'),
    fleet: 'web',
    broker: { port: 0 },
    commandTimeoutMs: 20_000,
    minCanaryHoldout: 0,
  });
  web = await startConsoleWeb(fleet, { port: 0, tokenFile, heartbeatSeconds: 0.2 });
});

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await web?.close();
  await fleet?.stop();
  tmp.remove();
});

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: string; on?: ConsoleWeb } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const on = options.on ?? web;
  const token = options.token === undefined ? on.token : options.token;
  const res = await fetch(`${on.origin}${path}`, {
    method,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** An open /api/events stream: its text so far, read until a string arrives, or its end. */
async function openStream(on: ConsoleWeb) {
  const abort = new AbortController();
  const res = await fetch(`${on.origin}/api/events`, { headers: { authorization: `Bearer ${on.token}` }, signal: abort.signal });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  let done = false;
  const pump = async () => {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return void (done = true);
      text += new TextDecoder().decode(chunk.value);
    }
  };
  const ended = pump().catch(() => undefined);
  return {
    text: () => text,
    read: (what: string) => until(`"${what}" on the event stream`, () => text.includes(what) || done),
    ended: ended.then(() => done),
    abort: () => abort.abort(),
  };
}

describe('console web API', () => {
  it('refuses every API call without the token or with a wrong one, and takes it as a bearer header or ?token=', async () => {
    for (const [method, path] of [
      ['GET', '/api/devices'],
      ['GET', '/api/fleet'],
      ['GET', '/api/events'],
      ['POST', '/api/merge'],
      ['POST', '/api/rollback'],
      ['POST', '/api/devices/pi-1/train'],
    ] as const) {
      expect(await call(method, path, { token: null })).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
      expect(await call(method, path, { token: 'not-the-token' })).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    }
    expect(await call('GET', '/api/devices')).toMatchObject({ status: 200, body: { devices: [], total: 0 } });
    expect(await call('GET', `/api/fleet?token=${web.token}`, { token: null })).toMatchObject({
      status: 200,
      body: { fleet: 'web', heads: [], released: null, problems: [] },
    });
    expect(web.url).toBe(`${web.origin}/?token=${web.token}`);
    const pageRes = await fetch(`${web.origin}/`);
    expect(pageRes.status).toBe(200);
    expect(pageRes.headers.get('content-security-policy')).toMatch(/script-src 'sha256-/);
  });

  it('keeps the token in a file of mode 0600, reuses it, and refuses a token file others can read', async () => {
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(web.token);
    expect(loadOrCreateApiToken(tokenFile)).toEqual({ token: web.token, created: false });
    const open = join(tmp.path, 'open-token');
    copyFileSync(tokenFile, open);
    chmodSync(open, 0o644);
    expect(() => loadOrCreateApiToken(open)).toThrow(
      `${open}: the API token file is readable by group or others (mode 0644); run chmod 600 ${open}`,
    );
    await expect(startConsoleWeb(fleet, { port: 0, tokenFile: open })).rejects.toMatchObject({ code: 'CONSOLE_TOKEN_FILE_MODE' });
  });

  it('answers a bad config body or query with a 400 naming the field', async () => {
    const config = (body: string) => call('POST', '/api/devices/pi-1/config', { body });
    expect(await config('{"head":{"unknownThreshold":7}}')).toMatchObject({
      status: 400,
      body: { code: 'SYNC_BAD_CONFIG', error: expect.stringContaining('field "head.unknownThreshold"') },
    });
    expect(await config('{"head":{"retrainAfterLabels":2.5}}')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('field "head.retrainAfterLabels"') },
    });
    expect(await config('{"fleet":{"apply":"sometimes"}}')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('field "fleet.apply"') },
    });
    expect(await config('{"head":')).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await call('GET', '/api/devices?history=lots')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('"history"') },
    });
  });

  it('answers 404 for an unknown device or route, and 409 when there is nothing to merge or roll back', async () => {
    for (const action of ['push-head', 'train', 'config']) {
      expect(await call('POST', `/api/devices/ghost/${action}`, { body: '{}' })).toEqual({
        status: 404,
        body: { code: 'DEVICE_NOT_FOUND', error: 'no device "ghost" in fleet "web"' },
      });
    }
    expect(await call('GET', '/api/nothing-here')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    expect(await call('POST', '/api/merge')).toMatchObject({ status: 409, body: { code: 'CONSOLE_NO_HEADS' } });
    expect(await call('POST', '/api/rollback')).toMatchObject({ status: 409, body: { code: 'CONSOLE_NOTHING_TO_ROLL_BACK' } });
  });

  it('answers 504 when a device does not answer a command in time, and 409 when it is offline', async () => {
    const slow = await FleetConsole.start({
      dir: join(tmp.path, 'slow-console'),
      fleet: 'slow',
      broker: { port: 0 },
      commandTimeoutMs: 300,
    });
    const slowWeb = await startConsoleWeb(slow, { port: 0, tokenFile: join(tmp.path, 'slow-console', 'web-token') });
    try {
      // A device the registry has seen online, with no agent behind it any more.
      slow.registry.recordState('mute-pi', { protocol: 1, device: 'mute-pi', online: true }, 1, null);
      expect(await call('POST', '/api/devices/mute-pi/train', { on: slowWeb })).toMatchObject({
        status: 504,
        body: { code: 'COMMAND_TIMEOUT', error: expect.stringContaining('device mute-pi did not answer "train"') },
      });
      slow.registry.recordState('mute-pi', { protocol: 1, device: 'mute-pi', online: false }, 1, null);
      expect(await call('POST', '/api/devices/mute-pi/push-head', { on: slowWeb })).toMatchObject({
        status: 409,
        body: { code: 'DEVICE_OFFLINE' },
      });
    } finally {
      await slowWeb.close();
      await slow.stop();
    }
  });

  it('streams every console change and head event as Server-Sent Events, with heartbeats', async () => {
    const stream = await openStream(web);
    await stream.read('event: hello');
    fleet.emit('change', { type: 'fleet' });
    fleet.emit('head', { device: 'pi-9', id: 'h1', version: 3, duplicate: false });
    await stream.read('event: head');
    expect(stream.text()).toContain('event: change\ndata: {"type":"fleet"}\n\n');
    expect(stream.text()).toContain('event: head\ndata: {"device":"pi-9","id":"h1","version":3,"duplicate":false}\n\n');
    await stream.read(': heartbeat');
    stream.abort();
  });

  it('closes with its event streams open, ending them', async () => {
    const second = await startConsoleWeb(fleet, { port: 0, tokenFile });
    const stream = await openStream(second);
    await stream.read('event: hello');
    await second.close();
    await stream.ended;
    expect(fleet.listenerCount('change')).toBe(1); // only `web`'s stream is still listening
  });
});

describe('console page in Chromium', () => {
  const row = () => page.locator('tr[data-device="web-pi"]');

  // The tests tell one story (join, retrain, merge, push, leave) but each passes alone: these bring the
  // fleet to the point a test starts from when the tests before it did not run.
  const joinDevice = async (): Promise<Agent> => {
    agent ??= await startFleetAgent(fleet, 'web-pi', join(tmp.path, 'web-pi'), { apply: 'off' }, { holdoutFraction: 0.3 });
    await expect.poll(() => row().getAttribute('data-online')).toBe('true');
    return agent;
  };
  const withDeviceHead = async (): Promise<Agent> => {
    const device = await joinDevice();
    if (!device.currentHead) {
      await feed(device, CLASSES, 0, 10);
      await device.train();
    }
    return device;
  };
  const withFleetHeadReleased = async (): Promise<Agent> => {
    const device = await withDeviceHead();
    await until('the device head stored', () => fleet.registry.deviceHeadCount('web-pi') === 1);
    if (fleet.registry.fleetHead(1)?.status !== 'released') await fleet.mergeAndRollout();
    return device;
  };

  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.newPage();
    if (process.env.DEBUG_BROWSER) page.on('console', (m) => console.log('page:', m.text()));
    if (process.env.DEBUG_BROWSER) page.on('pageerror', (e) => console.log('page error:', e.message));
    await page.goto(web.url);
    await page.locator('#live.on').waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { loadMark: number; layoutShift: number };
      // Marks this page load: a reload would lose it.
      w.loadMark = 42;
      // Cumulative layout shift not caused by the user (Chromium's layout-shift entries).
      w.layoutShift = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as { value: number; hadRecentInput: boolean }[])
          if (!e.hadRecentInput) w.layoutShift += e.value;
      }).observe({ type: 'layout-shift', buffered: true });
    });
  });

  it('sees a device that joins after the page is open appear and turn online, without a reload', async () => {
    expect(await page.locator('#no-devices').isVisible()).toBe(true);
    expect(new URL(page.url()).search).toBe(''); // the token left the address bar
    agent = await startFleetAgent(fleet, 'web-pi', join(tmp.path, 'web-pi'), { apply: 'off' }, { holdoutFraction: 0.3 });
    await expect.poll(() => row().getAttribute('data-online')).toBe('true');
    expect(await row().locator('td.online').textContent()).toBe('online');
    expect(await row().locator('td.backbone').textContent()).toBe(agent.backbone.id);
    expect(await row().locator('td.seen').textContent()).toMatch(/just now|\d+ s ago/);
    expect(await page.locator('#no-devices').isVisible()).toBe(false);
    expect(await page.evaluate(() => (window as unknown as { loadMark: number }).loadMark)).toBe(42);
  });

  it('retrains the device from its row and shows its head, samples per class and holdout accuracy', async () => {
    const agent = await joinDevice();
    await feed(agent, CLASSES, 0, 10);
    await expect.poll(() => row().locator('td.classes').textContent()).toBe('daisy 10 · sunflower 10 · tulip 10');
    await page.getByRole('button', { name: 'retrain web-pi' }).click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 20_000 }).toBe('web-pi kept a new head v1');
    await expect.poll(() => row().locator('td.head').textContent()).toBe('v1 softmax');
    const accuracy = agent.currentHead!.meta.metrics.holdoutAccuracy!;
    await expect.poll(() => row().locator('td.accuracy').textContent()).toBe(`${(accuracy * 100).toFixed(1)} %`);
    await expect.poll(() => page.locator('#chart g[data-device="web-pi"] circle').count()).toBeGreaterThanOrEqual(1);
    const [device] = (await call('GET', '/api/devices')).body.devices as {
      accuracy: { accuracy: number; headVersion: number }[];
      config: unknown;
    }[];
    expect(device!.accuracy.at(-1)).toMatchObject({ accuracy, headVersion: 1 });
    expect(device!.config).toMatchObject({ fleet: { apply: 'off' } });
  });

  it('merges from the page and lists fleet head v1 as released', async () => {
    await withDeviceHead();
    await until('the device head stored', () => fleet.registry.deviceHeadCount('web-pi') === 1);
    await page.getByRole('button', { name: 'merge & roll out' }).click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 20_000 }).toBe('fleet head v1 from web-pi: released');
    const v1 = page.locator('#fleet-heads tr[data-version="1"]');
    expect(await v1.getAttribute('data-status')).toBe('released');
    expect(await v1.locator('td').nth(2).textContent()).toBe('web-pi');
    // fleet.apply is off on this device: the retained fleet head did not change it.
    expect(await row().locator('td.fleet').textContent()).toBe('–');
  });

  it("lets the operator accept a class from the page's class list; the decision is on disk", async () => {
    fleet.decideClass('orchid', 'refused');
    const item = page.locator('#classes li[data-label="orchid"]');
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 20_000 }).toBe('refused');
    await item.getByRole('button', { name: 'accept' }).click();
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 20_000 }).toBe('accepted');
    const db = new Database(join(tmp.path, 'console', 'registry.db'), { readonly: true });
    expect(db.prepare('SELECT decision FROM fleet_classes WHERE label = ?').get('orchid')).toEqual({ decision: 'accepted' });
    db.close();
  });

  it('pushes config from the form, then pushes the fleet head, which the device really applies', async () => {
    const agent = await withFleetHeadReleased();
    await page.getByRole('button', { name: 'push config to web-pi' }).click();
    const dialog = page.getByRole('dialog', { name: 'Push config to web-pi' });
    await dialog.getByLabel('fleet heads').selectOption('replace');
    await dialog.getByLabel('unknown threshold').fill('0.6');
    // First the diff against what the device reported, then the push.
    await dialog.getByRole('button', { name: 'show changes' }).click();
    await expect
      .poll(() => dialog.locator('#config-diff li').allTextContents())
      .toEqual(['head.unknownThreshold: null → 0.6', 'fleet.apply: "off" → "replace"']);
    expect(agent!.config.head.unknownThreshold).toBeNull();
    await dialog.getByRole('button', { name: 'push 2 changes' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(agent.config.fleet!.apply).toBe('replace');
    expect(agent.config.head.unknownThreshold).toBe(0.6);

    await page.getByRole('button', { name: 'push head to web-pi' }).click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 20_000 }).toBe('web-pi applied fleet head v1');
    await expect.poll(() => row().locator('td.fleet').textContent()).toBe('v1');
    expect(agent.currentHead!.meta.metrics.fleetVersion).toBe(1);
    expect(fleet.devices()[0]!.fleetVersion).toBe(1);
    // Rows, chart and lists changed live all along without moving the page under the pointer.
    expect(await page.evaluate(() => (window as unknown as { layoutShift: number }).layoutShift)).toBeLessThan(0.01);
    if (process.env.DEBUG_BROWSER) await page.screenshot({ path: '/tmp/console-web.png', fullPage: true });
  });

  it('says so on the page when its token is wrong', async () => {
    const other = await browser!.newPage();
    await other.goto(`${web.origin}/?token=not-the-token`);
    await expect.poll(() => other.locator('#status.err').textContent()).toMatch(/wrong or missing API token/);
    expect(await other.locator('tr[data-device]').count()).toBe(0);
    await expect.poll(() => other.locator('#live').textContent()).toBe('disconnected: reload the page');
    await other.close();
  });

  it('shows the device offline when its agent stops', async () => {
    await (await joinDevice()).stop();
    agent = undefined;
    await expect.poll(() => row().getAttribute('data-online')).toBe('false');
    expect(await row().locator('td.online').textContent()).toBe('offline');
    expect(await page.getByRole('button', { name: 'push head to web-pi' }).isDisabled()).toBe(true);
    expect(await call('POST', '/api/devices/web-pi/train')).toMatchObject({ status: 409, body: { code: 'DEVICE_OFFLINE' } });
  });
});
