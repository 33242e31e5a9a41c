// Runs the real `edgetune` command in a child process, the way a person, a script or systemd does. Every
// test that starts `edgetune` goes through spawnEdgetune.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { until } from '../../core/wait.js';
import { MODEL_DIR, REPO_ROOT } from './paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface EdgetuneProcess {
  child: ChildProcess;
  /** Everything written so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Every JSON log line on stdout so far. */
  logs: Record<string, unknown>[];
  /** The exit code (-1 for a signal), once all output is read. */
  exited: Promise<number>;
  /** Waits until `found` gives a value; fails at once, with the last of stderr, if the process exits first. */
  waitFor<T>(what: string, found: () => T | undefined | null | false, timeoutMs?: number): Promise<T>;
  /** Sends `signal` if it still runs, and resolves with the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number>;
}

/** The checkout's command, run from its TypeScript source. */
export const CHECKOUT_EDGETUNE = [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bin/edgetune.ts')];

/**
 * Starts `edgetune ARGS`: the checkout's, or `command` (an installed bundle's bin/edgetune, or CHECKOUT_EDGETUNE behind a prefix
 * such as setpriv).
 */
export function spawnEdgetune(args: string[], env: Record<string, string> = {}, command: string[] = CHECKOUT_EDGETUNE): EdgetuneProcess {
  const [program, ...programArgs] = command as [string, ...string[]];
  const child = spawn(program, [...programArgs, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, EDGETUNE_MODEL_DIR: MODEL_DIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  let exitCode: number | undefined;
  const logs: Record<string, unknown>[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stdout += text;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // 'close', not 'exit': the last output is read by then.
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve((exitCode = code ?? -1)));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    logs,
    exited,
    waitFor: (what, found, timeoutMs) =>
      until(
        what,
        () => {
          const value = found();
          if (value) return value;
          if (exitCode !== undefined) throw new Error(`edgetune ${args[0]} exited with ${exitCode} before ${what}: ${stderr.slice(-2000)}`);
          return undefined;
        },
        timeoutMs,
      ),
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const run = spawnEdgetune(args, env);
  const code = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}
