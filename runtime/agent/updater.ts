// The device side of agent updates pushed from the console: verify the signed manifest (fleet key, this
// fleet, this CPU, a newer sequence, this device in the stage), collect the bundle's chunks (sha256
// checked), unpack and install it beside the running release, then hand over to `edgetune release
// activate` started outside the agent's own process tree: it switches `current`, restarts the agent,
// waits for /health and the broker link, and rolls back when the new release fails. The agent that
// starts next (new or restored) reads the outcome and reports it in its state; a version that failed
// is not tried again.

import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { writeDurably } from '../durable.js';
import { installScript, runOk } from '../release/activate.js';
import { type ReleaseLayout, releaseLayout, shq } from '../release/layout.js';
import { localExec } from '../release/local.js';
import { serviceManager } from '../release/service.js';
import type { SampleStore } from '../samples/store.js';
import { type AgentUpdate, decodeAgentUpdate } from '../sync/agent-update.js';
import { ChunkAssembler } from '../sync/chunks.js';
import { SyncError, topics } from '../sync/protocol.js';
import type { Logger } from './log.js';

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

/** What `edgetune release activate --result` leaves for the next agent. */
interface ActivationResult {
  version: string;
  ok: boolean;
  error?: string;
  at: string;
}

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
    return `${this.layout.opt}/update-result.json`;
  }

  start(): void {
    // fleet/# is what both brokers' ACLs let a device read; only the agent topic is ours.
    this.options.subscribe(`edgetune/${this.options.fleet}/fleet/#`, (topic, payload) => {
      if (topic === topics.fleetAgent(this.options.fleet) && payload.length > 0) this.onManifest(topic, payload);
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
        if (!failed.includes(result.version)) this.options.store.setMeta(FAILED_KEY, JSON.stringify([...failed, result.version].slice(-20)));
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
    this.options.log[status.status === 'failed' || status.status === 'refused' ? 'warn' : 'info'](`agent update ${status.status}`, { ...status });
    this.options.changed();
  }

  private onManifest(topic: string, payload: Buffer): void {
    let update: AgentUpdate;
    try {
      update = decodeAgentUpdate(payload, { where: topic, publicKey: this.options.publicKey, fleet: this.options.fleet });
      const last = Number(this.options.store.getMeta(SEQUENCE_KEY) ?? 0);
      // The retained manifest comes again on every reconnect: the same sequence is no news.
      if (update.sequence === last) return;
      if (update.sequence < last) throw new SyncError('SYNC_REPLAY', `${topic}: sequence ${update.sequence} is older than ${last}: a replayed (downgrade) update, refused`);
      const target = `linux-${process.arch}`;
      if (update.target !== target) throw new SyncError('SYNC_TARGET_MISMATCH', `${topic}: a ${update.target} bundle, this device is ${target}`);
    } catch (err) {
      this.setStatus({ version: 'unknown', status: 'refused', code: err instanceof SyncError ? err.code : 'SYNC_ERROR', error: errorMessage(err) });
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
      this.setStatus({ version: update.version, status: 'failed', code: err instanceof SyncError ? err.code : 'SYNC_ERROR', error: errorMessage(err) });
      return;
    }
    if (!file || file.sha256 !== update.sha256) return;
    this.busy = true;
    this.pending = undefined;
    this.install(update, file.bytes).catch((err: unknown) => {
      this.busy = false;
      this.setStatus({ version: update.version, status: 'failed', code: (err as { code?: string }).code ?? 'DEPLOY_FAILED', error: errorMessage(err) });
    });
  }

  private async install(update: AgentUpdate, bytes: Uint8Array): Promise<void> {
    this.setStatus({ version: update.version, status: 'installing' });
    const { layout } = this;
    const tarball = `${layout.incoming}/${update.sha256}.tar.gz`;
    writeDurably(tarball, bytes, { mode: 0o600 });
    const release = `${layout.releases}/${update.version}`;
    await runOk(localExec, installScript(layout, tarball, update.version), `installing release ${update.version}`, { timeoutMs: 300_000 });
    const manifest = JSON.parse(readFileSync(`${release}/manifest.json`, 'utf8')) as { version: string; target: string };
    if (manifest.version !== update.version || manifest.target !== update.target) {
      throw new SyncError('SYNC_MALFORMED', `the bundle holds release ${manifest.version} for ${manifest.target}, the manifest said ${update.version} for ${update.target}`);
    }
    this.options.store.setMeta(SEQUENCE_KEY, String(update.sequence));
    this.options.store.setMeta(PENDING_KEY, update.version);
    rmSync(this.resultFile, { force: true });
    this.setStatus({ version: update.version, status: 'restarting' });
    // The activation outlives this process: it stops this agent, starts the new one, and brings this
    // release back if the new one is not healthy.
    const service = serviceManager(this.options.service);
    const activate = [
      shq(`${layout.releases}/${this.options.release}/bin/edgetune`),
      'release activate',
      `--prefix ${shq(layout.prefix)} --version ${shq(update.version)} --service ${this.options.service}`,
      `--port ${this.options.httpPort} --fleet --result ${shq(this.resultFile)}`,
    ].join(' ');
    await runOk(localExec, service.detached(activate, layout), 'starting the activation');
  }
}
