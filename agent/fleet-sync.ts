// The agent's side of fleet sync: publishes its state (retained, with a last will that marks it offline)
// and the heads it keeps (debounced, through the durable outbox); applies a fleet head only when it
// verifies against the fleet key, is newer than the last one applied, and fits this device's backbone;
// answers the console's commands. Refusals are logged and counted, and never change the device's head.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Head } from '../runtime/head/index.js';
import type { SampleStore } from '../runtime/samples/store.js';
import { type Command, CommandSchema, type CommandResponse, checkCommand, parseJsonMessage } from '../runtime/sync/commands.js';
import { decodeHeadMessage, encodeHeadMessage } from '../runtime/sync/head-message.js';
import { DeviceLink, type MessageProperties } from '../runtime/sync/link.js';
import { Outbox } from '../runtime/sync/outbox.js';
import { PROTOCOL_VERSION, SyncError, topics } from '../runtime/sync/protocol.js';
import { loadOrCreateFleetKey, publicKeyPem, readPublicKey } from '../runtime/sync/signing.js';
import type { AgentConfig } from './config.js';
import type { Logger } from '../core/log.js';

type FleetConfig = NonNullable<AgentConfig['fleet']>;

export interface FleetStatus {
  connected: boolean;
  queued: number;
  lastFleetVersion: number | null;
  applied: number;
  refused: { reason: string; code: string; at: number }[];
}

export interface AppliedHead {
  headVersion: number;
  fleetVersion: number;
  /** Holdout accuracy of the head the device had, and of the one it has now (null: no holdout). */
  accuracyBefore: number | null;
  accuracyAfter: number | null;
  holdout: number;
  /** Holdout samples the old head got right and the new one wrong, and the other way round. */
  lost: number;
  gained: number;
}

/** What the agent does for fleet sync. */
export interface FleetHooks {
  applyHead(head: Head, fleetVersion: number, mode: 'replace' | 'merge'): AppliedHead;
  rollbackFleet(fleetVersion: number): Record<string, unknown>;
  train(): Promise<Record<string, unknown>>;
  configure(values: Record<string, unknown>): Record<string, unknown>;
  /** The device's state for the console (head, samples per class, holdout accuracy). */
  state(): Record<string, unknown>;
  /** Recent log lines after a seq; with `followMs`, new lines go to `send` for that long. */
  logs(
    args: { after: number; limit: number; followMs: number },
    send: (batch: { lines: unknown[]; dropped: number }) => void,
  ): Record<string, unknown>;
  /** A page of labelled samples with their images (base64), for a dataset export. */
  samples(args: { offset: number; limit: number; maxBytes: number }): Record<string, unknown>;
}

