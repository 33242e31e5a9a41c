// MQTT protocol v1 (docs/protocol.md): topic names, and the checks that keep a device inside its own.

import { EdgetuneError } from '../../core/errors.js';
import { deviceMayPublish } from './acl.js';

export class SyncError extends EdgetuneError {}

export const PROTOCOL_VERSION = 1;

/** Fleet and device ids: they become topic levels, so no '/', '+', '#' or control characters. */
const ID = /^[A-Za-z0-9._-]{1,64}$/;

export function checkId(kind: 'fleet' | 'device', id: string): string {
  if (!ID.test(id)) {
    throw new SyncError(
      'SYNC_BAD_ID',
      `${kind} id ${JSON.stringify(id.slice(0, 80))} must be 1-64 letters, digits, dot, dash or underscore`,
    );
  }
  return id;
}

export type DeviceChannel = 'state' | 'head' | 'events' | 'cmd' | 'cmd/response';

export const topics = {
  device: (fleet: string, device: string, channel: DeviceChannel) =>
    `edgetune/${checkId('fleet', fleet)}/device/${checkId('device', device)}/${channel}`,
  fleetHead: (fleet: string) => `edgetune/${checkId('fleet', fleet)}/fleet/head`,
  fleetBackbone: (fleet: string) => `edgetune/${checkId('fleet', fleet)}/fleet/backbone`,
  /** The signed agent update manifest (agent-update.ts), retained. */
  fleetAgent: (fleet: string) => `edgetune/${checkId('fleet', fleet)}/fleet/agent`,
  blob: (fleet: string, sha256: string, index: number) => `edgetune/${checkId('fleet', fleet)}/blobs/${sha256}/${index}`,
  /** Everything a console listens to. */
  allDevices: (fleet: string) => `edgetune/${checkId('fleet', fleet)}/device/+/+`,
};

export type ParsedTopic =
  | { kind: 'device'; fleet: string; device: string; channel: DeviceChannel }
  | { kind: 'fleet-head' | 'fleet-backbone' | 'fleet-agent'; fleet: string }
  | { kind: 'blob'; fleet: string; sha256: string; index: number };

/** Parses a topic of protocol v1; anything else is an error naming the topic. */
export function parseTopic(topic: string): ParsedTopic {
  const parts = topic.split('/');
  const fail = (): never => {
    throw new SyncError('SYNC_BAD_TOPIC', `topic "${topic.slice(0, 200)}" is not an edgetune v${PROTOCOL_VERSION} topic`);
  };
  if (parts[0] !== 'edgetune' || !parts[1] || !ID.test(parts[1])) return fail();
  const fleet = parts[1];
  if (parts[2] === 'device' && parts[3] && ID.test(parts[3])) {
    const channel = parts.slice(4).join('/');
    if (['state', 'head', 'events', 'cmd', 'cmd/response'].includes(channel))
      return { kind: 'device', fleet, device: parts[3], channel: channel as DeviceChannel };
  }
  if (parts[2] === 'fleet' && parts.length === 4 && parts[3] === 'head') return { kind: 'fleet-head', fleet };
  if (parts[2] === 'fleet' && parts.length === 4 && parts[3] === 'backbone') return { kind: 'fleet-backbone', fleet };
  if (parts[2] === 'fleet' && parts.length === 4 && parts[3] === 'agent') return { kind: 'fleet-agent', fleet };
  if (parts[2] === 'blobs' && parts.length === 5 && /^[0-9a-f]{64}$/.test(parts[3]!) && /^\d{1,6}$/.test(parts[4]!)) {
    return { kind: 'blob', fleet, sha256: parts[3]!, index: Number(parts[4]) };
  }
  return fail();
}

/** A device may publish only under its own device/{id}/ topics, never commands (runtime/sync/acl.ts). */
export function devicePublishAllowed(fleet: string, device: string, topic: string): boolean {
  return ID.test(fleet) && ID.test(device) && deviceMayPublish(fleet, device, topic);
}
