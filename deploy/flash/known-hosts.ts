// OpenSSH known_hosts: a device's host key is checked before anything is sent to it. Plain and hashed
// (|1|salt|hmac) host fields; a host on another port than 22 is written "[host]:port".

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownKey {
  type: string;
  key: Buffer;
  line: number;
}

function hostField(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matchesHost(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return pattern.split(',').includes(name);
}

/** The keys known_hosts lists for a host (none if the file does not exist). */
export function knownKeys(file: string, host: string, port: number): KnownKey[] {
  if (!existsSync(file)) return [];
  const name = hostField(host, port);
  const keys: KnownKey[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      const fields = text.trim().split(/\s+/);
      if (fields.length < 3 || fields[0]!.startsWith('#') || fields[0]!.startsWith('@')) return;
      if (matchesHost(fields[0]!, name)) keys.push({ type: fields[1]!, key: Buffer.from(fields[2]!, 'base64'), line: i + 1 });
    });
  return keys;
}

/** The key type inside an SSH public key blob (its first string). */
export function keyType(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.toString('latin1', 4, 4 + length);
}

/** SHA256:... as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Adds a host's key (trust on first use), hashed like `HashKnownHosts yes`. */
export function addKnownKey(file: string, host: string, port: number, blob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(hostField(host, port)).digest('base64');
  appendFileSync(file, `|1|${salt.toString('base64')}|${hash} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
}
