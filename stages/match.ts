/**
 * match: the image side of the contrastive (CLIP-style) text–image model. A small CNN
 * (the evaluator's shape, with its own weights and no class head) and a projection to
 * φ's width: an image's vector should be nearest its own caption's sentence vector among
 * the batch's. It learns only in the text pre-training, from (image, caption) pairs and
 * no class labels. After that, frozen, it can score G's images against their captions
 * (`contrastiveWeight`): the generator loss then asks each fake to be recognisable as
 * its own caption's image, as XMC-GAN's and LAFITE's contrastive losses do. At inference
 * it picks, of several noises per caption, the image most surely its caption's rather than
 * another training caption's ({@link pickBest}, as DALL·E re-ranks its samples with CLIP).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initMatcher, matchFeatures } from "./match.ts";
 * const m = initMatcher(128, 1);
 * const v = matchFeatures(m, tf.zeros([2, 64, 64, 3])); // [2, 128]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { classifierFeatures, initClassifier } from "./classifier.ts";
import {
  glorotInit,
  named,
  newContext,
  type Params,
  type Prefix,
  standingStatistics,
  upsampleNearest,
  variable,
} from "./layers.ts";

/**
 * A fresh matcher for sentence vectors of width `textDim`: the CNN's conv and batch-norm
 * weights, and `proj` [192, textDim]. `seed` fixes every weight; `prefix` names the
 * variables (see `Prefix`).
 */
export function initMatcher(textDim: number, seed: number, prefix?: Prefix): Params {
  const { "fc.w": fcW, "fc.b": fcB, ...cnn } = initClassifier(1, seed + 7, undefined, prefix);
  const featureDim = fcW.shape[0];
  tf.dispose([fcW, fcB]);
  return {
    ...cnn,
    proj: variable(named(prefix, "proj"), glorotInit([featureDim, textDim], seed + 8)),
  };
}

/**
 * Image vectors [B, textDim] for images [B, 64, 64, 3] in [-1, 1]. In training mode (the
 * pre-training and the contrastive G loss) batch norm uses the batch's own statistics;
 * in eval mode, the running ones that {@link matcherStatistics} sets.
 */
export function matchFeatures(m: Params, images: tf.Tensor4D, training = true): tf.Tensor2D {
  const ctx = newContext(training);
  const features = classifierFeatures(m, halve(images), ctx, undefined, 1);
  tf.dispose(ctx.updates.map(([, t]) => t));
  return tf.matMul(features, m.proj) as tf.Tensor2D;
}

/**
 * Gives the matcher's batch norm running statistics: the average batch moments over
 * `batches` of real images (standing statistics), so that in eval mode an image's vector
 * no longer depends on the rest of its batch. Returns how many variables were set.
 */
export const matcherStatistics = (m: Params, batches: readonly tf.Tensor4D[]): number =>
  standingStatistics(
    batches.map((x) => (ctx) => classifierFeatures(m, halve(x), ctx, undefined, 1)),
  );

/** Rows scaled to length 1. */
const unit = (v: tf.Tensor2D): tf.Tensor2D => tf.div(v, tf.add(tf.norm(v, 2, 1, true), 1e-8));

/** Cosine similarity [B] of each image (eval mode) with its sentence vector [B, textDim]. */
export function matchSimilarity(
  m: Params,
  images: tf.Tensor4D,
  sentences: tf.Tensor2D,
): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(unit(matchFeatures(m, images, false)), unit(sentences)), 1));
}

/** Where the matcher keeps its rival captions (`match/rivals` in checkpoints). */
export const RIVALS = "rivals";

/** Training captions a run keeps as the matcher's rivals ({@link setRivals}). */
export const RIVAL_COUNT = 1024;

/** The temperature of {@link pickScores}' softmax over the own caption and the rivals. */
export const PICK_TEMPERATURE = 0.1;

/**
 * The matcher's rival captions [N, textDim] (unit sentence vectors of training captions),
 * or undefined where the checkpoint was written before petal kept them.
 */
export const rivals = (m: Params): tf.Variable | undefined => m[RIVALS];

/**
 * Keeps `sentences` [N, textDim] (sentence vectors of training captions), scaled to
 * length 1, as the matcher's rivals: an untrainable variable, made the first time and
 * replaced after that.
 */
export function setRivals(m: Params, sentences: tf.Tensor2D): void {
  const value = tf.tidy(() => unit(sentences));
  const known = rivals(m);
  if (known && known.shape.join() === value.shape.join()) {
    known.assign(value);
    value.dispose();
    return;
  }
  known?.dispose();
  m[RIVALS] = variable(undefined, value, false);
}

/**
 * How well each image [N, H, W, 3] matches its own sentence vector [N, textDim], as
 * {@link pickBest} ranks candidates. With rivals: the log-probability of the own caption
 * among itself and the rivals (softmax of cosines at {@link PICK_TEMPERATURE}), which
 * does not reward an image for matching every caption; without (older checkpoints): the
 * cosine ({@link matchSimilarity}).
 */
