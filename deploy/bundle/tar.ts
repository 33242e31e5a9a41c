// A deterministic .tar.gz writer: entries sorted by path, fixed mtime, owner root, modes normalised to
// 0644/0755, no extended headers. The same files always give the same bytes, so a bundle's sha256 is a
// function of its contents (gzip from node:zlib writes no timestamp or file name).
//
// ustar header (512 bytes): name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1]
// linkname[100] "ustar\0" "00" uname[32] gname[32] devmajor[8] devminor[8] prefix[155]; data padded to 512.

import { gzipSync } from 'node:zlib';
import { DeployError } from '../../core/errors.js';

export interface TarEntry {
  /** Path inside the archive, with '/' separators and no leading '/'. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  data?: Uint8Array;
  executable?: boolean;
  /** For symlinks. */
  target?: string;
}

/** A fixed mtime (2020-01-01): a reproducible archive cannot carry the build time. */
const MTIME = 1577836800;

function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  // ustar splits long paths at a '/' into prefix (155) and name (100).
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new DeployError('BUNDLE_PATH_TOO_LONG', `${path}: too long for a ustar archive`);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(entry: TarEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitPath(path);
  const mode = entry.type === 'file' && !entry.executable ? 0o644 : entry.type === 'symlink' ? 0o777 : 0o755;
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(MTIME, 12), 136, 'latin1');
  block.write('        ', 148, 'latin1');
  block.write(entry.type === 'file' ? '0' : entry.type === 'dir' ? '5' : '2', 156, 'latin1');
  if (entry.type === 'symlink') block.write(entry.target ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  block.write('root', 265, 'latin1');
  block.write('root', 297, 'latin1');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** The archive's bytes, gzipped. Entries are sorted here, so callers may list them in any order. */
export function writeTarGz(entries: TarEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  for (const entry of sorted) {
    const data = entry.type === 'file' ? (entry.data ?? new Uint8Array()) : new Uint8Array();
    parts.push(header(entry, data.length));
    if (data.length > 0) {
      parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const pad = (512 - (data.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts), { level: 9 });
}
