// The verbs that talk to a running console through its web API (it writes web.json in its folder):
// the client, and following a rollout's progress until its summary.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleError } from '../../core/errors.js';
import { errorCodeOr } from '../../core/error-catalogue.js';
import type { RolloutProgress } from '../../console/rollout-progress.js';

export interface ConsoleApi {
  origin: string;
  /** JSON in, JSON out; an error reply becomes a ConsoleError with the console's code and message. */
  call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** A file's bytes; an error reply becomes a ConsoleError. */
  download(path: string): Promise<Buffer>;
}

export function consoleApi(dir: string, readJsonFile: (file: string) => Record<string, unknown>): ConsoleApi {
  const where = join(dir, 'web.json');
  if (!existsSync(where))
    throw new ConsoleError(
      'CONSOLE_NOT_RUNNING',
      `${where} does not exist: start the console with its web API (edgetune console start) first`,
    );
  const { origin } = readJsonFile(where);
  if (typeof origin !== 'string') throw new ConsoleError('CONSOLE_BAD_DIR', `${where}: field "origin" is missing`);
  const token = readFileSync(join(dir, 'web-token'), 'utf8').trim();
  const headers = { authorization: `Bearer ${token}` };
  return {
    origin,
    async download(path: string) {
      const response = await fetch(new URL(path, origin), { headers });
      if (!response.ok) {
        const json = (await response.json().catch(() => ({}))) as { error?: string; code?: string };
        throw new ConsoleError(errorCodeOr(json.code, 'CONSOLE_REFUSED'), json.error ?? `HTTP ${response.status}`);
      }
      return Buffer.from(await response.arrayBuffer());
    },
    async call<T>(method: string, path: string, body?: unknown) {
      const response = await fetch(new URL(path, origin), {
        method,
        headers: { ...headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = (await response.json()) as T & { error?: string; code?: string };
      if (!response.ok) throw new ConsoleError(errorCodeOr(json.code, 'CONSOLE_REFUSED'), json.error ?? `HTTP ${response.status}`);
      return { status: response.status, body: json };
    },
  };
}

/** Prints each device's status as it changes and each stage's summary, until the rollout `id` ends. */
export async function followRollout(api: ConsoleApi, id: number, write: (line: string) => void, pollMs = 500): Promise<RolloutProgress> {
  const printed = new Map<string, string>();
  const summaries = new Set<string>();
  let named = false;
  for (;;) {
    const { body } = await api.call<{ current: RolloutProgress | null; recent: RolloutProgress[] }>('GET', '/api/rollouts');
    const progress = [body.current, ...body.recent].find((p) => p?.id === id);
    if (!progress) throw new ConsoleError('CONSOLE_ROLLOUT_LOST', `rollout ${id} is no longer known to the console (did it restart?)`);
    if (!named) for (const u of progress.unable) write(`cannot take ${progress.subject}: ${u.device}: ${u.reason}`);
    named = true;
    for (const stage of progress.stages) {
      for (const d of stage.devices) {
        const line = `${stage.name}: ${d.device} ${d.status}${d.detail ? ` (${d.detail})` : ''}`;
        const key = `${stage.name}/${d.device}`;
        if (printed.get(key) !== line) write(line);
        printed.set(key, line);
      }
      if (stage.summary && !summaries.has(stage.summary)) {
        summaries.add(stage.summary);
        write(stage.summary);
      }
    }
    if (progress.endedAt !== null) return progress;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
