// What a device must have before a release goes on it: the bundle's CPU (the bundle brings its own Node),
// room on disk, memory, a clock close to ours, and the few tools install uses.
// Every failed check is named in one error, so a person fixes them all in one go.

import { DeployError } from '../../core/errors.js';
import type { Exec } from '../../runtime/release/activate.js';
import { type ReleaseLayout, shq } from '../../runtime/release/layout.js';
import type { BundleManifest } from '../bundle/build.js';
import { UNAME_TARGET } from '../bundle/targets.js';

export interface DeviceFacts {
  arch: string;
  os: string;
  node: string;
  freeBytes: number;
  memBytes: number;
  clockSkewSeconds: number;
  systemd: boolean;
  current: string | null;
  installed: boolean;
  missingTools: string[];
  /** The login's uid, whether it can write under the prefix, and whether `sudo -n` works. */
  uid: number;
  prefixWritable: boolean;
  sudo: boolean;
}

export interface PreflightOptions {
  manifest: BundleManifest;
  bundleBytes: number;
  layout: ReleaseLayout;
  service: 'systemd' | 'process';
  /** Free space to leave on the device after the release is unpacked. */
  minFreeBytes: number;
  minMemBytes?: number;
  /** Run as root through sudo: always, never, or when the login is not root and cannot write the prefix. */
  sudo: 'auto' | 'yes' | 'no';
  maxClockSkewSeconds?: number;
}

export async function readFacts(exec: Exec, layout: ReleaseLayout, version: string): Promise<DeviceFacts> {
  const sentAt = Date.now() / 1000;
  const script = [
    'echo "arch=$(uname -m)"',
    'if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$ID}"; fi',
    'echo "node=$(node --version 2>/dev/null)"',
    // df on the nearest folder that exists: the prefix may not yet.
    `d=${shq(layout.prefix)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "free_kb=$(df -Pk "$d" | awk 'NR==2{print $4}')"`,
    `echo "mem_kb=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)"`,
    'echo "clock=$(date +%s)"',
    'echo "systemd=$(command -v systemctl >/dev/null 2>&1 && echo yes || echo no)"',
    `echo "current=$(readlink ${shq(layout.current)} 2>/dev/null)"`,
    `echo "installed=$([ -f ${shq(`${layout.releases}/${version}/manifest.json`)} ] && echo yes || echo no)"`,
    `echo "missing=$(for t in tar sha256sum setsid readlink; do command -v $t >/dev/null 2>&1 || printf '%s ' $t; done)"`,
    'echo "uid=$(id -u)"',
    `d=${shq(layout.opt)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "writable=$([ -w "$d" ] && echo yes || echo no)"`,
    'echo "sudo=$(sudo -n true 2>/dev/null && echo yes || echo no)"',
  ].join('\n');
  const out = await exec.run(script, { timeoutMs: 30_000 });
  const receivedAt = Date.now() / 1000;
  const kv = Object.fromEntries(out.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
  const current = kv.current ? kv.current.slice(kv.current.lastIndexOf('/') + 1) : null;
  return {
    arch: kv.arch ?? '',
    os: kv.os ?? 'unknown',
    node: kv.node ?? '',
    freeBytes: Number(kv.free_kb ?? 0) * 1024,
    memBytes: Number(kv.mem_kb ?? 0) * 1024,
    clockSkewSeconds: Math.round(Number(kv.clock ?? 0) - (sentAt + receivedAt) / 2),
    systemd: kv.systemd === 'yes',
    current,
    installed: kv.installed === 'yes',
    missingTools: (kv.missing ?? '').split(/\s+/).filter(Boolean),
    uid: Number(kv.uid ?? -1),
    prefixWritable: kv.writable === 'yes',
    sudo: kv.sudo === 'yes',
  };
}

const MB = 2 ** 20;

export function needsSudo(facts: DeviceFacts, sudo: 'auto' | 'yes' | 'no'): boolean {
  return sudo === 'yes' || (sudo === 'auto' && facts.uid !== 0 && !facts.prefixWritable);
}

/** Throws DEPLOY_PREFLIGHT (or DEPLOY_DISK_FULL when space is the only problem) listing every failed check. */
export function checkFacts(facts: DeviceFacts, options: PreflightOptions): void {
  const problems: string[] = [];
  let diskOnly = true;
  const fail = (text: string, disk = false) => {
    problems.push(text);
    if (!disk) diskOnly = false;
  };
  const target = UNAME_TARGET[facts.arch];
  if (target !== options.manifest.target)
    fail(`the CPU is ${facts.arch || 'unknown'}${target ? ` (${target})` : ''}, the bundle is for ${options.manifest.target}`);
  if (!facts.installed) {
    const need = options.bundleBytes + options.manifest.unpackedBytes + options.minFreeBytes;
    if (facts.freeBytes < need) {
      fail(
        `disk full: ${Math.floor(facts.freeBytes / MB)} MB free under ${options.layout.prefix}, the release needs ${Math.ceil(need / MB)} MB (${Math.ceil(options.bundleBytes / MB)} MB upload + ${Math.ceil(options.manifest.unpackedBytes / MB)} MB unpacked + ${Math.ceil(options.minFreeBytes / MB)} MB to keep free)`,
        true,
      );
    }
  }
  const minMem = options.minMemBytes ?? 256 * MB;
  if (facts.memBytes < minMem) fail(`${Math.round(facts.memBytes / MB)} MB of memory; the agent needs ${Math.round(minMem / MB)} MB`);
  const skew = options.maxClockSkewSeconds ?? 300;
  if (Math.abs(facts.clockSkewSeconds) > skew)
    fail(
      `the clock is ${facts.clockSkewSeconds > 0 ? 'ahead' : 'behind'} by ${Math.abs(facts.clockSkewSeconds)} s (more than ${skew}): set the time (timedatectl set-ntp true)`,
    );
  if (options.service === 'systemd' && !facts.systemd)
    fail('no systemctl: use the process service manager (service=process) on devices without systemd');
  if (facts.missingTools.length) fail(`missing tools: ${facts.missingTools.join(', ')}`);
  if (needsSudo(facts, options.sudo) && !facts.sudo)
    fail(
      `the login (uid ${facts.uid}) cannot write ${options.layout.opt} and has no passwordless sudo: log in as root, or allow sudo (Raspberry Pi OS's first user has it)`,
    );
  if (problems.length) throw new DeployError(diskOnly ? 'DEPLOY_DISK_FULL' : 'DEPLOY_PREFLIGHT', `preflight: ${problems.join('; ')}`);
}