const intArg = (args: Record<string, unknown>, name: string, fallback: number, max: number): number => {
  const v = args[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new SyncError('SYNC_MALFORMED', `argument "${name}" must be an integer from 0 to ${max}`);
  return v;
};

/** The largest fleet head or command a device reads (a 1,000-class 1280-d int8 head is about 1.3 MB). */
const MAX_HEAD_BYTES = 4 * 1024 * 1024;
const STATE_DEBOUNCE_MS = 300;
/** How long stopping waits for the outbox to empty before saying goodbye. */
const STOP_DRAIN_MS = 2_000;

export class FleetSync {
  private readonly outbox: Outbox;
  private readonly link: DeviceLink;
  private readonly publicKey;
  private readonly deviceKey;
  private applied = 0;
  private readonly refused: FleetStatus['refused'] = [];
  private headTimer: NodeJS.Timeout | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private pendingHead: Head | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: FleetConfig,
    private readonly deviceId: string,
    private readonly store: SampleStore,
    private readonly backbone: { id: string; dim: number },
    private readonly hooks: FleetHooks,
    private readonly log: Logger,
  ) {
    this.publicKey = readPublicKey(readFileSync(config.publicKeyFile), config.publicKeyFile);
    // Devices sign their own heads with a key of their own (kept in the data folder, mode 0600); the
    // console pins the public half from the device's first state message.
    this.deviceKey = loadOrCreateFleetKey(join(store.dir, 'device.key'));
    this.outbox = new Outbox(join(store.dir, 'outbox.db'));
    // Messages queued under another device id (the id changed) would be refused by the broker for
    // ever: they go, with a line saying so. The state and the next head are made afresh anyway.
    const dropped = this.outbox.dropOutside(topics.device(config.id, deviceId, 'state').replace(/state$/, ''));
    if (dropped.length > 0)
      log.warn('outbox messages of another device id or fleet dropped', {
        device: deviceId,
        dropped: dropped.reduce((n, d) => n + d.count, 0),
        topics: dropped.map((d) => d.topic).slice(0, 20),
      });
    this.link = new DeviceLink(this.outbox, {
      url: config.url,
      username: config.username,
      password: config.password,
      protocolVersion: config.protocolVersion,
      will: { topic: this.topic('state'), payload: this.offlineState() },
      onEvent: (e) => log[e.error ? 'warn' : 'info'](e.msg, { error: e.error, retryInMs: e.retryInMs }),
      onConnect: async () => {
        // The state goes first, straight away: the console needs its key before any queued head.
        if (await this.link.publishNow(this.topic('state'), this.stateMessage(), { retain: true }))
          this.outbox.dropRetained(this.topic('state'));
      },
    });
  }

  start(): void {
    this.link.subscribe(topics.fleetHead(this.config.id), (topic, payload) => this.onFleetHead(topic, payload));
    this.link.subscribe(this.topic('cmd'), (topic, payload, properties) => void this.onCommand(topic, payload, properties));
    this.link.start();
    // The state again now and then, with fresh vitals: the console's "last seen" is the last message.
    this.heartbeat = setInterval(() => this.publishState(), this.config.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Another subscription on the device's link (agent updates), kept across reconnects. */
  subscribe(topic: string, handler: (topic: string, payload: Buffer) => void): void {
    this.link.subscribe(topic, (t, payload) => handler(t, payload));
  }

  /** Queues the device's state (retained): on start, after every head change, and when asked. */
  publishState(): void {
    clearTimeout(this.stateTimer);
    this.stateTimer = undefined;
    this.link.send(this.topic('state'), this.stateMessage(), { retain: true });
  }

  private stateMessage(): Buffer {
    const state = {
      protocol: PROTOCOL_VERSION,
      device: this.deviceId,
      online: true,
      backbone: this.backbone.id,
      dim: this.backbone.dim,
      fleetVersion: this.lastFleetVersion(),
      publicKey: publicKeyPem(this.deviceKey.publicKey),
      ...this.hooks.state(),
      at: new Date().toISOString(),
    };
    return Buffer.from(JSON.stringify(state));
  }

  /** Labels changed: the state (samples per class) follows, debounced, so a burst of labels sends one. */
  samplesChanged(): void {
    clearTimeout(this.stateTimer);
    this.stateTimer = setTimeout(() => this.publishState(), Math.max(STATE_DEBOUNCE_MS, this.config.publishDelayMs));
  }

  /** Queues a kept head for the console, debounced: a burst of trainings sends the last head once. */
  publishHead(head: Head): void {
    this.pendingHead = head;
    clearTimeout(this.headTimer);
    this.headTimer = setTimeout(() => this.flushHead(), this.config.publishDelayMs);
  }

  status(): FleetStatus {
    return {
      connected: this.link.connected,
      queued: this.outbox.size,
      lastFleetVersion: this.lastFleetVersion(),
      applied: this.applied,
      refused: this.refused.slice(-10),
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    this.flushHead();
    if (this.stateTimer) this.publishState();
    // A graceful disconnect does not fire the last will: say so ourselves, retained, if the broker is there.
    await this.link.flush(STOP_DRAIN_MS);
    await this.link.publishNow(this.topic('state'), Buffer.from(this.offlineState()), { retain: true });
    await this.link.stop();
    this.outbox.close();
  }

  private offlineState(): string {
    return JSON.stringify({ protocol: PROTOCOL_VERSION, device: this.deviceId, online: false });
  }

  private flushHead(): void {
    clearTimeout(this.headTimer);
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (!head) return;
    const version = head.meta.version;
    const id = `${this.deviceId}-head-${version}-${Date.now()}`;
    this.link.send(
      this.topic('head'),
      encodeHeadMessage(
        head,
        { kind: 'device-head', fleet: this.config.id, device: this.deviceId, version, id },
        this.deviceKey.privateKey,
      ),
    );
    this.publishState();
  }

  private topic(channel: 'state' | 'head' | 'events' | 'cmd' | 'cmd/response'): string {
    return topics.device(this.config.id, this.deviceId, channel);
  }

  private lastFleetVersion(): number | null {
    const value = this.store.getMeta('fleet_head_version');
    return value === undefined ? null : Number(value);
  }

  private refuse(err: unknown, what: string): void {
    const code = err instanceof SyncError ? err.code : 'SYNC_ERROR';
    this.refused.push({ reason: errorMessage(err), code, at: Date.now() });
    if (this.refused.length > 100) this.refused.shift();
    this.log.warn(`${what} refused`, { code, error: errorMessage(err) });
  }

  /** Verifies a fleet head and applies it; `sameIsNews` for a command (the console asks again). */
  private verifyAndApply(payload: Buffer, where: string, options: { sameIsNews: boolean }): AppliedHead | undefined {
    if (payload.length > MAX_HEAD_BYTES)
      throw new SyncError('SYNC_MALFORMED', `${where}: ${payload.length} bytes, more than ${MAX_HEAD_BYTES}`);
    const last = this.lastFleetVersion();
    const { header, head } = decodeHeadMessage(payload, {
      where,
      publicKey: this.publicKey,
      backboneId: this.backbone.id,
      dim: this.backbone.dim,
      // The retained fleet head comes again on every reconnect: the same version is no news, and
      // only an older one is a replay.
      ...(last === null ? {} : { newerThan: last - 1 }),
    });
    if (header.kind !== 'fleet-head' || header.fleet !== this.config.id) {
      throw new SyncError(
        'SYNC_MALFORMED',
        `${where}: a ${header.kind} of fleet "${header.fleet}", not a fleet head of "${this.config.id}"`,
      );
    }
    if (header.version === last && !options.sameIsNews) return undefined;
    if (header.version === last) throw new SyncError('SYNC_REPLAY', `${where}: fleet version ${last} is already applied`);
    if (this.config.apply === 'off') {
      this.log.info('fleet head verified, not applied (fleet.apply is off)', { version: header.version });
      return undefined;
    }
    const applied = this.hooks.applyHead(head, header.version, this.config.apply);
    this.store.setMeta('fleet_head_version', String(header.version));
    this.applied++;
    this.log.info('fleet head applied', { ...applied, labels: head.labels });
    this.publishState();
    return applied;
  }

  private onFleetHead(topic: string, payload: Buffer): void {
    // An empty retained message is how a broker clears the topic: nothing to apply.
    if (payload.length === 0) return;
    try {
      this.verifyAndApply(payload, topic, { sameIsNews: false });
    } catch (err) {
      this.refuse(err, 'fleet head');
    }
  }

  private async onCommand(topic: string, payload: Buffer, properties: MessageProperties): Promise<void> {
    let command: Command;
    try {
      command = parseJsonMessage(CommandSchema, payload, topic, MAX_HEAD_BYTES * 2);
    } catch (err) {
      // Without an id there is no one to answer.
      this.refuse(err, 'command');
      return;
    }
    const reply = async (body: Pick<CommandResponse, 'ok' | 'result' | 'error'>) => {
      const response: CommandResponse = { protocol: PROTOCOL_VERSION, id: command.id, device: this.deviceId, ...body };
      const replyTo = properties.responseTopic ?? command.replyTo ?? this.topic('cmd/response');
      await this.link.publishNow(replyTo, Buffer.from(JSON.stringify(response)), {
        properties: properties.correlationData ? { correlationData: properties.correlationData } : {},
      });
    };
    try {
      const result = await this.run(command, topic);
      await reply({ ok: true, result });
    } catch (err) {
      this.refuse(err, `command ${command.cmd.slice(0, 64)}`);
      await reply({
        ok: false,
        error: {
          code: err instanceof SyncError || (err as { code?: string }).code ? String((err as { code: string }).code) : 'ERROR',
          message: errorMessage(err),
        },
      });
    }
  }

  private async run(command: Command, where: string): Promise<Record<string, unknown>> {
    const name = checkCommand(command, where);
    const args = command.args;
    switch (name) {
      case 'apply-head': {
        if (typeof args.message !== 'string')
          throw new SyncError('SYNC_MALFORMED', `${where}: apply-head needs "message", a base64 head message`);
        const applied = this.verifyAndApply(Buffer.from(args.message, 'base64'), `${where} (apply-head)`, { sameIsNews: true });
        return applied ? { ...applied } : { applied: false, reason: 'fleet.apply is off' };
      }
      case 'rollback-fleet': {
        if (!Number.isInteger(args.version)) throw new SyncError('SYNC_MALFORMED', `${where}: rollback-fleet needs an integer "version"`);
        const result = this.hooks.rollbackFleet(args.version as number);
        this.publishState();
        return result;
      }
      case 'train':
        return this.hooks.train();
      case 'config': {
        const result = this.hooks.configure(args);
        this.publishState();
        return result;
      }
      case 'state':
        this.publishState();
        return { ...this.hooks.state(), fleet: this.status() };
      case 'logs':
        return this.hooks.logs(
          {
            after: intArg(args, 'after', 0, Number.MAX_SAFE_INTEGER),
            limit: intArg(args, 'limit', 200, 1000),
            followMs: intArg(args, 'followMs', 0, 120_000),
          },
          (batch) =>
            void this.link.publishNow(
              this.topic('events'),
              Buffer.from(JSON.stringify({ protocol: PROTOCOL_VERSION, type: 'log', ...batch })),
            ),
        );
      case 'samples':
        return this.hooks.samples({
          offset: intArg(args, 'offset', 0, Number.MAX_SAFE_INTEGER),
          limit: intArg(args, 'limit', 100, 1000),
          maxBytes: intArg(args, 'maxBytes', 1024 * 1024, 3 * 1024 * 1024),
        });
    }
  }
}
