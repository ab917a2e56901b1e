/**
 * The stages: typed functions of the GAN-INT-CLS algorithm and their building blocks.
 * None reads a file, a clock or a global random source (randomness comes in as an
 * `Rng` the caller owns, noise as tensors); none imports pipeline/.
 *
 * - **pure**: `tokenize` (text → ids), `augment` (crops, flips, caption draws from a
 *   given stream), `losses`, `score` (the task's score, IS, FID, R-precision), `config`;
 * - **model functions** (tensors in, tensors out): `embed` (text encoder φ), `generate`
 *   (G), `discriminate` (matching-aware D), `classifier` (the evaluator's CNN), `match`
 *   (the image–text matcher: contrastive loss, best-of-K pick), `layers`;
 * - **in-place updates**: `train_step` (one D/G/EMA step: it changes the weights and the
 *   optimiser state it is given — the one stage that mutates).
 *
 * The models call a few kernels of their own (`fused`: batch norm with its activation, a
 * bias with its activation, nearest up-sampling, each one kernel). The backends register
 * them: import `mod.ts` or `pipeline/backends/backend.ts` (as the tasks do) before running
 * a model, or call `installFusedRoutes()` (pipeline/backends/fused_routes.ts) for tfjs's
 * own backends.
 *
 * @example
 * ```ts
 * import { buildVocabulary, tokenize } from "./mod.ts";
 * const vocab = buildVocabulary(["a red flower"]);
 * tokenize(vocab, "a red rose", 4); // Int32Array [2, 4, 1, 0]: a, red, <RARE>, <PAD>
 * ```
 * @module
 */
export * from "./tokenize.ts";
export * from "./config.ts";
export * from "./augment.ts";
export * from "./embed.ts";
export * from "./generate.ts";
export * from "./discriminate.ts";
export * from "./losses.ts";
export * from "./train_step.ts";
export * from "./score.ts";
export * from "./classifier.ts";
export * from "./match.ts";
export * from "./dfgan.ts";
export * from "./diffaugment.ts";
export * from "./spectral.ts";
export * from "./retrieval.ts";
export * from "./layers.ts";
export * from "./recipe.ts";
export * from "./noise.ts";
export * from "./fused.ts";
