/**
 * Kernels for what the models would otherwise write as chains of small ops: batch norm on
 * the batch's own statistics with its affine parts and activation, a bias with its
 * activation, and nearest ×2 up-sampling. Here: their names and contracts, the calls, and
 * their gradients written in tf ops.
 *
 * Written out in tf ops, a training-mode batch norm with G's conditional affine and its
 * ReLU is ~25 kernels forward and ~45 backward, a leaky ReLU after a bias 6 and 8, and a
 * nearest up-sampling 5 and 5, each a pass over the activation and a fresh array: on the
 * default recipe's thin layers the calls cost more than the arithmetic. As kernels, each is
 * one call forward and one backward where a backend implements them (native, libpetal);
 * every other backend gets them as the same ops run inside one kernel
 * (pipeline/backends/fused_routes.ts), so a stage calls them without asking which backend
 * runs. Their gradients are kernels too where the backend has them, else the functions
 * below (also for a backward pass that is itself differentiated, as a gradient penalty's).
 *
 * The batch-norm kernel, for x [B, …, C], gamma and beta [C], and (the conditional kernel)
 * scale and shift [B, C]:
 *
 *     mean, variance = moments of x over every axis but the last (biased variance)
 *     n = (x − mean) · rsqrt(variance + epsilon) · gamma + beta
 *     y = act(n · (1 + scale) + shift)          (without scale and shift: y = act(n))
 *
 * and returns [y, mean, variance]. mean and variance are the statistics for the running
 * averages: they carry no gradient (an update of running statistics is not differentiated).
 * The bias kernel is y = act(x + bias), bias [C]; the up-sampling kernel maps x
 * [B, H, W, C] to [B, 2H, 2W, C], each pixel repeated 2×2.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedBatchNormAct } from "./fused.ts";
 * const x = tf.randomNormal([2, 4, 4, 8]);
 * const { y } = fusedBatchNormAct(x, tf.ones([8]), tf.zeros([8]), "relu", 0, 1e-5);
 * console.log(y.shape); // [2, 4, 4, 8]
 * ```
 */
import * as tf from "@tensorflow/tfjs";

/** The fused kernel: inputs x, gamma, beta; attrs act, alpha, epsilon → [y, mean, variance]. */
export const FUSED_NORM = "PetalBatchNormAct";
/** The same with inputs scale and shift [B, C] as well (conditional batch norm). */
export const FUSED_COND_NORM = "PetalCondBatchNormAct";
/**
 * Its gradient: inputs x, y, dy, mean, variance, gamma, beta (and scale); the same attrs
 * → [dx, dgamma, dbeta] (and dscale, dshift).
 */
export const FUSED_NORM_GRAD = "PetalBatchNormActGrad";

/** The activations the fused kernel applies, by their attr code. */
export const ACTIVATIONS = { linear: 0, relu: 1, leakyRelu: 2 } as const;
/** One of {@link ACTIVATIONS}. */
export type Activation = keyof typeof ACTIVATIONS;

/** The per-sample affine of conditional batch norm: ·(1 + scale) + shift, each [B, C]. */
export interface Modulation {
  readonly scale: tf.Tensor2D;
  readonly shift: tf.Tensor2D;
}

/** The bias-and-activation kernel: inputs x [.., C] and bias [C]; attrs act, alpha → y. */
export const BIAS_ACT = "PetalBiasAct";
/** Its gradient: inputs y, dy; the same attrs → [dx, dbias]. */
export const BIAS_ACT_GRAD = "PetalBiasActGrad";

/**
 * The per-sample affine-and-activation kernel: inputs x [B, …, C], a and b [B, C]; attrs
 * act, alpha → y = act(x · a + b), a and b per sample and channel. A batch norm on running
 * statistics (eval mode) with its affine parts folds into a and b (stages/layers.ts).
 */
export const AFFINE_ACT = "PetalAffineAct";

/** The up-sampling kernel: input x [B, H, W, C] → [B, 2H, 2W, C]. */
export const UPSAMPLE = "PetalUpsampleNearest2x";
/** Its gradient: input dy [B, 2H, 2W, C] → [B, H, W, C], the sum of each 2×2 block. */
export const UPSAMPLE_GRAD = "PetalUpsampleNearest2xGrad";

/** act(x + bias), bias [C] over x's last axis, as one kernel. */
export const biasActKernel = (
  x: tf.Tensor,
  bias: tf.Tensor,
  act: Activation,
  alpha: number,
): tf.Tensor =>
  tf.engine().runKernel(BIAS_ACT, { x, bias }, { act: ACTIVATIONS[act], alpha }) as tf.Tensor;

/** act(x · a + b) with a and b [B, C] per sample and channel of x [B, …, C], as one kernel. */
export const affineActKernel = (
  x: tf.Tensor,
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  act: Activation,
  alpha: number,
): tf.Tensor =>
  tf.engine().runKernel(AFFINE_ACT, { x, a, b }, { act: ACTIVATIONS[act], alpha }) as tf.Tensor;

/** Nearest ×2 up-sampling [B, H, W, C] → [B, 2H, 2W, C], as one kernel. */
export const upsampleKernel = (x: tf.Tensor4D): tf.Tensor4D =>
  tf.engine().runKernel(UPSAMPLE, { x }) as tf.Tensor4D;

/**
 * The up-sampling's gradient in tf ops: the sum of each 2×2 block of dy [B, 2H, 2W, C],
 * added as tfjs's gradient of the concats adds it, (top-left + bottom-left) + (top-right +
 * bottom-right), so that it is bit for bit that gradient.
 */
