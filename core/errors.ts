// Domain errors: one class per domain, each with a stable `code` that scripts and tests match on; every
// code, its domain and its HTTP status are in `error-catalogue.ts`.
// Messages name the file, field, tensor or topic at fault and say what was expected.

import type { ErrorCode } from './error-catalogue.js';

export type { ErrorCode } from './error-catalogue.js';

export class EdgetuneError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Model files, manifests, catalog, checksums, engines. */
export class ModelError extends EdgetuneError {}
/** Image decoding and preprocessing. */
export class ImageError extends EdgetuneError {}
/** Head training, prediction and head files. */
export class HeadError extends EdgetuneError {}
/** Datasets given as folders of photos. */
export class DatasetError extends EdgetuneError {}
/** Configuration and command-line options. */
export class ConfigError extends EdgetuneError {}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
/** Bundles, provisioning, releases on a device and agent updates. */
export class DeployError extends EdgetuneError {}
/** The fleet console: merges, rollouts, commands to devices. */
export class ConsoleError extends EdgetuneError {}
