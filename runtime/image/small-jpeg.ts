// Small JPEGs decoded in WebAssembly: libjpeg-turbo's decoder (mozjpeg's build, from @jsquash/jpeg)
// gives the bytes sharp's libvips gives for a plain YCbCr JPEG, at a quarter of the CPU for a photo
// smaller than the backbone's input (0.4 ms against 1.6 ms for 128 x 128 here), because sharp's fixed
// cost per call is more than decoding such a photo. Anything unusual (a warning, an error) goes back to
// sharp, which decides what the photo is and names what is wrong with it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Only small photos: the decoder's memory grows to the largest one it has held and never shrinks. */
export const SMALL_JPEG_MAX_PIXELS = 512 * 512;
export const SMALL_JPEG_MAX_BYTES = 1024 * 1024;

interface Decoder {
  decode(data: ArrayBuffer, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}

type DecoderFactory = (options: {
  noInitialRun: boolean;
  instantiateWasm: (imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance) => void) => WebAssembly.Instance['exports'];
  print: (text: string) => void;
  printErr: (text: string) => void;
}) => Promise<Decoder>;

const require = createRequire(import.meta.url);

interface Loaded {
  factory: DecoderFactory;
  compiled: WebAssembly.Module;
}
let loaded: Promise<Loaded> | undefined;
let instance: Promise<{ decoder: Decoder; warned: { value: boolean } }> | undefined;

function load(): Promise<Loaded> {
  loaded ??= (async () => {
    const dir = join(dirname(require.resolve('@jsquash/jpeg/package.json')), 'codec', 'dec');
    const module = (await import(pathToFileURL(join(dir, 'mozjpeg_dec.js')).href)) as { default: DecoderFactory };
    return { factory: module.default, compiled: await WebAssembly.compile(readFileSync(join(dir, 'mozjpeg_dec.wasm'))) };
  })();
  return loaded;
}

function decoderInstance(): Promise<{ decoder: Decoder; warned: { value: boolean } }> {
  instance ??= (async () => {
    const { factory, compiled } = await load();
    // libjpeg reports a warning (a truncated or damaged scan) on stderr and decodes on; we listen for it.
    const warned = { value: false };
    const decoder = await factory({
      noInitialRun: true,
      instantiateWasm: (imports, receive) => {
        const created = new WebAssembly.Instance(compiled, imports);
        receive(created);
        return created.exports;
      },
      print: () => {},
      printErr: () => {
        warned.value = true;
      },
    });
    return { decoder, warned };
  })();
  return instance;
}

/**
 * The [H, W, 3] RGB of a small plain JPEG (see `JpegHeader.plainYcc`), or undefined when sharp should
 * decode it: too large, a warning, or an error. libjpeg's errors end the WebAssembly call mid-way, so
 * after one the instance (and whatever it held) is dropped and the next call starts a fresh one.
 */
export async function decodeSmallJpeg(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array | undefined> {
  if (width * height > SMALL_JPEG_MAX_PIXELS || bytes.length > SMALL_JPEG_MAX_BYTES) return undefined;
  const { decoder, warned } = await decoderInstance();
  let image: ReturnType<Decoder['decode']>;
  warned.value = false;
  try {
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    image = decoder.decode(copy, false);
  } catch {
    instance = undefined;
    return undefined;
  }
  if (!image || warned.value || image.width !== width || image.height !== height) return undefined;
  const rgba = image.data;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) {
    rgb[q] = rgba[p]!;
    rgb[q + 1] = rgba[p + 1]!;
    rgb[q + 2] = rgba[p + 2]!;
  }
  return rgb;
}
