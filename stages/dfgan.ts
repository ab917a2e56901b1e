/**
 * DF-GAN (Tao et al. 2022), sized by the model config: a one-stage generator of residual
 * up-blocks with deep text–image fusion, and a residual discriminator with a one-way
 * (text-conditioned) output.
 *
 * G: z → dense → 4×4×C₀; per block: nearest ×2 up-sampling → [fuse → conv 3×3 → fuse →
 * conv 3×3] + shortcut (1×1 conv when the width changes); fuse = two stacked affine
 * transforms of the condition c = [z, φ(t)], each γ(c)·h + β(c) with γ, β small MLPs
 * (γ starts at 1, β at 0), each followed by leaky ReLU; blocks up to 32×32, then leaky
 * ReLU → nearest ×2 → conv 3×3 → tanh (full-resolution blocks cost too much on 2 cores). No transposed convolutions (no checkerboard), no batch norm, no CA noise.
 *
 * D: conv 4×4 s2 (64 → 32), then residual down-blocks (conv 4×4 s2 → lReLU → conv 3×3 →
 * lReLU, scaled by a learned γ that starts at 0, plus a 2×2 stride-2 conv shortcut: a
 * learned average pooling) to 4×4 (widths dChannels); then the one-way output:
 * concat(h, tiled φ(t)) → conv 3×3 → lReLU → conv 4×4 valid → one logit. Every activation is the twice-
 * differentiable leaky ReLU of layers.ts, for the matching-aware gradient penalty.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { dfDiscriminate, dfGenerate, initDfDiscriminator, initDfGenerator } from "./dfgan.ts";
 * import { modelConfig } from "./config.ts";
 * const cfg = modelConfig("small", 100, "dfgan");
 * const g = initDfGenerator(cfg, 128, 1);
 * const x = dfGenerate(g, cfg, tf.randomNormal([2, cfg.zDim]), tf.zeros([2, 128])); // [2, 64, 64, 3]
 * const d = initDfDiscriminator(cfg, 128, 2);
 * dfDiscriminate(d, cfg, x, tf.zeros([2, 128])); // [2]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "./config.ts";
import {
  conv2d,
  leakyRelu,
  named,
  type Params,
  type Prefix,
  upsampleNearest,
  variable,
} from "./layers.ts";

/** Glorot-uniform for conv filters [kh, kw, in, out] and dense [in, out]. */
export const glorotConv = (shape: number[], seed: number): tf.Tensor => {
  const field = shape.length === 4 ? shape[0] * shape[1] : 1;
  const fanIn = field * shape[shape.length - 2];
  const fanOut = field * shape[shape.length - 1];
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.randomUniform(shape, -limit, limit, "float32", seed);
};

/** Parameters of one affine transform over `channels`, conditioned on `condDim` inputs. */
function initAffine(pre: Prefix, name: string, condDim: number, channels: number, seed: number) {
  const v = (k: string, t: tf.Tensor) => [`${name}.${k}`, variable(named(pre, `${name}.${k}`), t)];
  return Object.fromEntries([
    v("g1.w", glorotConv([condDim, channels], seed)),
    v("g1.b", tf.zeros([channels])),
    v("g2.w", tf.zeros([channels, channels])),
    v("g2.b", tf.ones([channels])),
    v("b1.w", glorotConv([condDim, channels], seed + 1)),
    v("b1.b", tf.zeros([channels])),
    v("b2.w", tf.zeros([channels, channels])),
    v("b2.b", tf.zeros([channels])),
  ]) as Params;
}

const dense = (x: tf.Tensor2D, p: Params, name: string) =>
  tf.add(tf.matMul(x, p[`${name}.w`] as tf.Tensor2D), p[`${name}.b`]) as tf.Tensor2D;

/**
 * DF-GAN's affine transform: γ(c)·h + β(c), with γ = fc(relu(fc(c))), β likewise.
 * At initialisation γ = 1 and β = 0: the identity.
 */
