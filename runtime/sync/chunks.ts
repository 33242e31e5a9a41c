// Files larger than a broker's payload limit (AWS IoT caps at 128 KB) travel as chunks, each published
// to edgetune/{fleet}/blobs/{sha256}/{n}. A chunk carries the whole file's sha256, its index and the
// chunk count; the receiver reassembles in any order, ignores duplicates, and hands the file on only
// when the sha256 of the whole matches.
//
//   magic "ETHC" | sha256 of the whole file (32) | index u32 | count u32 | data

import { createHash } from 'node:crypto';
import { SyncError } from './protocol.js';

const MAGIC = 'ETHC';
const HEADER = 4 + 32 + 8;
export const DEFAULT_CHUNK_BYTES = 96 * 1024;

export interface Chunk {
  sha256: string;
  index: number;
  count: number;
  payload: Uint8Array;
}

export function splitIntoChunks(bytes: Uint8Array, chunkBytes = DEFAULT_CHUNK_BYTES): Chunk[] {
  const dataBytes = chunkBytes - HEADER;
  if (dataBytes <= 0) throw new SyncError('SYNC_BAD_CHUNK', `chunk size ${chunkBytes} leaves no room for data`);
  const digest = createHash('sha256').update(bytes).digest();
  const sha256 = digest.toString('hex');
  const count = Math.max(1, Math.ceil(bytes.length / dataBytes));
  return Array.from({ length: count }, (_, index) => {
    const data = bytes.subarray(index * dataBytes, (index + 1) * dataBytes);
    const payload = Buffer.alloc(HEADER + data.length);
    payload.write(MAGIC, 0, 'latin1');
    digest.copy(payload, 4);
    payload.writeUInt32LE(index, 36);
    payload.writeUInt32LE(count, 40);
    Buffer.from(data).copy(payload, HEADER);
    return { sha256, index, count, payload };
  });
}

export function parseChunk(payload: Uint8Array, where: string): Chunk {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buf.length < HEADER || buf.toString('latin1', 0, 4) !== MAGIC)
    throw new SyncError('SYNC_BAD_CHUNK', `${where}: not an edgetune chunk`);
  const index = buf.readUInt32LE(36);
  const count = buf.readUInt32LE(40);
  if (count === 0 || index >= count) throw new SyncError('SYNC_BAD_CHUNK', `${where}: chunk ${index} of ${count}`);
  return { sha256: buf.toString('hex', 4, 36), index, count, payload: buf.subarray(HEADER) };
}

interface Pending {
  count: number;
  parts: Map<number, Uint8Array>;
  bytes: number;
  touched: number;
}

/** Collects chunks into files; bounded so a flood of partial files cannot exhaust memory. */
export class ChunkAssembler {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly limits: { maxFileBytes: number; maxPendingFiles: number; staleMs: number } = {
      maxFileBytes: 64 * 2 ** 20,
      maxPendingFiles: 16,
      staleMs: 10 * 60_000,
    },
  ) {}

  /** Adds a chunk; returns the whole file when this chunk completes it. */
  add(payload: Uint8Array, where: string, now = Date.now()): { sha256: string; bytes: Uint8Array } | undefined {
    const chunk = parseChunk(payload, where);
    this.dropStale(now);
    let file = this.pending.get(chunk.sha256);
    if (!file) {
      if (this.pending.size >= this.limits.maxPendingFiles) {
        throw new SyncError('SYNC_TOO_MANY_FILES', `${where}: ${this.pending.size} files are already being received`);
      }
      file = { count: chunk.count, parts: new Map(), bytes: 0, touched: now };
      this.pending.set(chunk.sha256, file);
    }
    if (chunk.count !== file.count)
      throw new SyncError('SYNC_BAD_CHUNK', `${where}: chunk says ${chunk.count} parts, earlier ones said ${file.count}`);
    file.touched = now;
    if (!file.parts.has(chunk.index)) {
      file.bytes += chunk.payload.length;
      if (file.bytes > this.limits.maxFileBytes) {
        this.pending.delete(chunk.sha256);
        throw new SyncError('SYNC_TOO_LARGE', `${where}: file ${chunk.sha256.slice(0, 12)} is over ${this.limits.maxFileBytes} bytes`);
      }
      file.parts.set(chunk.index, Uint8Array.from(chunk.payload));
    }
    if (file.parts.size < file.count) return undefined;
    this.pending.delete(chunk.sha256);
    const bytes = Buffer.concat(Array.from({ length: file.count }, (_, i) => file.parts.get(i)!));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== chunk.sha256)
      throw new SyncError('SYNC_CHECKSUM', `${where}: reassembled file has sha256 ${actual}, expected ${chunk.sha256}`);
    return { sha256: actual, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) };
  }

  get pendingFiles(): number {
    return this.pending.size;
  }

  private dropStale(now: number): void {
    for (const [sha, file] of this.pending) if (now - file.touched > this.limits.staleMs) this.pending.delete(sha);
  }
}
