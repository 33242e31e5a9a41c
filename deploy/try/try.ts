// `edgetune deploy try BUNDLE [--board ID] -- ARGS`: runs a bundle's own edgetune on this machine, under
// qemu-user when the bundle is for another CPU, in a private mount namespace that presents the chosen
// board: its /proc/cpuinfo and /proc/meminfo bind-mounted over this machine's, its device-tree model in a
// tmpfs on /sys/firmware (the folder /proc/device-tree links to on a real board). onnxruntime's CPU
// detection, `device info` and the agent then see that board. Nothing outside the namespace changes.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeployError } from '../../core/errors.js';
import { boardIds, boardRoot } from '../../devices/boards.js';
import { shq } from '../../runtime/release/layout.js';
import { type BundleManifest } from '../bundle/build.js';
import { readBundleManifest } from '../bundle/read.js';
import type { BundleTarget } from '../bundle/targets.js';
import { type EmulatorOptions, emulatorFor } from './emulator.js';

/** The board presented when none is named: one each bundle is commonly flashed to. */
export const DEFAULT_BOARD: Record<BundleTarget, string> = {
  'linux-arm64': 'rpi-4',
  'linux-armv7': 'rpi-3',
  'linux-x64': 'generic-x64',
};

export interface TryOptions extends EmulatorOptions {
  bundle: string;
  board?: string;
  args: string[];
  /** Unpacked bundles, one folder per sha256 (default: <cache>/try). */
  cacheDir: string;
  env?: NodeJS.ProcessEnv;
  /** Default 'inherit'. */
  stdio?: 'inherit' | 'pipe';
}

export interface PreparedTry {
  manifest: BundleManifest;
  release: string;
  board: string;
  /** The program and arguments that run the bundle's edgetune with ARGS. */
  command: string[];
  env: NodeJS.ProcessEnv;
  describe: string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The bundle unpacked once into <cacheDir>/<sha256>/ (a partial unpack is never used). */
export async function unpackCached(bundle: string, manifest: BundleManifest, cacheDir: string): Promise<string> {
  const dir = join(cacheDir, await sha256File(bundle));
  const release = join(dir, `edgetune-${manifest.version}-${manifest.target}`);
  if (existsSync(join(dir, '.unpacked'))) return release;
  const work = `${dir}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const tar = spawnSync('tar', ['-xzf', bundle, '-C', work], { encoding: 'utf8' });
  if (tar.status !== 0) {
    rmSync(work, { recursive: true, force: true });
    throw new DeployError('BUNDLE_UNREADABLE', `${bundle}: cannot unpack (${tar.stderr.trim()})`);
  }
  writeFileSync(join(work, '.unpacked'), '');
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  return release;
}

/** Mounts the board over this machine's files, then runs "$@"; for sh -c inside `unshare -m`. */
function presentBoardScript(board: string): string {
  const lines = ['set -e', `board=${shq(board)}`];
  for (const file of ['proc/cpuinfo', 'proc/meminfo'])
    if (existsSync(join(board, file))) lines.push(`mount --bind "$board/${file}" /${file}`);
  if (existsSync(join(board, 'proc/device-tree/model')))
    lines.push(
      'mount -t tmpfs -o size=64k,mode=0755 edgetune-board /sys/firmware',
      'mkdir -p /sys/firmware/devicetree/base',
      'cp "$board/proc/device-tree/model" /sys/firmware/devicetree/base/model',
    );
  lines.push('exec "$@"');
  return lines.join('\n');
}

/** Fails with TRY_NO_NAMESPACE when this process may not create a mount namespace. */
export function checkNamespace(board: string): void {
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  if (probe.status === 0) return;
  const why = probe.error ? `${probe.error.message} (apt-get install util-linux)` : probe.stderr.trim() || `exit ${probe.status}`;
  throw new DeployError(
    'TRY_NO_NAMESPACE',
    `cannot create a private mount namespace to present board ${board} (unshare -m: ${why}): run as root, or in a container with CAP_SYS_ADMIN`,
  );
}

/** The words that run a program (the words after them) in a private mount namespace presenting `board`. */
export function presentingBoard(board: string): string[] {
  const root = boardRoot(board);
  if (!root) throw new DeployError('TRY_UNKNOWN_BOARD', `--board: no board "${board}"; boards: ${boardIds().join(', ')}`);
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', presentBoardScript(root), 'edgetune-try'];
}

export async function prepareTry(options: TryOptions): Promise<PreparedTry> {
  const manifest = readBundleManifest(options.bundle);
  const emulator = emulatorFor(manifest.target, options);
  const board = options.board ?? DEFAULT_BOARD[manifest.target];
  const presenting = presentingBoard(board);
  checkNamespace(board);
  const release = await unpackCached(options.bundle, manifest, options.cacheDir);
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), EDGETUNE_EMULATOR: emulator.command.join(' ') };
  return {
    manifest,
    release,
    board,
    command: [...presenting, join(release, 'bin/edgetune'), ...options.args],
    env,
    describe: `edgetune ${manifest.version} (${manifest.target}, Node ${manifest.node.version}) ${emulator.describe}, presenting board ${board}`,
  };
}

/** Runs the bundle's edgetune with the options' args; resolves to its exit code. */
export async function tryBundle(options: TryOptions): Promise<number> {
  const prepared = await prepareTry(options);
  const [program, ...args] = prepared.command;
  const child = spawn(program!, args, { stdio: options.stdio ?? 'inherit', env: prepared.env });
  return await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
