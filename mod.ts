/**
 * petal: draw a 64×64 flower from a one-sentence description. A curated API, in groups:
 * run the pipelines, write your own training loop, observe a run, generate, read and
 * write files, the stages themselves, errors and backends. Everything else (and the
 * internals) is in `stages/mod.ts` and `pipeline/mod.ts`.
 *
 * Effects return fp-ts `TaskEither<PetalError, T>`; {@link unwrap} turns one into a
 * promise that throws a {@link PetalFailure} with a one-line message.
 *
 * @example Train briefly on the synthetic set, keep the model, draw two captions.
 * ```ts
 * import { ensureSyntheticData, generateImages, Rng, train, unwrap, useBackend } from "./mod.ts";
 *
 * await useBackend("auto");
 * const data = await ensureSyntheticData(".cache/synthetic");
 * const result = await unwrap(train({ data, out: "runs/script", maxSteps: 50, keepModel: true }));
 * const gen = result.model!;
 * const images = await generateImages(gen, ["a red flower", "a blue flower"], new Rng(1).normals(2 * gen.gan.model.zDim));
 * ```
 * @module
 */

/**
 * Run the pipelines, as `deno task train|infer|evaluator|score|score-check|quality` do.
 *
 * @example
 * ```ts
 * import { infer, scoreFolder, train, trainEvaluator, unwrap } from "./mod.ts";
 * await unwrap(train({ data: ".cache/synthetic", out: "runs/a", epochs: 2 }));
 * await unwrap(infer({ checkpoint: "runs/a", captions: ".cache/synthetic/test_captions.csv", out: "inf" }));
 * await unwrap(trainEvaluator({ data: ".cache/synthetic", out: "runs/eval", epochs: 2 }));
 * const s = await unwrap(scoreFolder({ inference: "inf", csv: "score.csv", batch: 64,
 *   evaluator: "runs/eval", reference: ".cache/synthetic/test_images" }));
 * ```
 */
export { train, type TrainOptions, type TrainResult } from "./pipeline/train.ts";

/**
 * The recipe: what a run trains, every default in one typed value. `train()` with none
 * trains `recipe()`, exactly what `deno task train` trains; a resume takes its
 * checkpoint's ({@link readRecipe}).
 *
 * @example A medium model of the default recipe, then its resume for 10 more steps.
 * ```ts
 * import { recipe, train, unwrap } from "./mod.ts";
 * const r = recipe("gan-int-cls", { size: "medium", pretrainSteps: 0 });
 * await unwrap(train({ data: ".cache/synthetic", out: "runs/r", recipe: r, maxSteps: 10 }));
 * await unwrap(train({ data: ".cache/synthetic", out: "runs/r", resume: true, maxSteps: 20 }));
 * ```
 */
export {
  DEFAULT_EPOCHS,
  defaultTrainConfig,
  type Recipe,
  recipe,
  RECIPE_NAMES,
  recipeConflict,
  type RecipeName,
  type RecipeOverrides,
} from "./stages/recipe.ts";
export { readRecipe } from "./pipeline/train.ts";
export { infer, type InferOptions, type InferResult, REPORT_IDS } from "./pipeline/infer.ts";
export {
  type EvaluatorManifest,
  type EvaluatorTrainOptions,
  trainEvaluator,
} from "./pipeline/evaluator.ts";
export { scoreFolder, type ScoreOptions, type ScoreSummary } from "./pipeline/score.ts";
export { type SanityOptions, type SanityRow, scoreSanity } from "./pipeline/sanity.ts";
export {
  qualityBaselines,
  type QualityOptions,
  type QualityResult,
  runQuality,
} from "./pipeline/quality.ts";

/**
 * Your own training loop: prepare a run, then step it; build batches yourself if you
 * like. docs/examples/custom_train.ts is a whole one (hinge loss, samples every N steps).
 *
 * @example
 * ```ts
 * import { checkpointRun, disposeRun, prepareTraining, trainSteps, unwrap } from "./mod.ts";
 * const run = await unwrap(prepareTraining({ data: ".cache/synthetic", out: "runs/mine",
 *   train: { loss: "hinge" } }));
 * for await (const s of trainSteps(run, { maxSteps: 100 })) console.log(s.step, s.losses.g);
 * await checkpointRun(run);
 * disposeRun(run);
 * ```
 */
export { checkpointRun, prepareTraining } from "./pipeline/train.ts";
export {
  batchAt,
  type Budget,
  buildBatch,
  disposeRun,
  type PreparedData,
  type StepLoop,
  stepOnce,
  type StepReport,
  type StopReason,
  streamFor,
  type TrainingRun,
  trainSteps,
} from "./pipeline/steps.ts";

/**
 * Observe a run: the bookkeeping `train` does (loss log, plot, budget, sample grids),
 * as observers a loop calls; pass more to `train` with `observers`.
 *
 * @example
 * ```ts
 * import { lossLog, runObservers, sampleEvery, type TrainObserver } from "./mod.ts";
 * const printer: TrainObserver = { step: (s) => console.log(s.step, s.imagesPerSecond) };
 * const observers = runObservers([lossLog(), sampleEvery(50, ["a red flower"]), printer]);
 * // await observers.start(run, budget); for await (const s of trainSteps(run)) await observers.step(s, run);
 * ```
 */
