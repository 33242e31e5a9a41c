// `edgetune deploy bundle`: everything a device needs in one reproducible .tar.gz. The agent as one
// esbuild bundle (plus its inference worker), its own Node for the target's CPU (node-runtime.ts), the
// native modules built for that Node (native.ts), the backbone, systemd units, install.sh, manifest.json
// and SHA256SUMS. No timestamps, sorted entries,
// fixed modes: the same inputs give the same bytes, so the sha256 names the release's contents.
//
//   edgetune-<version>-<target>/
//     edgetune.js  worker.js  package.json   the agent (ESM)
//     pages/agent.json                       the labelling page (HTML with its script and style inline)
//     bin/edgetune                           wrapper: the bundled Node, memory flags, EDGETUNE_MODEL_DIR, EDGETUNE_RELEASE
//     node/bin/node  node/LICENSE            the pinned official Node build for the target
//     models/<backbone file>                 checked against the catalog's sha256
//     node_modules/...                       native modules for <target> only (ELF-checked)
//     edgetune.service  edgetune-update.{service,path}  install.sh  manifest.json  SHA256SUMS

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DeployError } from '../../core/errors.js';
import { DEFAULT_BACKBONE_ID } from '../../runtime/models/catalog.js';
import { defaultCacheDir, resolveModel } from '../../runtime/models/resolve.js';
import { checkVersion } from '../../runtime/release/layout.js';
import { writeDurably } from '../../core/durable.js';
import { loadPage } from '../../core/web-page.js';
import { elfMachine } from './elf.js';
import { nativeFiles } from './native.js';
import { nodeRuntime } from './node-runtime.js';
import { type BundleTarget, targetArch } from './targets.js';
import { commandWrapper, installScript, systemdUnit, updateUnits } from './templates.js';
import { writeTarGz } from './tar.js';

export const BUNDLE_FORMAT = 'edgetune-bundle/1';

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: string;
  target: BundleTarget;
  /** The Node the bundle carries (node/bin/node); its native modules are built for its ABI. */
  node: { version: string; major: number; abi: string };
  backbone: { id: string; file: string; sha256: string; dim: number };
  files: number;
  unpackedBytes: number;
}

export interface BundleOptions {
  target: BundleTarget;
  /** Default: this edgetune's package.json version. */
  version?: string;
  /** Catalog id or model file (default: the default backbone). */
  backbone?: string;
  /** Fetched packages and cross-compiled binaries (default: <cache>/bundle). */
  cacheDir?: string;
  log?: (msg: string) => void;
}

/** What goes into a bundle besides the generated files: path -> bytes. */
export interface BundlePayload {
  target: BundleTarget;
  version: string;
  node: BundleManifest['node'];
  backbone: BundleManifest['backbone'];
  files: Map<string, { data: Uint8Array; executable?: boolean }>;
}

export interface BuiltBundle {
  file: string;
  sha256: string;
  bytes: number;
  manifest: BundleManifest;
}

/** The edgetune checkout (or installed package) this code runs from. */
export function edgetuneRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'edgetune') return dir;
    if (dirname(dir) === dir) throw new DeployError('BUNDLE_NO_ROOT', 'cannot find the edgetune package this command runs from');
  }
}

