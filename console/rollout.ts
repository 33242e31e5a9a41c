// Fleet heads: merge what the devices learned, then roll it out in stages. Canary devices get the new
// head first (a command, so only they see it) and report its holdout accuracy against the head they
// had; if any canary gets worse by more than the tolerance, or does not answer, the canaries roll back
// and the fleet never sees it. Otherwise it becomes the retained fleet head every device applies.
//
// Versions only go up: rolling back a released head publishes the previous one again under a new
// version, so devices keep refusing replays of anything older.

import { HeadError } from '../core/errors.js';
import { type Head, decodeHead } from '../runtime/head/index.js';
import { type DeviceHead, mergeHeads } from '../runtime/head/merge.js';
import { decodeHeadMessage, encodeHeadMessage, peekHeadMessageHeader } from '../runtime/sync/head-message.js';
import { topics } from '../runtime/sync/protocol.js';
import type { CommandName } from '../runtime/sync/commands.js';
import type { Logger } from '../core/log.js';
import type { FleetKeys } from '../runtime/sync/signing.js';
import type { MergeOptions } from '../runtime/head/merge.js';
import type { DeviceView } from './device-view.js';
import type { FleetHeadRow, Registry } from './registry.js';
import { ConsoleError } from '../core/errors.js';
import type { RolloutTracker } from './rollout-progress.js';
import { until } from '../core/wait.js';
import type { FleetClasses } from './fleet-classes.js';

/** What a rollout needs of the console (FleetConsole is one): its registry, devices, commands and broker. */
export interface RolloutHost {
  readonly options: {
    merge?: MergeOptions;
    rollbackTolerance?: number;
    minCanaryHoldout?: number;
    commandTimeoutMs?: number;
    fleetStageTimeoutMs?: number;
  };
  readonly registry: Registry;
  readonly quarantine: { has(device: string): boolean };
  readonly classes: FleetClasses;
  readonly keys: FleetKeys;
  readonly log: Logger;
  readonly fleet: string;
  readonly canaries: string[];
  devices(): DeviceView[];
  command(device: string, cmd: CommandName, args?: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  publish(topic: string, payload: Buffer, options?: { retain?: boolean }): Promise<void>;
  emit(event: 'change', change: { type: string; device?: string }): boolean;
  readonly progress: RolloutTracker;
  refuseWhileRunning(): void;
}

export interface CanaryReport {
  device: string;
  before: number | null;
  after: number | null;
  /** Holdout samples the accuracies were measured on. */
  holdout: number;
  /** Holdout samples the old head got right and the new one wrong, and the other way round. */
  lost?: number;
  gained?: number;
  error?: string;
}

/** A canary clearly got worse when it loses more than the tolerance and the loss is not chance: of the
 * holdout samples on which the two heads disagree, the old head wins so many that a fair coin would do
 * so with less than 10 % probability (McNemar's exact test, one-sided), or it lost at least three
 * samples, more than twice as many as it gained, and ten points or more (70 % ->
 * 50 % on ten photos, 3 lost and 1 gained, is a rollback). On the ten photos of a freshly set-up site,
 * losing two proves nothing either way: see canaryVerdict. A canary that reports no per-sample counts
 * falls back to "more than one holdout sample". */
export function canaryGotWorse(report: CanaryReport, tolerance: number): boolean {
  if (report.error !== undefined) return true;
  if (report.before === null || report.after === null) return false;
  if (report.after >= report.before - tolerance) return false;
  if (report.lost === undefined || report.gained === undefined)
    return report.after < report.before - 1 / Math.max(1, report.holdout) - 1e-9;
  const { lost, gained } = report;
  const clear = lost >= 3 && lost >= 2 * gained + 1 && report.before - report.after >= 0.1 - 1e-9;
  return clear || binomialTail(lost, lost + gained) < 0.1;
}

export interface CanaryVerdict {
  verdict: 'release' | 'rollback' | 'hold';
  reason: string;
}

/** What the canaries' reports allow: a clear regression anywhere rolls back; a release needs no drop
 * beyond the tolerance and at least `minHoldout` holdout samples across the canaries; anything in
 * between (a drop that may be chance, too few samples) holds the head for the operator. */
export function canaryVerdict(reports: CanaryReport[], tolerance: number, minHoldout: number): CanaryVerdict {
  const numbers = (r: CanaryReport) =>
    r.error !== undefined
      ? `${r.device}: ${r.error}`
      : `${r.device}: holdout accuracy ${r.before?.toFixed(3) ?? 'none'} -> ${r.after?.toFixed(3) ?? 'none'} on ${r.holdout} samples` +
        (r.lost === undefined ? '' : ` (${r.lost} lost, ${r.gained} gained)`);
  const worse = reports.filter((r) => canaryGotWorse(r, tolerance));
  if (worse.length > 0) return { verdict: 'rollback', reason: `canaries got worse: ${worse.map(numbers).join('; ')}` };
  // One holdout sample lost is noise; two or more beyond the tolerance, not clear enough for a verdict.
  const dropped = reports.filter(
    (r) => r.before !== null && r.after !== null && r.after < r.before - tolerance && (r.lost ?? 2) - (r.gained ?? 0) >= 2,
  );
  if (dropped.length > 0)
    return { verdict: 'hold', reason: `held for the operator: a drop that may be chance: ${dropped.map(numbers).join('; ')}` };
  const evidence = reports.reduce((n, r) => n + (r.before !== null && r.after !== null ? r.holdout : 0), 0);
  if (evidence < minHoldout)
    return {
      verdict: 'hold',
      reason: `held for the operator: ${evidence} holdout samples on the canaries, ${minHoldout} needed for a verdict: ${reports.map(numbers).join('; ') || 'no canary online'}`,
    };
  return { verdict: 'release', reason: reports.map(numbers).join('; ') };
}

/** Devices that judge a head when the operator named none: the online merged devices with the largest
 * holdouts, one per ten (at least one, at most three). */
export function defaultCanaries(devices: DeviceView[], merged: string[]): string[] {
  const candidates = devices.filter((d) => d.online && merged.includes(d.id));
  const holdout = (d: DeviceView) => d.holdoutSamples ?? 0;
  const count = Math.min(3, Math.max(1, Math.ceil(candidates.length / 10)));
  return candidates
    .sort((a, b) => holdout(b) - holdout(a) || a.id.localeCompare(b.id))
    .slice(0, count)
    .map((d) => d.id);
}

/** P(X >= k) for X ~ Binomial(n, 1/2). */
export function binomialTail(k: number, n: number): number {
  let p = 0;
  let term = 0.5 ** n;
  for (let i = 0; i <= n; i++) {
    if (i >= k) p += term;
    term = (term * (n - i)) / (i + 1);
  }
  return Math.min(1, p);
}

export interface RolloutResult {
  version: number;
  status: FleetHeadRow['status'];
  merged: string[];
  heldBack: { device: string; reason: string }[];
  /** Devices whose heads were left out: another backbone or head kind than the fleet's. */
  skipped: { device: string; reason: string }[];
  canaries: CanaryReport[];
  labels: string[];
  /** Classes some device has that the fleet has not accepted (console/fleet-classes.ts). */
  leftOut: { label: string; devices: string[] }[];
  reason?: string;
  /** One line per stage (canaries, fleet): who applied it, in how long, who did not. */
  summaries?: string[];
}

export class Rollouts {
  private busy = false;

