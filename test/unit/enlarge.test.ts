import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { Backbone } from '../../runtime/backbone/backbone.js';
import { encodeBmp } from '../../runtime/image/bmp.js';
import { enlargeOffsetMatchingSharp, enlargeRgb } from '../../runtime/image/enlarge.js';
import { readJpegHeader } from '../../runtime/image/jpeg-header.js';
import { preprocessBytes, preprocessStoredFile } from '../../runtime/image/preprocess.js';
import type { ModelInput } from '../../runtime/models/manifest.js';
import { channelMeanModel, manifestFor } from '../support/onnx-graphs.js';
import { IMAGES_DIR, flowerPhotos, tempDir } from '../support/paths.js';

const INPUT: ModelInput = { width: 224, height: 224, channels: 3, layout: 'NHWC', dtype: 'uint8' };
const tmp = tempDir();
afterAll(() => tmp.remove());

/** Every 20th flowers128 photo (about 215, all five classes). */
const flowers = flowerPhotos(20);

const asBuffer = (t: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) =>
  Buffer.from(t.buffer, t.byteOffset, t.byteLength);

/** The tensor as sharp alone makes it (every resize in libvips) and as edgetune makes it by default. */
async function bothWays(bytes: Uint8Array, input = INPUT): Promise<[Buffer, Buffer]> {
  const sharpOnly = await preprocessBytes(bytes, 'x', input, { resize: 'fill', fastEnlarge: false });
  const fast = await preprocessBytes(bytes, 'x', input, { resize: 'fill' });
  return [asBuffer(sharpOnly), asBuffer(fast)];
}

