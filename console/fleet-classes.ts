// The fleet's classes belong to the operator. A class enters the fleet head when the operator accepted
// it, when the released fleet head already has it, or when a quorum of the merging devices has it
// (default: more than half). A class the operator refused never enters. So one device cannot add a
// class to every device, and a class it renames is only a new class of its own that nobody accepted.
// Decisions are kept in registry.db.

import type Database from 'better-sqlite3';
import { openDatabase } from '../core/sqlite.js';
import { CONSOLE_SCHEMA } from './console-db.js';
import { ConsoleError } from '../core/errors.js';
import { validateFleetLabel } from './head-gate.js';

export type ClassDecision = 'accepted' | 'refused';

export interface ClassView {
  label: string;
  /** fleet: in the released fleet head; pending: some device has it, nobody decided, no quorum yet. */
  status: ClassDecision | 'fleet' | 'pending';
  /** Devices whose newest head has it. */
  devices: string[];
}

export class FleetClasses {
  private readonly db: Database.Database;

  constructor(
    path: string,
    /** Devices that must have a class before it enters without the operator; default more than half. */
    private readonly quorum?: number,
  ) {
    this.db = openDatabase(path, CONSOLE_SCHEMA);
  }

  decide(label: string, decision: ClassDecision): void {
    validateFleetLabel(label, 'class');
    if (decision !== 'accepted' && decision !== 'refused')
      throw new ConsoleError('CONSOLE_BAD_DECISION', `a class is "accepted" or "refused", not ${JSON.stringify(decision)}`);
    this.db.prepare('INSERT OR REPLACE INTO fleet_classes (label, decision, at) VALUES (?, ?, ?)').run(label, decision, Date.now());
  }

  decisions(): Map<string, ClassDecision> {
    const rows = this.db.prepare('SELECT label, decision FROM fleet_classes').all() as { label: string; decision: ClassDecision }[];
    return new Map(rows.map((r) => [r.label, r.decision]));
  }

  /** The merge's class filter for a merge of `devices` heads when the released head has `fleetLabels`. */
  acceptor(fleetLabels: string[], devices: number): (label: string, owners: string[]) => boolean {
    const decisions = this.decisions();
    const fleet = new Set(fleetLabels);
    const quorum = this.quorumFor(devices);
    return (label, owners) => {
      const decision = decisions.get(label);
      if (decision) return decision === 'accepted';
      return fleet.has(label) || owners.length >= quorum;
    };
  }

  quorumFor(devices: number): number {
    return this.quorum ?? Math.floor(devices / 2) + 1;
  }

  /** Every class a device has or the operator decided on, with its status. */
  view(fleetLabels: string[], owners: Map<string, string[]>): ClassView[] {
    const decisions = this.decisions();
    const devices = new Set([...owners.values()].flat()).size;
    const accept = this.acceptor(fleetLabels, devices);
    const labels = [...new Set([...fleetLabels, ...owners.keys(), ...decisions.keys()])].sort();
    return labels.map((label) => {
      const has = owners.get(label) ?? [];
      const decision = decisions.get(label);
      const status = decision ?? (fleetLabels.includes(label) ? 'fleet' : accept(label, has) ? 'fleet' : 'pending');
      return { label, status, devices: has };
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
