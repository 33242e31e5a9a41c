// What a rollout is doing right now, for the CLI and the page: per stage, each device's status, the
// stage's deadline, and a one-line summary when the stage ends; the devices that cannot take it are
// named before it starts. One rollout at a time; the last few finished ones are kept to show.

export interface DeviceProgress {
  device: string;
  status: string;
  detail: string | null;
  /** Whether the device is done (updated, applied, or failed for good). */
  done: boolean;
  ok: boolean;
}

export interface StageProgress {
  name: string;
  startedAt: number;
  deadline: number;
  endedAt: number | null;
  devices: DeviceProgress[];
  summary: string | null;
}

export interface RolloutProgress {
  id: number;
  kind: 'agent-update' | 'fleet-head';
  /** The release or fleet head version going out. */
  subject: string;
  startedAt: number;
  endedAt: number | null;
  /** Devices that cannot take it, and why (named before the first stage). */
  unable: { device: string; reason: string }[];
  stages: StageProgress[];
  ok: boolean | null;
  summary: string | null;
}

export class RolloutTracker {
  private running: RolloutProgress | undefined;
  private readonly finished: RolloutProgress[] = [];
  private nextId = 1;

  constructor(private readonly changed: () => void = () => {}) {}

  get current(): RolloutProgress | undefined {
    return this.running;
  }

  /** The running rollout (if any) and the newest finished ones, newest first. */
  list(): RolloutProgress[] {
    return [...(this.running ? [this.running] : []), ...this.finished];
  }

  begin(kind: RolloutProgress['kind'], subject: string, unable: RolloutProgress['unable']): RolloutProgress {
    this.running = { id: this.nextId++, kind, subject, startedAt: Date.now(), endedAt: null, unable, stages: [], ok: null, summary: null };
    this.changed();
    return this.running;
  }

  stage(name: string, devices: string[], timeoutMs: number): StageProgress {
    const progress = this.require();
    const now = Date.now();
    const stage: StageProgress = {
      name,
      startedAt: now,
      deadline: now + timeoutMs,
      endedAt: null,
      devices: devices.map((device) => ({ device, status: 'waiting', detail: null, done: false, ok: false })),
      summary: null,
    };
    progress.stages.push(stage);
    this.changed();
    return stage;
  }

  /** Sets a device's row in the current stage; true when it changed. */
  device(update: DeviceProgress): boolean {
    const stage = this.require().stages.at(-1);
    const row = stage?.devices.find((d) => d.device === update.device);
    if (!row || (row.status === update.status && row.detail === update.detail && row.done === update.done)) return false;
    Object.assign(row, update);
    this.changed();
    return true;
  }

  /** Ends the current stage: devices not done by now timed out. */
  endStage(): StageProgress {
    const stage = this.require().stages.at(-1)!;
    stage.endedAt = Date.now();
    for (const d of stage.devices) if (!d.done) Object.assign(d, { status: 'timed out', done: true, ok: false });
    const ok = stage.devices.filter((d) => d.ok).length;
    const failed = stage.devices.filter((d) => !d.ok);
    const seconds = ((stage.endedAt - stage.startedAt) / 1000).toFixed(1);
    stage.summary = `${stage.name}: ${ok} of ${stage.devices.length} done in ${seconds} s${
      failed.length > 0 ? `; ${failed.map((d) => `${d.device} ${d.status}${d.detail ? ` (${d.detail})` : ''}`).join(', ')}` : ''
    }`;
    this.changed();
    return stage;
  }

  finish(ok: boolean, summary: string): RolloutProgress {
    const progress = this.require();
    Object.assign(progress, { ok, summary, endedAt: Date.now() });
    this.finished.unshift(progress);
    this.finished.length = Math.min(this.finished.length, 10);
    this.running = undefined;
    this.changed();
    return progress;
  }

  private require(): RolloutProgress {
    if (!this.running) throw new Error('no rollout is running');
    return this.running;
  }
}
