// `enlargeRgb`'s two passes in WebAssembly SIMD: across, a pixel's 3 channels at a time; down, 8 values
// at a time. The module is about 600 bytes assembled here from its instructions, so no toolchain and no
// binary file; where WebAssembly SIMD is missing, enlarge.ts keeps its JavaScript loops.

/** Unsigned LEB128, WebAssembly's integer encoding. */
const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
};
/** Signed LEB128, for i32.const. */
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const section = (id: number, bytes: number[]): number[] => [id, ...leb(bytes.length), ...bytes];
const name = (s: string): number[] => vec([...s].map((c) => [c.charCodeAt(0)]));

const I32 = 0x7f;
const V128 = 0x7b;
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const i32 = (v: number) => [0x41, ...sleb(v)];
const add = 0x6a;
const shl = 0x74;
const simd = (op: number, ...immediates: number[]) => [0xfd, ...leb(op), ...immediates];
const V128_LOAD = 0x00; // memarg: align, offset
const I16X8_SPLAT = 0x10;
const I32X4_SPLAT = 0x11;
const I8X16_NARROW_I16X8_U = 0x66; // saturates to 0..255: the clip
const V128_STORE64_LANE = 0x5b; // memarg, lane
const I16X8_NARROW_I32X4_S = 0x85;
const I32X4_SHR_S = 0xac;
const I32X4_ADD = 0xae;
const I32X4_EXTMUL_LOW_I16X8_S = 0xbc;
const I32X4_EXTMUL_HIGH_I16X8_S = 0xbd;
const V128_LOAD32_ZERO = 0x5c; // memarg
const I16X8_EXTEND_LOW_I8X16_U = 0x89;
const I32X4_EXTEND_LOW_I16X8_U = 0xa9;
const I32X4_MUL = 0xb5;
const I32_LOAD = 0x28; // memarg: align, offset

// down(rows, r0, r1, r2, r3, c0, c1, c2, c3, out, n): for i in 0, 8, ... < n,
//   out[i..i+8] = clip((c0 * rows[r0 + i] + ... + c3 * rows[r3 + i] + 2048) >> 12), rows i16, out u8;
// rows and out are byte addresses, r0..r3 byte offsets of the four source rows from rows.
const P = { rows: 0, r0: 1, c0: 5, out: 9, n: 10 };
const L = { i: 11, coefficient0: 12, low: 16, high: 17, loaded: 18 };
const rowTerm = (k: number, first: boolean): number[] => [
  // loaded = v128.load(rows + r_k + 2i); low (+)= loaded[0..4] * c_k; high (+)= loaded[4..8] * c_k
  ...get(P.rows),
  ...get(P.r0 + k),
  add,
  ...get(L.i),
  ...i32(1),
  shl,
  add,
  ...simd(V128_LOAD, 1, 0),
  ...tee(L.loaded),
  ...get(L.coefficient0 + k),
  ...simd(I32X4_EXTMUL_LOW_I16X8_S),
  ...(first ? [] : [...get(L.low), ...simd(I32X4_ADD)]),
  ...set(L.low),
  ...get(L.loaded),
  ...get(L.coefficient0 + k),
  ...simd(I32X4_EXTMUL_HIGH_I16X8_S),
  ...(first ? [] : [...get(L.high), ...simd(I32X4_ADD)]),
  ...set(L.high),
];
const roundedShift = (local: number): number[] => [
  ...get(local),
  ...i32(2048),
  ...simd(I32X4_SPLAT),
  ...simd(I32X4_ADD),
  ...i32(12),
  ...simd(I32X4_SHR_S),
];
const body = [
  ...vec([
    [1, I32],
    [7, V128],
  ]),
  ...[0, 1, 2, 3].flatMap((k) => [...get(P.c0 + k), ...simd(I16X8_SPLAT), ...set(L.coefficient0 + k)]),
  ...i32(0),
  ...set(L.i),
  ...[0x02, 0x40, 0x03, 0x40], // block, loop
  ...[...get(L.i), ...get(P.n), 0x4f /* i32.ge_u */, 0x0d, 1 /* br_if out of the block */],
  ...[0, 1, 2, 3].flatMap((k) => rowTerm(k, k === 0)),
  ...[...get(P.out), ...get(L.i), add],
  ...roundedShift(L.low),
  ...roundedShift(L.high),
  ...simd(I16X8_NARROW_I32X4_S),
  ...tee(L.loaded),
  ...get(L.loaded),
  ...simd(I8X16_NARROW_I16X8_U),
  ...simd(V128_STORE64_LANE, 0, 0, 0),
  ...[...get(L.i), ...i32(8), add, ...set(L.i)],
  ...[0x0c, 0 /* br to the loop */, 0x0b, 0x0b, 0x0b],
];

