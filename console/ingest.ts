// When the console writes what devices send. A reconnect storm brings thousands of states at once;
// written one transaction each, that is one sync to disk per message on the console's one thread,
// ahead of every page request. So messages are queued as they arrive and handled when the event loop
// has served what else was waiting, a run of states in one transaction. Whatever the console does
// about a message (events, a command's reply, the acknowledgement that lets the broker forget it)
// waits until it is on disk.

import { errorMessage } from '../core/errors.js';

interface Queued {
  topic: string;
  payload: Buffer;
  /** Settles the promise push() returned. */
  written: (error?: Error) => void;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

/** Messages handled in one turn of the event loop at most; the rest wait for the next, so a page
 * request never waits behind thousands of states. */
const MAX_PER_TURN = 200;

export class DeviceIngest {
  private queue: Queued[] = [];
  private scheduled = false;
  private holding = false;
  private held: (() => void)[] = [];
  private handler: MessageHandler | undefined;
  /** Writes and transactions, for the bench and tests. */
  readonly stats = { messages: 0, transactions: 0, largestRun: 0 };

  constructor(
    private readonly transaction: (work: () => void) => void,
    private readonly onFailure: (error: string, messages: number) => void,
  ) {}

  attach(handler: MessageHandler): void {
    this.handler = handler;
  }

  /** `effects`, with each call held back while a batch is being written and run once it is. */
  deferring<T extends object>(effects: T): T {
    return Object.fromEntries(
      Object.entries(effects).map(([name, effect]) => [
        name,
        (...args: unknown[]) => this.afterWrite(() => (effect as (...a: unknown[]) => void)(...args)),
      ]),
    ) as T;
  }

  afterWrite(effect: () => void): void {
    if (this.holding) this.held.push(effect);
    else effect();
  }

  /** Queues a message; the promise settles once it is written (rejects when it could not be). */
  push(topic: string, payload: Buffer): Promise<void> {
    const done = new Promise<void>((resolve, reject) =>
      this.queue.push({ topic, payload, written: (error) => (error ? reject(error) : resolve()) }),
    );
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return done;
  }

  /** Handles what is queued, in arrival order: up to MAX_PER_TURN now (all with `all`), the rest in the next turn. */
  flush(all = false): void {
    this.scheduled = false;
    const batch = all ? this.queue : this.queue.slice(0, MAX_PER_TURN);
    this.queue = all ? [] : this.queue.slice(batch.length);
    if (this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    for (let i = 0; i < batch.length;) {
      let end = i + 1;
      // Only states share a transaction: a head also writes quotas and quarantine (other connections
      // to the same file, which would wait for this one's lock).
      if (isState(batch[i]!.topic)) while (end < batch.length && isState(batch[end]!.topic)) end++;
      this.write(batch.slice(i, end));
      i = end;
    }
  }

  private write(run: Queued[]): void {
    const handle = this.handler;
    if (!handle) throw new Error('DeviceIngest: no handler attached');
    this.holding = true;
    let failure: Error | undefined;
    let effects: (() => void)[] = [];
    try {
      if (run.length === 1) handle(run[0]!.topic, run[0]!.payload);
      else this.transaction(() => run.forEach((m) => handle(m.topic, m.payload)));
      effects = this.held;
    } catch (err) {
      // The transaction did not commit (a full disk): nothing of it is acted on, and the broker is not
      // told it was written.
      failure = err instanceof Error ? err : new Error(errorMessage(err));
      this.onFailure(errorMessage(err), run.length);
    } finally {
      this.holding = false;
      this.held = [];
    }
    this.stats.messages += run.length;
    this.stats.transactions++;
    this.stats.largestRun = Math.max(this.stats.largestRun, run.length);
    for (const effect of effects) effect();
    for (const m of run) m.written(failure);
  }
}

function isState(topic: string): boolean {
  return topic.endsWith('/state');
}
