// The on-device agent: sources -> sample store -> backbone (worker threads) -> head, with on-device
// training, a local HTTP API and labelling page, and graceful shutdown. One instance per device.

import type { DeviceProfile } from '../devices/profiles.js';
import { CameraSource } from '../devices/sources/camera.js';
import { StreamCameraSource } from '../devices/sources/camera-stream.js';
import { InboxSource } from '../devices/sources/inbox.js';
import { type SampleSource, SourceError, type TriggerSource, validateLabel } from '../devices/sources/source.js';
import { Backbone } from '../runtime/backbone/backbone.js';
import { ConfigError, EdgetuneError, errorMessage } from '../core/errors.js';
import { type Head, encodeHead } from '../runtime/head/index.js';
import { resolveModel } from '../runtime/models/resolve.js';
import { type Sample, SampleError, SampleStore } from '../runtime/samples/store.js';
import { type AgentConfig, checkDeviceLogin } from './config.js';
import { readVitals } from '../devices/vitals.js';
import { LogRing, ringLogger } from './log-ring.js';
import { type AgentApi, startHttpServer } from './http.js';
import type { HealthJson, ScoresJson } from './api-types.js';
import { AgentEvents } from './events.js';
import { repredictAll } from './repredict.js';
import { type Logger, createLogger } from '../core/log.js';
import { type IntakeResult, type Predictor, SamplePipeline } from './pipeline.js';
import { type UploadedFile, clearIncoming } from './upload.js';
import { sha256Hex } from '../core/hash.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TrainOutcome, compareOnHoldout, holdoutReport, loadCurrentHead, trainFromStore } from './trainer.js';
import { mergeHeads } from '../runtime/head/merge.js';
import { type AppliedHead, FleetSync } from './fleet-sync.js';
import { pushedConfig } from './pushed-config.js';
import { AgentUpdater } from './updater.js';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { writeDurably } from '../core/durable.js';
import { isLoopback } from './http-guard.js';
import { readPublicKey } from '../runtime/sync/signing.js';

export interface AgentOptions {
  log?: Logger;
  /** The device profile supplies engine settings, queue and retention limits the config leaves out. */
  profile?: DeviceProfile;
}

/** What the agent runs with: the config's values, else the device profile's, else built-in defaults. */
export function effectiveSettings(config: AgentConfig, profile?: DeviceProfile) {
  const { retention } = config.data;
  return {
    // A profile's onnx stays automatic, so a model the importer cannot convert still runs on TFLite.
    engine: config.model.engine ?? (profile?.engine === 'tflite' ? 'tflite' : undefined),
    workers: config.model.workers ?? profile?.workers,
    threads: config.model.threads ?? profile?.threads,
    batchSize: config.model.batchSize ?? profile?.batchSize,
    queueLimit: config.queue.limit ?? profile?.queueLimit ?? 64,
    maxImagePixels: config.model.maxImagePixels ?? profile?.maxImagePixels,
    smallJpegDecoder: profile?.smallJpegDecoder ?? true,
    retention: {
      maxSamples: retention.maxSamples ?? profile?.retention.maxSamples,
      maxBytes: retention.maxBytes ?? profile?.retention.maxBytes,
    },
  };
}

