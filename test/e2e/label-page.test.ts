// The labelling page in Debian's Chromium, feature by feature. Every test starts its own agent on a
// fresh store with real flower photos, so each one passes alone; what the page did is checked in the
// store (through the agent's API), not only on screen.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import type { BrowseJson, SampleJson, ScoresJson } from '../../agent/api-types.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { until } from '../../core/wait.js';
import { launchChromium } from '../support/chromium.js';
import { FLOWERS_DIR, IMAGES_DIR, MODEL_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir('edgetune-label-page-');
let browser: Browser;
const running: { agent: Agent; page: Page }[] = [];

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  browser = await launchChromium();
});
afterEach(async () => {
  for (const { agent, page } of running.splice(0)) {
    await page.close();
    await agent.stop();
  }
});
afterAll(async () => {
  await browser?.close();
  tmp.remove();
});

const photos = (label: string, from: number, count: number) =>
  readdirSync(join(FLOWERS_DIR, label))
    .sort()
    .slice(from, from + count)
    .map((f) => readFileSync(join(FLOWERS_DIR, label, f)));

interface Setup {
  /** Unlabelled photos per class. */
  unlabelled?: Record<string, number>;
  /** Labelled photos per class (then a head is trained). */
  labelled?: Record<string, number>;
  viewport?: { width: number; height: number };
}

/** Stores every photo, waiting for room in the queue as an inbox does (a full queue drops unlabelled ones). */
async function ingest(agent: Agent, images: Buffer[], label: string | null): Promise<string[]> {
  const ids: string[] = [];
  for (const bytes of images) {
    await agent.pipeline.waitForRoom();
    ids.push(agent.ingest(bytes, label, 'upload').sample.id);
  }
  await agent.pipeline.idle();
  return ids;
}

/** A fresh agent with these photos, and the page open on it. */
async function open(setup: Setup): Promise<{ agent: Agent; page: Page; truth: Map<string, string> }> {
  const dir = join(tmp.path, `agent-${running.length}-${Date.now()}`);
  const config = AgentConfigSchema.parse({
    device: { id: 'page-pi' },
    data: { dir, holdoutFraction: 0 },
    model: { workers: 1 },
    head: { retrainAfterLabels: 0 },
    http: { port: 0 },
  });
  const agent = await Agent.start(config, { log: silentLogger });
  const truth = new Map<string, string>();
  for (const [label, n] of Object.entries(setup.labelled ?? {})) await ingest(agent, photos(label, 0, n), label);
  for (const [label, n] of Object.entries(setup.unlabelled ?? {}))
    for (const id of await ingest(agent, photos(label, 100, n), null)) truth.set(id, label);
  if (setup.labelled) await agent.train();
  const page = await browser.newPage(setup.viewport ? { viewport: setup.viewport } : {});
  running.push({ agent, page });
  await page.goto(`${agent.url}/`);
  await page.locator('#live.on').waitFor();
  await page.locator('.card').first().waitFor();
  return { agent, page, truth };
}

const api = async <T>(agent: Agent, path: string) => (await (await fetch(`${agent.url}${path}`)).json()) as T;
const cardIds = (page: Page) => page.locator('.card').evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.id!));

/** Scrolls the end of the list into view until the page has nothing more to load (how many pages that
 * takes depends on the window). Bounds, not speed: on a loaded 2-core CI host, re-reading a shifting
 * order after a head change took over poll's default second. A stall shows as "show more (N left)". */
const scrollToEnd = (page: Page) =>
  expect
    .poll(
      async () => {
        await page.evaluate(() => document.getElementById('more')!.scrollIntoView());
        return (await page.locator('#more').isHidden()) ? 'all loaded' : page.locator('#more').textContent();
      },
      { timeout: 30_000 },
    )
    .toBe('all loaded');

