// A JPEG's size and EXIF orientation from its first segments, read in microseconds without libvips:
// enough to tell, before decoding, whether a photo will only be enlarged (and how).

export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1-8; 1 when the file has none. */
  orientation: number;
  /**
   * True for what libjpeg alone decodes to the bytes libvips gives: 8-bit Huffman (baseline, extended
   * or progressive) with three components, and no ICC profile (sharp converts those to sRGB) or Adobe
   * marker (its colour transform flag).
   */
  plainYcc: boolean;
}

const SOI = 0xd8;
const APP1 = 0xe1;
const APP2 = 0xe2;
const APP14 = 0xee;
const SOS = 0xda;
const EOI = 0xd9;
/** Start-of-frame markers (baseline, progressive, lossless...), not DHT (c4), JPG (c8) or DAC (cc). */
const isStartOfFrame = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/** The header of a JPEG, or undefined for anything else, a damaged header, or more than one Exif block. */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let orientation: number | undefined;
  let colourMarker = false;
  let frame: { width: number; height: number; plainFrame: boolean } | undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === EOI) return undefined;
    // Markers may follow the frame header; the scan starts once all are read.
    if (marker === SOS) {
      if (!frame) return undefined;
      return { width: frame.width, height: frame.height, orientation: orientation ?? 1, plainYcc: frame.plainFrame && !colourMarker };
    }
    const length = view.getUint16(at + 2);
    if (length < 2 || at + 2 + length > bytes.length) return undefined;
    const body = at + 4;
    if (marker === APP1 && length >= 8 && isExif(bytes, body)) {
      // libvips reads one Exif block; with two, which one wins is not ours to guess.
      if (orientation !== undefined) return undefined;
      const found = exifOrientation(view, body + 6, at + 2 + length);
      if (found === undefined) return undefined;
      orientation = found;
    }
    if ((marker === APP2 && startsWith(bytes, body, 'ICC_PROFILE')) || (marker === APP14 && startsWith(bytes, body, 'Adobe'))) {
      colourMarker = true;
    }
    if (isStartOfFrame(marker)) {
      if (length < 8 || frame) return undefined;
      const precision = bytes[body]!;
      const height = view.getUint16(body + 1);
      const width = view.getUint16(body + 3);
      const components = bytes[body + 5]!;
      if (width === 0 || height === 0) return undefined;
      const huffman = marker === 0xc0 || marker === 0xc1 || marker === 0xc2;
      frame = { width, height, plainFrame: huffman && precision === 8 && components === 3 };
    }
    at += 2 + length;
  }
  return undefined;
}

function startsWith(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

function isExif(bytes: Uint8Array, at: number): boolean {
  return (
    bytes[at] === 0x45 &&
    bytes[at + 1] === 0x78 &&
    bytes[at + 2] === 0x69 &&
    bytes[at + 3] === 0x66 &&
    bytes[at + 4] === 0 &&
    bytes[at + 5] === 0
  );
}

/** Orientation from the TIFF structure at `tiff` (IFD0, tag 0x0112); 1 when absent, undefined if damaged. */
function exifOrientation(view: DataView, tiff: number, end: number): number | undefined {
  if (tiff + 8 > end) return undefined;
  const order = view.getUint16(tiff);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined;
  const little = order === 0x4949;
  if (view.getUint16(tiff + 2, little) !== 42) return undefined;
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > end) return undefined;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > end) return undefined;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? value : undefined;
  }
  return 1;
}
