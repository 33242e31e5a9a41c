import { describe, expect, it } from 'vitest';
import type { DemoResult } from '../../console/demo.js';
import { runCli, spawnEdgetune } from '../support/cli.js';

// The README's main command, as a script runs it: four real agents, each with 10 photos per class of
// different flowers, a console merging their heads; every device must end up better than it began.
describe('edgetune demo', () => {
  it('--devices 4 --json: every device gains from the merged fleet head', async () => {
    const r = await runCli(['demo', '--devices', '4', '--shots', '10', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as DemoResult;
    expect(result.devices.map((d) => d.id)).toEqual(['demo-1', 'demo-2', 'demo-3', 'demo-4']);
    expect(result.classes).toEqual(['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']);
    expect(result.testImages).toBe(200);
    expect(result.rollout).toBe('released');
    for (const d of result.devices) {
      expect(d.samples).toBe(50);
      expect(d.after).toBeGreaterThan(d.before);
      expect(d.gain).toBeCloseTo(d.after - d.before, 10);
    }
    expect(result.minGain).toBe(Math.min(...result.devices.map((d) => d.gain)));
    expect(result.minGain).toBeGreaterThan(0);
  }, 180_000);

  it('names the class that is too small for the slices asked for', async () => {
    const r = await runCli(['demo', '--devices', '4', '--shots', '300', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/flowers128\/\w+: \d+ photos; 4 devices x 300 shots \+ 40 test photos need 1240 \[DATASET_TOO_SMALL\]/);
  });

  it('without --exit-when-done keeps the console and its web API up until Ctrl-C', async () => {
    const demo = spawnEdgetune(['demo', '--devices', '2', '--shots', '5', '--test', '10', '--web-port', '0']);
    try {
      const url = await demo.waitFor('the web console URL', () => /demo: web console (\S+)/.exec(demo.stderr)?.[1], 120_000);
      expect(demo.stdout).toMatch(/^demo-1 [\s\S]*^demo-2 /m);
      const page = new URL(url);
      const response = await fetch(new URL('/api/devices', page.origin), {
        headers: { authorization: `Bearer ${page.searchParams.get('token')}` },
      });
      const { devices } = (await response.json()) as { devices: { id: string; online: boolean; fleetVersion: number }[] };
      expect(devices.map((d) => [d.id, d.online, d.fleetVersion])).toEqual([
        ['demo-1', true, 1],
        ['demo-2', true, 1],
      ]);
    } catch (err) {
      await demo.kill('SIGKILL');
      throw err;
    }
    expect(await demo.kill('SIGINT')).toBe(0);
  }, 180_000);
});
