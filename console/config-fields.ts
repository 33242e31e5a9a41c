// Every agent setting the console may push, read from the agent's own schema (agent/config.ts): its
// name, type, allowed values, range and default, for the page's config editor to offer and explain.
// The values themselves are still checked by that schema when they are sent (agent/pushed-config.ts).

import { z } from 'zod';
import { AgentConfigSchema } from '../agent/config.js';
import { LIVE_FIELDS, LOCKED_FIELDS } from '../agent/pushed-config.js';
import type { ConfigFieldJson } from './api-types.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  default?: unknown;
  description?: string;
}

let cached: ConfigFieldJson[] | undefined;

export function configFields(): ConfigFieldJson[] {
  cached ??= walk(z.toJSONSchema(AgentConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema, '').filter(
    (f) => !LOCKED_FIELDS.some((locked) => f.field === locked || f.field.startsWith(`${locked}.`)),
  );
  return cached;
}

function walk(schema: JsonSchema, prefix: string): ConfigFieldJson[] {
  const options = schema.anyOf ?? [schema];
  const object = options.find((o) => o.properties);
  if (object?.properties && prefix.split('.').length < 3)
    return Object.entries(object.properties).flatMap(([key, sub]) => walk(sub, prefix ? `${prefix}.${key}` : key));
  if (!prefix.includes('.')) return []; // a top-level value that is not a section
  const types = options.flatMap((o) => (Array.isArray(o.type) ? o.type : o.type ? [o.type] : []));
  const typed = options.find((o) => o.type !== 'null') ?? schema;
  const max = typed.maximum !== undefined && typed.maximum < Number.MAX_SAFE_INTEGER ? typed.maximum : undefined;
  const min = typed.minimum ?? typed.exclusiveMinimum;
  return [
    {
      field: prefix,
      type: typed.enum ? 'enum' : (types.find((t) => t !== 'null') ?? 'json'),
      nullable: types.includes('null'),
      ...(typed.enum ? { values: typed.enum.map(String) } : {}),
      ...(min !== undefined ? { min } : {}),
      ...(max !== undefined ? { max } : {}),
      ...(schema.default !== undefined ? { default: schema.default } : {}),
      live: LIVE_FIELDS.includes(prefix),
    },
  ];
}
