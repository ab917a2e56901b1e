/**
 * Deterministic test tensors (mulberry32): the same bytes on every backend, thread and run.
 *
 * @example
 * ```ts
 * import { seededTensor } from "./seeded.ts";
 * seededTensor([2, 3], 7, -2, 2); // values uniform in [-2, 2), the same for seed 7 everywhere
 * ```
 */
import * as tf from "@tensorflow/tfjs";

/** A float32 tensor of `shape` with values uniform in [lo, hi), drawn from `seed`. */
export function seededTensor(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    v[i] = lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  }
  return tf.tensor(v, shape);
}