// across(src, at, weight, width, q): for x in 0 .. width, with p_k = src + at[4x + k] and c_k = weight[4x + k]
// (i32 arrays at byte addresses `at` and `weight`), the pixel's R, G, B =
//   (c0 * src[p0 + ch] + ... + c3 * src[p3 + ch] + 2048) >> 12, stored as i16 at q + 6x (a fourth i16 is
// written too: the next pixel's store overwrites it). One source row per call.
const A = { src: 0, at: 1, weight: 2, width: 3, q: 4 };
const AL = { x: 5, k: 6, sum: 7 };
const tapTerm = (k: number): number[] => [
  // extend(extend(load32_zero(src + at[k]))) * splat(weight[k])
  ...get(A.src),
  ...get(A.at),
  ...get(AL.k),
  add,
  I32_LOAD,
  2,
  k * 4, // i32.load, offset 4k
  add,
  ...simd(V128_LOAD32_ZERO, 0, 0),
  ...simd(I16X8_EXTEND_LOW_I8X16_U),
  ...simd(I32X4_EXTEND_LOW_I16X8_U),
  ...get(A.weight),
  ...get(AL.k),
  add,
  I32_LOAD,
  2,
  k * 4,
  ...simd(I32X4_SPLAT),
  ...simd(I32X4_MUL),
  ...(k === 0 ? [] : [...get(AL.sum), ...simd(I32X4_ADD)]),
  ...set(AL.sum),
];
const acrossBody = [
  ...vec([
    [2, I32],
    [1, V128],
  ]),
  ...i32(0),
  ...set(AL.x),
  ...[0x02, 0x40, 0x03, 0x40],
  ...[...get(AL.x), ...get(A.width), 0x4f, 0x0d, 1],
  ...[...get(AL.x), ...i32(4), shl, ...set(AL.k)],
  ...[0, 1, 2, 3].flatMap(tapTerm),
  // q + 6x
  ...[...get(A.q), ...get(AL.x), ...i32(6), 0x6c /* i32.mul */, add],
  ...roundedShift(AL.sum),
  ...tee(AL.sum),
  ...get(AL.sum),
  ...simd(I16X8_NARROW_I32X4_S),
  ...simd(V128_STORE64_LANE, 0, 0, 0),
  ...[...get(AL.x), ...i32(1), add, ...set(AL.x)],
  ...[0x0c, 0, 0x0b, 0x0b, 0x0b],
];

const MODULE = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...section(
    1,
    vec([
      [0x60, ...vec(Array.from({ length: 11 }, () => [I32])), 0],
      [0x60, ...vec(Array.from({ length: 5 }, () => [I32])), 0],
    ]),
  ),
  ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 1]])),
  ...section(3, vec([[0], [1]])),
  ...section(
    7,
    vec([
      [...name('down'), 0x00, 0],
      [...name('across'), 0x00, 1],
    ]),
  ),
  ...section(
    10,
    vec([
      [...leb(body.length), ...body],
      [...leb(acrossBody.length), ...acrossBody],
    ]),
  ),
]);

type Down = (
  rows: number,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  out: number,
  n: number,
) => void;
type Across = (src: number, at: number, weight: number, width: number, q: number) => void;

/** Where one photo's buffers sit in the module's memory (byte addresses), and views of them. */
export interface SimdLayout {
  address: { src: number; rows: number; out: number; at: number; weight: number };
  src: Uint8Array;
  rows: Int16Array;
  out: Uint8Array;
  at: Int32Array;
  weight: Int32Array;
}

/** Both passes of the enlargement in WebAssembly; undefined where WebAssembly SIMD is missing. */
export interface SimdEnlarger {
  /** Buffers for a photo of `srcBytes`, `rowValues` interpolated row values, `outBytes`, `taps` x 4 taps. */
  layout(srcBytes: number, rowValues: number, outBytes: number, taps: number): SimdLayout;
  across: Across;
  down: Down;
}

let enlarger: SimdEnlarger | null | undefined;

export function simdEnlarger(): SimdEnlarger | undefined {
  if (enlarger === undefined) enlarger = WebAssembly.validate(MODULE) ? instantiate() : null;
  return enlarger ?? undefined;
}

function instantiate(): SimdEnlarger {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE), { env: { memory } });
  // Each buffer 16-aligned with 16 spare bytes after it: the 8-byte stores and 4-byte loads overrun.
  const next = (address: number, bytes: number) => Math.ceil((address + bytes + 16) / 16) * 16;
  return {
    across: instance.exports.across as Across,
    down: instance.exports.down as Down,
    layout(srcBytes, rowValues, outBytes, taps) {
      const rows = 0;
      const out = next(rows, rowValues * 2);
      const src = next(out, outBytes);
      const at = next(src, srcBytes);
      const weight = next(at, taps * 16);
      const end = next(weight, taps * 16);
      if (memory.buffer.byteLength < end) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
      const buffer = memory.buffer;
      return {
        address: { src, rows, out, at, weight },
        src: new Uint8Array(buffer, src, srcBytes),
        rows: new Int16Array(buffer, rows, rowValues),
        out: new Uint8Array(buffer, out, outBytes),
        at: new Int32Array(buffer, at, taps * 4),
        weight: new Int32Array(buffer, weight, taps * 4),
      };
    },
  };
}
