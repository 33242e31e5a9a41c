// The Backbone: the one thing the rest of edgetune knows about inference. It owns worker threads, each
// with an engine session, and batches queued images across them, so callers get promises and the event
// loop stays free for MQTT and HTTP while the engines compute.

import './ort-env.js';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ModelError } from '../../core/errors.js';
import type { InputTensor } from '../image/preprocess.js';
import { inputSize, type ModelManifest } from '../models/manifest.js';
import type { ResolvedModel } from '../models/resolve.js';
import type { EngineName } from './engine.js';
import { chooseEngine } from './engine-choice.js';
import { prepareEngine } from './engines.js';
import { type WireError, deserializeError } from './wire.js';
import { workerExecArgv } from './worker-argv.js';
import type { WorkerInit } from './worker.js';

export interface BackboneOptions {
  /** Engine; by default the one that runs the model's format. */
  engine?: EngineName;
  /** Worker threads, each with its own session. Default: 1 for ORT, min(2, cores) for TFLite. */
  workers?: number;
  /** Intra-op threads per worker. Default: cores for ORT, 1 for TFLite (two single-thread workers match
   * one two-thread session in throughput and need no pthread pool). */
  threads?: number;
  /** Images sent to a worker in one message. Default 8. */
  batchSize?: number;
  /**
   * Batches a worker may hold at once (default 2): while it computes one, the next waits in its message
   * queue, so an event loop busy decoding photos cannot leave it idle. A batch beyond the first is sent
   * only when a full one is queued; 1 waits for each answer before sending more.
   */
  batchesPerWorker?: number;
  /** Read this tensor instead of the manifest's output (its length becomes `dim`). */
  outputName?: string;
  /** Where TFLite models imported to ONNX are cached (default: the edgetune cache folder). */
  cacheDir?: string;
  /**
   * onnxruntime's intra-op threads busy-wait between ops when true (onnxruntime's own default). Off by
   * default: spinning threads hold the cores that decode the next photos, and on 2 cores that starves
   * the file path; the kernels, so the embeddings, are the same either way (npm run bench -- embed).
   */
  spinning?: boolean;
}

interface Pending {
  input: InputTensor;
  resolve: (embedding: Float32Array) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Batches sent and not answered yet, oldest first (a worker answers in order). */
  sent: Pending[][];
  dead: boolean;
}

type WorkerMessage =
  | { type: 'ready'; outputDim: number }
  | { type: 'result'; id: number; output: Float32Array; input: InputTensor }
  | { type: 'error'; id: number; error: WireError; input?: InputTensor };

export class Backbone {
  private readonly queue: Pending[] = [];
  /** Batch buffers the workers handed back, for the next batches (a few, of the sizes in use). */
  private readonly spare: ArrayBuffer[] = [];
  private closed = false;

