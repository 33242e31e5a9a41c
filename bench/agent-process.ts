// An `edgetune agent` child process for the benches, started the way the systemd unit starts it (the
// agent's Node flags and environment unless told otherwise), and its memory read from /proc.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareTry } from '../deploy/try/try.js';
import { defaultCacheDir } from '../runtime/models/resolve.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../runtime/release/node-flags.js';

export interface Running {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const compiled = !import.meta.url.endsWith('.ts');
/** This checkout's command. */
export const CLI = compiled ? resolve(here, '../bin/edgetune.js') : resolve(here, '../bin/edgetune.ts');

interface AgentProcessOptions {
  env?: Record<string, string>;
  nodeDefaults?: boolean;
  cli?: string;
  /** Run this bundle's own agent under `deploy try`, presenting the board. */
  bundle?: { file: string; board: string };
}

async function spawnAgent(configPath: string, options: AgentProcessOptions): Promise<ChildProcess> {
  if (options.bundle) {
    const tried = await prepareTry({
      bundle: options.bundle.file,
      board: options.bundle.board,
      args: ['agent', '--config', configPath],
      cacheDir: join(defaultCacheDir(), 'try'),
      env: { ...process.env, ...options.env },
    });
    // unshare, sh and bin/edgetune all exec: the pid is the emulator running the bundle's Node.
    return spawn(tried.command[0]!, tried.command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: tried.env });
  }
  const cli = options.cli ?? CLI;
  const flags = options.nodeDefaults ? [] : AGENT_NODE_FLAGS;
  return spawn(process.execPath, [...flags, ...(cli.endsWith('.ts') ? ['--import', 'tsx'] : []), cli, 'agent', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(options.nodeDefaults ? {} : AGENT_ENV), ...options.env },
  });
}

export async function startAgentProcess(config: Record<string, unknown>, dir: string, options: AgentProcessOptions = {}): Promise<Running> {
  const path = join(dir, 'agent.json');
  writeFileSync(path, JSON.stringify(config));
  const child = await spawnAgent(path, options);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n').slice(0, -1)) {
        const url = /"msg":"agent started".*"url":"([^"]+)"/.exec(line)?.[1];
        if (url) resolve({ child, url, stop: async () => (child.kill('SIGTERM'), exited) });
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
    void exited.then(() => reject(new Error('agent exited before it started')));
  });
}

export function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
