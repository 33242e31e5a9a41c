// What the console shows of a device: its registry row and its last retained state, flattened; and the
// devices a login was issued for that never connected.

import type { DeviceJson } from './api-types.js';
import type { DeviceRow, Registry } from './registry.js';

/** A device as the console's API shows it, without its accuracy history. */
export type DeviceView = Omit<DeviceJson, 'accuracy'>;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown) => (typeof v === 'string' ? v : null);
const obj = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const arr = (v: unknown) => (Array.isArray(v) ? (v as unknown[]) : []);

export function deviceViews(
  registry: Registry,
  canaries: string[],
  issued: { device: string; issuedAt: number }[] = [],
  tags: Map<string, string[]> = registry.allTags(),
): DeviceView[] {
  const issuedAt = new Map(issued.map((i) => [i.device, i.issuedAt]));
  const heads = registry.deviceHeadCounts();
  const seen = registry.devices().map((row) =>
    deviceView(row, {
      canary: canaries.includes(row.id),
      issuedAt: issuedAt.get(row.id) ?? null,
      headsReceived: heads.get(row.id) ?? 0,
      tags: tags.get(row.id) ?? [],
    }),
  );
  const known = new Set(seen.map((d) => d.id));
  const never = issued.filter((i) => !known.has(i.device)).map((i) => neverConnected(i.device, i.issuedAt, canaries, tags));
  return [...seen, ...never].sort(byId);
}

export const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** What the table shows of one registry row. */
export function deviceView(
  row: DeviceRow,
  about: { canary: boolean; issuedAt: number | null; headsReceived: number; tags: string[] },
): DeviceView {
  const s = row.state;
  const vitals = obj(s.vitals) ?? {};
  const memory = obj(vitals.memory) ?? {};
  const update = obj(s.update);
  const sources = arr(s.sources).map((x) => obj(x) ?? {});
  return {
    id: row.id,
    status: row.online ? 'online' : 'offline',
    online: row.online,
    lastSeen: row.lastSeen,
    firstSeen: row.firstSeen,
    issuedAt: about.issuedAt,
    protocol: row.protocol,
    backbone: str(s.backbone),
    engine: str(s.engine),
    headKind: str(s.headKind),
    headVersion: num(s.headVersion),
    fleetVersion: num(s.fleetVersion),
    holdoutAccuracy: num(s.holdoutAccuracy),
    holdout: (obj(s.holdout) as DeviceView['holdout']) ?? null,
    perClass: (obj(s.perClass) ?? {}) as Record<string, number>,
    samples: num(s.samples),
    holdoutSamples: num(s.holdoutSamples),
    headsReceived: about.headsReceived,
    canary: about.canary,
    tags: about.tags,
    release: str(s.release),
    update: update ? { version: str(update.version) ?? '?', status: str(update.status) ?? '?', error: str(update.error) } : null,
    updatable: s.updatable === true,
    target: str(vitals.target),
    uptimeSeconds: num(s.uptimeSeconds),
    systemUptimeSeconds: num(vitals.systemUptimeSeconds),
    cpuTempC: num(vitals.cpuTempC),
    load1: num(arr(vitals.load)[0]),
    memoryAvailableBytes: num(memory.availableBytes),
    memoryTotalBytes: num(memory.totalBytes),
    diskFreeBytes: num(obj(vitals.disk)?.freeBytes),
    addresses: arr(vitals.addresses).filter((a): a is string => typeof a === 'string'),
    sourcesFailing: sources.filter((x) => num(x.retryAt) !== null).map((x) => ({ name: str(x.name) ?? '?', error: str(x.lastError) })),
    sources: sources.length,
    page: str(s.page),
    config: obj(s.config),
  };
}

export function neverConnected(id: string, issuedAt: number, canaries: string[], tags: Map<string, string[]>): DeviceView {
  return {
    id,
    status: 'never-connected',
    online: false,
    lastSeen: null,
    firstSeen: null,
    issuedAt,
    protocol: null,
    backbone: null,
    engine: null,
    headKind: null,
    headVersion: null,
    fleetVersion: null,
    holdoutAccuracy: null,
    holdout: null,
    perClass: {},
    samples: null,
    holdoutSamples: null,
    headsReceived: 0,
    canary: canaries.includes(id),
    tags: tags.get(id) ?? [],
    release: null,
    update: null,
    updatable: false,
    target: null,
    uptimeSeconds: null,
    systemUptimeSeconds: null,
    cpuTempC: null,
    load1: null,
    memoryAvailableBytes: null,
    memoryTotalBytes: null,
    diskFreeBytes: null,
    addresses: [],
    sourcesFailing: [],
    sources: 0,
    page: null,
    config: null,
  };
}
