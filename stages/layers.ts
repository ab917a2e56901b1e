/**
 * The building blocks of every model here, as plain functions over named parameters.
 *
 * A model is a {@link Params} record of tf.Variables; a forward pass is a function of
 * (params, inputs, ctx). Batch-norm running statistics are not mutated in the forward
 * pass: in training mode it records the new values in `ctx.updates`, and the train loop
 * assigns them after the optimiser step — so the forward pass stays a pure function.
 *
 * Convolutions are plain tf ops. `conv2dFilterGrad` and `conv2dTransposeAsConv` write a
 * conv's filter gradient and a transposed conv as conv2d: the wasm and cpu backends
 * register them as their Conv2DBackpropFilter and Conv2DBackpropInput kernels
 * (pipeline/backends/fast_routes.ts; ../shared/notes/tfjs-on-deno.md); no stage asks
 * which backend runs.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { conv2d, normalInit, variable } from "./layers.ts";
 * const params = { c1: variable("demo/c1.w", normalInit([4, 4, 3, 8], 1)) };
 * const y = conv2d(tf.zeros([1, 8, 8, 3]), params.c1 as tf.Variable<tf.Rank.R4>, 2);
 * console.log(y.shape); // [1, 4, 4, 8]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Activation,
  affineActKernel,
  biasActKernel,
  fusedBatchNormAct,
  type Modulation,
  upsampleKernel,
} from "./fused.ts";

export type Params = Record<string, tf.Variable>;

/** Per-call state of a forward pass. */
export interface Context {
  readonly training: boolean;
  /** Batch-norm running averages to assign after the step (training mode only). */
  readonly updates: Array<[tf.Variable, tf.Tensor]>;
  /**
   * When present, batch norm also records here each layer's batch moments themselves
   * (kept tensors, for the caller to free), keyed by its running-mean and -variance
   * variables: what standing statistics average.
   */
  readonly moments?: Array<[tf.Variable, tf.Tensor]>;
}

export const newContext = (training: boolean): Context => ({ training, updates: [] });

// ---------------------------------------------------------------- initialisation

/**
 * A model's variable-name prefix, which its caller chooses. Variable names are global in
 * tfjs and must be unique, so a caller that names its models gives each instance its own
 * prefix (pipeline code may keep a counter; stages keep none). Without one
 * (`undefined`), tfjs names each variable itself, uniquely. Checkpoints never store
 * these names: they key tensors by the params' own keys (`namedVariables`).
 */
export type Prefix = string | undefined;

/** The variable name of `key` under `prefix` (`undefined`: tfjs chooses a unique one). */
export const named = (prefix: Prefix, key: string): string | undefined =>
  prefix === undefined ? undefined : `${prefix}${key}`;

/**
 * A variable holding `value`, which it takes over (the tensor itself is disposed), named
 * `name` (or by tfjs, uniquely, when `undefined`).
 */
export function variable(
  name: string | undefined,
  value: tf.Tensor,
  trainable = true,
): tf.Variable {
  const v = tf.variable(value, trainable, name);
  value.dispose(); // the variable keeps its own reference to the data
  return v;
}

/** DCGAN init: N(0, 0.02) weights. `seed` makes it repeatable. */
export const normalInit = (shape: number[], seed: number, std = 0.02) =>
  tf.randomNormal(shape, 0, std, "float32", seed);

/** Glorot-uniform, for dense and recurrent layers. */
export const glorotInit = (shape: number[], seed: number) => {
  const limit = Math.sqrt(6 / (shape[0] + shape[shape.length - 1]));
  return tf.randomUniform(shape, -limit, limit, "float32", seed);
};

// ---------------------------------------------------------------- convolutions

type Pad = "same" | "valid";

/** Pads (top, left) that tfjs uses for a conv of `inSize` → `outSize`. */
function padBefore(inSize: number, outSize: number, k: number, stride: number, pad: Pad) {
  if (pad === "valid") return 0;
  return Math.floor(Math.max((outSize - 1) * stride + k - inSize, 0) / 2);
}

