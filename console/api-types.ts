// The JSON the fleet console's web API returns, as its page (console/page/) reads it. Types only: the
// server is checked against them (console/web.ts) and the page imports them with `import type`.

export interface AccuracyPointJson {
  at: number;
  accuracy: number;
  headVersion: number | null;
  fleetVersion: number | null;
}

export type DeviceStatus = 'online' | 'offline' | 'never-connected';

/** A device: its registry row and its last retained state, flattened (console/device-view.ts); or a
 * login issued that never connected. */
export interface DeviceJson {
  id: string;
  status: DeviceStatus;
  online: boolean;
  /** The last message received from the device (state, heartbeat, head, event or reply); null: never. */
  lastSeen: number | null;
  firstSeen: number | null;
  /** When its broker login was issued (add-device), null when the console has no login for it. */
  issuedAt: number | null;
  protocol: number | null;
  backbone: string | null;
  engine: string | null;
  headKind: string | null;
  headVersion: number | null;
  fleetVersion: number | null;
  holdoutAccuracy: number | null;
  /** Holdout recall per class and the confusion matrix of the current head (rows true, columns
   * predicted, the last column "unknown"). */
  holdout: {
    classes: string[];
    perClass: { label: string; support: number; recall: number; precision: number }[];
    confusion: number[][];
  } | null;
  perClass: Record<string, number>;
  samples: number | null;
  /** Labelled holdout samples: the console picks canaries with the most. */
  holdoutSamples: number | null;
  headsReceived: number;
  canary: boolean;
  tags: string[];
  /** The agent release it runs (null: run from a checkout, no release section). */
  release: string | null;
  /** Its last agent update: version and status (downloading, installed, rolled-back, failed, refused). */
  update: { version: string; status: string; error: string | null } | null;
  /** Whether it takes agent updates over MQTT (it has a release section with updates on). */
  updatable: boolean;
  /** The bundle target it takes (linux-arm64...). */
  target: string | null;
  uptimeSeconds: number | null;
  systemUptimeSeconds: number | null;
  cpuTempC: number | null;
  load1: number | null;
  memoryAvailableBytes: number | null;
  memoryTotalBytes: number | null;
  diskFreeBytes: number | null;
  addresses: string[];
  /** Sample sources with a failure since their last success. */
  sourcesFailing: { name: string; error: string | null }[];
  sources: number;
  /** The device's own labelling page, as it reported its address. */
  page: string | null;
  /** The settings the console may push, as the device last reported them. */
  config: Record<string, unknown> | null;
  /** Holdout accuracy over time, oldest first. */
  accuracy: AccuracyPointJson[];
}

export interface DevicesJson {
  /** One page of the filtered, sorted table (every row when no limit was asked). */
  devices: DeviceJson[];
  /** Rows matching the filter. */
  total: number;
  offset: number;
  limit: number | null;
  counts: { all: number; online: number; offline: number; neverConnected: number; failingSources: number };
}

export interface FleetHeadJson {
  version: number;
  status: 'canary' | 'held' | 'released' | 'released-to-tag' | 'rolled-back' | 'superseded';
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
  /** The merge policy's settings, new device heads since the last merge, and the newest verdicts. */
  policy: { afterHeads?: number; everyMs?: number; newHeads: number; verdicts: VerdictJson[] };
}

export interface VerdictJson {
  at: number;
  trigger: string;
  verdict: string;
  version: number | null;
  details: Record<string, unknown>;
}

export interface StageJson {
  name: string;
  startedAt: number;
  deadline: number;
  endedAt: number | null;
  devices: { device: string; status: string; detail: string | null; done: boolean; ok: boolean }[];
  summary: string | null;
}

export interface RolloutJson {
  id: number;
  kind: 'agent-update' | 'fleet-head';
  subject: string;
  startedAt: number;
  endedAt: number | null;
  unable: { device: string; reason: string }[];
  stages: StageJson[];
  ok: boolean | null;
  summary: string | null;
}

export interface RolloutsJson {
  current: RolloutJson | null;
  recent: RolloutJson[];
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

/** GET /api/config/fields: one agent setting the console may push (from the agent's schema). */
export interface ConfigFieldJson {
  field: string;
  /** string, number, integer, boolean, enum, array, object, or json (anything the schema allows). */
  type: string;
  nullable: boolean;
  values?: string[];
  min?: number;
  max?: number;
  default?: unknown;
  /** Takes effect at once; the others at the agent's next start. */
  live: boolean;
}

/** POST /api/config: what a push did (or, with dryRun, would do) to each device of the scope. */
export interface ConfigTargetJson {
  device: string;
  status: 'unchanged' | 'pushed' | 'preview' | 'offline' | 'failed';
  diff: { field: string; from: unknown; to: unknown }[];
  restartRequired?: string[];
  error?: string;
}

export interface ConfigPushJson {
  scope: string;
  dryRun: boolean;
  targets: ConfigTargetJson[];
}

/** GET /api/fleet/accuracy: the fleet head on the holdouts of the devices that run it. */
export interface FleetAccuracyJson {
  /** The fleet head version (the released one unless ?version= asked for another); null: none yet. */
  version: number | null;
  /** Devices on that version whose holdout is summed. */
  devices: string[];
  /** Devices on that version that report no holdout. */
  withoutHoldout: string[];
  classes: string[];
  perClass: { label: string; support: number; recall: number; precision: number }[];
  /** Rows true classes, columns predicted, the last column "unknown": the devices' matrices summed. */
  confusion: number[][];
  total: number;
  accuracy: number | null;
}
