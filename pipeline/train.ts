/**
 * The train pipeline, as the algorithm reads:
 *
 *   resolve settings → load data → prepare (tokenize, cache images) → init or resume
 *   → steps (augment → embed → D step → G step → EMA) → end of epoch
 *   → standing statistics of the EMA G → checkpoint
 *
 * Each arrow is a small named step composed with fp-ts; bookkeeping (loss log, plot,
 * budget, sample grids, progress) lives in observers (pipeline/observers.ts) that the
 * loop calls. Files, clocks and randomness live here; the stages are in stages/.
 * Every random draw comes from a stream seeded by (seed, epoch, step), so the counters
 * are the whole RNG state: `--resume` replays nothing and continues exactly.
 *
 * @example Two epochs of the default recipe on a Reed-layout folder of your own.
 * ```ts ignore
 * import { train, unwrap } from "./train.ts";
 * const result = await unwrap(train({ data: "../shared/oxford102", out: "runs/demo", epochs: 2 }));
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { loadReedFolder } from "./io/data.ts";
import { loadImageStack } from "./io/images.ts";
import { attempt, type PetalError, petalError } from "./io/errors.ts";
import { pretrainTextEncoder } from "./pretrain.ts";
import { startReplicas } from "./replicas.ts";
import { loadTaskVocabulary } from "./io/task_files.ts";
import {
  type Checkpoint,
  checkpointPath,
  disposeCheckpoint,
  type Progress,
  readCheckpoint,
  readCheckpointHeader,
  restoreGan,
  writeCheckpoint,
} from "./io/checkpoint.ts";
import type { Generator } from "./infer.ts";
import {
  budgetFile,
  lossLog,
  lossPlot,
  notifyStep,
  runObservers,
  sampleGridPath,
  sampleGrids,
  type StepReport,
  type TrainObserver,
} from "./observers.ts";
import {
  type Budget,
  disposeRun,
  type PreparedData,
  settleEma,
  type StopReason,
  type TrainingRun,
  trainSteps,
} from "./steps.ts";
import {
  buildVocabulary,
  tokenizeAll,
  type Vocabulary,
  vocabularyFromJson,
  vocabularyToJson,
} from "../stages/tokenize.ts";
import { modelConfig, type TrainConfig } from "../stages/config.ts";
import {
  DEFAULT_EPOCHS,
  PRETRAIN_MAX_EPOCHS,
  type Recipe,
  recipe as defaultRecipe,
  recipeConflict,
  storedRecipe,
} from "../stages/recipe.ts";
import { createGan, type Gan, type StepLosses, withMatcher } from "../stages/train_step.ts";

/**
 * Options of {@link train}: data, output folder, the {@link Recipe} (default: `recipe()`,
 * what `deno task train` trains), the budget (default: {@link DEFAULT_EPOCHS} epochs), and
 * hooks.
 */
export interface TrainOptions extends Budget {
  readonly data: string;
  readonly out: string;
  /**
   * What to train. A resume takes the checkpoint's; a recipe given with `resume` must
   * agree with it but for the learning rates, which it then sets.
   */
  readonly recipe?: Recipe;
  /** Image ids left out of training (e.g. the evaluator's held-out split). */
  readonly excludeIds?: ReadonlySet<number>;
  readonly resume?: boolean;
  /** Where decoded images are cached between runs. */
  readonly cacheDir?: string;
  /** The task's dictionary/ folder: use its vocabulary (ids equal the task's). */
  readonly dictionary?: string;
  /** Captions of the sample grid; defaults to captions of evenly spaced training images. */
  readonly sampleCaptions?: readonly string[];
  /** Called after every step (the progress bar). */
  readonly onStep?: (s: StepReport) => void;
  /** More observers, after the built-in ones (loss log, budget, plot, samples). */
  readonly observers?: readonly TrainObserver[];
  readonly log?: (line: string) => void;
  /**
   * Minutes from the start by which the text pre-training stops at the latest (default:
   * {@link PRETRAIN_CLOCK_SHARE} of `minutes`; the quality loop's first leg passes its
   * whole budget's share, so scoring on the way does not shorten the pre-training).
   */
  readonly pretrainMinutes?: number;
  /** Hand back the trained model in the result (the caller disposes it); else disposed. */
  readonly keepModel?: boolean;
}

