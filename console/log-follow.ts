// A device's log lines on the console page, while the page is open: the console asks the device once
// for its recent lines and to send new ones for 30 s (the "logs" command), asks again every 20 s while
// anyone watches, and passes lines on as Server-Sent Events. However many pages watch one device, the
// device gets one request per RENEW_MS; a page that opens later gets the lines kept here.

import type { ServerResponse } from 'node:http';
import { errorMessage } from '../core/errors.js';
import type { LogLineJson } from './device-messages.js';
import type { FleetConsole } from './service.js';

const FOLLOW_MS = 30_000;
const RENEW_MS = 20_000;
const KEEP_LINES = 500;

interface Follow {
  clients: Set<ServerResponse>;
  lines: LogLineJson[];
  last: number;
  timer: NodeJS.Timeout;
}

export class LogFollows {
  private readonly follows = new Map<string, Follow>();
  private readonly onLines = (batch: { device: string; lines: LogLineJson[]; dropped: number }) => {
    const follow = this.follows.get(batch.device);
    if (!follow) return;
    this.deliver(follow, batch.lines);
    if (batch.dropped > 0) this.send(follow, 'dropped', { dropped: batch.dropped });
  };

  constructor(private readonly console_: FleetConsole) {
    console_.on('log', this.onLines);
  }

  add(device: string, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 5000\n\n');
    let follow = this.follows.get(device);
    if (follow) {
      if (follow.lines.length > 0) res.write(event('lines', { lines: follow.lines }));
    } else {
      follow = { clients: new Set(), lines: [], last: 0, timer: setInterval(() => void this.ask(device), RENEW_MS) };
      follow.timer.unref();
      this.follows.set(device, follow);
      void this.ask(device);
    }
    follow.clients.add(res);
    res.on('close', () => {
      follow.clients.delete(res);
      if (follow.clients.size === 0) {
        clearInterval(follow.timer);
        this.follows.delete(device);
      }
    });
  }

  close(): void {
    this.console_.off('log', this.onLines);
    for (const follow of this.follows.values()) {
      clearInterval(follow.timer);
      for (const res of follow.clients) res.end();
    }
    this.follows.clear();
  }

  private async ask(device: string): Promise<void> {
    const follow = this.follows.get(device);
    if (!follow) return;
    try {
      const reply = await this.console_.command(device, 'logs', {
        after: follow.last,
        limit: follow.last === 0 ? 200 : 1000,
        followMs: FOLLOW_MS,
      });
      // A device that restarted counts its lines from 1 again.
      if (typeof reply.last === 'number' && reply.last < follow.last) follow.last = 0;
      this.deliver(follow, (reply.lines as LogLineJson[] | undefined) ?? []);
    } catch (err) {
      this.send(follow, 'failed', { error: errorMessage(err) });
    }
  }

  /** Lines in seq order, each once (a renewal's backfill and the live batches overlap). */
  private deliver(follow: Follow, lines: LogLineJson[]): void {
    const fresh = lines.filter((l) => l.seq > follow.last).sort((a, b) => a.seq - b.seq);
    if (fresh.length === 0) return;
    follow.last = fresh.at(-1)!.seq;
    follow.lines.push(...fresh);
    follow.lines.splice(0, Math.max(0, follow.lines.length - KEEP_LINES));
    this.send(follow, 'lines', { lines: fresh });
  }

  private send(follow: Follow, name: string, data: unknown): void {
    for (const res of follow.clients) res.write(event(name, data));
  }
}

const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
