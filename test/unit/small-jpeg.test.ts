import { readFileSync } from 'node:fs';
import sharp, { type JpegOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import { readJpegHeader } from '../../runtime/image/jpeg-header.js';
import { preprocessBytes } from '../../runtime/image/preprocess.js';
import { smallJpegDecoder } from '../../runtime/image/small-jpeg.js';
import type { ModelInput } from '../../runtime/models/manifest.js';
import { flowerPhotos } from '../support/paths.js';

const INPUT: ModelInput = { width: 224, height: 224, channels: 3, layout: 'NHWC', dtype: 'uint8' };

/** Every 10th flowers128 photo (about 430, all five classes). */
const flowers = flowerPhotos(10);

/** What sharp decodes, as the preprocessing asks it (the colour steps are no-ops for these photos). */
async function sharpRgb(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes, { failOn: 'error' }).rotate().flatten({ background: '#000' }).toColourspace('srgb').raw().toBuffer();
}

async function smallRgb(bytes: Uint8Array): Promise<Buffer | undefined> {
  const header = readJpegHeader(bytes)!;
  const rgb = (await smallJpegDecoder()).decode(bytes, header.width, header.height);
  return rgb && Buffer.from(rgb);
}

/** The tensor with sharp doing everything, and with the default path. */
async function bothWays(bytes: Uint8Array): Promise<[Buffer, Buffer]> {
  const sharpOnly = await preprocessBytes(bytes, 'x', INPUT, { resize: 'fill', fastEnlarge: false });
  const fast = await preprocessBytes(bytes, 'x', INPUT, { resize: 'fill' });
  return [
    Buffer.from(sharpOnly.buffer, sharpOnly.byteOffset, sharpOnly.byteLength),
    Buffer.from(fast.buffer, fast.byteOffset, fast.byteLength),
  ];
}

describe('small JPEGs decoded in WebAssembly', () => {
  it('gives the bytes sharp decodes for every sampled flowers128 photo', async () => {
    let same = 0;
    for (const path of flowers) {
      const bytes = readFileSync(path);
      expect(readJpegHeader(bytes)?.plainYcc, path).toBe(true);
      if ((await smallRgb(bytes))?.equals(await sharpRgb(bytes))) same++;
    }
    expect(flowers.length).toBeGreaterThan(400);
    expect(same).toBe(flowers.length);
  });

  it('gives the same bytes for chroma subsampling, progressive scans, mozjpeg options and odd sizes', async () => {
    const photo = readFileSync(flowers[7]!);
    const sizes: Array<[number, number]> = [
      [1, 1],
      [37, 91],
      [200, 17],
      [224, 224],
      [333, 250],
    ];
    const encodings: Array<[string, JpegOptions]> = [
      ['4:2:0 q80', { quality: 80 }],
      ['4:4:4 q95', { quality: 95, chromaSubsampling: '4:4:4' }],
      ['progressive q60', { quality: 60, progressive: true }],
      ['mozjpeg q40', { quality: 40, mozjpeg: true }],
      ['optimised coding q10', { quality: 10, optimiseCoding: true }],
    ];
    for (const [w, h] of sizes) {
      for (const [name, options] of encodings) {
        const jpeg = await sharp(photo).resize(w, h, { fit: 'fill' }).jpeg(options).toBuffer();
        const label = `${w}x${h} ${name}`;
        expect(readJpegHeader(jpeg)?.plainYcc, label).toBe(true);
        const small = await smallRgb(jpeg);
        expect(small?.equals(await sharpRgb(jpeg)), label).toBe(true);
      }
    }
  });

  it("leaves ICC-profiled, grey and CMYK photos to sharp, and the tensor is still sharp's", async () => {
    const photo = sharp(readFileSync(flowers[3]!)).resize(96, 64, { fit: 'fill' });
    const variants = {
      'Display P3 profile': await photo.clone().jpeg().withIccProfile('p3').toBuffer(),
      'one grey component': await photo.clone().toColourspace('b-w').jpeg().toBuffer(),
      CMYK: await photo.clone().toColourspace('cmyk').jpeg().toBuffer(),
    };
    for (const [name, jpeg] of Object.entries(variants)) {
      expect(readJpegHeader(jpeg)?.plainYcc, name).toBe(false);
      const [sharpOnly, fast] = await bothWays(jpeg);
      expect(sharpOnly.equals(fast), name).toBe(true);
    }
  });

  it('refuses photos over its size bound, which sharp then decodes', async () => {
    const large = await sharp(readFileSync(flowers[1]!)).resize(600, 600).jpeg().toBuffer();
    expect((await smallJpegDecoder()).decode(large, 600, 600)).toBeUndefined();
  });

  it('hands a truncated photo back to sharp, and decodes the next photo right after a damaged one', async () => {
    const bytes = readFileSync(flowers[5]!);
    const truncated = bytes.subarray(0, Math.floor(bytes.length * 0.6));
    expect((await smallJpegDecoder()).decode(truncated, 128, 128)).toBeUndefined();
    await expect(preprocessBytes(truncated, 'cut.jpg', INPUT, { resize: 'fill' })).rejects.toThrow(
      'cut.jpg: not a readable image (VipsJpeg: premature end of JPEG image)',
    );

    // A Huffman table that lies about its size stops libjpeg mid-call (an error, not a warning).
    const damaged = Buffer.from(bytes);
    const dht = damaged.indexOf(Buffer.from([0xff, 0xc4]));
    damaged.fill(0xff, dht + 4, dht + 24);
    expect((await smallJpegDecoder()).decode(damaged, 128, 128)).toBeUndefined();
    await expect(preprocessBytes(damaged, 'damaged.jpg', INPUT, { resize: 'fill' })).rejects.toThrow(/damaged\.jpg: not a readable image/);
    expect((await smallRgb(bytes))?.equals(await sharpRgb(bytes))).toBe(true);
  });
});
