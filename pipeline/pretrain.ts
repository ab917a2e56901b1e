/**
 * Optional contrastive pre-training of the text encoder (CLIP/DAMSM style) before the
 * GAN starts: a small image encoder and φ(t) learn to pick each image's own caption out
 * of the batch. The pairing is the data's (image, one of its captions): no class labels.
 *
 * @example
 * ```ts
 * // inside the train pipeline, before the first GAN step:
 * // const losses = await pretrainTextEncoder(gan, images, bank, padId, { steps: 200, seed: 1 });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../stages/rng.ts";
import {
  type CaptionBank,
  cropAndFlip,
  type ImageStack,
  sampleCaptions,
} from "../stages/augment.ts";
import { contrastiveLoss, encodeText, sentenceDim } from "../stages/embed.ts";
import { initMatcher, matcherStatistics, matchFeatures } from "../stages/match.ts";
import { type Params, trainable } from "../stages/layers.ts";
import type { Gan } from "../stages/train_step.ts";
import { PRETRAIN_BATCH } from "../stages/recipe.ts";

export interface PretrainOptions {
  readonly steps: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed: number;
  readonly onStep?: (step: number, loss: number) => void;
  /** Checked before each step: true ends the pre-training there (a clock budget, Ctrl-C). */
  readonly shouldStop?: () => boolean;
}

/** Batches of 64 real images that set the kept matcher's batch-norm statistics. */
export const MATCHER_STANDING_BATCHES = 16;

/**
 * The pre-training's own data stream (crops, flips, caption draws, the batches of the
 * matcher's statistics): `seed ^ PRETRAIN_STREAM`, apart from the GAN's training streams.
 * It draws no images: image noise has its own policy (stages/noise.ts).
 */
export const PRETRAIN_STREAM = 0x5eed;

/**
 * Trains gan.text in place, and gan.match when the GAN has one (kept, frozen, for the
 * contrastive G loss and best-of-K inference; then its batch-norm statistics are set
 * from real images, see `matcherStatistics`), else a matcher thrown away after. Returns
 * the loss of every step.
 */
export async function pretrainTextEncoder(
  gan: Gan,
  images: ImageStack,
  bank: CaptionBank,
  padId: number,
  opts: PretrainOptions,
): Promise<number[]> {
  const rng = new Rng(opts.seed ^ PRETRAIN_STREAM);
  const B = Math.min(opts.batchSize ?? PRETRAIN_BATCH, bank.length);
  const image = gan.match ?? initMatcher(sentenceDim(gan.model), opts.seed);
  const optimizer = tf.train.adam(opts.lr ?? 1e-3);
  const vars = [...trainable(image), ...trainable(gan.text)];
  const losses: number[] = [];
  const { imageSize, seqLen } = gan.model;
  try {
    for (let step = 0; step < opts.steps && !opts.shouldStop?.(); step++) {
      const order = rng.permutation(bank.length).subarray(0, B);
      const x = tf.tensor4d(cropAndFlip(images, order, imageSize, rng), [
        B,
        imageSize,
        imageSize,
        3,
      ]);
      const ids = tf.tensor2d(sampleCaptions(bank, order, seqLen, rng), [B, seqLen], "int32");
      const loss = optimizer.minimize(
        () => contrastiveLoss(matchFeatures(image, x), encodeText(gan.text, ids, padId)),
        true,
        vars,
      )!;
      const value = (await loss.data())[0];
      tf.dispose([x, ids, loss]);
      losses.push(value);
      opts.onStep?.(step + 1, value);
    }
    if (gan.match) settleMatcher(gan.match, images, imageSize, rng);
  } finally {
    optimizer.dispose();
    if (!gan.match) tf.dispose(Object.values(image));
  }
  return losses;
}

/** The matcher's standing statistics over augmented real images of the training set. */
function settleMatcher(match: Params, images: ImageStack, size: number, rng: Rng) {
  const B = Math.min(64, images.count);
  const batches = Array.from({ length: MATCHER_STANDING_BATCHES }, () => {
    const order = rng.permutation(images.count).subarray(0, B);
    return tf.tensor4d(cropAndFlip(images, order, size, rng), [B, size, size, 3]);
  });
  matcherStatistics(match, batches);
  tf.dispose(batches);
}
