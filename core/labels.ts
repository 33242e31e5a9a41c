// Class names: they come from folder names, HTTP requests, head files and fleet messages, and end up in
// paths, tables and answers. A class may not be named like an answer the system gives itself.

/** "unknown" is what a head answers below its threshold; the others are object keys with a meaning. */
export const RESERVED_LABELS = ['unknown', '__proto__', 'constructor', 'prototype'] as const;

/** Why `label` cannot be a class name, or null when it can. */
export function reservedLabelProblem(label: string): string | null {
  const lower = label.trim().toLowerCase();
  return (RESERVED_LABELS as readonly string[]).includes(lower)
    ? `is reserved (${lower === 'unknown' ? 'the answer below the threshold' : 'a name with a meaning of its own'}); choose another class name`
    : null;
}
