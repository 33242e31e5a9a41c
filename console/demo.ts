// `edgetune demo`: the whole loop on one machine. A console with its embedded broker and N real agents,
// each given its own few labelled photos per class; every device trains on what it has, the console
// merges their heads and rolls the fleet head out (the first device is the canary), and every device's
// accuracy on one common test set is measured before and after the fleet head arrives.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { AgentConfigSchema } from '../agent/config.js';
import { type Logger, silentLogger } from '../core/log.js';
import type { Backbone } from '../runtime/backbone/backbone.js';
import { type FolderDataset, readFolderDataset } from '../runtime/dataset/folder.js';
import { DatasetError } from '../core/errors.js';
import { embedFiles } from '../runtime/embeddings/embed-files.js';
import type { Head } from '../runtime/head/index.js';
import { seededRandom, shuffle } from '../core/random.js';
import { until } from '../core/wait.js';
import { FleetConsole } from './service.js';

export interface DemoOptions {
  /** Photos, one sub-folder per class. */
  data: string;
  /** Registry, keys and every device's data folder. */
  dir: string;
  devices: number;
  /** Labelled photos each device collects per class. */
  shots: number;
  /** Photos per class in the common test set (never seen by any device). */
  testPerClass: number;
  seed: number;
  brokerPort: number;
  /** Backbone catalog id or model file (default: the agent's default backbone). */
  backbone?: string;
  /** Progress lines for people. */
  progress?: (line: string) => void;
  log?: Logger;
}

export interface DemoDevice {
  id: string;
  samples: number;
  before: number;
  after: number;
  gain: number;
  headVersion: number;
}

export interface DemoResult {
  classes: string[];
  testImages: number;
  fleetVersion: number;
  rollout: string;
  devices: DemoDevice[];
  meanBefore: number;
  meanAfter: number;
  minGain: number;
  seconds: number;
}

export interface RunningDemo {
  result: DemoResult;
  console: FleetConsole;
  agents: Agent[];
  stop(): Promise<void>;
}

interface Slices {
  test: { path: string; label: string }[];
  perDevice: { path: string; label: string }[][];
}

/** Disjoint, seeded slices: a common test set first, then `shots` per class for each device. */
export function sliceDataset(data: FolderDataset, devices: number, shots: number, testPerClass: number, seed: number): Slices {
  const random = seededRandom(seed);
  const slices: Slices = { test: [], perDevice: Array.from({ length: devices }, () => []) };
  data.classes.forEach((label, index) => {
    const paths = shuffle(
      data.items.filter((i) => i.label === index).map((i) => i.path),
      random,
    );
    const needed = testPerClass + devices * shots;
    if (paths.length < needed) {
      throw new DatasetError(
        'DATASET_TOO_SMALL',
        `${join(data.root, label)}: ${paths.length} photos; ${devices} devices x ${shots} shots + ${testPerClass} test photos need ${needed}`,
      );
    }
    slices.test.push(...paths.slice(0, testPerClass).map((path) => ({ path, label })));
    for (let d = 0; d < devices; d++)
      slices.perDevice[d]!.push(...paths.slice(testPerClass + d * shots, testPerClass + (d + 1) * shots).map((path) => ({ path, label })));
  });
  return slices;
}

