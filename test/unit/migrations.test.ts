// Schema versions: a database written by the release before versions (user_version 0, fixtures in
// test/fixtures/databases/v0) opens and migrates with its data; one from a newer release is refused,
// untouched; steps run in order, each all or nothing.

import { copyFileSync, cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSOLE_SCHEMA } from '../../console/console-db.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { Registry } from '../../console/registry.js';
import { DatabaseError, migrate, openDatabase, schemaVersion } from '../../core/sqlite.js';
import { STORE_SCHEMA, SampleStore } from '../../runtime/samples/store.js';
import { OUTBOX_SCHEMA, Outbox } from '../../runtime/sync/outbox.js';
import { REPO_ROOT, tempDir } from '../support/paths.js';

const V0 = join(REPO_ROOT, 'test/fixtures/databases/v0');
const tmp = tempDir();
afterAll(() => tmp.remove());
let n = 0;

/** A copy of a fixture, so the committed file is never written. */
function copy(name: string): string {
  const to = join(tmp.path, `${n++}-${name.replace('/', '-')}`);
  if (name === 'store') cpSync(join(V0, 'store'), to, { recursive: true });
  else copyFileSync(join(V0, name), to);
  return to;
}

function versionOf(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

function setVersion(path: string, version: number): void {
  const db = new Database(path);
  db.pragma(`user_version = ${version}`);
  db.close();
}

describe("databases written by today's release (user_version 0)", () => {
  it('the sample store opens, migrates to the latest version and keeps samples, labels, embeddings and heads', () => {
    const dir = copy('store');
    expect(versionOf(join(dir, 'edgetune.db'))).toBe(0);
    const store = SampleStore.open(dir);
    const samples = store.list({ limit: 10 });
    expect(samples.map((s) => [s.origin, s.label])).toEqual([
      ['inbox', null],
      ['upload', 'daisy'],
    ]);
    const labelled = samples[1]!;
    expect(Array.from(store.getEmbedding(labelled.id, 'mobilenet-v2')!)).toEqual([0.25, 0.5, 0.75]);
    expect(store.readImage(labelled.id)?.toString()).toBe('fixture sample one');
    expect(store.headVersions().map((h) => [h.version, h.accuracy, h.current])).toEqual([[1, 0.5, true]]);
    expect(store.getMeta('pushed_config')).toBe('{}');
    store.close();
    expect(versionOf(join(dir, 'edgetune.db'))).toBe(STORE_SCHEMA.migrations.length);
  });

  it('the outbox, the console registry and the device credentials open, migrate and keep their rows', async () => {
    const outboxPath = copy('outbox.db');
    const outbox = new Outbox(outboxPath);
    expect(outbox.peek().map((m) => [m.topic, m.payload.toString(), m.retain])).toEqual([
      ['edgetune/v1/f/d/state', '{"a":1}', true],
      ['edgetune/v1/f/d/head', 'head', false],
    ]);
    outbox.close();
    expect(versionOf(outboxPath)).toBe(OUTBOX_SCHEMA.migrations.length);

    // The console keeps its registry and the device credentials in one file, as the console opens them.
    const registryPath = copy('registry.db');
    const registry = new Registry(registryPath);
    const credentials = new DeviceCredentials(registryPath);
    expect(registry.device('pi-1')?.state).toEqual({ samples: 3 });
    expect(registry.accuracyHistory('pi-1').map((a) => a.accuracy)).toEqual([0.8]);
    expect(registry.problems().map((p) => p.code)).toEqual(['X']);
    expect(credentials.mosquittoPasswords()).toHaveLength(1);
    expect(credentials.mosquittoPasswords()[0]).toMatch(/^pi-1:\$7\$/);
    expect(await credentials.verify('pi-1', 'not the password')).toBe(false);
    credentials.issue('pi-2');
    expect(credentials.mosquittoPasswords()).toHaveLength(2);
    credentials.close();
    registry.close();
    expect(versionOf(registryPath)).toBe(CONSOLE_SCHEMA.migrations.length);
    // A new file opened the other way round: the one version serves both parts.
    const fresh = join(tmp.path, 'fresh-registry.db');
    new DeviceCredentials(fresh).close();
    const again = new Registry(fresh);
    again.recordState('pi-3', {}, 1, null);
    again.close();
    const creds = new DeviceCredentials(fresh);
    creds.issue('pi-3');
    expect(creds.mosquittoPasswords()).toHaveLength(1);
    creds.close();
  });
});

describe('a database from a newer release', () => {
  it('is refused with a message saying so, and left as it was', () => {
    const cases: [string, () => unknown, string, number][] = [];
    const dir = copy('store');
    const storeDb = join(dir, 'edgetune.db');
    cases.push([storeDb, () => SampleStore.open(dir), 'sample store', STORE_SCHEMA.migrations.length]);
    const outbox = copy('outbox.db');
    cases.push([outbox, () => new Outbox(outbox), 'outbox', OUTBOX_SCHEMA.migrations.length]);
    const registry = copy('registry.db');
    cases.push([registry, () => new Registry(registry), 'console registry', CONSOLE_SCHEMA.migrations.length]);
    const credentials = copy('registry.db');
    cases.push([credentials, () => new DeviceCredentials(credentials), 'console registry', CONSOLE_SCHEMA.migrations.length]);
    for (const [path, open, name, latest] of cases) {
      setVersion(path, latest + 1);
      const before = readFileSync(path);
      let error: unknown;
      try {
        open();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).code).toBe('DB_TOO_NEW');
      expect((error as Error).message).toBe(
        `${path}: this ${name} database has schema version ${latest + 1}, but this release of edgetune knows versions up to ${latest}: ` +
          'it was written by a newer release. Run that release (or newer), or move the file away to start empty.',
      );
      expect(versionOf(path)).toBe(latest + 1);
      expect(readFileSync(path).equals(before)).toBe(true);
    }
  });
});

describe('migrations', () => {
  it('run in order from the version on disk, each step with its version bump in one transaction', () => {
    const path = join(tmp.path, 'steps.db');
    const steps = [
      { description: 'one', up: 'CREATE TABLE t (a INTEGER)' },
      { description: 'two', up: 'ALTER TABLE t ADD COLUMN b TEXT' },
    ];
    openDatabase(path, { name: 'test', migrations: steps }).close();
    expect(versionOf(path)).toBe(2);
    const failing = {
      description: 'three',
      up: "ALTER TABLE t ADD COLUMN c TEXT; INSERT INTO t VALUES (1, 'x', 'y'); SELECT nope FROM missing",
    };
    expect(() => openDatabase(path, { name: 'test', migrations: [...steps, failing] })).toThrow(/no such table: missing/);
    // The failed step left nothing behind: still version 2, no column c, no row.
    const db = new Database(path);
    expect(schemaVersion(db)).toBe(2);
    expect((db.prepare('PRAGMA table_info(t)').all() as { name: string }[]).map((c) => c.name)).toEqual(['a', 'b']);
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 });
    const applied: string[] = [];
    migrate(db, path, {
      name: 'test',
      migrations: [...steps, { description: 'three', up: (d) => (d.exec('ALTER TABLE t ADD COLUMN c TEXT'), applied.push('three')) }],
    });
    expect(applied).toEqual(['three']);
    expect(schemaVersion(db)).toBe(3);
    db.close();
  });
});
