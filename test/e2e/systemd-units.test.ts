import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandWrapper, systemdUnit, updateUnits } from '../../deploy/bundle/templates.js';
import { tempDir } from '../support/paths.js';

// The units a bundle installs, checked by systemd's own parser (systemd-analyze verify, from the systemd
// package). Their ExecStart is /opt/edgetune/current/bin/edgetune, so each check runs in a private mount
// namespace (root) with a tmpfs on /opt holding a release: this machine's /opt is never touched.
const tmp = tempDir('edgetune-units-');
afterAll(() => tmp.remove());

function writeRelease(units: Record<string, string>): string {
  const release = join(tmp.path, `release-${Object.keys(units).length}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(release, 'bin'), { recursive: true });
  writeFileSync(join(release, 'bin/edgetune'), commandWrapper('0.1.0'), { mode: 0o755 });
  for (const [name, text] of Object.entries(units)) writeFileSync(join(release, name), text);
  return release;
}

function verify(release: string, names: string[]) {
  const files = names.map((n) => `'${join(release, n)}'`).join(' ');
  return spawnSync(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t tmpfs edgetune-units /opt && mkdir -p /opt/edgetune && ln -s '${release}' /opt/edgetune/current && systemd-analyze verify ${files}`,
    ],
    { encoding: 'utf8' },
  );
}

describe('systemd units', () => {
  it('edgetune.service, edgetune-update.service and edgetune-update.path pass systemd-analyze verify with no warning', () => {
    const update = updateUnits('0.1.0');
    const units = {
      'edgetune.service': systemdUnit('0.1.0'),
      'edgetune-update.service': update.service,
      'edgetune-update.path': update.path,
    };
    const r = verify(writeRelease(units), Object.keys(units));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the check is real: a misspelt key and a bad Restart= value are reported', () => {
    const bad = systemdUnit('0.1.0').replace('Restart=on-failure', 'Restart=sometimes').replace('NoNewPrivileges=', 'NoNewPrivilege=');
    const r = verify(writeRelease({ 'edgetune.service': bad }), ['edgetune.service']);
    expect(r.stderr).toMatch(/Failed to parse service restart specifier, ignoring: sometimes/);
    expect(r.stderr).toMatch(/Unknown key 'NoNewPrivilege' in section \[Service\]/);
  });
});