  private constructor(
    readonly manifest: ModelManifest,
    readonly engine: EngineName,
    readonly dim: number,
    readonly settings: { workers: number; threads: number; batchSize: number; batchesPerWorker: number },
    private readonly slots: Slot[],
    /** Why this engine runs the model. */
    readonly engineReason: string,
  ) {
    for (const slot of slots) {
      slot.worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
      slot.worker.on('error', (err) => this.onWorkerFailure(slot, err));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.onWorkerFailure(slot, new Error(`worker exited with code ${code}`));
      });
    }
  }

  get id(): string {
    return this.manifest.id;
  }

  static async open(source: ResolvedModel, options: BackboneOptions = {}): Promise<Backbone> {
    const choice = chooseEngine(source, {
      ...(options.engine ? { engine: options.engine } : {}),
      ...(options.outputName ? { outputName: options.outputName } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    });
    const { model, engine } = choice;
    const cores = availableParallelism();
    const settings = {
      workers: Math.max(1, options.workers ?? (engine === 'onnx' ? 1 : Math.min(2, cores))),
      threads: Math.max(1, options.threads ?? (engine === 'onnx' ? cores : 1)),
      batchSize: Math.max(1, options.batchSize ?? 8),
      batchesPerWorker: Math.max(1, options.batchesPerWorker ?? 2),
    };
    const init: WorkerInit = {
      engine,
      modelBytes: model.bytes,
      manifest: model.manifest,
      options: {
        threads: settings.threads,
        spinning: options.spinning ?? false,
        ...(choice.outputName ? { outputName: choice.outputName } : {}),
        prepared: await prepareEngine(engine, settings.threads),
      },
    };
    const workers = Array.from({ length: settings.workers }, () => spawnWorker(init));
    try {
      const dims = await Promise.all(workers.map(waitReady));
      return new Backbone(
        model.manifest,
        engine,
        dims[0]!,
        settings,
        workers.map((worker) => ({ worker, sent: [], dead: false })),
        choice.reason,
      );
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
  }

  /** Embeds one preprocessed image; concurrent calls are batched across the workers. */
  embed(input: InputTensor): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new ModelError('BACKBONE_CLOSED', `backbone ${this.id} is closed`));
    const expected = inputSize(this.manifest.input);
    if (input.length !== expected) {
      return Promise.reject(
        new ModelError('INPUT_MISMATCH', `input tensor has ${input.length} values, model "${this.id}" takes ${expected}`),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.pump();
    });
  }

  /** Images waiting for a worker (not counting those being computed). */
  get queued(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const pending of this.queue.splice(0)) {
      pending.reject(new ModelError('BACKBONE_CLOSED', `backbone ${this.id} closed before the image was embedded`));
    }
    await Promise.all(
      this.slots.map(async (slot) => {
        const exited = new Promise((resolve) => slot.worker.once('exit', resolve));
        slot.worker.postMessage({ type: 'close' });
        const timer = setTimeout(() => void slot.worker.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private pump(): void {
    // Idle workers first; then a second batch to a busy one, if a whole batch is waiting.
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.dead && slot.sent.length === 0) this.send(slot);
    }
    for (const slot of this.slots) {
      while (!slot.dead && slot.sent.length < this.settings.batchesPerWorker && this.queue.length >= this.settings.batchSize) {
        this.send(slot);
      }
    }
  }

  private send(slot: Slot): void {
    const batch = this.queue.splice(0, this.settings.batchSize);
    slot.sent.push(batch);
    const input = concatInputs(
      batch.map((p) => p.input),
      this.spare,
    );
    slot.worker.postMessage({ type: 'run', id: 0, input, count: batch.length }, [input.buffer as ArrayBuffer]);
  }

  private onMessage(slot: Slot, message: WorkerMessage): void {
    if (message.type === 'ready') return;
    const batch = slot.sent.shift() ?? [];
    if (message.input) {
      this.spare.push(message.input.buffer as ArrayBuffer);
      if (this.spare.length > 2 * this.slots.length * this.settings.batchesPerWorker) this.spare.shift();
    }
    if (message.type === 'result') {
      batch.forEach((p, i) => p.resolve(message.output.slice(i * this.dim, (i + 1) * this.dim)));
    } else {
      const err = deserializeError(message.error);
      for (const p of batch) p.reject(err);
    }
    this.pump();
  }

  private onWorkerFailure(slot: Slot, cause: Error): void {
    const err = new ModelError('ENGINE_CRASHED', `backbone ${this.id}: inference worker failed: ${cause.message}`, {
      cause,
    });
    for (const p of slot.sent.flat()) p.reject(err);
    slot.sent = [];
    // A dead worker gets nothing more; if none is left, fail what is queued.
    slot.dead = true;
    if (this.slots.every((s) => s.dead)) {
      for (const p of this.queue.splice(0)) p.reject(err);
    }
  }
}

/** One buffer holding the batch, reusing a spare buffer of the right size when there is one. */
function concatInputs(inputs: InputTensor[], spare: ArrayBuffer[]): InputTensor {
  const first = inputs[0]!;
  const Ctor = first.constructor as { new (n: number): InputTensor; new (buffer: ArrayBuffer): InputTensor };
  const bytes = first.byteLength * inputs.length;
  const reuse = spare.findIndex((b) => b.byteLength === bytes);
  const out = reuse >= 0 ? new Ctor(spare.splice(reuse, 1)[0]!) : new Ctor(first.length * inputs.length);
  inputs.forEach((input, i) => out.set(input, i * first.length));
  return out;
}

function spawnWorker(init: WorkerInit): Worker {
  const execArgv = workerExecArgv();
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url), { workerData: init, execArgv });
  // Under vitest/tsx the sources are .ts files: register tsx inside the worker before loading the entry.
  const entry = new URL('./worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: init, execArgv });
}

function waitReady(worker: Worker): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerMessage) => {
      cleanup();
      if (m.type === 'ready') resolve(m.outputDim);
      else if (m.type === 'error') reject(deserializeError(m.error));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ModelError('ENGINE_CRASHED', `inference worker failed to start: ${err.message}`, { cause: err }));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}