/** Builds the agent JS, collects the target's native modules and the backbone. */
export async function bundlePayload(options: BundleOptions): Promise<BundlePayload> {
  const root = edgetuneRoot();
  const version = checkVersion(
    options.version ?? (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version,
  );
  const files: BundlePayload['files'] = new Map();
  // Sources are .ts in a checkout and .js in an installed dist/.
  const source = (path: string) => (existsSync(join(root, `${path}.ts`)) ? join(root, `${path}.ts`) : join(root, 'dist', `${path}.js`));
  const result = await build({
    entryPoints: { edgetune: source('cli/bundle-entry'), worker: source('runtime/backbone/worker') },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outdir: '/bundle',
    external: ['onnxruntime-node', 'sharp', 'better-sqlite3', '@tensorflow/tfjs-tflite', '@jsquash/jpeg'],
    // Bundled CommonJS packages call require() for Node's modules; ESM has none of its own.
    banner: {
      js: "import { createRequire as __edgetuneCreateRequire } from 'node:module'; const require = __edgetuneCreateRequire(import.meta.url);",
    },
    legalComments: 'none',
    logLevel: 'silent',
    absWorkingDir: root,
  });
  for (const out of result.outputFiles) files.set(out.path.replace('/bundle/', ''), { data: out.contents });
  // The labelling page, built from agent/page/ with its CSP hashes; edgetune.js reads it from pages/.
  files.set('pages/agent.json', { data: Buffer.from(`${JSON.stringify(await loadPage('agent'))}\n`) });
  files.set('package.json', {
    data: Buffer.from(`${JSON.stringify({ name: 'edgetune-device', version, private: true, type: 'module' }, null, 2)}\n`),
  });

  const model = await resolveModel(options.backbone ?? DEFAULT_BACKBONE_ID);
  const modelFile = `models/${model.manifest.file}`;
  files.set(modelFile, { data: model.bytes });
  const backbone = {
    id: model.manifest.id,
    file: modelFile,
    sha256: createHash('sha256').update(model.bytes).digest('hex'),
    dim: model.manifest.output.dim,
  };

  const cacheDir = options.cacheDir ?? join(defaultCacheDir(), 'bundle');
  const log = options.log ? { log: options.log } : {};
  const node = nodeRuntime(options.target, { cacheDir, ...log });
  files.set('node/bin/node', { data: readFileSync(join(node.dir, 'bin/node')), executable: true });
  files.set('node/LICENSE', { data: readFileSync(join(node.dir, 'LICENSE')) });
  for (const file of nativeFiles({ target: options.target, root, cacheDir, node, ...log })) {
    const mode = statSync(file.source).mode;
    files.set(file.path, { data: readFileSync(file.source), executable: (mode & 0o111) !== 0 });
  }
  return { target: options.target, version, node: { version: node.version, major: node.major, abi: node.abi }, backbone, files };
}

/** Refuses a payload with a native binary for another CPU. */
export function checkBinaries(payload: BundlePayload): { path: string; machine: string }[] {
  const want = targetArch(payload.target);
  const binaries: { path: string; machine: string }[] = [];
  for (const [path, { data }] of payload.files) {
    const machine = elfMachine(data);
    if (!machine) continue;
    if (machine !== want)
      throw new DeployError(
        'BUNDLE_FOREIGN_BINARY',
        `${path} is a ${machine} binary; a ${payload.target} bundle may carry ${want} binaries only`,
      );
    binaries.push({ path, machine });
  }
  return binaries;
}

/** Adds the generated files, checks every binary, and writes <outDir>/edgetune-<version>-<target>.tar.gz. */
export function writeBundle(payload: BundlePayload, outDir: string): BuiltBundle {
  checkVersion(payload.version);
  checkBinaries(payload);
  const files = new Map(payload.files);
  files.set('bin/edgetune', { data: Buffer.from(commandWrapper(payload.version)), executable: true });
  files.set('install.sh', { data: Buffer.from(installScript(payload.version, payload.target)), executable: true });
  files.set('edgetune.service', { data: Buffer.from(systemdUnit(payload.version)) });
  const update = updateUnits(payload.version);
  files.set('edgetune-update.service', { data: Buffer.from(update.service) });
  files.set('edgetune-update.path', { data: Buffer.from(update.path) });
  const unpackedBytes = [...files.values()].reduce((n, f) => n + f.data.length, 0);
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    version: payload.version,
    target: payload.target,
    node: payload.node,
    backbone: payload.backbone,
    files: files.size + 2,
    unpackedBytes,
  };
  files.set('manifest.json', { data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) });
  const sums = [...files.keys()]
    .sort()
    .map((path) => `${createHash('sha256').update(files.get(path)!.data).digest('hex')}  ${path}`)
    .join('\n');
  files.set('SHA256SUMS', { data: Buffer.from(`${sums}\n`) });
  const top = `edgetune-${payload.version}-${payload.target}`;
  const dirs = new Set<string>();
  for (const path of files.keys()) for (let d = dirname(path); d !== '.'; d = dirname(d)) dirs.add(d);
  const archive = writeTarGz([
    { path: top, type: 'dir' },
    ...[...dirs].map((d) => ({ path: `${top}/${d}`, type: 'dir' as const })),
    ...[...files].map(([path, f]) => ({ path: `${top}/${path}`, type: 'file' as const, data: f.data, executable: f.executable ?? false })),
  ]);
  mkdirSync(outDir, { recursive: true });
  const file = resolve(outDir, `${top}.tar.gz`);
  writeDurably(file, archive);
  return { file, sha256: createHash('sha256').update(archive).digest('hex'), bytes: archive.length, manifest };
}

export async function buildBundle(options: BundleOptions & { outDir: string }): Promise<BuiltBundle> {
  return writeBundle(await bundlePayload(options), options.outDir);
}