export function pickScores(m: Params, images: tf.Tensor4D, sentences: tf.Tensor2D): tf.Tensor1D {
  const others = rivals(m);
  if (!others) return matchSimilarity(m, images, sentences);
  return tf.tidy(() => {
    const f = unit(matchFeatures(m, images, false));
    const own = tf.sum(tf.mul(f, unit(sentences)), 1);
    const all = tf.concat([tf.matMul(f, others, false, true), tf.expandDims(own, 1)], 1);
    return tf.sub(tf.div(own, PICK_TEMPERATURE), tf.logSumExp(tf.div(all, PICK_TEMPERATURE), 1));
  });
}

/** A pixel is clipped when at least two of its channels are above this (250 of 255). */
export const CLIP_LEVEL = 0.96;

/**
 * The most of an image's pixels that may be clipped for the pick to prefer it: 10%, which
 * 3 of 819 training photos pass (their mean is 0.5%). Strong guidance saturates some
 * candidates into white or yellow blotches that the matcher still ranks first.
 */
export const MAX_CLIPPED = 0.1;

/**
 * The share of each image's pixels [N, H, W, 3] (values in [-1, 1]) that are clipped:
 * at least two channels above {@link CLIP_LEVEL}. [N]
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { clippedShare } from "./match.ts";
 * const img = tf.tensor4d([1, 1, -1, 0, 0, 0], [1, 1, 2, 3]); // one white-ish, one grey pixel
 * clippedShare(img).print(); // [0.5]
 * ```
 */
export const clippedShare = (images: tf.Tensor4D): tf.Tensor1D =>
  tf.tidy(() => {
    const high = tf.sum(tf.cast(tf.greater(images, CLIP_LEVEL), "float32"), 3);
    return tf.mean(tf.cast(tf.greaterEqual(high, 2), "float32"), [1, 2]);
  });

/**
 * Of K candidate images per caption, the one the matcher ranks first: `candidates`
 * [K·B, H, W, 3] holds every caption's k-th image in rows k·B … k·B + B − 1 (for B
 * sentences), and the result [B, H, W, 3] keeps, per caption, the candidate of highest
 * {@link pickScores} (the first on a tie) among those with at most {@link MAX_CLIPPED} of
 * their pixels clipped (among all of them where none is). Every candidate goes through the
 * matcher in one pass (eval mode: each image's vector is its own). One candidate (K = 1)
 * is returned as it is.
 */
export function pickBest(
  m: Params,
  candidates: tf.Tensor4D,
  sentences: tf.Tensor2D,
): tf.Tensor4D {
  const B = sentences.shape[0], K = candidates.shape[0] / B;
  if (!Number.isInteger(K) || K < 1) {
    throw new Error(`pickBest: ${candidates.shape[0]} candidates for ${B} sentences`);
  }
  if (K === 1) return candidates.clone();
  return tf.tidy(() => {
    const matched = pickScores(m, candidates, tf.tile(sentences, [K, 1]) as tf.Tensor2D);
    // A clipped candidate ranks below every other, and by its own score among its kind.
    const clipped = tf.cast(tf.greater(clippedShare(candidates), MAX_CLIPPED), "float32");
    const scores = tf.sub(matched, tf.mul(clipped, 1e3)).reshape([K, B]); // scores lie in ±30
    const best = tf.cast(tf.argMax(scores, 0), "int32"); // [B], candidate index
    const rows = tf.add(tf.mul(best, tf.scalar(B, "int32")), tf.range(0, B, 1, "int32"));
    return tf.gather(candidates, rows) as tf.Tensor4D;
  });
}

/**
 * 2×2 average pooling (to the CNN's input size) that the native backend runs itself: the
 * forward is a stride-2 convolution whose 2×2 kernel averages each channel (tfjs's
 * AvgPool fell back to cpu code, 3.6% of an inference), the gradient nearest ×2
 * up-sampling of dy / 4 (AvgPoolGrad fell back too, 7% of a training step).
 */
export const halve = (x: tf.Tensor4D): tf.Tensor4D =>
  tf.customGrad((input, save) => {
    (save as tf.GradSaveFunc)([]);
    const c = (input as tf.Tensor4D).shape[3];
    const average = tf.reshape(tf.mul(tf.eye(c), 0.25), [1, 1, c, c]);
    // [2, 2, C, C]: a quarter of each of the 2×2 pixels, of the channel itself.
    const kernel = tf.tile(average, [2, 2, 1, 1]) as tf.Tensor4D;
    return {
      value: tf.conv2d(input as tf.Tensor4D, kernel, 2, "valid"),
      gradFunc: (dy) => upsampleNearest(tf.mul(dy, 0.25) as tf.Tensor4D),
    };
  })(x) as tf.Tensor4D;
