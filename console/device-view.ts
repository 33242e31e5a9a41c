// What the console shows of a device: its registry row and its last retained state, flattened.

import type { DeviceJson } from './api-types.js';
import type { Registry } from './registry.js';

/** A device as the console's API shows it, without its accuracy history. */
export type DeviceView = Omit<DeviceJson, 'accuracy'>;

export function deviceViews(registry: Registry, canaries: string[]): DeviceView[] {
  return registry.devices().map((row) => {
    const s = row.state;
    const num = (v: unknown) => (typeof v === 'number' ? v : null);
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const obj = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
    return {
      id: row.id,
      online: row.online,
      lastSeen: row.lastSeen,
      firstSeen: row.firstSeen,
      protocol: row.protocol,
      backbone: str(s.backbone),
      engine: str(s.engine),
      headKind: str(s.headKind),
      headVersion: num(s.headVersion),
      fleetVersion: num(s.fleetVersion),
      holdoutAccuracy: num(s.holdoutAccuracy),
      perClass: (obj(s.perClass) ?? {}) as Record<string, number>,
      samples: num(s.samples),
      holdout: num(s.holdout),
      headsReceived: registry.deviceHeadCount(row.id),
      canary: canaries.includes(row.id),
      config: obj(s.config),
    };
  });
}
