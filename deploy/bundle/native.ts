// The runtime packages a bundle carries beside its JS: the native modules, built for the TARGET's CPU and
// the bundle's own Node (node-runtime.ts), and the pure-JS packages they load. esbuild cannot inline a
// .node file, so these stay as node_modules/.
//
//   onnxruntime-node  ships every platform's binary inside the package: keep only bin/napi-v6/linux/<arch>;
//                     none for 32-bit ARM, whose bundle runs the TFLite WASM engine only
//   sharp             per-platform @img/sharp-<platform> and @img/sharp-libvips-<platform> packages, taken
//                     from node_modules when the host is the target, else fetched with `npm pack`
//   better-sqlite3    no prebuilt binary is reachable offline: the host's build when the host is the target
//                     and its Node has the bundle's ABI, else cross-compiled once against the bundled
//                     Node's headers (node-gyp + the target's g++) and cached

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { DeployError } from '../../core/errors.js';
import type { NodeRuntime } from './node-runtime.js';
import { npmPackage } from './npm-pack.js';
import { type BundleTarget, hostTarget, sharpPlatform, targetArch } from './targets.js';

/** A file for the bundle: where it comes from and where it goes under node_modules/. */
export interface BundleFile {
  source: string;
  path: string;
}

/** Packages needed only to install, never at run time. */
const INSTALL_ONLY = new Set(['prebuild-install', 'adm-zip', 'global-agent']);
/** Never shipped: docs, types, maps, sources. */
const NOT_SHIPPED = /(^|\/)(README[^/]*|CHANGELOG[^/]*|[^/]*\.d\.[cm]?ts|[^/]*\.map|[^/]*\.md)$/i;

export function findPackageDir(name: string, from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir)
      throw new DeployError('BUNDLE_PACKAGE_MISSING', `package ${name} is not installed under ${from} (run npm ci)`);
  }
}

function readPackage(dir: string): { name: string; version: string; dependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
  };
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...walk(full, base));
    } else if (entry.isFile()) out.push(relative(base, full));
  }
  return out;
}

/** Files of one package that pass `keep`, placed under node_modules/<name>/. */
function packageFiles(dir: string, name: string, keep: (rel: string) => boolean = () => true): BundleFile[] {
  return walk(dir)
    .filter((rel) => !NOT_SHIPPED.test(rel) && keep(rel))
    .map((rel) => ({ source: join(dir, rel), path: `node_modules/${name}/${rel}` }));
}

/** A pure-JS package and its runtime dependencies, found the way Node's resolver would. */
function withDependencies(name: string, from: string, seen: Set<string>): BundleFile[] {
  if (seen.has(name) || INSTALL_ONLY.has(name)) return [];
  seen.add(name);
  const dir = findPackageDir(name, from);
  const files = packageFiles(dir, name);
  for (const dep of Object.keys(readPackage(dir).dependencies ?? {})) files.push(...withDependencies(dep, dir, seen));
  return files;
}

export interface NativeOptions {
  target: BundleTarget;
  /** The edgetune checkout or installation whose node_modules are used. */
  root: string;
  /** Fetched packages and cross-compiled binaries (kept between builds). */
  cacheDir: string;
  /** The Node the bundle carries: native modules are built for its ABI. */
  node: NodeRuntime;
  log?: (msg: string) => void;
}

