// Finding a model file and proving it is the right one. Order: explicit path -> EDGETUNE_MODEL_DIR ->
// local cache -> download (only for catalog entries, checksum verified before the file is kept).
// A checksum mismatch is always an error; we never silently fetch a replacement.

import { sha256Hex } from '../../core/hash.js';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { ModelError, errorMessage } from '../../core/errors.js';
import { CATALOG, DEFAULT_BACKBONE_ID, LABEL_FILES, catalogEntry } from './catalog.js';
import { type ModelManifest, parseManifest } from './manifest.js';

export interface ResolveOptions {
  /** Overrides EDGETUNE_MODEL_DIR. */
  modelDir?: string;
  /** Overrides the cache folder (default: $XDG_CACHE_HOME/edgetune or ~/.cache/edgetune). */
  cacheDir?: string;
  /** Allow downloading catalog models that are found nowhere else (default true). */
  download?: boolean;
  /** Used for downloads; tests pass their own. */
  fetchImpl?: typeof fetch;
  /** Known models (default: the built-in catalog). */
  catalog?: readonly ModelManifest[];
}

export type ModelLocation = 'path' | 'model-dir' | 'cache' | 'download';

export interface ResolvedModel {
  manifest: ModelManifest;
  path: string;
  bytes: Uint8Array;
  location: ModelLocation;
}

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'edgetune');
}

function modelDirOf(options: ResolveOptions): string | undefined {
  return options.modelDir ?? (process.env.EDGETUNE_MODEL_DIR || undefined);
}

/**
 * A model file named on the command line: the path as given, or, for a bare file name that is not in the
 * current folder, the file of that name in EDGETUNE_MODEL_DIR (where the catalog ids already look).
 */
export function findModelFile(ref: string, options: Pick<ResolveOptions, 'modelDir'> = {}): string {
  const here = resolve(ref);
  if (existsSync(here) || ref.includes('/')) return here;
  const modelDir = modelDirOf(options);
  const there = modelDir ? join(modelDir, ref) : undefined;
  return there && existsSync(there) ? there : here;
}

function looksLikePath(ref: string): boolean {
  return ref.includes('/') || /\.(tflite|onnx)$/i.test(ref);
}

/**
 * Resolves a model reference: a catalog id (`mobilenet_v2_1.0_224_quant`), or a path to a model file whose
 * manifest sits beside it as `<file>.json` (or which the catalog knows by file name).
 */
export async function resolveModel(ref: string = DEFAULT_BACKBONE_ID, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const catalog = options.catalog ?? CATALOG;
  if (looksLikePath(ref)) return resolvePath(findModelFile(ref, options), catalog);
  const manifest = catalogEntry(ref, catalog);
  if (!manifest) {
    throw new ModelError(
      'MODEL_UNKNOWN',
      `unknown model "${ref}": give a path to a .tflite/.onnx file or one of: ${catalog.map((m) => m.id).join(', ')}`,
    );
  }
  const modelDir = modelDirOf(options);
  if (modelDir) {
    const candidate = join(modelDir, manifest.file);
    if (existsSync(candidate)) return { ...(await readVerified(candidate, manifest)), location: 'model-dir' };
  }
  const cached = join(options.cacheDir ?? defaultCacheDir(), 'models', manifest.file);
  if (existsSync(cached)) return { ...(await readVerified(cached, manifest)), location: 'cache' };
  if (options.download === false) {
    throw new ModelError(
      'MODEL_NOT_FOUND',
      `model "${ref}" is not in ${modelDir ? `EDGETUNE_MODEL_DIR (${modelDir})` : 'EDGETUNE_MODEL_DIR (unset)'} nor in the cache (${dirname(cached)}), and downloading is off`,
    );
  }
  const bytes = await download(manifest.source, manifest.sha256, cached, options.fetchImpl ?? fetch);
  return { manifest, path: cached, bytes, location: 'download' };
}

async function resolvePath(path: string, catalog: readonly ModelManifest[]): Promise<ResolvedModel> {
  if (!existsSync(path)) throw new ModelError('MODEL_NOT_FOUND', `${path}: no such model file`);
  const sidecar = `${path}.json`;
  let manifest: ModelManifest | undefined;
  if (existsSync(sidecar)) {
    manifest = parseManifest(await readJson(sidecar), sidecar);
  } else {
    manifest = catalogEntry(basename(path), catalog);
  }
  if (!manifest) {
    throw new ModelError(
      'MANIFEST_MISSING',
      `${path}: no manifest: write ${basename(sidecar)} beside it (see docs/models.md) or use a catalog model`,
    );
  }
  return { ...(await readVerified(path, manifest)), location: 'path' };
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelError('MANIFEST_INVALID', `${path}: not valid JSON (${errorMessage(err)})`);
  }
}

async function readVerified(path: string, manifest: ModelManifest): Promise<Omit<ResolvedModel, 'location'>> {
  const bytes = new Uint8Array(await readFile(path));
  const actual = sha256Hex(bytes);
  if (actual !== manifest.sha256) {
    const sizeNote =
      manifest.bytes !== undefined && manifest.bytes !== bytes.length
        ? ` (${bytes.length} bytes, expected ${manifest.bytes}: truncated or replaced?)`
        : '';
    throw new ModelError(
      'CHECKSUM_MISMATCH',
      `${path}: sha256 ${actual} does not match ${manifest.sha256} expected for model "${manifest.id}"${sizeNote}`,
    );
  }
  return { manifest, path, bytes };
}

async function download(url: string, sha256: string, target: string, fetchImpl: typeof fetch): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    const response = await fetchImpl(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    throw new ModelError('DOWNLOAD_FAILED', `${url}: download failed: ${errorMessage(err)}`, { cause: err });
  }
  const actual = sha256Hex(bytes);
  if (actual !== sha256) {
    throw new ModelError('CHECKSUM_MISMATCH', `${url}: downloaded sha256 ${actual} does not match ${sha256}; not kept`);
  }
  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.${process.pid}.part`;
  try {
    await writeFile(temp, bytes, { flush: true });
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
  return bytes;
}

/** Reads a classifier's labels file from beside the model, or from the model dir / cache. */
export async function loadLabels(model: ResolvedModel, options: ResolveOptions = {}): Promise<string[]> {
  const name = model.manifest.labels;
  if (!name) throw new ModelError('LABELS_MISSING', `model "${model.manifest.id}" has no labels file: it is not a classifier`);
  const candidates = [join(dirname(model.path), name)];
  const modelDir = modelDirOf(options);
  if (modelDir) candidates.push(join(modelDir, name));
  candidates.push(join(options.cacheDir ?? defaultCacheDir(), 'models', name));
  let path = candidates.find((c) => existsSync(c));
  const known = LABEL_FILES[name];
  if (!path && known && options.download !== false) {
    path = candidates.at(-1)!;
    await download(known.source, known.sha256, path, options.fetchImpl ?? fetch);
  }
  if (!path)
    throw new ModelError('LABELS_MISSING', `labels file ${name} for model "${model.manifest.id}" not found in ${candidates.join(', ')}`);
  const labels = (await readFile(path, 'utf8')).split('\n').map((l) => l.trim());
  while (labels.length > 0 && labels.at(-1) === '') labels.pop();
  if (labels.length !== model.manifest.output.dim) {
    throw new ModelError('LABELS_MISMATCH', `${path}: ${labels.length} labels for ${model.manifest.output.dim} model outputs`);
  }
  return labels;
}
