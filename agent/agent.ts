// The on-device agent: sources -> sample store -> backbone (worker threads) -> head, with on-device
// training, a local HTTP API and labelling page, and graceful shutdown. One instance per device.

import type { DeviceProfile } from '../devices/profiles.js';
import { CameraSource } from '../devices/sources/camera.js';
import { StreamCameraSource } from '../devices/sources/camera-stream.js';
import { InboxSource } from '../devices/sources/inbox.js';
import { type SampleSource, SourceError, type TriggerSource, validateLabel } from '../devices/sources/source.js';
import { Backbone } from '../runtime/backbone/backbone.js';
import { EdgetuneError, errorMessage } from '../core/errors.js';
import { type Head, encodeHead } from '../runtime/head/index.js';
import { resolveModel } from '../runtime/models/resolve.js';
import { type Sample, SampleError, SampleStore } from '../runtime/samples/store.js';
import type { AgentConfig } from './config.js';
import { type AgentApi, startHttpServer } from './http.js';
import type { HealthJson } from './api-types.js';
import { type Logger, createLogger } from '../core/log.js';
import { type Predictor, SamplePipeline } from './pipeline.js';
import { type TrainOutcome, compareOnHoldout, loadCurrentHead, trainFromStore } from './trainer.js';
import { mergeHeads } from '../runtime/head/merge.js';
import { type AppliedHead, FleetSync } from './fleet-sync.js';
import { pushedConfig } from './pushed-config.js';
import { AgentUpdater } from './updater.js';
import { readFileSync } from 'node:fs';
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
    retention: {
      maxSamples: retention.maxSamples ?? profile?.retention.maxSamples,
      maxBytes: retention.maxBytes ?? profile?.retention.maxBytes,
    },
  };
}

