// Copies of real boards' /proc (and Jetsons' /etc) files, one folder per profile id under devices/boards/.
// Detection tests read them, and `edgetune deploy try` presents one to a bundle run under emulation.

import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** devices/boards in this checkout or installed package (this file runs from devices/ or dist/devices/). */
export function boardsDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    const candidate = join(dir, 'devices', 'boards');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('devices/boards is missing from this edgetune installation');
}

export function boardIds(): string[] {
  return readdirSync(boardsDir(), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The board's fixture root (proc/cpuinfo, proc/meminfo, proc/device-tree/model), or undefined. */
export function boardRoot(id: string): string | undefined {
  const root = join(boardsDir(), id);
  return /^[a-z0-9-]+$/.test(id) && existsSync(join(root, 'proc', 'cpuinfo')) ? root : undefined;
}
