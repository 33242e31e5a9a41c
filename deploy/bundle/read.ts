// Reading a bundle back: its manifest, without unpacking the rest.

import { execFileSync } from 'node:child_process';
import { DeployError } from '../../core/errors.js';
import type { BundleManifest } from './build.js';

export function readBundleManifest(file: string): BundleManifest {
  try {
    // tar's own complaint goes into the error, not onto the console's stderr.
    const text = execFileSync('tar', ['-xzOf', file, '--wildcards', '*/manifest.json'], {
      encoding: 'utf8',
      maxBuffer: 2 ** 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const manifest = JSON.parse(text) as BundleManifest;
    if (manifest.format !== 'edgetune-bundle/1') throw new Error(`format ${JSON.stringify(manifest.format)}`);
    return manifest;
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').split('\n')[0];
    throw new DeployError('BUNDLE_UNREADABLE', `${file}: not an edgetune bundle (${stderr || (err as Error).message.split('\n')[0]})`);
  }
}
