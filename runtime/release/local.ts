// The Exec for the device itself: a shell script run here (an agent update applies a release locally).

import { spawn } from 'node:child_process';
import type { Exec, ExecResult } from './activate.js';

export interface ShellOptions {
  /** Words put before `/bin/sh -c SCRIPT` (e.g. a namespace to run it in). */
  prefix?: string[];
  env?: NodeJS.ProcessEnv;
}

/** An Exec that runs each script with /bin/sh here, optionally behind `prefix` and with `env`. */
export function shellExec(shell: ShellOptions = {}): Exec {
  const [program, ...args] = [...(shell.prefix ?? []), '/bin/sh', '-c'];
  return {
    run(script: string, options: { timeoutMs?: number } = {}): Promise<ExecResult> {
      return new Promise((resolve, reject) => {
        const child = spawn(program!, [...args, script], {
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: options.timeoutMs ?? 120_000,
          env: shell.env ?? process.env,
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    },
  };
}

export const localExec: Exec = shellExec();
