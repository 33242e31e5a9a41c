// Sample intake for the agent: store first (nothing promised is ever lost), then embed in the backbone's
// worker threads through a bounded queue, then predict with the current head. A sample that cannot be
// decoded is quarantined with its reason; the agent goes on. A sample deleted while it waits or is
// being embedded stays deleted: nothing here writes it back.

import type { Backbone } from '../runtime/backbone/backbone.js';
import { EdgetuneError, errorMessage } from '../core/errors.js';
import { preprocessBytes, preprocessStoredFile } from '../runtime/image/preprocess.js';
import type { HeadPrediction } from '../runtime/head/index.js';
import type { Prediction as StoredPrediction, Sample, SampleStore } from '../runtime/samples/store.js';
import type { Logger } from '../core/log.js';
import { BoundedQueue } from './queue.js';

/** What the agent keeps of a head's answer. */
export type Prediction = Pick<HeadPrediction, 'label' | 'score' | 'unknown' | 'distance'>;

export function storedPrediction(p: Prediction): StoredPrediction {
  return { label: p.label, score: p.score, unknown: p.unknown, distance: p.distance };
}

export interface Predictor {
  /** The head version behind the predictions. */
  version: number;
  predict(embedding: Float32Array): Prediction;
}

export interface IntakeResult {
  sample: Sample;
  created: boolean;
  /** False when the queue dropped the sample before embedding (an unlabelled sample is then discarded). */
  queued: boolean;
}

interface Job {
  id: string;
  /** Promised to someone (upload, inbox file, label): never dropped by the queue. */
  promised: boolean;
  /** Only where the store keeps no image file (embeddingsOnly); otherwise read from the store when the
   * job runs, so a full queue of large uploads does not sit in memory. */
  bytes?: Uint8Array;
}

export interface PipelineStats {
  received: number;
  embedded: number;
  quarantined: number;
  dropped: number;
  queued: number;
  /** Milliseconds from intake to prediction, last sample. */
  lastLatencyMs: number;
}

export class SamplePipeline {
  private readonly queue: BoundedQueue<Job & { enqueuedAt: number }>;
  private running = 0;
  /** Bytes of encoded images being decoded now: bounded, so a burst of large photos is decoded a few at
   * a time instead of all held in memory at once. */
  private decodingBytes = 0;
  private readonly inFlight = new Set<string>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  readonly stats: PipelineStats = {
    received: 0,
    embedded: 0,
    quarantined: 0,
    dropped: 0,
    queued: 0,
    lastLatencyMs: 0,
  };
  private stopped = false;

  constructor(
    private readonly store: SampleStore,
    private readonly backbone: Backbone,
    private readonly predictor: () => Predictor | undefined,
    private readonly log: Logger,
    private readonly options: {
      queueLimit: number;
      drop: 'oldest' | 'newest';
      concurrency: number;
      /** Encoded bytes decoded at once (default 32 MiB); one image always goes, whatever its size. */
      decodeBudgetBytes?: number;
      maxPixels?: number;
      /** See `PreprocessOptions.smallJpegDecoder` (the device profile's choice). */
      smallJpegDecoder?: boolean;
      onEmbedded?: (sample: Sample) => void;
    },
  ) {
    this.queue = new BoundedQueue(options.queueLimit, options.drop, (job) => {
      this.stats.dropped++;
      // A dropped frame is discarded, so the store never keeps a sample that nothing will embed. A label
      // set while it waited makes it a person's work: it stays and is embedded on the next restart.
      const sample = this.store.get(job.id);
      if (sample && sample.label === null && !this.store.getEmbedding(job.id, this.backbone.id)) this.store.delete(job.id);
      this.log.debug('queue full: sample dropped', { sample: job.id });
    });
  }

  /** Stores a sample and queues it for embedding; returns once the sample is durable on disk. A
   * sample that is not `droppable` (or is labelled) is never dropped by the queue. */
  ingest(bytes: Uint8Array, meta: { origin: string; label?: string | null; droppable?: boolean }): IntakeResult {
    this.stats.received++;
    const { sample, created } = this.store.add(bytes, meta);
    return { sample, created, queued: this.enqueue(sample, meta.droppable === true, bytes) };
  }

  /** Stores a sample whose bytes are already in a file on the store's filesystem (a streamed upload). */
  ingestFile(file: { path: string; sha256: string; bytes: number }, meta: { origin: string; label?: string | null }): IntakeResult {
    this.stats.received++;
    const { sample, created } = this.store.addFile(file, meta);
    return { sample, created, queued: this.enqueue(sample, false) };
  }

