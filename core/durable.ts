// Durable file writes: what a device writes must survive a crash or a pulled power cable.

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** temp file -> fsync -> rename -> fsync folder: after this returns the file survives a power cut.
 * `mode` sets the permissions from the start (0o600 for keys and credentials). */
export function writeDurably(path: string, bytes: Uint8Array, options: { mode?: number } = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', options.mode ?? 0o644);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  fsyncFolder(dir);
}

/** Moves a file that is already durable (written and fsynced) into place, on the same filesystem. */
export function moveDurably(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  renameSync(from, to);
  fsyncFolder(dirname(to));
}

function fsyncFolder(dir: string): void {
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