  constructor(private readonly console_: RolloutHost) {}

  /** With `tag`, only the devices with that tag get the head (canaries among them, then the rest by
   * command); the retained fleet head, which every device takes, stays as it was. */
  async mergeAndRollout(options: { canaries?: string[]; tag?: string } = {}): Promise<RolloutResult> {
    return this.exclusive(async () => {
      const { registry, log } = this.console_;
      const scope = options.tag === undefined ? null : new Set(registry.tagged(options.tag));
      if (scope?.size === 0) throw new ConsoleError('CONSOLE_NO_DEVICES', `no device has the tag "${options.tag}"`);
      const { group, skipped } = this.latestHeads();
      if (group.length === 0) throw new ConsoleError('CONSOLE_NO_HEADS', 'no device has sent a head yet: nothing to merge');
      const current = registry.releasedFleetHeads()[0];
      const fleetLabels = current ? this.decode(current).labels : [];
      const merge = mergeHeads(group, this.console_.options.merge, this.console_.classes.acceptor(fleetLabels, group.length));
      for (const held of merge.heldBack)
        registry.addProblem({ device: held.device, topic: 'merge', code: 'HEAD_HELD_BACK', message: held.reason });
      for (const { label, devices } of merge.leftOut)
        for (const device of devices)
          registry.addProblem({
            device,
            topic: 'merge',
            code: 'CLASS_NOT_ACCEPTED',
            message: `class ${JSON.stringify(label)} of device ${device} is not a fleet class: it waits for the operator (edgetune console accept-class) or a quorum of ${this.console_.classes.quorumFor(group.length)} devices`,
          });
      const version = registry.nextFleetVersion();
      const head = merge.head.withMeta({ version, parent: current?.version ?? null, metrics: { devices: merge.merged.length } });
      const message = this.sign(head, version);
      const devices = this.console_.devices().filter((d) => !scope || scope.has(d.id));
      const online = new Set(devices.filter((d) => d.online).map((d) => d.id));
      const named = options.canaries ?? (this.console_.canaries.length > 0 ? this.console_.canaries : undefined);
      // Nothing goes out unjudged: without named canaries the console picks some.
      const canaries = (named ?? defaultCanaries(devices, merge.merged)).filter((d) => online.has(d) && merge.merged.includes(d));
      registry.addFleetHead({ version, status: 'canary', merged: merge.merged, heldBack: merge.heldBack, note: null, message });
      const base = { version, merged: merge.merged, heldBack: merge.heldBack, skipped, labels: head.labels, leftOut: merge.leftOut };
      log.info('fleet head merged', {
        version,
        merged: merge.merged,
        heldBack: merge.heldBack,
        canaries,
        leftOut: merge.leftOut,
        ...(options.tag === undefined ? {} : { tag: options.tag }),
      });
      const { progress } = this.console_;
      const unable = devices
        .filter((d) => d.online && (d.backbone !== head.meta.backboneId || d.config?.fleet))
        .flatMap((d) => {
          const apply = (d.config?.fleet as { apply?: string } | undefined)?.apply;
          if (d.backbone !== head.meta.backboneId)
            return [{ device: d.id, reason: `runs ${d.backbone ?? 'no backbone'}; the head is for ${head.meta.backboneId}` }];
          if (apply === 'off') return [{ device: d.id, reason: 'fleet.apply is off: it only reports fleet heads' }];
          return [];
        });
      progress.begin('fleet-head', `v${version}${options.tag === undefined ? '' : ` to tag ${options.tag}`}`, unable);
      const takers = devices.filter((d) => d.online && !unable.some((u) => u.device === d.id)).map((d) => d.id);
      progress.stage('canaries', canaries, this.console_.options.commandTimeoutMs ?? 30_000);
      const reports = await this.tryOnCanaries(canaries, message);
      const tolerance = this.console_.options.rollbackTolerance ?? 0.02;
      for (const r of reports)
        progress.device({
          device: r.device,
          status: canaryGotWorse(r, tolerance) ? (r.error ? 'failed' : 'worse') : 'applied',
          detail:
            r.error ??
            `holdout ${fmt(r.before)} -> ${fmt(r.after)} on ${r.holdout}${r.lost === undefined ? '' : `, lost ${r.lost}, gained ${r.gained}`}`,
          done: true,
          ok: !canaryGotWorse(r, tolerance),
        });
      const canaryStage = progress.endStage().summary!;
      const { verdict, reason } = canaryVerdict(reports, tolerance, this.console_.options.minCanaryHoldout ?? 10);
      if (verdict !== 'release') {
        // A held head stays on its canaries (not clearly worse) until the operator decides; the rest of
        // the fleet does not see it.
        if (verdict === 'rollback') await Promise.allSettled(canaries.map((d) => this.console_.command(d, 'rollback-fleet', { version })));
        const status = verdict === 'rollback' ? 'rolled-back' : 'held';
        registry.setFleetStatus(version, status, reason);
        log.warn(verdict === 'rollback' ? 'fleet head rolled back on its canaries' : 'fleet head held for the operator', {
          version,
          reason,
        });
        this.console_.emit('change', { type: 'fleet' });
        progress.finish(
          false,
          `fleet head v${version} ${verdict === 'rollback' ? 'rolled back on its canaries' : 'held for the operator'}: ${reason}`,
        );
        return { ...base, status, canaries: reports, reason, summaries: [canaryStage] };
      }
      if (options.tag === undefined) await this.release(version, message);
      else
        await this.releaseToTag(
          version,
          message,
          options.tag,
          takers.filter((d) => !canaries.includes(d)),
        );
      const fleetStage = await this.watchFleet(version, takers);
      const where = options.tag === undefined ? '' : ` to the devices tagged "${options.tag}"`;
      progress.finish(true, `fleet head v${version} released${where} after ${canaries.length} canaries`);
      return {
        ...base,
        status: options.tag === undefined ? 'released' : 'released-to-tag',
        canaries: reports,
        summaries: [canaryStage, fleetStage],
      };
    });
  }

