// What the console does with each message a device publishes: state (registry, key pinning, accuracy
// history), heads (verified against the device's pinned key, stored once per message id), events, and
// replies to commands. A message it cannot use becomes a problem: one log line and a registry row,
// never a crash and never a change to what is stored.

import { z } from 'zod';
import { errorMessage } from '../core/errors.js';
import { encodeHead } from '../runtime/head/index.js';
import { type CommandResponse, ResponseSchema, parseJsonMessage } from '../runtime/sync/commands.js';
import { decodeHeadMessage } from '../runtime/sync/head-message.js';
import { PROTOCOL_VERSION, SyncError, parseTopic } from '../runtime/sync/protocol.js';
import { readPublicKey } from '../runtime/sync/signing.js';
import { type FleetShape, HEAD_LIMITS, checkDeviceHead } from './head-gate.js';
import type { Quarantine } from './quarantine.js';
import type { DeviceQuotas } from './quotas.js';
import type { Registry } from './registry.js';

const MAX_JSON_BYTES = 256 * 1024;

const StateSchema = z.looseObject({
  protocol: z.number().int(),
  device: z.string(),
  online: z.boolean(),
  backbone: z.string().min(1).optional(),
  dim: z.number().int().positive().optional(),
  publicKey: z.string().max(2000).optional(),
  holdoutAccuracy: z.number().min(0).max(1).nullable().optional(),
  headVersion: z.number().int().nullable().optional(),
  fleetVersion: z.number().int().nullable().optional(),
});

const EventSchema = z.looseObject({
  protocol: z.number().int(),
  holdoutAccuracy: z.number().min(0).max(1).optional(),
  type: z.string().max(32).optional(),
  lines: z
    .array(z.looseObject({ seq: z.number().int(), time: z.string(), level: z.string(), msg: z.string(), fields: z.string() }))
    .max(1000)
    .optional(),
  dropped: z.number().int().min(0).optional(),
});
/** A reply may carry a page of photos (a dataset export asks for about 1 MB of images at a time). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface DeviceMessageEvents {
  problem(problem: { device: string | null; topic: string; code: string; message: string }): void;
  changed(what: { device: string; channel: string }): void;
  response(response: CommandResponse): void;
  headStored(info: { device: string; id: string; version: number; duplicate: boolean }): void;
  /** New log lines a followed device sent (the "logs" command with followMs). */
  logLines(batch: { device: string; lines: LogLineJson[]; dropped: number }): void;
  quarantined(entry: { device: string; reason: string }): void;
}

export interface LogLineJson {
  seq: number;
  time: string;
  level: string;
  msg: string;
  fields: string;
}

/** The door heads pass (console/head-gate.ts): what the fleet runs, and who is no longer trusted. */
export interface HeadDoor {
  fleetShape(): FleetShape | null;
  quarantine: Quarantine;
  quotas: DeviceQuotas;
  /** Runs writes to other connections of the registry file once the current batch is written
   * (console/ingest.ts); at once without it. */
  afterWrite?: (effect: () => void) => void;
}

export class DeviceMessages {
  constructor(
    private readonly fleet: string,
    private readonly registry: Registry,
    private readonly events: DeviceMessageEvents,
    private readonly door: HeadDoor,
  ) {}

  /** A problem seen outside a device message (the broker's refusals). */
  report(problem: { device: string | null; topic: string; code: string; message: string }): void {
    this.events.problem(problem);
  }

  handle(topic: string, payload: Buffer): void {
    let device: string | null = null;
    try {
      const parsed = parseTopic(topic);
      if (parsed.kind !== 'device' || parsed.fleet !== this.fleet)
        throw new SyncError('SYNC_BAD_TOPIC', `topic "${topic.slice(0, 200)}" is not a device topic of fleet "${this.fleet}"`);
      device = parsed.device;
      if (parsed.channel === 'cmd') return; // the console's own commands
      const over = this.door.quotas.message(device);
      if (over) {
        if (!this.door.quotas.shouldReport(device)) return;
        throw new SyncError('DEVICE_RATE', `${topic}: device ${device} sent ${over}; its messages are dropped until it slows down`);
      }
      if (this.door.quotas.dueForTrim(device)) {
        const sender = device;
        const trim = () => this.door.quotas.trim(sender);
        if (this.door.afterWrite) this.door.afterWrite(trim);
        else trim();
      }
      switch (parsed.channel) {
        case 'state':
          return this.onState(device, topic, payload);
        case 'head':
          return this.onHead(device, topic, payload);
        case 'events':
          return this.onEvent(device, topic, payload);
        case 'cmd/response':
          return this.onResponse(device, topic, payload);
      }
    } catch (err) {
      this.events.problem({ device, topic, code: err instanceof SyncError ? err.code : 'SYNC_ERROR', message: errorMessage(err) });
    }
  }

