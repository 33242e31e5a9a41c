// Where the shared real data lives: models through EDGETUNE_MODEL_DIR, photos and datasets beside it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MODEL_DIR = resolve(REPO_ROOT, process.env.EDGETUNE_MODEL_DIR ?? '../shared/models');
export const SHARED_DIR = dirname(MODEL_DIR);
export const IMAGES_DIR = join(SHARED_DIR, 'images');
export const FLOWERS_DIR = join(SHARED_DIR, 'datasets', 'flowers128');

export function modelPath(file: string): string {
  return join(MODEL_DIR, file);
}

/** A temporary folder removed after the test file. */
export function tempDir(prefix = 'edgetune-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
