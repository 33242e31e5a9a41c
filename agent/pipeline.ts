// Sample intake for the agent: store first (nothing labelled is ever lost), then embed in the backbone's
// worker threads through a bounded queue, then predict with the current head. A sample that cannot be
// decoded is quarantined with its reason; the agent goes on.

import type { Backbone } from '../runtime/backbone/backbone.js';
import { EdgetuneError, errorMessage } from '../core/errors.js';
import { preprocessBytes } from '../runtime/image/preprocess.js';
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
  labelled: boolean;
  bytes: Uint8Array;
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
      maxPixels?: number;
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

  /** Stores a sample and queues it for embedding. Resolves once the sample is durable on disk. */
  ingest(bytes: Uint8Array, meta: { origin: string; label?: string | null }): IntakeResult {
    this.stats.received++;
    const { sample, created } = this.store.add(bytes, meta);
    const needsEmbedding = created || !this.store.getEmbedding(sample.id, this.backbone.id);
    let queued = false;
    if (needsEmbedding && !this.stopped) {
      queued = this.queue.push({
        id: sample.id,
        labelled: sample.label !== null,
        bytes,
        enqueuedAt: Date.now(),
      });
      this.stats.queued = this.queue.length;
      this.pump();
    }
    return { sample, created, queued };
  }

  /** Re-queues stored samples that have no embedding yet (after a restart, or a backbone change). */
  requeueMissing(limit = 10_000): number {
    let n = 0;
    for (const sample of this.store.list({ limit })) {
      if (this.store.getEmbedding(sample.id, this.backbone.id)) continue;
      const bytes = this.store.readImage(sample.id);
      if (!bytes) continue;
      this.queue.push({ id: sample.id, labelled: sample.label !== null, bytes, enqueuedAt: Date.now() });
      n++;
    }
    this.stats.queued = this.queue.length;
    this.pump();
    return n;
  }

  /** Resolves when the queue has room: sources that can wait (an inbox folder) wait instead of dropping. */
  waitForRoom(): Promise<void> {
    if (this.stopped || this.queue.length < this.options.queueLimit) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
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
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.stats.queued = this.queue.length;
      if (this.queue.length < this.options.queueLimit) for (const w of this.roomWaiters.splice(0)) w();
      this.running++;
      void this.process(job).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async process(job: Job & { enqueuedAt: number }): Promise<void> {
    try {
      const input = await preprocessBytes(job.bytes, `sample ${job.id.slice(0, 12)}`, this.backbone.manifest.input, {
        resize: this.backbone.manifest.resize,
        ...(this.options.maxPixels ? { maxPixels: this.options.maxPixels } : {}),
      });
      const embedding = await this.backbone.embed(input);
      if (!this.store.get(job.id)) return; // deleted meanwhile
      this.store.putEmbedding(job.id, this.backbone.id, embedding);
      const predictor = this.predictor();
      if (predictor) {
        this.store.setPrediction(job.id, storedPrediction(predictor.predict(embedding)));
      }
      this.stats.embedded++;
      this.stats.lastLatencyMs = Date.now() - job.enqueuedAt;
      this.options.onEmbedded?.(this.store.get(job.id)!);
    } catch (err) {
      if (!(err instanceof EdgetuneError) || err.code === 'BACKBONE_CLOSED') {
        if (!this.stopped) this.log.error('embedding failed', { sample: job.id, error: errorMessage(err) });
        return;
      }
      this.stats.quarantined++;
      const sample = this.store.get(job.id);
      this.store.quarantine(job.bytes, {
        origin: sample?.origin ?? 'unknown',
        error: err.message,
        label: sample?.label ?? null,
      });
      this.store.removeImage(job.id);
      this.log.warn('sample quarantined', { sample: job.id, code: err.code, error: err.message });
    }
  }
}
