import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyEnvOverrides, loadAgentConfig } from '../../agent/config.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const file = (name: string, text: string) => {
  const path = join(tmp.path, name);
  writeFileSync(path, text);
  return path;
};

describe('agent config', () => {
  it('reads YAML, fills defaults, and lets the environment override fields', () => {
    const path = file('agent.yaml', 'device:\n  id: pi-07\nhttp:\n  port: 8081\nsources:\n  inbox:\n    dir: /srv/inbox\n');
    const config = loadAgentConfig(path, {
      EDGETUNE_HTTP_PORT: '9000',
      EDGETUNE_HEAD_KIND: 'prototype',
      EDGETUNE_DATA_EMBEDDINGS_ONLY: 'true',
    });
    expect(config.device.id).toBe('pi-07');
    expect(config.http.port).toBe(9000);
    expect(config.head.kind).toBe('prototype');
    expect(config.data.embeddingsOnly).toBe(true);
    expect(config.sources.inbox).toEqual({ dir: '/srv/inbox', after: 'move', pollMs: 1000 });
    expect(config.queue.drop).toBe('oldest');
  });

  it('names the file, the field and what was expected for a wrong type', () => {
    const path = file('wrong-type.yaml', 'http:\n  port: "eighty"\n');
    expect(() => loadAgentConfig(path, {})).toThrow(
      /wrong-type\.yaml: field "http\.port": Invalid input: expected number, received string/,
    );
    const enumPath = file('wrong-enum.json', JSON.stringify({ queue: { drop: 'random' } }));
    expect(() => loadAgentConfig(enumPath, {})).toThrow(
      'wrong-enum.json: field "queue.drop": Invalid option: expected one of "oldest"|"newest"',
    );
  });

  it('refuses unknown fields, bad device ids, bad syntax and missing files by name', () => {
    expect(() => loadAgentConfig(file('typo.yaml', 'htpp:\n  port: 80\n'), {})).toThrow(/typo\.yaml: .*htpp/);
    expect(() => loadAgentConfig(file('id.yaml', 'device:\n  id: "../etc"\n'), {})).toThrow(
      /id\.yaml: field "device\.id": letters, digits/,
    );
    expect(() => loadAgentConfig(file('syntax.yaml', 'http: [\n'), {})).toThrow(/syntax\.yaml: not valid YAML/);
    expect(() => loadAgentConfig(join(tmp.path, 'missing.yaml'), {})).toThrow(/missing\.yaml: cannot read config/);
    expect(() => loadAgentConfig(undefined, { EDGETUNE_HTTP_PORT: '70000' })).toThrow(/\(defaults and environment\): field "http\.port"/);
  });

  it('parses environment values as JSON when they parse, else as strings', () => {
    expect(applyEnvOverrides({}, { EDGETUNE_SOURCES_CAMERA: '{"command":["rpicam-still","-o","-"]}', EDGETUNE_DEVICE_ID: 'pi-9' })).toEqual(
      {
        sources: { camera: { command: ['rpicam-still', '-o', '-'] } },
        device: { id: 'pi-9' },
      },
    );
  });
});

describe('edgetune agent (CLI)', () => {
  it('--print-config shows the effective config with the device profile settings', async () => {
    const path = file('print.yaml', 'device:\n  id: pi-print\n  profile: rpi-zero-2w\n');
    const { code, stdout } = await runCli(['agent', '--config', path, '--print-config'], { EDGETUNE_HTTP_PORT: '9100' });
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as {
      config: { device: { id: string }; http: { port: number } };
      profile: string;
      settings: { queueLimit: number };
    };
    expect(printed.config.device.id).toBe('pi-print');
    expect(printed.config.http.port).toBe(9100);
    expect(printed.profile).toBe('rpi-zero-2w');
    expect(printed.settings.queueLimit).toBe(8);
  });

  it('exits with a clear message for a config with a wrong type, before starting anything', async () => {
    const path = file('bad.yaml', 'head:\n  retrainAfterLabels: lots\n');
    const { code, stderr } = await runCli(['agent', '--config', path]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/bad\.yaml: field "head\.retrainAfterLabels"/);
  });

  it('names an unknown device profile', async () => {
    const { code, stderr } = await runCli(['agent', '--print-config', '--config', file('profile.yaml', 'device:\n  profile: rpi-9\n')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/field "device\.profile": unknown profile "rpi-9"/);
  });
});