export function upsampleGradOps(dy: tf.Tensor): tf.Tensor {
  const [B, H2, W2, C] = dy.shape;
  const pairSum = (t: tf.Tensor) =>
    tf.add(t.slice([0, 0, 0], [-1, 1, -1]), t.slice([0, 1, 0], [-1, 1, -1]));
  const rows = pairSum(dy.reshape([B * H2 / 2, 2, W2 * C])); // top + bottom
  return pairSum(rows.reshape([(B * H2 * W2) / 4, 2, C])).reshape([B, H2 / 2, W2 / 2, C]);
}

/** The batch-norm kernel (see the module doc). */
export function fusedBatchNormAct(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  act: Activation,
  alpha: number,
  epsilon: number,
  mod?: Modulation,
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const attrs = { act: ACTIVATIONS[act], alpha, epsilon };
  const [y, mean, variance] = mod
    ? tf.engine().runKernel(
      FUSED_COND_NORM,
      { x, gamma, beta, scale: mod.scale, shift: mod.shift },
      attrs,
    ) as tf.Tensor[]
    : tf.engine().runKernel(FUSED_NORM, { x, gamma, beta }, attrs) as tf.Tensor[];
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/** The batch-norm kernel's gradients, by input name. */
export interface NormGrads {
  x: tf.Tensor;
  gamma: tf.Tensor;
  beta: tf.Tensor;
  scale?: tf.Tensor;
  shift?: tf.Tensor;
}

/**
 * dL/d(pre-activation) from the activation's output y and dy, in tf ops that have a (zero)
 * gradient themselves: 1 where y > 0 (the slope there) as step(y), since a comparison
 * would have none. (Step has a native kernel; sign∘relu, which it replaces, fell back to
 * the cpu backend for its Sign.)
 */
export function activationGradOps(y: tf.Tensor, dy: tf.Tensor, attrs: tf.NamedAttrMap): tf.Tensor {
  const on = tf.step(y, 0);
  const alpha = attrs.alpha as number;
  if (attrs.act === ACTIVATIONS.relu) return tf.mul(dy, on);
  if (attrs.act === ACTIVATIONS.leakyRelu) {
    return tf.mul(dy, tf.add(on, tf.mul(alpha, tf.sub(1, on))));
  }
  return dy;
}

/** The bias kernel's gradients in tf ops, from its output y and dy: [dx, dbias]. */
export function biasActGradOps(
  y: tf.Tensor,
  dy: tf.Tensor,
  attrs: tf.NamedAttrMap,
): [tf.Tensor, tf.Tensor] {
  const dx = activationGradOps(y, dy, attrs);
  return [dx, tf.sum(dx, dy.shape.map((_, i) => i).slice(0, -1))];
}

/**
 * For x [B, …, C] and a per-sample, per-channel [B, C] value: `broadcast` shapes it
 * [B, 1, …, 1, C] against x, and `sum` reduces an x-shaped tensor over each sample's
 * axes to [B, C] (the gradient of such a value).
 */
function perSampleChannel(x: tf.Tensor) {
  const C = x.shape[x.rank - 1], B = x.shape[0];
  const within = x.shape.slice(1, -1).map((_, i) => i + 1);
  return {
    broadcast: (t: tf.Tensor) => t.reshape([B, ...within.map(() => 1), C]),
    sum: (t: tf.Tensor) => (within.length ? tf.sum(t, within) : t),
  };
}

/** The affine kernel's gradients in tf ops, from x, a, its output y and dy: [dx, da, db]. */
export function affineActGradOps(
  x: tf.Tensor,
  a: tf.Tensor,
  y: tf.Tensor,
  dy: tf.Tensor,
  attrs: tf.NamedAttrMap,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const g = activationGradOps(y, dy, attrs);
  const perSample = perSampleChannel(x);
  return [tf.mul(g, perSample.broadcast(a)), perSample.sum(tf.mul(g, x)), perSample.sum(g)];
}

/**
 * The batch-norm kernel's gradients in tf ops, differentiable themselves (a gradient
 * penalty through a batch-normed D differentiates them). The statistics are recomputed
 * from x so that their dependence on x is on the tape.
 */
export function batchNormActGradOps(
  x: tf.Tensor,
  y: tf.Tensor,
  dy: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  scale: tf.Tensor | undefined,
  attrs: tf.NamedAttrMap,
): NormGrads {
  const C = x.shape[x.rank - 1];
  const axes = x.shape.map((_, i) => i).slice(0, -1);
  const count = x.size / C;
  const { mean, variance } = tf.moments(x, axes);
  const g = activationGradOps(y, dy, attrs);
  const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, attrs.epsilon as number)));
  let dn = g;
  let mod: Pick<NormGrads, "scale" | "shift"> = {};
  if (scale) {
    const perSample = perSampleChannel(x);
    mod = {
      shift: perSample.sum(g),
      scale: perSample.sum(tf.mul(g, tf.add(tf.mul(xhat, gamma), beta))),
    };
    dn = tf.mul(g, tf.add(1, perSample.broadcast(scale)));
  }
  const dbeta = tf.sum(dn, axes);
  const dgamma = tf.sum(tf.mul(dn, xhat), axes);
  const centred = tf.sub(tf.sub(dn, tf.div(dbeta, count)), tf.mul(xhat, tf.div(dgamma, count)));
  const dx = tf.mul(tf.mul(gamma, tf.rsqrt(tf.add(variance, attrs.epsilon as number))), centred);
  return { x: dx, gamma: dgamma, beta: dbeta, ...mod };
}
