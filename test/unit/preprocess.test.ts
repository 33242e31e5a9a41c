import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageError } from '../../core/errors.js';
import { decodeBmp, encodeBmp } from '../../runtime/image/bmp.js';
import { preprocessBytes, preprocessFile, toInputTensor } from '../../runtime/image/preprocess.js';
import type { ModelInput } from '../../runtime/models/manifest.js';
import { IMAGES_DIR, tempDir } from '../support/paths.js';

const INPUT: ModelInput = { width: 8, height: 8, channels: 3, layout: 'NHWC', dtype: 'uint8' };
const tmp = tempDir();
afterAll(() => tmp.remove());

/** Left half red, right half blue, 16x8. */
function halves(): Uint8Array {
  const data = new Uint8Array(16 * 8 * 3);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 16; x++) data.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
  }
  return data;
}

const pixel = (t: ArrayLike<number>, x: number, y: number, w = 8) => Array.from({ length: 3 }, (_, c) => t[(y * w + x) * 3 + c]);

describe('BMP decoding', () => {
  it('decodes the Coral sample photo cat.bmp to its full size', () => {
    const bmp = decodeBmp(readFileSync(join(IMAGES_DIR, 'cat.bmp')), 'cat.bmp');
    expect(bmp.width * bmp.height * 3).toBe(bmp.data.length);
    expect(bmp.width).toBeGreaterThan(100);
  });

  it('round-trips our encoder, bottom-up rows and padding included', () => {
    const image = { width: 5, height: 3, data: Uint8Array.from({ length: 45 }, (_, i) => (i * 37) % 256) };
    expect(decodeBmp(encodeBmp(image), 'x.bmp')).toEqual(image);
  });

  it('reads 32-bit top-down BMPs', () => {
    const header = encodeBmp({ width: 1, height: 1, data: new Uint8Array([0, 0, 0]) }).slice(0, 54);
    const view = new DataView(header.buffer);
    view.setInt32(22, -2, true); // top-down, 2 rows
    view.setUint16(28, 32, true);
    const bytes = new Uint8Array([...header, 1, 2, 3, 255, 4, 5, 6, 255]);
    expect(Array.from(decodeBmp(bytes, 'x.bmp').data)).toEqual([3, 2, 1, 6, 5, 4]);
  });

  it('refuses a truncated BMP, naming the file', () => {
    const bytes = encodeBmp({ width: 4, height: 4, data: new Uint8Array(48) }).slice(0, 70);
    expect(() => decodeBmp(bytes, 'short.bmp')).toThrow(/short\.bmp: unsupported or damaged BMP: pixel data/);
  });

  it('refuses 8-bit palette BMPs with a clear reason', () => {
    const bytes = encodeBmp({ width: 2, height: 2, data: new Uint8Array(12) });
    new DataView(bytes.buffer).setUint16(28, 8, true);
    expect(() => decodeBmp(bytes, 'pal.bmp')).toThrow(/8 bits per pixel/);
  });
});

