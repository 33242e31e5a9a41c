// What a device must send (its heads, its state) survives being offline and restarted: messages go to
// an SQLite table first and leave it only when the broker has acknowledged them (QoS 1 PUBACK). Each
// message carries its own id, so a resend after a crash between PUBACK and delete is a duplicate the
// console drops, never a loss.

import type Database from 'better-sqlite3';
import { type Schema, openDatabase } from '../../core/sqlite.js';

export interface OutboxMessage {
  seq: number;
  topic: string;
  payload: Buffer;
  retain: boolean;
  createdAt: number;
}

/** Schema steps (core/sqlite.ts): append, never edit. v1 is the first release's schema. */
export const OUTBOX_SCHEMA: Schema = {
  name: 'outbox',
  migrations: [
    {
      description: 'outbox messages',
      up: `CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        retain INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      )`,
    },
  ],
};

export class Outbox {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly trim: Database.Statement;
  private readonly supersede: Database.Statement;
  private readonly count: Database.Statement;

  constructor(
    path: string,
    private readonly maxMessages = 1000,
  ) {
    this.db = openDatabase(path, OUTBOX_SCHEMA);
    this.insert = this.db.prepare('INSERT INTO outbox (topic, payload, retain, created_at) VALUES (?, ?, ?, ?)');
    this.remove = this.db.prepare('DELETE FROM outbox WHERE seq = ?');
    this.oldest = this.db.prepare('SELECT seq, topic, payload, retain, created_at AS createdAt FROM outbox ORDER BY seq LIMIT ?');
    this.trim = this.db.prepare('DELETE FROM outbox WHERE seq <= ?');
    this.supersede = this.db.prepare('DELETE FROM outbox WHERE topic = ? AND retain = 1');
    this.count = this.db.prepare('SELECT COUNT(*) AS n FROM outbox');
  }

  /** Stores a message durably; when the outbox is full the oldest messages make room (a device offline
   * for weeks keeps its newest heads, not its first). A retained message replaces the retained
   * messages still waiting on its topic: the broker would keep only the last one anyway. */
  push(topic: string, payload: Uint8Array, options: { retain?: boolean } = {}): number {
    return this.db.transaction(() => {
      if (options.retain) this.supersede.run(topic);
      const seq = Number(this.insert.run(topic, Buffer.from(payload), options.retain ? 1 : 0, Date.now()).lastInsertRowid);
      this.trim.run(seq - this.maxMessages);
      return seq;
    })();
  }

  /** Drops the retained messages waiting on a topic (a newer one went out another way). */
  dropRetained(topic: string): void {
    this.supersede.run(topic);
  }

  /** Deletes every message whose topic does not start with `prefix`; returns what went, per topic. */
  dropOutside(prefix: string): { topic: string; count: number }[] {
    return this.db.transaction(() => {
      const gone = this.db
        .prepare('SELECT topic, COUNT(*) AS count FROM outbox WHERE substr(topic, 1, ?) != ? GROUP BY topic ORDER BY topic')
        .all(prefix.length, prefix) as { topic: string; count: number }[];
      if (gone.length > 0) this.db.prepare('DELETE FROM outbox WHERE substr(topic, 1, ?) != ?').run(prefix.length, prefix);
      return gone;
    })();
  }

  peek(limit = 16): OutboxMessage[] {
    return (this.oldest.all(limit) as (Omit<OutboxMessage, 'retain'> & { retain: number })[]).map((m) => ({
      ...m,
      retain: m.retain === 1,
    }));
  }

  acknowledge(seq: number): void {
    this.remove.run(seq);
  }

  get size(): number {
    return (this.count.get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
