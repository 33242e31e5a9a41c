// A decoder for uncompressed 24- and 32-bit BMP files, the one common format sharp's prebuilt libvips
// cannot read (the Coral sample photos are BMPs). Other BMP variants are refused with a clear error.

import { ImageError } from '../../core/errors.js';

export interface RawRgb {
  width: number;
  height: number;
  /** [height, width, 3] RGB, top row first. */
  data: Uint8Array;
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;

export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

export function decodeBmp(bytes: Uint8Array, where: string): RawRgb {
  const fail = (why: string): never => {
    throw new ImageError('IMAGE_UNREADABLE', `${where}: unsupported or damaged BMP: ${why}`);
  };
  if (bytes.length < 54) fail(`${bytes.length} bytes is shorter than a BMP header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pixelOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize < 40) fail(`header size ${headerSize} (OS/2 bitmaps are not supported)`);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bitsPerPixel = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  if (width <= 0 || rawHeight === 0) fail(`size ${width}x${rawHeight}`);
  if (bitsPerPixel !== 24 && bitsPerPixel !== 32) fail(`${bitsPerPixel} bits per pixel (only 24 and 32)`);
  if (compression !== BI_RGB && !(compression === BI_BITFIELDS && bitsPerPixel === 32)) {
    fail(`compression type ${compression} (only uncompressed)`);
  }
  const bottomUp = rawHeight > 0;
  const height = Math.abs(rawHeight);
  const bytesPerPixel = bitsPerPixel / 8;
  const rowStride = Math.ceil((width * bytesPerPixel) / 4) * 4;
  if (pixelOffset + rowStride * (height - 1) + width * bytesPerPixel > bytes.length) {
    fail(`pixel data needs ${rowStride * height} bytes from offset ${pixelOffset}, file has ${bytes.length}`);
  }
  // BITFIELDS masks sit right after a 40-byte header; the usual order is BGRA, which we check for.
  if (compression === BI_BITFIELDS) {
    const masks = [view.getUint32(54, true), view.getUint32(58, true), view.getUint32(62, true)];
    if (masks[0] !== 0x00ff0000 || masks[1] !== 0x0000ff00 || masks[2] !== 0x000000ff) {
      fail(`bit masks ${masks.map((m) => m.toString(16)).join('/')} (only 8-bit BGR channels)`);
    }
  }
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const src = pixelOffset + (bottomUp ? height - 1 - y : y) * rowStride;
    let dst = y * width * 3;
    for (let x = 0; x < width; x++) {
      const p = src + x * bytesPerPixel;
      data[dst++] = bytes[p + 2]!;
      data[dst++] = bytes[p + 1]!;
      data[dst++] = bytes[p]!;
    }
  }
  return { width, height, data };
}

/** Encodes RGB as a 24-bit bottom-up BMP (used by tests and fixtures). */
export function encodeBmp(image: RawRgb): Uint8Array {
  const rowStride = Math.ceil((image.width * 3) / 4) * 4;
  const size = 54 + rowStride * image.height;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  view.setUint32(2, size, true);
  view.setUint32(10, 54, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, image.width, true);
  view.setInt32(22, image.height, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 24, true);
  view.setUint32(34, rowStride * image.height, true);
  for (let y = 0; y < image.height; y++) {
    const dstRow = 54 + (image.height - 1 - y) * rowStride;
    for (let x = 0; x < image.width; x++) {
      const s = (y * image.width + x) * 3;
      out[dstRow + x * 3] = image.data[s + 2]!;
      out[dstRow + x * 3 + 1] = image.data[s + 1]!;
      out[dstRow + x * 3 + 2] = image.data[s]!;
    }
  }
  return out;
}
