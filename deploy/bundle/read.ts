// Reading a bundle back: its manifest, without unpacking the rest.

import { execFileSync } from 'node:child_process';
import { DeployError } from '../../runtime/errors.js';
import type { BundleManifest } from './build.js';

export function readBundleManifest(file: string): BundleManifest {
  try {
    const text = execFileSync('tar', ['-xzOf', file, '--wildcards', '*/manifest.json'], { encoding: 'utf8', maxBuffer: 2 ** 20 });
    const manifest = JSON.parse(text) as BundleManifest;
    if (manifest.format !== 'edgetune-bundle/1') throw new Error(`format ${JSON.stringify(manifest.format)}`);
    return manifest;
  } catch (err) {
    throw new DeployError('BUNDLE_UNREADABLE', `${file}: not an edgetune bundle (${(err as Error).message.split('\n')[0]})`);
  }
}
