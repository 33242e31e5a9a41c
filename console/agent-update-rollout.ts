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
  /** Every device of the fleet (for the report). */
  fleetDevices: string[];
  state: (device: string) => DeviceState | undefined;
  /** How long a stage may take (default 10 minutes). */
  stageTimeoutMs?: number;
}

export interface RolloutReport {
  update: AgentUpdate;
  /** Per device: the release it runs at the end, and whether it is the new one. */
  devices: { device: string; release: string | null; updated: boolean; status: string | null; error: string | null }[];
  stage: 'canaries' | 'fleet';
  ok: boolean;
}

/** Canaries first, then the whole fleet; stops after the canaries when any of them failed. */
export async function rolloutAgentUpdate(options: RolloutOptions): Promise<RolloutReport> {
  const timeout = options.stageTimeoutMs ?? 10 * 60_000;
  let sequence = Date.now();
  let update = await publishAgentUpdate({ ...options, devices: options.canaries }, sequence);
  const canaries = await waitForStage(update, options.canaries, options.state, timeout);
  if (!canaries.every((d) => d.updated))
    return { update, devices: report(update, options.fleetDevices, options.state), stage: 'canaries', ok: false };
  sequence = Math.max(sequence + 1, Date.now());
  update = await publishAgentUpdate({ ...options, devices: null }, sequence);
  const all = await waitForStage(update, options.fleetDevices, options.state, timeout);
  return { update, devices: report(update, options.fleetDevices, options.state), stage: 'fleet', ok: all.every((d) => d.updated) };
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

/** Until every device runs the new release, or reports it failed (rolled back), or the time is up. */
async function waitForStage(
  update: AgentUpdate,
  devices: string[],
  state: RolloutOptions['state'],
  timeoutMs: number,
): Promise<RolloutReport['devices']> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = report(update, devices, state);
    const done = rows.every((r) => r.updated || r.status === 'rolled-back' || r.status === 'failed' || r.status === 'refused');
    if (done || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 250));
  }
}
