// A watched inbox folder: people (or scp, or a camera's FTP upload) drop photos in; a sub-folder name is
// the label. A file is taken once its size has stopped changing, and moved to done/ (or deleted) only
// after the agent has stored it, so a crash never loses one. Refused files go to rejected/ with a note.
// The inbox reads only itself: a file is opened without following links and checked on the open
// descriptor (a regular file, the very one listed, within the size limit) before a byte is read.

import { type Stats, constants, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { isImageFile } from '../../core/image-files.js';
import { errorMessage } from '../../core/errors.js';
import { type SampleSink, type SampleSource, type SourceStatus, validateLabel } from './source.js';
import { backoffDelay } from '../../core/backoff.js';

export interface InboxOptions {
  dir: string;
  after: 'move' | 'delete';
  pollMs: number;
  /** Larger files are refused (moved to rejected/) without being read. */
  maxBytes: number;
  onEvent?: (event: { level: 'info' | 'warn'; msg: string; file?: string; error?: string }) => void;
}

const SPECIAL = new Set(['done', 'rejected']);

export class InboxSource implements SampleSource {
  readonly name: string;
  readonly canWait = true;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly sizes = new Map<string, number>();
  private readonly listed = new Map<string, Stats>();
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
      let stats: Stats;
      try {
        stats = lstatSync(path);
      } catch {
        continue; // moved away meanwhile
      }
      if (!stats.isFile()) continue;
      if (this.sizes.get(path) !== stats.size) {
        this.sizes.set(path, stats.size);
        continue;
      }
      this.sizes.delete(path);
      await this.take(path, stats, sink);
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

  private async take(path: string, listed: Stats, sink: SampleSink): Promise<void> {
    const rel = relative(this.options.dir, path);
    const folder = rel.includes('/') ? rel.split('/')[0]! : null;
    try {
      const label = folder === null ? null : validateLabel(folder, path);
      const bytes = await readListedFile(path, listed, this.options.maxBytes);
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

/** Reads the file listed as `listed`, and only it: no link is followed (O_NOFOLLOW; O_NONBLOCK so a FIFO
 * put in its place cannot hang the agent), and the open descriptor must be a regular file with the
 * listed inode, within `maxBytes`, before anything is read. */
export async function readListedFile(path: string, listed: Stats, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'ELOOP' ? `${path} became a symbolic link: not read` : `${path}: cannot open: ${err.message}`);
  });
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new Error(`${path} is not a regular file: not read`);
    if (stats.ino !== listed.ino || stats.dev !== listed.dev) throw new Error(`${path} was replaced after it was listed: not read`);
    if (stats.size > maxBytes) throw new Error(`${path} is ${stats.size} bytes, over the inbox limit of ${maxBytes}: not read`);
    const bytes = Buffer.alloc(stats.size);
    const { bytesRead } = await handle.read(bytes, 0, stats.size, 0);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