/** What {@link train} did: its checkpoint, counters, stop reason, losses and speed. */
export interface TrainResult {
  readonly checkpoint: string;
  /** What it trained (a resume: the checkpoint's, with any new learning rates). */
  readonly recipe: Recipe;
  readonly progress: Progress;
  readonly stoppedBy: StopReason;
  readonly losses: readonly StepLosses[];
  readonly imagesPerSecond: number;
  /** The trained model (EMA G, text encoder, vocabulary), with `keepModel` only. */
  readonly model?: Generator;
}

/** The budget a run is given: the options', or {@link DEFAULT_EPOCHS} epochs when none. */
export const budgetOf = (b: Budget): Budget =>
  b.epochs === undefined && b.minutes === undefined && b.maxSteps === undefined
    ? { ...b, epochs: DEFAULT_EPOCHS }
    : b;

/** What a run is, once settled: its recipe, and the checkpoint it resumes from. */
interface Settings {
  readonly recipe: Recipe;
  readonly checkpoint?: Checkpoint;
  /** Seconds since the pipeline started: `--minutes` covers loading and pre-training. */
  readonly clock: () => number;
}

/**
 * The recipe a checkpoint was trained with (older checkpoints: rebuilt from their model
 * and training settings).
 *
 * @example The recipe of the shipped model.
 * ```ts
 * import { readRecipe, unwrap } from "../mod.ts";
 *
 * const r = await unwrap(readRecipe("models/flowers"));
 * console.log(r.name, r.size, r.train.lrG); // gan-int-cls small 0.0005
 * ```
 */
export const readRecipe = (dirOrFile: string): TE.TaskEither<PetalError, Recipe> =>
  pipe(
    TE.fromTask(() => readCheckpointHeader(checkpointPath(dirOrFile))),
    TE.chain((h) =>
      h ? TE.right(storedRecipe(h.model, h.train, h.recipe)) : TE.left(petalError(
        "MissingFile",
        checkpointPath(dirOrFile),
        "no readable checkpoint",
        "train into that folder first, or drop --resume",
      ))
    ),
  );

/** A resume's recipe: the checkpoint's; one asked for must agree but for the rates. */
const resumeRecipe = (opts: TrainOptions, ck: Checkpoint): E.Either<PetalError, Recipe> => {
  const stored = storedRecipe(ck.header.model, ck.header.train, ck.header.recipe);
  const conflict = opts.recipe && recipeConflict(stored, opts.recipe);
  if (conflict) {
    return E.left(petalError(
      "BadArgument",
      checkpointPath(opts.out),
      `a resume keeps the checkpoint's recipe, and this one differs (${conflict})`,
      "drop that setting (a resume may change only --lr and --lr-d), or train into another --out",
    ));
  }
  const rates = opts.recipe ? { lrG: opts.recipe.train.lrG, lrD: opts.recipe.train.lrD } : {};
  return E.right({ ...stored, train: { ...stored.train, ...rates } });
};

/** Step 1: the run's settings. A resume keeps the checkpoint's, but for the learning rates. */
const resolveSettings = (opts: TrainOptions): TE.TaskEither<PetalError, Settings> =>
  pipe(
    TE.fromIO(startClock),
    TE.chain((clock) =>
      !opts.resume ? TE.right({ recipe: opts.recipe ?? defaultRecipe(), clock }) : pipe(
        attempt(() => readCheckpoint(opts.out), checkpointPath(opts.out)),
        TE.chain((ck) =>
          pipe(
            TE.fromEither(resumeRecipe(opts, ck)),
            TE.bimap(
              (e) => (disposeCheckpoint(ck), e),
              (recipe): Settings => ({ recipe, checkpoint: ck, clock }),
            ),
          )
        ),
      )
    ),
  );

/** A clock of seconds from now. */
const startClock = (): () => number => {
  const started = performance.now();
  return () => (performance.now() - started) / 1000;
};

/**
 * The vocabulary: the checkpoint's on resume, else the task's dictionary when given (ids
 * then equal the task's), else built from the training captions.
 */
const vocabularyFor = (
  opts: TrainOptions,
  settings: Settings,
  captions: readonly (readonly string[])[],
): TE.TaskEither<PetalError, Vocabulary> =>
  settings.checkpoint
    ? TE.right(vocabularyFromJson(settings.checkpoint.header.vocabulary))
    : opts.dictionary
    ? loadTaskVocabulary(opts.dictionary)
    : TE.right(buildVocabulary(captions.flat()));

