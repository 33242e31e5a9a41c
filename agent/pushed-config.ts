// The part of an agent's config the console may change (the "config" command): any field of the agent's
// own schema except those that would cut the device off or move its data (its id, data folder, broker
// login, fleet key, release). Kept in the sample store, so a pushed setting survives a restart and wins
// over the config file until the console pushes another. Head and fleet-apply settings take effect at
// once; the rest at the next start, and the reply says which.

import type { SampleStore } from '../runtime/samples/store.js';
import { parseWith } from '../core/schema.js';
import { SyncError } from '../runtime/sync/protocol.js';
import { CATALOG } from '../runtime/models/catalog.js';
import { type AgentConfig, AgentConfigSchema } from './config.js';

export type PushedConfig = Record<string, Record<string, unknown>>;

/** Fields the console may never set. */
export const LOCKED_FIELDS = [
  'device.id',
  'data.dir',
  'fleet.url',
  'fleet.id',
  'fleet.username',
  'fleet.password',
  'fleet.publicKeyFile',
  'release',
];
/** Fields that name a file, folder or command on the device, or open its local API: a pushed config
 * (whoever holds the console's login) must not make the agent read, delete or run what the device's
 * owner did not name, nor expose the owner's API. */
export const DEVICE_OWNED_FIELDS = [
  'device.thermalFile',
  'sources.inbox.dir',
  'sources.camera.command',
  'http.host',
  'http.token',
  'http.allowedHosts',
];

/** Fields that take effect without a restart. */
export const LIVE_FIELDS = [
  'head.unknownThreshold',
  'head.retrainAfterLabels',
  'head.tolerance',
  'head.kind',
  'fleet.apply',
  'fleet.publishDelayMs',
];

const META_KEY = 'pushed_config';
const PLACEHOLDER_FLEET = {
  url: 'mqtt://placeholder',
  id: 'placeholder',
  username: 'placeholder',
  password: 'placeholder',
  publicKeyFile: 'placeholder',
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` laid on `base`, objects merged field by field, anything else replaced. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

/** Every leaf of a config object as "section.field[.sub]" -> value. */
export function leaves(value: Record<string, unknown>, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) for (const [p, x] of leaves(v, path)) out.set(p, x);
    else out.set(path, v);
  }
  return out;
}

export const pushedConfig = {
  /** Checks pushed values with the agent's own schema (types, ranges, unknown fields) and the locks. */
  parse(values: unknown, where = 'config command'): PushedConfig {
    if (!isObject(values) || !Object.values(values).every(isObject))
      throw new SyncError('SYNC_BAD_CONFIG', `${where}: expected an object of config sections, e.g. {"head": {"unknownThreshold": 0.6}}`);
    for (const path of leaves(values).keys()) {
      const locked = LOCKED_FIELDS.find((l) => path === l || path.startsWith(`${l}.`));
      if (locked)
        throw new SyncError(
          'SYNC_BAD_CONFIG',
          `${where}: field "${path}" cannot be pushed (it would cut the device off or move its data); change it on the device`,
        );
      const owned = DEVICE_OWNED_FIELDS.find((l) => path === l || path.startsWith(`${l}.`));
      if (owned)
        throw new SyncError(
          'SYNC_BAD_CONFIG',
          `${where}: field "${path}" cannot be pushed (it names a file or command on the device, or opens its local API); change it on the device`,
        );
    }
    const backbone = (values.model as Record<string, unknown> | undefined)?.backbone;
    if (backbone !== undefined && !CATALOG.some((m) => m.id === backbone))
      throw new SyncError(
        'SYNC_BAD_CONFIG',
        `${where}: field "model.backbone" can be pushed only as a catalog id (${CATALOG.map((m) => m.id).join(', ')}), not a path: got ${JSON.stringify(backbone)}`,
      );
    const base = AgentConfigSchema.parse({ device: { id: 'placeholder' }, fleet: PLACEHOLDER_FLEET });
    parseWith(AgentConfigSchema, deepMerge(base as unknown as Record<string, unknown>, values), where, SyncError, 'SYNC_BAD_CONFIG');
    return values as PushedConfig;
  },

  load(store: SampleStore): PushedConfig {
    const text = store.getMeta(META_KEY);
    if (text === undefined) return {};
    try {
      return pushedConfig.parse(JSON.parse(text), 'pushed config in the sample store');
    } catch {
      return {};
    }
  },

  /** Merges with what was pushed before, so two pushes of different fields both stay. */
  save(store: SampleStore, pushed: PushedConfig): void {
    store.setMeta(META_KEY, JSON.stringify(deepMerge(pushedConfig.load(store), pushed)));
  },

  /** Lays pushed values on the running config (its section objects are changed in place, so whoever
   * holds a section sees the new values). */
  apply(config: AgentConfig, pushed: PushedConfig): void {
    // Through the schema again, so a pushed section gets its defaults (a camera's timeout...).
    const merged = AgentConfigSchema.parse(deepMerge(config as unknown as Record<string, unknown>, pushed)) as unknown as Record<
      string,
      Record<string, unknown> | undefined
    >;
    const target = config as unknown as Record<string, Record<string, unknown> | undefined>;
    for (const section of Object.keys(pushed)) {
      const current = target[section];
      if (current && merged[section]) Object.assign(current, merged[section]);
    }
  },

  /** Pushed fields that take effect only at the next start. */
  needsRestart(pushed: PushedConfig): string[] {
    return [...leaves(pushed).keys()].filter((p) => !LIVE_FIELDS.includes(p));
  },

  /** The config as the console may see it: everything but the secrets. */
  current(config: AgentConfig): Record<string, unknown> {
    const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
    if (copy.fleet) delete copy.fleet.password;
    if (copy.http) delete copy.http.token;
    return copy;
  },
};