describe('preprocessing', () => {
  it('fills: the whole image is squeezed into the input', async () => {
    const png = await sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } })
      .png()
      .toBuffer();
    const t = await preprocessBytes(png, 'halves.png', INPUT, { resize: 'fill' });
    expect(pixel(t, 0, 4)).toEqual([255, 0, 0]);
    expect(pixel(t, 7, 4)).toEqual([0, 0, 255]);
  });

  it('crops: the centre square of a wide image fills the input', async () => {
    const data = halves();
    // Mark the outer quarters green: a centre crop of 8x8 must not contain any green.
    for (let y = 0; y < 8; y++) for (const x of [0, 1, 2, 3, 12, 13, 14, 15]) data.set([0, 255, 0], (y * 16 + x) * 3);
    const png = await sharp(data, { raw: { width: 16, height: 8, channels: 3 } })
      .png()
      .toBuffer();
    const t = await preprocessBytes(png, 'wide.png', INPUT, { resize: 'crop' });
    for (let x = 0; x < 8; x++) expect(t[(4 * 8 + x) * 3 + 1]).toBeLessThan(40);
  });

  it('decodes JPEG, PNG, WebP, TIFF and BMP to the same picture', async () => {
    const raw = sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } });
    const encoded = {
      png: await raw.clone().png().toBuffer(),
      webp: await raw.clone().webp({ lossless: true }).toBuffer(),
      tiff: await raw.clone().tiff().toBuffer(),
      jpeg: await raw.clone().jpeg({ quality: 100 }).toBuffer(),
      bmp: encodeBmp({ width: 16, height: 8, data: halves() }),
    };
    for (const [format, bytes] of Object.entries(encoded)) {
      const t = await preprocessBytes(bytes, `x.${format}`, INPUT, { resize: 'fill' });
      expect(t.length, format).toBe(8 * 8 * 3);
      expect(t[(4 * 8 + 1) * 3]!, format).toBeGreaterThan(200);
      expect(t[(4 * 8 + 6) * 3 + 2]!, format).toBeGreaterThan(200);
    }
  });

  it('applies EXIF orientation before resizing', async () => {
    // Stored as 16x8 with orientation 6 (rotate 90° clockwise): displayed 8x16, red on top.
    const jpeg = await sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const t = await preprocessBytes(jpeg, 'rotated.jpg', INPUT, { resize: 'fill' });
    expect(t[(1 * 8 + 4) * 3]!).toBeGreaterThan(200); // top row red
    expect(t[(6 * 8 + 4) * 3 + 2]!).toBeGreaterThan(200); // bottom row blue
  });

  it('turns greyscale and alpha images into 3-channel RGB', async () => {
    const grey = await sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const rgba = await sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } })
      .ensureAlpha(0.5)
      .png()
      .toBuffer();
    for (const bytes of [grey, rgba]) {
      expect((await preprocessBytes(bytes, 'x.png', INPUT, { resize: 'fill' })).length).toBe(192);
    }
  });

  it('lays out NCHW float32 with mean/std and int8 with the zero point shift', () => {
    const rgb = new Uint8Array([10, 20, 30, 40, 50, 60]); // 2x1 image
    const f = toInputTensor(rgb, {
      width: 2,
      height: 1,
      channels: 3,
      layout: 'NCHW',
      dtype: 'float32',
      mean: [10, 20, 30],
      std: [2, 4, 5],
    });
    expect(Array.from(f)).toEqual([0, 15, 0, 7.5, 0, 6]);
    const q = toInputTensor(rgb, { width: 2, height: 1, channels: 3, layout: 'NHWC', dtype: 'int8' });
    expect(Array.from(q)).toEqual([-118, -108, -98, -88, -78, -68]);
  });
});

describe('bad images', () => {
  const cases: [string, Uint8Array, string][] = [
    ['empty.jpg', new Uint8Array(0), 'IMAGE_EMPTY'],
    ['page.jpg', new TextEncoder().encode('<!doctype html><html><body>404</body></html>'), 'IMAGE_UNREADABLE'],
    ['random.png', Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251), 'IMAGE_UNREADABLE'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name} gives ${code} naming the file`, async () => {
      const path = join(tmp.path, name);
      writeFileSync(path, bytes);
      const error = await preprocessFile(path, INPUT, { resize: 'fill' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImageError);
      expect((error as ImageError).code).toBe(code);
      expect((error as ImageError).message).toContain(path);
    });
  }

  it('a truncated JPEG is an error, not a half-grey picture', async () => {
    const jpeg = await sharp(halves(), { raw: { width: 16, height: 8, channels: 3 } })
      .jpeg()
      .toBuffer();
    const error = await preprocessBytes(jpeg.subarray(0, jpeg.length / 2), 'cut.jpg', INPUT, {
      resize: 'fill',
    }).catch((e: unknown) => e);
    expect((error as ImageError).code).toBe('IMAGE_UNREADABLE');
  });

  it('a missing file names the path', async () => {
    await expect(preprocessFile(join(tmp.path, 'nope.jpg'), INPUT, { resize: 'fill' })).rejects.toThrow(/nope\.jpg: cannot read file/);
  });

  it('a 100-megapixel image is refused before it is decoded', async () => {
    // 10000x10000 PNG of one colour compresses to a few hundred KB.
    const big = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#336699' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    const error = await preprocessBytes(big, 'huge.png', INPUT, { resize: 'fill' }).catch((e: unknown) => e);
    expect((error as ImageError).code).toBe('IMAGE_TOO_LARGE');
    expect((error as ImageError).message).toMatch(/huge\.png: 10000x10000 = 100\.0 megapixels exceeds the limit of 64 megapixels/);
  });

  it('a BMP over the pixel limit is refused', async () => {
    const bmp = encodeBmp({ width: 20, height: 20, data: new Uint8Array(1200) });
    await expect(preprocessBytes(bmp, 'big.bmp', INPUT, { resize: 'fill', maxPixels: 100 })).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
    });
  });
});
