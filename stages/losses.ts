/**
 * GAN losses over discriminator logits, for the matching-aware D of GAN-INT-CLS:
 * real = D(real, right text), fake = D(G(z, right), right text), wrong = D(real, wrong).
 *
 * - bce (GAN-CLS, the default): D: BCE(real, 1) + ½[BCE(fake, 0) + BCE(wrong, 0)];
 *   G: BCE(fake, 1) (non-saturating).
 * - hinge: D: relu(1 − real) + ½[relu(1 + fake) + relu(1 + wrong)]; G: −fake.
 * - wgan-gp: D: −real + ½(fake + wrong) + λ·GP; G: −fake. The gradient penalty is
 *   computed by the caller (it needs D) and passed in.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { discriminatorLoss } from "./losses.ts";
 * discriminatorLoss("bce", tf.tensor1d([9]), tf.tensor1d([-9]), tf.tensor1d([-9])); // ≈ 0
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { LossKind } from "./config.ts";

/** Mean binary cross-entropy of logits against a constant target (stable form). */
export const bceWithLogits = (logits: tf.Tensor, target: number): tf.Scalar =>
  tf.mean(
    tf.add(
      tf.sub(tf.relu(logits), tf.mul(logits, target)),
      tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
    ),
  );

/**
 * The discriminator's loss over its three logits (see the module comment). `realTarget`
 * is bce's target for (real, right text): below 1 it is one-sided label smoothing.
 */
export function discriminatorLoss(
  kind: LossKind,
  real: tf.Tensor1D,
  fake: tf.Tensor1D,
  wrong: tf.Tensor1D,
  penalty?: tf.Scalar,
  realTarget = 1,
): tf.Scalar {
  switch (kind) {
    case "bce":
      return tf.add(
        bceWithLogits(real, realTarget),
        tf.mul(0.5, tf.add(bceWithLogits(fake, 0), bceWithLogits(wrong, 0))),
      );
    case "hinge":
      return tf.add(
        tf.mean(tf.relu(tf.sub(1, real))),
        tf.mul(0.5, tf.add(tf.mean(tf.relu(tf.add(1, fake))), tf.mean(tf.relu(tf.add(1, wrong))))),
      );
    case "wgan-gp": {
      const w = tf.add(tf.neg(tf.mean(real)), tf.mul(0.5, tf.add(tf.mean(fake), tf.mean(wrong))));
      return penalty ? tf.add(w, penalty) : w as tf.Scalar;
    }
  }
}

/** The generator's loss: non-saturating BCE, or −mean(fake) for hinge and WGAN. */
export const generatorLoss = (kind: LossKind, fake: tf.Tensor1D): tf.Scalar =>
  kind === "bce" ? bceWithLogits(fake, 1) : tf.neg(tf.mean(fake));

/**
 * WGAN-GP penalty: mean over samples of (‖∇ₓ D(x̂)‖₂ − 1)² at x̂ = α·real + (1−α)·fake.
 * `critic` maps images to logits; `alpha` is [B, 1, 1, 1] uniform noise from the caller.
 */
export function gradientPenalty(
  critic: (x: tf.Tensor4D) => tf.Tensor1D,
  real: tf.Tensor4D,
  fake: tf.Tensor4D,
  alpha: tf.Tensor4D,
): tf.Scalar {
  const xHat = tf.add(tf.mul(alpha, real), tf.mul(tf.sub(1, alpha), fake)) as tf.Tensor4D;
  const g = tf.grad((x) => tf.sum(critic(x as tf.Tensor4D)))(xHat);
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(g), [1, 2, 3]), 1e-12));
  return tf.mean(tf.square(tf.sub(norm, 1)));
}

/**
 * DF-GAN's matching-aware zero-centred gradient penalty on (real image, right text):
 * k · mean over samples of ‖(∇ₓ D, ∇ₑ D)‖₂^p, the gradient taken with respect to both
 * the image and the sentence vector (DF-GAN: k = 2, p = 6). It smooths D around the
 * real, matching pairs, which is what lets the one-stage generator converge.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * // D(x, e) = Σx + Σe: gradient all ones, ‖·‖² = 4 + 2 = 6 per sample; k·6^(p/2)
 * matchingAwarePenalty((x, e) => tf.add(tf.sum(x, [1, 2, 3]), tf.sum(e, 1)),
 *   tf.zeros([1, 2, 2, 1]), tf.zeros([1, 2]), 2, 2); // 12
 * ```
 */
export function matchingAwarePenalty(
  critic: (x: tf.Tensor4D, e: tf.Tensor2D) => tf.Tensor1D,
  real: tf.Tensor4D,
  text: tf.Tensor2D,
  k: number,
  p: number,
): tf.Scalar {
  const [gx, ge] = tf.grads((x, e) => tf.sum(critic(x as tf.Tensor4D, e as tf.Tensor2D)))([
    real,
    text,
  ]);
  const squared = tf.add(tf.sum(tf.square(gx), [1, 2, 3]), tf.sum(tf.square(ge), 1));
  return tf.mul(k, tf.mean(tf.pow(squared, p / 2))) as tf.Scalar;
}
