// The sample store: content-addressed image files plus SQLite (WAL) for metadata, labels, the embedding
// cache and head versions. Every write is crash-safe: image files go temp -> fsync -> rename before the
// row that names them commits, and SQLite runs with synchronous=FULL because devices lose power.

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { DatabaseError, type Schema, openDatabase } from '../../core/sqlite.js';
import { type BrowseQuery, type FilterCounts, ORDER_SQL, filterSql } from './browse.js';
import { UNKNOWN } from '../head/head.js';
import { EdgetuneError } from '../../core/errors.js';
import { moveDurably, writeDurably } from '../../core/durable.js';
import { sha256Hex } from '../../core/hash.js';
import { orderByWorth } from './worth.js';

export class SampleError extends EdgetuneError {}

export type Split = 'train' | 'holdout';
export type SampleStatus = 'ok' | 'quarantined';

export interface Sample {
  id: string;
  createdAt: number;
  origin: string;
  label: string | null;
  split: Split;
  bytes: number;
  hasImage: boolean;
  status: SampleStatus;
  error: string | null;
  prediction: string | null;
  predictionScore: number | null;
  /** The head version that made the prediction. */
  predictionHead: number | null;
  /** The head called it unknown (null: no prediction yet). */
  predictionUnknown: boolean | null;
  /** Cosine distance to the nearest class mean the head measured (null: a head without an open set). */
  predictionDistance: number | null;
}

export interface Prediction {
  label: string | null;
  score: number | null;
  unknown?: boolean | null;
  distance?: number | null;
  /** The head version that made it. */
  head?: number | null;
}

export type SampleOrder = 'newest' | 'worth';

export interface ListOptions {
  labelled?: boolean;
  status?: SampleStatus;
  limit?: number;
  offset?: number;
  /** 'newest' (default) or 'worth': unlabelled samples most worth labelling first (worth.ts). */
  order?: SampleOrder;
}

export interface StoreOptions {
  /** Keep no image files, only embeddings and metadata (sites where photos must not be stored). */
  embeddingsOnly?: boolean;
  /** Share of samples (by hash, so stable forever) kept out of training to judge new heads. Default 0.2. */
  holdoutFraction?: number;
}

export interface HeadVersion {
  version: number;
  parent: number | null;
  createdAt: number;
  accuracy: number | null;
  metrics: Record<string, unknown>;
  current: boolean;
}

export interface RetentionLimits {
  maxSamples?: number | undefined;
  maxBytes?: number | undefined;
}

export interface LabelledSet {
  ids: string[];
  labels: string[];
  /** [n, dim] */
  embeddings: Float32Array;
}

/** The store's schema steps (core/sqlite.ts): append, never edit. v1 is the first release's schema. */
export const STORE_SCHEMA: Schema = {
  name: 'sample store',
  migrations: [
    {
      description: 'samples, embeddings, heads, meta',
      up: `
CREATE TABLE IF NOT EXISTS samples (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  origin TEXT NOT NULL,
  label TEXT,
  split TEXT NOT NULL CHECK (split IN ('train', 'holdout')),
  bytes INTEGER NOT NULL,
  has_image INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'quarantined')),
  error TEXT,
  prediction TEXT,
  prediction_score REAL
);
CREATE INDEX IF NOT EXISTS samples_label ON samples (label);
CREATE INDEX IF NOT EXISTS samples_created ON samples (created_at);
CREATE TABLE IF NOT EXISTS embeddings (
  sample_id TEXT NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
  backbone TEXT NOT NULL,
  vector BLOB NOT NULL,
  PRIMARY KEY (sample_id, backbone)
);
CREATE TABLE IF NOT EXISTS heads (
  version INTEGER PRIMARY KEY,
  parent INTEGER,
  created_at INTEGER NOT NULL,
  accuracy REAL,
  metrics TEXT NOT NULL,
  file BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`,
    },
    { description: 'the head version each prediction came from', up: 'ALTER TABLE samples ADD COLUMN prediction_head INTEGER;' },
    {
      description: 'open-set predictions: unknown and the distance behind it',
      up: 'ALTER TABLE samples ADD COLUMN prediction_unknown INTEGER; ALTER TABLE samples ADD COLUMN prediction_distance REAL;',
    },
  ],
};