/** Steps 2–3: load the folder, tokenize every caption, decode (or read cached) images. */
const prepareData = (opts: TrainOptions, s: Settings): TE.TaskEither<PetalError, PreparedData> => {
  const model = modelConfig(s.recipe.size, 1);
  return pipe(
    TE.Do,
    TE.bind("records", () =>
      pipe(
        loadReedFolder(opts.data),
        TE.map((d) => d.records.filter((r) => !opts.excludeIds?.has(r.imageId))),
      )),
    TE.bind("vocab", ({ records }) => vocabularyFor(opts, s, records.map((r) => r.captions))),
    TE.bind("images", ({ records }) =>
      loadImageStack(
        records.map((r) => r.imagePath),
        model.imageSize + s.recipe.train.cropMargin,
        opts.cacheDir,
        (done, total) => {
          if (done === total || done % 1024 === 0) opts.log?.(`decoding images ${done}/${total}`);
        },
      )),
    TE.map(({ records, vocab, images }) => ({
      captions: records.map((r) => r.captions),
      vocab,
      bank: records.map((r) => tokenizeAll(vocab, r.captions, model.seqLen)),
      images,
    })),
  );
};

/** Pre-training steps for `images` images: the asked steps, at most {@link PRETRAIN_MAX_EPOCHS} passes of `batch`. */
export const pretrainStepsFor = (asked: number, images: number, batch: number): number =>
  Math.min(asked, PRETRAIN_MAX_EPOCHS * Math.ceil(images / Math.min(batch, images)));

/** The share of a `--minutes` budget the text pre-training may take at most. */
export const PRETRAIN_CLOCK_SHARE = 0.25;

/** A contrastive G loss needs a pre-trained, frozen text encoder (its image model). */
const contrastiveNeedsPretraining = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.train.contrastiveWeight && !(r.pretrainSteps > 0 && r.train.freezeText)
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      "the contrastive G loss needs the text pre-training and a frozen text encoder",
      "add --pretrain-text N (and drop --joint-text), or drop --contrastive",
    ))
    : E.right(r);

/** `--g-top` adds a conv to the dcgan generator; DF-GAN's has its own last blocks. */
const topNeedsDcgan = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.gTop > 0 && r.arch !== "dcgan"
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      `--g-top adds a conv to the dcgan generator, and this recipe's is ${r.arch}`,
      "drop --g-top, or add --arch dcgan",
    ))
    : E.right(r);

/** Spectral norm is built into the dcgan discriminator; DF-GAN's has its own penalty. */
const spectralNeedsDcgan = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.train.spectralNorm && r.arch !== "dcgan"
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      `--spectral-norm normalises the dcgan discriminator, and this recipe's is ${r.arch}`,
      "drop --spectral-norm, or add --arch dcgan",
    ))
    : E.right(r);

/** Adaptive augmentation gates DiffAugment's operations; without them it has none. */
const adaNeedsDiffAugment = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.train.adaTarget && !r.train.diffAugment
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      `--ada ${r.train.adaTarget} gates DiffAugment's operations, and this recipe has none`,
      "drop --no-diffaug, or drop --ada",
    ))
    : E.right(r);

/**
 * Adaptive augmentation moves p by each replica's own real logits: replicas would drift
 * apart, so it trains on one.
 */
const adaNeedsOneReplica = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.train.adaTarget && replicaCount(r.train, r.train.batchSize) > 1
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      `--ada ${r.train.adaTarget} moves p by one thread's real images, and this recipe splits each step over ${r.train.replicas} replicas`,
      "add --replicas 1",
    ))
    : E.right(r);

/** Label smoothing moves the `bce` target; hinge and WGAN losses have none to move. */
const smoothingNeedsBce = (opts: TrainOptions, r: Recipe): E.Either<PetalError, Recipe> =>
  r.train.labelSmooth && r.train.loss !== "bce"
    ? E.left(petalError(
      "BadArgument",
      opts.out,
      `--label-smooth moves the bce loss's target, and this recipe's loss is ${r.train.loss}`,
      "drop --label-smooth, or add --loss bce",
    ))
    : E.right(r);

/**
 * Minutes from the start by which the text pre-training stops at the latest: the options'
 * own, else {@link PRETRAIN_CLOCK_SHARE} of a `minutes` budget, else none.
 */
