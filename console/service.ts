// The fleet console: a broker (embedded or external), the device registry, per-device credentials, the
// fleet signing key, commands to devices with their replies, and merge + staged rollout of fleet heads.
// The web console and `edgetune console` / `edgetune demo` drive it.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCodeOr } from '../core/error-catalogue.js';
import { ConsoleError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { decodeHead } from '../runtime/head/index.js';
import type { MergeOptions } from '../runtime/head/merge.js';
import type { CommandName, CommandResponse } from '../runtime/sync/commands.js';
import { peekHeadMessageHeader } from '../runtime/sync/head-message.js';
import { PROTOCOL_VERSION, checkId, topics } from '../runtime/sync/protocol.js';
import { type FleetKeys, loadOrCreateFleetKey, publicKeyPem } from '../runtime/sync/signing.js';
import { DeviceCredentials } from './credentials.js';
import { type DeviceMessageEvents, DeviceMessages } from './device-messages.js';
import { DeviceTrouble } from './device-trouble.js';
import { type DeviceView, deviceViews } from './device-view.js';
import { DeviceViewCache } from './device-view-cache.js';
import { DeviceIngest } from './ingest.js';
import { type ClassDecision, type ClassView, FleetClasses } from './fleet-classes.js';
import { Quarantine, type QuarantineOptions } from './quarantine.js';
import { DeviceQuotas, type QuotaLimits } from './quotas.js';
import { Registry } from './registry.js';
import { type RolloutReport, rolloutAgentUpdate } from './agent-update-rollout.js';
import { readBundleManifest } from '../deploy/bundle/read.js';
import { type RolloutProgress, RolloutTracker } from './rollout-progress.js';
import { type RolloutResult, Rollouts } from './rollout.js';
import { MergePolicy, type MergePolicyOptions, verdictOf } from './merge-policy.js';
import {
  EmbeddedTransport,
  type EmbeddedBrokerOptions,
  type ExternalBrokerOptions,
  ExternalTransport,
  type Transport,
} from './transport.js';

export { ConsoleError };

/** A stored head's labels (the console wrote it, so it decodes). */
function peekLabels(bytes: Buffer): string[] {
  return decodeHead(bytes).labels;
}
export type { DeviceView };

export interface ConsoleOptions {
  /** Registry, credentials, fleet key. */
  dir: string;
  fleet: string;
  /** The embedded broker's address (default 127.0.0.1:1883). */
  broker?: EmbeddedBrokerOptions;
  /** Use this broker instead of the embedded one. */
  externalBroker?: ExternalBrokerOptions;
  /** Devices that get a new fleet head first; the rest only when these do not get worse. */
  canaries?: string[];
  /** Roll back when a canary's holdout accuracy drops by more than this (default 0.02). */
  rollbackTolerance?: number;
  /** Holdout samples across the canaries a release needs; fewer hold the head for the operator (default 10). */
  minCanaryHoldout?: number;
  /** Devices that must have a class before it enters the fleet head without the operator (default: more than half). */
  classQuorum?: number;
  commandTimeoutMs?: number;
  /** How long a fleet head's release stage waits for the online devices to apply it (default 60 s). */
  fleetStageTimeoutMs?: number;
  merge?: MergeOptions;
  /** The unattended loop: merge after so many new device heads, or every so often. */
  mergePolicy?: MergePolicyOptions;
  /** When refused heads quarantine a device (console/quarantine.ts). */
  quarantine?: QuarantineOptions;
  /** What one device may cost the console (console/quotas.ts). */
  quotas?: Partial<QuotaLimits>;
  /** batched (default): device messages are written a run at a time and the device table is kept
   * built (console/ingest.ts, console/device-view-cache.ts); immediate: each message is written as it
   * arrives and the table rebuilt per request, as before, for bench/fleet-scale's comparison. */
  ingest?: 'batched' | 'immediate';
  log?: Logger;
}

/** The fleet signing key of a console folder, created on first use (add-device may come before the
 * first start), with its public half written next to it for devices. */
export function openFleetKey(dir: string): FleetKeys & { created: boolean } {
  mkdirSync(dir, { recursive: true });
  const keys = loadOrCreateFleetKey(join(dir, 'fleet.key'));
  writeFileSync(join(dir, 'fleet.pub'), publicKeyPem(keys.publicKey));
  return keys;
}

export class FleetConsole extends EventEmitter {
  private readonly pending = new Map<string, { device: string; resolve: (r: CommandResponse) => void; timer: NodeJS.Timeout }>();
  readonly messages: DeviceMessages;
  readonly rollouts: Rollouts;
  readonly policy: MergePolicy;
  /** The rollout running now (agent update or fleet head) and the last ones, per stage and device. */
  readonly progress = new RolloutTracker(() => this.emit('change', { type: 'rollout' }));
  private transport!: Transport;
  readonly publicKeyFile: string;
  /** Null with `ingest: 'immediate'`. */
  readonly ingest: DeviceIngest | null;
  private readonly views: DeviceViewCache | null;

  private constructor(
    readonly options: ConsoleOptions,
    readonly registry: Registry,
    readonly credentials: DeviceCredentials,
    readonly keys: FleetKeys,
    readonly log: Logger,
    readonly quarantine: Quarantine,
    readonly classes: FleetClasses,
    readonly quotas: DeviceQuotas,
  ) {
    super();
    this.publicKeyFile = join(options.dir, 'fleet.pub');
    const batched = options.ingest !== 'immediate';
    this.ingest = batched
      ? new DeviceIngest(
          (work) => registry.transaction(work),
          (error, messages) => this.log.error('device messages not written; the broker keeps them', { error, messages }),
        )
      : null;
    this.views = batched
      ? new DeviceViewCache({
          registry,
          canaries: this.canaries,
          issued: () => credentials.issued(),
          issuedFingerprint: () => credentials.issuedFingerprint(),
        })
      : null;
    const events: DeviceMessageEvents = {
      problem: (p) => {
        this.log.warn('device message refused', { ...p });
        registry.addProblem(p);
        this.emit('change', { type: 'problem', device: p.device });
      },
      changed: (c) => this.emit('change', { type: c.channel, device: c.device }),
      response: (r) => this.onResponse(r),
      logLines: (batch) => this.emit('log', batch),
      headStored: (h) => {
        this.log.info(h.duplicate ? 'device head already stored (duplicate dropped)' : 'device head stored', h);
        this.emit('head', h);
      },
      quarantined: ({ device, reason }) => {
        this.log.warn('device quarantined', { device, reason });
        registry.addProblem({ device, topic: topics.device(options.fleet, device, 'head'), code: 'DEVICE_QUARANTINED', message: reason });
        this.emit('change', { type: 'quarantine', device });
      },
    };
    const ingest = this.ingest;
    this.messages = new DeviceMessages(options.fleet, registry, ingest ? ingest.deferring(events) : events, {
      fleetShape: () => this.fleetShape(),
      quarantine,
      quotas,
      ...(ingest ? { afterWrite: (effect: () => void) => ingest.afterWrite(effect) } : {}),
    });
    ingest?.attach((topic, payload) => this.messages.handle(topic, payload));
    this.rollouts = new Rollouts(this);
    this.policy = new MergePolicy(this, options.mergePolicy ?? {});
  }

  static async start(options: ConsoleOptions): Promise<FleetConsole> {
    checkId('fleet', options.fleet);
    mkdirSync(options.dir, { recursive: true });
    const log = options.log ?? silentLogger;
    const registry = new Registry(join(options.dir, 'registry.db'));
    // Credential hashes and heads: for the console's user only (SQLite gives -wal and -shm the same mode).
    for (const suffix of ['', '-wal', '-shm']) {
      const file = join(options.dir, `registry.db${suffix}`);
      if (existsSync(file)) chmodSync(file, 0o600);
    }
    const credentials = new DeviceCredentials(join(options.dir, 'registry.db'));
    const keys = openFleetKey(options.dir);
    if (keys.created) log.info('fleet signing key created', { file: join(options.dir, 'fleet.key') });
    const quarantine = new Quarantine(join(options.dir, 'registry.db'), options.quarantine);
    const classes = new FleetClasses(join(options.dir, 'registry.db'), options.classQuorum);
    const quotas = new DeviceQuotas(join(options.dir, 'registry.db'), options.quotas);
    const console_ = new FleetConsole(options, registry, credentials, keys, log, quarantine, classes, quotas);
    writeFileSync(console_.publicKeyFile, publicKeyPem(keys.publicKey));
    const trouble = new DeviceTrouble({
      fleet: options.fleet,
      issued: (device) => credentials.has(device),
      report: (p) => console_.messages.report(p),
    });
    const deliver = ({ topic, payload }: { topic: string; payload: Buffer }) =>
      console_.ingest ? console_.ingest.push(topic, payload) : console_.messages.handle(topic, payload);
    try {
      console_.transport = options.externalBroker
        ? await ExternalTransport.open(options.fleet, options.externalBroker, deliver, (msg, error) =>
            log[error ? 'warn' : 'info'](msg, { error }),
          )
        : await EmbeddedTransport.open(options.fleet, credentials, options.broker ?? {}, deliver, {
            onRefusal: (refusal) => {
              const message = `broker refused ${refusal.action}${refusal.topic ? ` on ${refusal.topic.slice(0, 200)}` : ''} by ${refusal.device.slice(0, 64)}${refusal.reason ? `: ${refusal.reason}` : ''}`;
              log.warn(message, { device: refusal.device.slice(0, 64), action: refusal.action, topic: refusal.topic.slice(0, 200) });
              trouble.refused(refusal);
            },
            onDeviceDisconnect: (d) => trouble.disconnected(d),
          });
    } catch (err) {
      registry.close();
      credentials.close();
      quarantine.close();
      classes.close();
      quotas.close();
      throw err;
    }
    // A broker that restarted without persistence forgot the retained fleet head: publish it again.
    console_.transport.onReady(
      () =>
        void console_.rollouts
          .republish()
          .catch((err: unknown) => log.warn('could not publish the fleet head', { error: errorMessage(err) })),
    );
    console_.policy.start();
    log.info('console started', { fleet: options.fleet, broker: console_.brokerUrl, transport: console_.transport.kind });
    return console_;
  }

  get fleet(): string {
    return this.options.fleet;
  }

  get brokerUrl(): string {
    return this.transport.url;
  }

  get canaries(): string[] {
    return this.options.canaries ?? [];
  }

  /** Issues (or re-issues) a device's broker credentials and forgets its pinned key. */
  addDevice(device: string): {
    device: string;
    password: string;
    fleet: { url: string; id: string; username: string; password: string; publicKeyFile: string };
  } {
    const password = this.credentials.issue(device);
    this.registry.forgetKey(device);
    return {
      device,
      password,
      fleet: { url: this.brokerUrl, id: this.fleet, username: device, password, publicKeyFile: this.publicKeyFile },
    };
  }

  devices(): DeviceView[] {
    return this.views?.all() ?? deviceViews(this.registry, this.canaries, this.credentials.issued());
  }

  /** Sends a command to one device and waits for its reply (rejects on timeout or a refusal). */
  async command(
    device: string,
    cmd: CommandName,
    args: Record<string, unknown> = {},
    timeoutMs = this.options.commandTimeoutMs ?? 30_000,
  ): Promise<Record<string, unknown>> {
    checkId('device', device);
    const id = randomUUID();
    const responseTopic = topics.device(this.fleet, device, 'cmd/response');
    const reply = new Promise<CommandResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new ConsoleError('COMMAND_TIMEOUT', `device ${device} did not answer "${cmd}" within ${Number((timeoutMs / 1000).toFixed(1))} s`),
        );
      }, timeoutMs);
      this.pending.set(id, { device, resolve, timer });
    });
    const payload = Buffer.from(JSON.stringify({ protocol: PROTOCOL_VERSION, id, cmd, args, replyTo: responseTopic }));
    await this.transport.publish(topics.device(this.fleet, device, 'cmd'), payload, { responseTopic, correlationData: Buffer.from(id) });
    const response = await reply;
    if (!response.ok)
      throw new ConsoleError(
        errorCodeOr(response.error?.code, 'COMMAND_FAILED'),
        `device ${device} refused "${cmd}": ${response.error?.message ?? 'no reason given'}`,
      );
    return response.result ?? {};
  }

  publish(topic: string, payload: Buffer, options: { retain?: boolean } = {}): Promise<void> {
    return this.transport.publish(topic, payload, options);
  }

  /** Merges and rolls out; the verdict (released, rolled back, failed) is recorded with its numbers. */
  async mergeAndRollout(options: { canaries?: string[]; tag?: string; trigger?: string } = {}): Promise<RolloutResult> {
    const trigger = options.trigger ?? 'manual';
    try {
      const result = await this.rollouts.mergeAndRollout(options);
      const { verdict, details } = verdictOf(result);
      this.registry.addVerdict({ trigger, verdict, version: result.version, details });
      this.emit('change', { type: 'policy' });
      return result;
    } catch (err) {
      const code = err instanceof ConsoleError ? err.code : 'ERROR';
      this.registry.addVerdict({
        trigger,
        verdict: code === 'CONSOLE_NO_HEADS' ? 'skipped' : code === 'CONSOLE_BUSY' ? 'deferred' : 'failed',
        version: null,
        details: { code, reason: errorMessage(err) },
      });
      this.emit('change', { type: 'policy' });
      throw err;
    }
  }

  /** Pushes an agent bundle to the fleet over MQTT: the online canaries first, then every device once
   * they all run the new release (console/agent-update-rollout.ts; docs/deploy.md). Devices that cannot
   * take it are named first and not waited for; a second request while a rollout runs is refused at once
   * (CONSOLE_BUSY). `started` is called once the rollout has begun (the web API answers then). */
  async pushAgentUpdate(
    bundle: string,
    options: { canaries?: string[]; tag?: string; stageTimeoutMs?: number; started?: (progress: RolloutProgress) => void } = {},
  ): Promise<RolloutReport> {
    this.refuseWhileRunning();
    const manifest = readBundleManifest(bundle);
    const scope = options.tag === undefined ? undefined : new Set(this.registry.tagged(options.tag));
    if (scope && scope.size === 0) throw new ConsoleError('CONSOLE_NO_DEVICES', `no device has the tag "${options.tag}"`);
    const devices = this.devices().filter((d) => d.status !== 'never-connected' && (!scope || scope.has(d.id)));
    const unable: { device: string; reason: string }[] = [];
    const able: string[] = [];
    for (const d of devices) {
      const reason = !d.online
        ? 'offline: it takes the update from the retained manifest when it reconnects'
        : !d.updatable
          ? 'no release section (or release.updates is false): it runs from a checkout or an old install; update it with edgetune deploy flash'
          : d.target !== null && d.target !== manifest.target
            ? `a ${d.target} device; the bundle is ${manifest.target}`
            : null;
      if (reason) unable.push({ device: d.id, reason });
      else able.push(d.id);
    }
    const canaries = (options.canaries ?? this.canaries).filter((d) => able.includes(d));
    this.progress.begin('agent-update', manifest.version, unable);
    this.log.info('agent update starting', { bundle, canaries, devices: able, unable });
    options.started?.(this.progress.current!);
    try {
      const report = await rolloutAgentUpdate({
        fleet: this.fleet,
        bundle,
        key: this.keys.privateKey,
        // A tag's update names its devices (offline ones too): a manifest for every device would reach all.
        ...(scope ? { fleetScope: devices.map((d) => d.id) } : {}),
        publish: (topic, payload, { retain }) => this.publish(topic, payload, { retain }),
        canaries,
        fleetDevices: able,
        unable,
        state: (device) => this.registry.device(device)?.state,
        tracker: this.progress,
        ...(options.stageTimeoutMs === undefined ? {} : { stageTimeoutMs: options.stageTimeoutMs }),
      });
      this.log[report.ok ? 'info' : 'warn']('agent update finished', {
        version: report.update.version,
        stage: report.stage,
        ok: report.ok,
        summaries: report.summaries,
      });
      this.emit('change', { type: 'fleet' });
      return report;
    } catch (err) {
      if (this.progress.current) this.progress.finish(false, `agent ${manifest.version}: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** One rollout at a time: a second request is answered now, naming the one running. */
  refuseWhileRunning(): void {
    const running = this.progress.current;
    if (!running) return;
    const stage = running.stages.at(-1);
    throw new ConsoleError(
      'CONSOLE_BUSY',
      `${running.kind === 'agent-update' ? 'agent update' : 'fleet head'} ${running.subject} is rolling out${
        stage ? ` (${stage.name} stage, ${stage.devices.filter((d) => d.done).length} of ${stage.devices.length} done)` : ''
      } since ${new Date(running.startedAt).toISOString()}: wait for it to finish`,
    );
  }

  /** Restarts the embedded broker (tests and operators: devices reconnect with backoff). */
  async restartBroker(): Promise<void> {
    if (!(this.transport instanceof EmbeddedTransport))
      throw new ConsoleError('CONSOLE_EXTERNAL_BROKER', 'the console uses an external broker; restart it there');
    await this.transport.restart();
  }

  async stop(): Promise<void> {
    this.policy.stop();
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    await this.transport.close();
    this.ingest?.flush(true);
    this.registry.close();
    this.credentials.close();
    this.quarantine.close();
    this.classes.close();
    this.quotas.close();
  }

  /** Every class a device has or the operator decided on: in the fleet, accepted, refused or pending. */
  classView(): ClassView[] {
    const owners = new Map<string, string[]>();
    for (const row of this.registry.latestDeviceHeads()) {
      if (this.quarantine.has(row.device)) continue;
      for (const label of peekLabels(row.bytes)) owners.set(label, [...(owners.get(label) ?? []), row.device]);
    }
    return this.classes.view(this.rollouts.releasedLabels(), owners);
  }

  /** The operator accepts or refuses a class; it takes effect at the next merge. */
  decideClass(label: string, decision: ClassDecision): ClassView[] {
    this.classes.decide(label, decision);
    this.log.info('class decided', { label, decision });
    this.emit('change', { type: 'classes' });
    return this.classView();
  }

  /** The backbone of the released fleet head: device heads for another are refused at the door. */
  fleetShape(): { backboneId: string; dim: number } | null {
    const released = this.registry.releasedFleetHeads()[0];
    if (!released) return null;
    const { backboneId, dim } = peekHeadMessageHeader(released.message, `fleet head v${released.version}`);
    return { backboneId, dim };
  }

  /** The operator trusts a quarantined device again: its next heads are checked and merged as before. */
  releaseDevice(device: string): boolean {
    checkId('device', device);
    const released = this.quarantine.release(device);
    if (released) {
      this.log.info('device released from quarantine', { device });
      this.emit('change', { type: 'quarantine', device });
    }
    return released;
  }

  private onResponse(response: CommandResponse): void {
    const waiting = this.pending.get(response.id);
    if (!waiting || waiting.device !== response.device) {
      this.log.debug('reply to no pending command', { device: response.device, id: response.id });
      return;
    }
    clearTimeout(waiting.timer);
    this.pending.delete(response.id);
    waiting.resolve(response);
  }
}
