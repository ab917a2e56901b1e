/**
 * Spectral normalisation (Miyato et al. 2018): a layer's weight W divided by σ(W), its
 * largest singular value, with W read as a matrix [fan-in, fan-out] (a conv's kernel
 * [k, k, in, out] as [k·k·in, out]). It bounds how fast D's logit can move with its
 * input, the usual cure for a discriminator that wins.
 *
 * σ is estimated as the paper does: each layer keeps two unit vectors, `KEY.u`
 * [fan-out] and `KEY.v` [fan-in] (non-trainable, saved with the model), that one power
 * iteration per D step ({@link powerIteration}, outside the gradient tape) moves
 * towards W's top singular pair; the forward pass uses σ = vᵀ W u, so the gradient
 * treats u and v as constants (∂σ/∂W = v uᵀ).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initSpectral, powerIteration, spectralWeight } from "./spectral.ts";
 * import { variable } from "./layers.ts";
 *
 * const p = { w: variable(undefined, tf.tensor2d([[3, 0], [0, 1]])) };
 * Object.assign(p, initSpectral(p, ["w"], 1));
 * for (let i = 0; i < 20; i++) powerIteration(p);
 * spectralWeight(p, "w").arraySync(); // ≈ [[1, 0], [0, 0.333]]: σ was 3
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { named, type Params, type Prefix, variable } from "./layers.ts";

const EPS = 1e-12;

/** W as the matrix [fan-in, fan-out] that σ is the top singular value of. */
const asMatrix = (w: tf.Tensor): tf.Tensor2D => w.reshape([-1, w.shape[w.shape.length - 1]]);

/** x / ‖x‖ for a vector [n, 1]. */
const unit = (x: tf.Tensor2D): tf.Tensor2D => tf.div(x, tf.add(tf.norm(x), EPS));

/**
 * The power-iteration vectors of the weights `keys` of `p`: `KEY.u` a seeded random unit
 * vector [fan-out, 1], `KEY.v` = W u / ‖W u‖ [fan-in, 1]. Add them to the layer's params:
 * from then on {@link spectralWeight} normalises those weights.
 */
export function initSpectral(
  p: Params,
  keys: readonly string[],
  seed: number,
  pre?: Prefix,
): Params {
  const out: Params = {};
  keys.forEach((key, i) => {
    const [u, v] = tf.tidy(() => {
      const m = asMatrix(p[key]);
      const u = unit(tf.randomNormal([m.shape[1], 1], 0, 1, "float32", seed + i));
      return [u, unit(tf.matMul(m, u))];
    });
    out[`${key}.u`] = variable(named(pre, `${key}.u`), u, false);
    out[`${key}.v`] = variable(named(pre, `${key}.v`), v, false);
  });
  return out;
}

/** The keys of `p` whose weights are spectrally normalised (those with a `.u`). */
export const spectralKeys = (p: Params): string[] =>
  Object.keys(p).filter((k) => k.endsWith(".u") && p[`${k.slice(0, -2)}.v`]).map((k) =>
    k.slice(0, -2)
  );

/**
 * One power iteration for every normalised weight of `p`: v ← W u / ‖W u‖, then
 * u ← Wᵀ v / ‖Wᵀ v‖, assigned in place. Call it once per D step, before the step's
 * gradient tape (nothing here is differentiated).
 */
export function powerIteration(p: Params): void {
  for (const key of spectralKeys(p)) {
    tf.tidy(() => {
      const m = asMatrix(p[key]);
      const v = unit(tf.matMul(m, p[`${key}.u`]));
      const u = unit(tf.matMul(m, v, true, false));
      p[`${key}.v`].assign(v);
      p[`${key}.u`].assign(u);
    });
  }
}

/**
 * `p[key]`, divided by σ = vᵀ W u where the layer keeps power-iteration vectors, as is
 * otherwise. Differentiable in W, with u and v held fixed.
 */
export function spectralWeight(p: Params, key: string): tf.Tensor {
  const w = p[key];
  const u = p[`${key}.u`];
  if (!u) return w;
  return tf.tidy(() => {
    const sigma = tf.sum(tf.mul(p[`${key}.v`], tf.matMul(asMatrix(w), u)));
    return tf.div(w, sigma);
  });
}