export async function runDemo(options: DemoOptions): Promise<RunningDemo> {
  const started = Date.now();
  const say = options.progress ?? (() => undefined);
  const log = options.log ?? silentLogger;
  const data = readFolderDataset(options.data);
  const slices = sliceDataset(data, options.devices, options.shots, options.testPerClass, options.seed);
  const ids = Array.from({ length: options.devices }, (_, i) => `demo-${i + 1}`);

  const fleet = await FleetConsole.start({
    dir: join(options.dir, 'console'),
    fleet: 'demo',
    broker: { host: '127.0.0.1', port: options.brokerPort },
    canaries: [ids[0]!],
    log,
  });
  const agents: Agent[] = [];
  const stop = async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await fleet.stop();
  };
  try {
    say(
      `console up: broker ${fleet.brokerUrl}, ${options.devices} devices, ${data.classes.length} classes, ${options.shots} photos per class each`,
    );
    for (const id of ids) agents.push(await startDemoAgent(fleet, id, join(options.dir, id), options.backbone, log));

    say('devices collect and label their photos');
    await Promise.all(agents.map((agent, d) => collect(agent, slices.perDevice[d]!)));

    say(`embedding the common test set (${slices.test.length} photos)`);
    const test = await embedTestSet(agents[0]!.backbone, slices.test);

    say('devices train on what they have and send their heads');
    const before = new Map<string, number>();
    for (const [d, agent] of agents.entries()) {
      const outcome = await agent.train();
      if (!agent.currentHead) throw new Error(`${ids[d]}: training kept no head (${JSON.stringify(outcome)})`);
      before.set(ids[d]!, accuracy(agent.currentHead, test));
    }
    await until('every device head at the console', () => ids.every((id) => fleet.registry.deviceHeadCount(id) > 0), 30_000);

    say('console merges the heads; the canary tries the fleet head first');
    const rollout = await fleet.mergeAndRollout();
    say(`fleet head v${rollout.version}: ${rollout.status}${rollout.reason ? ` (${rollout.reason})` : ''}`);
    if (rollout.status === 'held') {
      // A demo's canary has a handful of holdout photos: the operator (the demo) looks and releases.
      rollout.status = (await fleet.rollouts.releaseHeld(rollout.version)).status;
      say(`fleet head v${rollout.version}: released by the operator`);
    }
    if (rollout.status === 'released') {
      await until(
        `every device on fleet head v${rollout.version}`,
        () => agents.every((a) => a.currentHead?.meta.metrics.fleetVersion === rollout.version),
        30_000,
      );
    }

    const devices = agents.map((agent, d): DemoDevice => {
      const after = accuracy(agent.currentHead!, test);
      const b = before.get(ids[d]!)!;
      return {
        id: ids[d]!,
        samples: slices.perDevice[d]!.length,
        before: b,
        after,
        gain: after - b,
        headVersion: agent.currentHead!.meta.version,
      };
    });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const result: DemoResult = {
      classes: data.classes,
      testImages: test.labels.length,
      fleetVersion: rollout.version,
      rollout: rollout.status,
      devices,
      meanBefore: mean(devices.map((d) => d.before)),
      meanAfter: mean(devices.map((d) => d.after)),
      minGain: Math.min(...devices.map((d) => d.gain)),
      seconds: (Date.now() - started) / 1000,
    };
    return { result, console: fleet, agents, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startDemoAgent(fleet: FleetConsole, id: string, dir: string, backbone: string | undefined, log: Logger): Promise<Agent> {
  const { fleet: login } = fleet.addDevice(id);
  const config = AgentConfigSchema.parse({
    device: { id },
    data: { dir },
    // One inference worker each: four agents share two cores.
    model: { ...(backbone ? { backbone } : {}), workers: 1, threads: 1 },
    // The demo says when to train; devices send their heads at once.
    head: { retrainAfterLabels: 0 },
    http: { enabled: false },
    fleet: { ...login, publishDelayMs: 0 },
  });
  return Agent.start(config, { log });
}

async function collect(agent: Agent, photos: { path: string; label: string }[]): Promise<void> {
  for (const photo of photos) agent.ingest(readFileSync(photo.path), photo.label, 'demo');
  await agent.pipeline.idle();
}

interface TestSet {
  embeddings: Float32Array[];
  labels: string[];
}

async function embedTestSet(backbone: Backbone, photos: { path: string; label: string }[]): Promise<TestSet> {
  const outcomes = await embedFiles(
    photos.map((p) => p.path),
    backbone,
  );
  const set: TestSet = { embeddings: [], labels: [] };
  outcomes.forEach((o, i) => {
    if (!o.embedding) throw o.error ?? new Error(`${o.path}: no embedding`);
    set.embeddings.push(o.embedding);
    set.labels.push(photos[i]!.label);
  });
  return set;
}

function accuracy(head: Head, test: TestSet): number {
  let correct = 0;
  test.embeddings.forEach((e, i) => {
    if (head.predict(e).label === test.labels[i]) correct++;
  });
  return correct / test.labels.length;
}
