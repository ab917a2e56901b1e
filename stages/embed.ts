/**
 * embed: the text encoder φ(t). Word embeddings → bidirectional GRU → masked mean over
 * the words → sentence vector of 2·hiddenDim, scaled to norm √(2·hiddenDim). It learns from the discriminator's
 * matching-aware loss (and, optionally, a contrastive image–text pre-training); it never
 * sees class labels.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { encodeText, initTextEncoder } from "./embed.ts";
 * import { modelConfig } from "./config.ts";
 * const cfg = modelConfig("small", 100);
 * const enc = initTextEncoder(cfg, 1);
 * const e = encodeText(enc, tf.zeros([2, 20], "int32"), 0); // [2, 128]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { glorotInit, named, type Params, type Prefix, variable } from "./layers.ts";
import type { ModelConfig } from "./config.ts";

export const sentenceDim = (cfg: ModelConfig) => 2 * cfg.hiddenDim;

/** A fresh φ; `seed` fixes every weight, `pre` names the variables (see `Prefix`). */
export function initTextEncoder(cfg: ModelConfig, seed: number, pre?: Prefix): Params {
  const H = cfg.hiddenDim;
  const p: Params = {
    words: variable(
      named(pre, `words`),
      tf.randomNormal([cfg.vocabSize, cfg.wordDim], 0, 0.1, "float32", seed),
    ),
  };
  for (const [i, dir] of ["fwd", "bwd"].entries()) {
    p[`${dir}.wx`] = variable(
      named(pre, `${dir}.wx`),
      glorotInit([cfg.wordDim, 3 * H], seed + 10 + i),
    );
    p[`${dir}.wh`] = variable(named(pre, `${dir}.wh`), glorotInit([H, 3 * H], seed + 20 + i));
    p[`${dir}.b`] = variable(named(pre, `${dir}.b`), tf.zeros([3 * H]));
  }
  return p;
}

/**
 * Embedding lookup: rows `flatIds` of `table`. Its gradient is tfjs's (UnsortedSegmentSum),
 * which the wasm backend, lacking one, registers as a JS scatter-add
 * (pipeline/backends/fast_routes.ts).
 */
export const embedLookup = (table: tf.Tensor2D, flatIds: tf.Tensor1D): tf.Tensor2D =>
  tf.gather(table, flatIds);

/** One direction of a GRU over [B, T, 3H] pre-projected inputs, masked by [B, T, 1]. */
function gru(
  xProj: tf.Tensor3D,
  mask: tf.Tensor3D,
  wh: tf.Tensor2D,
  reverse: boolean,
): tf.Tensor3D {
  const [B, T, H3] = xProj.shape;
  const H = H3 / 3;
  let h = tf.zeros([B, H]) as tf.Tensor2D;
  const steps = tf.unstack(xProj, 1) as tf.Tensor2D[];
  const masks = tf.unstack(mask, 1) as tf.Tensor2D[];
  const out: tf.Tensor2D[] = new Array(T);
  for (let k = 0; k < T; k++) {
    const t = reverse ? T - 1 - k : k;
    const [xz, xr, xn] = tf.split(steps[t], 3, 1);
    const [hz, hr, hn] = tf.split(tf.matMul(h, wh), 3, 1);
    const z = tf.sigmoid(tf.add(xz, hz));
    const r = tf.sigmoid(tf.add(xr, hr));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    const next = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
    // Padding leaves the state as it was, so <PAD> never reaches the sentence vector.
    h = tf.add(tf.mul(masks[t], next), tf.mul(tf.sub(1, masks[t]), h)) as tf.Tensor2D;
    out[t] = h;
  }
  return tf.stack(out, 1) as tf.Tensor3D;
}

/** Token ids [B, T] → sentence vectors [B, 2H]. */
export function encodeText(p: Params, ids: tf.Tensor2D, padId: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    const mask = tf.cast(tf.notEqual(ids, padId), "float32").reshape([B, T, 1]) as tf.Tensor3D;
    const x = embedLookup(p.words as tf.Tensor2D, ids.reshape([B * T]).toInt() as tf.Tensor1D); // [B·T, D]
    const states = ["fwd", "bwd"].map((dir) => {
      const proj = tf.add(tf.matMul(x, p[`${dir}.wx`] as tf.Tensor2D), p[`${dir}.b`]);
      return gru(
        proj.reshape([B, T, -1]) as tf.Tensor3D,
        mask,
        p[`${dir}.wh`] as tf.Tensor2D,
        dir === "bwd",
      );
    });
    const h = tf.concat(states, 2); // [B, T, 2H]
    const count = tf.maximum(tf.sum(mask, 1), 1); // [B, 1]
    const pooled = tf.div(tf.sum(tf.mul(h, mask), 1), count) as tf.Tensor2D;
    // Unit scale per dimension (‖e‖ = √dim): a fresh encoder's vectors are tiny next to
    // z and the image features, and G and D would learn to ignore the text.
    const dim = pooled.shape[1];
    return tf.mul(
      tf.div(pooled, tf.add(tf.norm(pooled, 2, 1, true), 1e-6)),
      Math.sqrt(dim),
    ) as tf.Tensor2D;
  });
}

/**
 * Contrastive (CLIP-style) loss between image features and sentence vectors of the same
 * pairs, both [B, F]: symmetric cross-entropy over cosine similarities / temperature.
 * The pairing is the data's own (image, its caption), so no class label is involved.
 */
export function contrastiveLoss(
  imageFeat: tf.Tensor2D,
  textFeat: tf.Tensor2D,
  temperature = 0.1,
): tf.Scalar {
  return tf.tidy(() => {
    const a = tf.div(imageFeat, tf.add(tf.norm(imageFeat, 2, 1, true), 1e-8));
    const b = tf.div(textFeat, tf.add(tf.norm(textFeat, 2, 1, true), 1e-8));
    const logits = tf.div(tf.matMul(a, b, false, true), temperature);
    const labels = tf.oneHot(tf.range(0, imageFeat.shape[0], 1, "int32"), imageFeat.shape[0]);
    const l1 = tf.losses.softmaxCrossEntropy(labels, logits);
    const l2 = tf.losses.softmaxCrossEntropy(labels, logits.transpose());
    return tf.div(tf.add(l1, l2), 2) as tf.Scalar;
  });
}
