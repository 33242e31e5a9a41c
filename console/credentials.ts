// Per-device broker credentials for the console's device registry: a random 256-bit secret handed to
// the device once at provisioning, stored here only as its SHA-256. A secret that long needs no slow
// password hash (nobody guesses 2^256), and a fast constant-time check lets a whole fleet reconnect
// after a broker restart at once. Logins issued before kept a salted scrypt hash: still verified, and
// replaced by the SHA-256 on the device's next good login.

import { createHash, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
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
    const password = randomBytes(32).toString('base64url');
    this.db
      .prepare(
        `INSERT INTO credentials (device, salt, hash, mosquitto, created_at, scheme) VALUES (?, ?, ?, ?, ?, 'sha256')
         ON CONFLICT (device) DO UPDATE SET salt = excluded.salt, hash = excluded.hash, mosquitto = excluded.mosquitto, scheme = 'sha256'`,
      )
      .run(device, Buffer.alloc(0), sha256(password), mosquittoHash(password), Date.now());
    return password;
  }

  /** Constant time whether or not the login exists (an unknown one is checked against a random hash),
   * so refusals do not tell which device ids exist. */
  async verify(device: string | undefined, password: Uint8Array | string | undefined): Promise<boolean> {
    const given = Buffer.from(password ?? '');
    const row = device
      ? (this.db.prepare('SELECT salt, hash, scheme FROM credentials WHERE device = ?').get(device) as
          { salt: Buffer; hash: Buffer; scheme: string } | undefined)
      : undefined;
    if (row?.scheme === 'scrypt') {
      // Off the event loop (scrypt runs in libuv's pool).
      const ok = timingSafeEqual(await scryptAsync(given, row.salt, 32), row.hash);
      if (ok)
        this.db
          .prepare("UPDATE credentials SET hash = ?, salt = ?, scheme = 'sha256' WHERE device = ?")
          .run(sha256(given), Buffer.alloc(0), device);
      return ok;
    }
    const expected = row?.hash ?? UNKNOWN_LOGIN;
    return timingSafeEqual(sha256(given), expected) && row !== undefined && password !== undefined;
  }

  /** Issues a login the old way (a salted scrypt hash): for tests and the verifier bench. */
  issueScrypt(device: string): string {
    checkId('device', device);
    const password = randomBytes(24).toString('base64url');
    const salt = randomBytes(16);
    this.db
      .prepare(`INSERT OR REPLACE INTO credentials (device, salt, hash, mosquitto, created_at, scheme) VALUES (?, ?, ?, ?, ?, 'scrypt')`)
      .run(device, salt, scryptSyncHash(password, salt), mosquittoHash(password), Date.now());
    return password;
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

  /** Changes whenever a login is issued, issued again or revoked (the device table's cache checks it). */
  issuedFingerprint(): string {
    const { n, total } = this.db.prepare('SELECT COUNT(*) AS n, TOTAL(created_at) AS total FROM credentials').get() as {
      n: number;
      total: number;
    };
    return `${n}:${total}`;
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

const UNKNOWN_LOGIN = randomBytes(32);

function sha256(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest();
}

function scryptSyncHash(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32);
}

/** mosquitto_passwd's format: $7$<iterations>$<salt, base64>$<PBKDF2-SHA512, base64>. One iteration: a
 * 256-bit random secret needs no stretching, and mosquitto refuses an unknown login without hashing at
 * all, so a slow hash would tell by its time which device ids exist (bench/login-refusals). */
export function mosquittoHash(password: string, iterations = 1): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}
