// A camera is any command that writes one image to stdout: `rpicam-still -n -o -` on a Raspberry Pi,
// `ffmpeg -f v4l2 -i /dev/video0 -frames:v 1 -f image2 -` on a USB webcam, `curl -s http://cam/snap.jpg`
// for an IP camera. It runs on an interval, on trigger, or both. Frames are live: when the agent is
// behind, the queue's drop policy decides which frame goes. A failing camera is retried with backoff.

import { spawn } from 'node:child_process';
import { type ErrorCode, errorMessage } from '../../core/errors.js';
import { type SampleSink, type SampleSource, type SourceStatus, SourceError } from './source.js';
import { backoffDelay } from '../../core/backoff.js';

export interface CameraOptions {
  /** argv: the command and its arguments (no shell). */
  command: string[];
  /** Capture every this many ms; undefined: only on trigger. */
  intervalMs?: number;
  timeoutMs: number;
  /** Largest image accepted from the command, bytes. */
  maxBytes: number;
  onEvent?: (event: { level: 'info' | 'warn'; msg: string; error?: string; retryInMs?: number }) => void;
}

export class CameraSource implements SampleSource {
  readonly name: string;
  readonly canWait = false;
  private sink: SampleSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private capturing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly state: SourceStatus;

  constructor(private readonly options: CameraOptions) {
    this.name = `camera:${options.command[0]}`;
    this.state = { name: this.name, produced: 0, failures: 0, lastError: null, retryAt: null };
  }

  start(sink: SampleSink): void {
    this.sink = sink;
    if (this.options.intervalMs !== undefined) this.schedule(0);
  }

  /** Captures one frame now (the HTTP API's capture button, a GPIO trigger); resolves with the stored
   * sample's id once it is stored. */
  async trigger(): Promise<string | undefined> {
    if (!this.sink) throw new SourceError('SOURCE_NOT_STARTED', `${this.name}: not started`);
    return this.capture(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.capturing;
  }

  status(): SourceStatus {
    return { ...this.state };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.capture(false).catch(() => undefined);
    }, ms);
  }

  /** Captures are chained: a camera device cannot be opened twice at once. */
  private capture(triggered: boolean): Promise<string | undefined> {
    const next = this.capturing.then(() => this.captureOnce(triggered));
    this.capturing = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async captureOnce(triggered: boolean): Promise<string | undefined> {
    if (this.stopped) return undefined;
    try {
      const bytes = await runCapture(this.options);
      const id = await this.sink!({ bytes, label: null, origin: this.name });
      this.state.produced++;
      this.state.failures = 0;
      this.state.lastError = null;
      this.state.retryAt = null;
      if (this.options.intervalMs !== undefined && !triggered) this.schedule(this.options.intervalMs);
      return id;
    } catch (err) {
      this.state.failures++;
      this.state.lastError = errorMessage(err);
      if (triggered) {
        this.options.onEvent?.({ level: 'warn', msg: 'camera capture failed', error: this.state.lastError });
      } else {
        const delay = Math.max(this.options.intervalMs ?? 0, backoffDelay(this.state.failures));
        this.state.retryAt = Date.now() + delay;
        this.options.onEvent?.({ level: 'warn', msg: 'camera capture failed; retrying', error: this.state.lastError, retryInMs: delay });
        this.schedule(delay);
      }
      throw err;
    }
  }
}

/** Runs the capture command once and returns what it wrote to stdout. */
export function runCapture(options: Pick<CameraOptions, 'command' | 'timeoutMs' | 'maxBytes'>): Promise<Buffer> {
  const [file, ...args] = options.command;
  const what = options.command.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let failure: SourceError | undefined;
    const fail = (code: ErrorCode, message: string) => {
      failure ??= new SourceError(code, `${what}: ${message}`);
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => fail('CAMERA_TIMEOUT', `no image within ${options.timeoutMs} ms`), options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxBytes) fail('CAMERA_TOO_LARGE', `wrote more than ${options.maxBytes} bytes`);
      else chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-500);
    });
    child.on('error', (err) => fail('CAMERA_FAILED', `cannot run: ${err.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (failure) return reject(failure);
      const tail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      if (code !== 0) return reject(new SourceError('CAMERA_FAILED', `${what}: exited with ${code ?? signal}${tail}`));
      if (size === 0) return reject(new SourceError('CAMERA_EMPTY', `${what}: wrote no image to stdout${tail}`));
      resolve(Buffer.concat(chunks, size));
    });
  });
}