export {
  budgetFile,
  LOSS_LOG_HEADER,
  lossLog,
  lossPlot,
  notifyStep,
  runObservers,
  sampleEvery,
  sampleGrids,
  type TrainObserver,
  writeSampleGrid,
} from "./pipeline/observers.ts";

/**
 * Generate: load a checkpoint's EMA generator, draw captions (the best of K noises each,
 * where the checkpoint keeps its image–text matcher), interpolate.
 * docs/examples/custom_infer.ts goes from a CSV to images to a score.
 *
 * @example
 * ```ts
 * import { disposeGenerator, generateImages, loadGenerator, Rng } from "./mod.ts";
 * const gen = await loadGenerator("runs/latest");
 * const rgb = await generateImages(gen, ["a pink flower"], new Rng(0).normals(gen.gan.model.zDim));
 * disposeGenerator(gen);
 * ```
 */
export {
  candidatesFor,
  DEFAULT_CANDIDATES,
  disposeGenerator,
  drawFolder,
  drawPixels,
  generateImages,
  type Generator,
  inferenceName,
  interpolateCaptions,
  loadGenerator,
} from "./pipeline/infer.ts";

/**
 * Files in and out: data folders, captions (CSV or the task's .pkl), images,
 * checkpoints, the synthetic set, grids.
 *
 * @example
 * ```ts
 * import { loadCaptions, loadReedFolder, unwrap } from "./mod.ts";
 * const data = await unwrap(loadReedFolder("../shared/oxford102"));
 * const rows = await unwrap(loadCaptions("../shared/competition/dataset/testData.pkl"));
 * ```
 */
export {
  type CaptionedImage,
  loadReedFolder,
  loadTestCaptions,
  parseTestCaptions,
  type ReedDataset,
  type TestCaption,
} from "./pipeline/io/data.ts";
export { loadCaptions, loadDictionary, loadTaskVocabulary } from "./pipeline/io/task_files.ts";
export {
  checkImagesDecode,
  decodeImage,
  encodeJpeg,
  encodePng,
  loadImageStack,
  toBytes,
  toUnitRange,
} from "./pipeline/io/images.ts";
export {
  type Checkpoint,
  checkpointPath,
  disposeCheckpoint,
  type Progress,
  readCheckpoint,
  writeGeneratorCheckpoint,
} from "./pipeline/io/checkpoint.ts";
export { ensureSyntheticData } from "./pipeline/io/synthetic.ts";
export { type GridRow, renderGrid } from "./pipeline/io/grid.ts";
/** Readers of the task's native files (.npy, pickled pandas DataFrame). */
export * as formats from "./pipeline/io/formats/mod.ts";

/**
 * The stages: text → ids, augmentation, the models, losses, one training step, scores,
 * and the seeded random stream they draw from.
 *
 * @example
 * ```ts
 * import { buildVocabulary, discriminatorLoss, taskScores, tokenize } from "./mod.ts";
 * const ids = tokenize(buildVocabulary(["a red flower"]), "a red flower");
 * ```
 */
export {
  buildVocabulary,
  detokenize,
  fromPairs,
  PAD,
  RARE,
  SEQ_LEN,
  tokenize,
  tokenizeAll,
  type Vocabulary,
  words,
} from "./stages/tokenize.ts";
export {
  LOSS_KINDS,
  type LossKind,
  type ModelConfig,
  modelConfig,
  type SizeName,
  SIZES,
  type TrainConfig,
} from "./stages/config.ts";
export {
  type CaptionBank,
  cropAndFlip,
  type ImageStack,
  interpolationPartners,
  mismatchedCaptions,
  sampleCaptions,
} from "./stages/augment.ts";
export { contrastiveLoss, encodeText } from "./stages/embed.ts";
export { matcherStatistics, matchSimilarity, pickBest } from "./stages/match.ts";
export { generate } from "./stages/generate.ts";
export { discriminate } from "./stages/discriminate.ts";
export {
  bceWithLogits,
  discriminatorLoss,
  generatorLoss,
  gradientPenalty,
} from "./stages/losses.ts";
export {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  embedCaptions,
  type Gan,
  sample,
  type StepLosses,
  trainStep,
  updateEma,
} from "./stages/train_step.ts";
export {
  cosineDistance,
  frechetDistance,
  inceptionScore,
  rPrecision,
  scoreCsv,
  taskScores,
} from "./stages/score.ts";
export { Rng } from "./stages/rng.ts";
export { captionNoise } from "./stages/noise.ts";

/**
 * Errors and backends: one error type from edge to task, and the compute backend.
 *
 * @example
 * ```ts
 * import { formatError, train, unwrap, useBackend } from "./mod.ts";
 * console.log(await useBackend("auto")); // "native", "wasm", ...
 * const r = await train({ data: "nowhere", out: "runs/x" })();
 * if (r._tag === "Left") console.error(formatError(r.left)); // error: nowhere: no such folder — ...
 * ```
 */
export {
  attempt,
  formatError,
  type PetalError,
  petalError,
  type PetalErrorKind,
  PetalFailure,
  unwrap,
} from "./pipeline/io/errors.ts";
export { BACKEND_CHOICES, type BackendChoice, useBackend } from "./pipeline/backends/backend.ts";
