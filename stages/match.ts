/**
 * match: the image side of the contrastive (CLIP-style) text–image model. A small CNN
 * (the evaluator's shape, with its own weights and no class head) and a projection to
 * φ's width: an image's vector should be nearest its own caption's sentence vector among
 * the batch's. It learns only in the text pre-training, from (image, caption) pairs and
 * no class labels. After that, frozen, it can score G's images against their captions
 * (`contrastiveWeight`): the generator loss then asks each fake to be recognisable as
 * its own caption's image, as XMC-GAN's and LAFITE's contrastive losses do.
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
import { glorotInit, newContext, type Params, upsampleNearest, variable } from "./layers.ts";

/**
 * A fresh matcher for sentence vectors of width `textDim`: the CNN's conv and batch-norm
 * weights, and `proj` [192, textDim]. `seed` fixes every weight.
 */
export function initMatcher(textDim: number, seed: number): Params {
  const { "fc.w": fcW, "fc.b": fcB, ...cnn } = initClassifier(1, seed + 7);
  const featureDim = fcW.shape[0];
  tf.dispose([fcW, fcB]);
  const prefix = cnn["conv0.w"].name.split("/")[0];
  return {
    ...cnn,
    proj: variable(`${prefix}/proj`, glorotInit([featureDim, textDim], seed + 8)),
  };
}

/**
 * Image vectors [B, textDim] for images [B, 64, 64, 3] in [-1, 1]. Batch norm always
 * uses the batch's own statistics, as in the pre-training (which keeps no running ones).
 */
export function matchFeatures(m: Params, images: tf.Tensor4D): tf.Tensor2D {
  const ctx = newContext(true);
  const features = classifierFeatures(m, halve(images), ctx, undefined, 1);
  tf.dispose(ctx.updates.map(([, t]) => t));
  return tf.matMul(features, m.proj) as tf.Tensor2D;
}

/**
 * 2×2 average pooling (to the CNN's input size) whose gradient is nearest ×2 up-sampling
 * of dy / 4, which the native backend runs itself: tfjs's AvgPoolGrad would fall back to
 * cpu code (7% of a step), and a reshape-and-mean forward would too.
 */
export const halve = (x: tf.Tensor4D): tf.Tensor4D =>
  tf.customGrad((input, save) => {
    (save as tf.GradSaveFunc)([]);
    return {
      value: tf.avgPool(input as tf.Tensor4D, 2, 2, "valid"),
      gradFunc: (dy) => upsampleNearest(tf.mul(dy, 0.25) as tf.Tensor4D),
    };
  })(x) as tf.Tensor4D;
