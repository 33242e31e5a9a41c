// The Exec for the device itself: a shell script run here (an agent update applies a release locally).

import { spawn } from 'node:child_process';
import { DeployError } from '../../core/errors.js';
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
        const timeoutMs = options.timeoutMs ?? 120_000;
        const child = spawn(program!, [...args, script], { stdio: ['ignore', 'pipe', 'pipe'], env: shell.env ?? process.env });
        // As the SSH Exec does: a command over its time is killed and rejected as DEPLOY_TIMEOUT.
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          if (timedOut) reject(new DeployError('DEPLOY_TIMEOUT', `this device: a command took longer than ${timeoutMs} ms`));
          else resolve({ code: code ?? -1, stdout, stderr });
        });
      });
    },
  };
}

export const localExec: Exec = shellExec();
