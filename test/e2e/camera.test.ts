import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CameraSource, runCapture } from '../../devices/sources/camera.js';
import type { IncomingSample } from '../../devices/sources/source.js';
import { FLOWERS_DIR, REPO_ROOT, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

const FAKE_CAMERA = join(REPO_ROOT, 'test/support/fake-camera.sh');
const DAISY = join(FLOWERS_DIR, 'daisy');
const tmp = tempDir();
afterAll(() => tmp.remove());

const capture = (command: string[], extra: Partial<{ timeoutMs: number; maxBytes: number }> = {}) =>
  runCapture({ command, timeoutMs: 5000, maxBytes: 10_000_000, ...extra });

describe('runCapture: any command that writes an image to stdout', () => {
  it('returns exactly the bytes the command wrote', async () => {
    const file = join(DAISY, readdirSync(DAISY).sort()[0]!);
    const bytes = await capture(['cat', file]);
    expect(bytes.equals(readFileSync(file))).toBe(true);
  });

  it('names the command and its stderr when it fails', async () => {
    await expect(capture(['sh', '-c', 'echo "ERROR: no cameras available" >&2; exit 3'])).rejects.toMatchObject({
      code: 'CAMERA_FAILED',
      message: expect.stringMatching(/^sh -c .*exited with 3: ERROR: no cameras available$/),
    });
  });

  it('refuses a command that is not there, an empty frame, a hang and an oversized frame', async () => {
    await expect(capture(['/nonexistent/rpicam-still', '-o', '-'])).rejects.toMatchObject({
      code: 'CAMERA_FAILED',
      message: expect.stringContaining('/nonexistent/rpicam-still -o -: cannot run'),
    });
    await expect(capture(['true'])).rejects.toMatchObject({ code: 'CAMERA_EMPTY' });
    await expect(capture(['sleep', '5'], { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'CAMERA_TIMEOUT',
      message: 'sleep 5: no image within 200 ms',
    });
    await expect(capture(['head', '-c', '5000', '/dev/zero'], { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'CAMERA_TOO_LARGE',
    });
  });
});

describe('CameraSource', () => {
  it('captures on an interval, a new frame each time', async () => {
    const got: IncomingSample[] = [];
    const camera = new CameraSource({
      command: [FAKE_CAMERA, DAISY, join(tmp.path, 'interval.state')],
      intervalMs: 20,
      timeoutMs: 5000,
      maxBytes: 10_000_000,
    });
    camera.start(async (s) => {
      got.push(s);
      return String(got.length);
    });
    await until('4 frames', () => got.length >= 4);
    await camera.stop();
    const files = readdirSync(DAISY).sort();
    expect(got.slice(0, 4).map((s) => s.bytes.equals(readFileSync(join(DAISY, files[got.indexOf(s)]!))))).toEqual([true, true, true, true]);
    expect(got.every((s) => s.label === null && s.origin === `camera:${FAKE_CAMERA}`)).toBe(true);
    expect(camera.status()).toMatchObject({ failures: 0, lastError: null });
  });

  it('retries a failing camera with backoff, reports it, and recovers', async () => {
    const events: { msg: string; retryInMs?: number }[] = [];
    process.env.FAIL_FIRST = '2';
    const camera = new CameraSource({
      command: [FAKE_CAMERA, DAISY, join(tmp.path, 'failing.state')],
      intervalMs: 10,
      timeoutMs: 5000,
      maxBytes: 10_000_000,
      onEvent: (e) => events.push(e),
    });
    let produced = 0;
    const failuresSeen: number[] = [];
    camera.start(async () => {
      produced++;
      return 'id';
    });
    try {
      await until('a frame after the failures', () => {
        failuresSeen.push(camera.status().failures);
        return produced > 0;
      });
    } finally {
      await camera.stop();
      delete process.env.FAIL_FIRST;
    }
    expect(Math.max(...failuresSeen)).toBe(2);
    expect(events.map((e) => e.msg)).toEqual(['camera capture failed; retrying', 'camera capture failed; retrying']);
    // Backoff, not the 10 ms interval: jittered between half and all of 1 s, then 2 s.
    expect(events[0]!.retryInMs).toBeGreaterThanOrEqual(500);
    expect(events[1]!.retryInMs).toBeGreaterThanOrEqual(1000);
    expect(camera.status()).toMatchObject({ failures: 0, lastError: null, retryAt: null });
    expect(camera.status().produced).toBeGreaterThanOrEqual(1);
  });

  it('captures on trigger and hands back the stored id; a trigger failure is an error for the caller', async () => {
    const camera = new CameraSource({
      command: [FAKE_CAMERA, DAISY, join(tmp.path, 'trigger.state')],
      timeoutMs: 5000,
      maxBytes: 10_000_000,
    });
    await expect(camera.trigger()).rejects.toMatchObject({ code: 'SOURCE_NOT_STARTED' });
    camera.start(async (s) => `sample-of-${s.bytes.length}`);
    expect(await camera.trigger()).toMatch(/^sample-of-\d+$/);
    const broken = new CameraSource({ command: ['false'], timeoutMs: 5000, maxBytes: 1000 });
    broken.start(async () => 'never');
    await expect(broken.trigger()).rejects.toMatchObject({ code: 'CAMERA_FAILED' });
    expect(broken.status().failures).toBe(1);
    await camera.stop();
    await broken.stop();
  });
});