  private onState(device: string, topic: string, payload: Buffer): void {
    // An empty retained message clears the topic (a device removed from the fleet).
    if (payload.length === 0) return;
    const state = parseJsonMessage(StateSchema, payload, topic, MAX_JSON_BYTES);
    if (state.device !== device)
      throw new SyncError('SYNC_MALFORMED', `${topic}: state of "${state.device.slice(0, 64)}" on the topic of "${device}"`);
    const known = this.registry.device(device);
    checkProtocol(state.protocol, device, topic);
    if (!state.online) {
      // The last will says only "offline": keep what the device said before.
      this.registry.recordState(device, { ...known?.state, online: false }, state.protocol, known?.publicKey ?? null, known?.lastSeen);
      this.events.changed({ device, channel: 'state' });
      return;
    }
    if (state.publicKey) readPublicKey(state.publicKey, `${topic} field "publicKey"`);
    if (known?.publicKey && state.publicKey && known.publicKey !== state.publicKey) {
      this.events.problem({
        device,
        topic,
        code: 'DEVICE_KEY_CHANGED',
        message: `${topic}: device ${device} reports a new public key; its heads are refused until the device is added again (edgetune console add-device ${device})`,
      });
    }
    const { publicKey, ...rest } = state;
    this.registry.recordState(device, rest, state.protocol, publicKey ?? null);
    if (typeof state.holdoutAccuracy === 'number')
      this.registry.recordAccuracy(device, state.holdoutAccuracy, state.headVersion ?? null, state.fleetVersion ?? null);
    this.events.changed({ device, channel: 'state' });
  }

  private onHead(device: string, topic: string, payload: Buffer): void {
    const { quarantine } = this.door;
    if (quarantine.has(device))
      throw new SyncError(
        'DEVICE_QUARANTINED',
        `${topic}: device ${device} is quarantined; its heads are refused until the operator releases it (edgetune console release ${device})`,
      );
    try {
      this.storeHead(device, topic, payload);
    } catch (err) {
      const entry = quarantine.refused(device, errorMessage(err));
      if (entry) this.events.quarantined(entry);
      throw err;
    }
  }

  private storeHead(device: string, topic: string, payload: Buffer): void {
    if (payload.length > HEAD_LIMITS.maxBytes)
      throw new SyncError('SYNC_MALFORMED', `${topic}: ${payload.length} bytes, more than the ${HEAD_LIMITS.maxBytes} a head may have`);
    const known = this.registry.device(device);
    if (!known?.publicKey || typeof known.state.backbone !== 'string' || typeof known.state.dim !== 'number') {
      throw new SyncError(
        'SYNC_UNKNOWN_DEVICE',
        `${topic}: no state with a public key from device ${device} yet, so its head cannot be verified; refused`,
      );
    }
    const { header, head } = decodeHeadMessage(payload, {
      where: topic,
      publicKey: readPublicKey(known.publicKey, `pinned key of ${device}`),
      backboneId: known.state.backbone,
      dim: known.state.dim,
      allowNonFinite: true,
    });
    if (header.kind !== 'device-head' || header.device !== device || header.fleet !== this.fleet) {
      throw new SyncError(
        'SYNC_MALFORMED',
        `${topic}: a ${header.kind} of device "${header.device}" in fleet "${header.fleet}" on the head topic of "${device}"`,
      );
    }
    checkDeviceHead(head, device, this.door.fleetShape());
    const over = this.door.quotas.head(device, payload.length);
    if (over) throw new SyncError('DEVICE_QUOTA', `${topic}: device ${device} sent ${over}; this head is not stored`);
    const stored = this.registry.addDeviceHead({
      id: header.id,
      device,
      version: header.version,
      backbone: header.backboneId,
      dim: header.dim,
      kind: head.kind,
      accuracy: head.meta.metrics.holdoutAccuracy ?? null,
      bytes: Buffer.from(encodeHead(head, 'float32')),
    });
    this.registry.touch(device);
    if (stored) this.door.quotas.trim(device);
    this.events.headStored({ device, id: header.id, version: header.version, duplicate: !stored });
    if (stored) this.events.changed({ device, channel: 'head' });
  }

  private onEvent(device: string, topic: string, payload: Buffer): void {
    const event = parseJsonMessage(EventSchema, payload, topic, MAX_JSON_BYTES);
    checkProtocol(event.protocol, device, topic);
    const known = this.registry.device(device);
    if (event.type === 'log') {
      this.registry.touch(device);
      this.events.logLines({ device, lines: event.lines ?? [], dropped: event.dropped ?? 0 });
      return;
    }
    if (typeof event.holdoutAccuracy === 'number') {
      this.registry.recordAccuracy(
        device,
        event.holdoutAccuracy,
        (known?.state.headVersion as number | null) ?? null,
        (known?.state.fleetVersion as number | null) ?? null,
      );
    }
    this.registry.touch(device);
    this.events.changed({ device, channel: 'events' });
  }

  private onResponse(device: string, topic: string, payload: Buffer): void {
    const response = parseJsonMessage(ResponseSchema, payload, topic, MAX_RESPONSE_BYTES);
    checkProtocol(response.protocol, device, topic);
    if (response.device !== device)
      throw new SyncError('SYNC_MALFORMED', `${topic}: a reply of "${response.device.slice(0, 64)}" on the topic of "${device}"`);
    this.registry.touch(device);
    this.events.response(response);
  }
}

function checkProtocol(protocol: number, device: string, topic: string): void {
  if (protocol !== PROTOCOL_VERSION)
    throw new SyncError(
      'SYNC_PROTOCOL_VERSION',
      `${topic}: device ${device} speaks protocol v${protocol}; this console speaks v${PROTOCOL_VERSION}`,
    );
}
