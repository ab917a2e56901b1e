/**
 * augment: what a training batch is made of, drawn from a random stream the caller owns.
 * Random crop from a slightly larger image and a horizontal flip; one caption sampled
 * per image per epoch; a mismatched caption from another image for the matching-aware
 * discriminator; the partner order for GAN-INT's interpolated embeddings.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { cropAndFlip } from "./augment.ts";
 * const stack = { count: 1, size: 72, bytes: new Uint8Array(72 * 72 * 3) };
 * const x = cropAndFlip(stack, [0], 64, new Rng(1)); // Float32Array of 64·64·3
 * ```
 */
import type { Rng } from "./rng.ts";

/** Decoded images of one size, back to back: `count` × size × size × 3 RGB bytes. */
export interface ImageStack {
  readonly count: number;
  readonly size: number;
  readonly bytes: Uint8Array;
}

/**
 * Images `indices` of `stack`, each cropped to out×out at a random offset and flipped
 * left–right with probability ½, as Float32 in [-1, 1], NHWC.
 */
export function cropAndFlip(
  stack: ImageStack,
  indices: ArrayLike<number>,
  out: number,
  rng: Rng,
  augment = true,
): Float32Array {
  const S = stack.size;
  const margin = S - out;
  const result = new Float32Array(indices.length * out * out * 3);
  for (let b = 0; b < indices.length; b++) {
    const ox = augment ? rng.int(margin + 1) : Math.floor(margin / 2);
    const oy = augment ? rng.int(margin + 1) : Math.floor(margin / 2);
    const flip = augment && rng.uniform() < 0.5;
    const base = indices[b] * S * S * 3;
    let o = b * out * out * 3;
    for (let y = 0; y < out; y++) {
      const row = base + ((y + oy) * S + ox) * 3;
      for (let x = 0; x < out; x++) {
        const src = row + (flip ? out - 1 - x : x) * 3;
        result[o++] = stack.bytes[src] / 127.5 - 1;
        result[o++] = stack.bytes[src + 1] / 127.5 - 1;
        result[o++] = stack.bytes[src + 2] / 127.5 - 1;
      }
    }
  }
  return result;
}

/** Token ids of every caption of every image: captions[i] is k_i × seqLen ids. */
export type CaptionBank = readonly Int32Array[];

/** One caption of each image in `indices`, picked at random: B × seqLen ids. */
export function sampleCaptions(
  bank: CaptionBank,
  indices: ArrayLike<number>,
  seqLen: number,
  rng: Rng,
): Int32Array {
  const out = new Int32Array(indices.length * seqLen);
  for (let b = 0; b < indices.length; b++) {
    const ids = bank[indices[b]];
    const k = rng.int(ids.length / seqLen);
    out.set(ids.subarray(k * seqLen, (k + 1) * seqLen), b * seqLen);
  }
  return out;
}

/**
 * A caption of some *other* image for each of `indices`: the mismatched text of the
 * matching-aware discriminator. Picked without class labels (task rule), so now and then
 * it describes the same kind of flower; with 102 classes that is rare.
 */
export function mismatchedCaptions(
  bank: CaptionBank,
  indices: ArrayLike<number>,
  seqLen: number,
  rng: Rng,
): Int32Array {
  const others = Array.from(indices, (i) => {
    let j = rng.int(bank.length - 1);
    if (j >= i) j++;
    return j;
  });
  return sampleCaptions(bank, others, seqLen, rng);
}

/** Partner of each row for GAN-INT: a shuffle of 0..B-1. */
export const interpolationPartners = (batch: number, rng: Rng): Int32Array =>
  rng.permutation(batch);
