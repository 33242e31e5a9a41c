// The console's device registry (SQLite on disk): every device with its last state, the heads devices
// sent (one row per message id, so a resent message is a duplicate and never a second row), the fleet
// heads the console made with their rollout status, holdout accuracy over time, and the problems seen
// (refused or malformed messages).

import type Database from 'better-sqlite3';
import { openDatabase } from '../core/sqlite.js';
import { CONSOLE_SCHEMA } from './console-db.js';

export interface DeviceRow {
  id: string;
  online: boolean;
  firstSeen: number;
  lastSeen: number;
  protocol: number | null;
  publicKey: string | null;
  state: Record<string, unknown>;
}

export interface DeviceHeadRow {
  id: string;
  device: string;
  version: number;
  backbone: string;
  dim: number;
  kind: string;
  accuracy: number | null;
  receivedAt: number;
  bytes: Buffer;
}

/** released-to-tag: pushed to the devices of one tag only (the retained fleet head stays as it was). */
export type FleetStatus = 'canary' | 'held' | 'released' | 'released-to-tag' | 'rolled-back' | 'superseded';

export interface FleetHeadRow {
  version: number;
  status: FleetStatus;
  merged: string[];
  heldBack: { device: string; reason: string }[];
  note: string | null;
  createdAt: number;
  message: Buffer;
}

export interface Problem {
  at: number;
  device: string | null;
  topic: string;
  code: string;
  message: string;
}

export interface Verdict {
  at: number;
  /** "manual", or what set the policy off ("3 new device heads ...", "schedule"). */
  trigger: string;
  /** released, rolled-back, skipped, failed, ... */
  verdict: string;
  version: number | null;
  details: Record<string, unknown>;
}

export interface AccuracyPoint {
  device: string;
  at: number;
  accuracy: number;
  headVersion: number | null;
  fleetVersion: number | null;
}

export class Registry {
  private readonly db: Database.Database;
  private readonly statements;
  /** Called after every write that changes what a device's row shows (the device view cache listens). */
  private readonly deviceListeners: ((device: string) => void)[] = [];

