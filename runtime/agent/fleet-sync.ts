// The agent's side of fleet sync: publishes its state (retained, with a last will that marks it offline)
// and every head it keeps, through the durable outbox; applies a fleet head only when it verifies
// against the fleet key, is newer than the last one applied, and fits this device's backbone.
// Refusals are logged and counted, and never change the device's head.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Head } from '../head/index.js';
import type { SampleStore } from '../samples/store.js';
import { decodeHeadMessage, encodeHeadMessage } from '../sync/head-message.js';
import { DeviceLink } from '../sync/link.js';
import { Outbox } from '../sync/outbox.js';
import { SyncError, topics } from '../sync/protocol.js';
import { loadOrCreateFleetKey, readPublicKey } from '../sync/signing.js';
import type { AgentConfig } from './config.js';
import type { Logger } from './log.js';

type FleetConfig = NonNullable<AgentConfig['fleet']>;

export interface FleetStatus {
  connected: boolean;
  queued: number;
  lastFleetVersion: number | null;
  applied: number;
  refused: { reason: string; code: string; at: number }[];
}

export class FleetSync {
  private readonly outbox: Outbox;
  private readonly link: DeviceLink;
  private readonly publicKey;
  private readonly deviceKey;
  private applied = 0;
  private readonly refused: FleetStatus['refused'] = [];

  constructor(
    private readonly config: FleetConfig,
    private readonly deviceId: string,
    private readonly store: SampleStore,
    private readonly backbone: { id: string; dim: number },
    private readonly applyHead: (head: Head, fleetVersion: number) => void,
    private readonly log: Logger,
  ) {
    this.publicKey = readPublicKey(readFileSync(config.publicKeyFile), config.publicKeyFile);
    // Devices sign their own heads with a key of their own (kept in the data folder, mode 0600).
    this.deviceKey = loadOrCreateFleetKey(join(store.dir, 'device.key'));
    this.outbox = new Outbox(join(store.dir, 'outbox.db'));
    this.link = new DeviceLink(this.outbox, {
      url: config.url,
      username: config.username,
      password: config.password,
      protocolVersion: config.protocolVersion,
      will: { topic: topics.device(config.id, deviceId, 'state'), payload: JSON.stringify({ online: false }) },
      onEvent: (e) => log[e.error ? 'warn' : 'info'](e.msg, { error: e.error, retryInMs: e.retryInMs }),
    });
  }

  start(): void {
    this.link.subscribe(topics.fleetHead(this.config.id), (topic, payload) => this.onFleetHead(topic, payload));
    this.link.start();
    this.publishState({ online: true });
  }

  publishState(state: Record<string, unknown>): void {
    this.link.send(topics.device(this.config.id, this.deviceId, 'state'), Buffer.from(JSON.stringify({ device: this.deviceId, backbone: this.backbone.id, ...state })), { retain: true });
  }

  /** Queues a kept head for the console (signed with the device key; the broker vouches for who sent it). */
  publishHead(head: Head): void {
    const version = head.meta.version;
    const message = encodeHeadMessage(head, { kind: 'device-head', fleet: this.config.id, device: this.deviceId, version, id: `${this.deviceId}-head-${version}-${Date.now()}` }, this.deviceKey.privateKey);
    this.link.send(topics.device(this.config.id, this.deviceId, 'head'), message);
  }

  status(): FleetStatus {
    return { connected: this.link.connected, queued: this.outbox.size, lastFleetVersion: this.lastFleetVersion(), applied: this.applied, refused: this.refused.slice(-10) };
  }

  async stop(): Promise<void> {
    await this.link.stop();
    this.outbox.close();
  }

  private lastFleetVersion(): number | null {
    const value = this.store.getMeta('fleet_head_version');
    return value === undefined ? null : Number(value);
  }

  private onFleetHead(topic: string, payload: Buffer): void {
    try {
      const last = this.lastFleetVersion();
      const { header, head } = decodeHeadMessage(payload, {
        where: topic,
        publicKey: this.publicKey,
        backboneId: this.backbone.id,
        dim: this.backbone.dim,
        // The retained fleet head comes again on every reconnect: the same version is no news, and
        // only an older one is a replay.
        ...(last === null ? {} : { newerThan: last - 1 }),
      });
      if (header.version === last) return;
      if (this.config.apply === 'off') {
        this.log.info('fleet head verified, not applied (fleet.apply is off)', { version: header.version });
        return;
      }
      this.applyHead(head, header.version);
      this.store.setMeta('fleet_head_version', String(header.version));
      this.applied++;
      this.log.info('fleet head applied', { version: header.version, labels: head.labels });
    } catch (err) {
      const code = err instanceof SyncError ? err.code : 'SYNC_ERROR';
      this.refused.push({ reason: errorMessage(err), code, at: Date.now() });
      if (this.refused.length > 100) this.refused.shift();
      this.log.warn('fleet head refused', { code, error: errorMessage(err) });
    }
  }
}
