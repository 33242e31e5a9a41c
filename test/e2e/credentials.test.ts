import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceCredentials } from '../../console/credentials.js';
import { FleetConsole } from '../../console/service.js';
import { canaryVerdict } from '../../console/rollout.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('device credentials', () => {
  it('issues 256-bit secrets checked by SHA-256; an old scrypt login still works and is migrated on disk', async () => {
    const file = join(tmp.path, 'registry.db');
    const credentials = new DeviceCredentials(file);
    const secret = credentials.issue('pi-new');
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    expect(await credentials.verify('pi-new', secret)).toBe(true);
    expect(await credentials.verify('pi-new', `${secret}x`)).toBe(false);
    expect(await credentials.verify('pi-nobody', secret)).toBe(false);
    expect(await credentials.verify('pi-new', undefined)).toBe(false);
    const old = credentials.issueScrypt('pi-old');
    const scheme = () =>
      (
        new Database(file, { readonly: true }).prepare('SELECT scheme FROM credentials WHERE device = ?').get('pi-old') as {
          scheme: string;
        }
      ).scheme;
    expect(scheme()).toBe('scrypt');
    expect(await credentials.verify('pi-old', 'wrong')).toBe(false);
    expect(scheme()).toBe('scrypt');
    expect(await credentials.verify('pi-old', old)).toBe(true);
    expect(scheme()).toBe('sha256');
    expect(await credentials.verify('pi-old', old)).toBe(true);
    credentials.close();
  });

  it("keeps the console's registry (credential hashes, heads) readable by its user only", async () => {
    const dir = join(tmp.path, 'console');
    const fleet = await FleetConsole.start({ dir, fleet: 'farm', broker: { port: 0 } });
    fleet.addDevice('pi-1');
    expect(statSync(join(dir, 'registry.db')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'registry.db-wal')).mode & 0o777).toBe(0o600);
    await fleet.stop();
  });
});

describe('canary verdicts', () => {
  const report = (before: number, after: number, lost: number, gained: number, holdout = 10) => ({
    device: 'pi',
    before,
    after,
    holdout,
    lost,
    gained,
  });
  it('rolls back a clear regression, holds what may be chance or rests on too few samples, releases the rest', () => {
    expect(canaryVerdict([report(0.7, 0.5, 3, 1)], 0.02, 10).verdict).toBe('rollback');
    const held = canaryVerdict([report(0.7, 0.5, 2, 0)], 0.02, 10);
    expect(held).toEqual({
      verdict: 'hold',
      reason: 'held for the operator: a drop that may be chance: pi: holdout accuracy 0.700 -> 0.500 on 10 samples (2 lost, 0 gained)',
    });
    expect(canaryVerdict([report(0.8, 0.8, 0, 0, 4)], 0.02, 10)).toMatchObject({
      verdict: 'hold',
      reason: expect.stringMatching(/4 holdout samples on the canaries, 10 needed/),
    });
    expect(canaryVerdict([], 0.02, 10)).toMatchObject({ verdict: 'hold', reason: expect.stringMatching(/no canary online/) });
    expect(canaryVerdict([report(0.8, 0.7, 1, 0)], 0.02, 10).verdict).toBe('release');
    expect(canaryVerdict([report(0.6, 0.7, 0, 1)], 0.02, 10).verdict).toBe('release');
  });
});