describe('labelling page: what it shows', () => {
  it('keeps the card under the pointer in place while 20 new samples arrive, and shows them on request', async () => {
    const { agent, page } = await open({ unlabelled: { daisy: 6, sunflower: 6 } });
    const target = page.locator('.card').nth(4);
    const id = await target.getAttribute('data-id');
    const before = await target.boundingBox();
    await target.locator('img').hover();
    await ingest(agent, photos('tulip', 0, 20), null);
    await page.locator('#new-bar', { hasText: '20 new samples' }).waitFor({ timeout: 30_000 });
    expect(await target.boundingBox()).toEqual(before);
    const under = await page.evaluate(({ x, y }) => (document.elementFromPoint(x, y)?.closest('.card') as HTMLElement | null)?.dataset.id, {
      x: before!.x + before!.width / 2,
      y: before!.y + before!.height / 2,
    });
    expect(under).toBe(id);
    expect(await page.locator('.card').count()).toBe(12);
    await page.click('#new-bar');
    await expect.poll(() => page.locator('.card').count()).toBe(32);
  });

  it('shows the current head and its version on every card, and refreshes them when the head changes', async () => {
    const { agent, page } = await open({ labelled: { daisy: 5, sunflower: 5 }, unlabelled: { daisy: 3 } });
    const texts = () => page.locator('.card .prediction').allTextContents();
    await expect.poll(texts).toEqual(Array(13).fill(expect.stringMatching(/ · head v1$/)));
    // A second head: labelled cards too now say what head v2 predicts.
    await ingest(agent, photos('sunflower', 5, 3), 'sunflower');
    const outcome = await agent.train();
    expect(outcome.version).toBe(2);
    await expect.poll(texts).toEqual(Array(13).fill(expect.stringMatching(/ · head v2$/)));
    await expect.poll(() => page.locator('#head-version').textContent()).toBe('2');
    const stored = await api<BrowseJson>(agent, '/api/browse?limit=100');
    expect(new Set(stored.samples.map((s) => s.predictionHead))).toEqual(new Set([2]));
    const shown = new Set(await cardIds(page));
    for (const s of stored.samples.filter((x) => shown.has(x.id)))
      expect(await page.locator(`.card[data-id="${s.id}"] .prediction`).textContent()).toContain(
        `${s.prediction} (${Math.round(s.predictionScore! * 100)} %)`,
      );
  });

  it('refreshes the predictions of every shown card on a head change, beyond the first 400', async () => {
    const { agent, page } = await open({ labelled: { daisy: 5, sunflower: 5 }, unlabelled: { daisy: 230, dandelion: 230 } });
    // Bounds, not speed: 470 cards and their re-prediction took over 30 s on a loaded, slower CI host.
    // Scrolling alone (the mouse wheel, never the "show more" button) loads every sample below the ones shown.
    await page.mouse.move(300, 300);
    await expect
      .poll(
        async () => {
          await page.mouse.wheel(0, 4000);
          return page.locator('.card').count();
        },
        { timeout: 120_000 },
      )
      .toBe(470);
    expect(new Set(await cardIds(page)).size).toBe(470);
    expect(await page.locator('.card').count()).toBe(470);
    await ingest(agent, photos('sunflower', 5, 3), 'sunflower');
    expect((await agent.train()).version).toBe(2);
    const heads = () =>
      page.locator('.card .prediction').evaluateAll((cards) => cards.map((c) => / · head v(\d+)$/.exec(c.textContent ?? '')?.[1]));
    await expect.poll(async () => new Set(await heads()), { timeout: 120_000 }).toEqual(new Set(['2']));
    // What the cards say is what the store holds now.
    const stored = new Map<string, SampleJson>();
    for (let offset = 0; offset < 473; offset += 200)
      for (const s of (await api<BrowseJson>(agent, `/api/browse?limit=200&offset=${offset}`)).samples) stored.set(s.id, s);
    const last = (await cardIds(page)).slice(-20);
    for (const id of last) {
      const s = stored.get(id)!;
      expect(await page.locator(`.card[data-id="${id}"] .prediction`).textContent()).toContain(
        `${s.prediction} (${Math.round(s.predictionScore! * 100)} %) · head v2`,
      );
    }
  }, 300_000);

  it('finds the right samples with each filter and order, with the count of each in the menu', async () => {
    const { agent, page } = await open({ labelled: { daisy: 4, sunflower: 4 }, unlabelled: { daisy: 3, tulip: 3 } });
    const broken = agent.ingest(Buffer.from('not a photo at all'), null, 'upload').sample.id;
    // Photos of no flower at all, which the head calls unknown (far outside every class).
    const strangers = await ingest(
      agent,
      ['face.jpg', 'hot_dog.jpg'].map((f) => readFileSync(join(IMAGES_DIR, f))),
      null,
    );
    await agent.pipeline.idle();
    const all = (await api<BrowseJson>(agent, '/api/browse?limit=200')).samples;
    expect(all.map((s) => s.id)).not.toContain(broken);
    const expectations: [string, (s: SampleJson) => boolean][] = [
      ['all', () => true],
      ['unlabelled', (s) => s.label === null],
      ['labelled', (s) => s.label !== null],
      ['label:daisy', (s) => s.label === 'daisy'],
      ['predicted:sunflower', (s) => s.prediction === 'sunflower'],
      ['unknown', (s) => s.prediction === 'unknown'],
    ];
    expect(strangers.map((id) => all.find((s) => s.id === id)?.prediction)).toEqual(['unknown', 'unknown']);
    for (const [filter, keep] of expectations) {
      const want = all.filter(keep).map((s) => s.id);
      // Every filter finds something, so that a page showing nothing could not pass.
      expect(want.length, filter).toBeGreaterThan(0);
      if (filter !== 'all') expect(want.length, filter).toBeLessThan(all.length);
      await page.selectOption('#filter', filter);
      await expect.poll(async () => (await cardIds(page)).sort(), { message: filter }).toEqual([...want].sort());
      const option = await page.locator(`#filter option[value="${filter}"]`).textContent();
      expect(option).toMatch(new RegExp(`\\(${want.length}\\)$`));
    }
    await page.selectOption('#filter', 'quarantined');
    await expect.poll(() => cardIds(page)).toEqual([broken]);
    expect(await page.locator('.card .err').textContent()).toMatch(/sample [0-9a-f]{12}/);
    await page.selectOption('#filter', 'all');
    await page.selectOption('#order', 'least-confident');
    const leastFirst = [...all].sort((a, b) => a.predictionScore! - b.predictionScore!).map((s) => s.id);
    await expect.poll(() => cardIds(page)).toEqual(leastFirst);
    await page.selectOption('#order', 'oldest');
    const oldest = [...all].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((s) => s.id);
    await expect.poll(() => cardIds(page)).toEqual(oldest);
    await page.selectOption('#order', 'newest');
    const newest = [...all].sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id)).map((s) => s.id);
    await expect.poll(() => cardIds(page)).toEqual(newest);
    // Most worth labelling first: what the head calls unknown (the two strangers among them) before
    // what it answered, and every sample once.
    await page.selectOption('#order', 'worth');
    await expect.poll(async () => (await cardIds(page)).sort()).toEqual(all.map((s) => s.id).sort());
    const worth = await cardIds(page);
    const unknownFirst = worth.map((id) => all.find((s) => s.id === id)!.predictionUnknown === true);
    expect(unknownFirst).toEqual([...unknownFirst].sort((a, b) => Number(b) - Number(a)));
    expect(worth.slice(0, unknownFirst.filter(Boolean).length)).toEqual(expect.arrayContaining(strangers));
  });

  it('keeps the counts and the new-samples bar true after labels, deletes and arrivals, with one request per burst', async () => {
    const { agent, page } = await open({ labelled: { daisy: 3, sunflower: 3 }, unlabelled: { daisy: 4 } });
    await page.selectOption('#filter', 'unlabelled');
    await expect.poll(() => page.locator('.card').count()).toBe(4);
    const option = (value: string) => page.locator(`#filter option[value="${value}"]`).textContent();
    const perClass = () => page.locator('#classes span').allTextContents();
    expect(await perClass()).toEqual(['daisy: 3', 'sunflower: 3']);
    const [first] = await cardIds(page);
    await page.locator(`.card[data-id="${first}"] .labels button`, { hasText: 'daisy' }).click();
    await expect.poll(() => agent.store.get(first!)!.label).toBe('daisy');
    await expect.poll(() => option('unlabelled')).toBe('unlabelled (3)');
    await expect.poll(perClass).toEqual(['daisy: 4', 'sunflower: 3']);
    // Deleted elsewhere (another tab, the CLI): the counts follow too.
    const sunflower = agent.store.list().find((x) => x.label === 'sunflower')!.id;
    expect((await fetch(`${agent.url}/api/samples/${sunflower}`, { method: 'DELETE' })).status).toBeLessThan(300);
    await expect.poll(perClass).toEqual(['daisy: 4', 'sunflower: 2']);
    await expect.poll(() => option('all')).toBe('all (9)');
    // Eight arrivals, three of them unlabelled: the bar counts the three this filter would show, and
    // the burst costs a request or two, not one per event.
    let browses = 0;
    page.on('request', (r) => void (new URL(r.url()).pathname === '/api/browse' && browses++));
    await ingest(agent, photos('tulip', 0, 5), 'tulip');
    await ingest(agent, photos('tulip', 100, 3), null);
    await page.locator('#new-bar', { hasText: '3 new samples' }).waitFor({ timeout: 30_000 });
    expect(browses).toBeLessThan(8);
    expect(agent.store.list({ labelled: false }).length).toBe(6);
  });

  it('refuses a bad filter, order or bulk body with a 400 naming it, and changes no label', async () => {
    const { agent } = await open({ unlabelled: { daisy: 2 } });
    const bad = async (path: string, init?: RequestInit) => {
      const res = await fetch(`${agent.url}${path}`, init);
      return { status: res.status, body: (await res.json()) as { error: string; code: string } };
    };
    expect(await bad('/api/browse?filter=labeled')).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/"filter" must be one of all, unlabelled/) },
    });
    expect(await bad('/api/browse?order=random')).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/"order" must be one of newest, oldest, least-confident/) },
    });
    expect(await bad('/api/browse?limit=5000')).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/"limit" must be an integer from 0 to 200/) },
    });
    const ids = agent.store.list().map((s) => s.id);
    const post = (body: unknown) =>
      bad('/api/samples/labels', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(await post({ ids: 'all', label: 'daisy' })).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/"ids" must be an array/) },
    });
    expect(await post({ ids: [...ids, 'f'.repeat(64)], label: 'daisy' })).toMatchObject({
      status: 404,
      body: { code: 'SAMPLE_NOT_FOUND' },
    });
    expect(await post({ ids, label: '../etc' })).toMatchObject({ status: 400, body: { code: 'LABEL_INVALID' } });
    // All or none: the known ids of the refused requests were not labelled either.
    expect(ids.map((id) => agent.store.get(id)!.label)).toEqual([null, null]);
  });

  it('pages through every sample: more cards load below the ones shown', async () => {
    const { agent, page } = await open({ unlabelled: { daisy: 40, dandelion: 40 } });
    await expect.poll(() => page.locator('.card').count()).toBe(60);
    const first = await cardIds(page);
    await page.locator('#more').scrollIntoViewIfNeeded();
    await expect.poll(() => page.locator('.card').count()).toBe(80);
    expect(agent.store.counts().samples).toBe(80);
    const after = await cardIds(page);
    expect(after.slice(0, 60)).toEqual(first);
    const stored = (await api<BrowseJson>(agent, '/api/browse?limit=200')).samples.map((s) => s.id);
    expect(after).toEqual(stored);
    expect(await page.locator('#more').isHidden()).toBe(true);
  });

  it('skips no sample when loading more after labelling shown cards out of the filter', async () => {
    const { agent, page } = await open({ labelled: { daisy: 2, dandelion: 2 }, unlabelled: { daisy: 40, dandelion: 40 } });
    await page.selectOption('#filter', 'unlabelled');
    await expect.poll(() => page.locator('.card').count()).toBe(60);
    const shown = await cardIds(page);
    for (const id of shown.slice(0, 10)) await page.locator(`.card[data-id="${id}"] .pick`).check();
    await page.locator('#bulk-labels button', { hasText: 'daisy' }).click();
    await expect.poll(() => agent.store.list({ labelled: false }).length).toBe(70);
    await expect.poll(() => page.locator('#more').textContent()).toBe('show more (20 left)');
    await scrollToEnd(page);
    const onPage = await cardIds(page);
    // No card twice, every unlabelled sample shown, and nothing else but the ten labelled here.
    expect(new Set(onPage).size).toBe(onPage.length);
    const unlabelled = agent.store.list({ labelled: false, limit: 200 }).map((s) => s.id);
    expect(unlabelled).toHaveLength(70);
    expect([...onPage].sort()).toEqual([...unlabelled, ...shown.slice(0, 10)].sort());
    expect(shown.slice(0, 10).map((id) => agent.store.get(id)!.label)).toEqual(Array(10).fill('daisy'));
  });

  it('keeps loading while the end of the list stays in view (a tall window), and stops when the server has no more', async () => {
    const { agent, page } = await open({ unlabelled: { daisy: 65, dandelion: 65 } });
    await expect.poll(() => page.locator('.card').count()).toBe(60);
    // A window tall enough for all 130 cards: it shows the end of the list after the first page and
    // after the second, so only loading on while #more stays in view reaches the third.
    const { rowHeight, columns, top } = await page.evaluate(() => {
      const cards = [...document.querySelectorAll('.card')].map((c) => c.getBoundingClientRect());
      return {
        columns: cards.filter((c) => c.top === cards[0]!.top).length,
        rowHeight: cards.find((c) => c.top > cards[0]!.top)!.top - cards[0]!.top,
        top: cards[0]!.top + scrollY,
      };
    });
    const height = Math.ceil(top + Math.ceil(130 / columns) * rowHeight + 150);
    await page.setViewportSize({ width: 1280, height });
    await expect.poll(() => page.locator('.card').count(), { timeout: 30_000 }).toBe(130);
    expect(await page.evaluate(() => scrollY)).toBe(0);
    expect(await page.locator('#more').isHidden()).toBe(true);
    const stored: string[] = [];
    for (const offset of [0, 100])
      stored.push(...(await api<BrowseJson>(agent, `/api/browse?limit=100&offset=${offset}`)).samples.map((s) => s.id));
    expect(await cardIds(page)).toEqual(stored);
  });

  it('loads at most ten pages by itself while the end of the list stays in view, and the rest on request', async () => {
    const { page } = await open({ unlabelled: { daisy: 350, dandelion: 350 } });
    await expect.poll(() => page.locator('.card').count()).toBe(60);
    // Zoomed out until all 700 cards fit in the window: the end of the list never leaves it, so only the
    // bound of ten pages per trigger stops the page from loading everything.
    await page.evaluate(() => (document.body.style.zoom = '0.1'));
    await expect.poll(() => page.locator('.card').count(), { timeout: 60_000 }).toBe(60 + 10 * 60);
    await page.locator('#samples[aria-busy="false"]').waitFor();
    expect(await page.locator('.card').count()).toBe(660);
    expect(await page.locator('#more').textContent()).toBe('show more (40 left)');
    expect(await page.evaluate(() => document.getElementById('more')!.getBoundingClientRect().bottom <= innerHeight)).toBe(true);
    await page.locator('#more').click();
    await expect.poll(() => page.locator('.card').count()).toBe(700);
    await page.locator('#more').waitFor({ state: 'hidden' });
    expect(new Set(await cardIds(page)).size).toBe(700);
  });

  it.each(['worth', 'least-confident'])('shows every sample once when a new head reorders the %s order between pages', async (order) => {
    const { agent, page } = await open({
      labelled: { daisy: 4, sunflower: 4 },
      unlabelled: { daisy: 45, sunflower: 45, tulip: 45 },
    });
    // The first head's predictions all written, then the list in this order.
    await agent.predictionsCurrent();
    await page.selectOption('#filter', 'unlabelled');
    await page.selectOption('#order', order);
    const firstPage = () => api<BrowseJson>(agent, `/api/browse?filter=unlabelled&order=${order}&limit=60`);
    const before = (await firstPage()).samples.map((s) => s.id);
    await expect.poll(() => cardIds(page), { timeout: 30_000 }).toEqual(before);
    // A new class and a new head: the order under the 60 cards shown changes.
    await ingest(agent, photos('tulip', 0, 5), 'tulip');
    expect((await agent.train()).version).toBe(2);
    await agent.predictionsCurrent();
    const after = (await firstPage()).samples.map((s) => s.id);
    expect(after.filter((id) => !before.includes(id)).length).toBeGreaterThan(5);
    await scrollToEnd(page);
    const onPage = await cardIds(page);
    expect(onPage.slice(0, 60)).toEqual(before);
    expect(new Set(onPage).size).toBe(onPage.length);
    const unlabelled = agent.store.list({ labelled: false, limit: 200 }).map((s) => s.id);
    expect(unlabelled).toHaveLength(135);
    expect([...onPage].sort()).toEqual([...unlabelled].sort());
    // The cards below came in the new head's order, every one with its prediction.
    const heads = await page
      .locator('.card .prediction')
      .evaluateAll((cards) => cards.map((c) => / · head v(\d+)$/.exec(c.textContent ?? '')?.[1]));
    expect(new Set(heads.slice(60))).toEqual(new Set(['2']));
  });

  it('shows per-class confidence bars of the current head for the focused card', async () => {
    const { agent, page } = await open({ labelled: { daisy: 5, sunflower: 5, tulip: 5 }, unlabelled: { tulip: 2 } });
    const card = page.locator('.card').first();
    const id = (await card.getAttribute('data-id'))!;
    await card.locator('img').click();
    const want = await api<ScoresJson>(agent, `/api/samples/${id}/scores`);
    expect(want.scores.map((s) => s.label).sort()).toEqual(['daisy', 'sunflower', 'tulip']);
    expect(want.scores.reduce((n, s) => n + s.score, 0)).toBeCloseTo(1, 5);
    await expect
      .poll(() => page.locator('#scores li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.label)))
      .toEqual(want.scores.map((s) => s.label));
    const values = await page.locator('#scores progress').evaluateAll((bars) => bars.map((b) => (b as HTMLProgressElement).value));
    values.forEach((v, i) => expect(v).toBeCloseTo(want.scores[i]!.score, 5));
    expect(await page.locator('#details-head').textContent()).toBe('head v1');
  });
});

