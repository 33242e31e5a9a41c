// The unattended learning loop: merge and roll out when enough new device heads have arrived, or on a
// schedule. Every step's verdict (released, rolled back on its canaries, held back, skipped, failed) is
// recorded in the registry with its numbers, manual merges included, so the page can show what the
// loop did while nobody watched.

import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Registry } from './registry.js';
import type { RolloutResult } from './rollout.js';

export interface MergePolicyOptions {
  /** Merge once this many new device heads arrived since the last merge (0 or absent: off). */
  afterHeads?: number;
  /** Also merge every this many ms when there are new heads (absent: off). */
  everyMs?: number;
}

export interface PolicyHost {
  readonly registry: Registry;
  readonly log: Logger;
  mergeAndRollout(options?: { trigger?: string }): Promise<RolloutResult>;
  on(event: 'head', listener: (info: { duplicate: boolean }) => void): unknown;
  off(event: 'head', listener: (info: { duplicate: boolean }) => void): unknown;
  emit(event: 'change', change: { type: string }): boolean;
}

export class MergePolicy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly onHead = (info: { duplicate: boolean }) => {
    if (info.duplicate || !this.options.afterHeads) return;
    const fresh = this.newHeads();
    if (fresh >= this.options.afterHeads) void this.run(`${fresh} new device heads (policy: after ${this.options.afterHeads})`);
  };

  constructor(
    private readonly host: PolicyHost,
    private options: MergePolicyOptions = {},
  ) {}

  get settings(): MergePolicyOptions {
    return { ...this.options };
  }

  start(): void {
    this.host.on('head', this.onHead);
    this.schedule();
  }

  /** New settings (the page): take effect now. */
  update(options: MergePolicyOptions): void {
    this.options = options;
    this.schedule();
    this.host.emit('change', { type: 'policy' });
  }

  stop(): void {
    clearInterval(this.timer);
    this.host.off('head', this.onHead);
  }

  /** Device heads received since the newest fleet head was made. */
  newHeads(): number {
    const since = this.host.registry.fleetHeads(1)[0]?.createdAt ?? 0;
    return this.host.registry.deviceHeadsSince(since);
  }

  private schedule(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (!this.options.everyMs) return;
    this.timer = setInterval(() => {
      const fresh = this.newHeads();
      if (fresh === 0)
        this.host.registry.addVerdict({
          trigger: 'schedule',
          verdict: 'skipped',
          version: null,
          details: { reason: 'no new device heads' },
        });
      else void this.run(`schedule (${fresh} new device heads)`);
    }, this.options.everyMs);
    this.timer.unref();
  }

  /** One merge at a time; a trigger while one runs waits for the next head or tick. */
  private run(trigger: string): Promise<void> {
    this.running ??= this.host
      .mergeAndRollout({ trigger })
      .then(() => undefined)
      .catch((err: unknown) => this.host.log.warn('policy merge failed', { trigger, error: errorMessage(err) }))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}

/** The numbers a verdict keeps of a rollout. */
export function verdictOf(result: RolloutResult): { verdict: string; details: Record<string, unknown> } {
  return {
    verdict: result.status === 'released' ? (result.heldBack.length > 0 ? 'released (some held back)' : 'released') : result.status,
    details: {
      merged: result.merged,
      heldBack: result.heldBack,
      skipped: result.skipped,
      canaries: result.canaries.map((c) => ({
        device: c.device,
        before: c.before,
        after: c.after,
        holdout: c.holdout,
        lost: c.lost,
        gained: c.gained,
        error: c.error,
      })),
      ...(result.reason ? { reason: result.reason } : {}),
      summaries: result.summaries ?? [],
    },
  };
}
