// A device of another CPU on this machine, for the deploy tests (flash, agent update): everything the
// "device" runs happens in a private mount namespace presenting a real board's /proc files (the one
// `edgetune deploy try` uses), where `uname -m` answers that board's machine name, and with
// EDGETUNE_EMULATOR set, so the installed bundle's bin/edgetune (and the health probe) start the
// bundle's own ARM Node under qemu-user. On a real board the kernel does both: the shell tools stay
// x86 here, the bundle's code is the ARM build. Needs root, qemu-user-static and the cross loaders.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BundleTarget } from '../../deploy/bundle/targets.js';
import { emulatorFor } from '../../deploy/try/emulator.js';
import { presentingBoard } from '../../deploy/try/try.js';
import type { Exec } from '../../runtime/release/activate.js';
import { shq } from '../../runtime/release/layout.js';
import { shellExec } from '../../runtime/release/local.js';

const UNAME_MACHINE: Record<BundleTarget, string> = { 'linux-arm64': 'aarch64', 'linux-armv7': 'armv7l', 'linux-x64': 'x86_64' };

export interface EmulatedDevice {
  target: BundleTarget;
  board: string;
  /** The words that run a program (the words after them) as the device: the board's namespace. */
  prefix: string[];
  /** The device's environment: EDGETUNE_EMULATOR, what binfmt_misc would do on a machine set up for it. */
  env: { EDGETUNE_EMULATOR: string };
  /** Runs a shell script on the device. */
  exec: Exec;
}

/** `dir` keeps the device's `uname` (the board's machine for -m, this machine's uname for the rest). */
export function emulatedDevice(target: BundleTarget, board: string, dir: string): EmulatedDevice {
  mkdirSync(dir, { recursive: true });
  const realUname = join(dir, 'uname.host');
  copyFileSync('/usr/bin/uname', realUname);
  const uname = join(dir, 'uname');
  writeFileSync(uname, `#!/bin/sh\n[ "$*" = -m ] && { echo ${UNAME_MACHINE[target]}; exit 0; }\nexec ${shq(realUname)} "$@"\n`, {
    mode: 0o755,
  });
  const prefix = [...presentingBoard(board), 'sh', '-c', `mount --bind ${shq(uname)} /usr/bin/uname && exec "$@"`, 'device'];
  const env = { EDGETUNE_EMULATOR: emulatorFor(target).command.join(' ') };
  return { target, board, prefix, env, exec: shellExec({ prefix, env: { ...process.env, ...env } }) };
}
