// Image bytes -> the backbone's input tensor: decode (sharp, or our BMP decoder), apply EXIF orientation,
// resize (fill or centre crop), then lay out and convert to the manifest's dtype.

import { open, readFile } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { ImageError, errorMessage } from '../../core/errors.js';
import type { ModelInput, ResizePolicy } from '../models/manifest.js';
import { decodeBmp, isBmp } from './bmp.js';
import { type SamplingOffset, enlargeOffsetMatchingSharp, enlargeRgb } from './enlarge.js';
import { type JpegHeader, readJpegHeader } from './jpeg-header.js';
import { smallJpegDecoder } from './small-jpeg.js';

// One libvips thread per image: images are decoded in parallel already, and the cores are for inference.
sharp.concurrency(1);
// No operation cache: every photo is new, and the cache would hold up to 50 MB on a 1 GiB board.
sharp.cache(false);

export type InputTensor = Uint8Array | Int8Array | Float32Array;

export interface PreprocessOptions {
  resize: ResizePolicy;
  /** Images with more pixels are refused before decoding (a 1 GiB Pi cannot hold them). */
  maxPixels?: number;
  /**
   * Photos smaller than the input are enlarged by `enlargeRgb` (runtime/image/enlarge.ts), the bytes
   * sharp gives at a fifth of its CPU (default true); false leaves every resize to sharp.
   */
  fastEnlarge?: boolean;
  /**
   * Small plain JPEGs that are only enlarged are decoded by `smallJpegDecoder` (runtime/image/small-jpeg.ts),
   * the bytes sharp gives at a quarter of its CPU (default true); false leaves decoding to sharp.
   */
  smallJpegDecoder?: boolean;
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
  // The first 64 KiB tell a BMP (which we decode ourselves, so read) from the rest, and hold a JPEG's header.
  const start = Buffer.allocUnsafe(64 * 1024);
  const handle = await open(path, 'r');
  let bytesRead: number;
  try {
    ({ bytesRead } = await handle.read(start, 0, start.length, 0));
  } finally {
    await handle.close();
  }
  const head = start.subarray(0, bytesRead);
  if (isBmp(head)) return preprocessBytes(await readFile(path), where, input, options);
  if (bytesRead === 0) throw new ImageError('IMAGE_EMPTY', `${where}: file is empty (0 bytes)`);
  const header = options.fastEnlarge === false ? undefined : readJpegHeader(head);
  // A file that fits in what was read is decoded from memory (a camera's small photo, a dataset's).
  const source = bytesRead < start.length ? head : path;
  const rgb = await decodeResized(source, where, input.width, input.height, options, header);
  return toInputTensor(rgb, input);
}

/** Preprocesses encoded image bytes; `where` names the image in errors. */
export async function preprocessBytes(
  bytes: Uint8Array,
  where: string,
  input: ModelInput,
  options: PreprocessOptions,
): Promise<InputTensor> {
  const header = options.fastEnlarge === false ? undefined : readJpegHeader(bytes);
  const rgb = await decodeResized(bytes, where, input.width, input.height, options, header);
  return toInputTensor(rgb, input);
}

/**
 * How to enlarge a `w` x `h` photo to the input in edgetune (libvips's placement of the stencil), or
 * undefined when sharp must resize it: it shrinks on some axis, is the input's size, is cropped, is
 * rotated by EXIF (sharp enlarges before it rotates), or this libvips enlarges differently.
 */
async function enlargeHere(
  w: number,
  h: number,
  width: number,
  height: number,
  options: PreprocessOptions,
  orientation = 1,
): Promise<SamplingOffset | undefined> {
  const enlarges = w <= width && h <= height && (w < width || h < height);
  if (options.fastEnlarge === false || options.resize !== 'fill' || !enlarges || orientation !== 1) return undefined;
  return enlargeOffsetMatchingSharp();
}

async function decodeResized(
  bytes: Uint8Array | string,
  where: string,
  width: number,
  height: number,
  options: PreprocessOptions,
  header?: JpegHeader,
): Promise<Uint8Array> {
  if (typeof bytes !== 'string' && bytes.length === 0) throw new ImageError('IMAGE_EMPTY', `${where}: file is empty (0 bytes)`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    let pipeline: Sharp;
    if (typeof bytes !== 'string' && isBmp(bytes)) {
      const bmp = decodeBmp(bytes, where);
      if (bmp.width * bmp.height > maxPixels) throw tooLarge(where, bmp.width, bmp.height, maxPixels);
      const offset = await enlargeHere(bmp.width, bmp.height, width, height, options);
      if (offset) return enlargeRgb(bmp.data, bmp.width, bmp.height, width, height, offset);
      pipeline = sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: 3 } });
    } else {
      const offset = header && (await enlargeHere(header.width, header.height, width, height, options, header.orientation));
      if (header && offset && header.plainYcc && options.smallJpegDecoder !== false && typeof bytes !== 'string') {
        // Decoded and enlarged in one synchronous step: the decoder's array holds the photo until its next call.
        const rgb = (await smallJpegDecoder()).decode(bytes, header.width, header.height);
        if (rgb) return enlargeRgb(rgb, header.width, header.height, width, height, offset);
      }
      if (header && offset) {
        // The same decode and colour handling as below, without the resize: then the enlargement here.
        const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
          .rotate()
          .flatten({ background: { r: 0, g: 0, b: 0 } })
          .toColourspace('srgb')
          .raw()
          .toBuffer({ resolveWithObject: true });
        if (info.channels === 3 && info.width === header.width && info.height === header.height) {
          return enlargeRgb(data, info.width, info.height, width, height, offset);
        }
      }
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
