// The agent's recent log lines, kept in memory for the console to ask for (the "logs" command): a
// bounded ring, so a chatty source cannot grow it, and followers that get new lines in batches, at most
// MAX_LINES_PER_BATCH a second (the rest are counted as dropped, not sent).

import type { Logger } from '../core/log.js';

export interface LogLine {
  seq: number;
  time: string;
  level: string;
  msg: string;
  /** The line's fields as JSON, cut at 2,000 characters. */
  fields: string;
}

export const MAX_LINES_PER_BATCH = 100;
const BATCH_MS = 1000;

export class LogRing {
  private readonly lines: LogLine[] = [];
  private seq = 0;
  private follower: { until: number; send: (batch: { lines: LogLine[]; dropped: number }) => void } | undefined;
  private batch: LogLine[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly capacity = 1000) {}

  push(level: string, msg: string, fields: Record<string, unknown> = {}): void {
    const json = JSON.stringify(fields);
    const line = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      level,
      msg,
      fields: json.length > 2000 ? `${json.slice(0, 2000)}…` : json,
    };
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
    if (this.follower && Date.now() < this.follower.until) {
      if (this.batch.length < MAX_LINES_PER_BATCH) this.batch.push(line);
      else this.dropped++;
      this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  /** Lines after `after` (a seq), the newest `limit` of them. */
  since(after: number, limit: number): { lines: LogLine[]; last: number; capacity: number } {
    const lines = this.lines.filter((l) => l.seq > after).slice(-limit);
    return { lines, last: this.seq, capacity: this.capacity };
  }

  /** New lines go to `send` for `ms` (asking again extends it; one follower, the console). */
  follow(ms: number, send: (batch: { lines: LogLine[]; dropped: number }) => void): void {
    this.follower = { until: Date.now() + ms, send };
  }

  stop(): void {
    clearTimeout(this.timer);
    this.follower = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    const lines = this.batch;
    const dropped = this.dropped;
    this.batch = [];
    this.dropped = 0;
    if (this.follower && (lines.length > 0 || dropped > 0)) this.follower.send({ lines, dropped });
  }
}

/** A logger that also keeps every line it writes in `ring`. */
export function ringLogger(inner: Logger, ring: LogRing, base: Record<string, unknown> = {}): Logger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (level !== 'debug') ring.push(level, msg, { ...base, ...fields });
      inner[level](msg, fields);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => ringLogger(inner.child(fields), ring, { ...base, ...fields }),
  };
}
