// Devices the console stopped trusting: a device whose heads were refused at the door too often in a
// short time is quarantined. Its heads are then neither stored nor merged (its login still works, so it
// can report state and answer commands) until the operator releases it. Kept in registry.db.

import type Database from 'better-sqlite3';
import { openDatabase } from '../core/sqlite.js';
import { CONSOLE_SCHEMA } from './console-db.js';

export interface QuarantineOptions {
  /** Refused heads within `windowMs` that quarantine a device (default 5). */
  maxRefusals?: number;
  windowMs?: number;
}

export interface QuarantinedDevice {
  device: string;
  since: number;
  reason: string;
}

export class Quarantine {
  private readonly db: Database.Database;
  private readonly refusals = new Map<string, number[]>();
  private readonly maxRefusals: number;
  private readonly windowMs: number;

  constructor(path: string, options: QuarantineOptions = {}) {
    this.maxRefusals = options.maxRefusals ?? 5;
    this.windowMs = options.windowMs ?? 3600_000;
    this.db = openDatabase(path, CONSOLE_SCHEMA);
  }

  /** Counts one refused head; returns the quarantine entry when this refusal was one too many. */
  refused(device: string, reason: string, now = Date.now()): QuarantinedDevice | null {
    if (this.has(device)) return null;
    const recent = (this.refusals.get(device) ?? []).filter((at) => at > now - this.windowMs);
    recent.push(now);
    this.refusals.set(device, recent);
    if (recent.length < this.maxRefusals) return null;
    const entry = {
      device,
      since: now,
      reason: `${recent.length} heads refused within ${Math.round(this.windowMs / 60_000)} min; last: ${reason}`.slice(0, 1000),
    };
    this.db.prepare('INSERT OR REPLACE INTO quarantine (device, since, reason) VALUES (@device, @since, @reason)').run(entry);
    this.refusals.delete(device);
    return entry;
  }

  has(device: string): boolean {
    return this.db.prepare('SELECT 1 FROM quarantine WHERE device = ?').get(device) !== undefined;
  }

  list(): QuarantinedDevice[] {
    return this.db.prepare('SELECT device, since, reason FROM quarantine ORDER BY since').all() as QuarantinedDevice[];
  }

  /** The operator trusts the device again; false when it was not quarantined. */
  release(device: string): boolean {
    this.refusals.delete(device);
    return this.db.prepare('DELETE FROM quarantine WHERE device = ?').run(device).changes > 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
