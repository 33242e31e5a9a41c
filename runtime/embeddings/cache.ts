// On-disk embedding cache for the CLI: one append-only file per backbone, records keyed by the sha256 of
// the image bytes, so re-training never recomputes an embedding. A record torn by a crash mid-append is
// cut off on the next open; everything before it stays valid.
//
// File: header [magic "ETEC", version u32, dim u32, reserved u32] then records [sha256 (32 bytes), dim x f32 LE].

import { closeSync, existsSync, fstatSync, ftruncateSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ModelError } from '../../core/errors.js';

const MAGIC = 0x43455445; // "ETEC" little-endian
const VERSION = 1;
const HEADER_BYTES = 16;
const HASH_BYTES = 32;

export class EmbeddingCache {
  private readonly index = new Map<string, Float32Array>();
  private readonly recordBytes: number;
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    readonly dim: number,
    fd: number,
  ) {
    this.recordBytes = HASH_BYTES + dim * 4;
    this.fd = fd;
  }

  /** Opens (or creates) the cache of one backbone; `key` names the backbone and output. */
  static open(cacheDir: string, key: string, dim: number): EmbeddingCache {
    const path = join(cacheDir, 'embeddings', `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.bin`);
    mkdirSync(dirname(path), { recursive: true });
    const isNew = !existsSync(path);
    const fd = openSync(path, isNew ? 'w+' : 'r+');
    const cache = new EmbeddingCache(path, dim, fd);
    try {
      if (isNew) cache.writeHeader();
      else cache.load();
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return cache;
  }

  get size(): number {
    return this.index.size;
  }

  get(sha256: string): Float32Array | undefined {
    return this.index.get(sha256);
  }

  /** Appends one embedding; durable once `flush()` returns. */
  put(sha256: string, embedding: Float32Array): void {
    if (embedding.length !== this.dim) {
      throw new ModelError('CACHE_DIM_MISMATCH', `${this.path}: embedding of length ${embedding.length}, cache holds ${this.dim}`);
    }
    if (this.index.has(sha256)) return;
    const record = Buffer.alloc(this.recordBytes);
    record.write(sha256, 0, 'hex');
    Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).copy(record, HASH_BYTES);
    writeSync(this.requireFd(), record, 0, record.length, fstatSync(this.requireFd()).size);
    this.index.set(sha256, embedding.slice());
  }

  flush(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }

  private requireFd(): number {
    if (this.fd === undefined) throw new ModelError('CACHE_CLOSED', `${this.path}: cache is closed`);
    return this.fd;
  }

  private writeHeader(): void {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(VERSION, 4);
    header.writeUInt32LE(this.dim, 8);
    writeSync(this.requireFd(), header, 0, HEADER_BYTES, 0);
  }

  private load(): void {
    const fd = this.requireFd();
    const size = fstatSync(fd).size;
    if (size < HEADER_BYTES) {
      // Created but the header never made it to disk: start over.
      ftruncateSync(fd, 0);
      this.writeHeader();
      return;
    }
    const bytes = Buffer.alloc(size);
    readSync(fd, bytes, 0, size, 0);
    if (bytes.readUInt32LE(0) !== MAGIC || bytes.readUInt32LE(4) !== VERSION) {
      throw new ModelError('CACHE_INVALID', `${this.path}: not an edgetune embedding cache (delete it to rebuild)`);
    }
    const fileDim = bytes.readUInt32LE(8);
    if (fileDim !== this.dim) {
      throw new ModelError('CACHE_DIM_MISMATCH', `${this.path}: holds ${fileDim}-d embeddings, the backbone gives ${this.dim}`);
    }
    const records = Math.floor((size - HEADER_BYTES) / this.recordBytes);
    const validEnd = HEADER_BYTES + records * this.recordBytes;
    if (validEnd !== size) ftruncateSync(fd, validEnd);
    const all = new Float32Array(records * this.dim);
    for (let r = 0; r < records; r++) {
      const at = HEADER_BYTES + r * this.recordBytes;
      const hash = bytes.toString('hex', at, at + HASH_BYTES);
      const vector = all.subarray(r * this.dim, (r + 1) * this.dim);
      const src = bytes.subarray(at + HASH_BYTES, at + this.recordBytes);
      vector.set(new Float32Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength)));
      this.index.set(hash, vector);
    }
  }
}
