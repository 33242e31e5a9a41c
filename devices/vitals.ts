// A device's vital signs for the console: uptime, CPU temperature, load, memory, free disk and network
// addresses, read from the kernel's own files and Node's os module. A value the board does not offer
// (no thermal zone on a VM) is null, never a guess.

import { readFileSync, statfsSync } from 'node:fs';
import { freemem, loadavg, networkInterfaces, totalmem, uptime } from 'node:os';
import { bundleTargetOf } from '../core/platform.js';

export interface Vitals {
  /** Seconds since the board booted. */
  systemUptimeSeconds: number;
  /** Degrees Celsius from the thermal zone file, null without one. */
  cpuTempC: number | null;
  /** Load average over 1, 5 and 15 minutes. */
  load: [number, number, number];
  memory: { totalBytes: number; availableBytes: number; processBytes: number };
  /** Free and total bytes of the file system holding the data folder. */
  disk: { freeBytes: number; totalBytes: number } | null;
  /** Non-loopback IPv4 and IPv6 addresses. */
  addresses: string[];
  /** The bundle target this device takes (linux-arm64, linux-x64, ...). */
  target: string;
}

export const DEFAULT_THERMAL_FILE = '/sys/class/thermal/thermal_zone0/temp';

export function readVitals(options: { thermalFile: string; dataDir: string }): Vitals {
  const [l1 = 0, l5 = 0, l15 = 0] = loadavg();
  return {
    systemUptimeSeconds: Math.round(uptime()),
    cpuTempC: readThermal(options.thermalFile),
    load: [round2(l1), round2(l5), round2(l15)],
    memory: { totalBytes: totalmem(), availableBytes: availableMemory(), processBytes: process.memoryUsage.rss() },
    disk: diskOf(options.dataDir),
    addresses: Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && !a.internal)
      .map((a) => a!.address),
    target: bundleTargetOf(),
  };
}

/** The kernel writes millidegrees ("48312"); some boards write degrees. */
export function readThermal(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  const value = Number(text);
  if (!Number.isFinite(value) || text === '') return null;
  return round2(Math.abs(value) > 1000 ? value / 1000 : value);
}

/** MemAvailable (what can be used without swapping), not MemFree, where /proc/meminfo has it. */
function availableMemory(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

function diskOf(dir: string): Vitals['disk'] {
  try {
    const s = statfsSync(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return null;
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;
