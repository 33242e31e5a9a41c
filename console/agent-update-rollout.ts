// Agent updates from the console: a bundle pushed over MQTT to the fleet's devices. The bundle goes out
// as retained chunks (a device that is offline gets it when it reconnects), then the signed manifest,
// retained on edgetune/{fleet}/fleet/agent. A stage names its devices in the signed manifest: canaries
// first, then every device once the canaries run the new release (agent/updater.ts applies it).

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type AgentUpdate, encodeAgentUpdate } from '../runtime/sync/agent-update.js';
import { DEFAULT_CHUNK_BYTES, splitIntoChunks } from '../runtime/sync/chunks.js';
import { topics } from '../runtime/sync/protocol.js';
import { readBundleManifest } from '../deploy/bundle/read.js';
import { RolloutTracker, type StageProgress } from './rollout-progress.js';

/** How the console publishes (an MQTT client's publishAsync, the embedded broker's publish...). */
export type Publish = (topic: string, payload: Buffer, options: { qos: 1; retain: boolean }) => Promise<unknown>;

export interface AgentUpdateOptions {
  fleet: string;
  /** A bundle file (edgetune deploy bundle). */
  bundle: string;
  /** The fleet's private signing key. */
  key: KeyObject;
  publish: Publish;
  /** Only these devices (a stage); default: all. */
  devices?: string[] | null;
  chunkBytes?: number;
}