export function affine(h: tf.Tensor4D, p: Params, name: string, c: tf.Tensor2D): tf.Tensor4D {
  const [B, , , C] = h.shape;
  const gamma = dense(tf.relu(dense(c, p, `${name}.g1`)) as tf.Tensor2D, p, `${name}.g2`);
  const beta = dense(tf.relu(dense(c, p, `${name}.b1`)) as tf.Tensor2D, p, `${name}.b2`);
  return tf.add(tf.mul(h, gamma.reshape([B, 1, 1, C])), beta.reshape([B, 1, 1, C])) as tf.Tensor4D;
}

/** Deep fusion: affine → lReLU → affine → lReLU. */
const fuse = (h: tf.Tensor4D, p: Params, name: string, c: tf.Tensor2D) =>
  leakyRelu(
    affine(leakyRelu(affine(h, p, `${name}.a`, c)) as tf.Tensor4D, p, `${name}.b`, c),
  ) as tf.Tensor4D;

const conv = (
  h: tf.Tensor4D,
  p: Params,
  name: string,
  stride = 1,
  pad: "same" | "valid" = "same",
) => tf.add(conv2d(h, p[`${name}.w`] as tf.Tensor4D, stride, pad), p[`${name}.b`]) as tf.Tensor4D;

function initConvB(pre: Prefix, name: string, k: number, cin: number, cout: number, seed: number) {
  return {
    [`${name}.w`]: variable(named(pre, `${name}.w`), glorotConv([k, k, cin, cout], seed)),
    [`${name}.b`]: variable(named(pre, `${name}.b`), tf.zeros([cout])),
  } as Params;
}

/** Block widths of G: gChannels (4×4 up to 32×32; the last ×2 goes straight to RGB). */
const gWidths = (cfg: ModelConfig) => cfg.gChannels;

/** DF-GAN generator parameters for `cfg` and sentence vectors of `textDim`. */
export function initDfGenerator(
  cfg: ModelConfig,
  textDim: number,
  seed: number,
  pre?: Prefix,
): Params {
  const w = gWidths(cfg);
  const condDim = cfg.zDim + textDim;
  const p: Params = {
    "fc.w": variable(named(pre, `fc.w`), glorotConv([cfg.zDim, 16 * w[0]], seed)),
    "fc.b": variable(named(pre, `fc.b`), tf.zeros([16 * w[0]])),
  };
  for (let i = 0; i + 1 < w.length; i++) {
    const [cin, cout, s] = [w[i], w[i + 1], seed + 10 * (i + 1)];
    Object.assign(
      p,
      initAffine(pre, `blk${i}.f1.a`, condDim, cin, s),
      initAffine(pre, `blk${i}.f1.b`, condDim, cin, s + 2),
      initConvB(pre, `blk${i}.c1`, 3, cin, cout, s + 4),
      initAffine(pre, `blk${i}.f2.a`, condDim, cout, s + 5),
      initAffine(pre, `blk${i}.f2.b`, condDim, cout, s + 7),
      initConvB(pre, `blk${i}.c2`, 3, cout, cout, s + 9),
      cin === cout ? {} : initConvB(pre, `blk${i}.sc`, 1, cin, cout, s + 3),
    );
  }
  Object.assign(p, initConvB(pre, "out", 3, w[w.length - 1], 3, seed + 1));
  return p;
}

