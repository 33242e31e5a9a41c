// The device side of agent updates pushed from the console: verify the signed manifest (fleet key, this
// fleet, this CPU, a newer sequence, this device in the stage), collect the bundle's chunks (sha256
// checked), and hand the bundle to `edgetune release apply-update` (`applyUpdate` below), started outside
// the agent's own process tree (as root by systemd's edgetune-update.path, or a detached process): it
// installs the release beside the running one, switches `current`, restarts the agent, waits for /health
// and the broker link, and rolls back when the new release fails. The agent that starts next (new or
// restored) reads the outcome and reports it in its state; a version that failed is not tried again.

import { type KeyObject, createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { errorMessage } from '../core/errors.js';
import { bundleTargetOf } from '../core/platform.js';
import { writeDurably } from '../core/durable.js';
import { activateRelease, installScript, runOk } from '../runtime/release/activate.js';
import { loadAgentConfig } from './config.js';
import { type ReleaseLayout, releaseLayout, shq } from '../runtime/release/layout.js';
import { localExec } from '../runtime/release/local.js';
import { serviceManager } from '../runtime/release/service.js';
import type { SampleStore } from '../runtime/samples/store.js';
import { type AgentUpdate, decodeAgentUpdate } from '../runtime/sync/agent-update.js';
import { ChunkAssembler } from '../runtime/sync/chunks.js';
import { SyncError, topics } from '../runtime/sync/protocol.js';
import type { Logger } from '../core/log.js';

export interface UpdateStatus {
  version: string;
  status: 'downloading' | 'installing' | 'restarting' | 'installed' | 'rolled-back' | 'failed' | 'refused';
  error?: string;
  code?: string;
  at: string;
}

export interface UpdaterOptions {
  fleet: string;
  device: string;
  publicKey: KeyObject;
  /** The release this agent runs (EDGETUNE_RELEASE). */
  release: string;
  prefix: string;
  service: 'systemd' | 'process';
  httpPort: number;
  store: SampleStore;
  subscribe(topic: string, handler: (topic: string, payload: Buffer) => void): void;
  /** The status changed: publish the device's state. */
  changed(): void;
  log: Logger;
}

/** What the agent asks `edgetune release apply-update` to install (updates/request.json). */
export interface UpdateRequest {
  version: string;
  target: string;
  sha256: string;
  /** The verified bundle. */
  file: string;
}

/** What `edgetune release apply-update` leaves for the next agent (updates/result.json). */
export interface ActivationResult {
  version: string;
  ok: boolean;
  error?: string;
  at: string;
}

export const requestFile = (layout: ReleaseLayout) => `${layout.updates}/request.json`;
export const resultFile = (layout: ReleaseLayout) => `${layout.updates}/result.json`;

const FAILED_KEY = 'agent_update_failed';
const SEQUENCE_KEY = 'agent_update_sequence';
const PENDING_KEY = 'agent_update_pending';

export class AgentUpdater {
  private readonly layout: ReleaseLayout;
  private readonly assembler = new ChunkAssembler({ maxFileBytes: 512 * 2 ** 20, maxPendingFiles: 2, staleMs: 30 * 60_000 });
  private pending: AgentUpdate | undefined;
  private busy = false;
  status: UpdateStatus | null = null;

  constructor(private readonly options: UpdaterOptions) {
    this.layout = releaseLayout(options.prefix);
    this.readOutcome();
  }

  get resultFile(): string {
    return resultFile(this.layout);
  }

  start(): void {
    this.options.subscribe(topics.fleetAgent(this.options.fleet), (topic, payload) => {
      if (payload.length > 0) this.onManifest(topic, payload);
    });
  }

  /** The outcome of the last update: the release it asked for is running, or it failed and was rolled
   * back (then it is remembered, and reported). */
  private readOutcome(): void {
    const pending = this.options.store.getMeta(PENDING_KEY);
    if (!pending) return;
    if (pending === this.options.release) {
      this.status = { version: pending, status: 'installed', at: new Date().toISOString() };
      this.options.store.setMeta(PENDING_KEY, '');
      return;
    }
    if (!existsSync(this.resultFile)) return;
    try {
      const result = JSON.parse(readFileSync(this.resultFile, 'utf8')) as ActivationResult;
      if (!result.ok && result.version === pending) {
        this.options.store.setMeta(PENDING_KEY, '');
        this.status = { version: result.version, status: 'rolled-back', error: result.error ?? 'failed its health check', at: result.at };
        const failed = this.failedVersions();
        if (!failed.includes(result.version))
          this.options.store.setMeta(FAILED_KEY, JSON.stringify([...failed, result.version].slice(-20)));
      }
    } catch (err) {
      this.options.log.warn('unreadable agent update result', { file: this.resultFile, error: errorMessage(err) });
    }
  }

  private failedVersions(): string[] {
    const value = this.options.store.getMeta(FAILED_KEY);
    return value ? (JSON.parse(value) as string[]) : [];
  }

  private setStatus(status: Omit<UpdateStatus, 'at'>): void {
    this.status = { ...status, at: new Date().toISOString() };
    this.options.log[status.status === 'failed' || status.status === 'refused' ? 'warn' : 'info'](`agent update ${status.status}`, {
      ...status,
    });
    this.options.changed();
  }

  private onManifest(topic: string, payload: Buffer): void {
    let update: AgentUpdate;
    try {
      update = decodeAgentUpdate(payload, { where: topic, publicKey: this.options.publicKey, fleet: this.options.fleet });
      const last = Number(this.options.store.getMeta(SEQUENCE_KEY) ?? 0);
      // The retained manifest comes again on every reconnect: the same sequence is no news.
      if (update.sequence === last) return;
      if (update.sequence < last)
        throw new SyncError(
          'SYNC_REPLAY',
          `${topic}: sequence ${update.sequence} is older than ${last}: a replayed (downgrade) update, refused`,
        );
      const target = bundleTargetOf();
      if (update.target !== target)
        throw new SyncError('SYNC_TARGET_MISMATCH', `${topic}: a ${update.target} bundle, this device is ${target}`);
    } catch (err) {
      this.setStatus({
        version: 'unknown',
        status: 'refused',
        code: err instanceof SyncError ? err.code : 'SYNC_ERROR',
        error: errorMessage(err),
      });
      return;
    }
    if (update.devices && !update.devices.includes(this.options.device)) return; // a stage without this device
    if (this.busy) return;
    if (update.version === this.options.release) {
      this.options.store.setMeta(SEQUENCE_KEY, String(update.sequence));
      return;
    }
    if (this.failedVersions().includes(update.version)) return;
    this.pending = update;
    this.setStatus({ version: update.version, status: 'downloading' });
    this.options.subscribe(`edgetune/${this.options.fleet}/blobs/${update.sha256}/+`, (t, p) => this.onChunk(t, p));
  }

  private onChunk(topic: string, payload: Buffer): void {
    const update = this.pending;
    if (!update || this.busy || !topic.includes(`/blobs/${update.sha256}/`)) return;
    let file: { sha256: string; bytes: Uint8Array } | undefined;
    try {
      file = this.assembler.add(payload, topic);
    } catch (err) {
      this.setStatus({
        version: update.version,
        status: 'failed',
        code: err instanceof SyncError ? err.code : 'SYNC_ERROR',
        error: errorMessage(err),
      });
      return;
    }
    if (!file || file.sha256 !== update.sha256) return;
    this.busy = true;
    this.pending = undefined;
    this.install(update, file.bytes).catch((err: unknown) => {
      this.busy = false;
      this.setStatus({
        version: update.version,
        status: 'failed',
        code: (err as { code?: string }).code ?? 'DEPLOY_FAILED',
        error: errorMessage(err),
      });
    });
  }

  /** Hands the verified bundle to `edgetune release apply-update` (root under systemd, through
   * edgetune-update.path): it installs, switches, restarts this agent, and rolls back if the new one
   * is not healthy. */
  private async install(update: AgentUpdate, bytes: Uint8Array): Promise<void> {
    this.setStatus({ version: update.version, status: 'installing' });
    const { layout } = this;
    const file = `${layout.updates}/${update.sha256}.tar.gz`;
    writeDurably(file, bytes, { mode: 0o644 });
    this.options.store.setMeta(SEQUENCE_KEY, String(update.sequence));
    this.options.store.setMeta(PENDING_KEY, update.version);
    rmSync(this.resultFile, { force: true });
    const request: UpdateRequest = { version: update.version, target: update.target, sha256: update.sha256, file };
    writeDurably(requestFile(layout), Buffer.from(`${JSON.stringify(request)}\n`), { mode: 0o644 });
    this.setStatus({ version: update.version, status: 'restarting' });
    const service = serviceManager(this.options.service);
    const apply = `${shq(`${layout.releases}/${this.options.release}/bin/edgetune`)} release apply-update --prefix ${shq(layout.prefix)} --service ${this.options.service}`;
    await runOk(localExec, service.startUpdate(apply, layout), 'starting the update');
  }
}

/**
 * `edgetune release apply-update`: installs the bundle the agent left in updates/, activates it with the
 * agent's own port and fleet setting, and writes updates/result.json (before a rollback restarts the
 * previous release, so the agent that comes back reads it). No request: nothing to do.
 */
export async function applyUpdate(
  layout: ReleaseLayout,
  serviceName: 'systemd' | 'process',
  timeoutMs = 120_000,
): Promise<ActivationResult | undefined> {
  if (!existsSync(requestFile(layout))) return undefined;
  const request = JSON.parse(readFileSync(requestFile(layout), 'utf8')) as UpdateRequest;
  rmSync(requestFile(layout), { force: true });
  const write = (result: ActivationResult) => writeDurably(resultFile(layout), Buffer.from(`${JSON.stringify(result)}\n`), { mode: 0o644 });
  const fail = (err: unknown) => write({ version: request.version, ok: false, error: errorMessage(err), at: new Date().toISOString() });
  try {
    const sha256 = createHash('sha256').update(readFileSync(request.file)).digest('hex');
    if (sha256 !== request.sha256)
      throw new SyncError('SYNC_CHECKSUM', `${request.file}: sha256 ${sha256}, the signed manifest says ${request.sha256}`);
    await runOk(localExec, installScript(layout, request.file, request.version), `installing release ${request.version}`, {
      timeoutMs: 300_000,
    });
    const manifest = JSON.parse(readFileSync(`${layout.releases}/${request.version}/manifest.json`, 'utf8')) as {
      version: string;
      target: string;
    };
    if (manifest.version !== request.version || manifest.target !== request.target) {
      throw new SyncError(
        'SYNC_MALFORMED',
        `the bundle holds release ${manifest.version} for ${manifest.target}, the manifest said ${request.version} for ${request.target}`,
      );
    }
    const config = loadAgentConfig(layout.config);
    await activateRelease(localExec, {
      layout,
      version: request.version,
      service: serviceManager(serviceName),
      health: { port: config.http.port, fleet: Boolean(config.fleet), timeoutMs },
      onFailed: fail,
    });
  } catch (err) {
    fail(err);
    throw err;
  }
  const result = { version: request.version, ok: true, at: new Date().toISOString() };
  write(result);
  return result;
}
