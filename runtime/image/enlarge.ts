// Enlarging small photos to the backbone's input, bit for bit as sharp does it, at a fifth of the cost.
// sharp enlarges with libvips's affine and its fixed-point Catmull-Rom interpolator, one 4x4 stencil per
// output pixel (about 1.9 ms of CPU for a 128 x 128 photo to 224 x 224, more than decoding it). A pure
// scale is separable, so here each source row is interpolated across once and the rows are combined
// down, with libvips's own coefficient table and roundings: the same bytes for a fifth of the CPU (both
// passes in WebAssembly SIMD, enlarge-simd.ts, where it runs).

import sharp from 'sharp';
import { simdEnlarger } from './enlarge-simd.js';

/** How the libvips in use places the first output pixel (it changed between releases). */
export type SamplingOffset = 'half-pixel' | 'centre';

// libvips's fixed-point grid: stencil positions in 1/64 pixel, coefficients in 1/4096.
const POSITIONS = 64;
const COEFFICIENT_SHIFT = 12;
const ROUNDING = 1 << (COEFFICIENT_SHIFT - 1);

/** [POSITIONS + 1, 4] Catmull-Rom coefficients, computed and truncated as libvips's bicubic.cpp does. */
const COEFFICIENTS = (() => {
  const table = new Int32Array((POSITIONS + 1) * 4);
  for (let t = 0; t <= POSITIONS; t++) {
    const x = t / POSITIONS;
    // libvips's ten-flop form; the same operations give the same doubles before truncation.
    const cr1 = 1 - x;
    const cr2 = -0.5 * x;
    const cr3 = cr1 * cr2;
    const cone = cr1 * cr3;
    const cfou = x * cr3;
    const cr4 = cfou - cone;
    const ctwo = cr1 - cone + cr4;
    const cthr = x - cfou - cr4;
    [cone, ctwo, cthr, cfou].forEach((c, i) => (table[t * 4 + i] = Math.trunc(c * (1 << COEFFICIENT_SHIFT))));
  }
  return table;
})();

/** Per output position along one axis: the 4 clamped source offsets (index x unit) and their coefficients. */
interface AxisTaps {
  offset: Int32Array;
  weight: Int32Array;
}

/**
 * The stencil for each output position along an axis of `from` source pixels enlarged to `to` by
 * `scale`, as vips_resize → vips_affine place it: `inverse` from the matrix inverse, the input offset,
 * the 2-pixel border of edge copies, and the coordinate stepped by addition where libvips adds; offsets
 * in elements of the row (`unit` 3) or of the image (`unit` the row length).
 */
function axisTaps(
  from: number,
  to: number,
  scale: number,
  inverse: number,
  offset: SamplingOffset,
  stepped: boolean,
  unit: number,
): AxisTaps {
  const displacement = offset === 'half-pixel' ? 0.5 : 0.5 * (1 - 1 / scale);
  // vips_affine's displacement after it adds its one-pixel border; then to the 2-pixel-bordered image.
  const inputOffset = displacement - 1;
  const at = new Int32Array(to * 4);
  const weight = new Int32Array(to * 4);
  let along = 0 - inputOffset + 1;
  for (let o = 0; o < to; o++) {
    // Rows are placed by multiplication, columns by repeated addition (vips_affine_gen).
    const position = stepped ? along : inverse * o - inputOffset + 1;
    const fraction = (((Math.trunc(position * POSITIONS * 2) & (POSITIONS * 2 - 1)) + 1) >> 1) * 4;
    // Stencil top-left in the bordered image is (int)x - 1; the border is 2 pixels of edge copies.
    const first = Math.trunc(position) - 3;
    for (let i = 0; i < 4; i++) {
      at[o * 4 + i] = Math.min(from - 1, Math.max(0, first + i)) * unit;
      weight[o * 4 + i] = COEFFICIENTS[fraction + i]!;
    }
    along += inverse;
  }
  return { offset: at, weight };
}

/** Photos come in a few sizes: their stencils are kept (a few KiB each). */
const tapsCache = new Map<string, AxisTaps>();
function cachedTaps(...args: Parameters<typeof axisTaps>): AxisTaps {
  const key = args.join(' ');
  let taps = tapsCache.get(key);
  if (!taps) {
    if (tapsCache.size >= 64) tapsCache.clear();
    taps = axisTaps(...args);
    tapsCache.set(key, taps);
  }
  return taps;
}

let scratch = new Int16Array(0);

/**
 * [h, w, 3] uint8 RGB → [height, width, 3], enlarged on both axes (w <= width, h <= height, not both
 * equal), the bytes sharp's `resize(width, height, { fit: 'fill' })` gives.
 */
export function enlargeRgb(
  rgb: Uint8Array,
  w: number,
  h: number,
  width: number,
  height: number,
  offset: SamplingOffset,
  /** Both passes in WebAssembly SIMD where it runs (the default), or in JavaScript. */
  combine: 'simd' | 'js' = 'simd',
): Uint8Array {
  // sharp's scales, and vips__transform_calc_inverse's inverse of the diagonal matrix.
  const scaleX = 1 / (w / width);
  const scaleY = 1 / (h / height);
  const det = 1 / (scaleX * scaleY);
  const stride = width * 3;
  const across = cachedTaps(w, width, scaleX, det * scaleY, offset, true, 3);
  const down = cachedTaps(h, height, scaleY, det * scaleX, offset, false, stride);
  // A plain Uint8Array whatever came in (sharp gives Buffers): one element kind keeps V8's loads fast.
  const src = new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  const simd = combine === 'simd' ? simdEnlarger() : undefined;
  if (simd) {
    const memory = simd.layout(w * h * 3, h * stride, height * stride, width);
    memory.src.set(src);
    memory.at.set(across.offset);
    memory.weight.set(across.weight);
    const { address } = memory;
    for (let y = 0; y < h; y++) simd.across(address.src + y * w * 3, address.at, address.weight, width, address.rows + y * stride * 2);
    const { offset: o, weight: c } = down;
    for (let y = 0, k = 0; y < height; y++, k += 4) {
      simd.down(
        address.rows,
        o[k]! * 2,
        o[k + 1]! * 2,
        o[k + 2]! * 2,
        o[k + 3]! * 2,
        c[k]!,
        c[k + 1]!,
        c[k + 2]!,
        c[k + 3]!,
        address.out + y * stride,
        stride,
      );
    }
    return memory.out.slice();
  }
  if (scratch.length < h * stride) scratch = new Int16Array(h * stride);
  interpolateAcross(src, w, h, width, across, scratch);
  return combineDown(scratch, width, height, down);
}