  constructor(path: string) {
    this.db = openDatabase(path, CONSOLE_SCHEMA);
    this.statements = {
      device: this.db.prepare('SELECT * FROM devices WHERE id = ?'),
      devices: this.db.prepare('SELECT * FROM devices ORDER BY id'),
      upsertDevice: this.db
        .prepare(`INSERT INTO devices (id, online, first_seen, last_seen, protocol, public_key, state) VALUES (@id, @online, @now, @now, @protocol, @publicKey, @state)
        ON CONFLICT (id) DO UPDATE SET online = @online, last_seen = @now, protocol = @protocol, public_key = COALESCE(public_key, @publicKey), state = @state`),
      touch: this.db.prepare('UPDATE devices SET last_seen = ? WHERE id = ?'),
      forgetKey: this.db.prepare('UPDATE devices SET public_key = NULL WHERE id = ?'),
      insertHead: this.db
        .prepare(`INSERT OR IGNORE INTO device_heads (id, device, version, backbone, dim, kind, accuracy, received_at, bytes)
        VALUES (@id, @device, @version, @backbone, @dim, @kind, @accuracy, @receivedAt, @bytes)`),
      latestHeads: this.db
        .prepare(`SELECT h.* FROM device_heads h JOIN (SELECT device, MAX(version) AS version FROM device_heads GROUP BY device) m
        ON h.device = m.device AND h.version = m.version ORDER BY h.device, h.received_at DESC`),
      headCount: this.db.prepare('SELECT COUNT(*) AS n FROM device_heads WHERE (@device IS NULL OR device = @device)'),
      deviceHead: this.db.prepare(
        'SELECT * FROM device_heads WHERE device = @device AND (@version IS NULL OR version = @version) ORDER BY version DESC, received_at DESC LIMIT 1',
      ),
      configLayers: this.db.prepare('SELECT scope, config FROM config_layers ORDER BY scope'),
      setConfigLayer: this.db.prepare(
        'INSERT INTO config_layers (scope, config, updated_at) VALUES (?, ?, ?) ON CONFLICT (scope) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at',
      ),
      headsSince: this.db.prepare('SELECT COUNT(*) AS n FROM device_heads WHERE received_at > ?'),
      insertVerdict: this.db.prepare('INSERT INTO verdicts (at, trigger, verdict, version, details) VALUES (?, ?, ?, ?, ?)'),
      verdicts: this.db.prepare('SELECT * FROM verdicts ORDER BY at DESC, rowid DESC LIMIT ?'),
      headCounts: this.db.prepare('SELECT device, COUNT(*) AS n FROM device_heads GROUP BY device'),
      allTags: this.db.prepare('SELECT device, tag FROM device_tags ORDER BY device, tag'),
      tagged: this.db.prepare('SELECT device FROM device_tags WHERE tag = ? ORDER BY device'),
      tagsOf: this.db.prepare('SELECT tag FROM device_tags WHERE device = ? ORDER BY tag'),
      clearTags: this.db.prepare('DELETE FROM device_tags WHERE device = ?'),
      addTag: this.db.prepare('INSERT OR IGNORE INTO device_tags (device, tag) VALUES (?, ?)'),
      headIds: this.db.prepare('SELECT id FROM device_heads ORDER BY received_at, id'),
      insertFleet: this.db.prepare(
        `INSERT INTO fleet_heads (version, status, merged, held_back, note, created_at, message) VALUES (@version, @status, @merged, @heldBack, @note, @createdAt, @message)`,
      ),
      setFleetStatus: this.db.prepare('UPDATE fleet_heads SET status = ?, note = COALESCE(?, note) WHERE version = ?'),
      fleetHead: this.db.prepare('SELECT * FROM fleet_heads WHERE version = ?'),
      fleetHeads: this.db.prepare('SELECT * FROM fleet_heads ORDER BY version DESC LIMIT ?'),
      lastFleetVersion: this.db.prepare('SELECT MAX(version) AS v FROM fleet_heads'),
      released: this.db.prepare(`SELECT * FROM fleet_heads WHERE status = 'released' ORDER BY version DESC LIMIT 2`),
      insertAccuracy: this.db.prepare('INSERT INTO accuracy (device, at, accuracy, head_version, fleet_version) VALUES (?, ?, ?, ?, ?)'),
      lastAccuracy: this.db.prepare('SELECT * FROM accuracy WHERE device = ? ORDER BY at DESC, rowid DESC LIMIT 1'),
      accuracy: this.db.prepare(`SELECT * FROM (
        SELECT device, at, accuracy, head_version AS headVersion, fleet_version AS fleetVersion, rowid AS seq FROM accuracy
        WHERE (@device IS NULL OR device = @device) ORDER BY at DESC, rowid DESC LIMIT 5000
      ) ORDER BY at, seq`),
      latestAccuracy: this.db.prepare(`SELECT device, at, accuracy, head_version AS headVersion, fleet_version AS fleetVersion FROM (
        SELECT *, rowid AS seq, ROW_NUMBER() OVER (PARTITION BY device ORDER BY at DESC, rowid DESC) AS n FROM accuracy
        WHERE @devices IS NULL OR device IN (SELECT value FROM json_each(@devices))
      ) WHERE n <= @perDevice ORDER BY device, at, seq`),
      insertProblem: this.db.prepare('INSERT INTO problems (at, device, topic, code, message) VALUES (?, ?, ?, ?, ?)'),
      problems: this.db.prepare('SELECT * FROM problems ORDER BY at DESC, rowid DESC LIMIT ?'),
      trimProblems: this.db.prepare('DELETE FROM problems WHERE rowid <= (SELECT MAX(rowid) FROM problems) - 10000'),
    };
  }

  device(id: string): DeviceRow | undefined {
    const row = this.statements.device.get(id) as RawDevice | undefined;
    return row && toDevice(row);
  }

  devices(): DeviceRow[] {
    return (this.statements.devices.all() as RawDevice[]).map(toDevice);
  }

  /** Records a device's state; the first public key it reports is pinned (trust on first use, over
   * the broker login that vouches for who it is) and never replaced by a later state. */
  recordState(id: string, state: Record<string, unknown>, protocol: number | null, publicKey: string | null, now = Date.now()): void {
    this.statements.upsertDevice.run({
      id,
      online: state.online === false ? 0 : 1,
      now,
      protocol,
      publicKey,
      state: JSON.stringify(state),
    });
    this.deviceChanged(id);
  }

