// The agent's one config file (YAML or JSON) plus environment overrides, validated by one schema that
// also documents every field (docs/agent.md is written from the same names). Defaults live here only.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../core/errors.js';
import { DEFAULT_BACKBONE_ID } from '../runtime/models/catalog.js';
import { parseWith } from '../core/schema.js';

/** A byte limit, 20 MiB unless set. */
const Bytes20MiB = () =>
  z
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024);

const Id = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash or underscore (1-64)');

export const AgentConfigSchema = z.strictObject({
  device: z
    .strictObject({
      /** Device id in the fleet; defaults to fleet.username, else the host name. With a fleet it
       * must be the broker login (the broker lets a device write only under its own id). */
      id: Id.default(() => sanitizeId(hostname())),
      /** Device profile id, or "auto" to detect from /proc and /etc. */
      profile: z.string().default('auto'),
      /** The kernel's CPU temperature file (millidegrees), reported to the console. */
      thermalFile: z.string().min(1).default('/sys/class/thermal/thermal_zone0/temp'),
    })
    .prefault({}),
  data: z
    .strictObject({
      /** Folder for the sample store (images, SQLite database). */
      dir: z.string().min(1).default('./edgetune-data'),
      /** Keep embeddings and metadata only, never image files. */
      embeddingsOnly: z.boolean().default(false),
      /** Share of samples held out (stable by content hash) to judge every new head. */
      holdoutFraction: z.number().min(0).max(0.5).default(0.2),
      retention: z
        .strictObject({
          maxSamples: z.number().int().positive().optional(),
          maxBytes: z.number().int().positive().optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  model: z
    .strictObject({
      /** Backbone catalog id or model file path. */
      backbone: z.string().min(1).default(DEFAULT_BACKBONE_ID),
      engine: z.enum(['tflite', 'onnx']).optional(),
      workers: z.number().int().positive().optional(),
      threads: z.number().int().positive().optional(),
      batchSize: z.number().int().positive().optional(),
      /** Refuse images with more pixels than this before decoding them. */
      maxImagePixels: z.number().int().positive().optional(),
    })
    .prefault({}),
  head: z
    .strictObject({
      kind: z.enum(['softmax', 'prototype']).default('softmax'),
      /** Retrain after this many new or changed labels (0: only on command). */
      retrainAfterLabels: z.number().int().min(0).default(10),
      /**
       * Override the head's calibrated unknown: answer "unknown" when the top probability is below this.
       * Unset or null: the head decides by its distance to the classes it knows.
       */
      unknownThreshold: z.number().min(0).max(1).nullable().default(null),
      /** A new head is kept only if its holdout accuracy is at least the current one's minus this. */
      tolerance: z.number().min(0).max(1).default(0),
    })
    .prefault({}),
  queue: z
    .strictObject({
      /** Images waiting to be embedded; beyond it the drop policy applies (a fast camera cannot exhaust memory). */
      limit: z.number().int().positive().optional(),
      /** Camera frames are dropped when the queue is full, oldest or newest first; nothing else is. */
      drop: z.enum(['oldest', 'newest']).default('oldest'),
      /** An HTTP upload waits this long for room in a full queue, then gets 503 with Retry-After (nothing stored). */
      uploadWaitMs: z.number().int().min(0).default(30_000),
    })
    .prefault({}),
  sources: z
    .strictObject({
      inbox: z
        .strictObject({
          dir: z.string().min(1),
          /** After a file is stored: move it to inbox/done, or delete it. */
          after: z.enum(['move', 'delete']).default('move'),
          pollMs: z.number().int().positive().default(1000),
          /** Larger files are moved to rejected/ without being read, bytes. */
          maxBytes: Bytes20MiB(),
        })
        .optional(),
      camera: z
        .strictObject({
          /** argv of a command that writes one image to stdout, e.g. ["rpicam-still", "-n", "-o", "-"], or
           * with `stream` an MJPEG stream, e.g. ["rpicam-vid", "-t", "0", "-n", "--codec", "mjpeg", "-o", "-"]. */
          command: z.array(z.string().min(1)).min(1),
          /** The command runs once and writes JPEG frames back to back (MJPEG) instead of one image per run. */
          stream: z.boolean().default(false),
          /** Capture every this many ms (stream: keep at most one frame per this many ms); leave out to
           * capture only on trigger (POST /api/capture), or with `stream` to keep every frame. */
          intervalMs: z.number().int().positive().optional(),
          timeoutMs: z.number().int().positive().default(10_000),
          /** Largest image accepted from the command, bytes. */
          maxBytes: Bytes20MiB(),
        })
        .optional(),
    })
    .prefault({}),
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** With a token, every route but the page needs it ("Authorization: Bearer <token>", or the page's
       * login). Bound beyond loopback without one, the agent makes one in <data.dir>/http-token. */
      token: z.string().min(8).optional(),
      /** Host names the API answers to besides IP addresses, localhost and the host name (DNS rebinding). */
      allowedHosts: z.array(z.string().min(1)).default([]),
      /** Largest upload accepted, bytes. */
      maxUploadBytes: Bytes20MiB(),
      /** Uploads received at once (each streams to a temp file); more wait, then get 503. */
      maxConcurrentUploads: z.number().int().positive().default(2),
    })
    .prefault({}),
  /** Where this agent's release is installed (written by `edgetune deploy flash`); with a fleet, it
   * lets the console push agent updates (docs/deploy.md). Leave out for an agent run from a checkout. */
  release: z
    .strictObject({
      /** The install prefix: releases are in <prefix>/opt/edgetune/releases. */
      prefix: z.string().min(1).default('/'),
      /** How the agent is started: systemd, or a plain process with a pid file. */
      service: z.enum(['systemd', 'process']).default('systemd'),
      /** Apply agent updates signed by the fleet key. */
      updates: z.boolean().default(true),
    })
    .optional(),
  /** Fleet sync over MQTT (docs/protocol.md); leave out to run stand-alone. */
  fleet: z
    .strictObject({
      /** Broker URL, e.g. mqtt://console.local:1883 */
      url: z.string().regex(/^mqtts?:\/\/.+/, 'an mqtt:// or mqtts:// URL'),
      id: Id,
      username: Id,
      password: z.string().min(1),
      /** The fleet's ed25519 public key (PEM file): only heads signed by it are applied. */
      publicKeyFile: z.string().min(1),
      /** What to do with a verified fleet head: make it the current head, average it with the
       * device's own (weighted by samples per class), or only report it. */
      apply: z.enum(['replace', 'merge', 'off']).default('replace'),
      /** Heads kept within this many milliseconds of each other are sent once, the last one. */
      publishDelayMs: z.number().int().min(0).default(1000),
      protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
      /** The state (with vitals) goes out at least this often, so "last seen" is the last message. */
      heartbeatMs: z.number().int().min(1000).default(60_000),
    })
    .optional(),
  log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
});

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

function sanitizeId(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'device';
}

/** Reads a YAML or JSON file; `undefined` path means defaults only. */
export function readConfigFile(path: string | undefined): unknown {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CONFIG_UNREADABLE', `${path}: cannot read config: ${errorMessage(err)}`);
  }
  try {
    return (path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)) ?? {};
  } catch (err) {
    throw new ConfigError('CONFIG_SYNTAX', `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${errorMessage(err)}`);
  }
}

