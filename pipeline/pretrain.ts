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
import { classify, initClassifier } from "../stages/classifier.ts";
import { contrastiveLoss, encodeText, sentenceDim } from "../stages/embed.ts";
import { glorotInit, newContext, trainable, variable } from "../stages/layers.ts";
import type { Gan } from "../stages/train_step.ts";

export interface PretrainOptions {
  readonly steps: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed: number;
  readonly onStep?: (step: number, loss: number) => void;
}

/** Trains gan.text in place; returns the loss of every step. */
export async function pretrainTextEncoder(
  gan: Gan,
  images: ImageStack,
  bank: CaptionBank,
  padId: number,
  opts: PretrainOptions,
): Promise<number[]> {
  const rng = new Rng(opts.seed ^ 0x5eed);
  const B = Math.min(opts.batchSize ?? 32, bank.length);
  // The image side: the evaluator's CNN shape, its class head unused, projected to φ's width.
  const image = initClassifier(1, opts.seed + 7);
  const featureDim = image["fc.w"].shape[0];
  const project = variable(
    `pretrain${opts.seed}/proj`,
    glorotInit([featureDim, sentenceDim(gan.model)], opts.seed + 8),
  );
  const optimizer = tf.train.adam(opts.lr ?? 1e-3);
  const vars = [
    ...trainable(image).filter((v) => !v.name.includes("fc.")),
    project,
    ...trainable(gan.text),
  ];
  const losses: number[] = [];
  const { imageSize, seqLen } = gan.model;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const order = rng.permutation(bank.length).subarray(0, B);
      const x = tf.tensor4d(cropAndFlip(images, order, imageSize, rng), [
        B,
        imageSize,
        imageSize,
        3,
      ]);
      const ids = tf.tensor2d(sampleCaptions(bank, order, seqLen, rng), [B, seqLen], "int32");
      const ctx = newContext(true);
      const loss = optimizer.minimize(
        () => {
          const feat = tf.matMul(classify(image, x, ctx).features, project) as tf.Tensor2D;
          return contrastiveLoss(feat, encodeText(gan.text, ids, padId));
        },
        true,
        vars,
      )!;
      ctx.updates.forEach(([, t]) => t.dispose());
      const value = (await loss.data())[0];
      tf.dispose([x, ids, loss]);
      losses.push(value);
      opts.onStep?.(step + 1, value);
    }
  } finally {
    optimizer.dispose();
    tf.dispose([...Object.values(image), project]);
  }
  return losses;
}
