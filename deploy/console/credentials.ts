// Per-device broker credentials for the console's device registry: a random password handed to the
// device once at provisioning, stored here only as a salted scrypt hash.

import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';
import { checkId } from '../../runtime/sync/protocol.js';

export class DeviceCredentials {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS credentials (
      device TEXT PRIMARY KEY,
      salt BLOB NOT NULL,
      hash BLOB NOT NULL,
      created_at INTEGER NOT NULL
    )`);
  }

  /** Creates (or replaces) a device's credentials; returns the password, which is not stored. */
  issue(device: string): string {
    checkId('device', device);
    const password = randomBytes(24).toString('base64url');
    const salt = randomBytes(16);
    this.db
      .prepare('INSERT INTO credentials (device, salt, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET salt = excluded.salt, hash = excluded.hash')
      .run(device, salt, scryptSync(password, salt, 32), Date.now());
    return password;
  }

  verify(device: string | undefined, password: Uint8Array | string | undefined): boolean {
    if (!device || password === undefined) return false;
    const row = this.db.prepare('SELECT salt, hash FROM credentials WHERE device = ?').get(device) as { salt: Buffer; hash: Buffer } | undefined;
    if (!row) return false;
    const given = scryptSync(Buffer.from(password), row.salt, 32);
    return timingSafeEqual(given, row.hash);
  }

  revoke(device: string): boolean {
    return this.db.prepare('DELETE FROM credentials WHERE device = ?').run(device).changes > 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
