// Image bytes -> the backbone's input tensor: decode (sharp, or our BMP decoder), apply EXIF orientation,
// resize (fill or centre crop), then lay out and convert to the manifest's dtype.

import { open, readFile, stat } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { ImageError, errorMessage } from '../../core/errors.js';
import type { ModelInput, ResizePolicy } from '../models/manifest.js';
import { decodeBmp, isBmp } from './bmp.js';

// One libvips thread per image: images are decoded in parallel already, and the cores are for inference.
sharp.concurrency(1);
// No operation cache: every photo is new, and the cache would hold up to 50 MB on a 1 GiB board.
sharp.cache(false);

export type InputTensor = Uint8Array | Int8Array | Float32Array;

export interface PreprocessOptions {
  resize: ResizePolicy;
  /** Images with more pixels are refused before decoding (a 1 GiB Pi cannot hold them). */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 64_000_000;

/** Reads a file and preprocesses it; errors name the file. */
export async function preprocessFile(path: string, input: ModelInput, options: PreprocessOptions): Promise<InputTensor> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ImageError('IMAGE_UNREADABLE', `${path}: cannot read file: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return preprocessBytes(bytes, path, input, options);
}

/** Preprocesses an image file without holding its encoded bytes in memory (libvips reads the file as it
 * decodes; a 20 MB upload costs the decoder's rows, not 20 MB); BMPs, which we decode ourselves, are read. */
export async function preprocessStoredFile(
  path: string,
  where: string,
  input: ModelInput,
  options: PreprocessOptions,
): Promise<InputTensor> {
  const head = Buffer.alloc(2);
  const handle = await open(path, 'r');
  try {
    await handle.read(head, 0, 2, 0);
  } finally {
    await handle.close();
  }
  if (isBmp(head)) return preprocessBytes(await readFile(path), where, input, options);
  if ((await stat(path)).size === 0) throw new ImageError('IMAGE_EMPTY', `${where}: file is empty (0 bytes)`);
  const rgb = await decodeResized(path, where, input.width, input.height, options);
  return toInputTensor(rgb, input);
}

/** Preprocesses encoded image bytes; `where` names the image in errors. */
export async function preprocessBytes(
  bytes: Uint8Array,
  where: string,
  input: ModelInput,
  options: PreprocessOptions,
): Promise<InputTensor> {
  const rgb = await decodeResized(bytes, where, input.width, input.height, options);
  return toInputTensor(rgb, input);
}

async function decodeResized(
  bytes: Uint8Array | string,
  where: string,
  width: number,
  height: number,
  options: PreprocessOptions,
): Promise<Uint8Array> {
  if (typeof bytes !== 'string' && bytes.length === 0) throw new ImageError('IMAGE_EMPTY', `${where}: file is empty (0 bytes)`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    let pipeline: Sharp;
    if (typeof bytes !== 'string' && isBmp(bytes)) {
      const bmp = decodeBmp(bytes, where);
      if (bmp.width * bmp.height > maxPixels) throw tooLarge(where, bmp.width, bmp.height, maxPixels);
      pipeline = sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
    } else {
      pipeline = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' }).rotate();
    }
    const { data, info } = await pipeline
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .resize(width, height, { fit: options.resize === 'crop' ? 'cover' : 'fill', position: 'centre' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== width || info.height !== height) {
      throw new ImageError('IMAGE_UNREADABLE', `${where}: decoded to ${info.width}x${info.height}x${info.channels}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (err) {
    if (err instanceof ImageError) throw err;
    const message = errorMessage(err);
    if (/pixel limit/i.test(message)) {
      const { width = 0, height = 0 } = await sharp(bytes, { limitInputPixels: false })
        .metadata()
        .catch(() => ({ width: 0, height: 0 }));
      throw tooLarge(where, width, height, maxPixels);
    }
    throw new ImageError('IMAGE_UNREADABLE', `${where}: not a readable image (${message})`, { cause: err });
  }
}

function tooLarge(where: string, width: number, height: number, maxPixels: number): ImageError {
  const size = width > 0 ? `${width}x${height} = ${((width * height) / 1e6).toFixed(1)} megapixels` : 'the image';
  return new ImageError('IMAGE_TOO_LARGE', `${where}: ${size} exceeds the limit of ${(maxPixels / 1e6).toFixed(0)} megapixels`);
}

/** [H, W, 3] uint8 RGB -> the manifest's layout and dtype. */
export function toInputTensor(rgb: Uint8Array, input: ModelInput): InputTensor {
  const pixels = input.width * input.height;
  if (input.dtype === 'uint8' && input.layout === 'NHWC') return rgb;
  if (input.dtype === 'int8' && input.layout === 'NHWC') {
    const out = new Int8Array(rgb.length);
    for (let i = 0; i < rgb.length; i++) out[i] = rgb[i]! - 128;
    return out;
  }
  const out =
    input.dtype === 'float32'
      ? new Float32Array(rgb.length)
      : input.dtype === 'int8'
        ? new Int8Array(rgb.length)
        : new Uint8Array(rgb.length);
  const mean = input.mean ?? [0, 0, 0];
  const std = input.std ?? [1, 1, 1];
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!;
    const inv = 1 / std[c]!;
    for (let p = 0; p < pixels; p++) {
      const pixel = rgb[p * 3 + c]!;
      const dst = input.layout === 'NHWC' ? p * 3 + c : c * pixels + p;
      out[dst] = input.dtype === 'float32' ? (pixel - m) * inv : input.dtype === 'int8' ? pixel - 128 : pixel;
    }
  }
  return out;
}
