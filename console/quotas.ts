// What one device may cost the console: messages per second, heads and head bytes per hour, and how
// much of its history the registry keeps (newest heads per device, newest accuracy points). A device
// over a limit has the message dropped and one problem row per minute says so; what is stored stays
// bounded whatever the device sends (one device once grew registry.db by 100 MB with 23.5 MB sent).

import type Database from 'better-sqlite3';
import { openDatabase } from '../core/sqlite.js';
import { CONSOLE_SCHEMA } from './console-db.js';

export interface QuotaLimits {
  /** Messages per second, averaged over 10 s (a burst of 10x is allowed). */
  messagesPerSecond: number;
  headsPerHour: number;
  headBytesPerHour: number;
  /** Heads the registry keeps per device (the newest). */
  keptHeads: number;
  /** Accuracy points the registry keeps per device (the newest). */
  keptAccuracy: number;
}

export const QUOTA_LIMITS: QuotaLimits = {
  messagesPerSecond: 10,
  headsPerHour: 60,
  headBytesPerHour: 20 * 1024 * 1024,
  keptHeads: 20,
  keptAccuracy: 5000,
};

interface Usage {
  windowStart: number;
  messages: number;
  hourStart: number;
  heads: number;
  headBytes: number;
  reportedAt: number;
}

export class DeviceQuotas {
  private readonly usage = new Map<string, Usage>();
  private readonly db: Database.Database;
  readonly limits: QuotaLimits;

  constructor(path: string, limits: Partial<QuotaLimits> = {}) {
    this.limits = { ...QUOTA_LIMITS, ...limits };
    this.db = openDatabase(path, CONSOLE_SCHEMA);
  }

  /** Null when the message may be handled; otherwise why not. */
  message(device: string, now = Date.now()): string | null {
    const u = this.of(device, now);
    if (now - u.windowStart >= 10_000) Object.assign(u, { windowStart: now, messages: 0 });
    u.messages++;
    const max = this.limits.messagesPerSecond * 10;
    return u.messages > max ? `more than ${max} messages within 10 s` : null;
  }

  /** Null when a head of `bytes` may be stored; otherwise why not. Counts it when it may. */
  head(device: string, bytes: number, now = Date.now()): string | null {
    const u = this.of(device, now);
    if (now - u.hourStart >= 3600_000) Object.assign(u, { hourStart: now, heads: 0, headBytes: 0 });
    if (u.heads + 1 > this.limits.headsPerHour) return `more than ${this.limits.headsPerHour} heads within an hour`;
    if (u.headBytes + bytes > this.limits.headBytesPerHour)
      return `more than ${(this.limits.headBytesPerHour / 1024 / 1024).toFixed(0)} MB of heads within an hour`;
    u.heads++;
    u.headBytes += bytes;
    return null;
  }

  /** Every 100th message of a device: time to trim what the registry keeps of it. */
  dueForTrim(device: string): boolean {
    return (this.usage.get(device)?.messages ?? 0) % 100 === 0;
  }

  /** True once a minute per device: how often an over-quota device gets a problem row. */
  shouldReport(device: string, now = Date.now()): boolean {
    const u = this.of(device, now);
    if (now - u.reportedAt < 60_000) return false;
    u.reportedAt = now;
    return true;
  }

  /** Drops a device's heads beyond the newest `keptHeads` and accuracy points beyond `keptAccuracy`. */
  trim(device: string): void {
    this.db
      .prepare(
        `DELETE FROM device_heads WHERE device = @device AND id NOT IN (
           SELECT id FROM device_heads WHERE device = @device ORDER BY version DESC, received_at DESC LIMIT @keep)`,
      )
      .run({ device, keep: this.limits.keptHeads });
    this.db
      .prepare(
        `DELETE FROM accuracy WHERE device = @device AND rowid NOT IN (
           SELECT rowid FROM accuracy WHERE device = @device ORDER BY at DESC, rowid DESC LIMIT @keep)`,
      )
      .run({ device, keep: this.limits.keptAccuracy });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private of(device: string, now: number): Usage {
    let u = this.usage.get(device);
    if (!u) {
      u = { windowStart: now, messages: 0, hourStart: now, heads: 0, headBytes: 0, reportedAt: 0 };
      this.usage.set(device, u);
    }
    return u;
  }
}
