// Device bundles: build time, size (packed and unpacked), native binaries per CPU, and whether two
// builds give the same sha256; and the time to unpack and install one on this machine (install.sh
// checks every file against SHA256SUMS).
//
//   npm run bench -- deploy [--target linux-arm64,linux-x64] [--json]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bundlePayload, writeBundle } from '../deploy/bundle/build.js';
import { elfMachine } from '../deploy/bundle/elf.js';
import type { BundleTarget } from '../deploy/bundle/targets.js';
import { installScript } from '../runtime/release/activate.js';
import { releaseLayout } from '../runtime/release/layout.js';
import { printTable } from './table.js';

const { values } = parseArgs({
  options: { target: { type: 'string', default: 'linux-arm64,linux-armv7,linux-x64' }, json: { type: 'boolean', default: false } },
});
const work = mkdtempSync(join(tmpdir(), 'edgetune-bench-deploy-'));
const rows: Record<string, unknown>[] = [];
try {
  for (const target of values.target.split(',') as BundleTarget[]) {
    const builds = [];
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const payload = await bundlePayload({ target });
      const bundle = writeBundle(payload, join(work, `${target}-${i}`));
      builds.push({ ms: performance.now() - started, bundle, payload });
    }
    const { bundle, payload } = builds[1]!;
    const machines: Record<string, number> = {};
    for (const { data } of payload.files.values()) {
      const m = elfMachine(data);
      if (m) machines[m] = (machines[m] ?? 0) + 1;
    }
    let installMs: number | null = null;
    if (target === `linux-${process.arch}`) {
      const layout = releaseLayout(join(work, `${target}-root`));
      const started = performance.now();
      execFileSync('sh', ['-c', `mkdir -p ${layout.releases} && ${installScript(layout, bundle.file, bundle.manifest.version)}`]);
      installMs = performance.now() - started;
    }
    rows.push({
      target,
      bytes: bundle.bytes,
      unpackedBytes: bundle.manifest.unpackedBytes,
      files: bundle.manifest.files,
      nativeBinaries: machines,
      buildMs: Math.round(builds[1]!.ms),
      firstBuildMs: Math.round(builds[0]!.ms),
      reproducible: builds[0]!.bundle.sha256 === builds[1]!.bundle.sha256,
      sha256: bundle.sha256,
      installMs: installMs === null ? null : Math.round(installMs),
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (values.json) console.log(JSON.stringify(rows, null, 2));
else {
  const mb = (n: unknown) => `${(Number(n) / 2 ** 20).toFixed(1)} MB`;
  printTable(
    'device bundles (edgetune deploy bundle)',
    ['target', 'bundle', 'unpacked', 'files', 'ELF binaries', 'build', 'same sha256 twice', 'unpack + install here'],
    rows.map((r) => [
      String(r.target),
      mb(r.bytes),
      mb(r.unpackedBytes),
      String(r.files),
      Object.entries(r.nativeBinaries as Record<string, number>)
        .map(([m, n]) => `${n} ${m}`)
        .join(', '),
      `${(Number(r.buildMs) / 1000).toFixed(1)} s`,
      r.reproducible ? `yes (${String(r.sha256).slice(0, 12)}…)` : 'NO',
      r.installMs === null ? '-' : `${(Number(r.installMs) / 1000).toFixed(1)} s`,
    ]),
  );
}
