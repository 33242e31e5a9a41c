// Raw engine outputs to real numbers, shared by both engines.

/** Copies raw output values into `out`, applying real = scale * (q - zeroPoint) for quantized outputs. */
export function dequantizeInto(
  values: ArrayLike<number>,
  quantization: { scale: number; zeroPoint: number } | undefined,
  out: Float32Array,
  offset: number,
): void {
  const scale = quantization?.scale ?? 1;
  const zeroPoint = quantization?.zeroPoint ?? 0;
  const isFloat = values instanceof Float32Array || values instanceof Float64Array;
  for (let i = 0; i < values.length; i++) {
    out[offset + i] = isFloat ? values[i]! : scale * (values[i]! - zeroPoint);
  }
}
