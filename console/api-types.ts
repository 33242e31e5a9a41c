// The JSON the fleet console's web API returns, as its page (console/page/) reads it. Types only: the
// server is checked against them (console/web.ts) and the page imports them with `import type`.

export interface AccuracyPointJson {
  at: number;
  accuracy: number;
  headVersion: number | null;
  fleetVersion: number | null;
}

/** A device: its registry row and its last retained state, flattened (console/device-view.ts). */
export interface DeviceJson {
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
  /** Holdout accuracy over time, oldest first. */
  accuracy: AccuracyPointJson[];
}

export interface DevicesJson {
  devices: DeviceJson[];
}

export interface FleetHeadJson {
  version: number;
  status: 'canary' | 'held' | 'released' | 'rolled-back' | 'superseded';
  merged: string[];
  heldBack: { device: string; reason: string }[];
  note: string | null;
  createdAt: number;
}

export interface ProblemJson {
  at: number;
  device: string | null;
  code: string;
  message: string;
}

export interface FleetJson {
  fleet: string;
  broker: string;
  canaries: string[];
  released: number | null;
  heads: FleetHeadJson[];
  /** Devices whose heads are refused until the operator releases them (console/quarantine.ts). */
  quarantined: { device: string; since: number; reason: string }[];
  problems: ProblemJson[];
}

/** A class some device has or the operator decided on (console/fleet-classes.ts). */
export interface ClassJson {
  label: string;
  status: 'accepted' | 'refused' | 'fleet' | 'pending';
  devices: string[];
}

export interface ClassesJson {
  classes: ClassJson[];
}

export interface MergeJson {
  version: number;
  status: FleetHeadJson['status'];
  merged: string[];
  reason?: string;
}

export interface RollbackJson {
  version: number;
  restored: number;
  replaced: number;
}

export interface PushHeadJson {
  applied?: boolean;
  reason?: string;
  fleetVersion?: number;
}

export interface DeviceTrainJson {
  kept?: boolean;
  version?: number;
  reason?: string;
}
