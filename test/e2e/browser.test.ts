import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page, type Response, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { FLOWERS_DIR, IMAGES_DIR, MODEL_DIR, REPO_ROOT, tempDir } from '../support/paths.js';

// The labelling page in Debian's Chromium (apt-get install chromium), driven by playwright-core.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const tmp = tempDir();
const truth = new Map<string, string>();
let agent: Agent;
let browser: Browser;
let page: Page;
let pageResponse: Response | null;
const consoleMessages: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  const config = AgentConfigSchema.parse({
    device: { id: 'browser-pi' },
    data: { dir: join(tmp.path, 'data'), holdoutFraction: 0 },
    model: { workers: 1 },
    head: { retrainAfterLabels: 6 },
    sources: { camera: { command: [join(REPO_ROOT, 'test/support/fake-camera.sh'), IMAGES_DIR, join(tmp.path, 'camera.state')] } },
    http: { port: 0, token: 'browser-test-token' },
  });
  agent = await Agent.start(config, { log: silentLogger });
  for (const c of ['daisy', 'sunflower']) {
    for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(0, 8)) {
      const { sample } = agent.ingest(readFileSync(join(FLOWERS_DIR, c, f)), null, 'upload');
      truth.set(sample.id, c);
    }
  }
  await agent.pipeline.idle();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  if (process.env.DEBUG_BROWSER) page.on('console', (m) => console.log('page:', m.text()));
  if (process.env.DEBUG_BROWSER) page.on('pageerror', (e) => console.log('page error:', e.message));
  page.on('console', (m) => consoleMessages.push(m.text()));
  pageResponse = await page.goto(`${agent.url}/?token=browser-test-token`);
});

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  tmp.remove();
});

/** Clicks the right class button on `count` unlabelled cards, alternating between the two classes. */
async function labelOnPage(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const want = i % 2 === 0 ? 'daisy' : 'sunflower';
    const ids = await page.locator('.card[data-label=""]').evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.id!));
    const id = ids.find((candidate) => truth.get(candidate) === want)!;
    await page.locator(`.card[data-id="${id}"]`).getByRole('button', { name: want, exact: true }).click();
    await page.locator(`.card[data-id="${id}"][data-label="${want}"]`).waitFor();
  }
}

describe('labelling page in Chromium', () => {
  it('is sent with a CSP of its own script and style hashes, runs under it, and takes the token out of the address bar', async () => {
    const csp = pageResponse?.headers()['content-security-policy'] ?? '';
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*'; style-src 'sha256-[A-Za-z0-9+/]+=*'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("default-src 'none'");
    // The script ran (it filled in the device name from /health) and the style applied (the grid).
    await expect.poll(() => page.locator('#device').textContent()).toBe('browser-pi');
    expect(await page.locator('#samples').evaluate((n) => getComputedStyle(n).display)).toBe('grid');
    expect(consoleMessages.filter((m) => /Content Security Policy/i.test(m))).toEqual([]);
    expect(page.url()).toBe(`${agent.url}/`);
  });

  it('shows the samples with thumbnails and no head yet', async () => {
    await expect.poll(() => page.locator('.card').count()).toBe(16);
    expect(await page.locator('#device').textContent()).toBe('browser-pi');
    expect(await page.locator('#head-version').textContent()).toBe('none');
    const loaded = await page
      .locator('.card img')
      .first()
      .evaluate((img: HTMLImageElement) => img.decode().then(() => img.naturalWidth));
    expect(loaded).toBeGreaterThan(0);
  });

  it('labels samples by clicking and sees the head version change', async () => {
    for (const c of ['daisy', 'sunflower']) {
      await page.fill('#new-class', c);
      await page.click('#add-class');
    }
    await expect.poll(() => page.locator('.card').first().getByRole('button').allTextContents()).toEqual(['daisy', 'sunflower']);
    await labelOnPage(6);
    // Six labels trigger a retrain on the device; the page shows the new head without a reload.
    await expect.poll(() => page.locator('#head-version').textContent(), { timeout: 20_000 }).toBe('1');
    await labelOnPage(6);
    await expect.poll(() => page.locator('#head-version').textContent(), { timeout: 20_000 }).toBe('2');
    const labelled = agent.store.list({ labelled: true, limit: 100 });
    expect(labelled).toHaveLength(12);
    expect(labelled.every((s) => s.label === truth.get(s.id))).toBe(true);
  });

  it('trains on the button, shows predictions, and captures from the camera', async () => {
    await page.click('#train');
    await expect.poll(() => page.locator('#head-version').textContent(), { timeout: 20_000 }).toBe('3');
    await page.check('#only-unlabelled');
    await expect.poll(() => page.locator('.card').count()).toBe(4);
    const predictions = await page.locator('.card .meta').allTextContents();
    expect(predictions.every((t) => /predicted: (daisy|sunflower|unknown) \(\d+ %\)/.test(t))).toBe(true);
    expect(await page.locator('#capture').isVisible()).toBe(true);
    await page.click('#capture');
    await expect.poll(() => page.locator('.card').count(), { timeout: 20_000 }).toBe(5);
  });

  it('shows the error from the API when a change is refused', async () => {
    await page.goto(`${agent.url}/?token=wrong-token`);
    await page.locator('.card').first().waitFor();
    await page.locator('.card').first().getByRole('button').first().click();
    await expect.poll(() => page.locator('#status.err').textContent()).toMatch(/token/i);
  });
});
