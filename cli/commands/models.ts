// `edgetune models`: the catalog, where each model was found, and whether its checksum verifies.

import type { Command } from 'commander';
import { errorMessage, EdgetuneError } from '../../core/errors.js';
import { CATALOG, DEFAULT_BACKBONE_ID } from '../../runtime/models/catalog.js';
import { defaultCacheDir, resolveModel } from '../../runtime/models/resolve.js';
import { formatTable, printJson } from '../output.js';

interface ModelStatus {
  id: string;
  kind: string;
  format: string;
  dim: number;
  input: string;
  default: boolean;
  status: 'ok' | 'missing' | 'invalid';
  location?: string;
  path?: string;
  error?: string;
  code?: string;
  source: string;
}

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list known models, where each is found, and verify their checksums')
    .option('--cache-dir <dir>', 'cache folder (default $XDG_CACHE_HOME/edgetune)')
    .option('--download', 'download missing catalog models (checksum verified)', false)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Models are looked up in this order: an explicit path, EDGETUNE_MODEL_DIR, the cache, then
(only with --download or when a command needs one) a download verified against the catalog sha256.

Examples:
  EDGETUNE_MODEL_DIR=../shared/models edgetune models
  edgetune models --download --json`,
    )
    .action(async (flags: { cacheDir?: string; download: boolean; json?: boolean }) => {
      const statuses: ModelStatus[] = [];
      for (const manifest of CATALOG) {
        const base = {
          id: manifest.id,
          kind: manifest.output.kind,
          format: manifest.format,
          dim: manifest.output.dim,
          input: `${manifest.input.width}x${manifest.input.height} ${manifest.input.dtype}`,
          default: manifest.id === DEFAULT_BACKBONE_ID,
          source: manifest.source,
        };
        try {
          const found = await resolveModel(manifest.id, {
            cacheDir: flags.cacheDir ?? defaultCacheDir(),
            download: flags.download,
          });
          statuses.push({ ...base, status: 'ok', location: found.location, path: found.path });
        } catch (err) {
          const code = err instanceof EdgetuneError ? err.code : 'ERROR';
          statuses.push({
            ...base,
            status: code === 'MODEL_NOT_FOUND' ? 'missing' : 'invalid',
            code,
            error: errorMessage(err),
          });
        }
      }
      if (flags.json) {
        printJson({ models: statuses });
      } else {
        const rows = statuses.map((s) => [
          `${s.id}${s.default ? ' *' : ''}`,
          s.kind,
          s.dim,
          s.input,
          s.status === 'ok' ? `ok (${s.location})` : s.status,
          s.path ?? '',
        ]);
        process.stdout.write(`${formatTable(['model', 'output', 'dim', 'input', 'status', 'path'], rows)}\n* default backbone\n`);
        for (const s of statuses.filter((x) => x.status === 'invalid')) process.stdout.write(`\n${s.id}: ${s.error}\n`);
      }
      if (statuses.some((s) => s.status === 'invalid')) process.exitCode = 1;
    });
}