/** Every runtime file under node_modules/ for the target. */
export function nativeFiles(options: NativeOptions): BundleFile[] {
  const { target, root } = options;
  const arch = targetArch(target);
  const seen = new Set<string>();
  const files: BundleFile[] = [];

  if (arch !== 'arm') {
    const ort = findPackageDir('onnxruntime-node', root);
    seen.add('onnxruntime-node');
    files.push(
      ...packageFiles(
        ort,
        'onnxruntime-node',
        (rel) => rel === 'package.json' || rel.startsWith('dist/') || rel.startsWith(`bin/napi-v6/linux/${arch}/`),
      ),
    );
    for (const dep of Object.keys(readPackage(ort).dependencies ?? {})) files.push(...withDependencies(dep, ort, seen));
  }

  const sharp = findPackageDir('sharp', root);
  seen.add('sharp');
  files.push(...packageFiles(sharp, 'sharp', (rel) => rel === 'package.json' || rel.startsWith('dist/') || rel.startsWith('lib/')));
  for (const dep of Object.keys(readPackage(sharp).dependencies ?? {})) files.push(...withDependencies(dep, sharp, seen));
  const optional = (JSON.parse(readFileSync(join(sharp, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> })
    .optionalDependencies;
  for (const name of [`@img/sharp-${sharpPlatform(target)}`, `@img/sharp-libvips-${sharpPlatform(target)}`]) {
    const version = optional[name];
    if (!version) throw new DeployError('BUNDLE_TARGET_UNSUPPORTED', `sharp ${readPackage(sharp).version} has no ${name} package`);
    files.push(...packageFiles(platformPackage(name, version, sharp, options), name));
  }

  const sqlite = findPackageDir('better-sqlite3', root);
  seen.add('better-sqlite3');
  files.push(...packageFiles(sqlite, 'better-sqlite3', (rel) => rel === 'package.json' || rel.startsWith('lib/')));
  files.push({ source: betterSqliteBinary(sqlite, options), path: 'node_modules/better-sqlite3/build/Release/better_sqlite3.node' });
  for (const dep of Object.keys(readPackage(sqlite).dependencies ?? {})) files.push(...withDependencies(dep, sqlite, seen));

  // The TFLite engine loads only the SIMD WASM builds from the package folder (never its JS API).
  const tflite = findPackageDir('@tensorflow/tfjs-tflite', root);
  files.push(
    ...packageFiles(tflite, '@tensorflow/tfjs-tflite', (rel) => rel === 'package.json' || /^wasm\/tflite_web_api_cc_simd/.test(rel)),
  );
  // Small JPEGs are decoded by this WebAssembly build (runtime/image/small-jpeg.ts), loaded from its folder.
  const jpeg = findPackageDir('@jsquash/jpeg', root);
  files.push(
    ...packageFiles(
      jpeg,
      '@jsquash/jpeg',
      (rel) => rel === 'package.json' || rel === 'LICENSE' || rel.startsWith('codec/dec/mozjpeg_dec.'),
    ),
  );
  return files;
}

/** An @img/* package at an exact version: installed here if it matches, else `npm pack`ed into the cache. */
function platformPackage(name: string, version: string, from: string, options: NativeOptions): string {
  try {
    const dir = findPackageDir(name, from);
    if (readPackage(dir).version === version) return dir;
  } catch {
    // not installed for this host: fetch it below
  }
  return npmPackage(name, version, { cacheDir: options.cacheDir, ...(options.log ? { log: options.log } : {}) });
}

const CROSS: Record<string, { prefix: string; apt: string }> = {
  arm64: { prefix: 'aarch64-linux-gnu-', apt: 'g++-aarch64-linux-gnu' },
  arm: { prefix: 'arm-linux-gnueabihf-', apt: 'g++-arm-linux-gnueabihf' },
  x64: { prefix: 'x86_64-linux-gnu-', apt: 'g++-x86-64-linux-gnu' },
};

/** better_sqlite3.node for the target's CPU and the bundled Node's ABI. */
function betterSqliteBinary(dir: string, options: NativeOptions): string {
  const arch = targetArch(options.target);
  if (hostTarget() === options.target && process.versions.modules === options.node.abi) {
    const built = join(dir, 'build/Release/better_sqlite3.node');
    if (!existsSync(built))
      throw new DeployError('BUNDLE_PACKAGE_MISSING', `${built} is missing: better-sqlite3 was not built (npm rebuild better-sqlite3)`);
    return built;
  }
  const version = readPackage(dir).version;
  const cached = join(options.cacheDir, 'native', `better-sqlite3-${version}-node${options.node.version}-linux-${arch}.node`);
  if (existsSync(cached)) return cached;
  const cross = CROSS[arch]!;
  try {
    execFileSync('sh', ['-c', `command -v ${cross.prefix}g++`], { stdio: 'ignore' });
  } catch {
    throw new DeployError(
      'BUNDLE_NO_CROSS_COMPILER',
      `better-sqlite3 has no prebuilt binary for linux-${arch} here and ${cross.prefix}g++ is missing: apt-get install ${cross.apt}`,
    );
  }
  // Compiled against the bundled Node's own headers; node-gyp itself comes with this machine's npm.
  const nodeDir = options.node.dir;
  if (!existsSync(join(nodeDir, 'include/node/node.h')))
    throw new DeployError('BUNDLE_NO_HEADERS', `Node's headers are not in ${nodeDir}/include/node: cannot compile better-sqlite3`);
  const nodeGyp = join(dirname(dirname(process.execPath)), 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  const work = join(options.cacheDir, 'native', `build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  options.log?.(`compiling better-sqlite3 ${version} for linux-${arch}, Node ${options.node.version} (once; cached)`);
  try {
    for (const part of ['package.json', 'binding.gyp', 'deps', 'src']) cpSync(join(dir, part), join(work, part), { recursive: true });
    execFileSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--arch=${arch}`, `--nodedir=${nodeDir}`, '-j', '2'], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        // npm exports its own nodedir setting to scripts (npm_config_nodedir=/usr under npx), and node-gyp
        // prefers it to --nodedir: without this the host's headers would be used.
        npm_config_nodedir: nodeDir,
        CC: `${cross.prefix}gcc`,
        CXX: `${cross.prefix}g++`,
        LINK: `${cross.prefix}g++`,
        AR: `${cross.prefix}ar`,
      },
      maxBuffer: 64 * 2 ** 20,
    });
    mkdirSync(dirname(cached), { recursive: true });
    renameSync(join(work, 'build/Release/better_sqlite3.node'), cached);
  } catch (err) {
    throw new DeployError(
      'BUNDLE_BUILD_FAILED',
      `cross-compiling better-sqlite3 for linux-${arch} failed: ${((err as { stderr?: Buffer }).stderr?.toString() ?? (err as Error).message).slice(-1500)}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (statSync(cached).size === 0) throw new DeployError('BUNDLE_BUILD_FAILED', `${cached} is empty`);
  return cached;
}