export class Agent {
  /** New samples, labels, deletions and head changes, for the page's live updates. */
  readonly events = new AgentEvents();
  private head: Head | undefined;
  private headGeneration = 0;
  private repredicting: Promise<void> | undefined;
  private labelsSinceTraining = 0;
  private training: Promise<TrainOutcome> | undefined;
  private retrainTimer: NodeJS.Timeout | undefined;
  private readonly sources: SampleSource[] = [];
  private camera: TriggerSource | undefined;
  private fleet: FleetSync | undefined;
  private updater: AgentUpdater | undefined;
  private http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  private readonly startedAt = Date.now();
  private report: { key: string; value: ReturnType<typeof holdoutReport> } | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: AgentConfig,
    readonly store: SampleStore,
    readonly backbone: Backbone,
    readonly pipeline: SamplePipeline,
    private readonly log: Logger,
    private readonly retention: { maxSamples?: number | undefined; maxBytes?: number | undefined },
    readonly logs: LogRing,
  ) {}

  static async start(config: AgentConfig, options: AgentOptions = {}): Promise<Agent> {
    checkDeviceLogin(config, 'agent config');
    // Every line also goes to a ring the console can ask for (the "logs" command).
    const logs = new LogRing();
    const log = ringLogger(options.log ?? createLogger(config.log.level, { device: config.device.id }), logs);
    const store = SampleStore.open(config.data.dir, {
      embeddingsOnly: config.data.embeddingsOnly,
      holdoutFraction: config.data.holdoutFraction,
    });
    let backbone: Backbone | undefined;
    try {
      // What the console pushed wins over the file, and decides the model and sources too.
      pushedConfig.apply(config, pushedConfig.load(store));
      const model = await resolveModel(config.model.backbone);
      const settings = effectiveSettings(config, options.profile);
      backbone = await Backbone.open(model, {
        ...pick({ engine: settings.engine, workers: settings.workers, threads: settings.threads, batchSize: settings.batchSize }),
      });
      // The pipeline asks the agent for the current head, and the agent owns the pipeline.
      const owner: { agent?: Agent } = {};
      const pipeline = new SamplePipeline(store, backbone, () => owner.agent?.predictor(), log, {
        onEmbedded: (sample) => owner.agent?.events.emit('sample', { id: sample.id, createdAt: sample.createdAt }),
        queueLimit: settings.queueLimit,
        drop: config.queue.drop,
        concurrency: backbone.settings.workers * backbone.settings.batchSize,
        ...pick({ maxPixels: settings.maxImagePixels }),
        smallJpegDecoder: settings.smallJpegDecoder,
      });
      const agent = new Agent(config, store, backbone, pipeline, log, settings.retention, logs);
      owner.agent = agent;
      agent.head = loadCurrentHead(store, { backboneId: backbone.id, dim: backbone.dim });
      agent.enforceRetention();
      clearIncoming(agent.incomingDir);
      const requeued = pipeline.requeueMissing();
      if (config.http.enabled) {
        agent.http = await startHttpServer(
          agent.api(),
          {
            host: config.http.host,
            port: config.http.port,
            token: httpToken(config, log),
            allowedHosts: config.http.allowedHosts,
            maxUploadBytes: config.http.maxUploadBytes,
            maxConcurrentUploads: config.http.maxConcurrentUploads,
            uploadWaitMs: config.queue.uploadWaitMs,
            incomingDir: agent.incomingDir,
          },
          log,
        );
      }
      agent.startSources();
      if (config.fleet) {
        const fleet = new FleetSync(config.fleet, config.device.id, store, { id: backbone.id, dim: backbone.dim }, agent.fleetHooks(), log);
        agent.fleet = fleet;
        const release = agentRelease();
        // Updates pushed from the console: only for an agent installed from a bundle.
        if (config.release?.updates && release) {
          agent.updater = new AgentUpdater({
            fleet: config.fleet.id,
            device: config.device.id,
            publicKey: readPublicKey(readFileSync(config.fleet.publicKeyFile), config.fleet.publicKeyFile),
            release,
            prefix: config.release.prefix,
            service: config.release.service,
            httpPort: agent.http ? Number(new URL(agent.http.url).port) : config.http.port,
            store,
            subscribe: (topic, handler) => fleet.subscribe(topic, handler),
            changed: () => fleet.publishState(),
            log,
          });
        }
        fleet.start();
        agent.updater?.start();
      }
      log.info('agent started', {
        ...(options.profile ? { profile: options.profile.id } : {}),
        backbone: backbone.id,
        engine: backbone.engine,
        workers: backbone.settings.workers,
        head: agent.head?.meta.version ?? null,
        samples: store.counts().samples,
        requeued,
        url: agent.url,
      });
      return agent;
    } catch (err) {
      await backbone?.close();
      store.close();
      throw err;
    }
  }

  /** Where HTTP uploads are streamed before they join the store (same filesystem, so a rename). */
  get incomingDir(): string {
    return join(this.config.data.dir, 'incoming');
  }

  get url(): string | undefined {
    return this.http?.url;
  }

  get currentHead(): Head | undefined {
    return this.head;
  }

  predictor(): Predictor | undefined {
    const head = this.head;
    if (!head) return undefined;
    const threshold = this.config.head.unknownThreshold;
    return { version: head.meta.version, predict: (embedding) => head.predict(embedding, threshold === null ? {} : { threshold }) };
  }

  /** Stores a sample now; returns once it is durable and queued for embedding. `droppable` marks a live
   * camera frame, which the queue may drop; anything else is kept (STORE_FULL when labelled samples fill
   * the store). A kept sample waits in the queue as its id, its image on disk; in an embeddings-only
   * store its bytes wait in memory, so beyond the queue's limit it is refused (QUEUE_FULL) before it is
   * stored. */
  ingest(bytes: Buffer, label: string | null, origin: string, options: { droppable?: boolean } = {}): IntakeResult {
    const clean = label === null ? null : validateLabel(label, origin);
    const known = this.store.get(sha256Hex(bytes));
    if (!known && !options.droppable && this.store.embeddingsOnly && !this.pipeline.hasRoom())
      throw new SampleError(
        'QUEUE_FULL',
        `the embedding queue is full (${this.pipeline.stats.queued} samples, whose bytes wait in memory in an embeddings-only store); nothing was stored: retry later`,
      );
    if (!known) this.makeRoom(bytes.length);
    const result = this.pipeline.ingest(bytes, { origin, label: clean, droppable: options.droppable === true });
    this.afterIngest(result, clean);
    return result;
  }

  /** An HTTP upload, already streamed to a temp file: acknowledged (resolves) only once it is durable in
   * the store and queued for embedding; refused before that when the store is full of labelled samples. */
  async acceptUpload(file: UploadedFile, label: string | null): Promise<IntakeResult> {
    const clean = label === null ? null : validateLabel(label, 'upload');
    const bytes = this.store.embeddingsOnly ? await readFile(file.path) : undefined;
    const known = this.store.get(file.sha256);
    if (!known) await this.waitForQueueRoom();
    // From here to the queue nothing awaits, so no other upload takes the room in between.
    if (!this.store.get(file.sha256)) this.makeRoom(file.bytes);
    const result = bytes
      ? this.pipeline.ingest(bytes, { origin: 'upload', label: clean })
      : this.pipeline.ingestFile(file, { origin: 'upload', label: clean });
    this.afterIngest(result, clean);
    return result;
  }

  /** Waits (bounded) until the embedding queue has room for an upload; QUEUE_FULL when it has none. */
  async waitForQueueRoom(): Promise<void> {
    if (await this.pipeline.waitForRoom(this.config.queue.uploadWaitMs)) return;
    throw new SampleError(
      'QUEUE_FULL',
      `the embedding queue is full (${this.pipeline.stats.queued} samples waiting for ${Math.round(this.config.queue.uploadWaitMs / 1000)} s); nothing was stored: retry later`,
    );
  }

  deleteSample(id: string): boolean {
    this.pipeline.forget(id);
    const deleted = this.store.delete(id);
    if (deleted) {
      this.fleet?.samplesChanged();
      this.events.emit('deleted', { id });
    }
    return deleted;
  }

  private afterIngest(result: IntakeResult, label: string | null): void {
    if (label !== null && (result.created || result.sample.label !== label)) this.noteLabelChange();
  }

  /** Retention before a new sample is stored, so what is acknowledged is what is kept. */
  private makeRoom(incomingBytes: number): void {
    const { maxSamples, maxBytes } = this.retention;
    if (maxSamples === undefined && maxBytes === undefined) return;
    const deleted = this.store.makeRoom(this.retention, incomingBytes);
    for (const id of deleted) this.pipeline.forget(id);
    if (deleted.length > 0) this.log.info('retention removed unlabelled samples', { deleted: deleted.length });
  }

  /** True when labelled samples fill the retention limits: new samples are refused until some go. */
  storeFull(): boolean {
    const { maxSamples, maxBytes } = this.retention;
    return (maxSamples !== undefined || maxBytes !== undefined) && this.store.isFull(this.retention);
  }

  setLabel(id: string, label: string | null): Sample {
    const clean = label === null ? null : validateLabel(label, `sample ${id.slice(0, 12)}`);
    const before = this.store.get(id);
    if (!before) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${id}`);
    const sample = this.store.setLabel(id, clean);
    if (before.label !== clean) {
      this.noteLabelChange();
      this.events.emit('label', { ids: [id], label: clean });
    }
    return sample;
  }

  /** Labels many samples in one transaction (all or none); returns how many changed. */
  setLabels(ids: string[], label: string | null): number {
    const clean = label === null ? null : validateLabel(label, 'bulk label');
    const changed = [...new Set(ids)].filter((id) => {
      const sample = this.store.get(id);
      if (!sample) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${id}`);
      return sample.label !== clean;
    });
    this.store.setLabels(changed.map((id) => ({ id, label: clean })));
    if (changed.length > 0) {
      for (let i = 0; i < changed.length; i++) this.noteLabelChange();
      this.events.emit('label', { ids: changed, label: clean });
    }
    return changed.length;
  }

  /** The current head's probability for every class of one sample. */
  private scores(id: string): ScoresJson | undefined {
    if (!this.store.get(id)) return undefined;
    const head = this.head;
    const embedding = this.store.getEmbedding(id, this.backbone.id);
    if (!head || !embedding) return { headVersion: head?.meta.version ?? null, scores: [] };
    const probabilities = head.probabilities(embedding);
    return {
      headVersion: head.meta.version,
      scores: head.labels.map((label, i) => ({ label, score: probabilities[i]! })).sort((a, b) => b.score - a.score),
    };
  }

  /**
   * Starts a class from samples a person grouped together (typically ones the head called unknown): all
   * are labelled in one transaction, or none when one is missing.
   */
  newClass(label: string, ids: string[]): { label: string; samples: Sample[] } {
    const clean = validateLabel(label, 'new class');
    if (ids.length === 0) throw new SourceError('LABEL_INVALID', 'a new class needs at least one sample id');
    const missing = ids.filter((id) => !this.store.get(id));
    if (missing.length > 0) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${missing.join(', ')}: nothing was labelled`);
    this.store.setLabels(ids.map((id) => ({ id, label: clean })));
    for (let i = 0; i < ids.length; i++) this.noteLabelChange();
    return { label: clean, samples: ids.map((id) => this.store.get(id)!) };
  }

  /** Retrains now (or joins the training that is running). */
  async train(): Promise<TrainOutcome> {
    if (this.training) return this.training;
    clearTimeout(this.retrainTimer);
    this.training = (async () => {
      await this.pipeline.idle();
      this.labelsSinceTraining = 0;
      const { outcome, head } = trainFromStore(this.store, this.head, {
        kind: this.config.head.kind,
        backboneId: this.backbone.id,
        dim: this.backbone.dim,
        tolerance: this.config.head.tolerance,
      });
      if (head) {
        this.head = head;
        this.headChanged();
        this.fleet?.publishHead(head);
      }
      this.log.info(outcome.kept ? 'new head kept' : 'new head not kept', { ...outcome });
      return outcome;
    })().finally(() => {
      this.training = undefined;
    });
    return this.training;
  }

  /** A verified fleet head becomes a new head version here (so rollback works as for any other); in
   * merge mode it is first averaged with the device's own head. */
  private applyFleetHead(fleetHead: Head, fleetVersion: number, mode: 'replace' | 'merge'): AppliedHead {
    const expect = { backboneId: this.backbone.id, dim: this.backbone.dim };
    const own = this.head;
    const head =
      mode === 'merge' && own && own.kind === fleetHead.kind
        ? mergeHeads([
            { device: 'own', head: own },
            { device: 'fleet', head: fleetHead },
          ]).head
        : fleetHead;
    const compared = compareOnHoldout(this.store, own, head, expect);
    const parent = this.store.currentHeadVersion();
    const metrics: Record<string, number> = { fleetVersion, ...(compared.after === null ? {} : { holdoutAccuracy: compared.after }) };
    const version = this.store.saveHead((v) => encodeHead(head.withMeta({ version: v, parent, metrics })), {
      parent,
      accuracy: compared.after,
      metrics,
    });
    this.head = head.withMeta({ version, parent, metrics });
    this.headChanged();
    return {
      headVersion: version,
      fleetVersion,
      accuracyBefore: compared.before,
      accuracyAfter: compared.after,
      holdout: compared.samples,
      lost: compared.lost,
      gained: compared.gained,
    };
  }

  private fleetHooks() {
    return {
      applyHead: (head: Head, fleetVersion: number, mode: 'replace' | 'merge') => this.applyFleetHead(head, fleetVersion, mode),
      rollbackFleet: (fleetVersion: number) => {
        const head = this.head;
        if (head?.meta.metrics.fleetVersion !== fleetVersion || head.meta.parent === null) {
          return {
            rolledBack: false,
            headVersion: head?.meta.version ?? null,
            reason: `the current head does not come from fleet version ${fleetVersion}`,
          };
        }
        return { rolledBack: true, headVersion: this.rollback(head.meta.parent).meta.version };
      },
      train: async () => ({ ...(await this.train()) }),
      configure: (values: Record<string, unknown>) => {
        const pushed = pushedConfig.parse(values);
        pushedConfig.apply(this.config, pushed);
        pushedConfig.save(this.store, pushed);
        const restartRequired = pushedConfig.needsRestart(pushed);
        this.log.info('config pushed by the console', { pushed, restartRequired });
        return { applied: pushed, restartRequired };
      },
      state: () => this.fleetState(),
      logs: (args: { after: number; limit: number; followMs: number }, send: (batch: { lines: unknown[]; dropped: number }) => void) => {
        if (args.followMs > 0) this.logs.follow(args.followMs, send);
        return { ...this.logs.since(args.after, args.limit), followingMs: args.followMs };
      },
      samples: (args: { offset: number; limit: number; maxBytes: number }) => this.samplePage(args),
    };
  }

  /** Labelled samples with their images, oldest first, up to `maxBytes` of images (at least one). */
  private samplePage(args: { offset: number; limit: number; maxBytes: number }): Record<string, unknown> {
    const page = this.store.list({ labelled: true, limit: args.limit, offset: args.offset });
    const samples: { id: string; label: string; image: string }[] = [];
    let bytes = 0;
    for (const sample of page) {
      const image = sample.hasImage ? this.store.readImage(sample.id) : undefined;
      if (!image || sample.label === null) continue;
      if (samples.length > 0 && bytes + image.length > args.maxBytes) break;
      bytes += image.length;
      samples.push({ id: sample.id, label: sample.label, image: image.toString('base64') });
    }
    const consumed = samples.length === 0 ? page.length : page.findIndex((s) => s.id === samples.at(-1)!.id) + 1;
    // The last page is the one that came short and was taken whole.
    const last = page.length < args.limit && consumed === page.length;
    return { samples, next: last ? null : args.offset + consumed, labelled: this.store.counts().labelled };
  }

  /** What the console shows for this device. */
  private fleetState(): Record<string, unknown> {
    const counts = this.store.counts();
    const head = this.head;
    return {
      release: agentRelease(),
      updatable: this.updater !== undefined,
      ...(this.updater ? { update: this.updater.status } : {}),
      engine: this.backbone.engine,
      headKind: head?.kind ?? null,
      headVersion: head?.meta.version ?? null,
      labels: head?.labels ?? [],
      holdoutAccuracy: head?.meta.metrics.holdoutAccuracy ?? null,
      samples: counts.samples,
      labelled: counts.labelled,
      waiting: counts.waiting,
      waitingUnknown: counts.waitingUnknown,
      holdoutSamples: counts.holdout,
      perClass: counts.perClass,
      holdout: this.holdoutReport(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      vitals: readVitals({ thermalFile: this.config.device.thermalFile, dataDir: this.store.dir }),
      sources: this.sources.map((s) => s.status()),
      ...(this.http ? { page: this.http.url } : {}),
      config: pushedConfig.current(this.config),
    };
  }

  /** The current head on the holdout, per class; computed again only when the head or holdout changes. */
  private holdoutReport(): ReturnType<typeof holdoutReport> {
    const head = this.head;
    if (!head) return null;
    const key = `${head.meta.version}:${this.store.counts().labelled}`;
    if (this.report?.key !== key)
      this.report = { key, value: holdoutReport(this.store, head, { backboneId: this.backbone.id, dim: this.backbone.dim }) };
    return this.report.value;
  }

  /** Captures one frame from the configured camera now; resolves with the stored sample. */
  async capture(): Promise<Sample> {
    if (!this.camera) throw new SourceError('NO_CAMERA', 'no camera is configured (sources.camera)');
    const id = await this.camera.trigger();
    const sample = id === undefined ? undefined : this.store.get(id);
    if (!sample) throw new SourceError('CAMERA_DROPPED', 'the frame was dropped: the embedding queue is full');
    return sample;
  }

  rollback(version: number): Head {
    this.store.setCurrentHead(version);
    const head = loadCurrentHead(this.store, { backboneId: this.backbone.id, dim: this.backbone.dim });
    if (!head) throw new SampleError('HEAD_NOT_FOUND', `head version ${version} cannot be loaded`);
    this.head = head;
    this.headChanged();
    this.fleet?.publishState();
    this.log.info('head rolled back', { version: head.meta.version });
    return head;
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('agent stopping');
      clearTimeout(this.retrainTimer);
      await Promise.all(this.sources.map((s) => s.stop()));
      await this.http?.close();
      await this.training?.catch(() => undefined);
      await this.repredicting;
      this.logs.stop();
      await this.fleet?.stop();
      await this.pipeline.stop();
      await this.backbone.close();
      this.store.close();
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }

  /**
   * Every sample gets the new head's prediction, labelled ones too, so no card shows what an older head
   * said; then the page hears of the head. A newer head change takes over from one still running.
   */
  private headChanged(): void {
    const predictor = this.predictor();
    const generation = ++this.headGeneration;
    const done = predictor
      ? repredictAll(this.store, this.backbone.id, predictor, () => generation === this.headGeneration && !this.stopping)
      : Promise.resolve(true);
    this.repredicting = done
      .then((finished) => {
        if (finished) this.events.emit('head', { version: this.head?.meta.version ?? null });
      })
      .catch((err: unknown) => this.log.error('re-predicting after a head change failed', { error: errorMessage(err) }));
  }

  /** Resolves when the samples carry the current head's predictions. */
  async predictionsCurrent(): Promise<void> {
    while (this.repredicting) {
      const running = this.repredicting;
      await running;
      if (this.repredicting === running) this.repredicting = undefined;
    }
  }

  private noteLabelChange(): void {
    this.labelsSinceTraining++;
    this.fleet?.samplesChanged();
    const every = this.config.head.retrainAfterLabels;
    if (every > 0 && this.labelsSinceTraining >= every) {
      // Debounced: a burst of labels trains once, after the burst.
      clearTimeout(this.retrainTimer);
      this.retrainTimer = setTimeout(() => {
        this.train().catch((err: unknown) => this.log.error('training failed', { error: errorMessage(err) }));
      }, 200);
    }
  }

  /** At start: limits may have been lowered since the store was filled. */
  private enforceRetention(): void {
    const { maxSamples, maxBytes } = this.retention;
    if (maxSamples === undefined && maxBytes === undefined) return;
    const deleted = this.store.enforceRetention(this.retention);
    if (deleted.length > 0) this.log.info('retention removed unlabelled samples', { deleted: deleted.length });
  }

  private startSources(): void {
    const { inbox, camera } = this.config.sources;
    if (camera) {
      const { stream, ...options } = camera;
      const onEvent = (e: { level: 'info' | 'warn'; msg: string; error?: string; retryInMs?: number }) =>
        this.log[e.level](e.msg, { source: 'camera', error: e.error, retryInMs: e.retryInMs });
      this.camera = stream ? new StreamCameraSource({ ...options, onEvent }) : new CameraSource({ ...options, onEvent });
      this.sources.push(this.camera);
    }
    if (inbox) {
      this.sources.push(
        new InboxSource({
          ...inbox,
          onEvent: (e) => this.log[e.level](e.msg, { file: e.file, error: e.error }),
        }),
      );
    }
    for (const source of this.sources) {
      source.start(async (sample) => {
        if (source.canWait) await this.pipeline.waitForRoom();
        // A live frame the full queue would drop is not stored at all.
        else if (sample.label === null && !this.pipeline.wouldQueueFrame()) {
          this.pipeline.stats.dropped++;
          return undefined;
        }
        const result = this.ingest(sample.bytes, sample.label, sample.origin, { droppable: !source.canWait });
        return result.queued || !result.created ? result.sample.id : undefined;
      });
    }
  }

  health(): HealthJson {
    const counts = this.store.counts();
    return {
      status: 'ok',
      device: this.config.device.id,
      release: agentRelease(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      backbone: this.backbone.id,
      engine: this.backbone.engine,
      headVersion: this.head?.meta.version ?? null,
      samples: counts.samples,
      labelled: counts.labelled,
      waiting: counts.waiting,
      waitingUnknown: counts.waitingUnknown,
      queue: this.pipeline.stats.queued,
      store: {
        full: this.storeFull(),
        samples: counts.samples,
        bytes: counts.bytes,
        maxSamples: this.retention.maxSamples ?? null,
        maxBytes: this.retention.maxBytes ?? null,
      },
      sources: this.sources.map((s) => s.status()),
      ...(this.fleet ? { fleet: this.fleet.status() } : {}),
      ...(this.updater ? { update: this.updater.status } : {}),
    };
  }

  metrics(): string {
    const c = this.store.counts();
    const s = this.pipeline.stats;
    const memory = process.memoryUsage();
    const lines = [
      ['edgetune_samples_total', 'gauge', 'Samples in the store', c.samples],
      ['edgetune_samples_labelled', 'gauge', 'Labelled samples', c.labelled],
      ['edgetune_samples_quarantined', 'gauge', 'Quarantined samples', c.quarantined],
      ['edgetune_samples_waiting', 'gauge', 'Unlabelled samples waiting for a label', c.waiting],
      ['edgetune_samples_waiting_unknown', 'gauge', 'Waiting samples the head called unknown', c.waitingUnknown],
      ['edgetune_store_image_bytes', 'gauge', 'Bytes of stored images', c.bytes],
      ['edgetune_received_total', 'counter', 'Samples received since start', s.received],
      ['edgetune_embedded_total', 'counter', 'Samples embedded since start', s.embedded],
      ['edgetune_dropped_total', 'counter', 'Samples dropped by the queue since start', s.dropped],
      ['edgetune_queue_length', 'gauge', 'Samples waiting to be embedded', s.queued],
      ['edgetune_sample_latency_ms', 'gauge', 'Intake to prediction, last sample', s.lastLatencyMs],
      ['edgetune_head_version', 'gauge', 'Current head version (0: none)', this.head?.meta.version ?? 0],
      ['edgetune_head_holdout_accuracy', 'gauge', 'Holdout accuracy of the current head', this.head?.meta.metrics.holdoutAccuracy ?? 0],
      ['edgetune_process_resident_bytes', 'gauge', 'Resident memory of the agent process', memory.rss],
      ['edgetune_process_heap_used_bytes', 'gauge', 'JavaScript heap in use, main thread', memory.heapUsed],
      ['edgetune_process_external_bytes', 'gauge', 'Buffers and other memory outside the JavaScript heap, main thread', memory.external],
    ] as const;
    return `${lines.map(([name, type, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}`).join('\n')}\n`;
  }

  api(): AgentApi {
    return {
      health: () => this.health(),
      metrics: () => this.metrics(),
      listSamples: (q) => this.store.list(q),
      getSample: (id) => this.store.get(id),
      sampleImage: (id) => this.store.readImage(id),
      waitForQueueRoom: () => this.waitForQueueRoom(),
      upload: (file, label) => this.acceptUpload(file, label),
      setLabel: (id, label) => this.setLabel(id, label),
      deleteSample: (id) => this.deleteSample(id),
      classes: () => Object.entries(this.store.counts().perClass).map(([label, count]) => ({ label, count })),
      newClass: (label, ids) => this.newClass(label, ids),
      head: () => ({
        version: this.head?.meta.version ?? null,
        kind: this.head?.kind ?? null,
        labels: this.head?.labels ?? [],
        accuracy: this.head?.meta.metrics.holdoutAccuracy ?? null,
        openSet: this.head?.meta.openSet ?? null,
        unknownThreshold: this.config.head.unknownThreshold,
        versions: this.store.headVersions(),
      }),
      train: async () => ({ ...(await this.train()) }),
      rollback: (version) => ({ version: this.rollback(version).meta.version }),
      capture: async () => ({ sample: await this.capture() }),
      page: {
        device: this.config.device.id,
        events: this.events,
        headVersion: () => this.head?.meta.version ?? null,
        browse: (query) => this.store.browse(query),
        filterCounts: (asOf) => this.store.filterCounts(asOf),
        setLabels: (ids, label) => this.setLabels(ids, label),
        scores: (id) => this.scores(id),
      },
    };
  }
}

/** The API's token: the configured one; bound beyond loopback without one, the one in
 * <data.dir>/http-token, made on first start (a LAN must not drive the device without it). */
export function httpToken(config: AgentConfig, log: Logger): string | undefined {
  if (config.http.token || isLoopback(config.http.host)) return config.http.token;
  const file = join(config.data.dir, 'http-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length < 8) throw new ConfigError('TOKEN_INVALID', `${file}: the API token is shorter than 8 characters`);
    return token;
  }
  writeDurably(file, Buffer.from(`${randomBytes(24).toString('base64url')}\n`), { mode: 0o600 });
  log.warn('http.host is beyond loopback and http.token is not set: made a token for the API', { file });
  return readFileSync(file, 'utf8').trim();
}

/** The installed release this agent runs (set by a bundle's bin/edgetune), or null from a checkout. */
export function agentRelease(): string | null {
  return process.env.EDGETUNE_RELEASE || null;
}

function pick<T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

export { EdgetuneError };
