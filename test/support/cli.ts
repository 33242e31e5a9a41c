// Runs the real `edgetune` command in a child process, the way a person or a script does.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { MODEL_DIR, REPO_ROOT } from './paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bin/edgetune.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, EDGETUNE_MODEL_DIR: MODEL_DIR, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