/**
 * dL/dW of `y = conv2d(x, W, stride, pad)`, written as a stride-1 conv2d of the
 * transposed input with the transposed output gradient (dilation = stride).
 * x: [n, h, w, ci], dy: [n, oh, ow, co] → [kh, kw, ci, co].
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernel: [number, number],
  stride: number,
  pad: Pad,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const [, oh, ow] = dy.shape;
    const [kh, kw] = kernel;
    const top = padBefore(h, oh, kh, stride, pad);
    const left = padBefore(w, ow, kw, stride, pad);
    // Rows of x the conv reads: top-padded, then exactly kh + (oh-1)·stride of them.
    const needH = kh + (oh - 1) * stride - top;
    const needW = kw + (ow - 1) * stride - left;
    let xs = x;
    if (needH < h || needW < w) {
      xs = x.slice([0, 0, 0, 0], [-1, Math.min(h, needH), Math.min(w, needW), -1]);
    }
    const bottom = Math.max(0, needH - h);
    const right = Math.max(0, needW - w);
    const input = xs.transpose([3, 1, 2, 0]) as tf.Tensor4D; // [ci, h, w, n]
    const filter = dy.transpose([1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, n, co]
    const out = tf.conv2d(
      input,
      filter,
      1,
      [[0, 0], [top, bottom], [left, right], [0, 0]],
      "NHWC",
      [
        stride,
        stride,
      ],
    ); // [ci, kh, kw, co]
    return out.transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * A transposed conv computed as a stride-1 conv2d: the input is dilated with zeros,
 * padded, and correlated with the spatially flipped, channel-swapped filter. wasm's
 * Conv2DBackpropInput is a slow reference loop while its Conv2D is XNNPACK, so this is
 * several times faster there despite the zeros.
 * x: [n, h, w, ci], filter [kh, kw, co, ci] → [n, H, W, co] = outShape.
 */
export function conv2dTransposeAsConv(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  stride: number,
  outShape: [number, number, number, number],
  pad: Pad,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, wd, ci] = x.shape;
    const [kh, kw] = w.shape;
    const [, H, W] = outShape;
    let u: tf.Tensor4D = x;
    if (stride > 1) {
      u = x.reshape([n, h, 1, wd, 1, ci])
        .pad([[0, 0], [0, 0], [0, stride - 1], [0, 0], [0, stride - 1], [0, 0]])
        .reshape([n, h * stride, wd * stride, ci]);
    }
    // Padding around the dilated input (length (h−1)·stride + 1) so that a 'valid' conv
    // gives H rows; the stride − 1 trailing zeros of the dilation count toward it.
    const side = (inner: number, out: number, k: number) => {
      const before = padBefore(out, inner, k, stride, pad);
      const dilated = (inner - 1) * stride + 1;
      return [k - 1 - before, out - dilated + before - (stride - 1)];
    };
    const [top, bottom] = side(h, H, kh);
    const [left, right] = side(wd, W, kw);
    if (bottom < 0 || right < 0) {
      u = u.slice([0, 0, 0, 0], [
        -1,
        u.shape[1] + Math.min(bottom, 0),
        u.shape[2] + Math.min(right, 0),
        -1,
      ]);
    }
    u = u.pad([[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]]);
    const flipped = tf.reverse(w, [0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(u, flipped, 1, "valid");
  });
}

/** conv2d, NHWC, filter [kh, kw, ci, co]. */
export const conv2d = (
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  stride: number,
  pad: Pad = "same",
): tf.Tensor4D => tf.conv2d(x, w, stride, pad);

/**
 * Transposed conv (up-sampling), NHWC, filter [kh, kw, co, ci] as tfjs wants it; by
 * default the output is `stride`× the input in height and width ('same' padding).
 */
export const conv2dTranspose = (
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  stride: number,
  outShape: [number, number, number, number] = [
    x.shape[0],
    x.shape[1] * stride,
    x.shape[2] * stride,
    w.shape[2],
  ],
  pad: Pad = "same",
): tf.Tensor4D => tf.conv2dTranspose(x, w, outShape, stride, pad);

// ---------------------------------------------------------------- other layers

/** Records a training-mode batch norm's moments in ctx (running averages, standing ones). */
function recordStatistics(
  p: Params,
  name: string,
  ctx: Context,
  mean: tf.Tensor,
  variance: tf.Tensor,
  momentum: number,
): void {
  const runMean = p[`${name}.mean`];
  const runVar = p[`${name}.var`];
  if (!runMean) return;
  ctx.moments?.push([runMean, tf.keep(mean)], [runVar, tf.keep(variance)]);
  ctx.updates.push(
    [runMean, tf.keep(tf.tidy(() => runMean.mul(momentum).add(mean.mul(1 - momentum))))],
    [runVar, tf.keep(tf.tidy(() => runVar.mul(momentum).add(variance.mul(1 - momentum))))],
  );
}

