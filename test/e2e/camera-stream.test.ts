import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { StreamCameraSource } from '../../devices/sources/camera-stream.js';
import { JpegStreamSplitter } from '../../devices/sources/jpeg-stream.js';
import { FLOWERS_DIR, IMAGES_DIR, REPO_ROOT } from '../support/paths.js';
import { until } from '../support/until.js';

const FAKE_STREAM = join(REPO_ROOT, 'test/support/fake-stream-camera.mjs');
const DAISY = join(FLOWERS_DIR, 'daisy');
const daisies = readdirSync(DAISY)
  .sort()
  .slice(0, 5)
  .map((f) => readFileSync(join(DAISY, f)));

/** Feeds the bytes to a splitter in chunks of `size`. */
function split(bytes: Buffer, size: number, maxBytes = 10_000_000): { frames: Buffer[]; splitter: JpegStreamSplitter } {
  const splitter = new JpegStreamSplitter(maxBytes);
  const frames: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) frames.push(...splitter.push(bytes.subarray(i, i + size)));
  return { frames, splitter };
}

describe('JpegStreamSplitter', () => {
  it('splits back-to-back JPEGs exactly, whatever the chunk size', () => {
    const stream = Buffer.concat(daisies);
    for (const size of [1, 7, 4096, stream.length]) {
      const { frames } = split(stream, size);
      expect(frames.map((f) => f.equals(daisies[frames.indexOf(f)]!))).toEqual([true, true, true, true, true]);
    }
  });

  it('skips garbage between frames', () => {
    const noise = Buffer.from('\r\n--boundary\r\nContent-Type: image/jpeg\r\n\r\n');
    const { frames } = split(Buffer.concat([noise, daisies[0]!, noise, daisies[1]!, noise]), 1000);
    expect(frames).toHaveLength(2);
    expect(frames[1]!.equals(daisies[1]!)).toBe(true);
  });

  it('does not end a frame at the end of an embedded EXIF thumbnail', async () => {
    // A JPEG whose APP1 segment holds a whole JPEG (FF D8 ... FF D9), as cameras write EXIF thumbnails.
    const thumb = await sharp(daisies[0]!).resize(16, 16).jpeg().toBuffer();
    const app1 = Buffer.alloc(4 + thumb.length);
    app1.writeUInt16BE(0xffe1, 0);
    app1.writeUInt16BE(2 + thumb.length, 2);
    thumb.copy(app1, 4);
    const withThumb = Buffer.concat([daisies[2]!.subarray(0, 2), app1, daisies[2]!.subarray(2)]);
    const { frames } = split(Buffer.concat([withThumb, daisies[3]!]), 333);
    expect(frames.map((f) => f.length)).toEqual([withThumb.length, daisies[3]!.length]);
    expect((await sharp(frames[0]!).metadata()).width).toBe((await sharp(daisies[2]!).metadata()).width);
  });

  it('drops a frame over the size limit and resynchronises on the next', () => {
    const big = readFileSync(join(IMAGES_DIR, 'hot_dog.jpg'));
    const limit = Math.max(...daisies.map((d) => d.length)) + 10;
    expect(big.length).toBeGreaterThan(limit);
    const { frames, splitter } = split(Buffer.concat([daisies[0]!, big, daisies[1]!]), 512, limit);
    expect(frames.map((f) => f.length)).toEqual([daisies[0]!.length, daisies[1]!.length]);
    expect(splitter.oversized).toBe(1);
  });
});

describe('StreamCameraSource', () => {
  it('hands on distinct frames from a running MJPEG command, at most one per interval', async () => {
    const got: Buffer[] = [];
    const camera = new StreamCameraSource({ command: [process.execPath, FAKE_STREAM, DAISY], intervalMs: 50, maxBytes: 10_000_000 });
    camera.start(async ({ bytes }) => {
      got.push(bytes);
      return String(got.length);
    });
    await until('5 frames', () => got.length >= 5);
    await camera.stop();
    expect(new Set(got.map((b) => b.toString('base64'))).size).toBe(got.length);
    // The stream runs unthrottled; the interval keeps a handful of the many frames it makes.
    expect(camera.frames).toBeGreaterThan(got.length * 3);
    expect((await sharp(got[0]!).metadata()).format).toBe('jpeg');
  });

  it('takes the next frame on trigger, whatever the interval', async () => {
    const camera = new StreamCameraSource({
      command: [process.execPath, FAKE_STREAM, DAISY],
      intervalMs: 3_600_000,
      maxBytes: 10_000_000,
      timeoutMs: 5000,
    });
    const ids: string[] = [];
    camera.start(async () => {
      ids.push(`frame-${ids.length}`);
      return ids.at(-1);
    });
    await until('the first frame', () => ids.length > 0);
    expect(ids).toHaveLength(1); // the first frame only: the next is an hour away
    expect(await camera.trigger()).toBe('frame-1');
    expect(await camera.trigger()).toBe('frame-2');
    await camera.stop();
  });

  it('restarts a stream that ends, with backoff, and reports why', async () => {
    process.env.EXIT_AFTER = '3';
    const events: { msg: string; error?: string; retryInMs?: number }[] = [];
    const camera = new StreamCameraSource({
      command: [process.execPath, FAKE_STREAM, DAISY],
      maxBytes: 10_000_000,
      onEvent: (e) => events.push(e),
    });
    let frames = 0;
    camera.start(async () => String(++frames));
    try {
      await until('6 frames across restarts', () => frames >= 6);
    } finally {
      await camera.stop();
      delete process.env.EXIT_AFTER;
    }
    expect(events[0]).toMatchObject({
      msg: 'camera stream ended; restarting',
      error: expect.stringMatching(/exited with 1: ERROR: camera frontend has timed out!$/),
    });
    expect(events[0]!.retryInMs).toBeGreaterThanOrEqual(500);
  });
});