const pretrainDeadline = (opts: TrainOptions, budget: Budget): number =>
  opts.pretrainMinutes ?? (budget.minutes ?? Infinity) * PRETRAIN_CLOCK_SHARE;

/** What the text pre-training adds to the budget, said before it starts. */
const pretrainNotice = (steps: number, budget: Budget, deadline: number): string =>
  !Number.isFinite(deadline)
    ? `text pre-training: ${steps} steps before the GAN; the step and epoch budgets count ` +
      `GAN steps (--pretrain-text 0 skips it)`
    : `text pre-training: up to ${steps} steps, within the first ${deadline.toFixed(1)} ${
      budget.minutes === undefined ? "minutes" : `of the ${budget.minutes} minutes`
    }`;

/** The text pre-training of a fresh GAN, bounded by the clock when the budget has minutes. */
async function pretrain(opts: TrainOptions, s: Settings, data: PreparedData, gan: Gan) {
  const { pretrainSteps, pretrainBatch } = s.recipe;
  const steps = pretrainStepsFor(pretrainSteps, data.bank.length, pretrainBatch);
  const budget = budgetOf(opts);
  const minutes = pretrainDeadline(opts, budget);
  opts.log?.(pretrainNotice(steps, budget, minutes));
  const deadline = minutes * 60;
  const losses = await pretrainTextEncoder(gan, data.images, data.bank, data.vocab.padId, {
    steps,
    batchSize: pretrainBatch,
    seed: s.recipe.train.seed,
    shouldStop: () => s.clock() >= deadline || (opts.shouldStop?.() ?? false),
    onStep: (step, loss) => {
      if (step % 100 === 0) {
        opts.log?.(`text pre-training step ${step}/${steps}: loss ${loss.toFixed(3)}`);
      }
    },
  });
  opts.log?.(
    losses.length === 0
      ? `text pre-training: no step before its deadline (${
        minutes.toFixed(1)
      } minutes, spent loading): the text encoder keeps its initial weights`
      : `text encoder pre-trained (contrastive, ${losses.length} steps): loss ${
        losses[0].toFixed(3)
      } → ${losses.at(-1)!.toFixed(3)}`,
  );
}

/** A fresh GAN, its text encoder pre-trained (contrastive) when the recipe says so. */
async function freshGan(opts: TrainOptions, s: Settings, data: PreparedData): Promise<Gan> {
  const r = s.recipe;
  const model = modelConfig(r.size, data.vocab.size, r.arch, r.upsample, r.gTop);
  const created = createGan(model, r.train, r.train.seed);
  if (pretrainStepsFor(r.pretrainSteps, data.bank.length, r.pretrainBatch) === 0) return created;
  // A pre-trained run keeps its image–text matcher (best-of-K inference uses it).
  const gan = withMatcher(created, r.train.seed);
  await pretrain(opts, s, data, gan);
  return gan;
}

/** Step 4: the model — restored from the checkpoint on resume, else fresh. */
const initOrResume = (
  opts: TrainOptions,
  s: Settings,
  data: PreparedData,
): TE.TaskEither<PetalError, TrainingRun> =>
  pipe(
    TE.fromEither(
      pipe(
        contrastiveNeedsPretraining(opts, s.recipe),
        E.chain((r) => topNeedsDcgan(opts, r)),
        E.chain((r) => smoothingNeedsBce(opts, r)),
        E.chain((r) => adaNeedsDiffAugment(opts, r)),
        E.chain((r) => adaNeedsOneReplica(opts, r)),
        E.chain((r) => spectralNeedsDcgan(opts, r)),
      ),
    ),
    TE.chain(() => attempt(() => modelFor(opts, s, data), opts.out)),
    TE.map((gan): TrainingRun => {
      const ck = s.checkpoint;
      const progress = ck?.header.progress ?? { step: 0, epoch: 0, imagesSeen: 0, seconds: 0 };
      if (ck) {
        opts.log?.(
          `resumed from ${
            checkpointPath(opts.out)
          } at step ${progress.step} (epoch ${progress.epoch})`,
        );
      }
      const batchSize = Math.min(s.recipe.train.batchSize, data.bank.length);
      return {
        out: opts.out,
        recipe: s.recipe,
        gan,
        data,
        batchSize,
        stepsPerEpoch: Math.floor(data.bank.length / batchSize),
        progress,
        firstStep: progress.step,
        secondsBefore: progress.seconds,
        clock: s.clock,
        stepsFrom: s.clock(),
      };
    }),
  );

