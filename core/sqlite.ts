// Every SQLite database edgetune keeps on a device opens the same way: WAL, and a full sync on commit,
// so an acknowledged write survives a pulled power cable.

import Database from 'better-sqlite3';

export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}
