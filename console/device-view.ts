// What the console shows of a device: its registry row and its last retained state, flattened.

import type { Registry } from './registry.js';

export interface DeviceView {
  id: string;
  online: boolean;
  lastSeen: number;
  firstSeen: number;
  protocol: number | null;
  backbone: string | null;
  engine: string | null;
  headKind: string | null;
  headVersion: number | null;
  fleetVersion: number | null;
  holdoutAccuracy: number | null;
  perClass: Record<string, number>;
  samples: number | null;
  /** Labelled holdout samples: the console picks canaries with the most. */
  holdout: number | null;
  headsReceived: number;
  canary: boolean;
  /** The settings the console may push, as the device last reported them. */
  config: Record<string, unknown> | null;
}

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