/** The model of a run: restored from its checkpoint, or fresh (and maybe pre-trained). */
const modelFor = (opts: TrainOptions, s: Settings, data: PreparedData): Promise<Gan> => {
  const r = s.recipe;
  const ck = s.checkpoint;
  if (!ck) return freshGan(opts, s, data);
  const model = modelConfig(r.size, data.vocab.size, r.arch, r.upsample, r.gTop);
  const rates: Partial<TrainConfig> = { lrG: r.train.lrG, lrD: r.train.lrD };
  return restoreGan(ck, checkpointPath(opts.out), model, rates);
};

/** A data folder with fewer images than one batch cannot train. */
const atLeastOneBatch = (opts: TrainOptions) => (run: TrainingRun) =>
  run.stepsPerEpoch >= 1 ? TE.right(run) : pipe(
    TE.fromIO(() => disposeRun(run)),
    TE.chain(() =>
      TE.left(petalError(
        "NoImages",
        opts.data,
        "fewer images than one batch",
        "add images or lower --batch",
      ))
    ),
  );

/**
 * Steps 1–4 on their own: a run ready to step, for a script's own loop
 * ({@link trainSteps}). The caller disposes it ({@link disposeRun}).
 *
 * @example A run ready to step: 16 images in batches of 8, nothing trained yet.
 * ```ts
 * import { disposeRun, ensureSyntheticData, prepareTraining, recipe, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`, recipe: quick }));
 * console.log(run.stepsPerEpoch, run.progress.step); // 2 0
 * disposeRun(run);
 * ```
 */
export const prepareTraining = (opts: TrainOptions): TE.TaskEither<PetalError, TrainingRun> =>
  pipe(
    resolveSettings(opts),
    TE.chain((s) =>
      pipe(
        prepareData(opts, s),
        TE.chain((data) => initOrResume(opts, s, data)),
        // The checkpoint's tensors are copied into the model (or unused on failure).
        TE.bimap(
          (e) => (s.checkpoint && disposeCheckpoint(s.checkpoint), e),
          (run) => (s.checkpoint && disposeCheckpoint(s.checkpoint), run),
        ),
      )
    ),
    TE.chain(atLeastOneBatch(opts)),
    TE.chain(withReplicas(opts)),
  );

/**
 * Fewest images of a batch part: batch norm's statistics over fewer are too noisy to
 * learn from (a batch of 8 in two parts of 4 lost the synthetic set's colour conditioning,
 * tests/conditioning_test.ts).
 */
export const MIN_PART_IMAGES = 8;

/**
 * The replicas a run's step is split over: its recipe's `replicas`, at most one per
 * {@link MIN_PART_IMAGES} images of its batch, and one on webgpu (one device, its own
 * parallelism).
 *
 * @example
 * ```ts
 * import { recipe, replicaCount } from "../mod.ts";
 *
 * const r = recipe();
 * console.log(replicaCount(r.train, r.train.batchSize, "native")); // 2: two parts of 16
 * console.log(replicaCount(r.train, 8, "native")); // 1: a part has 8 images at the least
 * ```
 */
export const replicaCount = (
  train: TrainConfig,
  batchSize: number,
  backend = tf.getBackend(),
): number =>
  backend === "webgpu"
    ? 1
    : Math.max(1, Math.min(train.replicas ?? 1, Math.floor(batchSize / MIN_PART_IMAGES)));

/** Step 4, continued: the run's replica workers when it has more than one (pipeline/replicas.ts). */
const withReplicas = (opts: TrainOptions) => (run: TrainingRun) => {
  const size = replicaCount(run.gan.train, run.batchSize);
  if (size === 1) return TE.right(run);
  return pipe(
    attempt(() => startReplicas(run.gan, size), opts.out, "train with --replicas 1"),
    TE.map((replicas): TrainingRun => {
      opts.log?.(`data-parallel: ${size} replicas, ${replicas.threads} thread(s) each`);
      return { ...run, replicas, stepsFrom: run.clock() };
    }),
    TE.orElse((e) => (disposeRun(run), TE.left(e))),
  );
};

