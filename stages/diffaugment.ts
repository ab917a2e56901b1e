/**
 * DiffAugment (Zhao et al. 2020), policy `color,translation,cutout`: the same
 * differentiable augmentation on real and fake images before the discriminator, so D
 * cannot memorise the few thousand training photos and G still gets its gradient
 * through the augmentation.
 *
 * The random parameters are drawn from a stream the caller owns ({@link drawDiffAugment},
 * plain arrays) and turned into tensors ({@link diffAugmentTensors}); {@link diffAugment}
 * is then a pure, differentiable function of (images, parameters):
 *
 * - colour: brightness + (r − ½); saturation ·2r around the pixel's channel mean;
 *   contrast ·(r + ½) around the image mean;
 * - translation: a shift of up to ⅛ of the size in each direction, zero-filled
 *   (a gather of pixels, so its gradient is a segment sum);
 * - cutout: a square of half the size, centred at random, set to 0.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "./rng.ts";
 * import { diffAugment, diffAugmentTensors, drawDiffAugment } from "./diffaugment.ts";
 * const a = diffAugmentTensors(drawDiffAugment(2, 64, new Rng(1)), 64);
 * const y = diffAugment(tf.zeros([2, 64, 64, 3]), a); // [2, 64, 64, 3]
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "./rng.ts";

/** The random draws of one augmentation of B images of size S, as plain numbers. */
export interface DiffAugmentDraw {
  /** Per image: brightness offset in [−½, ½), saturation factor in [0, 2), contrast in [½, 3/2). */
  readonly brightness: Float32Array;
  readonly saturation: Float32Array;
  readonly contrast: Float32Array;
  /** Per image: the shift (dy, dx), each in [−S/8, S/8]. */
  readonly shift: Int32Array;
  /** Per image: the cutout's top-left corner (y, x), may lie outside the image. */
  readonly cutout: Int32Array;
}

/** The draws' tensors: colour factors [B,1,1,1], gather indices, cutout mask [B,S,S,1]. */
export interface DiffAugmentParams {
  readonly brightness: tf.Tensor4D;
  readonly saturation: tf.Tensor4D;
  readonly contrast: tf.Tensor4D;
  /**
   * [B·S·S] int32 indices into the images' pixels (rows of C), B·S·S for a pixel shifted
   * in from outside: the zero row appended after them.
   */
  readonly gather: tf.Tensor1D;
  readonly mask: tf.Tensor4D;
  /**
   * [B, 1, 1, 1], 1 where the image is translated and 0 where it keeps its place
   * (adaptive augmentation, {@link gateDiffAugment}); absent: every image is.
   */
  readonly shiftGate?: tf.Tensor4D;
}

/**
 * Per image, one uniform draw in [0, 1) for each of the three operations: with adaptive
 * augmentation an operation applies to an image where its draw is below the run's
 * probability p ({@link gateDiffAugment}).
 */
export interface AugmentGates {
  readonly colour: tf.Tensor4D;
  readonly shift: tf.Tensor4D;
  readonly cutout: tf.Tensor4D;
}

/** Translation margin: ⅛ of the size, rounded (8 at 64×64). */
export const shiftMargin = (size: number): number => Math.floor(size * 0.125 + 0.5);

/** One augmentation's draws for B images of size S, in a fixed order from `rng`. */
export function drawDiffAugment(B: number, size: number, rng: Rng): DiffAugmentDraw {
  const m = shiftMargin(size);
  const cut = Math.floor(size * 0.5 + 0.5);
  const d = {
    brightness: new Float32Array(B),
    saturation: new Float32Array(B),
    contrast: new Float32Array(B),
    shift: new Int32Array(2 * B),
    cutout: new Int32Array(2 * B),
  };
  for (let b = 0; b < B; b++) {
    d.brightness[b] = rng.uniform() - 0.5;
    d.saturation[b] = 2 * rng.uniform();
    d.contrast[b] = rng.uniform() + 0.5;
    d.shift[2 * b] = rng.int(2 * m + 1) - m;
    d.shift[2 * b + 1] = rng.int(2 * m + 1) - m;
    d.cutout[2 * b] = rng.int(size + (1 - (cut % 2))) - Math.floor(cut / 2);
    d.cutout[2 * b + 1] = rng.int(size + (1 - (cut % 2))) - Math.floor(cut / 2);
  }
  return d;
}

