/**
 * discriminate: the matching-aware D(x, φ(t)) of GAN-INT-CLS. It scores an image with a
 * sentence vector: high for (real, right text), low for (fake, right text) and for
 * (real, wrong text), so it learns both realism and text–image agreement.
 *
 * x → [conv 4×4 s2 → (BN) → leaky ReLU] × 4 → 4×4 map; text → dense → leaky ReLU, tiled
 * 4×4 and concatenated → conv 1×1 → (BN) → leaky ReLU → conv 4×4 valid → one logit.
 * With `size: "reed"` it is the bench model's discriminator. WGAN-GP takes it without
 * batch norm (the penalty is per sample); `spectral` (`--spectral-norm`) divides every
 * weight by its largest singular value (stages/spectral.ts) and has no batch norm either.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { discriminate, initDiscriminator } from "./discriminate.ts";
 * import { modelConfig } from "./config.ts";
 * import { newContext } from "./layers.ts";
 * const cfg = modelConfig("small", 100);
 * const d = initDiscriminator(cfg, 128, 1, true);
 * discriminate(d, cfg, tf.zeros([2, 64, 64, 3]), tf.zeros([2, 128]), newContext(true)); // [2]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "./config.ts";
import {
  batchNormAct,
  biasAct,
  type Context,
  conv2d,
  glorotInit,
  initBatchNorm,
  named,
  normalInit,
  type Params,
  type Prefix,
  variable,
} from "./layers.ts";
import { initSpectral, spectralWeight } from "./spectral.ts";

export function initDiscriminator(
  cfg: ModelConfig,
  textDim: number,
  seed: number,
  batchNormed: boolean,
  pre?: Prefix,
  spectral = false,
): Params {
  const ch = [3, ...cfg.dChannels];
  const p: Params = {};
  for (let i = 0; i < cfg.dChannels.length; i++) {
    p[`down${i}.w`] = variable(
      named(pre, `down${i}.w`),
      normalInit([4, 4, ch[i], ch[i + 1]], seed + i),
    );
    if (i === 0 || !batchNormed) {
      p[`down${i}.b`] = variable(named(pre, `down${i}.b`), tf.zeros([ch[i + 1]]));
    } else Object.assign(p, initBatchNorm(pre, `bn${i}`, ch[i + 1], false));
  }
  const last = ch[ch.length - 1];
  p["text.w"] = variable(named(pre, `text.w`), glorotInit([textDim, cfg.dTextDim], seed + 10));
  p["text.b"] = variable(named(pre, `text.b`), tf.zeros([cfg.dTextDim]));
  p["fuse.w"] = variable(
    named(pre, `fuse.w`),
    normalInit([1, 1, last + cfg.dTextDim, last], seed + 11),
  );
  if (batchNormed) Object.assign(p, initBatchNorm(pre, "bnFuse", last, false));
  else p["fuse.b"] = variable(named(pre, `fuse.b`), tf.zeros([last]));
  p["out.w"] = variable(named(pre, `out.w`), normalInit([4, 4, last, 1], seed + 12));
  p["out.b"] = variable(named(pre, `out.b`), tf.zeros([1]));
  if (!spectral) return p;
  return { ...p, ...initSpectral(p, weightKeys(p), seed + 20, pre) };
}

/** D's weights (the keys that `--spectral-norm` normalises). */
const weightKeys = (p: Params): string[] => Object.keys(p).filter((k) => k.endsWith(".w"));

/** Bias or batch norm, whichever the layer has, then leaky ReLU 0.2. */
function normAct(h: tf.Tensor4D, p: Params, bias: string, bn: string, ctx: Context): tf.Tensor4D {
  if (!p[bias]) return batchNormAct(h, p, bn, ctx, "leakyRelu");
  return biasAct(h, p[bias], "leakyRelu") as tf.Tensor4D;
}

/**
 * D's image trunk: images [B, 64, 64, 3] → features [B, 4, 4, dChannels.at(-1)], which
 * do not depend on the text. The D step scores the real images with both captions from
 * one trunk pass (`judge` twice): batch norm sees the same batch either way.
 */
export function discriminateFeatures(
  p: Params,
  cfg: ModelConfig,
  images: tf.Tensor4D,
  ctx: Context,
): tf.Tensor4D {
  let h = images;
  for (let i = 0; i < cfg.dChannels.length; i++) {
    const w = spectralWeight(p, `down${i}.w`) as tf.Tensor4D;
    h = normAct(conv2d(h, w, 2), p, `down${i}.b`, `bn${i}`, ctx);
  }
  return h;
}

/** D's text head: trunk features [B, 4, 4, C] and sentence vectors [B, textDim] → logits [B]. */
export function judge(
  p: Params,
  cfg: ModelConfig,
  features: tf.Tensor4D,
  text: tf.Tensor2D,
  ctx: Context,
): tf.Tensor1D {
  const [B, s] = features.shape;
  const w = (key: string) => spectralWeight(p, key);
  const t = biasAct(tf.matMul(text, w("text.w") as tf.Tensor2D), p["text.b"], "leakyRelu");
  const tiled = tf.tile(t.reshape([B, 1, 1, cfg.dTextDim]), [1, s, s, 1]);
  const h = tf.concat([features, tiled], 3) as tf.Tensor4D;
  const fused = normAct(conv2d(h, w("fuse.w") as tf.Tensor4D, 1), p, "fuse.b", "bnFuse", ctx);
  const out = tf.add(conv2d(fused, w("out.w") as tf.Tensor4D, 1, "valid"), p["out.b"]);
  return out.reshape([B]) as tf.Tensor1D;
}

/** Logits [B] for images [B, 64, 64, 3] paired with sentence vectors [B, textDim]. */
export const discriminate = (
  p: Params,
  cfg: ModelConfig,
  images: tf.Tensor4D,
  text: tf.Tensor2D,
  ctx: Context,
): tf.Tensor1D => judge(p, cfg, discriminateFeatures(p, cfg, images, ctx), text, ctx);
