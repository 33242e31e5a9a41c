import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode, errorCodeOr } from '../../core/error-catalogue.js';
import { REPO_ROOT } from '../support/paths.js';

const SOURCE_DIRS = ['core', 'runtime', 'devices', 'agent', 'console', 'deploy', 'quantize', 'cli', 'bin', 'bench'];
const CATALOGUE_FILE = 'core/error-catalogue.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)));
}

const sources = SOURCE_DIRS.flatMap(sourceFiles)
  .filter((file) => file !== CATALOGUE_FILE)
  .map((file) => ({ file, text: readFileSync(join(REPO_ROOT, file), 'utf8') }));

/** Every `new SomethingError('CODE'` in the source (also with the code on the next line). */
function raised(): { file: string; errorClass: string; code: string }[] {
  return sources.flatMap(({ file, text }) =>
    [...text.matchAll(/new (\w+Error)\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => ({ file, errorClass: m[1]!, code: m[2]! })),
  );
}

describe('the error catalogue', () => {
  it('lists each code once', () => {
    const keys = [...readFileSync(join(REPO_ROOT, CATALOGUE_FILE), 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]*): \{ domain:/gm)].map(
      (m) => m[1],
    );
    expect(keys.length).toBe(Object.keys(ERROR_CATALOGUE).length);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('has no code the source never uses', () => {
    const unused = Object.keys(ERROR_CATALOGUE).filter((code) => !sources.some(({ text }) => text.includes(`'${code}'`)));
    expect(unused).toEqual([]);
  });

  it('knows every code raised with `new XError(CODE`, in the domain of the class that raises it', () => {
    const found = raised();
    expect(found.length).toBeGreaterThan(100);
    const wrong = found.filter(({ errorClass, code }) => {
      const entry = ERROR_CATALOGUE[code as ErrorCode] as { domain: string } | undefined;
      if (!entry) return true;
      // The HTTP layer may refuse with another domain's code when it checks the same thing (LABEL_INVALID).
      if (errorClass === 'HttpError') return false;
      return entry.domain !== errorClass.replace(/Error$/, '').toLowerCase();
    });
    expect(wrong).toEqual([]);
  });

  it('keeps a code read from another process only when it is known', () => {
    expect(errorCodeOr('NOT_ENOUGH_LABELS', 'COMMAND_FAILED')).toBe('NOT_ENOUGH_LABELS');
    expect(errorCodeOr('SOMETHING_NEWER', 'COMMAND_FAILED')).toBe('COMMAND_FAILED');
    expect(errorCodeOr(undefined, 'COMMAND_FAILED')).toBe('COMMAND_FAILED');
    expect(errorCodeOr('toString', 'COMMAND_FAILED')).toBe('COMMAND_FAILED');
  });
});
