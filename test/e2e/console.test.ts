import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { binomialTail, canaryGotWorse } from '../../console/rollout.js';
import { FleetConsole } from '../../console/service.js';
import type { Agent } from '../../agent/agent.js';
import type { Head } from '../../runtime/head/index.js';
import { feed, startFleetAgent } from '../support/fleet.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { until } from '../support/until.js';

// The console with its embedded broker and two real agents: heads go up, merged fleet heads come down
// through a canary first; a canary that gets worse rolls the fleet head back before anyone else sees it.
const tmp = tempDir();
const CLASSES = ['daisy', 'sunflower', 'tulip'];
let fleet: FleetConsole;
let canary: Agent;
let other: Agent;

const headsOf = (device: string) => fleet.registry.deviceHeadCount(device);
const view = (device: string) => fleet.devices().find((d) => d.id === device);
function swapLabels(agent: Agent, a: string, b: string): void {
  for (const s of agent.store.list({ labelled: true, limit: 1000 })) {
    if (s.label === a) agent.setLabel(s.id, b);
    else if (s.label === b) agent.setLabel(s.id, a);
  }
}

beforeAll(async () => {
  process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
  fleet = await FleetConsole.start({
    dir: join(tmp.path, 'console'),
    fleet: 'farm',
    broker: { port: 0 },
    canaries: ['pi-1'],
    commandTimeoutMs: 20_000,
  });
  const data = { holdoutFraction: 0.3 };
  [canary, other] = await Promise.all([
    startFleetAgent(fleet, 'pi-1', join(tmp.path, 'pi-1'), {}, data),
    startFleetAgent(fleet, 'pi-2', join(tmp.path, 'pi-2'), {}, data),
  ]);
  await Promise.all([feed(canary, CLASSES, 0, 14), feed(other, CLASSES, 14, 14)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([canary?.stop(), other?.stop()]);
  await fleet?.stop();
  tmp.remove();
});

describe('fleet console with real agents (embedded broker)', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  step('sees devices come online with their backbone, samples per class and public key', async () => {
    const devices = await until(
      'two devices online with their samples',
      () => fleet.devices().filter((d) => d.online && d.perClass.tulip === 14).length === 2 && fleet.devices(),
    );
    expect(devices.map((d) => d.id)).toEqual(['pi-1', 'pi-2']);
    expect(devices[0]).toMatchObject({
      backbone: canary.backbone.id,
      protocol: 1,
      canary: true,
      perClass: { daisy: 14, sunflower: 14, tulip: 14 },
    });
    expect(fleet.registry.device('pi-1')!.publicKey).toMatch(/BEGIN PUBLIC KEY/);
  });

  step('stores each device head once and merges them into a fleet head released after the canary', async () => {
    await Promise.all([canary.train(), other.train()]);
    await until('both heads stored', () => headsOf('pi-1') === 1 && headsOf('pi-2') === 1);
    const result = await fleet.mergeAndRollout();
    expect(result).toMatchObject({ version: 1, status: 'released', merged: ['pi-1', 'pi-2'], heldBack: [], labels: CLASSES });
    expect(result.canaries).toHaveLength(1);
    expect(result.canaries[0]!.device).toBe('pi-1');
    expect(result.canaries[0]!.after).toBeGreaterThanOrEqual(result.canaries[0]!.before! - 0.02);
    // The canary applied it by command; the other device from the retained fleet head.
    await until('both devices on fleet v1', () => view('pi-1')?.fleetVersion === 1 && view('pi-2')?.fleetVersion === 1);
    expect(canary.currentHead!.meta.metrics.fleetVersion).toBe(1);
    expect(other.currentHead!.meta.metrics.fleetVersion).toBe(1);
    expect(fleet.registry.fleetHead(1)!.status).toBe('released');
    expect(fleet.registry.accuracyHistory('pi-1').length).toBeGreaterThanOrEqual(2);
  });

  step('rolls a fleet head back on its canary when the canary gets worse, and the fleet never sees it', async () => {
    // pi-2 collects more, then swaps two labels on all of it and retrains: the average of its head and
    // pi-1's is worse on pi-1's holdout.
    const before = canary.currentHead!;
    await feed(other, ['daisy', 'sunflower'], 40, 30);
    swapLabels(other, 'daisy', 'sunflower');
    const outcome = await other.train();
    expect(outcome.kept).toBe(true);
    await until('the mislabelled head stored', () => headsOf('pi-2') === 2);
    const result = await fleet.mergeAndRollout();
    expect(result.status).toBe('rolled-back');
    expect(result.reason).toMatch(/pi-1: holdout accuracy \d\.\d{3} -> \d\.\d{3}/);
    const [report] = result.canaries;
    expect(report!.holdout).toBeGreaterThan(0);
    expect(report!.lost).toBeGreaterThanOrEqual(4);
    expect(report!.after).toBeCloseTo(report!.before! - (report!.lost! - report!.gained!) / report!.holdout, 10);
    expect(canaryGotWorse(report!, 0.02)).toBe(true);
    expect(fleet.registry.fleetHead(result.version)!.status).toBe('rolled-back');
    // The canary is back on the head it had; the retained fleet head is still v1.
    await until(
      'the canary back on its previous head',
      () =>
        canary.currentHead!.meta.version !== before.meta.version + 1 &&
        canary.currentHead!.meta.version === before.meta.version &&
        canary.currentHead,
    );
    expect(canary.currentHead!.weights).toEqual(before.weights);
    expect(other.currentHead!.meta.metrics.fleetVersion ?? 1).toBe(1);
  });

  step('answers commands: retrain, push config, state; and rolls back a released head as a new version', async () => {
    // pi-2 fixes its labels; the next fleet head passes the canary.
    swapLabels(other, 'daisy', 'sunflower');
    const trained = await fleet.command('pi-2', 'train');
    expect(trained).toMatchObject({ kept: true });
    await until('the fixed head stored', () => headsOf('pi-2') === 3);
    const good = await fleet.mergeAndRollout();
    expect([good.status, good.reason]).toEqual(['released', undefined]);
    await until(
      'both on the new fleet head',
      () => view('pi-1')?.fleetVersion === good.version && view('pi-2')?.fleetVersion === good.version,
    );

    const configured = await fleet.command('pi-2', 'config', { head: { unknownThreshold: 0.7 } });
    expect(configured).toEqual({ applied: { head: { unknownThreshold: 0.7 } }, restartRequired: [] });
    expect(other.config.head.unknownThreshold).toBe(0.7);
    await expect(fleet.command('pi-2', 'config', { head: { unknownThreshold: 7 } })).rejects.toThrow(
      /pi-2 refused "config": config command: field "head.unknownThreshold"/,
    );

    const rolled = await fleet.rollouts.rollback();
    expect(rolled).toEqual({ version: good.version + 1, restored: 1, replaced: good.version });
    await until(
      'devices on the rollback version',
      () =>
        other.currentHead!.meta.metrics.fleetVersion === good.version + 1 &&
        canary.currentHead!.meta.metrics.fleetVersion === good.version + 1,
    );
    const v1 = fleet.rollouts['decode'](fleet.registry.fleetHead(1)!);
    // Same weights as v1 (int8 on the wire both times).
    expect(Array.from(other.currentHead!.weights.slice(0, 50))).toEqual(Array.from(v1.weights.slice(0, 50)));
    expect(fleet.registry.fleetHead(good.version)!.status).toBe('rolled-back');
  });

  step('merges only heads over the same features: a head from an older edgetune is skipped and named', async () => {
    const sync = (other as unknown as { fleet: { publishHead(head: Head): void } }).fleet;
    const count = headsOf('pi-2');
    sync.publishHead(other.currentHead!.withMeta({ normalize: !other.currentHead!.meta.normalize, version: 900 }));
    await until('the odd head stored', () => headsOf('pi-2') === count + 1);
    const result = await fleet.mergeAndRollout();
    expect(result.merged).toEqual(['pi-1']);
    expect(result.skipped).toEqual([
      {
        device: 'pi-2',
        reason: expect.stringMatching(/^a softmax head on .* \(1024-d, power [\d.]+(, L2-normalised)?\); the fleet has a softmax head on/),
      },
    ]);
  });

  step('marks a device offline when its link dies (last will), and online again when it reconnects', async () => {
    const { link } = (canary as unknown as { fleet: { link: { client: { stream: { destroy(): void } } } } }).fleet;
    link.client.stream.destroy();
    await until('pi-1 offline by its last will', () => view('pi-1')?.online === false);
    await until('pi-1 back online', () => view('pi-1')?.online === true, 20_000);
  });

  step('marks a device offline when it stops', async () => {
    await other.stop();
    await until('pi-2 offline', () => view('pi-2')?.online === false);
    expect(view('pi-2')!.headVersion).not.toBeNull();
  });

  step('judges canaries by the samples the heads disagree on (McNemar), not by a noisy accuracy drop', () => {
    const report = (before: number, after: number, lost: number, gained: number) => ({
      device: 'pi',
      before,
      after,
      holdout: 10,
      lost,
      gained,
    });
    expect(binomialTail(2, 2)).toBeCloseTo(0.25, 10);
    expect(binomialTail(5, 5)).toBeCloseTo(1 / 32, 10);
    expect(canaryGotWorse(report(0.7, 0.5, 2, 0), 0.02)).toBe(false); // two photos of ten: chance
    expect(canaryGotWorse(report(0.9, 0.4, 5, 0), 0.02)).toBe(true); // five lost, none gained
    expect(canaryGotWorse(report(0.6, 0.6, 3, 3), 0.02)).toBe(false); // different, not worse
    expect(canaryGotWorse(report(0.8, 0.79, 9, 8), 0.02)).toBe(false); // within the tolerance
    expect(canaryGotWorse({ device: 'pi', before: null, after: null, holdout: 0, error: 'timed out' }, 0.02)).toBe(true);
  });
});
