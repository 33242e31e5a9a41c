import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltBundle, buildBundle } from '../../deploy/bundle/build.js';
import type { BundleTarget } from '../../deploy/bundle/targets.js';
import { emulatorFor } from '../../deploy/try/emulator.js';
import { prepareTry } from '../../deploy/try/try.js';
import { type AgentProcess, startAgentProcess, writeAgentConfig } from '../support/agent-process.js';
import { CHECKOUT_EDGETUNE, runCli, spawnEdgetune } from '../support/cli.js';
import { FLOWERS_DIR, IMAGES_DIR, MODEL_DIR, REPO_ROOT, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';
import { cosine } from '../../runtime/eval/metrics.js';

// ARM bundles run for real on this x64 machine: each bundle's own Node under qemu-user, in a private mount
// namespace presenting a Raspberry Pi's /proc files (needs root, qemu-user-static and the cross loader
// libraries). Slow: Node starts in about a second emulated, an embedding takes 0.4 s (arm64 onnxruntime)
// to 2 s (armv7 TFLite WASM); the first build on a machine also cross-compiles better-sqlite3.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-try-');
afterAll(() => tmp.remove());
const PHOTO = join(IMAGES_DIR, 'hot_dog.jpg');

interface HostEmbedding {
  results: { embedding: number[] }[];
}

function tryCli(bundle: BuiltBundle, board: string, args: string[]) {
  return runCli(['deploy', 'try', bundle.file, '--board', board, '--cache-dir', join(tmp.path, 'try-cache'), '--', ...args], {
    XDG_CACHE_HOME: join(tmp.path, 'xdg'),
  });
}

const CASES: { target: BundleTarget; board: string; profile: string; engine: 'onnx' | 'tflite' }[] = [
  { target: 'linux-arm64', board: 'rpi-4', profile: 'rpi-4', engine: 'onnx' },
  { target: 'linux-armv7', board: 'rpi-zero-2w', profile: 'rpi-zero-2w', engine: 'tflite' },
];

describe.each(CASES)('edgetune deploy try, $target bundle on board $board', ({ target, board, profile, engine }) => {
  let bundle: BuiltBundle;
  beforeAll(async () => {
    bundle = await buildBundle({ target, outDir: join(tmp.path, target) });
  }, 600_000);

  it('carries its own Node for the CPU, and `device info` under emulation names the presented board', async () => {
    expect(bundle.manifest.node).toEqual(
      target === 'linux-armv7' ? { version: '20.11.0', major: 20, abi: '115' } : { version: '20.20.2', major: 20, abi: '115' },
    );
    const r = await tryCli(bundle, board, ['device', 'info', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as { profile: { id: string; engine: string }; facts: { arch: string; model: string } };
    expect(info.profile).toMatchObject({ id: profile, engine });
    expect(info.facts.arch).toBe(target === 'linux-armv7' ? 'arm' : 'arm64');
    expect(info.facts.model).toBe(
      readFileSync(join(REPO_ROOT, 'devices/boards', board, 'proc/device-tree/model'), 'latin1').replace(/\0+$/, ''),
    );
  }, 300_000);

  it("`embed --json PHOTO` gives this machine's embedding of the photo", async () => {
    const [emulated, host] = await Promise.all([
      tryCli(bundle, board, ['embed', '--json', '--no-cache', PHOTO]),
      runCli(['embed', '--json', '--no-cache', '--engine', engine, PHOTO], { XDG_CACHE_HOME: join(tmp.path, 'xdg-host') }),
    ]);
    expect(emulated.code, emulated.stderr).toBe(0);
    const a = (JSON.parse(emulated.stdout) as HostEmbedding).results[0]!.embedding;
    const b = (JSON.parse(host.stdout) as HostEmbedding).results[0]!.embedding;
    expect(a).toHaveLength(1024);
    expect(cosine(a, b)).toBeGreaterThanOrEqual(0.999);
    // The same WASM runs the same instructions on every CPU: bit for bit.
    if (engine === 'tflite') expect(a).toEqual(b);
  }, 300_000);

  it("the bundle's agent takes labelled photos, trains a head and answers predictions over HTTP", async () => {
    const dir = join(tmp.path, `agent-${target}`);
    const inbox = join(dir, 'inbox');
    const classes = ['daisy', 'sunflower'];
    const photos = (c: string) => readdirSync(join(FLOWERS_DIR, c)).sort();
    for (const c of classes) {
      mkdirSync(join(inbox, c), { recursive: true });
      for (const f of photos(c).slice(0, 4)) copyFileSync(join(FLOWERS_DIR, c, f), join(inbox, c, f));
    }
    const config = writeAgentConfig(dir, {
      device: { id: `emulated-${board}` },
      data: { dir: join(dir, 'data'), holdoutFraction: 0.2 },
      head: { retrainAfterLabels: 0, tolerance: 1, unknownThreshold: 0 },
      sources: { inbox: { dir: inbox, pollMs: 100 } },
      http: { port: 0 },
    });
    // The bundle's bin/edgetune inside the presenting namespace; startAgentProcess appends `agent --config`.
    const prepared = await prepareTry({ bundle: bundle.file, board, args: [], cacheDir: join(tmp.path, 'try-cache') });
    let agent: AgentProcess | undefined;
    try {
      agent = await startAgentProcess(
        config,
        { EDGETUNE_EMULATOR: prepared.env.EDGETUNE_EMULATOR!, XDG_CACHE_HOME: join(tmp.path, 'xdg') },
        prepared.command,
      );
      const started = agent.logs.find((l) => l.msg === 'agent started')!;
      expect(started).toMatchObject({ profile, engine });
      const api = async <T>(path: string, init?: RequestInit) => (await (await fetch(`${agent!.url}${path}`, init)).json()) as T;
      await until(
        'eight labelled photos embedded',
        async () => {
          const metrics = await (await fetch(`${agent!.url}/metrics`)).text();
          return Number(/^edgetune_embedded_total (\d+)$/m.exec(metrics)?.[1]) >= 8;
        },
        240_000,
        500,
      );
      const trained = await api<{ kept: boolean; version: number }>('/api/train', { method: 'POST' });
      expect(trained).toMatchObject({ kept: true, version: 1 });
      const truth = new Map<string, string>();
      for (const c of classes) {
        const file = photos(c)[40]!;
        const sample = await api<{ sample: { id: string } }>('/api/samples', {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: readFileSync(join(FLOWERS_DIR, c, file)),
        });
        truth.set(sample.sample.id, c);
      }
      const predicted = await until(
        'predictions for both uploads',
        async () => {
          const got = await Promise.all(
            [...truth.keys()].map((id) => api<{ sample: { prediction?: string | null } }>(`/api/samples/${id}`)),
          );
          return got.every((g) => g.sample.prediction) && got.map((g) => g.sample.prediction);
        },
        120_000,
        500,
      );
      expect(predicted).toEqual([...truth.values()]);
    } finally {
      await agent?.kill('SIGTERM');
    }
  }, 600_000);
});

describe('edgetune deploy try: what this machine lacks', () => {
  it('names the Debian package when qemu is not installed', () => {
    expect(() => emulatorFor('linux-arm64', { path: join(tmp.path, 'empty-path') })).toThrow(
      expect.objectContaining({
        code: 'TRY_NO_QEMU',
        message: expect.stringMatching(/qemu-aarch64-static is not installed.*apt-get install qemu-user-static/),
      }),
    );
  });

  it('names the Debian packages of missing loader libraries', () => {
    const sysroot = join(tmp.path, 'sysroot');
    mkdirSync(join(sysroot, 'lib'), { recursive: true });
    expect(() => emulatorFor('linux-armv7', { sysroot })).toThrow(
      expect.objectContaining({
        code: 'TRY_NO_SYSROOT',
        message: expect.stringContaining(
          'apt-get install libc6-armhf-cross libstdc++6-armhf-cross libgcc-s1-armhf-cross libatomic1-armhf-cross',
        ),
      }),
    );
  });

  it('says so when it cannot create the mount namespace (not root), and unpacks nothing', async () => {
    const bundle = join(tmp.path, 'linux-armv7', 'edgetune-0.1.0-linux-armv7.tar.gz');
    const built = existsSync(bundle) ? bundle : (await buildBundle({ target: 'linux-armv7', outDir: join(tmp.path, 'linux-armv7') })).file;
    const cache = join(tmp.path, 'nobody-cache');
    chmodSync(tmp.path, 0o755); // the bundle stays readable to the unprivileged user
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', ...CHECKOUT_EDGETUNE];
    const r = spawnEdgetune(['deploy', 'try', built, '--cache-dir', cache, '--', 'device', 'info'], { HOME: '/tmp' }, nobody);
    const code = await r.exited;
    expect(r.stderr).toMatch(/cannot create a private mount namespace to present board rpi-3 \(unshare -m: .*\): run as root/);
    expect(r.stderr).toContain('[TRY_NO_NAMESPACE]');
    expect(code).not.toBe(0);
    expect(existsSync(cache)).toBe(false);
  }, 600_000);
});
