// The part of an agent's config the console may change at run time (the "config" command): how the
// head answers and retrains, and what the device does with fleet heads. Kept in the sample store, so a
// pushed setting survives a restart and wins over the config file until the console pushes another.

import { z } from 'zod';
import type { SampleStore } from '../runtime/samples/store.js';
import { parseWith } from '../core/schema.js';
import { SyncError } from '../runtime/sync/protocol.js';
import type { AgentConfig } from './config.js';

const PushedSchema = z
  .object({
    head: z
      .object({
        unknownThreshold: z.number().min(0).max(1).nullable(),
        retrainAfterLabels: z.number().int().min(0),
        tolerance: z.number().min(0).max(1),
      })
      .partial()
      .strict()
      .optional(),
    fleet: z
      .object({ apply: z.enum(['replace', 'merge', 'off']) })
      .partial()
      .strict()
      .optional(),
  })
  .strict();
export type PushedConfig = z.infer<typeof PushedSchema>;

const META_KEY = 'pushed_config';

export const pushedConfig = {
  parse(values: unknown, where = 'config command'): PushedConfig {
    return parseWith(PushedSchema, values, where, SyncError, 'SYNC_BAD_CONFIG');
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
    const before = pushedConfig.load(store);
    const merged = { head: { ...before.head, ...pushed.head }, fleet: { ...before.fleet, ...pushed.fleet } };
    store.setMeta(META_KEY, JSON.stringify(merged));
  },

  apply(config: AgentConfig, pushed: PushedConfig): void {
    Object.assign(config.head, pushed.head);
    if (config.fleet && pushed.fleet) Object.assign(config.fleet, pushed.fleet);
  },

  current(config: AgentConfig): PushedConfig {
    const { unknownThreshold, retrainAfterLabels, tolerance } = config.head;
    return { head: { unknownThreshold, retrainAfterLabels, tolerance }, ...(config.fleet ? { fleet: { apply: config.fleet.apply } } : {}) };
  },
};
