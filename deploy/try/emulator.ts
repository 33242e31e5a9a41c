// How this machine runs another CPU's bundle: Debian's qemu-user-static with the cross loader libraries
// of the target's Debian *-cross packages given as the guest's root for library lookups (-L). No binfmt
// registration: the bundle's bin/edgetune starts its Node through EDGETUNE_EMULATOR.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeployError } from '../../core/errors.js';
import { type BundleTarget, hostTarget } from '../bundle/targets.js';

interface EmulatorSpec {
  qemu: string[];
  sysroot: string;
  /** Files the bundled Node needs from the sysroot, and the Debian package that installs each. */
  libraries: [file: string, debianPackage: string][];
}

const SPECS: Partial<Record<BundleTarget, EmulatorSpec>> = {
  'linux-arm64': {
    qemu: ['qemu-aarch64-static', 'qemu-aarch64'],
    sysroot: '/usr/aarch64-linux-gnu',
    libraries: [
      ['lib/ld-linux-aarch64.so.1', 'libc6-arm64-cross'],
      ['lib/libstdc++.so.6', 'libstdc++6-arm64-cross'],
      ['lib/libgcc_s.so.1', 'libgcc-s1-arm64-cross'],
      ['lib/libatomic.so.1', 'libatomic1-arm64-cross'],
    ],
  },
  'linux-armv7': {
    qemu: ['qemu-arm-static', 'qemu-arm'],
    sysroot: '/usr/arm-linux-gnueabihf',
    libraries: [
      ['lib/ld-linux-armhf.so.3', 'libc6-armhf-cross'],
      ['lib/libstdc++.so.6', 'libstdc++6-armhf-cross'],
      ['lib/libgcc_s.so.1', 'libgcc-s1-armhf-cross'],
      ['lib/libatomic.so.1', 'libatomic1-armhf-cross'],
    ],
  },
};

export interface Emulator {
  /** The words bin/edgetune puts before its Node (EDGETUNE_EMULATOR), empty on the bundle's own CPU. */
  command: string[];
  describe: string;
}

export interface EmulatorOptions {
  /** Where the cross loader libraries are (default: Debian's /usr/<triplet>). */
  sysroot?: string;
  /** PATH to look for qemu in (default: this process's). */
  path?: string;
}

function onPath(names: string[], path: string): string | undefined {
  for (const name of names) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], {
        encoding: 'utf8',
        env: { PATH: path },
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      // next name
    }
  }
  return undefined;
}

export function emulatorFor(target: BundleTarget, options: EmulatorOptions = {}): Emulator {
  if (hostTarget() === target) return { command: [], describe: `natively (this machine is ${target})` };
  const spec = SPECS[target];
  if (!spec) throw new DeployError('TRY_NO_EMULATOR', `a ${target} bundle cannot run on this ${hostTarget() ?? process.arch} machine`);
  const qemu = onPath(spec.qemu, options.path ?? process.env.PATH ?? '/usr/bin:/bin');
  if (!qemu)
    throw new DeployError(
      'TRY_NO_QEMU',
      `${spec.qemu[0]} is not installed: a ${target} bundle runs here under qemu-user (apt-get install qemu-user-static)`,
    );
  const sysroot = options.sysroot ?? spec.sysroot;
  const missing = spec.libraries.filter(([file]) => !existsSync(join(sysroot, file)));
  if (missing.length)
    throw new DeployError(
      'TRY_NO_SYSROOT',
      `the ${target} loader libraries are missing (${missing.map(([file]) => join(sysroot, file)).join(', ')}): apt-get install ${[...new Set(missing.map(([, pkg]) => pkg))].join(' ')}`,
    );
  return { command: [qemu, '-L', sysroot], describe: `under ${qemu} -L ${sysroot}` };
}
