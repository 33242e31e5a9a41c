// How the CLI talks: tables for people, JSON for scripts, errors as one clear line (stack with --debug).

import { EdgetuneError } from '../core/errors.js';

/** Control characters (terminal escape sequences among them) shown as \uXXXX, tab and newline kept:
 * a label or file name cannot move the cursor, retitle the window or hide text. Valid inside JSON. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Everything the command prints on stdout goes through `printable`; a reader that stops reading (`| head`)
 * ends the command quietly, as it ends a Unix tool, instead of with a stack trace. */
export function escapeStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
  const write = process.stdout.write.bind(process.stdout) as (chunk: unknown, ...rest: unknown[]) => boolean;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === 'string' ? printable(chunk) : chunk, ...rest)) as typeof process.stdout.write;
}

/** Measurements to 6 significant digits: `0.045`, not `0.04500000000000004`. */
const SIGNIFICANT = 6;
const rounded = (_key: string, v: unknown) =>
  typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toPrecision(SIGNIFICANT)) : v;

/**
 * One JSON document on stdout. Non-integer numbers are measurements (accuracy, gains, times) and are
 * rounded; `exact` keeps every digit, for values that are data (quantization scales, embeddings).
 */
export function printJson(value: unknown, options: { exact?: boolean } = {}): void {
  process.stdout.write(`${JSON.stringify(value, options.exact ? undefined : rounded, 2)}\n`);
}

/** Left-aligned text columns, right-aligned numbers. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(1) : n.toFixed(3);
}

export function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

export class UsageError extends EdgetuneError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Prints an error the way a person wants to read it; returns the exit code. */
export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof EdgetuneError && !debug) {
    process.stderr.write(`edgetune: ${printable(err.message)} [${err.code}]\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  process.stderr.write(`edgetune: ${printable(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  return 1;
}