/** Each source row interpolated across into `rows` ([h, width, 3]), rounded as libvips rounds each row of
 * its stencil. `rows` is scratch kept between calls: every value is written before it is read. */
function interpolateAcross(rgb: Uint8Array, w: number, h: number, width: number, taps: AxisTaps, rows: Int16Array): void {
  const stride = width * 3;
  const at = taps.offset;
  const weight = taps.weight;
  for (let y = 0; y < h; y++) {
    const src = y * w * 3;
    let q = y * stride;
    for (let x = 0; x < width * 4; x += 4) {
      const p0 = src + at[x]!;
      const p1 = src + at[x + 1]!;
      const p2 = src + at[x + 2]!;
      const p3 = src + at[x + 3]!;
      const c0 = weight[x]!;
      const c1 = weight[x + 1]!;
      const c2 = weight[x + 2]!;
      const c3 = weight[x + 3]!;
      rows[q++] = (c0 * rgb[p0]! + c1 * rgb[p1]! + c2 * rgb[p2]! + c3 * rgb[p3]! + ROUNDING) >> COEFFICIENT_SHIFT;
      rows[q++] = (c0 * rgb[p0 + 1]! + c1 * rgb[p1 + 1]! + c2 * rgb[p2 + 1]! + c3 * rgb[p3 + 1]! + ROUNDING) >> COEFFICIENT_SHIFT;
      rows[q++] = (c0 * rgb[p0 + 2]! + c1 * rgb[p1 + 2]! + c2 * rgb[p2 + 2]! + c3 * rgb[p3 + 2]! + ROUNDING) >> COEFFICIENT_SHIFT;
    }
  }
}

/** The interpolated rows combined down, rounded, and clipped to 0..255 by the clamped array's stores (the
 * values are integers, so it only clips); a pixel per step, which V8 runs faster than a value per step. */
function combineDown(rows: Int16Array, width: number, height: number, taps: AxisTaps): Uint8Array {
  const stride = width * 3;
  const out = new Uint8ClampedArray(height * stride);
  for (let y = 0; y < height; y++) {
    const k = y * 4;
    const r0 = taps.offset[k]!;
    const r1 = taps.offset[k + 1]!;
    const r2 = taps.offset[k + 2]!;
    const r3 = taps.offset[k + 3]!;
    const c0 = taps.weight[k]!;
    const c1 = taps.weight[k + 1]!;
    const c2 = taps.weight[k + 2]!;
    const c3 = taps.weight[k + 3]!;
    const o = y * stride;
    for (let i = 0; i < stride; i += 3) {
      out[o + i] = (c0 * rows[r0 + i]! + c1 * rows[r1 + i]! + c2 * rows[r2 + i]! + c3 * rows[r3 + i]! + ROUNDING) >> COEFFICIENT_SHIFT;
      const j = i + 1;
      out[o + j] = (c0 * rows[r0 + j]! + c1 * rows[r1 + j]! + c2 * rows[r2 + j]! + c3 * rows[r3 + j]! + ROUNDING) >> COEFFICIENT_SHIFT;
      const l = i + 2;
      out[o + l] = (c0 * rows[r0 + l]! + c1 * rows[r1 + l]! + c2 * rows[r2 + l]! + c3 * rows[r3 + l]! + ROUNDING) >> COEFFICIENT_SHIFT;
    }
  }
  return new Uint8Array(out.buffer);
}

let probed: Promise<SamplingOffset | undefined> | undefined;

/**
 * Which placement makes `enlargeRgb` equal to this process's sharp, found once by enlarging a small
 * pseudo-random image both ways (a few milliseconds); undefined when neither does, and then sharp
 * enlarges every photo as before. A libvips upgrade that changes its arithmetic cannot change the
 * embeddings silently.
 */
export function enlargeOffsetMatchingSharp(): Promise<SamplingOffset | undefined> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<SamplingOffset | undefined> {
  // Both axes enlarged by unequal, non-integer factors, and one axis kept at its size.
  const cases = [
    { w: 29, h: 23, width: 64, height: 61 },
    { w: 40, h: 17, width: 40, height: 52 },
  ];
  let seed = 12345;
  const images = cases.map(({ w, h }) =>
    Uint8Array.from({ length: w * h * 3 }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    }),
  );
  const expected = await Promise.all(
    cases.map((c, i) =>
      sharp(images[i], { raw: { width: c.w, height: c.h, channels: 3 } })
        .resize(c.width, c.height, { fit: 'fill' })
        .raw()
        .toBuffer(),
    ),
  );
  const offsets: SamplingOffset[] = ['half-pixel', 'centre'];
  return offsets.find((offset) =>
    cases.every((c, i) => Buffer.from(enlargeRgb(images[i]!, c.w, c.h, c.width, c.height, offset)).equals(expected[i]!)),
  );
}