  /** The release stage: every online device that takes fleet heads applies it (its state says so), or
   * the stage times out and says who did not. */
  private async watchFleet(version: number, devices: string[]): Promise<string> {
    const { progress, registry } = this.console_;
    const timeoutMs = this.console_.options.fleetStageTimeoutMs ?? 60_000;
    progress.stage('fleet', devices, timeoutMs);
    const check = () => {
      let done = 0;
      for (const device of devices) {
        const applied = registry.device(device)?.state.fleetVersion;
        const ok = typeof applied === 'number' && applied >= version;
        if (ok) done++;
        progress.device({
          device,
          status: ok ? 'applied' : 'waiting',
          detail: typeof applied === 'number' ? `on v${applied}` : null,
          done: ok,
          ok,
        });
      }
      return done === devices.length;
    };
    await until('the fleet applying the head', check, timeoutMs, 200).catch(() => check());
    return progress.endStage().summary!;
  }

  /** The operator releases a head the canaries could not judge (status "held"). */
  async releaseHeld(version: number): Promise<{ version: number; status: 'released' }> {
    return this.exclusive(async () => {
      const row = this.console_.registry.fleetHead(version);
      if (!row || row.status !== 'held')
        throw new ConsoleError(
          'CONSOLE_NOT_HELD',
          row ? `fleet head v${version} is ${row.status}, not held: only a held head can be released by hand` : `no fleet head v${version}`,
        );
      // Versions only go up: a held head older than the released one would be refused as a replay.
      const latest = this.console_.registry.releasedFleetHeads()[0];
      if (latest && latest.version > version)
        throw new ConsoleError('CONSOLE_NOT_HELD', `fleet head v${latest.version} was released after v${version}; merge again instead`);
      await this.release(version, row.message);
      return { version, status: 'released' as const };
    });
  }

