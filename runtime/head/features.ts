// Feature transforms shared by every head kind. Backbone embeddings here are average-pooled ReLU
// activations: non-negative and heavy-tailed. A power transform (x^0.5, as in few-shot work such as
// PT-MAP) makes them closer to Gaussian, which both linear and nearest-mean heads like.

/** y = sign(x) * |x|^power, in place on a copy. power 1 leaves the vector unchanged. */
export function powerTransform(x: Float32Array, power: number): Float32Array {
  const y = new Float32Array(x.length);
  if (power === 1) {
    y.set(x);
    return y;
  }
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    y[i] = v >= 0 ? v ** power : -((-v) ** power);
  }
  return y;
}

/** Scales a vector to unit L2 norm (zero vectors stay zero). */
export function l2Normalize(x: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * inv;
  return x;
}

/** Numerically stable softmax of `logits` into a new array, with a temperature. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i]! - max) / temperature);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}
