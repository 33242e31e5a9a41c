// Shared by the bench scripts: where the shared data is, and a plain text table.

import { dirname, resolve } from 'node:path';

/** The folder holding models/, images/ and datasets/ (EDGETUNE_MODEL_DIR's parent; run from the repo root). */
export function sharedDir(): string {
  return dirname(resolve(process.env.EDGETUNE_MODEL_DIR ?? '../shared/models'));
}

export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  console.log(title);
  for (const [n, r] of cells.entries()) {
    console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}