/**
 * Batch norm over all axes but the last, then the per-sample affine of conditional batch
 * norm when `mod` is given (·(1 + scale) + shift, each [B, C]), then `act` (leaky ReLU with
 * slope 0.2). Training: the batch's statistics, and the running averages (momentum 0.9)
 * are recorded in ctx.updates. Eval: the running statistics. In
 * training mode one kernel forward and one backward (stages/fused.ts); in eval mode, with
 * the running statistics, one affine-and-activation kernel.
 */
export function batchNormAct(
  x: tf.Tensor4D,
  p: Params,
  name: string,
  ctx: Context,
  act: Activation,
  mod?: Modulation,
  momentum = 0.9,
  epsilon = 1e-5,
): tf.Tensor4D {
  const gamma = p[`${name}.gamma`], beta = p[`${name}.beta`];
  if (ctx.training || !p[`${name}.mean`]) {
    const { y, mean, variance } = fusedBatchNormAct(x, gamma, beta, act, 0.2, epsilon, mod);
    if (ctx.training) recordStatistics(p, name, ctx, mean, variance, momentum);
    return y as tf.Tensor4D;
  }
  const [a, b] = runningAffine(p, name, x.shape[0], epsilon, mod);
  return affineActKernel(x, a, b, act, 0.2) as tf.Tensor4D;
}

/**
 * Batch norm on running statistics, then `mod`, as one affine per sample and channel:
 * (x − mean) · rsqrt(var + ε) · γ + β, ·(1 + scale) + shift, is x · a + b with
 * a = γ · rsqrt(var + ε) · (1 + scale) and b = (β − mean · γ · rsqrt(var + ε)) · (1 + scale)
 * + shift, each [B, C].
 */
function runningAffine(
  p: Params,
  name: string,
  batch: number,
  epsilon: number,
  mod?: Modulation,
): [tf.Tensor2D, tf.Tensor2D] {
  const gain = tf.mul(p[`${name}.gamma`], tf.rsqrt(tf.add(p[`${name}.var`], epsilon)));
  const offset = tf.sub(p[`${name}.beta`], tf.mul(p[`${name}.mean`], gain));
  const C = gain.shape[0];
  if (!mod) {
    const rows = (t: tf.Tensor) => tf.broadcastTo(t.reshape([1, C]), [batch, C]) as tf.Tensor2D;
    return [rows(gain), rows(offset)];
  }
  const m = tf.add(1, mod.scale);
  return [tf.mul(gain, m), tf.add(tf.mul(offset, m), mod.shift)] as [tf.Tensor2D, tf.Tensor2D];
}

/** The affine kernel of stages/fused.ts in tf ops: act(x · a + b), a and b [B, C]. */
export function affineActOps(x: tf.Tensor, a: tf.Tensor, b: tf.Tensor, act: Activation): tf.Tensor {
  const perSample = [x.shape[0], ...x.shape.slice(1, -1).map(() => 1), x.shape[x.rank - 1]];
  return modulateAct(tf.add(tf.mul(x, a.reshape(perSample)), b.reshape(perSample)), act);
}

/** ·(1 + scale) + shift per sample when `mod` is given, then `act`, in tf ops. */
function modulateAct(h: tf.Tensor, act: Activation, mod?: Modulation): tf.Tensor {
  if (mod) {
    const C = h.shape[h.rank - 1];
    const perSample = [h.shape[0], ...h.shape.slice(1, -1).map(() => 1), C];
    h = tf.add(tf.mul(h, tf.add(1, mod.scale.reshape(perSample))), mod.shift.reshape(perSample));
  }
  if (act === "relu") return tf.relu(h);
  return act === "leakyRelu" ? leakyRelu(h, 0.2) : h;
}

/**
 * The batch-norm kernel of stages/fused.ts written in tf ops (batch statistics): what the
 * backends without their own run as that kernel (pipeline/backends/fused_routes.ts).
 */
export function batchNormActOps(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  act: Activation,
  epsilon: number,
  mod?: Modulation,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const axes = x.shape.map((_, i) => i).slice(0, -1);
  const { mean, variance } = tf.moments(x, axes, false);
  const normalized = tf.add(
    tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma),
    beta,
  );
  return { y: modulateAct(normalized, act, mod), mean, variance };
}

