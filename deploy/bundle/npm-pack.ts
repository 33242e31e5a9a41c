// One npm package at an exact version, unpacked into the bundle cache through `npm pack` (npm checks the
// tarball against the registry's integrity hash). With a pinned integrity the tarball must also match it,
// so a bundle built in CI next year carries the same bytes as one built today.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DeployError } from '../../core/errors.js';

export interface PackOptions {
  cacheDir: string;
  /** `sha512-<base64>`, as npm's package-lock and `npm view <pkg> dist.integrity` write it. */
  integrity?: string;
  log?: (msg: string) => void;
}

/** The package's folder (its `package/` contents) in `<cacheDir>/npm/`. */
export function npmPackage(name: string, version: string, options: PackOptions): string {
  const dest = join(options.cacheDir, 'npm', `${name.replace('/', '+')}-${version}`);
  if (existsSync(join(dest, 'package.json'))) return dest;
  options.log?.(`fetching ${name}@${version} (npm pack)`);
  const work = `${dest}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    let tarball: string;
    try {
      const out = execFileSync('npm', ['pack', '--silent', `${name}@${version}`, '--pack-destination', work], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      tarball = join(work, out.trim().split('\n').pop()!);
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.toString().trim();
      throw new DeployError('BUNDLE_FETCH_FAILED', `npm pack ${name}@${version} failed: ${stderr || (err as Error).message}`);
    }
    if (options.integrity) {
      const got = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
      if (got !== options.integrity)
        throw new DeployError(
          'BUNDLE_FETCH_FAILED',
          `${name}@${version} from the registry is ${got}, edgetune pins ${options.integrity}: refusing it`,
        );
    }
    execFileSync('tar', ['-xzf', tarball, '-C', work]);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(work, 'package'), dest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dest;
}
