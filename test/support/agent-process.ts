// Runs `edgetune agent` as a real child process, the way systemd does, so tests can SIGKILL it.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnEdgetune } from './cli.js';

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
export async function startAgentProcess(configPath: string, env: Record<string, string> = {}, command?: string[]): Promise<AgentProcess> {
  const run = spawnEdgetune(['agent', '--config', configPath], env, command);
  const started = await run.waitFor('agent started', () => run.logs.find((l) => l.msg === 'agent started'), 120_000);
  return { child: run.child, url: started.url as string, logs: run.logs, kill: run.kill };
}