/** Images [B, 64, 64, 3] in [-1, 1] from noise z [B, zDim] and sentence vectors. */
export function dfGenerate(
  p: Params,
  cfg: ModelConfig,
  z: tf.Tensor2D,
  text: tf.Tensor2D,
): tf.Tensor4D {
  const w = gWidths(cfg);
  const B = z.shape[0];
  const c = tf.concat([z, text], 1) as tf.Tensor2D;
  let h = dense(z, p, "fc").reshape([B, 4, 4, w[0]]) as tf.Tensor4D;
  for (let i = 0; i + 1 < w.length; i++) {
    h = upsampleNearest(h);
    const n = `blk${i}`;
    const mid = conv(fuse(h, p, `${n}.f1`, c), p, `${n}.c1`);
    const res = conv(fuse(mid, p, `${n}.f2`, c), p, `${n}.c2`);
    h = tf.add(p[`${n}.sc.w`] ? conv(h, p, `${n}.sc`) : h, res) as tf.Tensor4D;
  }
  // The last ×2 (32 → 64) is nearest up-sampling and one 3×3 conv to RGB: the full-
  // resolution blocks cost more than the rest of G on 2 cores.
  return tf.tanh(conv(upsampleNearest(tf.leakyRelu(h, 0.2)), p, "out")) as tf.Tensor4D;
}

/** DF-GAN discriminator parameters: widths dChannels from 32×32 down to 4×4. */
export function initDfDiscriminator(
  cfg: ModelConfig,
  textDim: number,
  seed: number,
  pre?: Prefix,
): Params {
  const w = cfg.dChannels;
  const p: Params = initConvB(pre, "img", 4, 3, w[0], seed);
  for (let i = 0; i + 1 < w.length; i++) {
    const [cin, cout, s] = [w[i], w[i + 1], seed + 10 * (i + 1)];
    Object.assign(
      p,
      initConvB(pre, `down${i}.r1`, 4, cin, cout, s),
      initConvB(pre, `down${i}.r2`, 3, cout, cout, s + 1),
      initConvB(pre, `down${i}.sc`, 2, cin, cout, s + 2),
    );
    p[`down${i}.gamma`] = variable(named(pre, `down${i}.gamma`), tf.zeros([1]));
  }
  const last = w[w.length - 1];
  Object.assign(
    p,
    initConvB(pre, "joint", 3, last + textDim, last, seed + 100),
    initConvB(pre, "logit", 4, last, 1, seed + 101),
  );
  return p;
}

/** DF-GAN D's image trunk: images [B, 64, 64, 3] → features [B, 4, 4, dChannels.at(-1)]. */
export function dfDiscriminateFeatures(
  p: Params,
  cfg: ModelConfig,
  images: tf.Tensor4D,
): tf.Tensor4D {
  let h = leakyRelu(conv(images, p, "img", 2)) as tf.Tensor4D;
  for (let i = 0; i + 1 < cfg.dChannels.length; i++) {
    const n = `down${i}`;
    const r1 = leakyRelu(conv(h, p, `${n}.r1`, 2)) as tf.Tensor4D;
    const res = leakyRelu(conv(r1, p, `${n}.r2`));
    h = tf.add(conv(h, p, `${n}.sc`, 2), tf.mul(p[`${n}.gamma`], res)) as tf.Tensor4D;
  }
  return h;
}

/** DF-GAN D's text head: trunk features and sentence vectors [B, textDim] → logits [B]. */
export function dfJudge(p: Params, features: tf.Tensor4D, text: tf.Tensor2D): tf.Tensor1D {
  const [B, s] = features.shape;
  const tiled = tf.tile(text.reshape([B, 1, 1, text.shape[1]]), [1, s, s, 1]);
  const joint = leakyRelu(conv(tf.concat([features, tiled], 3) as tf.Tensor4D, p, "joint"));
  return conv(joint as tf.Tensor4D, p, "logit", 1, "valid").reshape([B]) as tf.Tensor1D;
}

/** Logits [B] for images [B, 64, 64, 3] paired with sentence vectors [B, textDim]. */
export const dfDiscriminate = (
  p: Params,
  cfg: ModelConfig,
  images: tf.Tensor4D,
  text: tf.Tensor2D,
): tf.Tensor1D => dfJudge(p, dfDiscriminateFeatures(p, cfg, images), text);
