/**
 * petal: draw a 64×64 flower from a one-sentence description. The names a script needs,
 * in groups: run the pipelines, the recipe, your own training loop, observe a run, draw,
 * files, stages, errors and backends. The internals are in `stages/mod.ts` and
 * `pipeline/mod.ts`; nothing here imports the command line (tasks/).
 *
 * Effects return fp-ts `TaskEither<PetalError, T>`; {@link unwrap} turns one into a
 * promise that throws a one-line error.
 *
 * @example Train the default recipe briefly on a small synthetic set, keep it, draw.
 * ```ts
 * import { drawPixels, ensureSyntheticData, recipe, train, unwrap, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const result = await unwrap(train({
 *   data,
 *   out: `${dir}/run`,
 *   recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 }),
 *   maxSteps: 2,
 *   keepModel: true,
 * }));
 * const gen = result.model!;
 * const [red] = await drawPixels(gen, [{ id: 1, caption: "a red flower" }], { seed: 0 });
 * console.log(red.length); // 64·64·3 bytes
 * ```
 * @module
 */

/**
 * Run the pipelines, as `deno task train|infer|evaluator|score|quality` do: each takes
 * its options and returns a TaskEither.
 *
 * @example Train, draw the test captions, train an evaluator, score the drawings.
 * ```ts
 * import { ensureSyntheticData, infer, recipe, scoreFolder, train, trainEvaluator, unwrap, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 4 });
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * await unwrap(train({ data, out: `${dir}/run`, recipe: quick, maxSteps: 2 }));
 * await unwrap(infer({ checkpoint: `${dir}/run`, captions: `${data}/test_captions.csv`, out: `${dir}/inf` }));
 * await unwrap(trainEvaluator({ data, out: `${dir}/eval`, epochs: 1, batchSize: 8 }));
 * const s = await unwrap(scoreFolder({ inference: `${dir}/inf`, csv: `${dir}/score.csv`, batch: 4,
 *   evaluator: `${dir}/eval`, reference: `${data}/test_images` }));
 * console.log(s.meanScore); // the task's score: lower is better
 * ```
 */
export { train, type TrainOptions, type TrainResult } from "./pipeline/train.ts";
export { infer, type InferOptions, type InferResult } from "./pipeline/infer.ts";
export { type EvaluatorTrainOptions, trainEvaluator } from "./pipeline/evaluator.ts";
export { scoreFolder, type ScoreOptions, type ScoreSummary } from "./pipeline/score.ts";
export { type QualityOptions, type QualityResult, runQuality } from "./pipeline/quality.ts";

/**
 * The recipe: what a run trains, every default in one typed value. `train()` with none
 * trains `recipe()`, exactly what `deno task train` trains; a resume takes its
 * checkpoint's ({@link readRecipe}), and a different one is refused.
 *
 * @example A medium model of the default recipe, then its resume for 2 more steps.
 * ```ts
 * import { ensureSyntheticData, readRecipe, recipe, train, unwrap, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 1 });
 * const medium = recipe("gan-int-cls", { size: "medium", pretrainSteps: 0, batchSize: 8 });
 * await unwrap(train({ data, out: `${dir}/run`, recipe: medium, maxSteps: 1 }));
 * await unwrap(train({ data, out: `${dir}/run`, resume: true, maxSteps: 2 }));
 * console.log((await unwrap(readRecipe(`${dir}/run`))).size); // "medium"
 * ```
 */
export {
  DEFAULT_EPOCHS,
  type Recipe,
  recipe,
  RECIPE_NAMES,
  type RecipeName,
  type RecipeOverrides,
} from "./stages/recipe.ts";
export { readRecipe } from "./pipeline/train.ts";

/**
 * Your own training loop: prepare a run, then step it. docs/examples/custom_train.ts is
 * a whole one (hinge loss, a sample grid every N steps). A prepared run steps on its
 * recipe's replicas ({@link replicaCount} of them: worker threads, `run.replicas`), and
 * {@link disposeRun} stops them.
 *
 * @example
 * ```ts
 * import { checkpointRun, disposeRun, ensureSyntheticData, prepareTraining, recipe, trainSteps, unwrap, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 1 });
 * const hinge = recipe("gan-int-cls", { loss: "hinge", pretrainSteps: 0, batchSize: 8 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`, recipe: hinge }));
 * for await (const s of trainSteps(run, { maxSteps: 2 })) console.log(s.step, s.losses.g);
 * await checkpointRun(run);
 * disposeRun(run);
 * ```
 */
