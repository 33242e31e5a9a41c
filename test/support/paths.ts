// Where the shared real data lives: models through EDGETUNE_MODEL_DIR, photos and datasets beside it.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MODEL_DIR = resolve(REPO_ROOT, process.env.EDGETUNE_MODEL_DIR ?? '../shared/models');
export const SHARED_DIR = dirname(MODEL_DIR);
export const IMAGES_DIR = join(SHARED_DIR, 'images');
export const FLOWERS_DIR = join(SHARED_DIR, 'datasets', 'flowers128');

/** Every `every`-th flowers128 photo, classes and files in sorted order (every class, every size). */
export function flowerPhotos(every = 1): string[] {
  return readdirSync(FLOWERS_DIR)
    .sort()
    .flatMap((c) =>
      readdirSync(join(FLOWERS_DIR, c))
        .sort()
        .map((f) => join(FLOWERS_DIR, c, f)),
    )
    .filter((_, i) => i % every === 0);
}

export function modelPath(file: string): string {
  return join(MODEL_DIR, file);
}

/** A temporary folder removed after the test file. */
export function tempDir(prefix = 'edgetune-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