export class Agent {
  private head: Head | undefined;
  private labelsSinceTraining = 0;
  private training: Promise<TrainOutcome> | undefined;
  private retrainTimer: NodeJS.Timeout | undefined;
  private readonly sources: SampleSource[] = [];
  private camera: TriggerSource | undefined;
  private fleet: FleetSync | undefined;
  private updater: AgentUpdater | undefined;
  private http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  private readonly startedAt = Date.now();
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: AgentConfig,
    readonly store: SampleStore,
    readonly backbone: Backbone,
    readonly pipeline: SamplePipeline,
    private readonly log: Logger,
    private readonly retention: { maxSamples?: number | undefined; maxBytes?: number | undefined },
  ) {}

  static async start(config: AgentConfig, options: AgentOptions = {}): Promise<Agent> {
    const log = options.log ?? createLogger(config.log.level, { device: config.device.id });
    const store = SampleStore.open(config.data.dir, {
      embeddingsOnly: config.data.embeddingsOnly,
      holdoutFraction: config.data.holdoutFraction,
    });
    let backbone: Backbone | undefined;
    try {
      const model = await resolveModel(config.model.backbone);
      const settings = effectiveSettings(config, options.profile);
      backbone = await Backbone.open(model, {
        ...pick({ engine: settings.engine, workers: settings.workers, threads: settings.threads, batchSize: settings.batchSize }),
      });
      // The pipeline asks the agent for the current head, and the agent owns the pipeline.
      const owner: { agent?: Agent } = {};
      const pipeline = new SamplePipeline(store, backbone, () => owner.agent?.predictor(), log, {
        queueLimit: settings.queueLimit,
        drop: config.queue.drop,
        concurrency: backbone.settings.workers * backbone.settings.batchSize,
        ...pick({ maxPixels: settings.maxImagePixels }),
      });
      const agent = new Agent(config, store, backbone, pipeline, log, settings.retention);
      owner.agent = agent;
      agent.head = loadCurrentHead(store, { backboneId: backbone.id, dim: backbone.dim });
      pushedConfig.apply(config, pushedConfig.load(store));
      const requeued = pipeline.requeueMissing();
      if (config.http.enabled) {
        agent.http = await startHttpServer(
          agent.api(),
          { host: config.http.host, port: config.http.port, token: config.http.token, maxUploadBytes: config.http.maxUploadBytes },
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
    return { predict: (embedding) => head.predict(embedding, { threshold }) };
  }

  /** Stores a sample from any source; resolves once it is durable. */
  ingest(bytes: Buffer, label: string | null, origin: string): ReturnType<SamplePipeline['ingest']> {
    const clean = label === null ? null : validateLabel(label, origin);
    const result = this.pipeline.ingest(bytes, { origin, label: clean });
    if (clean !== null && (result.created || result.sample.label !== clean)) this.noteLabelChange();
    this.enforceRetention();
    return result;
  }

  setLabel(id: string, label: string | null): Sample {
    const clean = label === null ? null : validateLabel(label, `sample ${id.slice(0, 12)}`);
    const before = this.store.get(id);
    if (!before) throw new SampleError('SAMPLE_NOT_FOUND', `no sample ${id}`);
    const sample = this.store.setLabel(id, clean);
    if (before.label !== clean) this.noteLabelChange();
    return sample;
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
        this.repredict();
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
    this.repredict();
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
        this.log.info('config pushed by the console', pushed);
        return { applied: pushed };
      },
      state: () => this.fleetState(),
    };
  }

  /** What the console shows for this device. */
  private fleetState(): Record<string, unknown> {
    const counts = this.store.counts();
    const head = this.head;
    return {
      release: agentRelease(),
      ...(this.updater ? { update: this.updater.status } : {}),
      engine: this.backbone.engine,
      headKind: head?.kind ?? null,
      headVersion: head?.meta.version ?? null,
      labels: head?.labels ?? [],
      holdoutAccuracy: head?.meta.metrics.holdoutAccuracy ?? null,
      samples: counts.samples,
      labelled: counts.labelled,
      holdout: counts.holdout,
      perClass: counts.perClass,
      config: pushedConfig.current(this.config),
    };
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
    this.repredict();
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
      await this.fleet?.stop();
      await this.pipeline.stop();
      await this.backbone.close();
      this.store.close();
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }

  /** A new head answers again for the recent unlabelled samples, so the page shows its predictions. */
  private repredict(limit = 1000): void {
    const predictor = this.predictor();
    if (!predictor) return;
    const predictions: { id: string; label: string; score: number }[] = [];
    for (const sample of this.store.list({ labelled: false, limit })) {
      const embedding = this.store.getEmbedding(sample.id, this.backbone.id);
      if (!embedding) continue;
      const p = predictor.predict(embedding);
      predictions.push({ id: sample.id, label: p.label, score: p.score });
    }
    this.store.setPredictions(predictions);
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

  private enforceRetention(): void {
    const { maxSamples, maxBytes } = this.retention;
    if (maxSamples === undefined && maxBytes === undefined) return;
    const deleted = this.store.enforceRetention({ ...pick({ maxSamples, maxBytes }) });
    if (deleted > 0) this.log.info('retention removed samples', { deleted });
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
        const result = this.ingest(sample.bytes, sample.label, sample.origin);
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
      queue: this.pipeline.stats.queued,
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
      upload: (bytes, label) => this.ingest(bytes, label, 'upload'),
      setLabel: (id, label) => this.setLabel(id, label),
      deleteSample: (id) => this.store.delete(id),
      classes: () => Object.entries(this.store.counts().perClass).map(([label, count]) => ({ label, count })),
      head: () => ({
        version: this.head?.meta.version ?? null,
        kind: this.head?.kind ?? null,
        labels: this.head?.labels ?? [],
        accuracy: this.head?.meta.metrics.holdoutAccuracy ?? null,
        versions: this.store.headVersions(),
      }),
      train: async () => ({ ...(await this.train()) }),
      rollback: (version) => ({ version: this.rollback(version).meta.version }),
      capture: async () => ({ sample: await this.capture() }),
    };
  }
}

/** The installed release this agent runs (set by a bundle's bin/edgetune), or null from a checkout. */
export function agentRelease(): string | null {
  return process.env.EDGETUNE_RELEASE || null;
}

function pick<T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

export { EdgetuneError };