  touch(id: string, now = Date.now()): void {
    this.statements.touch.run(now, id);
    this.deviceChanged(id);
  }

  /** Forgets a device's pinned key (a re-flashed device comes with a new one). */
  forgetKey(id: string): void {
    this.statements.forgetKey.run(id);
    this.deviceChanged(id);
  }

  /** Stores a device head; false when this message id is already here (a resend). */
  addDeviceHead(head: Omit<DeviceHeadRow, 'receivedAt'> & { receivedAt?: number }): boolean {
    const stored = this.statements.insertHead.run({ ...head, receivedAt: head.receivedAt ?? Date.now() }).changes === 1;
    if (stored) this.deviceChanged(head.device);
    return stored;
  }

  /** Runs `work` in one transaction (one sync to disk for all its writes); nested calls join it. */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  onDeviceChange(listener: (device: string) => void): void {
    this.deviceListeners.push(listener);
  }

  private deviceChanged(device: string): void {
    for (const listener of this.deviceListeners) listener(device);
  }

  /** Each device's newest head. */
  latestDeviceHeads(): DeviceHeadRow[] {
    const seen = new Set<string>();
    return (this.statements.latestHeads.all() as RawHead[]).map(toHead).filter((h) => !seen.has(h.device) && seen.add(h.device));
  }

  deviceHeadCount(device?: string): number {
    return (this.statements.headCount.get({ device: device ?? null }) as { n: number }).n;
  }

  /** The fleet's config layers: "fleet", "tag:NAME", "device:ID" -> settings. */
  configLayers(): Map<string, Record<string, unknown>> {
    return new Map(
      (this.statements.configLayers.all() as { scope: string; config: string }[]).map((r) => [
        r.scope,
        JSON.parse(r.config) as Record<string, unknown>,
      ]),
    );
  }

  setConfigLayer(scope: string, config: Record<string, unknown>): void {
    this.statements.setConfigLayer.run(scope, JSON.stringify(config), Date.now());
  }

  deviceHeadsSince(at: number): number {
    return (this.statements.headsSince.get(at) as { n: number }).n;
  }

  /** What a merge (manual, or by the merge policy) came to, with its numbers. */
  addVerdict(v: Omit<Verdict, 'at'>): void {
    this.statements.insertVerdict.run(Date.now(), v.trigger, v.verdict, v.version, JSON.stringify(v.details));
  }