export { checkpointRun, prepareTraining, replicaCount } from "./pipeline/train.ts";
export type { Replicas } from "./pipeline/replicas.ts";
export {
  type Budget,
  disposeRun,
  type StepReport,
  type StopReason,
  type TrainingRun,
  trainSteps,
} from "./pipeline/steps.ts";

/**
 * Observe a run: the bookkeeping `train` does, as observers a loop calls; pass more to
 * `train` with `observers`.
 *
 * @example
 * ```ts
 * import { lossLog, runObservers, sampleEvery, type TrainObserver } from "./mod.ts";
 *
 * const printer: TrainObserver = { step: (s) => console.log(s.step, s.imagesPerSecond) };
 * const observers = runObservers([lossLog(), sampleEvery(50, ["a red flower"]), printer]);
 * await observers.close();
 * ```
 */
export { lossLog, runObservers, sampleEvery, type TrainObserver } from "./pipeline/observers.ts";

/**
 * Draw: load a checkpoint's EMA generator and draw captions through the one drawing
 * path (the best of K noises each where the checkpoint keeps its matcher, each drawn at
 * guidance 1, 2 and 3 where it keeps its mean condition too). An image depends on
 * (checkpoint, caption id, seed, K, guidance) only. docs/examples/custom_infer.ts goes
 * from a CSV to images to a score.
 *
 * @example The shipped model draws a caption twice: the same bytes.
 * ```ts
 * import { disposeGenerator, drawPixels, loadGenerator, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * const caption = [{ id: 7, caption: "a pink flower with wide petals" }];
 * const [a] = await drawPixels(gen, caption, { seed: 0, candidates: 2 });
 * const [b] = await drawPixels(gen, caption, { seed: 0, candidates: 2 });
 * console.log(a.every((v, i) => v === b[i])); // true
 * disposeGenerator(gen);
 * ```
 */
export {
  candidatesFor,
  drawFolder,
  type Drawn,
  type DrawOptions,
  drawPixels,
  generateImages,
  type Generator,
  guidanceFor,
  type GuidanceScales,
  inferenceName,
  interpolateCaptions,
} from "./pipeline/draw.ts";
export { disposeGenerator, loadGenerator } from "./pipeline/infer.ts";

/**
 * Files in and out: data folders, captions (CSV or the task's .pkl), images, grids, the
 * synthetic set.
 *
 * @example
 * ```ts
 * import { ensureSyntheticData, loadCaptions, loadReedFolder, unwrap } from "./mod.ts";
 *
 * const data = await ensureSyntheticData(`${await Deno.makeTempDir()}/data`, { trainImages: 4, testImages: 2 });
 * console.log((await unwrap(loadReedFolder(data))).records.length); // 4
 * console.log((await unwrap(loadCaptions(`${data}/test_captions.csv`))).length); // 2
 * ```
 */
export { loadReedFolder, type ReedDataset, type TestCaption } from "./pipeline/io/data.ts";
export { loadCaptions } from "./pipeline/io/task_files.ts";
export { encodeJpeg } from "./pipeline/io/images.ts";
export { type GridRow, renderGrid } from "./pipeline/io/grid.ts";
export { ensureSyntheticData } from "./pipeline/io/synthetic.ts";

/**
 * Stages: text → ids, the task's scores, the seeded stream every draw comes from, and
 * the noise policy.
 *
 * @example
 * ```ts
 * import { buildVocabulary, captionNoise, tokenize } from "./mod.ts";
 *
 * const ids = tokenize(buildVocabulary(["a red flower"]), "a red rose", 4);
 * console.log(ids.length, captionNoise(0, 5685, 0, 100).length); // 4 100
 * ```
 */
export { buildVocabulary, tokenize, type Vocabulary } from "./stages/tokenize.ts";
export { taskScores } from "./stages/score.ts";
export { Rng } from "./stages/rng.ts";
export { captionNoise } from "./stages/noise.ts";

/**
 * Errors and backends: one error type from edge to task, and the compute backend.
 *
 * @example
 * ```ts
 * import { formatError, train, useBackend } from "./mod.ts";
 *
 * console.log(await useBackend("auto")); // "native", "wasm", ...
 * const r = await train({ data: "nowhere", out: await Deno.makeTempDir() })();
 * if (r._tag === "Left") console.error(formatError(r.left)); // error: nowhere: ... — ...
 * ```
 */
export { attempt, formatError, type PetalError, unwrap } from "./pipeline/io/errors.ts";
export { type BackendChoice, useBackend } from "./pipeline/backends/backend.ts";
