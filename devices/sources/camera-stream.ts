// A streaming camera: one long-running command that writes MJPEG to stdout (`rpicam-vid -t 0 -n
// --codec mjpeg -o -`, `ffmpeg -f v4l2 -i /dev/video0 -f mjpeg -`). Starting a still capture costs a
// Raspberry Pi camera about a second; a stream gives frames as fast as the sensor makes them. Frames
// closer together than `intervalMs` are skipped here; the rest go to the agent, whose queue drops what
// it cannot embed in time. When the command exits it is restarted with backoff.

import { type ChildProcess, spawn } from 'node:child_process';
import { errorMessage } from '../../core/errors.js';
import type { CameraOptions } from './camera.js';
import { JpegStreamSplitter } from './jpeg-stream.js';
import { type SampleSink, type SampleSource, type SourceStatus, SourceError } from './source.js';
import { backoffDelay } from '../../core/backoff.js';

export class StreamCameraSource implements SampleSource {
  readonly name: string;
  readonly canWait = false;
  private sink: SampleSink | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastKept = 0;
  private readonly waiting: { resolve: (id: string | undefined) => void; reject: (err: Error) => void }[] = [];
  private stopped = false;
  private readonly state: SourceStatus;
  /** Frames the stream produced, kept or not. */
  frames = 0;

  constructor(private readonly options: Omit<CameraOptions, 'timeoutMs'> & { timeoutMs?: number }) {
    this.name = `camera:${options.command[0]}`;
    this.state = { name: this.name, produced: 0, failures: 0, lastError: null, retryAt: null };
  }

  start(sink: SampleSink): void {
    this.sink = sink;
    this.run();
  }

  /** Takes the next frame of the stream as a sample, whatever the interval says. */
  trigger(): Promise<string | undefined> {
    if (!this.sink) return Promise.reject(new SourceError('SOURCE_NOT_STARTED', `${this.name}: not started`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(
          new SourceError('CAMERA_TIMEOUT', `${this.options.command.join(' ')}: no frame within ${this.options.timeoutMs ?? 10_000} ms`),
        );
      }, this.options.timeoutMs ?? 10_000);
      const waiter = {
        resolve: (id: string | undefined) => (clearTimeout(timer), resolve(id)),
        reject: (err: Error) => (clearTimeout(timer), reject(err)),
      };
      this.waiting.push(waiter);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.child?.kill('SIGTERM');
    await this.exited;
    for (const w of this.waiting.splice(0)) w.reject(new SourceError('SOURCE_STOPPED', `${this.name}: stopped`));
  }

  status(): SourceStatus {
    return { ...this.state };
  }

  private run(): void {
    if (this.stopped) return;
    const [file, ...args] = this.options.command;
    const what = this.options.command.join(' ');
    const splitter = new JpegStreamSplitter(this.options.maxBytes);
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    let spawnError: Error | undefined;
    let framesThisRun = 0;
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const frame of splitter.push(chunk)) {
        framesThisRun++;
        this.onFrame(frame);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-500);
    });
    child.on('error', (err) => {
      spawnError = err;
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        resolve();
        if (this.stopped) return;
        const tail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
        const reason = spawnError ? `cannot run: ${spawnError.message}` : `exited with ${code ?? signal}${tail}`;
        // A stream that ran and gave frames before ending starts over quickly; one that never did backs off.
        if (framesThisRun > 0) this.state.failures = 0;
        this.state.failures++;
        this.state.lastError = `${what}: ${reason}`;
        const delay = backoffDelay(this.state.failures);
        this.state.retryAt = Date.now() + delay;
        this.options.onEvent?.({ level: 'warn', msg: 'camera stream ended; restarting', error: this.state.lastError, retryInMs: delay });
        this.restartTimer = setTimeout(() => this.run(), delay);
      });
    });
  }

  private onFrame(frame: Buffer): void {
    this.frames++;
    const now = Date.now();
    const waiter = this.waiting.shift();
    if (!waiter && this.options.intervalMs !== undefined && now - this.lastKept < this.options.intervalMs) return;
    this.lastKept = now;
    this.sink!({ bytes: frame, label: null, origin: this.name }).then(
      (id) => {
        this.state.produced++;
        this.state.failures = 0;
        this.state.lastError = null;
        this.state.retryAt = null;
        waiter?.resolve(id);
      },
      (err: unknown) => {
        this.state.lastError = errorMessage(err);
        waiter?.reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }
}