  /** The classes of the released fleet head. */
  releasedLabels(): string[] {
    const current = this.console_.registry.releasedFleetHeads()[0];
    return current ? this.decode(current).labels : [];
  }

  /** Publishes the previously released fleet head again, under a new version. */
  async rollback(): Promise<{ version: number; restored: number; replaced: number }> {
    return this.exclusive(async () => {
      const { registry } = this.console_;
      const current = registry.releasedFleetHeads()[0];
      const previous = registry.fleetHeads(1000).find((f) => f.status === 'superseded' && current && f.version < current.version);
      if (!current || !previous)
        throw new ConsoleError(
          'CONSOLE_NOTHING_TO_ROLL_BACK',
          current ? `fleet head v${current.version} is the first one released: nothing to roll back to` : 'no fleet head has been released',
        );
      const head = this.decode(previous).withMeta({});
      const version = registry.nextFleetVersion();
      const message = this.sign(head.withMeta({ version, parent: previous.version }), version);
      registry.addFleetHead({
        version,
        status: 'released',
        merged: previous.merged,
        heldBack: previous.heldBack,
        note: `rollback of v${current.version} to the head of v${previous.version}`,
        message,
      });
      registry.setFleetStatus(current.version, 'rolled-back', `rolled back by v${version}`);
      await this.release(version, message, { supersede: false });
      return { version, restored: previous.version, replaced: current.version };
    });
  }

  /** Sends the released fleet head to one device now (it applies it if newer than what it has). */
  async pushTo(device: string): Promise<Record<string, unknown>> {
    const current = this.console_.registry.releasedFleetHeads()[0];
    if (!current) throw new ConsoleError('CONSOLE_NO_FLEET_HEAD', 'no fleet head has been released yet: merge first');
    return this.console_.command(device, 'apply-head', { message: current.message.toString('base64') });
  }

  /** Publishes the released fleet head (retained) again, e.g. after a broker restart. */
  async republish(): Promise<void> {
    const current = this.console_.registry.releasedFleetHeads()[0];
    if (current) await this.console_.publish(topics.fleetHead(this.console_.fleet), current.message, { retain: true });
  }

  private async release(version: number, message: Buffer, options: { supersede?: boolean } = {}): Promise<void> {
    const { registry } = this.console_;
    if (options.supersede !== false)
      for (const f of registry.releasedFleetHeads()) if (f.version !== version) registry.setFleetStatus(f.version, 'superseded');
    registry.setFleetStatus(version, 'released');
    await this.console_.publish(topics.fleetHead(this.console_.fleet), message, { retain: true });
    this.console_.log.info('fleet head released', { version });
    this.console_.emit('change', { type: 'fleet' });
  }

