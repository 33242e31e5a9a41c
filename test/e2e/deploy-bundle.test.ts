import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BuiltBundle, type BundlePayload, buildBundle, bundlePayload, checkBinaries, writeBundle } from '../../deploy/bundle/build.js';
import { elfMachine } from '../../deploy/bundle/elf.js';
import { readBundleManifest } from '../../deploy/bundle/read.js';
import type { BuiltPage } from '../../core/web-page.js';
import { startAgentProcess, writeAgentConfig } from '../support/agent-process.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';

// Device bundles built for real: esbuild, the target's native modules (npm pack for another CPU's
// sharp, a cross-compiled better-sqlite3), the backbone. Slow the first time on a machine (the arm64
// better-sqlite3 compiles once, about a minute on two cores), cached after.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-bundle-');
afterAll(() => tmp.remove());

// One linux-x64 bundle for the tests that install it (each unpacks its own copy).
let x64: Promise<BuiltBundle> | undefined;
const x64Bundle = () => (x64 ??= buildBundle({ target: 'linux-x64', outDir: join(tmp.path, 'x64') }));

function unpack(file: string, into: string): string[] {
  execFileSync('mkdir', ['-p', into]);
  execFileSync('tar', ['-xzf', file, '-C', into]);
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  return walk(into);
}

function elfFiles(files: string[], base: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) {
    const machine = elfMachine(readFileSync(f));
    if (machine) out[relative(base, f)] = machine;
  }
  return out;
}

describe('edgetune deploy bundle', () => {
  it('the linux-arm64 bundle carries arm64 binaries for every native module and no x64 one (ELF headers)', async () => {
    const bundle = await buildBundle({ target: 'linux-arm64', outDir: join(tmp.path, 'arm64') });
    const files = unpack(bundle.file, join(tmp.path, 'arm64-unpacked'));
    const elves = elfFiles(files, join(tmp.path, 'arm64-unpacked'));
    const top = 'edgetune-0.1.0-linux-arm64/node_modules';
    expect(elves).toMatchObject({
      [`${top}/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node`]: 'arm64',
      [`${top}/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1`]: 'arm64',
      [`${top}/@img/sharp-linux-arm64/lib/sharp-linux-arm64-0.35.5.node`]: 'arm64',
      [`${top}/better-sqlite3/build/Release/better_sqlite3.node`]: 'arm64',
    });
    expect(Object.keys(elves).some((p) => p.includes('sharp-libvips-linux-arm64/lib/libvips-cpp'))).toBe(true);
    expect(new Set(Object.values(elves))).toEqual(new Set(['arm64']));
    expect(files.some((f) => /linux\/x64|linux-x64/.test(f))).toBe(false);
    expect(bundle.manifest).toMatchObject({
      target: 'linux-arm64',
      version: '0.1.0',
      backbone: { id: 'mobilenet_v1_1.0_224_quant_embedding_extractor', dim: 1024 },
    });
    expect(readBundleManifest(bundle.file)).toEqual(bundle.manifest);
  }, 400_000);

  it('is reproducible: the same inputs give the same bundle hash', async () => {
    const a = await buildBundle({ target: 'linux-x64', outDir: join(tmp.path, 'a') });
    const b = await buildBundle({ target: 'linux-x64', outDir: join(tmp.path, 'b') });
    expect(b.sha256).toBe(a.sha256);
    expect(readFileSync(b.file).equals(readFileSync(a.file))).toBe(true);
    const other = await buildBundle({ target: 'linux-x64', version: '0.1.1', outDir: join(tmp.path, 'c') });
    expect(other.sha256).not.toBe(a.sha256);
  }, 120_000);

  it('checks every file against SHA256SUMS when it installs, and refuses a tampered bundle', async () => {
    const bundle = await x64Bundle();
    const dir = join(tmp.path, 'x64-unpacked');
    unpack(bundle.file, dir);
    const release = join(dir, 'edgetune-0.1.0-linux-x64');
    const prefix = join(tmp.path, 'device');
    const out = execFileSync('sh', [join(release, 'install.sh'), '--prefix', prefix, '--activate'], { encoding: 'utf8' });
    expect(out).toContain('edgetune 0.1.0 installed');
    expect(execFileSync('readlink', [join(prefix, 'opt/edgetune/current')], { encoding: 'utf8' }).trim()).toBe('releases/0.1.0');
    execFileSync('sh', ['-c', `echo tampered >> ${join(prefix, 'opt/edgetune/releases/0.1.0/edgetune.js')}`]);
    expect(() =>
      execFileSync('sh', [join(prefix, 'opt/edgetune/releases/0.1.0/install.sh'), '--prefix', prefix], { stdio: 'pipe' }),
    ).toThrow(/SHA256SUMS/);
  }, 120_000);

  it("the installed bundle's agent serves the labelling page built into it, with the page's CSP", async () => {
    const bundle = await x64Bundle();
    const dir = join(tmp.path, 'served-unpacked');
    unpack(bundle.file, dir);
    const prefix = join(tmp.path, 'served-device');
    execFileSync('sh', [join(dir, 'edgetune-0.1.0-linux-x64', 'install.sh'), '--prefix', prefix, '--activate']);
    const release = join(prefix, 'opt/edgetune/releases/0.1.0');
    const built = JSON.parse(readFileSync(join(release, 'pages/agent.json'), 'utf8')) as BuiltPage;
    const config = writeAgentConfig(tmp.path, {
      device: { id: 'bundle-pi' },
      data: { dir: join(tmp.path, 'served-data') },
      http: { port: 0 },
    });
    const agent = await startAgentProcess(config, {}, [join(release, 'bin/edgetune')]);
    try {
      const res = await fetch(`${agent.url}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toContain(`script-src '${built.scriptHash}'`);
      const html = await res.text();
      expect(html).toBe(built.html);
      expect(html).toMatch(/<script>.+<\/script>/s);
      expect(html).not.toContain('main.ts');
    } finally {
      await agent.kill('SIGTERM');
    }
  }, 120_000);

  it('refuses to write a bundle holding a binary for another CPU', async () => {
    const payload: BundlePayload = await bundlePayload({ target: 'linux-x64' });
    const arm = readFileSync(
      join(tmp.path, 'arm64-unpacked/edgetune-0.1.0-linux-arm64/node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
    );
    payload.files.set('node_modules/better-sqlite3/build/Release/better_sqlite3.node', { data: arm });
    expect(() => checkBinaries(payload)).toThrow(/better_sqlite3\.node is a arm64 binary; a linux-x64 bundle may carry x64 binaries only/);
    expect(() => writeBundle(payload, join(tmp.path, 'refused'))).toThrow(expect.objectContaining({ code: 'BUNDLE_FOREIGN_BINARY' }));
  }, 120_000);
});
