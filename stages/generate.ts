/**
 * generate: G(z, φ(t)) with conditioning augmentation (Zhang et al., StackGAN).
 *
 * φ(t) → dense → (μ, log σ²); c = μ + σ·ε; KL(N(μ, σ²) ‖ N(0, 1)) joins the G loss.
 * concat(z, c) → dense → 4×4×C₀ → BN → ReLU → [up ×2, BN, ReLU]… → tanh, where up is a
 * stride-2 transposed conv, or (`upsample: "nearest"`) nearest up-sampling and a 3×3 conv.
 * With `gTop` the last up-sampling writes gTop channels at 64×64, and one more 3×3 conv
 * (after conditional BN and ReLU) writes RGB, so that G draws its finest detail with a
 * layer of its own instead of straight out of the 32×32 features.
 *
 * Beyond GAN-INT-CLS, the condition also reaches every resolution directly: each batch
 * norm's scale and shift are modulated by c (conditional BN, as in BigGAN and DF-GAN's
 * text affine blocks), and c adds a colour offset before the final tanh. Both start at
 * zero, so a fresh G is the plain DCGAN one; they let a caption's colour show in the
 * image within a few hundred steps instead of thousands.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { generate, initGenerator } from "./generate.ts";
 * import { modelConfig } from "./config.ts";
 * import { newContext } from "./layers.ts";
 * const cfg = modelConfig("small", 100);
 * const g = initGenerator(cfg, 128, 1);
 * const { images } = generate(g, cfg, tf.randomNormal([2, cfg.zDim]), tf.zeros([2, 128]),
 *   tf.zeros([2, cfg.condDim]), newContext(false)); // [2, 64, 64, 3] in [-1, 1]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "./config.ts";
import {
  batchNormAct,
  type Context,
  conv2d,
  conv2dTranspose,
  glorotInit,
  initBatchNorm,
  named,
  normalInit,
  type Params,
  type Prefix,
  upsampleNearest,
  variable,
} from "./layers.ts";

export function initGenerator(
  cfg: ModelConfig,
  textDim: number,
  seed: number,
  pre?: Prefix,
): Params {
  const ch = cfg.gChannels;
  const p: Params = {
    "ca.w": variable(named(pre, `ca.w`), glorotInit([textDim, 2 * cfg.condDim], seed)),
    "ca.b": variable(named(pre, `ca.b`), tf.zeros([2 * cfg.condDim])),
    "fc.w": variable(
      named(pre, `fc.w`),
      normalInit([cfg.zDim + cfg.condDim, 16 * ch[0]], seed + 1),
    ),
    ...initBatchNorm(pre, "bn0", ch[0]),
    ...initModulation(pre, "bn0", cfg.condDim, ch[0]),
  };
  const top = cfg.gTop ?? 0;
  // The widths each up-sampling writes: the next stage's, then the top conv's or RGB.
  const outs = [...ch.slice(1), top || 3];
  for (let i = 0; i < ch.length; i++) {
    const out = outs[i];
    // tfjs transposed-conv filters are [kh, kw, out, in]; a 3×3 conv's are [kh, kw, in, out].
    const shape = cfg.upsample === "nearest" ? [3, 3, ch[i], out] : [4, 4, out, ch[i]];
    p[`up${i}.w`] = variable(named(pre, `up${i}.w`), normalInit(shape, seed + 2 + i));
    // Batch norm and ReLU follow every up-sampling but an RGB one.
    if (i + 1 < ch.length || top > 0) {
      Object.assign(
        p,
        initBatchNorm(pre, `bn${i + 1}`, out),
        initModulation(pre, `bn${i + 1}`, cfg.condDim, out),
      );
    }
  }
  if (top > 0) {
    p["top.w"] = variable(named(pre, `top.w`), normalInit([3, 3, top, 3], seed + 2 + ch.length));
  }
  p["out.b"] = variable(named(pre, `out.b`), tf.zeros([3]));
  p["out.cond"] = variable(named(pre, `out.cond`), tf.zeros([cfg.condDim, 3]));
  return p;
}

/** Zero-initialised maps c → per-channel scale and shift of batch norm `name`. */
function initModulation(pre: Prefix, name: string, condDim: number, channels: number): Params {
  return {
    [`${name}.cscale`]: variable(named(pre, `${name}.cscale`), tf.zeros([condDim, channels])),
    [`${name}.cshift`]: variable(named(pre, `${name}.cshift`), tf.zeros([condDim, channels])),
  };
}