describe('enlarging small photos', () => {
  it('places the stencil as the libvips inside this sharp does', async () => {
    expect(await enlargeOffsetMatchingSharp()).toBe('half-pixel');
  });

  it("gives sharp's bytes for flowers128 photos enlarged from 128 x 128 to 224 x 224", async () => {
    let differing = 0;
    for (const path of flowers) {
      const [sharpOnly, fast] = await bothWays(readFileSync(path));
      if (!sharpOnly.equals(fast)) differing++;
    }
    expect(flowers.length).toBeGreaterThan(200);
    expect(differing).toBe(0);
  });

  it("gives sharp's bytes for other sizes: tiny, one axis kept, wide, tall, odd factors", async () => {
    const photo = readFileSync(flowers[0]!);
    const sizes = [
      [1, 1, 224, 224],
      [7, 5, 224, 224],
      [128, 100, 128, 224],
      [223, 10, 224, 224],
      [90, 128, 224, 160],
      [31, 77, 300, 301],
    ] as const;
    for (const [w, h, width, height] of sizes) {
      const rgb = await sharp(photo).resize(w, h, { fit: 'fill' }).raw().toBuffer();
      const expected = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
        .resize(width, height, { fit: 'fill' })
        .raw()
        .toBuffer();
      for (const combine of ['simd', 'js'] as const) {
        const mine = enlargeRgb(rgb, w, h, width, height, 'half-pixel', combine);
        expect(Buffer.from(mine).equals(expected), `${w}x${h} -> ${width}x${height}, ${combine}`).toBe(true);
      }
    }
  });

  it('gives the same tensor for greyscale, CMYK and progressive JPEGs and for small BMPs', async () => {
    const photo = readFileSync(flowers[1]!);
    const rgb = await sharp(photo).resize(100, 90, { fit: 'fill' }).raw().toBuffer();
    const variants = {
      greyscale: await sharp(photo).greyscale().jpeg().toBuffer(),
      cmyk: await sharp(photo).toColourspace('cmyk').jpeg().toBuffer(),
      progressive: await sharp(photo).jpeg({ progressive: true }).toBuffer(),
      bmp: encodeBmp({ width: 100, height: 90, data: rgb }),
    };
    for (const [name, bytes] of Object.entries(variants)) {
      const [sharpOnly, fast] = await bothWays(bytes);
      expect(sharpOnly.equals(fast), name).toBe(true);
    }
  });

  it('leaves EXIF-rotated photos to sharp, which enlarges before it rotates', async () => {
    const jpeg = await sharp(readFileSync(flowers[2]!)).resize(120, 60, { fit: 'fill' }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(readJpegHeader(jpeg)).toMatchObject({ width: 120, height: 60, orientation: 6 });
    const [sharpOnly, fast] = await bothWays(jpeg);
    expect(sharpOnly.equals(fast)).toBe(true);
  });

  it('gives the same tensor from a stored file as from its bytes', async () => {
    const path = join(tmp.path, 'small.jpg');
    writeFileSync(path, readFileSync(flowers[3]!));
    const stored = await preprocessStoredFile(path, 'small.jpg', INPUT, { resize: 'fill' });
    const [sharpOnly] = await bothWays(readFileSync(path));
    expect(asBuffer(stored).equals(sharpOnly)).toBe(true);
  });

  it('does not touch photos that are shrunk (other-photos are 416 to 1024 px) or cropped', async () => {
    const large = readFileSync(join(IMAGES_DIR, 'hot_dog.jpg'));
    const header = readJpegHeader(large)!;
    expect(Math.min(header.width, header.height)).toBeGreaterThan(224);
    const [sharpOnly, fast] = await bothWays(large);
    expect(sharpOnly.equals(fast)).toBe(true);
    const small = readFileSync(flowers[4]!);
    const cropped = await preprocessBytes(small, 'x', INPUT, { resize: 'crop' });
    const croppedBySharp = await preprocessBytes(small, 'x', INPUT, { resize: 'crop', fastEnlarge: false });
    expect(asBuffer(cropped).equals(asBuffer(croppedBySharp))).toBe(true);
  });
});

describe('JPEG headers', () => {
  it('reads the size of a real photo, and orientation 1 when it has no EXIF', () => {
    expect(readJpegHeader(readFileSync(flowers[0]!))).toEqual({ width: 128, height: 128, orientation: 1, plainYcc: true });
  });

  it('reads the EXIF orientation in either byte order', async () => {
    const jpeg = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#808080' } })
      .jpeg()
      .withMetadata({ orientation: 8 })
      .toBuffer();
    expect(readJpegHeader(jpeg)?.orientation).toBe(8);
    // The same Exif block rewritten big-endian (Motorola order): IFD0's one entry is the orientation.
    const exif = Buffer.from('Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x03\0\0\0\0\0\0', 'latin1');
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, exif.length + 2]), exif]);
    const plain = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
    const withExif = Buffer.concat([plain.subarray(0, 2), app1, plain.subarray(2)]);
    expect(readJpegHeader(withExif)).toEqual({ width: 30, height: 20, orientation: 3, plainYcc: true });
    expect((await sharp(withExif).metadata()).orientation).toBe(3);
  });

  it('gives nothing for other formats, truncated headers and damaged segments', async () => {
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const jpeg = readFileSync(flowers[0]!);
    expect(readJpegHeader(png)).toBeUndefined();
    expect(readJpegHeader(jpeg.subarray(0, 40))).toBeUndefined();
    const damaged = Buffer.from(jpeg);
    damaged[3] = 0xe0;
    damaged.writeUInt16BE(0xffff, 4);
    expect(readJpegHeader(damaged)).toBeUndefined();
  });
});

describe('Backbone with two batches per worker', () => {
  it('answers every image with its own embedding when a second batch waits in each worker', async () => {
    const size = 4;
    const bytes = channelMeanModel({ size });
    const manifest = manifestFor(bytes, size);
    const backbone = await Backbone.open({ manifest, bytes, path: 'mem', location: 'path' }, { workers: 2, threads: 1, batchSize: 4 });
    try {
      expect(backbone.settings.batchesPerWorker).toBe(2);
      const image = (i: number) => new Uint8Array(size * size * 3).fill(i);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => backbone.embed(image(i))));
      results.forEach((r, i) => expect(Array.from(r)).toEqual([i, i, i]));
    } finally {
      await backbone.close();
    }
  });
});
