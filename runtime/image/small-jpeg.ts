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
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}

type DecoderFactory = (options: {
  noInitialRun: boolean;
  instantiateWasm: (imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance) => void) => WebAssembly.Instance['exports'];
  print: (text: string) => void;
  printErr: (text: string) => void;
}) => Promise<Decoder>;

export interface SmallJpegDecoder {
  /**
   * The [H, W, 3] RGB of a small plain JPEG (see `JpegHeader.plainYcc`), or undefined when sharp should
   * decode it: too large, a warning, or an error. The array is this decoder's and holds the photo until
   * the next call: use it before anything else can decode (the decoder allocates nothing per photo
   * beyond the copy its binding makes, which keeps a flood of photos from growing the heap).
   */
  decode(bytes: Uint8Array, width: number, height: number): Uint8Array | undefined;
}

const require = createRequire(import.meta.url);
let compiled: Promise<{ factory: DecoderFactory; module: WebAssembly.Module }> | undefined;
let current: Promise<SmallJpegDecoder> | undefined;

/** The decoder, made on first use (the compiled module is kept; an instance is about 17 MB reserved). */
export function smallJpegDecoder(): Promise<SmallJpegDecoder> {
  current ??= create();
  return current;
}

function compile(): Promise<{ factory: DecoderFactory; module: WebAssembly.Module }> {
  compiled ??= (async () => {
    const dir = join(dirname(require.resolve('@jsquash/jpeg/package.json')), 'codec', 'dec');
    const code = (await import(pathToFileURL(join(dir, 'mozjpeg_dec.js')).href)) as { default: DecoderFactory };
    return { factory: code.default, module: await WebAssembly.compile(readFileSync(join(dir, 'mozjpeg_dec.wasm'))) };
  })();
  return compiled;
}

async function create(): Promise<SmallJpegDecoder> {
  const { factory, module } = await compile();
  // libjpeg reports a warning (a truncated or damaged scan) on stderr and decodes on; we listen for it.
  let warned = false;
  const codec = await factory({
    noInitialRun: true,
    instantiateWasm: (imports, receive) => {
      const instance = new WebAssembly.Instance(module, imports);
      receive(instance);
      return instance.exports;
    },
    print: () => {},
    printErr: () => {
      warned = true;
    },
  });
  let rgb = new Uint8Array(0);
  const self: SmallJpegDecoder = {
    decode(bytes, width, height) {
      if (width * height > SMALL_JPEG_MAX_PIXELS || bytes.length > SMALL_JPEG_MAX_BYTES) return undefined;
      warned = false;
      let image: ReturnType<Decoder['decode']>;
      try {
        image = codec.decode(bytes, false);
      } catch {
        // libjpeg's errors end the WebAssembly call mid-way: drop this instance and what it held.
        current = undefined;
        return undefined;
      }
      if (!image || warned || image.width !== width || image.height !== height) return undefined;
      const size = width * height * 3;
      if (rgb.length < size) rgb = new Uint8Array(size);
      const rgba = image.data;
      for (let p = 0, q = 0; q < size; p += 4, q += 3) {
        rgb[q] = rgba[p]!;
        rgb[q + 1] = rgba[p + 1]!;
        rgb[q + 2] = rgba[p + 2]!;
      }
      return rgb.subarray(0, size);
    },
  };
  return self;
}