/** The gather indices of the shifts and the cutout mask, as tensors. */
export function diffAugmentTensors(d: DiffAugmentDraw, size: number): DiffAugmentParams {
  const B = d.brightness.length;
  const cut = Math.floor(size * 0.5 + 0.5);
  const gather = new Int32Array(B * size * size);
  const mask = new Float32Array(B * size * size).fill(1);
  for (let b = 0; b < B; b++) {
    const [dy, dx, cy, cx] = [
      d.shift[2 * b],
      d.shift[2 * b + 1],
      d.cutout[2 * b],
      d.cutout[2 * b + 1],
    ];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const o = (b * size + y) * size + x;
        // Output (y, x) reads input (y + dy, x + dx), or zero from outside the image.
        const [sy, sx] = [y + dy, x + dx];
        const inside = sy >= 0 && sy < size && sx >= 0 && sx < size;
        gather[o] = inside ? (b * size + sy) * size + sx : B * size * size;
        if (y >= cy && y < cy + cut && x >= cx && x < cx + cut) mask[o] = 0;
      }
    }
  }
  const col = (a: Float32Array) => tf.tensor4d(a, [B, 1, 1, 1]);
  return {
    brightness: col(d.brightness),
    saturation: col(d.saturation),
    contrast: col(d.contrast),
    gather: tf.tensor1d(gather, "int32"),
    mask: tf.tensor4d(mask, [B, size, size, 1]),
  };
}

/** The three operations' draws of B images ({@link AugmentGates}), in a fixed order from `rng`. */
export function drawAugmentGates(B: number, rng: Rng): AugmentGates {
  const col = () =>
    tf.tensor4d(Float32Array.from({ length: B }, () => rng.uniform()), [B, 1, 1, 1]);
  return { colour: col(), shift: col(), cutout: col() };
}

/**
 * The augmentation `a` where each operation applies to an image with probability `p`
 * (a scalar tensor, so the step can move it without a read-back): the operations an image
 * skips get identity parameters (brightness 0, saturation and contrast 1, no cutout) or,
 * for the shift, a gate that keeps the image in place. At p = 1 it is `a`'s augmentation,
 * at p = 0 none: ADA's (Karras et al. 2020) schedule on DiffAugment's operations.
 */
export function gateDiffAugment(
  a: DiffAugmentParams,
  u: AugmentGates,
  p: tf.Tensor,
): DiffAugmentParams {
  return tf.tidy(() => {
    // step(p − u) is 1 where u < p (the operation applies), else 0.
    const on = (draw: tf.Tensor4D) => tf.step(tf.sub(p, draw)) as tf.Tensor4D;
    const colour = on(u.colour);
    const cutout = on(u.cutout);
    // 1 + g·(f − 1): the factor f where applied, 1 where not.
    const towardOne = (f: tf.Tensor4D) => tf.add(1, tf.mul(colour, tf.sub(f, 1))) as tf.Tensor4D;
    return {
      brightness: tf.mul(a.brightness, colour) as tf.Tensor4D,
      saturation: towardOne(a.saturation),
      contrast: towardOne(a.contrast),
      gather: a.gather.clone(),
      mask: tf.sub(1, tf.mul(cutout, tf.sub(1, a.mask))) as tf.Tensor4D,
      shiftGate: on(u.shift),
    };
  });
}

/** Frees a {@link DiffAugmentParams}. */
export const disposeDiffAugment = (a: DiffAugmentParams): void => tf.dispose(Object.values(a));

/** Brightness, saturation and contrast, per image (DiffAugment's `color`). */
export function augmentColour(x: tf.Tensor4D, a: DiffAugmentParams): tf.Tensor4D {
  const bright = tf.add(x, a.brightness);
  const mean = tf.mean(bright, 3, true);
  const sat = tf.add(tf.mul(tf.sub(bright, mean), a.saturation), mean);
  const mean2 = tf.mean(sat, [1, 2, 3], true);
  return tf.add(tf.mul(tf.sub(sat, mean2), a.contrast), mean2) as tf.Tensor4D;
}

/** The shift (zero-filled) and the cutout. */
export function augmentTranslateCutout(x: tf.Tensor4D, a: DiffAugmentParams): tf.Tensor4D {
  const [B, S, , C] = x.shape;
  // A zero row after the pixels stands for everything outside the image (no PadV2, which
  // the native backend runs on tfjs's cpu code).
  const pixels = tf.concat([x.reshape([B * S * S, C]), tf.zeros([1, C])], 0);
  const moved = tf.gather(pixels, a.gather).reshape([B, S, S, C]);
  // Gated: x + g·(moved − x), the shifted image where g = 1 and x itself where g = 0.
  const placed = a.shiftGate ? tf.add(x, tf.mul(a.shiftGate, tf.sub(moved, x))) : moved;
  return tf.mul(placed, a.mask) as tf.Tensor4D;
}

/** colour → translation → cutout, differentiable in x. */
export const diffAugment = (x: tf.Tensor4D, a: DiffAugmentParams): tf.Tensor4D =>
  augmentTranslateCutout(augmentColour(x, a), a);
