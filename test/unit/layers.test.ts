// The layer rules in .dependency-cruiser.cjs, held against a small tree made for each rule and against
// the real tree: a wrong-way import fails with the rule's name, and main has none.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type IConfiguration, type ICruiseOptions, type IReporterOutput, cruise } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const config = require('../../.dependency-cruiser.cjs') as IConfiguration & { options: ICruiseOptions };
const root = join(dirname(new URL(import.meta.url).pathname), '../..');
const scratch: string[] = [];
afterAll(() => scratch.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Cruises `files` (path -> source) written into a fresh folder, with the project's rules. */
async function violationsIn(files: Record<string, string>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'edgetune-layers-'));
  scratch.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const top = [...new Set(Object.keys(files).map((path) => path.split('/')[0]!))];
  return rulesBroken(
    await cruise(top, { ...config.options, tsConfig: undefined, baseDir: dir, validate: true, ruleSet: { forbidden: config.forbidden } }),
  );
}

function rulesBroken(output: IReporterOutput): string[] {
  if (typeof output.output === 'string') throw new Error(output.output);
  return output.output.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
}

describe('layer rules (npm run lint:layers)', () => {
  it('refuses core/ importing the agent, naming the rule', async () => {
    const broken = await violationsIn({ 'core/log.ts': "import '../agent/agent.js';\n", 'agent/agent.ts': 'export const agent = 1;\n' });
    expect(broken).toContain('core-is-the-bottom: core/log.ts -> agent/agent.ts');
  });

  it('refuses devices/ importing the runtime library', async () => {
    const broken = await violationsIn({
      'devices/detect.ts': "import '../runtime/backbone/engine.js';\n",
      'runtime/backbone/engine.ts': 'export {};\n',
    });
    expect(broken).toContain('devices-import-only-core: devices/detect.ts -> runtime/backbone/engine.ts');
  });

  it('refuses a cycle between two files of one folder and between two folders', async () => {
    const broken = await violationsIn({
      'console/a.ts': "import './b.js';\nexport const a = 1;\n",
      'console/b.ts': "import './a.js';\nexport const b = 1;\n",
    });
    expect(broken).toContain('no-file-cycles: console/a.ts -> console/b.ts');
    const folders = await violationsIn({
      'runtime/head/merge.ts': "import '../sync/protocol.js';\nexport const merge = 1;\n",
      'runtime/sync/protocol.ts': 'export const protocol = 1;\n',
      'runtime/sync/head-message.ts': "import '../head/merge.js';\n",
    });
    expect(folders.filter((v) => v.startsWith('no-folder-cycles'))).not.toEqual([]);
    expect(folders.some((v) => v.startsWith('no-file-cycles'))).toBe(false);
  });

  it('keeps the importer out of `edgetune device info`', async () => {
    const broken = await violationsIn({
      'cli/commands/device.ts': "import '../../runtime/backbone/engine-choice.js';\n",
      'runtime/backbone/engine-choice.ts': "import '../models/tflite-import.js';\n",
      'runtime/models/tflite-import.ts': 'export {};\n',
    });
    expect(broken).toContain('device-info-stays-light: cli/commands/device.ts -> runtime/models/tflite-import.ts');
  });

  it('keeps browser pages to web/ and their own API types, and node code away from pages', async () => {
    const broken = await violationsIn({
      'agent/page/main.ts':
        "import '../../core/hash.js';\nimport 'node:fs';\nimport '../../console/api-types.js';\nimport '../api-types.js';\n",
      'agent/api-types.ts': "import '../runtime/samples/store.js';\nexport {};\n",
      'console/api-types.ts': 'export {};\n',
      'core/hash.ts': 'export {};\n',
      'runtime/samples/store.ts': 'export {};\n',
      'web/dom.ts': "import '../agent/http.js';\n",
      'agent/http.ts': "import '../web/dom.js';\nexport {};\n",
    });
    expect(broken).toEqual(
      expect.arrayContaining([
        'pages-are-browser-code: agent/page/main.ts -> core/hash.ts',
        'pages-use-no-node-builtins: agent/page/main.ts -> fs',
        'a-page-talks-to-its-own-server: agent/page/main.ts -> console/api-types.ts',
        'api-types-are-types-only: agent/api-types.ts -> runtime/samples/store.ts',
        'shared-page-code-is-shared: web/dom.ts -> agent/http.ts',
        'servers-do-not-import-pages: agent/http.ts -> web/dom.ts',
      ]),
    );
    expect(broken.some((v) => v.includes('agent/page/main.ts -> agent/api-types.ts'))).toBe(false);
  });

  it('finds no violation and no cycle in the tree as it is', async () => {
    const folders = ['core', 'web', 'runtime', 'devices', 'agent', 'console', 'deploy', 'quantize', 'cli', 'bin', 'bench'];
    const output = await cruise(folders, { ...config.options, baseDir: root, validate: true, ruleSet: { forbidden: config.forbidden } });
    expect(rulesBroken(output)).toEqual([]);
  }, 60_000);
});
