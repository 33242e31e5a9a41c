// Every SQLite database edgetune keeps opens the same way: WAL, and a full sync on commit, so an
// acknowledged write survives a pulled power cable; and with its schema version (PRAGMA user_version)
// brought up to date by ordered migrations, because agents update in place and new code meets old
// databases. A database from a newer release is refused, never "migrated" down or written to.

import Database from 'better-sqlite3';
import { EdgetuneError } from './errors.js';

/** Opening or migrating a database. */
export class DatabaseError extends EdgetuneError {}

/** One schema step. Version N is the Nth entry of a list; append new steps, never edit old ones. */
export interface Migration {
  /** What the step does, for the log and the error message. */
  description: string;
  /** SQL to run, or a function for steps SQL alone cannot do. */
  up: string | ((db: Database.Database) => void);
}

export interface Schema {
  /** What the database is, for messages: "sample store", "outbox", ... */
  name: string;
  migrations: readonly Migration[];
}

export function openDatabase(path: string, schema: Schema): Database.Database {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    migrate(db, path, schema);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Runs the steps after the database's version, each in its own transaction with its version bump. */
export function migrate(db: Database.Database, path: string, schema: Schema): number {
  const current = schemaVersion(db);
  const latest = schema.migrations.length;
  if (current > latest) {
    throw new DatabaseError(
      'DB_TOO_NEW',
      `${path}: this ${schema.name} database has schema version ${current}, but this release of edgetune knows versions up to ${latest}: ` +
        'it was written by a newer release. Run that release (or newer), or move the file away to start empty.',
    );
  }
  for (let version = current + 1; version <= latest; version++) {
    const step = schema.migrations[version - 1]!;
    db.transaction(() => {
      if (typeof step.up === 'string') db.exec(step.up);
      else step.up(db);
      db.pragma(`user_version = ${version}`);
    })();
  }
  return latest;
}
