// HTTP uploads go to a temp file on the store's filesystem as they arrive, hashed on the way, never
// whole in memory; at most a few at a time. The store then renames the file into place.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { HttpError } from '../core/json-api.js';

export interface UploadedFile {
  path: string;
  sha256: string;
  bytes: number;
}

/** Streams the request body to `<dir>/<random>.part` (fsynced), refusing more than `limit` bytes. */
export async function receiveUpload(req: IncomingMessage, dir: string, limit: number): Promise<UploadedFile> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError('PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${limit}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${randomBytes(12).toString('hex')}.part`);
  const fd = openSync(path, 'wx', 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      bytes += buffer.length;
      if (bytes > limit) throw new HttpError('PAYLOAD_TOO_LARGE', `body exceeds the limit of ${limit} bytes`);
      hash.update(buffer);
      writeSync(fd, buffer);
    }
    if (bytes === 0) throw new HttpError('EMPTY_BODY', 'POST an image as the request body');
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
  return { path, sha256: hash.digest('hex'), bytes };
}

/** Removes uploads a crash left half-written. */
export function clearIncoming(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (name.endsWith('.part')) rmSync(join(dir, name), { force: true });
}

/** A counting semaphore whose waiters give up after a while (the client is told to retry). */
export class Slots {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {}

  /** Resolves with a release function, or with undefined when no slot freed up within `timeoutMs`. */
  async acquire(timeoutMs: number): Promise<(() => void) | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.used >= this.size) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(wake), 1);
          resolve();
        }, left);
        this.waiters.push(wake);
      });
    }
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.waiters.shift()?.();
    };
  }
}
