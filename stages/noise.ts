/**
 * The noise policy: every image drawn anywhere (infer, quality, serve, sample grids, the
 * report grid, the examples) takes its noise from {@link captionNoise}, and nowhere else.
 *
 * The noise of candidate `k` (0 ≤ k < K) of the caption with id `id` under `seed` is the
 * first zDim normals of its own {@link Rng} stream, seeded by a 32-bit mix of
 * (seed, id, k) ({@link noiseStreamSeed}). No stream is shared between two (id, k), so an
 * image depends on (checkpoint, caption id, seed, K) only: not on the batch size, the
 * caption's position in the file, nor the other captions drawn with it. Candidate 0 is
 * the same noise whatever K is, so K = 1 draws the first candidate of any K.
 *
 * Captions without an id of their own (serve's requests, the sample grids, the report
 * grid's columns) use their **position**: the j-th image of a request or the j-th column
 * of a grid is drawn with id j. A position, not a hash of the text, because a grid's
 * columns are its noise axis: every row (caption) of column j shares the noise of id j, so
 * the rows compare captions under the same noises, and a request's images differ from
 * one another even though their caption is the same.
 *
 * @example
 * ```ts
 * import { captionNoise } from "./noise.ts";
 * const z = captionNoise(0, 5685, 0, 100); // Float32Array(100), the same on every call
 * ```
 * @module
 */
import { Rng } from "./rng.ts";

/** The murmur3 finaliser: a bijection of 32-bit numbers that mixes every bit. */
const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/** The seed of the noise stream of candidate `k` of caption `id` under `seed`. */
export const noiseStreamSeed = (seed: number, id: number, k: number): number =>
  fmix32(fmix32(fmix32(seed >>> 0) ^ (id >>> 0)) ^ Math.imul(k + 1, 0x9e3779b1));

/**
 * The zDim noise of candidate `k` of caption `id` under `seed` (see the module doc).
 *
 * @example The same (seed, id, k), the same noise; another id, another noise.
 * ```ts
 * import { captionNoise } from "../mod.ts";
 *
 * const z = captionNoise(0, 5685, 0, 100);
 * console.log(z.length, z.every((v, i) => v === captionNoise(0, 5685, 0, 100)[i])); // 100 true
 * console.log(z[0] === captionNoise(0, 5686, 0, 100)[0]); // false
 * ```
 */
export const captionNoise = (seed: number, id: number, k: number, zDim: number): Float32Array =>
  new Rng(noiseStreamSeed(seed, id, k)).normals(zDim);

/**
 * Candidate `k`'s noise rows for captions `ids`, one after another: [ids.length · zDim],
 * row i being {@link captionNoise}(seed, ids[i], k, zDim).
 */
export function noiseRows(
  seed: number,
  ids: readonly number[],
  k: number,
  zDim: number,
): Float32Array {
  const out = new Float32Array(ids.length * zDim);
  ids.forEach((id, i) => out.set(captionNoise(seed, id, k, zDim), i * zDim));
  return out;
}

/** Ids 0..n-1: the position rule for captions without an id of their own. */
export const positionIds = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
