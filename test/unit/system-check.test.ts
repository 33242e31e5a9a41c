import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
