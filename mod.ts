/**
 * petal: a text-to-flower GAN toolkit for Deno. Compose your own pipeline from the same
 * pure stages and effectful pipeline steps that `deno task train|infer|score` use.
 *
 * @example Train briefly on the synthetic set, then draw two captions.
 * ```ts
 * import { ensureSyntheticData, generateImages, loadGenerator, Rng, train, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const data = await ensureSyntheticData(".cache/synthetic");
 * const result = await train({ data, out: "runs/script", maxSteps: 50 })();
 * if (result._tag === "Left") throw new Error(result.left.message);
 * const gen = await loadGenerator("runs/script");
 * const images = await generateImages(gen, ["a red flower", "a blue flower"], new Rng(1).normals(2 * gen.gan.model.zDim));
 * ```
 * @module
 */

// Stages: pure functions.
export * from "./stages/tokenize.ts";
export * from "./stages/config.ts";
export * from "./stages/layers.ts";
export * from "./stages/embed.ts";
export * from "./stages/augment.ts";
export * from "./stages/generate.ts";
export * from "./stages/discriminate.ts";
export * from "./stages/losses.ts";
export * from "./stages/train_step.ts";
export * from "./stages/score.ts";
export * from "./stages/classifier.ts";

// Pipeline: files, clocks, randomness, backends.
export * from "./pipeline/errors.ts";
export * from "./pipeline/backend.ts";
export * from "./pipeline/rng.ts";
export * from "./pipeline/data.ts";
export * from "./pipeline/images.ts";
export * from "./pipeline/grid.ts";
export * from "./pipeline/synthetic.ts";
export * from "./pipeline/checkpoint.ts";
export * from "./pipeline/train.ts";
export * from "./pipeline/infer.ts";
export * from "./pipeline/evaluator.ts";
export * from "./pipeline/score.ts";
export * from "./pipeline/task_files.ts";
/** Readers of the task's native files (.npy, pickled pandas DataFrame). */
export * as formats from "./pipeline/formats/mod.ts";