  /** A head for one tag goes by command to its online devices (a retained head would reach all). */
  private async releaseToTag(version: number, message: Buffer, tag: string, devices: string[]): Promise<void> {
    const { registry, log } = this.console_;
    registry.setFleetStatus(version, 'released-to-tag', `released to the devices tagged "${tag}"`);
    const encoded = message.toString('base64');
    const results = await Promise.allSettled(devices.map((d) => this.console_.command(d, 'apply-head', { message: encoded })));
    results.forEach((r, i) => {
      if (r.status === 'rejected') log.warn('fleet head not applied', { version, device: devices[i], error: (r.reason as Error).message });
    });
    log.info('fleet head released to a tag', { version, tag, devices });
    this.console_.emit('change', { type: 'fleet' });
  }

  private async tryOnCanaries(canaries: string[], message: Buffer): Promise<CanaryReport[]> {
    const encoded = message.toString('base64');
    return Promise.all(
      canaries.map(async (device): Promise<CanaryReport> => {
        try {
          const result = await this.console_.command(device, 'apply-head', { message: encoded });
          const num = (v: unknown) => (typeof v === 'number' ? v : null);
          const lost = num(result.lost);
          const gained = num(result.gained);
          return {
            device,
            before: num(result.accuracyBefore),
            after: num(result.accuracyAfter),
            holdout: num(result.holdout) ?? 0,
            ...(lost !== null && gained !== null ? { lost, gained } : {}),
          };
        } catch (err) {
          return { device, before: null, after: null, holdout: 0, error: (err as Error).message };
        }
      }),
    );
  }

  /** Each device's newest head, of the backbone and kind most devices have. */
  private latestHeads(): { group: DeviceHead[]; skipped: { device: string; reason: string }[] } {
    const skipped: { device: string; reason: string }[] = [];
    const decoded: DeviceHead[] = [];
    for (const r of this.console_.registry.latestDeviceHeads()) {
      if (this.console_.quarantine.has(r.device)) {
        skipped.push({ device: r.device, reason: 'quarantined: its heads are not merged until the operator releases it' });
        continue;
      }
      try {
        decoded.push({ device: r.device, head: decodeHead(r.bytes, { where: `stored head ${r.id}`, backboneId: r.backbone, dim: r.dim }) });
      } catch (err) {
        if (!(err instanceof HeadError)) throw err;
        skipped.push({ device: r.device, reason: err.message });
      }
    }
    // Only heads over the same features merge: same backbone, kind, and feature transform (a device
    // still running an older edgetune keeps its own head until it is updated and retrains).
    const key = ({ head: { meta } }: DeviceHead) =>
      `${meta.kind} head on ${meta.backboneId} (${meta.dim}-d, power ${meta.power}${meta.normalize ? ', L2-normalised' : ''})`;
    const sizes = new Map<string, number>();
    for (const h of decoded) sizes.set(key(h), (sizes.get(key(h)) ?? 0) + 1);
    const fleetKey = [...sizes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
    const group: DeviceHead[] = [];
    for (const h of decoded) {
      if (key(h) === fleetKey) group.push(h);
      else skipped.push({ device: h.device, reason: `a ${key(h)}; the fleet has a ${fleetKey}` });
    }
    return { group, skipped };
  }

  private sign(head: Head, version: number): Buffer {
    const id = `fleet-${this.console_.fleet}-${version}-${Date.now()}`;
    return Buffer.from(
      encodeHeadMessage(head, { kind: 'fleet-head', fleet: this.console_.fleet, device: null, version, id }, this.console_.keys.privateKey),
    );
  }

  private decode(row: FleetHeadRow): Head {
    const { head } = decodeHeadMessage(row.message, {
      where: `fleet head v${row.version}`,
      publicKey: this.console_.keys.publicKey,
      ...backboneOf(row),
    });
    return head;
  }

  private async exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.busy) throw new ConsoleError('CONSOLE_BUSY', 'a rollout is already running');
    this.console_.refuseWhileRunning();
    this.busy = true;
    try {
      return await work();
    } catch (err) {
      if (this.console_.progress.current?.kind === 'fleet-head') this.console_.progress.finish(false, (err as Error).message);
      throw err;
    } finally {
      this.busy = false;
    }
  }
}

function backboneOf(row: FleetHeadRow): { backboneId: string; dim: number } {
  const { backboneId, dim } = peekHeadMessageHeader(row.message, `fleet head v${row.version}`);
  return { backboneId, dim };
}

const fmt = (x: number | null) => (x === null ? '-' : x.toFixed(3));
