import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PINNED_NODE } from '../../deploy/bundle/node-runtime.js';
import { REPO_ROOT } from '../support/paths.js';
import { missingSystemParts, systemPackages } from '../support/system-check.js';

// A PATH that has everything this machine's PATH has, except one command.
const hidden = mkdtempSync(join(tmpdir(), 'edgetune-path-'));
afterAll(() => rmSync(hidden, { recursive: true, force: true }));

function pathWithout(command: string): string {
  const dir = join(hidden, command);
  mkdirSync(dir);
  for (const { probe } of systemPackages())
    if (!probe.startsWith('/') && probe !== command) symlinkSync(`/usr/bin/${probe}`, join(dir, probe));
  return dir;
}

describe('the check before the e2e tests', () => {
  it('passes on a machine set up with ./setup.sh', () => {
    expect(missingSystemParts()).toBeUndefined();
  });

  it('names a missing package, and the command that installs it, in one line', () => {
    expect(missingSystemParts({ ...process.env, CHROMIUM_PATH: '/nowhere/chromium' })).toBe(
      'edgetune tests: missing system package chromium (/nowhere/chromium): run ./setup.sh as root',
    );
  });

  it('finds commands on PATH, and names each one missing', () => {
    expect(missingSystemParts({ ...process.env, PATH: pathWithout('sudo'), MOSQUITTO_PATH: '/nowhere/mosquitto' })).toBe(
      'edgetune tests: missing system packages mosquitto (/nowhere/mosquitto), sudo (sudo): run ./setup.sh as root',
    );
  });
});

describe('the Node ./setup.sh installs where Debian has only Node 18', () => {
  const script = readFileSync(join(REPO_ROOT, 'setup.sh'), 'utf8');
  const value = (name: string) => new RegExp(`^\\s*\\[?${name}\\]?=(\\S+)$`, 'm').exec(script)?.[1];

  it('is the Node the x64 and arm64 device bundles pin, with the same integrity', () => {
    expect(value('node_version')).toBe(PINNED_NODE['linux-x64'].version);
    expect(value('node_version')).toBe(PINNED_NODE['linux-arm64'].version);
    expect(value('x64')).toBe(PINNED_NODE['linux-x64'].integrity);
    expect(value('arm64')).toBe(PINNED_NODE['linux-arm64'].integrity);
  });
});
