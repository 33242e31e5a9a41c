// Runs `edgetune agent` as a real child process, the way systemd does, so tests can SIGKILL it.

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_DIR, REPO_ROOT } from './paths.js';

export interface AgentProcess {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function writeAgentConfig(dir: string, config: Record<string, unknown>): string {
  const path = join(dir, 'agent.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Starts the checkout's agent, or `command` (an installed bundle's bin/edgetune). */
export function startAgentProcess(
  configPath: string,
  env: Record<string, string> = {},
  command: string[] = [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bin/edgetune.ts')],
): Promise<AgentProcess> {
  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, [...args, 'agent', '--config', configPath], {
    cwd: REPO_ROOT,
    env: { ...process.env, EDGETUNE_MODEL_DIR: MODEL_DIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  // 'close', not 'exit': the last log lines are read by then.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not a log line
        }
        logs.push(entry);
        if (entry.msg === 'agent started') resolve({ child, url: entry.url as string, logs, kill });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    void exited.then((code) => reject(new Error(`agent exited with ${code} before it started: ${stderr.slice(-2000)}`)));
  });
}
