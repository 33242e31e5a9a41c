import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectDevice } from '../../devices/detect.js';
import { PROFILES } from '../../devices/profiles.js';
import { effectiveSettings } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { runCli } from '../support/cli.js';
import { REPO_ROOT, tempDir } from '../support/paths.js';

// Fixture trees hold real-format copies of /proc/device-tree/model, /proc/cpuinfo, /proc/meminfo and
// /etc/nv_tegra_release from each kind of board.
const FIXTURES = join(REPO_ROOT, 'devices/boards');
const root = (board: string) => join(FIXTURES, board);

describe('detectDevice from /proc and /etc', () => {
  const cases: [board: string, arch: string, profile: string, cores: number, memoryMiB: number][] = [
    ['rpi-zero-2w', 'arm64', 'rpi-zero-2w', 4, 429],
    ['rpi-3', 'arm', 'rpi-3', 4, 926],
    ['rpi-4', 'arm64', 'rpi-4', 4, 3794],
    ['rpi-5', 'arm64', 'rpi-5', 4, 8052],
    ['jetson-nano', 'arm64', 'jetson-nano', 4, 3965],
    ['jetson-orin', 'arm64', 'jetson-orin', 6, 7620],
    ['generic-arm64', 'arm64', 'generic-arm64', 6, 3876],
    ['generic-x64', 'x64', 'generic-x64', 4, 15726],
  ];
  it.each(cases)('%s (%s) is detected', (board, arch, profile, cores, memoryMiB) => {
    const detection = detectDevice(root(board), arch);
    expect(detection.profile.id).toBe(profile);
    expect(detection.facts.cores).toBe(cores);
    expect(detection.facts.memoryMiB).toBe(memoryMiB);
  });

  it('reads the Raspberry Pi model without its trailing NUL, and the L4T release of a Jetson', () => {
    expect(detectDevice(root('rpi-4'), 'arm64').reason).toBe('device-tree model "Raspberry Pi 4 Model B Rev 1.4"');
    expect(detectDevice(root('jetson-nano'), 'arm64').reason).toBe('L4T release "# R32 (release)"');
  });

  it('sees a 32-bit OS on a 64-bit Pi 3 from cpuinfo, whatever Node reports', () => {
    expect(detectDevice(root('rpi-3'), 'arm64').facts.arch).toBe('arm');
  });

  it('fits the profile to the board: small memory gets one worker and a short queue', () => {
    const zero = detectDevice(root('rpi-zero-2w'), 'arm64').profile;
    expect(zero).toMatchObject({ engine: 'onnx', workers: 1, threads: 4, queueLimit: 8 });
    const pi4 = detectDevice(root('rpi-4'), 'arm64').profile;
    expect(pi4).toMatchObject({ engine: 'onnx', workers: 1, threads: 4 });
    // Never more threads than cores.
    for (const board of ['rpi-5', 'jetson-orin', 'generic-x64']) {
      const { profile, facts } = detectDevice(root(board), 'arm64');
      expect(profile.workers * profile.threads).toBeLessThanOrEqual(facts.cores);
    }
  });

  it('runs TFLite, with its own thread layout, where onnxruntime has no build (a 32-bit OS)', () => {
    const pi3 = detectDevice(root('rpi-3'), 'arm64').profile; // Node on arm64, but cpuinfo says ARMv7
    expect(pi3).toMatchObject({ engine: 'tflite', workers: 1, threads: 1 });
    // A 32-bit Node on a 64-bit kernel cannot load onnxruntime's arm64 binary either.
    expect(detectDevice(root('rpi-4'), 'arm').profile).toMatchObject({ engine: 'tflite', workers: 2, threads: 1 });
  });

  it('falls back to a generic profile when nothing is readable', () => {
    const empty = tempDir();
    try {
      const detection = detectDevice(empty.path, 'x64');
      expect(detection.profile.id).toBe('generic-x64');
      expect(detection.facts).toMatchObject({ model: null, cores: 1, memoryMiB: null });
      expect(detectDevice(empty.path, 'arm').profile.id).toBe('generic-armv7');
    } finally {
      empty.remove();
    }
  });

  it('every profile fits a 1 GiB board or says why not', () => {
    for (const p of PROFILES) {
      expect(p.why.length).toBeGreaterThan(10);
      expect(p.queueLimit).toBeGreaterThan(0);
    }
  });
});

describe('the agent takes what the config leaves out from the profile', () => {
  it('uses profile engine settings, queue and retention unless the config sets them', () => {
    const profile = detectDevice(root('rpi-zero-2w'), 'arm64').profile;
    const defaults = effectiveSettings(AgentConfigSchema.parse({}), profile);
    expect(defaults).toEqual({
      engine: undefined, // onnx stays automatic: a model the importer cannot convert still runs
      workers: 1,
      threads: 4,
      batchSize: 1,
      queueLimit: 8,
      maxImagePixels: 16_000_000,
      smallJpegDecoder: false, // the 512 MiB board keeps the decoder's 8 MiB
      retention: { maxSamples: 5000, maxBytes: 2 ** 30 },
    });
    expect(effectiveSettings(AgentConfigSchema.parse({}), detectDevice(root('rpi-3'), 'arm').profile)).toMatchObject({
      engine: 'tflite',
      workers: 1,
      threads: 1,
      smallJpegDecoder: true,
    });
    const pinned = effectiveSettings(
      AgentConfigSchema.parse({ model: { workers: 2 }, queue: { limit: 100 }, data: { retention: { maxSamples: 10 } } }),
      profile,
    );
    expect(pinned).toMatchObject({ workers: 2, queueLimit: 100, retention: { maxSamples: 10, maxBytes: 2 ** 30 } });
  });
});

describe('edgetune device info', () => {
  it('prints the detected profile, as a table and as JSON', async () => {
    const table = await runCli(['device', 'info', '--root', root('jetson-orin')]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/profile\s+jetson-orin \(NVIDIA Jetson Orin\)/);
    expect(table.stdout).toMatch(/memory\s+7620 MiB/);
    const json = await runCli(['device', 'info', '--root', root('rpi-3'), '--json']);
    const parsed = JSON.parse(json.stdout) as { profile: { id: string }; facts: { arch: string; cpuModel: string } };
    expect(parsed.profile.id).toBe('rpi-3');
    expect(parsed.facts).toMatchObject({ arch: 'arm', cpuModel: 'ARMv7 Processor rev 4 (v7l)' });
  });
});