  private enqueue(sample: Sample, droppable: boolean, bytes?: Uint8Array): boolean {
    if (this.stopped || this.store.getEmbedding(sample.id, this.backbone.id)) return false;
    if (this.queue.has((j) => j.id === sample.id) || this.inFlight.has(sample.id)) return true;
    const queued = this.queue.push({
      id: sample.id,
      promised: !droppable || sample.label !== null,
      ...(sample.hasImage ? {} : { bytes }),
      enqueuedAt: Date.now(),
    });
    this.stats.queued = this.queue.length;
    this.pump();
    return queued;
  }

  /** True when a frame from a live source would be kept by the queue (else it is not worth storing). */
  wouldQueueFrame(): boolean {
    return !this.stopped && this.queue.wouldKeep({ id: '', promised: false, enqueuedAt: 0 });
  }

  /** True when the queue is under its limit. */
  hasRoom(): boolean {
    return this.queue.length < this.options.queueLimit;
  }

  /** Forgets the queued job of a deleted sample. */
  forget(id: string): void {
    this.queue.remove((j) => j.id === id);
    this.stats.queued = this.queue.length;
  }

  /** Re-queues stored samples that have no embedding yet (after a restart, or a backbone change). */
  requeueMissing(limit = 10_000): number {
    let n = 0;
    for (const sample of this.store.list({ limit })) {
      if (!sample.hasImage || this.store.getEmbedding(sample.id, this.backbone.id)) continue;
      if (this.queue.has((j) => j.id === sample.id)) continue;
      this.queue.push({ id: sample.id, promised: true, enqueuedAt: Date.now() });
      n++;
    }
    this.stats.queued = this.queue.length;
    this.pump();
    return n;
  }

  /** Resolves when the queue has room: sources that can wait (an inbox folder) wait instead of dropping.
   * With `timeoutMs`, resolves false when there is still no room by then (an HTTP upload is refused). */
  async waitForRoom(timeoutMs?: number): Promise<boolean> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    while (!this.stopped && !this.hasRoom()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.roomWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return !this.stopped;
  }

  /** Resolves when nothing is queued or being embedded. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.clear();
    this.stats.queued = 0;
    for (const w of this.roomWaiters.splice(0)) w();
    await this.idle();
  }

  private pump(): void {
    const budget = this.options.decodeBudgetBytes ?? 32 * 1024 * 1024;
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const size = this.jobBytes(this.queue.peek()!);
      if (this.running > 0 && this.decodingBytes + size > budget) return; // the next finished job pumps again
      const job = this.queue.shift()!;
      this.decodingBytes += size;
      this.stats.queued = this.queue.length;
      if (this.queue.length < this.options.queueLimit) for (const w of this.roomWaiters.splice(0)) w();
      this.running++;
      this.inFlight.add(job.id);
      void this.process(job).finally(() => {
        this.decodingBytes -= size;
        this.inFlight.delete(job.id);
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private jobBytes(job: Job): number {
    return job.bytes?.length ?? this.store.get(job.id)?.bytes ?? 0;
  }

  private async process(job: Job & { enqueuedAt: number }): Promise<void> {
    const where = `sample ${job.id.slice(0, 12)}`;
    const options = {
      resize: this.backbone.manifest.resize,
      ...(this.options.maxPixels ? { maxPixels: this.options.maxPixels } : {}),
      ...(this.options.smallJpegDecoder === false ? { smallJpegDecoder: false } : {}),
    };
    const stored = job.bytes ? undefined : this.store.imageFile(job.id);
    if (!job.bytes && !stored) return; // deleted while it waited
    try {
      const input = job.bytes
        ? await preprocessBytes(job.bytes, where, this.backbone.manifest.input, options)
        : await preprocessStoredFile(stored!, where, this.backbone.manifest.input, options);
      const embedding = await this.backbone.embed(input);
      if (!this.store.get(job.id)) return; // deleted meanwhile
      this.store.putEmbedding(job.id, this.backbone.id, embedding);
      const predictor = this.predictor();
      if (predictor) {
        this.store.setPrediction(job.id, { ...storedPrediction(predictor.predict(embedding)), head: predictor.version });
      }
      this.stats.embedded++;
      this.stats.lastLatencyMs = Date.now() - job.enqueuedAt;
      this.options.onEmbedded?.(this.store.get(job.id)!);
    } catch (err) {
      if (!(err instanceof EdgetuneError) || err.code === 'BACKBONE_CLOSED') {
        if (!this.stopped) this.log.error('embedding failed', { sample: job.id, error: errorMessage(err) });
        return;
      }
      const sample = this.store.get(job.id);
      const bytes = job.bytes ?? this.store.readImage(job.id);
      if (!sample || !bytes) return; // deleted while it was decoded: it stays deleted
      this.stats.quarantined++;
      this.store.quarantine(bytes, { origin: sample.origin, error: err.message, label: sample.label });
      this.store.removeImage(job.id);
      this.log.warn('sample quarantined', { sample: job.id, code: err.code, error: err.message });
    }
  }
}
