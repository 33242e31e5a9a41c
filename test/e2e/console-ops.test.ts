import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import type { DevicesJson, FleetAccuracyJson } from '../../console/api-types.js';
import { FleetConsole } from '../../console/service.js';
import { type ConsoleWeb, startConsoleWeb } from '../../console/web.js';
import { readFolderDataset } from '../../runtime/dataset/folder.js';
import { classificationReport } from '../../runtime/eval/metrics.js';
import { loadHead } from '../../runtime/head/head-file.js';
import { runCli } from '../support/cli.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// What an operator does from the console's API with real agents: a paged, sorted, filtered table with
// vitals (a CPU temperature from a thermal file), tags, per-class holdout numbers, a device's logs
// streamed while watched, and exports (heads as files, labelled photos as a dataset).
const tmp = tempDir();
const CLASSES = ['daisy', 'sunflower', 'tulip'];
let fleet: FleetConsole;
let web: ConsoleWeb;
let hot: Agent;
let cool: Agent;

const get = async <T>(path: string): Promise<T> => {
  const res = await fetch(`${web.origin}${path}`, { headers: { authorization: `Bearer ${web.token}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  const dir = join(tmp.path, 'console');
  fleet = await FleetConsole.start({
    dir,
    fleet: 'farm',
    broker: { port: 0 },
    commandTimeoutMs: 20_000,
    minCanaryHoldout: 0,
    classQuorum: 1,
  });
  web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(dir, 'web-token') });
  writeFileSync(join(dir, 'web.json'), JSON.stringify({ origin: web.origin }));
  writeFileSync(join(dir, 'console.json'), JSON.stringify({ fleet: 'farm' }));
  const thermal = (name: string, value: string) => {
    const file = join(tmp.path, `${name}.temp`);
    writeFileSync(file, value);
    return file;
  };
  [hot, cool] = await Promise.all([
    startFleetAgent(fleet, 'pi-hot', join(tmp.path, 'pi-hot'), {}, { holdoutFraction: 0.3 }, undefined, {
      thermalFile: thermal('hot', '71234\n'),
    }),
    startFleetAgent(fleet, 'pi-cool', join(tmp.path, 'pi-cool'), {}, {}, undefined, { thermalFile: thermal('cool', '45000\n') }),
  ]);
  fleet.addDevice('pi-spare');
  await feed(hot, CLASSES, 0, 10);
  await feed(cool, CLASSES.slice(0, 2), 10, 3);
  await Promise.all([hot.train(), cool.train()]);
}, 90_000);

afterAll(async () => {
  await Promise.all([hot?.stop(), cool?.stop()]);
  await web?.close();
  await fleet?.stop();
  tmp.remove();
});

describe('console operations with real agents', () => {
  it('pages, sorts and filters the table on vitals, status and tags; counts every status', async () => {
    await until(
      'both heads stored with their state',
      () =>
        fleet.registry.deviceHeadCount() === 2 && fleet.devices().every((d) => d.status === 'never-connected' || d.headVersion !== null),
    );
    const page = await get<DevicesJson>('/api/devices?sort=cpuTempC&order=desc&limit=1&history=0');
    expect(page.devices.map((d) => [d.id, d.cpuTempC])).toEqual([['pi-hot', 71.23]]);
    expect(page).toMatchObject({ total: 3, offset: 0, limit: 1, counts: { all: 3, online: 2, offline: 0, neverConnected: 1 } });
    const second = await get<DevicesJson>('/api/devices?sort=cpuTempC&order=desc&limit=1&offset=1');
    expect(second.devices.map((d) => [d.id, d.cpuTempC])).toEqual([['pi-cool', 45]]);
    // Missing values sort last in both directions.
    const asc = await get<DevicesJson>('/api/devices?sort=cpuTempC&order=asc');
    expect(asc.devices.map((d) => d.id)).toEqual(['pi-cool', 'pi-hot', 'pi-spare']);
    expect((await get<DevicesJson>('/api/devices?q=cpuTempC>50')).devices.map((d) => d.id)).toEqual(['pi-hot']);
    expect((await get<DevicesJson>('/api/devices?q=status:never-connected')).devices.map((d) => d.id)).toEqual(['pi-spare']);
    const tagged = await fetch(`${web.origin}/api/devices/pi-cool/tags`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web.token}` },
      body: JSON.stringify({ tags: ['north', 'greenhouse-2'] }),
    });
    expect(await tagged.json()).toEqual({ device: 'pi-cool', tags: ['greenhouse-2', 'north'] });
    expect((await get<DevicesJson>('/api/devices?q=tag:north')).devices.map((d) => d.id)).toEqual(['pi-cool']);
    const bad = await fetch(`${web.origin}/api/devices?sort=colour`, { headers: { authorization: `Bearer ${web.token}` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/query parameter "sort" must be one of id, status/);
  });

  it('shows vitals, release and per-class holdout recall with the confusion matrix', async () => {
    const [d] = (await get<DevicesJson>('/api/devices?q=pi-hot')).devices;
    expect(d).toMatchObject({ status: 'online', release: null, updatable: false, target: `linux-${process.arch}`, sources: 0 });
    expect(d!.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(d!.memoryTotalBytes).toBeGreaterThan(d!.memoryAvailableBytes!);
    expect(d!.diskFreeBytes).toBeGreaterThan(0);
    expect(d!.page).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const holdout = d!.holdout!;
    expect(holdout.classes).toEqual(CLASSES);
    // Rows are true classes: each sums to that class's holdout support; recall is the diagonal share.
    holdout.perClass.forEach((c, i) => {
      expect(holdout.confusion[i]!.reduce((a, b) => a + b, 0)).toBe(c.support);
      expect(c.recall).toBeCloseTo(c.support === 0 ? 0 : holdout.confusion[i]![i]! / c.support, 10);
    });
    const correct = holdout.perClass.reduce((a, c, i) => a + holdout.confusion[i]![i]!, 0);
    const total = holdout.perClass.reduce((a, c) => a + c.support, 0);
    expect(d!.holdoutAccuracy).toBeCloseTo(correct / total, 10);
  });

  it("shows the released fleet head's per-class recall and confusion summed over the holdouts of the devices that run it", async () => {
    await until('both heads stored', () => fleet.registry.deviceHeadCount() >= 2);
    if (!fleet.registry.releasedFleetHeads()[0]) await fleet.mergeAndRollout();
    const version = fleet.registry.releasedFleetHeads()[0]!.version;
    await until(
      'both devices on the fleet head',
      () =>
        fleet.devices().filter((d) => d.fleetVersion === version && d.holdoutAccuracy !== null).length >= 1 &&
        fleet.devices().filter((d) => d.fleetVersion === version).length === 2,
    );
    const accuracy = await get<FleetAccuracyJson>('/api/fleet/accuracy');
    // pi-cool has no holdout: it runs the head, and is named as not counted.
    expect(accuracy).toMatchObject({ version, devices: ['pi-hot'], withoutHoldout: ['pi-cool'], classes: CLASSES });
    // The fleet head itself, downloaded, on pi-hot's own holdout photos: the same matrix.
    const res = await fetch(`${web.origin}/api/heads/fleet/${version}`, { headers: { authorization: `Bearer ${web.token}` } });
    writeFileSync(join(tmp.path, 'released.head'), Buffer.from(await res.arrayBuffer()));
    const { backboneId, dim } = { backboneId: hot.backbone.id, dim: hot.backbone.dim };
    const head = loadHead(join(tmp.path, 'released.head'), { backboneId, dim });
    const holdout = hot.store.labelledSet(backboneId, 'holdout');
    const truth = holdout.labels.map((l) => CLASSES.indexOf(l));
    const predicted = holdout.labels.map((_, i) => head.predictIndices(holdout.embeddings.subarray(i * dim, (i + 1) * dim))[0]!);
    const expected = classificationReport(truth, predicted, CLASSES);
    expect(accuracy.confusion).toEqual(expected.confusion);
    expect(accuracy.perClass).toEqual(expected.perClass);
    expect(accuracy.total).toBe(holdout.labels.length);
    expect(accuracy.accuracy).toBeCloseTo(expected.accuracy, 10);
    // A version nobody runs has no numbers; a bad one is a 400 naming the parameter.
    expect(await get<FleetAccuracyJson>(`/api/fleet/accuracy?version=${version + 50}`)).toMatchObject({
      devices: [],
      total: 0,
      accuracy: null,
    });
    const bad = await fetch(`${web.origin}/api/fleet/accuracy?version=x`, { headers: { authorization: `Bearer ${web.token}` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('"version"');
  }, 60_000);

  it("streams a device's log lines while watched: recent ones first, then new ones as they happen", async () => {
    const controller = new AbortController();
    const res = await fetch(`${web.origin}/api/devices/pi-hot/logs?token=${web.token}`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text.slice(-500)}`);
        text += Buffer.from(value).toString();
      }
    };
    try {
      await readUntil(/"msg":"agent started"/);
      await readUntil(/"msg":"new head kept"/);
      // A line logged now arrives within the follow window, without asking again.
      await feed(hot, ['daisy'], 20, 1);
      await hot.train();
      const lines = () => text.split('\n').filter((l) => l.startsWith('data: {"lines"')).length;
      const before = lines();
      await readUntil(new RegExp(`(data: \\{"lines".*\\n\\n[^]*){${before + 1}}`));
      expect(text).toMatch(/"msg":"(new head kept|new head not kept)"/);
    } finally {
      controller.abort();
    }
  }, 30_000);

  it('exports device and fleet heads as files edgetune predict reads', async () => {
    await fleet.mergeAndRollout();
    const expect_ = { backboneId: hot.backbone.id, dim: hot.backbone.dim };
    for (const [path, name] of [
      ['/api/heads/device/pi-hot', 'pi-hot-v'],
      ['/api/heads/fleet/1', 'fleet-v1.head'],
    ] as const) {
      const res = await fetch(`${web.origin}${path}`, { headers: { authorization: `Bearer ${web.token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toContain(name);
      const file = join(tmp.path, `${name}.head`);
      writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      expect(loadHead(file, expect_).labels).toEqual(CLASSES);
    }
    const cli = await runCli([
      'console',
      'export-head',
      '--dir',
      join(tmp.path, 'console'),
      '--fleet-version',
      '1',
      '-o',
      join(tmp.path, 'cli.head'),
      '--json',
    ]);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual({ file: join(tmp.path, 'cli.head'), bytes: statSync(join(tmp.path, 'cli.head')).size });
    expect(loadHead(join(tmp.path, 'cli.head'), expect_).labels).toEqual(CLASSES);
    const missing = await fetch(`${web.origin}/api/heads/fleet/99`, { headers: { authorization: `Bearer ${web.token}` } });
    expect(missing.status).toBe(404);
  }, 60_000);

  it("exports a device's labelled photos as a class-per-folder dataset (CLI folder and page tar.gz)", async () => {
    const out = join(tmp.path, 'dataset');
    const cli = await runCli(['console', 'export-samples', 'pi-cool', '--dir', join(tmp.path, 'console'), '-o', out]);
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/6 photos of pi-cool in/);
    const dataset = readFolderDataset(out);
    expect(dataset.classes).toEqual(['daisy', 'sunflower']);
    expect(dataset.items).toHaveLength(6);
    const res = await fetch(`${web.origin}/api/devices/pi-cool/dataset.tar.gz`, { headers: { authorization: `Bearer ${web.token}` } });
    expect(res.status).toBe(200);
    const archive = join(tmp.path, 'pi-cool.tar.gz');
    writeFileSync(archive, Buffer.from(await res.arrayBuffer()));
    mkdirSync(join(tmp.path, 'untarred'));
    execFileSync('tar', ['-xzf', archive, '-C', join(tmp.path, 'untarred')]);
    expect(readFolderDataset(join(tmp.path, 'untarred', 'pi-cool')).items).toHaveLength(6);
    const again = join(tmp.path, 'dataset-json');
    const json = await runCli(['console', 'export-samples', 'pi-cool', '--dir', join(tmp.path, 'console'), '-o', again, '--json']);
    const counts = Object.fromEntries(dataset.classes.map((c, k) => [c, dataset.items.filter((i) => i.label === k).length]));
    expect(JSON.parse(json.stdout)).toEqual({ device: 'pi-cool', out: again, photos: 6, perClass: counts });
    expect(readFolderDataset(again).items).toHaveLength(6);
  }, 60_000);

  it('merges and rolls out on its own once enough new device heads arrived, recording the verdict with its numbers', async () => {
    const post = await fetch(`${web.origin}/api/merge-policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${web.token}` },
      body: JSON.stringify({ afterHeads: 1 }),
    });
    expect(await post.json()).toEqual({ afterHeads: 1 });
    const before = fleet.registry.nextFleetVersion();
    // pi-cool has no holdout, so it keeps every head it trains: one new device head.
    await feed(cool, ['daisy'], 30, 2);
    expect((await cool.train()).kept).toBe(true);
    const verdict = await until('a policy verdict', () => fleet.registry.verdicts(10).find((v) => v.trigger.includes('policy: after 1')));
    expect(verdict).toMatchObject({ verdict: 'released', version: before, details: { merged: ['pi-cool', 'pi-hot'], heldBack: [] } });
    expect((verdict.details.summaries as string[]).at(-1)).toMatch(/^fleet: \d of 2 done in \d+\.\d s/);
    const fleetJson = await get<{ policy: { afterHeads: number; newHeads: number; verdicts: { verdict: string }[] } }>('/api/fleet');
    expect(fleetJson.policy).toMatchObject({ afterHeads: 1, newHeads: 0 });
    expect(fleetJson.policy.verdicts.map((v) => v.verdict)).toContain('released');
  }, 60_000);

  it('sets config for a tag: a per-device diff first, then the push, checked by the agent schema; bad values change nothing', async () => {
    const post = async (body: unknown) => {
      const res = await fetch(`${web.origin}/api/config`, {
        method: 'POST',
        headers: { authorization: `Bearer ${web.token}` },
        body: JSON.stringify(body),
      });
      return {
        status: res.status,
        body: (await res.json()) as {
          targets: { device: string; status: string; diff: unknown[]; restartRequired?: string[] }[];
          error?: string;
        },
      };
    };
    const values = { head: { unknownThreshold: 0.7 }, model: { workers: 2 } };
    const preview = await post({ scope: 'tag:north', values, dryRun: true });
    expect(preview.body.targets).toEqual([
      {
        device: 'pi-cool',
        status: 'preview',
        diff: [
          { field: 'head.unknownThreshold', from: null, to: 0.7 },
          { field: 'model.workers', from: null, to: 2 },
        ],
      },
    ]);
    expect(cool.config.head.unknownThreshold).toBeNull();
    expect(await get('/api/config')).toEqual({ layers: {} });
    const pushed = await post({ scope: 'tag:north', values });
    expect(pushed.body.targets).toMatchObject([{ device: 'pi-cool', status: 'pushed', restartRequired: ['model.workers'] }]);
    expect(cool.config.head.unknownThreshold).toBe(0.7);
    expect(hot.config.head.unknownThreshold).toBeNull();
    // Kept on the device (it wins over the file at the next start) and at the console.
    expect(JSON.parse(cool.store.getMeta('pushed_config')!)).toMatchObject(values);
    expect(await get('/api/config')).toEqual({ layers: { 'tag:north': values } });
    const bad = await post({ scope: 'fleet', values: { head: { unknownThreshold: 7 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/config for fleet: field "head\.unknownThreshold"/);
    const locked = await post({ scope: 'fleet', values: { fleet: { password: 'x' } } });
    expect(locked.status).toBe(400);
    expect(locked.body.error).toMatch(/field "fleet\.password" cannot be pushed/);
    const command = await post({ scope: 'tag:north', values: { sources: { camera: { command: ['sh', '-c', 'id'] } } } });
    expect(command.status).toBe(400);
    expect(command.body.error).toMatch(/field "sources\.camera\.command" cannot be pushed/);
    expect(JSON.parse(cool.store.getMeta('pushed_config')!)).toEqual(values);
    expect(fleet.registry.configLayers()).toEqual(new Map([['tag:north', values]]));
    const unchanged = await post({ scope: 'tag:north', values: { head: { unknownThreshold: 0.7 } }, dryRun: true });
    expect(unchanged.body.targets).toMatchObject([{ device: 'pi-cool', status: 'unchanged', diff: [] }]);
  }, 60_000);

  it('coalesces a burst of console events into one event-stream message', async () => {
    const controller = new AbortController();
    const res = await fetch(`${web.origin}/api/events?token=${web.token}`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let text = '';
    try {
      while (!text.includes('event: hello')) text += Buffer.from((await reader.read()).value!).toString();
      for (let i = 0; i < 200; i++) fleet.emit('change', { type: 'state', device: `sim-${i}` });
      while (!text.includes('event: changes')) text += Buffer.from((await reader.read()).value!).toString();
      const data = JSON.parse(/event: changes\ndata: (.*)\n/.exec(text)![1]!) as {
        count: number;
        types: Record<string, number>;
        devices: string[];
        moreDevices: number;
      };
      expect(data).toMatchObject({ count: 200, types: { state: 200 }, moreDevices: 100 });
      expect(data.devices).toHaveLength(100);
      expect(text.match(/event: change\n/g) ?? []).toHaveLength(0);
    } finally {
      controller.abort();
    }
  });
});
