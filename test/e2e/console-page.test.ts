import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { FleetConsole } from '../../console/service.js';
import { type ConsoleWeb, startConsoleWeb } from '../../console/web.js';
import { loadHead } from '../../runtime/head/head-file.js';
import { PROTOCOL_VERSION, topics } from '../../runtime/sync/protocol.js';
import { connectMqtt } from '../support/mqtt.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { tinyBundle } from '../support/tiny-bundle.js';
import { until } from '../support/until.js';

// The console page's operator features in Debian's Chromium with real agents: vitals in a sortable,
// filterable table with links to each device's page, a device's logs streaming while the dialog is
// open, the merge policy and its verdicts, the rollout's stages per device, and downloads.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-sync',
];
const CLASSES = ['daisy', 'sunflower'];
const tmp = tempDir();
let fleet: FleetConsole;
let web: ConsoleWeb;
let hot: Agent;
let cool: Agent;
let browser: Browser;
let page: Page;
const clients: MqttClient[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium or set CHROMIUM_PATH`);
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({
    dir: join(tmp.path, 'console'),
    fleet: 'farm',
    broker: { port: 0 },
    commandTimeoutMs: 20_000,
    minCanaryHoldout: 0,
  });
  web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(tmp.path, 'console', 'web-token') });
  const thermal = (name: string, value: string) => {
    const file = join(tmp.path, `${name}.temp`);
    writeFileSync(file, value);
    return file;
  };
  [hot, cool] = await Promise.all([
    startFleetAgent(fleet, 'pi-hot', join(tmp.path, 'pi-hot'), {}, {}, undefined, { thermalFile: thermal('hot', '71234') }),
    startFleetAgent(fleet, 'pi-cool', join(tmp.path, 'pi-cool'), {}, {}, undefined, { thermalFile: thermal('cool', '45000') }),
  ]);
  fleet.addDevice('pi-spare');
  await Promise.all([feed(hot, CLASSES, 0, 4), feed(cool, CLASSES, 4, 4)]);
  await hot.train();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ acceptDownloads: true });
  if (process.env.DEBUG_BROWSER) page.on('pageerror', (e) => console.log('page error:', e.message));
  await page.goto(web.url);
  await page.locator('#live.on').waitFor();
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await browser?.close();
  await Promise.all([hot?.stop(), cool?.stop()]);
  await web?.close();
  await fleet?.stop();
  tmp.remove();
});

const row = (id: string) => page.locator(`tr[data-device="${id}"]`);
const ids = () => page.locator('#device-rows tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.device));

/** The newest released fleet head's version, merged and rolled out here when no earlier test released one. */
async function releasedFleetVersion(): Promise<number> {
  if (!fleet.registry.releasedFleetHeads()[0]) await fleet.mergeAndRollout();
  return fleet.registry.releasedFleetHeads()[0]!.version;
}

describe('console page features in Chromium', () => {
  it('shows vitals and release, sorts and filters on them, and links each device to its own page', async () => {
    await expect.poll(() => row('pi-hot').locator('td.vitals').textContent()).toMatch(/^71\.2 °C · load [\d.]+ · mem \d+/);
    expect(await row('pi-cool').locator('td.vitals').textContent()).toMatch(/^45\.0 °C/);
    expect(await row('pi-spare').locator('td.online').textContent()).toBe('never-connected');
    expect(await row('pi-spare').locator('td.seen').textContent()).toBe('never');
    expect(await row('pi-hot').locator('td.release').textContent()).toBe('–');
    expect(await row('pi-hot').locator('a.name').getAttribute('href')).toBe(hot.url);
    expect(await page.locator('#device-count').textContent()).toBe('2 of 3 online, 1 never connected');
    // Sorting by vitals (CPU temperature): hottest first on the second click.
    await page.locator('#devices th[data-sort="cpuTempC"]').click();
    await expect.poll(ids).toEqual(['pi-cool', 'pi-hot', 'pi-spare']);
    await page.locator('#devices th[data-sort="cpuTempC"]').click();
    await expect.poll(ids).toEqual(['pi-hot', 'pi-cool', 'pi-spare']);
    await page.getByLabel('filter devices').fill('cpuTempC>60');
    await expect.poll(ids).toEqual(['pi-hot']);
    expect(await page.locator('#page-info').textContent()).toBe('1–1 of 1');
    await page.getByLabel('filter devices').fill('status:never-connected');
    await expect.poll(ids).toEqual(['pi-spare']);
    await page.getByLabel('filter devices').fill('');
    await expect.poll(ids).toHaveLength(3);
  });

  it("streams a device's logs while the dialog is open", async () => {
    await page.getByRole('button', { name: 'show the logs of pi-hot' }).click();
    const lines = page.locator('#log-lines');
    await expect.poll(() => lines.textContent()).toContain('agent started');
    const before = await lines.locator('div').count();
    await feed(hot, CLASSES, 10, 1);
    await hot.train();
    await expect.poll(() => lines.locator('div').count(), { timeout: 10_000 }).toBeGreaterThan(before);
    expect(await lines.textContent()).toMatch(/new head (kept|not kept)/);
    await page.getByRole('button', { name: 'close' }).click();
  });

  it('sets the merge policy, which merges on its own; the verdict and the rollout stages show with their numbers', async () => {
    await page.locator('#policy-after').fill('1');
    await page.getByRole('button', { name: 'save' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toBe('merge policy: after 1 new heads, no schedule');
    await cool.train();
    const verdict = page.locator('#verdict-rows tr').first();
    await expect.poll(() => verdict.getAttribute('data-verdict'), { timeout: 30_000 }).toBe('released');
    expect(await verdict.locator('td').nth(1).textContent()).toMatch(/^\d new device heads \(policy: after 1\)$/);
    expect(await verdict.locator('td.numbers').textContent()).toMatch(/^merged 2 · /);
    await expect
      .poll(() => page.locator('#rollout .rollout-title').textContent(), { timeout: 30_000 })
      .toBe('fleet head v1 released after 1 canaries');
    expect(await page.locator('#rollout .stage[data-stage="fleet"] .muted').textContent()).toMatch(/^fleet: 2 of 2 done in \d+\.\d s$/);
    expect(await page.locator('#rollout .stage[data-stage="fleet"] li').allTextContents()).toEqual([
      'pi-cool: applied (on v1)',
      'pi-hot: applied (on v1)',
    ]);
    // The released head on the devices' holdouts, as the API sums it.
  }, 60_000);

  it("shows the released head's recall per class and confusion, summed over the holdouts of the devices on it", async () => {
    const version = await releasedFleetVersion();
    // pi-hot and pi-cool have too few photos for a holdout; a third device reports one on this head.
    const sim = fleet.addDevice('pi-sim');
    const client = await connectMqtt(fleet.brokerUrl, 'pi-sim', sim.password, 4, clients);
    const holdout = {
      classes: ['daisy', 'sunflower'],
      perClass: [],
      confusion: [
        [3, 1, 0],
        [0, 2, 1],
      ],
    };
    const state = {
      protocol: PROTOCOL_VERSION,
      device: 'pi-sim',
      online: true,
      backbone: hot.backbone.id,
      dim: hot.backbone.dim,
      fleetVersion: version,
      holdout,
    };
    await client.publishAsync(topics.device('farm', 'pi-sim', 'state'), Buffer.from(JSON.stringify(state)), { qos: 1 });
    await expect
      .poll(() => page.locator('#fleet-accuracy-summary').textContent())
      .toBe(`fleet head v${version}: 71.4 % of 7 holdout photos on pi-sim (no holdout: pi-cool, pi-hot)`);
    const rows = page.locator('#fleet-accuracy-rows tr');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)))).toEqual([
      ['daisy', '4', '75.0 %', '100.0 %'],
      ['sunflower', '3', '66.7 %', '66.7 %'],
    ]);
    expect(await page.locator('#fleet-confusion tbody tr').allTextContents()).toEqual(['daisy310', 'sunflower021']);
  }, 40_000);

  it("edits any agent setting for a tag: the agent's schema refuses a bad value, the diff shows before the push", async () => {
    await fetch(`${web.origin}/api/devices/pi-cool/tags`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tags: ['north'] }),
    });
    const editor = page.locator('#fc-form');
    await editor.getByLabel('scope').selectOption('tag');
    await editor.getByLabel('tag or device id').fill('north');
    const rows = editor.locator('.fc-row');
    await rows.nth(0).getByLabel('setting', { exact: true }).fill('head.unknownThreshold');
    // The field's type, range and default come from the agent's schema.
    await expect.poll(() => rows.nth(0).locator('.fc-hint').textContent()).toBe('number or null · 0…1 · default null · at once');
    await rows.nth(0).getByLabel('value').fill('7');
    await editor.getByRole('button', { name: 'show changes' }).click();
    await expect.poll(() => editor.locator('#fc-error').textContent()).toMatch(/field "head\.unknownThreshold": Too big/);
    expect(fleet.registry.configLayers().size).toBe(0);
    expect(cool.config.head.unknownThreshold).toBeNull();

    await rows.nth(0).getByLabel('value').fill('0.65');
    await editor.getByRole('button', { name: 'add a setting' }).click();
    await rows.nth(1).getByLabel('setting', { exact: true }).fill('queue.drop');
    await rows.nth(1).getByLabel('value').fill('newest');
    await editor.getByRole('button', { name: 'show changes' }).click();
    const diff = editor.locator('#fc-diff-rows tr');
    await expect.poll(() => diff.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.device))).toEqual(['pi-cool']);
    expect(await diff.locator('td').nth(2).locator('div').allTextContents()).toEqual([
      'head.unknownThreshold: null → 0.65',
      'queue.drop: "oldest" → "newest"',
    ]);
    // Previewed, nothing is saved or sent yet.
    expect(fleet.registry.configLayers().size).toBe(0);
    expect(cool.config.head.unknownThreshold).toBeNull();
    await editor.getByRole('button', { name: 'push to 1 device' }).click();
    await expect.poll(() => diff.first().getAttribute('data-status'), { timeout: 20_000 }).toBe('pushed');
    expect(await diff.first().locator('td').nth(3).textContent()).toBe('after a restart: queue.drop');
    expect(cool.config.head.unknownThreshold).toBe(0.65);
    expect(hot.config.head.unknownThreshold).toBeNull();
    expect(fleet.registry.configLayers().get('tag:north')).toEqual({ head: { unknownThreshold: 0.65 }, queue: { drop: 'newest' } });
    await expect
      .poll(() => editor.locator('#fc-layers').textContent())
      .toBe('tag:north: {"head":{"unknownThreshold":0.65},"queue":{"drop":"newest"}}');
  }, 40_000);

  it('rolls a fleet head out to the devices of one tag from the merge box; the others keep theirs', async () => {
    await fetch(`${web.origin}/api/devices/pi-cool/tags`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tags: ['north'] }),
    });
    await until('a device head to merge', () => fleet.registry.deviceHeadCount() > 0);
    const hotBefore = hot.currentHead?.meta.metrics.fleetVersion ?? null;
    const version = fleet.registry.nextFleetVersion();
    await page.getByLabel('roll out only to the devices with this tag').fill('north');
    await page.getByRole('button', { name: 'merge & roll out' }).click();
    await expect
      .poll(() => page.locator('#status').textContent(), { timeout: 30_000 })
      .toMatch(new RegExp(`^fleet head v${version} from .*: released to the devices tagged north$`));
    expect(cool.currentHead?.meta.metrics.fleetVersion).toBe(version);
    expect(hot.currentHead?.meta.metrics.fleetVersion ?? null).toBe(hotBefore);
    await expect.poll(() => row('pi-cool').locator('td.fleet').textContent()).toBe(`v${version}`);
    expect(fleet.registry.fleetHead(version)?.status).toBe('released-to-tag');
    await page.getByLabel('roll out only to the devices with this tag').fill('');
  }, 60_000);

  it('pushes an agent update to a tag from the page: only tagged devices are in it, named when they cannot take it', async () => {
    await fetch(`${web.origin}/api/devices/pi-cool/tags`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tags: ['north'] }),
    });
    const bundle = tinyBundle(join(tmp.path, 'bundles'), '0.4.0');
    await page.getByLabel('agent bundle on the console machine').fill(bundle.file);
    await page.getByLabel('update only the devices with this tag').fill('north');
    await page.getByRole('button', { name: 'push agent update' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toBe('agent update 0.4.0 started for the devices tagged north');
    // Run from a checkout, pi-cool cannot take it; pi-hot has no tag and is not in the rollout at all.
    await expect
      .poll(() => page.locator('#rollout .unable li').allTextContents())
      .toEqual([expect.stringMatching(/^cannot take it: pi-cool: no release section/)]);
    const ended = await until('the rollout ends', () => fleet.progress.list().find((r) => r.subject === '0.4.0' && r.endedAt !== null));
    expect(ended).toMatchObject({ ok: false, summary: 'agent 0.4.0: no device could take it now (0 of 0 on it, 1 cannot take it)' });
  }, 40_000);

  it('downloads a device head and a fleet head as files edgetune predict reads', async () => {
    const expect_ = { backboneId: hot.backbone.id, dim: hot.backbone.dim };
    const [device] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'download the head of pi-hot' }).click(),
    ]);
    expect(device.suggestedFilename()).toMatch(/^pi-hot-v\d+\.head$/);
    await device.saveAs(join(tmp.path, 'device.head'));
    expect(loadHead(join(tmp.path, 'device.head'), expect_).labels).toEqual(CLASSES);
    const version = await releasedFleetVersion();
    const [fleetHead] = await Promise.all([
      page.waitForEvent('download'),
      page.locator(`#fleet-heads button[data-download="${version}"]`).click(),
    ]);
    expect(fleetHead.suggestedFilename()).toBe(`fleet-v${version}.head`);
    await fleetHead.saveAs(join(tmp.path, 'fleet.head'));
    expect(loadHead(join(tmp.path, 'fleet.head'), expect_).labels).toEqual(CLASSES);
    await until('page status', async () => (await page.locator('#status').textContent()) === `downloaded fleet-v${version}.head`);
  }, 40_000);
});
