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
 * @example
 * ```ts
 * import { train } from "./train.ts";
 * const result = await train({ data: ".cache/synthetic", out: "runs/demo", epochs: 2 })();
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { loadReedFolder } from "./io/data.ts";
import { loadImageStack } from "./io/images.ts";
import { attempt, type PetalError, petalError, PetalFailure } from "./io/errors.ts";
import { pretrainTextEncoder } from "./pretrain.ts";
import { loadTaskVocabulary } from "./io/task_files.ts";
import {
  type Checkpoint,
  checkpointPath,
  disposeCheckpoint,
  type Progress,
  readCheckpoint,
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
import {
  type ArchName,
  DEFAULT_LR,
  defaultTrainConfig,
  type ModelConfig,
  modelConfig,
  type SizeName,
  type TrainConfig,
  type Upsample,
} from "../stages/config.ts";
import { createGan, type StepLosses, withMatcher } from "../stages/train_step.ts";

/** Options of {@link train} (the `deno task train` flags), the budget, and hooks. */
export interface TrainOptions extends Budget {
  readonly data: string;
  readonly out: string;
  readonly size?: SizeName;
  /** G and D architecture of a fresh run (a resume keeps the checkpoint's). */
  readonly arch?: ArchName;
  /** The `dcgan` generator's up-sampling in a fresh run (a resume keeps the checkpoint's). */
  readonly upsample?: Upsample;
  readonly train?: Partial<TrainConfig>;
  /** Image ids left out of training (e.g. the evaluator's held-out split). */
  readonly excludeIds?: ReadonlySet<number>;
  readonly resume?: boolean;
  /** Where decoded images are cached between runs. */
  readonly cacheDir?: string;
  /** The task's dictionary/ folder: use its vocabulary (ids equal the task's). */
  readonly dictionary?: string;
  /** Contrastive pre-training steps for the text encoder before a fresh run (0: none). */
  readonly pretrainSteps?: number;
  /** Captions of the sample grid; defaults to captions of evenly spaced training images. */
  readonly sampleCaptions?: readonly string[];
  /** Called after every step (the progress bar). */
  readonly onStep?: (s: StepReport) => void;
  /** More observers, after the built-in ones (loss log, budget, plot, samples). */
  readonly observers?: readonly TrainObserver[];
  readonly log?: (line: string) => void;
  /** Hand back the trained model in the result (the caller disposes it); else disposed. */
  readonly keepModel?: boolean;
}

/** What {@link train} did: its checkpoint, counters, stop reason, losses and speed. */
export interface TrainResult {
  readonly checkpoint: string;
  readonly progress: Progress;
  readonly stoppedBy: StopReason;
  readonly losses: readonly StepLosses[];
  readonly imagesPerSecond: number;
  /** The trained model (EMA G, text encoder, vocabulary), with `keepModel` only. */
  readonly model?: Generator;
}

/** What a run is, once settled: a fresh config, or the checkpoint's. */
interface Settings {
  readonly size: SizeName;
  readonly arch: ArchName;
  readonly upsample: Upsample;
  readonly train: TrainConfig;
  /** What a resume may change: the learning rates only. */
  readonly lrOverrides: Partial<TrainConfig>;
  readonly seqLen: number;
  readonly checkpoint?: Checkpoint;
}

/** Step 1: the run's settings. A resume keeps the checkpoint's, but for the learning rates. */
const resolveSettings = (opts: TrainOptions): TE.TaskEither<PetalError, Settings> =>
  pipe(
    opts.resume
      ? attempt<Checkpoint | undefined>(() => readCheckpoint(opts.out), checkpointPath(opts.out))
      : TE.right<PetalError, Checkpoint | undefined>(undefined),
    TE.map((ck): Settings => {
      const lrOverrides = Object.fromEntries(
        Object.entries(opts.train ?? {}).filter(([k]) => k === "lrG" || k === "lrD"),
      ) as Partial<TrainConfig>;
      const size = opts.size ?? ck?.header.model.size ?? "small";
      const train = ck
        ? { ...ck.header.train, ...lrOverrides }
        : defaultTrainConfig({ lrG: DEFAULT_LR[size], lrD: DEFAULT_LR[size], ...opts.train });
      const seqLen = ck?.header.model.seqLen ?? modelConfig(size, 1).seqLen;
      const arch = ck ? ck.header.model.arch ?? "dcgan" : opts.arch ?? "dcgan";
      const upsample = ck
        ? ck.header.model.upsample ?? "transposed"
        : opts.upsample ?? "transposed";
      return { size, arch, upsample, train, lrOverrides, seqLen, checkpoint: ck };
    }),
  );

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
const prepareData = (opts: TrainOptions, s: Settings): TE.TaskEither<PetalError, PreparedData> =>
  pipe(
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
        modelConfig(s.size, 1).imageSize + s.train.cropMargin,
        opts.cacheDir,
        (done, total) => {
          if (done === total || done % 1024 === 0) opts.log?.(`decoding images ${done}/${total}`);
        },
      )),
    TE.map(({ records, vocab, images }) => ({
      captions: records.map((r) => r.captions),
      vocab,
      bank: records.map((r) => tokenizeAll(vocab, r.captions, s.seqLen)),
      images,
    })),
  );

/** Passes over the data the text pre-training makes at most (a small set needs few steps). */
export const PRETRAIN_MAX_EPOCHS = 10;

/** Pre-training steps for `images` images: the asked steps, at most 10 passes of batch 32. */
export const pretrainStepsFor = (asked: number, images: number): number =>
  Math.min(asked, PRETRAIN_MAX_EPOCHS * Math.ceil(images / 32));

/** A fresh GAN, its text encoder optionally pre-trained (contrastive). */
async function freshGan(opts: TrainOptions, s: Settings, data: PreparedData, model: ModelConfig) {
  const steps = pretrainStepsFor(opts.pretrainSteps ?? 0, data.bank.length);
  if (s.train.contrastiveWeight && !(steps > 0 && s.train.freezeText)) {
    throw new PetalFailure(petalError(
      "BadArgument",
      opts.out,
      "the contrastive G loss needs the text pre-training and a frozen text encoder",
      "add --pretrain-text N (and drop --joint-text), or drop --contrastive",
    ));
  }
  const created = createGan(model, s.train, s.train.seed);
  // A pre-trained run keeps its image–text matcher (best-of-K inference uses it).
  const gan = steps > 0 ? withMatcher(created, s.train.seed) : created;
  if (steps > 0) {
    const losses = await pretrainTextEncoder(gan, data.images, data.bank, data.vocab.padId, {
      steps,
      seed: s.train.seed,
      onStep: (step, loss) => {
        if (step % 100 === 0) {
          opts.log?.(`text pre-training step ${step}/${steps}: loss ${loss.toFixed(3)}`);
        }
      },
    });
    opts.log?.(
      `text encoder pre-trained (contrastive): loss ${losses[0].toFixed(3)} → ${
        losses.at(-1)!.toFixed(3)
      }`,
    );
  }
  return gan;
}

/** Step 4: the model — restored from the checkpoint on resume, else fresh. */
const initOrResume = (
  opts: TrainOptions,
  s: Settings,
  data: PreparedData,
): TE.TaskEither<PetalError, TrainingRun> =>
  attempt(async () => {
    const model = modelConfig(s.size, data.vocab.size, s.arch, s.upsample);
    // The session's clock starts before any text pre-training: `--minutes` covers it.
    const started = performance.now();
    const ck = s.checkpoint;
    const gan = ck
      ? await restoreGan(ck, checkpointPath(opts.out), model, s.lrOverrides)
      : await freshGan(opts, s, data, model);
    const progress = ck?.header.progress ?? { step: 0, epoch: 0, imagesSeen: 0, seconds: 0 };
    if (ck) {
      opts.log?.(
        `resumed from ${
          checkpointPath(opts.out)
        } at step ${progress.step} (epoch ${progress.epoch})`,
      );
    }
    const batchSize = Math.min(s.train.batchSize, data.bank.length);
    const clock = () => (performance.now() - started) / 1000;
    return {
      out: opts.out,
      gan,
      data,
      batchSize,
      stepsPerEpoch: Math.floor(data.bank.length / batchSize),
      progress,
      firstStep: progress.step,
      secondsBefore: progress.seconds,
      clock,
      stepsFrom: clock(),
    };
  }, opts.out);

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
  );

/**
 * Step 7: the run's checkpoint (`OUT/checkpoint.petal`), with the seconds trained so
 * far, its EMA generator given standing statistics first (what samples and inference
 * use); returns its path. A script's own loop calls it when it wants one.
 */
export async function checkpointRun(run: TrainingRun): Promise<string> {
  settleEma(run);
  run.progress = { ...run.progress, seconds: run.secondsBefore + run.clock() };
  return await writeCheckpoint(run.out, run.gan, run.progress, vocabularyToJson(run.data.vocab));
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
async function loop(opts: TrainOptions, run: TrainingRun): Promise<TrainResult> {
  const observers = runObservers([
    lossLog(),
    budgetFile(),
    sampleGrids(opts.sampleCaptions),
    lossPlot(),
    ...(opts.onStep ? [notifyStep(opts.onStep)] : []),
    ...(opts.observers ?? []),
  ]);
  const log = opts.log ?? (() => {});
  const losses: StepLosses[] = [];
  let path = checkpointPath(opts.out);
  try {
    await Deno.mkdir(run.out, { recursive: true });
    await observers.start(run, opts);
    const steps = trainSteps(run, opts);
    for await (const report of steps) {
      losses.push(report.losses);
      await observers.step(report, run);
      if (report.stepInEpoch === run.stepsPerEpoch) path = await endOfEpoch(run, observers, log);
    }
    const { step } = run.progress;
    if (step % run.stepsPerEpoch !== 0 || step === run.firstStep) {
      path = await checkpointRun(run);
      await observers.stopped(run);
    }
    const done = (step - run.firstStep) * run.batchSize;
    return {
      checkpoint: path,
      progress: run.progress,
      stoppedBy: steps.stoppedBy!,
      losses,
      imagesPerSecond: done / Math.max(run.clock() - run.stepsFrom, 1e-9),
      model: opts.keepModel ? { gan: run.gan, vocab: run.data.vocab } : undefined,
    };
  } finally {
    await observers.close();
  }
}

/** The whole train pipeline: prepare, then steps to the budget; the model is freed after. */
export const train = (opts: TrainOptions): TE.TaskEither<PetalError, TrainResult> =>
  pipe(
    prepareTraining(opts),
    TE.chain((run) =>
      TE.bracket(
        TE.right(run),
        (r) => attempt(() => loop(opts, r), opts.out),
        (r, result) => {
          if (!(opts.keepModel && result._tag === "Right")) disposeRun(r);
          return TE.right(undefined);
        },
      )
    ),
  );