/**
 * Step 7: the run's checkpoint (`OUT/checkpoint.petal`), with the seconds trained so
 * far, its EMA generator given standing statistics first (what samples and inference
 * use); returns its path. A script's own loop calls it when it wants one.
 *
 * @example One step of a script's own loop, then its checkpoint.
 * ```ts
 * import { checkpointRun, disposeRun, ensureSyntheticData, prepareTraining, recipe, trainSteps, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`, recipe: quick }));
 * for await (const _ of trainSteps(run, { maxSteps: 1 }));
 * console.log(await checkpointRun(run)); // …/run/checkpoint.petal
 * disposeRun(run);
 * ```
 */
export async function checkpointRun(run: TrainingRun): Promise<string> {
  settleEma(run);
  run.progress = { ...run.progress, seconds: run.secondsBefore + run.clock() };
  const vocabulary = vocabularyToJson(run.data.vocab);
  return await writeCheckpoint(run.out, run.gan, run.progress, vocabulary, { recipe: run.recipe });
}

/** Step 6: end of an epoch — a checkpoint, then the observers' sheet and plot. */
async function endOfEpoch(
  run: TrainingRun,
  observers: Required<TrainObserver>,
  log: (l: string) => void,
) {
  const epoch = run.progress.step / run.stepsPerEpoch;
  run.progress = { ...run.progress, epoch };
  const path = await checkpointRun(run);
  await observers.epochEnd(epoch, run);
  log(`epoch ${epoch}: checkpoint ${path}, samples ${sampleGridPath(run.out, epoch)}`);
  return path;
}

/** Step 5: the steps, each reported to the observers, each epoch ended and checkpointed. */
async function loop(
  opts: TrainOptions,
  run: TrainingRun,
): Promise<E.Either<PetalError, TrainResult>> {
  const observers = runObservers([
    lossLog(),
    budgetFile(),
    sampleGrids(opts.sampleCaptions),
    lossPlot(),
    ...(opts.onStep ? [notifyStep(opts.onStep)] : []),
    ...(opts.observers ?? []),
  ]);
  const log = opts.log ?? (() => {});
  const budgeted = { ...opts, ...budgetOf(opts) };
  const losses: StepLosses[] = [];
  let path = checkpointPath(opts.out);
  try {
    await Deno.mkdir(run.out, { recursive: true });
    await observers.start(run, budgeted);
    const steps = trainSteps(run, budgeted);
    for await (const report of steps) {
      losses.push(report.losses);
      await observers.step(report, run);
      if (report.stepInEpoch === run.stepsPerEpoch) path = await endOfEpoch(run, observers, log);
    }
    if (steps.failure) return E.left(steps.failure);
    const { step } = run.progress;
    if (step % run.stepsPerEpoch !== 0 || step === run.firstStep) {
      path = await checkpointRun(run);
      await observers.stopped(run);
    }
    const done = (step - run.firstStep) * run.batchSize;
    return E.right({
      checkpoint: path,
      recipe: run.recipe,
      progress: run.progress,
      stoppedBy: steps.stoppedBy!,
      losses,
      imagesPerSecond: done / Math.max(run.clock() - run.stepsFrom, 1e-9),
      model: opts.keepModel ? { gan: run.gan, vocab: run.data.vocab } : undefined,
    });
  } finally {
    await observers.close();
  }
}

/**
 * The whole train pipeline: prepare, then steps to the budget; the model is freed after.
 *
 * @example Two steps of a quick recipe on a small synthetic set.
 * ```ts
 * import { ensureSyntheticData, recipe, train, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * const r = await unwrap(train({ data, out: `${dir}/run`, recipe: quick, maxSteps: 2 }));
 * console.log(r.progress.step, r.progress.epoch, r.stoppedBy); // 2 1 steps
 * console.log(r.checkpoint); // …/run/checkpoint.petal
 * ```
 */
export const train = (opts: TrainOptions): TE.TaskEither<PetalError, TrainResult> =>
  pipe(
    prepareTraining(opts),
    TE.chain((run) =>
      TE.bracket(
        TE.right(run),
        (r) => pipe(attempt(() => loop(opts, r), opts.out), TE.chainEitherK((e) => e)),
        (r, result) => {
          // A kept model is the main thread's: the replicas' workers stop either way (a
          // live worker would keep the process from exiting).
          if (opts.keepModel && result._tag === "Right") r.replicas?.close();
          else disposeRun(r);
          return TE.right(undefined);
        },
      )
    ),
  );