/** Publishes the bundle's chunks and the signed manifest; returns the manifest. */
export async function publishAgentUpdate(options: AgentUpdateOptions, sequence = Date.now()): Promise<AgentUpdate> {
  const manifest = readBundleManifest(options.bundle);
  const bytes = readFileSync(options.bundle);
  const chunks = splitIntoChunks(bytes, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  for (const chunk of chunks)
    await options.publish(topics.blob(options.fleet, chunk.sha256, chunk.index), Buffer.from(chunk.payload), { qos: 1, retain: true });
  const update: AgentUpdate = {
    kind: 'agent-update',
    fleet: options.fleet,
    version: manifest.version,
    target: manifest.target,
    sha256: chunks[0]!.sha256,
    bytes: bytes.length,
    chunks: chunks.length,
    devices: options.devices ?? null,
    sequence,
    createdAt: new Date().toISOString(),
  };
  await options.publish(topics.fleetAgent(options.fleet), Buffer.from(encodeAgentUpdate(update, options.key)), { qos: 1, retain: true });
  return update;
}

/** Clears the retained manifest and chunks (after a rollout, or to call one off). */
export async function withdrawAgentUpdate(fleet: string, update: AgentUpdate, publish: Publish): Promise<void> {
  await publish(topics.fleetAgent(fleet), Buffer.alloc(0), { qos: 1, retain: true });
  for (let i = 0; i < update.chunks; i++) await publish(topics.blob(fleet, update.sha256, i), Buffer.alloc(0), { qos: 1, retain: true });
}

/** A device's last state message, as the console keeps it. */
export type DeviceState = { release?: unknown; update?: { version?: unknown; status?: unknown; error?: unknown } | null } & Record<
  string,
  unknown
>;

export interface RolloutOptions extends AgentUpdateOptions {
  /** Devices updated first; the rest only when every canary runs the new release. */
  canaries: string[];
  /** The devices that take it (the report names every one); those that cannot are in `unable`. */
  fleetDevices: string[];
  /** Devices that cannot take it (no release section, another CPU), named before it starts. */
  unable?: { device: string; reason: string }[];
  state: (device: string) => DeviceState | undefined;
  /** How long a stage may take (default 10 minutes); a stage that runs out ends with a summary. */
  stageTimeoutMs?: number;
  tracker?: RolloutTracker;
  /** The devices the fleet stage's manifest names (a tag's); absent: every device of the fleet. */
  fleetScope?: string[];
}

export interface RolloutReport {
  update: AgentUpdate;
  /** Per device: the release it runs at the end, and whether it is the new one. */
  devices: { device: string; release: string | null; updated: boolean; status: string | null; error: string | null }[];
  stage: 'canaries' | 'fleet';
  ok: boolean;
  unable: { device: string; reason: string }[];
  /** One line per stage: how many were done, in how long, and who was not. */
  summaries: string[];
}

/** Canaries first, then the whole fleet; stops after the canaries when any of them failed. */
export async function rolloutAgentUpdate(options: RolloutOptions): Promise<RolloutReport> {
  const timeout = options.stageTimeoutMs ?? 10 * 60_000;
  const tracker = options.tracker ?? new RolloutTracker();
  const unable = options.unable ?? [];
  const { version } = readBundleManifest(options.bundle);
  if (!tracker.current) tracker.begin('agent-update', version, unable);
  const summaries: string[] = [];
  const finish = (update: AgentUpdate, stage: RolloutReport['stage'], ok: boolean): RolloutReport => {
    const devices = report(update, options.fleetDevices, options.state);
    const updated = devices.filter((d) => d.updated).length;
    // With no device able to take it now, nothing was updated: not a success (offline devices still
    // find the retained manifest when they reconnect).
    const nobody = devices.length === 0;
    const verdict = nobody ? 'no device could take it now' : ok ? 'every device updated' : `stopped at the ${stage} stage`;
    tracker.finish(
      ok && !nobody,
      `agent ${update.version}: ${verdict} (${updated} of ${devices.length} on it${unable.length > 0 ? `, ${unable.length} cannot take it` : ''})`,
    );
    return { update, devices, stage, ok: ok && !nobody, unable, summaries };
  };
  let sequence = Date.now();
  let update = await publishAgentUpdate({ ...options, devices: options.canaries }, sequence);
  if (options.canaries.length > 0) {
    const canaries = await waitForStage(update, 'canaries', options.canaries, options.state, timeout, tracker);
    summaries.push(canaries.summary!);
    if (!canaries.devices.every((d) => d.ok)) return finish(update, 'canaries', false);
  }
  sequence = Math.max(sequence + 1, Date.now());
  update = await publishAgentUpdate({ ...options, devices: options.fleetScope ?? null }, sequence);
  const all = await waitForStage(update, 'fleet', options.fleetDevices, options.state, timeout, tracker);
  summaries.push(all.summary!);
  return finish(
    update,
    'fleet',
    all.devices.every((d) => d.ok),
  );
}

function report(update: AgentUpdate, devices: string[], state: RolloutOptions['state']): RolloutReport['devices'] {
  return devices.map((device) => {
    const s = state(device);
    const release = typeof s?.release === 'string' ? s.release : null;
    const forThis = s?.update && s.update.version === update.version ? s.update : null;
    return {
      device,
      release,
      updated: release === update.version,
      status: typeof forThis?.status === 'string' ? forThis.status : null,
      error: typeof forThis?.error === 'string' ? forThis.error : null,
    };
  });
}

const FAILED = ['rolled-back', 'failed', 'refused'];

/** Until every device runs the new release, or reports it failed (rolled back), or the time is up. */
async function waitForStage(
  update: AgentUpdate,
  name: string,
  devices: string[],
  state: RolloutOptions['state'],
  timeoutMs: number,
  tracker: RolloutTracker,
): Promise<StageProgress> {
  tracker.stage(name, devices, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = report(update, devices, state);
    for (const r of rows) {
      const failed = r.status !== null && FAILED.includes(r.status);
      tracker.device({
        device: r.device,
        status: r.updated ? 'updated' : (r.status ?? 'waiting'),
        detail: r.error ?? (r.release ? `runs ${r.release}` : null),
        done: r.updated || failed,
        ok: r.updated,
      });
    }
    if (rows.every((r) => r.updated || (r.status !== null && FAILED.includes(r.status))) || Date.now() > deadline)
      return tracker.endStage();
    await new Promise((r) => setTimeout(r, 250));
  }
}
