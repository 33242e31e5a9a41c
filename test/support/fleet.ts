// Real agents joined to a real console, fed real flower photos.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetConsole } from '../../console/service.js';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { silentLogger } from '../../core/log.js';
import { FLOWERS_DIR } from './paths.js';

/** Starts the real agent as device `id` of the console's fleet. */
export async function startFleetAgent(
  console_: FleetConsole,
  id: string,
  dataDir: string,
  fleet: Record<string, unknown> = {},
  data: Record<string, unknown> = {},
  login = console_.addDevice(id).fleet,
  device: Record<string, unknown> = {},
): Promise<Agent> {
  const config = AgentConfigSchema.parse({
    device: { id, ...device },
    data: { dir: dataDir, holdoutFraction: 0, ...data },
    head: { retrainAfterLabels: 0 },
    http: { port: 0 },
    fleet: { ...login, publishDelayMs: 0, ...fleet },
  });
  return Agent.start(config, { log: silentLogger });
}

/** `count` photos of a class, starting at `from` in name order. */
export function flowerPhotos(label: string, from: number, count: number): Buffer[] {
  return readdirSync(join(FLOWERS_DIR, label))
    .sort()
    .slice(from, from + count)
    .map((f) => readFileSync(join(FLOWERS_DIR, label, f)));
}

/** Labels `count` photos per class on an agent (from `from`), with `rename` mislabelling some classes. */
export async function feed(
  agent: Agent,
  classes: string[],
  from: number,
  count: number,
  rename: Record<string, string> = {},
): Promise<void> {
  for (const label of classes) for (const photo of flowerPhotos(label, from, count)) agent.ingest(photo, rename[label] ?? label, 'upload');
  await agent.pipeline.idle();
}