describe('labelling page: what a person does', () => {
  it('uploads photos from the file picker with a label, and by dropping them on the page', async () => {
    const { agent, page } = await open({ labelled: { daisy: 2, rose: 2 } });
    await page.selectOption('#upload-label', 'rose');
    const files = readdirSync(join(FLOWERS_DIR, 'rose'))
      .sort()
      .slice(200, 202)
      .map((f) => join(FLOWERS_DIR, 'rose', f));
    await page.setInputFiles('#upload', files);
    await expect.poll(() => agent.store.counts().perClass.rose).toBe(4);
    await page.selectOption('#upload-label', '');
    const dropped = readFileSync(join(FLOWERS_DIR, 'tulip', readdirSync(join(FLOWERS_DIR, 'tulip')).sort()[300]!));
    await page.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'tulip.jpg', { type: 'image/jpeg' }));
      document.body.dispatchEvent(new DragEvent('dragenter', { dataTransfer: transfer, bubbles: true }));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, dropped.toString('base64'));
    await expect.poll(() => agent.store.counts().samples).toBe(7);
    expect(agent.store.list({ labelled: false }).length).toBe(1);
    await page.locator('#new-bar', { hasText: '3 new samples' }).waitFor();
  });

  it('deletes with undo: an undone delete keeps the sample, one left alone is deleted once its undo time is up', async () => {
    const { agent, page } = await open({ unlabelled: { daisy: 4 } });
    const [kept, gone] = (await cardIds(page)) as [string, string];
    await page.locator(`.card[data-id="${kept}"] .delete`).click();
    await page.locator(`.card[data-id="${kept}"][data-deleted="true"]`).waitFor();
    await page.keyboard.press('u');
    await expect.poll(() => page.locator(`.card[data-id="${kept}"]`).getAttribute('data-deleted')).toBe(null);
    await page.locator(`.card[data-id="${gone}"] .delete`).click();
    expect(agent.store.get(gone)).toBeDefined();
    await until('the delete after its undo time', () => agent.store.get(gone) === undefined, 15_000);
    // The undone one was deleted first, so its time was up before: it is still stored.
    expect(agent.store.get(kept)).toBeDefined();
    expect(agent.store.counts().samples).toBe(3);
    // Once sent, the tombstone offers no undo that would bring back a card whose sample is gone.
    const tombstone = page.locator(`.card[data-id="${gone}"]`);
    await expect.poll(() => tombstone.getAttribute('data-deleted')).toBe('sent');
    expect(await tombstone.locator('.tombstone button').count()).toBe(0);
    await page.keyboard.press('u');
    expect(await tombstone.getAttribute('data-deleted')).toBe('sent');
    expect(agent.store.get(gone)).toBeUndefined();
  });

  it('labels a selection in bulk', async () => {
    const { agent, page, truth } = await open({ labelled: { daisy: 2, tulip: 2 }, unlabelled: { tulip: 3, daisy: 2 } });
    const tulips = [...truth].filter(([, c]) => c === 'tulip').map(([id]) => id);
    for (const id of tulips) await page.locator(`.card[data-id="${id}"] .pick`).check();
    await expect.poll(() => page.locator('#bulk-count').textContent()).toBe('3 selected: label as');
    await page.locator('#bulk-labels button', { hasText: 'tulip' }).click();
    await expect.poll(() => tulips.map((id) => agent.store.get(id)!.label)).toEqual(['tulip', 'tulip', 'tulip']);
    const daisies = [...truth].filter(([, c]) => c === 'daisy').map(([id]) => id);
    expect(daisies.map((id) => agent.store.get(id)!.label)).toEqual([null, null]);
  });

  it('works from the keyboard: digits label and relabel, 0 unlabels, arrows move, space selects, u undoes, x deletes', async () => {
    const { agent, page } = await open({ labelled: { daisy: 2, sunflower: 2 }, unlabelled: { daisy: 3 } });
    const ids = await cardIds(page);
    await page.locator('.card').first().focus();
    await page.keyboard.press('1'); // daisy
    await expect.poll(() => agent.store.get(ids[0]!)!.label).toBe('daisy');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('2'); // sunflower
    await expect.poll(() => agent.store.get(ids[1]!)!.label).toBe('sunflower');
    // The page offers the undo once the API has answered (a moment after the store changed).
    await expect.poll(() => page.locator('#status').textContent()).toBe('1 sample labelled sunflower');
    await page.keyboard.press('u');
    await expect.poll(() => agent.store.get(ids[1]!)!.label).toBe(null);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press(' ');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press(' ');
    await page.keyboard.press('2');
    await expect.poll(() => [agent.store.get(ids[1]!)!.label, agent.store.get(ids[2]!)!.label]).toEqual(['sunflower', 'sunflower']);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('#bulk').isHidden()).toBe(true);
    // A labelled card relabelled by its digit, then unlabelled by 0.
    await page.locator(`.card[data-id="${ids[0]}"]`).focus();
    await page.keyboard.press('2');
    await expect.poll(() => agent.store.get(ids[0]!)!.label).toBe('sunflower');
    await page.keyboard.press('0');
    await expect.poll(() => agent.store.get(ids[0]!)!.label).toBe(null);
    expect([agent.store.get(ids[1]!)!.label, agent.store.get(ids[2]!)!.label]).toEqual(['sunflower', 'sunflower']);
    await page.locator(`.card[data-id="${ids[3]}"]`).focus();
    await page.keyboard.press('x');
    await until('the delete from the keyboard', () => agent.store.get(ids[3]!) === undefined, 15_000);
  });

  it('moves no card when a checkbox is ticked, a status message shows or the counts change (at 390 px)', async () => {
    const { agent, page } = await open({
      labelled: { daisy: 2, dandelion: 2, rose: 2, sunflower: 2, tulip: 2 },
      unlabelled: { daisy: 4 },
      viewport: { width: 390, height: 844 },
    });
    const boxes = () =>
      page.locator('.card').evaluateAll((cards) =>
        cards.map((c) => {
          const r = c.getBoundingClientRect();
          return [Math.round(r.x), Math.round(r.y + scrollY), Math.round(r.width), Math.round(r.height)];
        }),
      );
    const before = await boxes();
    const [first, second] = await cardIds(page);
    await page.locator(`.card[data-id="${first}"] .pick`).check();
    await page.locator('#bulk').waitFor();
    expect(await boxes()).toEqual(before);
    // A label from the bulk bar: a status message, new counts per class and in the filter menu.
    await page.locator('#bulk-labels button', { hasText: 'dandelion' }).click();
    await expect.poll(() => agent.store.get(first!)!.label).toBe('dandelion');
    await expect.poll(() => page.locator('#classes span').allTextContents()).toContain('dandelion: 3');
    expect(await page.locator('#status').textContent()).toBe('1 sample labelled dandelion');
    expect(await boxes()).toEqual(before);
    // A long message (an error naming a file) stays on one line.
    await page.evaluate(() => {
      const status = document.getElementById('status')!;
      status.textContent = 'a-photo-with-a-rather-long-name.jpg: '.repeat(6);
    });
    await page.locator(`.card[data-id="${second}"] .pick`).check();
    await page.locator('#bulk-clear').click();
    await page.locator('#bulk').waitFor({ state: 'hidden' });
    expect(await boxes()).toEqual(before);
  });

  it('is usable at phone width (390 px): no sideways scrolling, two cards a row, 44 px touch targets, the confidence in view', async () => {
    const { agent, page } = await open({
      labelled: { daisy: 2, sunflower: 2, rose: 2 },
      unlabelled: { daisy: 4 },
      viewport: { width: 390, height: 844 },
    });
    const targets =
      '.card .labels button, .card .delete, .card .pick-area, #train, #filter, #order, #upload-label, #upload, #add-class, #new-bar';
    const layout = await page.evaluate((selector) => {
      const cards = [...document.querySelectorAll('.card')].map((c) => c.getBoundingClientRect());
      const taps = [...document.querySelectorAll(selector)].map((b) => b.getBoundingClientRect());
      return {
        scrollWidth: document.documentElement.scrollWidth,
        firstRow: cards.filter((c) => c.top === cards[0]!.top).length,
        cardWidth: cards[0]!.width,
        rightmost: Math.max(...cards.map((c) => c.right), ...taps.map((b) => b.right)),
        taps: taps.length,
        smallestTap: Math.min(...taps.map((b) => Math.min(b.width, b.height))),
      };
    }, targets);
    expect(layout.scrollWidth).toBeLessThanOrEqual(390);
    expect(layout.firstRow).toBe(2);
    expect(layout.cardWidth).toBeGreaterThanOrEqual(150);
    expect(layout.rightmost).toBeLessThanOrEqual(390);
    expect(layout.taps).toBeGreaterThan(10 * 4);
    expect(layout.smallestTap).toBeGreaterThanOrEqual(44);

    // A card in the second row, tapped: its confidence per class shows in a panel on screen, the card above it.
    const ids = await cardIds(page);
    const card = page.locator(`.card[data-id="${ids[3]}"]`);
    await card.locator('img').click();
    const want = await api<ScoresJson>(agent, `/api/samples/${ids[3]}/scores`);
    await expect
      .poll(() => page.locator('#scores li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.label)))
      .toEqual(want.scores.map((s) => s.label));
    const seen = await page.evaluate((id) => {
      const panel = document.getElementById('details')!.getBoundingClientRect();
      const box = document.querySelector(`.card[data-id="${id}"]`)!.getBoundingClientRect();
      const atPanel = document.elementFromPoint(panel.left + panel.width / 2, panel.top + panel.height / 2);
      const bars = [...document.querySelectorAll('#scores li')].map((li) => li.getBoundingClientRect());
      return {
        panel: { top: panel.top, bottom: panel.bottom, left: panel.left, right: panel.right },
        panelOnTop: Boolean(atPanel?.closest('#details')),
        barsInPanel: bars.every((b) => b.top >= panel.top && b.bottom <= panel.bottom),
        cardAbove: box.top < panel.top && box.bottom > 0,
      };
    }, ids[3]!);
    expect(seen.panel.top).toBeGreaterThanOrEqual(0);
    expect(seen.panel.bottom).toBeLessThanOrEqual(844);
    expect(seen.panel.left).toBeGreaterThanOrEqual(0);
    expect(seen.panel.right).toBeLessThanOrEqual(390);
    expect(seen).toMatchObject({ panelOnTop: true, barsInPanel: true, cardAbove: true });

    // The arrow keys move down a column, and the card they reach is scrolled clear of the panel.
    await page.locator(`.card[data-id="${ids[0]}"]`).focus();
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowDown');
    const clear = await page.evaluate((id) => {
      const panel = document.getElementById('details')!.getBoundingClientRect();
      const box = document.querySelector(`.card[data-id="${id}"]`)!.getBoundingClientRect();
      return {
        focused: document.querySelector('.card.focused')?.getAttribute('data-id'),
        top: box.top,
        bottom: box.bottom,
        panel: panel.top,
      };
    }, ids[8]!);
    expect(clear.focused).toBe(ids[8]);
    expect(clear.top).toBeGreaterThanOrEqual(0);
    expect(clear.bottom).toBeLessThanOrEqual(clear.panel);

    // A tap near the corner of the tick box's 44 px area (outside the 22 px box itself) selects the card;
    // the selection labelled from the bulk bar is what the store holds.
    const labels = ids.map((id) => agent.store.get(id)!.label);
    await page.evaluate(() => scrollTo(0, 0));
    const area = (await page.locator(`.card[data-id="${ids[0]}"] .pick-area`).boundingBox())!;
    const box = (await page.locator(`.card[data-id="${ids[0]}"] .pick`).boundingBox())!;
    expect([Math.round(area.width), Math.round(area.height)]).toEqual([44, 44]);
    expect(box.width).toBeLessThan(30);
    await page.mouse.click(area.x + 4, area.y + area.height - 4);
    await expect.poll(() => page.locator('#bulk-count').textContent()).toBe('1 selected: label as');
    await page.locator('#bulk-labels button', { hasText: 'rose' }).click();
    await expect.poll(async () => (await api<{ sample: SampleJson }>(agent, `/api/samples/${ids[0]}`)).sample.label).toBe('rose');
    expect(ids.map((id) => agent.store.get(id)!.label)).toEqual(labels.map((l, i) => (i === 0 ? 'rose' : l)));

    const shot = await page.screenshot({ path: process.env.PHONE_SHOT ?? join(tmp.path, 'phone.png'), fullPage: false });
    expect(shot.readUInt32BE(16)).toBe(390); // PNG width
    expect(shot.readUInt32BE(20)).toBe(844); // PNG height
  });

  it('shows all ten classes of a head in the confidence panel at phone width, without scrolling it', async () => {
    const { agent, page } = await open({ unlabelled: { daisy: 1 }, viewport: { width: 390, height: 844 } });
    // Ten classes from five kinds of flower: each kind's photos split between two labels.
    const classes = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'].flatMap((kind) => [`${kind}-early`, `${kind}-late-in-the-season`]);
    for (const [i, label] of classes.entries()) await ingest(agent, photos(label.split('-')[0]!, 10 + (i % 2) * 3, 3), label);
    expect((await agent.train()).version).toBe(1);
    await agent.predictionsCurrent();
    await page.reload();
    await page.locator('#live.on').waitFor();
    const id = agent.store.list({ labelled: false, limit: 1 })[0]!.id;
    await page.locator(`.card[data-id="${id}"] img`).click();
    const want = await api<ScoresJson>(agent, `/api/samples/${id}/scores`);
    expect(want.scores).toHaveLength(10);
    await expect
      .poll(() => page.locator('#scores li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.label)))
      .toEqual(want.scores.map((s) => s.label));
    const seen = await page.evaluate(() => {
      const panel = document.getElementById('details')!;
      const box = panel.getBoundingClientRect();
      const parts = [...document.querySelectorAll('#scores li > *')].map((p) => p.getBoundingClientRect());
      return {
        scrolls: panel.scrollHeight > panel.clientHeight,
        inside: parts.every((p) => p.top >= box.top && p.bottom <= box.bottom && p.left >= box.left && p.right <= box.right),
        narrowest: Math.min(...parts.map((p) => p.width)),
        values: [...document.querySelectorAll('#scores .value')].map((v) => v.textContent),
      };
    });
    await page.screenshot({ path: process.env.PHONE_SHOT_CLASSES ?? join(tmp.path, 'phone-classes.png') });
    expect(seen).toMatchObject({ scrolls: false, inside: true });
    expect(seen.narrowest).toBeGreaterThan(20);
    expect(seen.values).toEqual(want.scores.map((s) => `${Math.round(s.score * 100)} %`));
  });
});
