// Which board is this? Read from /proc/device-tree/model (Raspberry Pi, Jetson; a link to
// /sys/firmware/devicetree/base, read there when /proc has no link), /etc/nv_tegra_release
// (Jetson L4T), /proc/cpuinfo and /proc/meminfo, all relative to `root` so tests use fixture trees.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnxRuntimeAvailable } from '../core/platform.js';
import { type DeviceProfile, profileById } from './profiles.js';

export interface DeviceFacts {
  model: string | null;
  tegraRelease: string | null;
  cpuModel: string | null;
  cores: number;
  memoryMiB: number | null;
  arch: string;
}

export interface Detection {
  profile: DeviceProfile;
  facts: DeviceFacts;
  /** How the profile was chosen, for `edgetune device info`. */
  reason: string;
}

function readText(root: string, path: string): string | null {
  try {
    return readFileSync(join(root, path), 'latin1').replace(/\0+$/g, '').trim();
  } catch {
    return null;
  }
}

export function readFacts(root = '/', arch: string = process.arch): DeviceFacts {
  const cpuinfo = readText(root, 'proc/cpuinfo') ?? '';
  const meminfo = readText(root, 'proc/meminfo') ?? '';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKb = /^MemTotal:\s*(\d+)\s*kB/m.exec(meminfo)?.[1];
  const cpuModel = /^(?:model name|Model|Hardware)\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? null;
  const cpuArch = /^CPU architecture\s*:\s*(\d+)/m.exec(cpuinfo)?.[1];
  return {
    model:
      readText(root, 'proc/device-tree/model') ??
      readText(root, 'sys/firmware/devicetree/base/model') ??
      (/^Model\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() || null),
    tegraRelease: readText(root, 'etc/nv_tegra_release'),
    cpuModel,
    cores: cores > 0 ? cores : 1,
    memoryMiB: memKb ? Math.round(Number(memKb) / 1024) : null,
    arch: cpuArch === '7' ? 'arm' : arch,
  };
}

export function detectDevice(root = '/', arch: string = process.arch): Detection {
  const facts = readFacts(root, arch);
  const model = facts.model ?? '';
  const pick = (id: string, reason: string): Detection => ({ profile: fit(profileById(id)!, facts), facts, reason });
  if (/Raspberry Pi Zero 2/i.test(model)) return pick('rpi-zero-2w', `device-tree model "${model}"`);
  if (/Raspberry Pi 5/i.test(model)) return pick('rpi-5', `device-tree model "${model}"`);
  if (/Raspberry Pi 4|Raspberry Pi Compute Module 4/i.test(model)) return pick('rpi-4', `device-tree model "${model}"`);
  if (/Raspberry Pi 3/i.test(model)) return pick('rpi-3', `device-tree model "${model}"`);
  if (facts.tegraRelease || /jetson|nvidia/i.test(model)) {
    const release = /^# R(\d+)/.exec(facts.tegraRelease ?? '')?.[1];
    const orin = /orin/i.test(model) || (release !== undefined && Number(release) >= 35);
    return pick(
      orin ? 'jetson-orin' : 'jetson-nano',
      facts.tegraRelease ? `L4T release "${facts.tegraRelease.split(',')[0]}"` : `model "${model}"`,
    );
  }
  if (facts.arch === 'arm') return pick('generic-armv7', 'a 32-bit ARM CPU');
  if (facts.arch === 'arm64') return pick('generic-arm64', 'an unknown 64-bit ARM board');
  return pick('generic-x64', `architecture ${facts.arch}`);
}

/** onnxruntime where it has a build for the CPU; never more threads than cores; less on small memory. */
function fit(profile: DeviceProfile, facts: DeviceFacts): DeviceProfile {
  const engine = profile.engine === 'onnx' && !onnxRuntimeAvailable('linux', facts.arch) ? 'tflite' : profile.engine;
  const layout = profile.layouts[engine];
  const workers = Math.max(1, Math.min(layout.workers, facts.cores));
  const threads = Math.max(1, Math.min(layout.threads, Math.floor(facts.cores / workers)));
  const smallMemory = facts.memoryMiB !== null && facts.memoryMiB < 1500;
  return {
    ...profile,
    engine,
    workers: smallMemory ? 1 : workers,
    threads,
    queueLimit: smallMemory ? Math.min(profile.queueLimit, 16) : profile.queueLimit,
  };
}