interface SampleRow {
  id: string;
  created_at: number;
  origin: string;
  label: string | null;
  split: Split;
  bytes: number;
  has_image: number;
  status: SampleStatus;
  error: string | null;
  prediction: string | null;
  prediction_score: number | null;
  prediction_head: number | null;
  prediction_unknown: number | null;
  prediction_distance: number | null;
}

/** Columns added after the first release: a store made by an older agent gains them on open. */
function toSample(row: SampleRow): Sample {
  return {
    id: row.id,
    createdAt: row.created_at,
    origin: row.origin,
    label: row.label,
    split: row.split,
    bytes: row.bytes,
    hasImage: row.has_image === 1,
    status: row.status,
    error: row.error,
    prediction: row.prediction,
    predictionScore: row.prediction_score,
    predictionHead: row.prediction_head ?? null,
    predictionUnknown: row.prediction_unknown === null ? null : row.prediction_unknown === 1,
    predictionDistance: row.prediction_distance,
  };
}

export class SampleStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly imagesDir: string;
  private readonly quarantineDir: string;
  readonly embeddingsOnly: boolean;
  private readonly holdoutFraction: number;

  private constructor(
    readonly dir: string,
    options: StoreOptions,
  ) {
    this.embeddingsOnly = options.embeddingsOnly ?? false;
    this.holdoutFraction = options.holdoutFraction ?? 0.2;
    this.imagesDir = join(dir, 'images');
    this.quarantineDir = join(dir, 'quarantine');
    mkdirSync(this.imagesDir, { recursive: true });
    mkdirSync(this.quarantineDir, { recursive: true });
    const dbPath = join(dir, 'edgetune.db');
    try {
      this.db = openDatabase(dbPath, STORE_SCHEMA);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      const check = this.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check: ${String(check)}`);
    } catch (err) {
      if (err instanceof DatabaseError) throw err;
      throw new SampleError('STORE_CORRUPT', `${dbPath}: cannot open the sample database: ${(err as Error).message}`, { cause: err });
    }
  }

  static open(dir: string, options: StoreOptions = {}): SampleStore {
    mkdirSync(dir, { recursive: true });
    return new SampleStore(dir, options);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Prepared once, reused: preparing per call costs time and leaves native statements for the GC. */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /** A stable split from the content hash: the same photo is always train or always holdout. */
  splitOf(id: string): Split {
    return Number.parseInt(id.slice(0, 8), 16) / 0x1_0000_0000 < this.holdoutFraction ? 'holdout' : 'train';
  }

  /** Stores a sample (idempotent by content). The image file is durable before the row commits. */
  add(bytes: Uint8Array, meta: { origin: string; label?: string | null; createdAt?: number }): { sample: Sample; created: boolean } {
    const id = sha256Hex(bytes);
    const existing = this.get(id);
    if (existing) {
      if (meta.label !== undefined && meta.label !== null && existing.label !== meta.label) this.setLabel(id, meta.label);
      return { sample: this.get(id)!, created: false };
    }
    const keepImage = !this.embeddingsOnly;
    if (keepImage) writeDurably(this.imagePath(id), bytes);
    this.insertSample(id, meta, bytes.length, keepImage);
    return { sample: this.get(id)!, created: true };
  }

  /** Stores a sample whose bytes are already in a durable file on the store's filesystem (a streamed
   * upload): the file is renamed into place, so a large upload is never held in memory. */
  addFile(
    file: { path: string; sha256: string; bytes: number },
    meta: { origin: string; label?: string | null; createdAt?: number },
  ): { sample: Sample; created: boolean } {
    const id = file.sha256;
    const existing = this.get(id);
    if (existing || this.embeddingsOnly) {
      rmSync(file.path, { force: true });
      if (!existing) throw new SampleError('STORE_NO_IMAGES', `${this.dir} keeps no image files (embeddingsOnly)`);
      if (meta.label !== undefined && meta.label !== null && existing.label !== meta.label) this.setLabel(id, meta.label);
      return { sample: this.get(id)!, created: false };
    }
    moveDurably(file.path, this.imagePath(id));
    this.insertSample(id, meta, file.bytes, true);
    return { sample: this.get(id)!, created: true };
  }

  private insertSample(id: string, meta: { origin: string; label?: string | null; createdAt?: number }, bytes: number, hasImage: boolean) {
    this.sql(`INSERT INTO samples (id, created_at, origin, label, split, bytes, has_image) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(
      id,
      meta.createdAt ?? Date.now(),
      meta.origin,
      meta.label ?? null,
      this.splitOf(id),
      bytes,
      hasImage ? 1 : 0,
    );
  }

  /** Keeps a sample that could not be processed, with the reason, out of training. */
  quarantine(bytes: Uint8Array, meta: { origin: string; error: string; label?: string | null }): Sample {
    const id = sha256Hex(bytes);
    writeDurably(join(this.quarantineDir, id), bytes);
    this.sql(
      `INSERT INTO samples (id, created_at, origin, label, split, bytes, has_image, status, error)
         VALUES (?, ?, ?, ?, ?, ?, 0, 'quarantined', ?)
         ON CONFLICT (id) DO UPDATE SET status = 'quarantined', error = excluded.error`,
    ).run(id, Date.now(), meta.origin, meta.label ?? null, this.splitOf(id), bytes.length, meta.error);
    return this.get(id)!;
  }

  get(id: string): Sample | undefined {
    const row = this.sql('SELECT * FROM samples WHERE id = ?').get(id) as SampleRow | undefined;
    return row ? toSample(row) : undefined;
  }

  imagePath(id: string): string {
    return join(this.imagesDir, id.slice(0, 2), id);
  }

  /** The path of a sample's image file, when it has one. */
  imageFile(id: string): string | undefined {
    const sample = this.get(id);
    const path = this.imagePath(id);
    return sample?.hasImage && existsSync(path) ? path : undefined;
  }

  readImage(id: string): Buffer | undefined {
    const sample = this.get(id);
    if (!sample?.hasImage) return undefined;
    const path = this.imagePath(id);
    return existsSync(path) ? readFileSync(path) : undefined;
  }

  list(options: ListOptions = {}): Sample[] {
    if (options.order === 'worth')
      return this.browse({ filter: { kind: 'unlabelled' }, order: 'worth', limit: options.limit ?? 100, offset: options.offset ?? 0 })
        .samples;
    const where: string[] = [];
    if (options.labelled === true) where.push('label IS NOT NULL');
    if (options.labelled === false) where.push('label IS NULL');
    where.push(`status = '${options.status ?? 'ok'}'`);
    const rows = this.sql(`SELECT * FROM samples WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`).all(
      options.limit ?? 100,
      options.offset ?? 0,
    ) as SampleRow[];
    return rows.map(toSample);
  }

  setLabel(id: string, label: string | null): Sample {
    const result = this.sql('UPDATE samples SET label = ? WHERE id = ?').run(label, id);
    if (result.changes === 0) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${id}`);
    return this.get(id)!;
  }

  /** Labels many samples in one transaction: all or none. */
  setLabels(changes: { id: string; label: string | null }[]): void {
    const update = this.sql('UPDATE samples SET label = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const { id, label } of changes) {
        if (update.run(label, id).changes === 0) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${id}`);
      }
    })();
  }

  setPrediction(id: string, prediction: Prediction): void {
    this.setPredictions([{ id, ...prediction }]);
  }

  /** Many predictions in one transaction: one disk sync instead of one per sample. */
  setPredictions(predictions: ({ id: string } & Prediction)[]): void {
    const update = this.sql(
      'UPDATE samples SET prediction = ?, prediction_score = ?, prediction_unknown = ?, prediction_distance = ?, prediction_head = ? WHERE id = ?',
    );
    this.db.transaction(() => {
      for (const p of predictions) {
        const unknown = p.unknown === undefined || p.unknown === null ? null : p.unknown ? 1 : 0;
        update.run(p.label, p.score, unknown, p.distance ?? null, p.head ?? null, p.id);
      }
    })();
  }

  /** One page of samples matching a filter, in an order, and how many match in all. */
  browse(query: BrowseQuery): { samples: Sample[]; total: number } {
    const { where, params } = filterSql(query.filter, query.asOf);
    const total = (this.sql(`SELECT COUNT(*) AS n FROM samples WHERE ${where}`).get(...params) as { n: number }).n;
    if (query.order === 'worth') {
      // Ranked in memory (worth.ts spreads samples over classes and hours, which SQL cannot say simply):
      // the input is what the filter finds, thousands on a device, not millions.
      const all = (this.sql(`SELECT * FROM samples WHERE ${where}`).all(...params) as SampleRow[]).map(toSample);
      return { samples: orderByWorth(all).slice(query.offset, query.offset + query.limit), total };
    }
    const rows = this.sql(`SELECT * FROM samples WHERE ${where} ORDER BY ${ORDER_SQL[query.order]} LIMIT ? OFFSET ?`).all(
      ...params,
      query.limit,
      query.offset,
    ) as SampleRow[];
    return { samples: rows.map(toSample), total };
  }

  /** How many samples each filter finds (as of a creation time, when given). */
  filterCounts(asOf?: number): FilterCounts {
    const cut = asOf === undefined ? '' : 'AND created_at <= ?';
    const at = asOf === undefined ? [] : [asOf];
    const totals = this.sql(
      `SELECT SUM(status = 'ok') AS ok, SUM(status = 'ok' AND label IS NULL) AS unlabelled, SUM(status = 'ok' AND label IS NOT NULL) AS labelled,
         SUM(status = 'ok' AND prediction = ?) AS unknown, SUM(status = 'quarantined') AS quarantined FROM samples WHERE 1 ${cut}`,
    ).get(UNKNOWN, ...at) as Record<'ok' | 'unlabelled' | 'labelled' | 'unknown' | 'quarantined', number | null>;
    const grouped = (column: string) =>
      Object.fromEntries(
        (
          this.sql(
            `SELECT ${column} AS k, COUNT(*) AS n FROM samples WHERE status = 'ok' AND ${column} IS NOT NULL ${cut} GROUP BY ${column} ORDER BY ${column}`,
          ).all(...at) as { k: string; n: number }[]
        ).map((r) => [r.k, r.n]),
      );
    return {
      all: totals.ok ?? 0,
      unlabelled: totals.unlabelled ?? 0,
      labelled: totals.labelled ?? 0,
      unknown: totals.unknown ?? 0,
      quarantined: totals.quarantined ?? 0,
      label: grouped('label'),
      predicted: grouped('prediction'),
    };
  }

  /** Drops the image file of a sample (quarantine keeps its own copy). */
  removeImage(id: string): void {
    this.sql('UPDATE samples SET has_image = 0 WHERE id = ?').run(id);
    rmSync(this.imagePath(id), { force: true });
  }

  delete(id: string): boolean {
    const sample = this.get(id);
    if (!sample) return false;
    this.sql('DELETE FROM samples WHERE id = ?').run(id);
    // The row goes first: a crash here leaves an orphan file (harmless), never a row without its image.
    rmSync(this.imagePath(id), { force: true });
    rmSync(join(this.quarantineDir, id), { force: true });
    return true;
  }

  putEmbedding(id: string, backbone: string, vector: Float32Array): void {
    this.sql('INSERT OR REPLACE INTO embeddings (sample_id, backbone, vector) VALUES (?, ?, ?)').run(
      id,
      backbone,
      Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength),
    );
  }

  getEmbedding(id: string, backbone: string): Float32Array | undefined {
    const row = this.sql('SELECT vector FROM embeddings WHERE sample_id = ? AND backbone = ?').get(id, backbone) as
      { vector: Buffer } | undefined;
    return row ? bufferToFloats(row.vector) : undefined;
  }

  /** Up to `limit` samples (not quarantined) with their embedding for this backbone, in id order after `afterId`. */
  embeddingsAfter(backbone: string, afterId: string, limit: number): { id: string; vector: Float32Array }[] {
    const rows = this.sql(
      `SELECT s.id, e.vector FROM samples s JOIN embeddings e ON e.sample_id = s.id AND e.backbone = ?
         WHERE s.status = 'ok' AND s.id > ? ORDER BY s.id LIMIT ?`,
    ).all(backbone, afterId, limit) as { id: string; vector: Buffer }[];
    return rows.map((row) => ({ id: row.id, vector: bufferToFloats(row.vector) }));
  }

  /** Labelled samples that have an embedding for this backbone, optionally one split only. */
  labelledSet(backbone: string, split?: Split): LabelledSet {
    const rows = this.sql(
      `SELECT s.id, s.label, e.vector FROM samples s JOIN embeddings e ON e.sample_id = s.id AND e.backbone = ?
         WHERE s.label IS NOT NULL AND s.status = 'ok' ${split ? 'AND s.split = ?' : ''} ORDER BY s.created_at, s.id`,
    ).all(...(split ? [backbone, split] : [backbone])) as { id: string; label: string; vector: Buffer }[];
    const dim = rows[0] ? rows[0].vector.byteLength / 4 : 0;
    const embeddings = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => embeddings.set(bufferToFloats(r.vector), i * dim));
    return { ids: rows.map((r) => r.id), labels: rows.map((r) => r.label), embeddings };
  }

  counts(): {
    samples: number;
    labelled: number;
    /** Unlabelled samples waiting for a person, and how many of them the head called unknown. */
    waiting: number;
    waitingUnknown: number;
    quarantined: number;
    /** Labelled samples of the holdout split: what a canary's verdict rests on. */
    holdout: number;
    bytes: number;
    perClass: Record<string, number>;
  } {
    const totals = this.sql(
      `SELECT COUNT(*) AS samples, COUNT(label) AS labelled, COALESCE(SUM(CASE WHEN has_image = 1 THEN bytes ELSE 0 END), 0) AS bytes,
         SUM(CASE WHEN status = 'quarantined' THEN 1 ELSE 0 END) AS quarantined,
         COALESCE(SUM(CASE WHEN label IS NULL AND status = 'ok' THEN 1 ELSE 0 END), 0) AS waiting,
         COALESCE(SUM(CASE WHEN label IS NULL AND status = 'ok' AND prediction_unknown = 1 THEN 1 ELSE 0 END), 0) AS waitingUnknown,
         SUM(CASE WHEN label IS NOT NULL AND status = 'ok' AND split = 'holdout' THEN 1 ELSE 0 END) AS holdout
         FROM samples`,
    ).get() as {
      samples: number;
      labelled: number;
      bytes: number;
      quarantined: number | null;
      waiting: number;
      waitingUnknown: number;
      holdout: number | null;
    };
    const perClass = Object.fromEntries(
      (
        this.sql(
          `SELECT label, COUNT(*) AS n FROM samples WHERE label IS NOT NULL AND status = 'ok' GROUP BY label ORDER BY label`,
        ).all() as {
          label: string;
          n: number;
        }[]
      ).map((r) => [r.label, r.n]),
    );
    return { ...totals, quarantined: totals.quarantined ?? 0, holdout: totals.holdout ?? 0, perClass };
  }

  /**
   * Makes room for one new sample of `incomingBytes` by deleting quarantined samples, then unlabelled
   * ones, oldest first. Labelled samples are a person's work and are never deleted: when they alone
   * fill the limits, the new sample is refused (STORE_FULL). Returns the ids deleted.
   */
  makeRoom(limits: RetentionLimits, incomingBytes: number): string[] {
    const fits = (c: { samples: number; bytes: number }) =>
      (limits.maxSamples === undefined || c.samples + 1 <= limits.maxSamples) &&
      (limits.maxBytes === undefined || c.bytes + incomingBytes <= limits.maxBytes);
    const deleted = this.evictUntil(fits);
    if (!fits(this.counts())) throw new SampleError('STORE_FULL', storeFullMessage(this.dir, limits, this.counts()));
    return deleted;
  }

  /** Deletes quarantined, then unlabelled samples, oldest first, until the store is within limits (after
   * the limits were lowered). Never a labelled one. Returns the ids deleted. */
  enforceRetention(limits: RetentionLimits): string[] {
    return this.evictUntil(
      (c) =>
        (limits.maxSamples === undefined || c.samples <= limits.maxSamples) &&
        (limits.maxBytes === undefined || c.bytes <= limits.maxBytes),
    );
  }

  /** True when labelled samples alone fill the limits: a new sample would be refused. */
  isFull(limits: RetentionLimits): boolean {
    const labelled = this.sql(
      `SELECT COUNT(*) AS samples, COALESCE(SUM(CASE WHEN has_image = 1 THEN bytes ELSE 0 END), 0) AS bytes FROM samples WHERE label IS NOT NULL AND status = 'ok'`,
    ).get() as { samples: number; bytes: number };
    return (
      (limits.maxSamples !== undefined && labelled.samples >= limits.maxSamples) ||
      (limits.maxBytes !== undefined && labelled.bytes >= limits.maxBytes)
    );
  }

  private evictUntil(done: (counts: { samples: number; bytes: number }) => boolean): string[] {
    const deleted: string[] = [];
    const victims = this.sql(
      `SELECT id FROM samples WHERE status = 'quarantined' OR label IS NULL ORDER BY (status = 'ok'), created_at, id LIMIT 64`,
    );
    while (!done(this.counts())) {
      const batch = victims.all() as { id: string }[];
      if (batch.length === 0) break;
      for (const { id } of batch) {
        if (done(this.counts())) break;
        this.delete(id);
        deleted.push(id);
      }
    }
    return deleted;
  }

  /**
   * Saves a head version and (by default) makes it current, atomically. `file` is either the encoded head
   * or a function that encodes it given its version number, so the file can carry its own version.
   */
  saveHead(
    file: Uint8Array | ((version: number) => Uint8Array),
    meta: { parent: number | null; accuracy: number | null; metrics?: Record<string, unknown>; makeCurrent?: boolean },
  ): number {
    return this.db.transaction(() => {
      const last = this.sql('SELECT MAX(version) AS v FROM heads').get() as { v: number | null };
      const version = (last.v ?? 0) + 1;
      const bytes = typeof file === 'function' ? file(version) : file;
      this.sql('INSERT INTO heads (version, parent, created_at, accuracy, metrics, file) VALUES (?, ?, ?, ?, ?, ?)').run(
        version,
        meta.parent,
        Date.now(),
        meta.accuracy,
        JSON.stringify(meta.metrics ?? {}),
        Buffer.from(bytes),
      );
      if (meta.makeCurrent !== false) this.setMeta('current_head', String(version));
      return version;
    })();
  }

  headVersions(): HeadVersion[] {
    const current = this.currentHeadVersion();
    return (
      this.sql('SELECT version, parent, created_at, accuracy, metrics FROM heads ORDER BY version').all() as {
        version: number;
        parent: number | null;
        created_at: number;
        accuracy: number | null;
        metrics: string;
      }[]
    ).map((r) => ({
      version: r.version,
      parent: r.parent,
      createdAt: r.created_at,
      accuracy: r.accuracy,
      metrics: JSON.parse(r.metrics) as Record<string, unknown>,
      current: r.version === current,
    }));
  }

  headFile(version: number): Uint8Array | undefined {
    const row = this.sql('SELECT file FROM heads WHERE version = ?').get(version) as { file: Buffer } | undefined;
    return row ? new Uint8Array(row.file) : undefined;
  }

  currentHeadVersion(): number | null {
    const value = this.getMeta('current_head');
    return value === undefined ? null : Number(value);
  }

  /** Points `current` at an older (or newer) stored version: rollback. */
  setCurrentHead(version: number): void {
    if (!this.headFile(version)) throw new SampleError('HEAD_NOT_FOUND', `no head version ${version} in ${this.dir}`);
    this.setMeta('current_head', String(version));
  }

  getMeta(key: string): string | undefined {
    return (this.sql('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}

function storeFullMessage(dir: string, limits: RetentionLimits, c: { samples: number; labelled: number; bytes: number }): string {
  const limit = [
    limits.maxSamples === undefined ? null : `${c.samples}/${limits.maxSamples} samples`,
    limits.maxBytes === undefined ? null : `${c.bytes}/${limits.maxBytes} bytes`,
  ].filter(Boolean);
  return `${dir}: the sample store is full of labelled samples (${limit.join(', ')}; ${c.labelled} labelled): delete samples or raise data.retention`;
}

function bufferToFloats(buffer: Buffer): Float32Array {
  const copy = new Uint8Array(buffer.byteLength);
  copy.set(buffer);
  return new Float32Array(copy.buffer);
}