  verdicts(limit = 50): Verdict[] {
    return (this.statements.verdicts.all(limit) as (Omit<Verdict, 'details'> & { details: string })[]).map((r) => ({
      ...r,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  }

  /** A device's newest head, or its head `version`. */
  deviceHead(device: string, version?: number): DeviceHeadRow | undefined {
    const row = this.statements.deviceHead.get({ device, version: version ?? null }) as RawHead | undefined;
    return row && toHead(row);
  }

  /** Heads received per device, in one query (a 2,000-device table must not ask 2,000 times). */
  deviceHeadCounts(): Map<string, number> {
    return new Map((this.statements.headCounts.all() as { device: string; n: number }[]).map((r) => [r.device, r.n]));
  }

  /** Tags (and groups, which are tags) per device. */
  allTags(): Map<string, string[]> {
    const tags = new Map<string, string[]>();
    for (const { device, tag } of this.statements.allTags.all() as { device: string; tag: string }[])
      tags.set(device, [...(tags.get(device) ?? []), tag]);
    return tags;
  }

  tagged(tag: string): string[] {
    return (this.statements.tagged.all(tag) as { device: string }[]).map((r) => r.device);
  }

  tagsOf(device: string): string[] {
    return (this.statements.tagsOf.all(device) as { tag: string }[]).map((r) => r.tag);
  }

  setTags(device: string, tags: string[]): void {
    this.db.transaction(() => {
      this.statements.clearTags.run(device);
      for (const tag of tags) this.statements.addTag.run(device, tag);
    })();
    this.deviceChanged(device);
  }

  deviceHeadIds(): string[] {
    return (this.statements.headIds.all() as { id: string }[]).map((r) => r.id);
  }

  nextFleetVersion(): number {
    return ((this.statements.lastFleetVersion.get() as { v: number | null }).v ?? 0) + 1;
  }

  addFleetHead(row: Omit<FleetHeadRow, 'createdAt'>): void {
    this.statements.insertFleet.run({
      ...row,
      merged: JSON.stringify(row.merged),
      heldBack: JSON.stringify(row.heldBack),
      createdAt: Date.now(),
    });
  }

  setFleetStatus(version: number, status: FleetStatus, note?: string): void {
    this.statements.setFleetStatus.run(status, note ?? null, version);
  }

  fleetHead(version: number): FleetHeadRow | undefined {
    const row = this.statements.fleetHead.get(version) as RawFleet | undefined;
    return row && toFleet(row);
  }

  fleetHeads(limit = 50): FleetHeadRow[] {
    return (this.statements.fleetHeads.all(limit) as RawFleet[]).map(toFleet);
  }

  /** The newest released fleet head and the one before it. */
  releasedFleetHeads(): FleetHeadRow[] {
    return (this.statements.released.all() as RawFleet[]).map(toFleet);
  }

  /** Adds a point to a device's accuracy history when it differs from the last one. */
  recordAccuracy(device: string, accuracy: number, headVersion: number | null, fleetVersion: number | null, now = Date.now()): void {
    const last = this.statements.lastAccuracy.get(device) as { accuracy: number; head_version: number | null } | undefined;
    if (last && last.accuracy === accuracy && last.head_version === headVersion) return;
    this.statements.insertAccuracy.run(device, now, accuracy, headVersion, fleetVersion);
  }

  /** The newest 5,000 accuracy points (of one device, or all), oldest first. */
  accuracyHistory(device?: string): AccuracyPoint[] {
    return (this.statements.accuracy.all({ device: device ?? null }) as (AccuracyPoint & { seq: number })[]).map(
      ({ seq: _seq, ...point }) => point,
    );
  }

  /** The newest `perDevice` accuracy points of every device (or of `devices`: one table page's), oldest first. */
  latestAccuracy(perDevice: number, devices?: string[]): Map<string, Omit<AccuracyPoint, 'device'>[]> {
    const byDevice = new Map<string, Omit<AccuracyPoint, 'device'>[]>();
    const rows = this.statements.latestAccuracy.all({ perDevice, devices: devices ? JSON.stringify(devices) : null }) as AccuracyPoint[];
    for (const { device, ...point } of rows) {
      const list = byDevice.get(device) ?? [];
      list.push(point);
      byDevice.set(device, list);
    }
    return byDevice;
  }

  addProblem(problem: Omit<Problem, 'at'>): void {
    this.statements.insertProblem.run(
      Date.now(),
      problem.device,
      problem.topic.slice(0, 300),
      problem.code,
      problem.message.slice(0, 1000),
    );
    this.statements.trimProblems.run();
  }

  problems(limit = 100): Problem[] {
    return this.statements.problems.all(limit) as Problem[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

interface RawDevice {
  id: string;
  online: number;
  first_seen: number;
  last_seen: number;
  protocol: number | null;
  public_key: string | null;
  state: string;
}
type RawHead = Omit<DeviceHeadRow, 'receivedAt'> & { received_at: number };
interface RawFleet {
  version: number;
  status: FleetStatus;
  merged: string;
  held_back: string;
  note: string | null;
  created_at: number;
  message: Buffer;
}

const toDevice = (r: RawDevice): DeviceRow => ({
  id: r.id,
  online: r.online === 1,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  protocol: r.protocol,
  publicKey: r.public_key,
  state: JSON.parse(r.state) as Record<string, unknown>,
});
const toHead = (r: RawHead): DeviceHeadRow => ({ ...r, receivedAt: r.received_at });
const toFleet = (r: RawFleet): FleetHeadRow => ({
  version: r.version,
  status: r.status,
  merged: JSON.parse(r.merged) as string[],
  heldBack: JSON.parse(r.held_back) as FleetHeadRow['heldBack'],
  note: r.note,
  createdAt: r.created_at,
  message: r.message,
});