/**
 * Standing statistics (Brock et al. 2019) of any network with batch norm: runs each
 * forward pass in training mode, then sets every layer's running mean and variance to
 * the average of its batch moments over the passes (the running averages' momentum plays
 * no part). Only the statistics change. Returns how many variables were set (0: no
 * batch norm with running statistics).
 *
 * @example
 * ```ts
 * // standingStatistics([(ctx) => classifierFeatures(p, images, ctx)]);
 * ```
 */
export function standingStatistics(forwards: readonly ((ctx: Context) => unknown)[]): number {
  const sums = new Map<tf.Variable, tf.Tensor>();
  for (const forward of forwards) {
    const ctx = { ...newContext(true), moments: [] as Array<[tf.Variable, tf.Tensor]> };
    tf.tidy(() => {
      forward(ctx);
    });
    tf.dispose(ctx.updates.map(([, t]) => t));
    for (const [v, m] of ctx.moments) {
      const before = sums.get(v);
      sums.set(v, before ? tf.add(before, m) : m.clone());
      before?.dispose();
      m.dispose();
    }
  }
  for (const [v, sum] of sums) {
    tf.tidy(() => v.assign(tf.div(sum, forwards.length)));
    sum.dispose();
  }
  return sums.size;
}

/**
 * The variables of a batch-norm layer over `channels`. Without `running` (the
 * discriminator, which never runs in eval mode) it keeps no running statistics.
 */
export function initBatchNorm(
  prefix: Prefix,
  name: string,
  channels: number,
  running = true,
): Params {
  const p: Params = {
    [`${name}.gamma`]: variable(named(prefix, `${name}.gamma`), tf.ones([channels])),
    [`${name}.beta`]: variable(named(prefix, `${name}.beta`), tf.zeros([channels])),
  };
  if (running) {
    p[`${name}.mean`] = variable(named(prefix, `${name}.mean`), tf.zeros([channels]), false);
    p[`${name}.var`] = variable(named(prefix, `${name}.var`), tf.ones([channels]), false);
  }
  return p;
}

/** Applies the recorded running-average updates and frees them. */
export function applyUpdates(ctx: Context): void {
  for (const [v, value] of ctx.updates) {
    v.assign(value);
    value.dispose();
  }
  ctx.updates.length = 0;
}

export const trainable = (p: Params): tf.Variable[] => Object.values(p).filter((v) => v.trainable);

/** act(x + bias) for a bias [C] over x's last axis (leaky ReLU with slope 0.2), one kernel. */
export const biasAct = (x: tf.Tensor, bias: tf.Tensor, act: Activation): tf.Tensor =>
  biasActKernel(x, bias, act, 0.2);

/** {@link biasAct} in tf ops: what the backends without the kernel run as it. */
export const biasActOps = (x: tf.Tensor, bias: tf.Tensor, act: Activation): tf.Tensor =>
  modulateAct(tf.add(x, bias), act);

/**
 * Leaky ReLU as relu(x) − α·relu(−x): the same values as tf.leakyRelu, but its gradient
 * is itself differentiable in tfjs (tf.leakyRelu's uses `greater`, which has no gradient),
 * as WGAN-GP's gradient penalty needs.
 */
export const leakyRelu = (x: tf.Tensor, alpha = 0.2): tf.Tensor =>
  tf.sub(tf.relu(x), tf.mul(alpha, tf.relu(tf.neg(x))));

/**
 * Nearest-neighbour ×2 up-sampling [B, H, W, C] → [B, 2H, 2W, C], one kernel each way
 * (stages/fused.ts). Where a backend has no kernel of its own it runs
 * {@link upsampleNearestOps}: concat and reshape, so that its gradient needs no
 * ResizeNearestNeighborGrad kernel. The concats are of rank-3 views: their gradient is a
 * Slice, which wasm copies row by row up to rank 4 but element by element through a
 * generic index loop at rank 5 (100× slower here).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { upsampleNearest } from "./layers.ts";
 * upsampleNearest(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])); // rows [1,1,2,2],[1,1,2,2],[3,3,4,4],…
 * ```
 */
export const upsampleNearest = (x: tf.Tensor4D): tf.Tensor4D => upsampleKernel(x);

/** {@link upsampleNearest} in tf ops: what the backends without the kernel run as it. */
export function upsampleNearestOps(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const a = x.reshape([B * H * W, 1, C]);
  const wide = tf.concat([a, a], 1).reshape([B * H, 1, 2 * W * C]);
  return tf.concat([wide, wide], 1).reshape([B, 2 * H, 2 * W, C]) as tf.Tensor4D;
}
