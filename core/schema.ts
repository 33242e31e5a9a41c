// Validation at the edge: every file or payload we read is checked against a zod schema, and a failure
// becomes one domain error naming the file and the field path, with what was expected. A key the schema
// does not know is an error too (a typo must not be silently ignored), with the nearest known field.

import type { z } from 'zod';
import type { EdgetuneError, ErrorCode } from './errors.js';

type ErrorClass = new (code: ErrorCode, message: string) => EdgetuneError;

export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
  ErrorType: ErrorClass,
  code: ErrorCode,
): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const field = [...issue.path, key].join('.');
    const near = nearest(key, knownKeys(schema, issue.path));
    throw new ErrorType(code, `${where}: unknown field "${field}"${near ? `: did you mean "${[...issue.path, near].join('.')}"?` : ''}`);
  }
  const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new ErrorType(code, `${where}: field "${field}": ${issue.message}`);
}

/** The keys an object schema at `path` knows, looking through optional, default and similar wrappers. */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let at: z.ZodType | undefined = unwrap(schema);
  for (const segment of path) {
    const def = at?.def as { type?: string; shape?: Record<string, z.ZodType>; element?: z.ZodType } | undefined;
    at = def?.type === 'object' ? def.shape?.[String(segment)] : def?.type === 'array' ? def.element : undefined;
    at = at && unwrap(at);
  }
  const def = at?.def as { type?: string; shape?: Record<string, z.ZodType> } | undefined;
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let at = schema;
  for (;;) {
    const def = at.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType) at = def.innerType;
    else if (def.type === 'pipe' && def.in) at = def.in;
    else return at;
  }
}

/** The known key closest to `key` by edit distance, if it is close enough to be a typo. */
export function nearest(key: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(key.length / 3)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