/**
 * Batch norm whose affine part also depends on the condition c: ·(1 + c·Wₛ) + c·W_b, then
 * ReLU.
 */
function conditionalBatchNormRelu(
  h: tf.Tensor4D,
  p: Params,
  name: string,
  c: tf.Tensor2D,
  ctx: Context,
): tf.Tensor4D {
  const scale = tf.matMul(c, p[`${name}.cscale`] as tf.Tensor2D) as tf.Tensor2D;
  const shift = tf.matMul(c, p[`${name}.cshift`] as tf.Tensor2D) as tf.Tensor2D;
  return batchNormAct(h, p, name, ctx, "relu", { scale, shift });
}

/** Conditioning augmentation: μ, log σ² from the sentence vector. */
export function conditioning(p: Params, text: tf.Tensor2D) {
  const h = tf.leakyRelu(tf.add(tf.matMul(text, p["ca.w"] as tf.Tensor2D), p["ca.b"]), 0.2);
  const [mu, logVar] = tf.split(h, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
  return { mu, logVar };
}

/**
 * Guidance at drawing time: the condition moved away from the generator's mean condition
 * (its average over training captions), to `center + scale · (condition − center)`. At 1 it
 * is G as trained; above 1 it exaggerates what sets a caption apart from the average one,
 * as classifier-free guidance does in diffusion models, and each image commits more to its
 * caption's kind of flower (sharper, more saturated; less varied).
 */
export interface Guidance {
  /** The mean condition [width]: CA's μ averaged over training captions. */
  readonly center: tf.Tensor;
  readonly scale: number;
}

/**
 * `v` [B, width] under guidance: center + scale · (v − center); `v` itself without.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { guide } from "./generate.ts";
 * guide(tf.tensor2d([[3, 1]]), { center: tf.tensor1d([1, 1]), scale: 2 }); // [[5, 1]]
 * ```
 */
export const guide = (v: tf.Tensor2D, g?: Guidance): tf.Tensor2D =>
  !g || g.scale === 1 ? v : tf.add(g.center, tf.mul(tf.sub(v, g.center), g.scale));

/** Mean KL(N(μ, σ²) ‖ N(0, I)) per sample. */
export const klDivergence = (mu: tf.Tensor2D, logVar: tf.Tensor2D): tf.Scalar =>
  tf.mean(tf.sum(tf.mul(0.5, tf.sub(tf.add(tf.square(mu), tf.exp(logVar)), tf.add(logVar, 1))), 1));

/**
 * Images [B, 64, 64, 3] in [-1, 1] from noise z [B, zDim], sentence vectors [B, textDim]
 * and CA noise eps [B, condDim] (zeros give the mean condition, as at inference), with μ
 * under `guidance` where given (drawing only).
 */
export function generate(
  p: Params,
  cfg: ModelConfig,
  z: tf.Tensor2D,
  text: tf.Tensor2D,
  eps: tf.Tensor2D,
  ctx: Context,
  guidance?: Guidance,
): { images: tf.Tensor4D; kl: tf.Scalar } {
  const { mu, logVar } = conditioning(p, text);
  const c = tf.add(guide(mu, guidance), tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps)) as tf.Tensor2D;
  const ch = cfg.gChannels;
  const top = cfg.gTop ?? 0;
  const B = z.shape[0];
  let h: tf.Tensor4D = tf.matMul(tf.concat([z, c], 1), p["fc.w"] as tf.Tensor2D)
    .reshape([B, 4, 4, ch[0]]);
  h = conditionalBatchNormRelu(h, p, "bn0", c, ctx);
  for (let i = 0; i < ch.length; i++) {
    const w = p[`up${i}.w`] as tf.Tensor4D;
    h = cfg.upsample === "nearest" ? conv2d(upsampleNearest(h), w, 1) : conv2dTranspose(h, w, 2);
    if (i + 1 < ch.length || top > 0) {
      h = conditionalBatchNormRelu(h, p, `bn${i + 1}`, c, ctx);
    }
  }
  // [B, 64, 64, gTop] → [B, 64, 64, 3] where G has a top conv.
  if (top > 0) h = conv2d(h, p["top.w"] as tf.Tensor4D, 1);
  const colour = tf.matMul(c, p["out.cond"] as tf.Tensor2D).reshape([B, 1, 1, 3]);
  h = tf.tanh(tf.add(tf.add(h, p["out.b"]), colour)) as tf.Tensor4D;
  return { images: h, kl: klDivergence(mu, logVar) };
}
