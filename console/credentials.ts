// Per-device broker credentials for the console's device registry: a random password handed to the
// device once at provisioning, stored here only as a salted scrypt hash.

import { pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: Buffer, salt: Buffer, keylen: number) => Promise<Buffer>;
import type Database from 'better-sqlite3';
import { openDatabase } from '../core/sqlite.js';
import { CONSOLE_SCHEMA } from './console-db.js';
import { checkId } from '../runtime/sync/protocol.js';

export class DeviceCredentials {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openDatabase(path, CONSOLE_SCHEMA);
  }

  /** Creates (or replaces) a device's credentials; returns the password, which is not stored. */
  issue(device: string): string {
    checkId('device', device);
    const password = randomBytes(24).toString('base64url');
    const salt = randomBytes(16);
    this.db
      .prepare(
        'INSERT INTO credentials (device, salt, hash, mosquitto, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET salt = excluded.salt, hash = excluded.hash, mosquitto = excluded.mosquitto',
      )
      .run(device, salt, scryptSync(password, salt, 32), mosquittoHash(password), Date.now());
    return password;
  }

  /** Off the event loop (scrypt runs in libuv's pool): a fleet reconnecting at once after a console
   * restart must not stall the broker for a scrypt per device. */
  async verify(device: string | undefined, password: Uint8Array | string | undefined): Promise<boolean> {
    if (!device || password === undefined) return false;
    const row = this.db.prepare('SELECT salt, hash FROM credentials WHERE device = ?').get(device) as
      { salt: Buffer; hash: Buffer } | undefined;
    if (!row) return false;
    const given = await scryptAsync(Buffer.from(password), row.salt, 32);
    return timingSafeEqual(given, row.hash);
  }

  /** Lines of a mosquitto password_file for every device (mosquitto 2's PBKDF2-SHA512 "$7$" format). */
  mosquittoPasswords(): string[] {
    return (
      this.db.prepare('SELECT device, mosquitto FROM credentials ORDER BY device').all() as { device: string; mosquitto: string }[]
    ).map((r) => `${r.device}:${r.mosquitto}`);
  }

  /** Every device a login was issued for, with when. */
  issued(): { device: string; issuedAt: number }[] {
    return this.db.prepare('SELECT device, created_at AS issuedAt FROM credentials ORDER BY device').all() as {
      device: string;
      issuedAt: number;
    }[];
  }

  has(device: string): boolean {
    return this.db.prepare('SELECT 1 FROM credentials WHERE device = ?').get(device) !== undefined;
  }

  revoke(device: string): boolean {
    return this.db.prepare('DELETE FROM credentials WHERE device = ?').run(device).changes > 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** mosquitto_passwd's format: $7$<iterations>$<salt, base64>$<PBKDF2-SHA512, base64>. */
export function mosquittoHash(password: string, iterations = 101): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}
