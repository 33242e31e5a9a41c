// Configuration as a fleet: agent settings kept at the console for the whole fleet, a tag, or one
// device, checked by the agent's own schema, shown as a per-device diff against what each device
// reports before anything is sent, and pushed with the "config" command. A device's settings are the
// fleet's, then its tags' (in name order), then its own, each laid over the one before.

import { ConsoleError, errorMessage } from '../core/errors.js';
import { deepMerge, leaves, pushedConfig } from '../agent/pushed-config.js';
import type { DeviceView } from './device-view.js';
import type { Registry } from './registry.js';

export type ConfigScope = { kind: 'fleet' } | { kind: 'tag'; tag: string } | { kind: 'device'; device: string };

export interface ConfigChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface ConfigTarget {
  device: string;
  /** unchanged: nothing to send; pushed: sent and applied; offline, failed: not applied. */
  status: 'unchanged' | 'pushed' | 'preview' | 'offline' | 'failed';
  diff: ConfigChange[];
  restartRequired?: string[];
  error?: string;
}

export function parseScope(text: string): ConfigScope {
  if (text === 'fleet') return { kind: 'fleet' };
  const [kind, name] = text.split(':', 2) as [string, string | undefined];
  if ((kind === 'tag' || kind === 'device') && name && /^[A-Za-z0-9._:-]{1,64}$/.test(name))
    return kind === 'tag' ? { kind, tag: name } : { kind, device: name };
  throw new ConsoleError('CONSOLE_BAD_SCOPE', `config scope "${text.slice(0, 80)}" must be "fleet", "tag:NAME" or "device:ID"`);
}

const scopeKey = (s: ConfigScope) => (s.kind === 'fleet' ? 'fleet' : s.kind === 'tag' ? `tag:${s.tag}` : `device:${s.device}`);

/** The settings the console keeps for a device: fleet, then tags, then its own. */
export function effectiveConfig(layers: Map<string, Record<string, unknown>>, device: DeviceView): Record<string, unknown> {
  let config: Record<string, unknown> = layers.get('fleet') ?? {};
  for (const tag of [...device.tags].sort()) config = deepMerge(config, layers.get(`tag:${tag}`) ?? {});
  return deepMerge(config, layers.get(`device:${device.id}`) ?? {});
}

/** The fields whose value the device reports differently from `wanted`. */
export function configDiff(reported: Record<string, unknown> | null, wanted: Record<string, unknown>): ConfigChange[] {
  const have = leaves(reported ?? {});
  return [...leaves(wanted)]
    .filter(([field, to]) => JSON.stringify(have.get(field)) !== JSON.stringify(to))
    .map(([field, to]) => ({ field, from: have.get(field) ?? null, to }));
}

export interface FleetConfigHost {
  readonly registry: Registry;
  devices(): DeviceView[];
  command(device: string, cmd: 'config', args: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Previews (dryRun) or saves and pushes `values` at `scope`; returns every device it concerns. */
export async function setFleetConfig(host: FleetConfigHost, scope: ConfigScope, values: unknown, dryRun: boolean): Promise<ConfigTarget[]> {
  const checked = pushedConfig.parse(values, `config for ${scopeKey(scope)}`);
  const layers = host.registry.configLayers();
  layers.set(scopeKey(scope), deepMerge(layers.get(scopeKey(scope)) ?? {}, checked));
  const devices = host
    .devices()
    .filter((d) => d.status !== 'never-connected')
    .filter((d) => scope.kind === 'fleet' || (scope.kind === 'tag' ? d.tags.includes(scope.tag) : d.id === scope.device));
  if (scope.kind === 'device' && devices.length === 0)
    throw new ConsoleError('CONSOLE_NO_DEVICES', `no device "${scope.device}" has connected`);
  if (!dryRun) host.registry.setConfigLayer(scopeKey(scope), layers.get(scopeKey(scope))!);
  return Promise.all(
    devices.map(async (d): Promise<ConfigTarget> => {
      const wanted = effectiveConfig(layers, d);
      const diff = configDiff(d.config, wanted);
      if (diff.length === 0) return { device: d.id, status: 'unchanged', diff };
      if (dryRun) return { device: d.id, status: 'preview', diff };
      if (!d.online) return { device: d.id, status: 'offline', diff, error: 'offline: push again when it is back' };
      try {
        const reply = await host.command(d.id, 'config', wanted);
        return { device: d.id, status: 'pushed', diff, restartRequired: (reply.restartRequired as string[] | undefined) ?? [] };
      } catch (err) {
        return { device: d.id, status: 'failed', diff, error: errorMessage(err) };
      }
    }),
  );
}