/** Variables that look like overrides but are not: the model folder every command reads. */
const NOT_OVERRIDES = new Set(['EDGETUNE_MODEL_DIR']);

/**
 * Environment overrides: EDGETUNE_<SECTION>_<FIELD>, e.g. EDGETUNE_HTTP_PORT=9000,
 * EDGETUNE_DATA_DIR=/var/lib/edgetune, EDGETUNE_HEAD_KIND=prototype. Values are parsed as JSON when they
 * parse (numbers, booleans, arrays), else taken as strings.
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const config = structuredClone((raw ?? {}) as Record<string, unknown>);
  const shape = AgentConfigSchema.shape;
  for (const section of Object.keys(shape)) {
    for (const [key, value] of Object.entries(env)) {
      const prefix = `EDGETUNE_${section.toUpperCase()}_`;
      if (!key.startsWith(prefix) || value === undefined || NOT_OVERRIDES.has(key)) continue;
      const field = camelCase(key.slice(prefix.length));
      config[section] ??= {};
      const target = config[section] as Record<string, unknown>;
      target[field] = parseEnvValue(value);
    }
  }
  return config;
}

function camelCase(envName: string): string {
  return envName.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export function loadAgentConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const raw = bindDeviceToLogin(applyEnvOverrides(readConfigFile(path), env));
  const config = parseWith(AgentConfigSchema, raw, path ?? '(defaults and environment)', ConfigError, 'CONFIG_INVALID');
  checkDeviceLogin(config, path ?? '(defaults and environment)');
  return config;
}

/** Without a device.id, a fleet device is its broker login (not the host name, which the broker would
 * refuse). */
function bindDeviceToLogin(raw: Record<string, unknown>): Record<string, unknown> {
  const fleet = raw.fleet as { username?: unknown } | undefined;
  const device = (raw.device ?? {}) as Record<string, unknown>;
  if (typeof fleet?.username !== 'string' || device.id !== undefined) return raw;
  return { ...raw, device: { ...device, id: fleet.username } };
}

/** A device whose id is not its login is refused by the broker on every message and loops through
 * reconnects; say so at start instead. */
export function checkDeviceLogin(config: AgentConfig, where: string): void {
  if (config.fleet && config.fleet.username !== config.device.id)
    throw new ConfigError(
      'CONFIG_DEVICE_LOGIN_MISMATCH',
      `${where}: device.id "${config.device.id}" is not the broker login fleet.username "${config.fleet.username}": the broker lets a device write only under its own login, so set device.id: ${config.fleet.username} (or run edgetune console add-device ${config.device.id} for a login of that name)`,
    );
}
