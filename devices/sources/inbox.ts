// A watched inbox folder: people (or scp, or a camera's FTP upload) drop photos in; a sub-folder name is
// the label. A file is taken once its size has stopped changing, and moved to done/ (or deleted) only
// after the agent has stored it, so a crash never loses one. Refused files go to rejected/ with a note.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { isImageFile } from '../../core/image-files.js';
import { errorMessage } from '../../core/errors.js';
import { type SampleSink, type SampleSource, type SourceStatus, validateLabel } from './source.js';
import { backoffDelay } from '../../core/backoff.js';

export interface InboxOptions {
  dir: string;
  after: 'move' | 'delete';
  pollMs: number;
  onEvent?: (event: { level: 'info' | 'warn'; msg: string; file?: string; error?: string }) => void;
}

const SPECIAL = new Set(['done', 'rejected']);

export class InboxSource implements SampleSource {
  readonly name: string;
  readonly canWait = true;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly sizes = new Map<string, number>();
  private readonly state: SourceStatus;
  private stopped = false;

  constructor(private readonly options: InboxOptions) {
    this.name = `inbox:${options.dir}`;
    this.state = { name: this.name, produced: 0, failures: 0, lastError: null, retryAt: null };
  }

  start(sink: SampleSink): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.scan(sink)
        .then(() => {
          this.state.retryAt = null;
          this.schedule(tick, this.options.pollMs);
        })
        .catch((err: unknown) => {
          this.state.failures++;
          this.state.lastError = errorMessage(err);
          const delay = backoffDelay(this.state.failures, this.options.pollMs);
          this.state.retryAt = Date.now() + delay;
          this.options.onEvent?.({ level: 'warn', msg: 'inbox scan failed; retrying', error: this.state.lastError });
          this.schedule(tick, delay);
        });
    };
    tick();
  }

  private schedule(tick: () => void, ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(tick, ms);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  status(): SourceStatus {
    return { ...this.state };
  }

  /** One pass: files whose size was the same last time are handed to the sink. */
  async scan(sink: SampleSink): Promise<void> {
    const { dir } = this.options;
    if (!existsSync(dir)) throw new Error(`${dir}: inbox folder does not exist`);
    const seen = new Set<string>();
    for (const path of this.listFiles()) {
      if (this.stopped) return;
      seen.add(path);
      let size: number;
      try {
        size = statSync(path).size;
      } catch {
        continue; // moved away meanwhile
      }
      if (this.sizes.get(path) !== size) {
        this.sizes.set(path, size);
        continue;
      }
      this.sizes.delete(path);
      await this.take(path, sink);
    }
    for (const path of this.sizes.keys()) if (!seen.has(path)) this.sizes.delete(path);
  }

  private listFiles(): string[] {
    const { dir } = this.options;
    const files: string[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isFile() && isImageFile(entry.name)) files.push(join(dir, entry.name));
      if (entry.isDirectory() && !SPECIAL.has(entry.name)) {
        for (const inner of readdirSync(join(dir, entry.name), { withFileTypes: true })) {
          if (inner.isFile() && isImageFile(inner.name)) files.push(join(dir, entry.name, inner.name));
        }
      }
    }
    return files.sort();
  }

  private async take(path: string, sink: SampleSink): Promise<void> {
    const rel = relative(this.options.dir, path);
    const folder = rel.includes('/') ? rel.split('/')[0]! : null;
    try {
      const label = folder === null ? null : validateLabel(folder, path);
      const bytes = await readFile(path);
      await sink({ bytes, label, origin: `inbox:${rel}` });
      this.state.produced++;
      this.finish(path, rel, 'done');
    } catch (err) {
      this.options.onEvent?.({ level: 'warn', msg: 'inbox file rejected', file: path, error: errorMessage(err) });
      this.finish(path, rel, 'rejected', errorMessage(err));
    }
  }

  private finish(path: string, rel: string, to: 'done' | 'rejected', reason?: string): void {
    if (to === 'done' && this.options.after === 'delete') {
      rmSync(path, { force: true });
      return;
    }
    const target = join(this.options.dir, to, rel.replace(/\//g, '__'));
    mkdirSync(join(this.options.dir, to), { recursive: true });
    renameSync(path, target);
    if (reason) writeFileSync(`${target}.error.txt`, `${basename(path)}: ${reason}\n`);
  }
}
