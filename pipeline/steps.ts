/**
 * The training loop's parts, for `train` and for a script's own loop: a prepared run
 * (model, data, counters), the batch builder, and the step iterator
 * (stream → batch → step → dispose).
 *
 * Every random draw comes from a stream seeded by (seed, epoch, step), so a run's
 * counters are its whole RNG state: the batch of step k is the same whether the run
 * stopped and resumed before it or not.
 *
 * @example Twenty steps of your own loop on your data.
 * ```ts ignore
 * import { unwrap } from "./io/errors.ts";
 * import { prepareTraining } from "./train.ts";
 * import { disposeRun, trainSteps } from "./steps.ts";
 * const run = await unwrap(prepareTraining({ data: "../shared/oxford102", out: "runs/mine" }));
 * for await (const s of trainSteps(run, { maxSteps: 20 })) console.log(s.step, s.losses.d);
 * disposeRun(run);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import { type PetalError, petalError } from "./io/errors.ts";
import type { Progress } from "./io/checkpoint.ts";
import { Rng } from "../stages/rng.ts";
import type { Vocabulary } from "../stages/tokenize.ts";
import type { Recipe } from "../stages/recipe.ts";
import {
  type CaptionBank,
  cropAndFlip,
  type ImageStack,
  interpolationPartners,
  mismatchedCaptions,
  sampleCaptions,
} from "../stages/augment.ts";
import {
  type BatchTensors,
  decayScale,
  disposeBatch,
  disposeGan,
  emaStandingStatistics,
  type Gan,
  scaleLearningRates,
  setCaptionRivals,
  setMeanCondition,
  type StandingDraw,
  type StepLosses,
  trainStep,
} from "../stages/train_step.ts";
import { diffAugmentTensors, drawAugmentGates, drawDiffAugment } from "../stages/diffaugment.ts";
import { RIVAL_COUNT } from "../stages/match.ts";
import type { Replicas } from "./replicas.ts";

/** Training data, tokenized and decoded once: what every step draws from. */
export interface PreparedData {
  /** The captions of each image (for sample-grid captions). */
  readonly captions: readonly (readonly string[])[];
  readonly vocab: Vocabulary;
  /** Token ids of every caption of every image. */
  readonly bank: CaptionBank;
  /** Images decoded at imageSize + cropMargin. */
  readonly images: ImageStack;
}

/** A run ready to step: model, data, and the counters (its whole RNG state). */
export interface TrainingRun {
  readonly out: string;
  /** What the run trains (its checkpoints keep it). */
  readonly recipe: Recipe;
  readonly gan: Gan;
  readonly data: PreparedData;
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  /** Where the run stands; the step iterator advances it. */
  progress: Progress;
  /** The step at which this session started (0, or the resumed step). */
  readonly firstStep: number;
  /** Seconds trained before this session (from the checkpoint). */
  readonly secondsBefore: number;
  /** Seconds since this session started (the text pre-training included). */
  readonly clock: () => number;
  /** The clock's reading at the first step (after any text pre-training): img/s start here. */
  readonly stepsFrom: number;
  /** The step's replicas when it runs data-parallel (pipeline/replicas.ts); absent: one. */
  readonly replicas?: Replicas;
}

/** When to stop: whichever ends first. */
export interface Budget {
  readonly epochs?: number;
  readonly minutes?: number;
  /** Steps in all, counted from step 0 (not from a resume). */
  readonly maxSteps?: number;
  /** Checked before each step: true → stop (Ctrl-C). */
  readonly shouldStop?: () => boolean;
}

/**
 * Why a run stopped: its step or epoch budget, its minutes, a signal (Ctrl-C), or a loss
 * that was not finite (`diverged`: the step loop's `failure` says where).
 */
export type StopReason = "epochs" | "steps" | "minutes" | "signal" | "diverged";

/** What one step did, with the clock's view of the run. */
export interface StepReport {
  readonly step: number;
  readonly epoch: number;
  readonly stepInEpoch: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps?: number;
  readonly losses: StepLosses;
  readonly imagesPerSecond: number;
  /** Seconds since this session started. */
  readonly elapsed: number;
  /** Seconds trained in all, across resumes. */
  readonly seconds: number;
  /** Seconds left by whichever budget (epochs, steps, minutes) ends first. */
  readonly eta?: number;
}

/** The steps the budget allows in all (Infinity: no step or epoch budget). */
export const stepBudget = (run: TrainingRun, budget: Budget): number =>
  Math.min(budget.maxSteps ?? Infinity, (budget.epochs ?? Infinity) * run.stepsPerEpoch);

/** How much of the budget is spent (0–1): by steps or epochs, or by the clock if further. */
export function budgetSpent(run: TrainingRun, budget: Budget, elapsed: number): number {
  const steps = stepBudget(run, budget);
  const byClock = budget.minutes ? elapsed / (budget.minutes * 60) : 0;
  return Math.min(1, Math.max(Number.isFinite(steps) ? run.progress.step / steps : 0, byClock));
}

/** Stream seeded by (seed, a, b): the hash keeps neighbouring counters unrelated. */
export const streamFor = (seed: number, a: number, b: number): Rng =>
  new Rng(
    Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(a + 1, 0xc2b2ae35) ^
      Math.imul(b + 7, 0x27d4eb2f),
  );

/** A training batch of images `indices`, every draw from `rng`. */
export function buildBatch(
  gan: Gan,
  data: PreparedData,
  indices: ArrayLike<number>,
  rng: Rng,
): BatchTensors {
  const { imageSize: S, seqLen: T, zDim, condDim } = gan.model;
  const B = indices.length;
  const real = cropAndFlip(data.images, indices, S, rng);
  const right = sampleCaptions(data.bank, indices, T, rng);
  const wrong = mismatchedCaptions(data.bank, indices, T, rng);
  return {
    real: tf.tensor4d(real, [B, S, S, 3]),
    right: tf.tensor2d(right, [B, T], "int32"),
    wrong: tf.tensor2d(wrong, [B, T], "int32"),
    z: tf.tensor2d(rng.normals(B * zDim), [B, zDim]),
    eps: tf.tensor2d(rng.normals(B * condDim), [B, condDim]),
    zInt: tf.tensor2d(rng.normals(B * zDim), [B, zDim]),
    epsInt: tf.tensor2d(rng.normals(B * condDim), [B, condDim]),
    partners: tf.tensor1d(interpolationPartners(B, rng), "int32"),
    alpha: tf.tensor4d(Float32Array.from({ length: B }, () => rng.uniform()), [B, 1, 1, 1]),
    // Drawn last, and only when on: the draws above stay those of runs without it.
    ...(gan.train.diffAugment
      ? {
        augReal: diffAugmentTensors(drawDiffAugment(B, S, rng), S),
        augFake: diffAugmentTensors(drawDiffAugment(B, S, rng), S),
      }
      : {}),
    // Adaptive augmentation's gates after those, likewise.
    ...(gan.train.diffAugment && gan.train.adaTarget
      ? { gateReal: drawAugmentGates(B, rng), gateFake: drawAugmentGates(B, rng) }
      : {}),
  };
}

/** The batch of global step `step`: the epoch's shuffle, then that step's stream. */
export const batchAt = (run: TrainingRun, step: number): BatchTensors =>
  batchPartsAt(run, step, 1)[0];

/**
 * The batch of global step `step` in `parts` consecutive parts (one per replica), each
 * built as a batch of its own from the step's one stream, in order: its wrong captions
 * and GAN-INT partners come from its own part. One part is {@link batchAt}'s batch.
 */
export function batchPartsAt(run: TrainingRun, step: number, parts: number): BatchTensors[] {
  const seed = run.gan.train.seed;
  const epoch = Math.floor(step / run.stepsPerEpoch);
  const k = step % run.stepsPerEpoch;
  const order = streamFor(seed, epoch, -1).permutation(run.data.bank.length);
  const indices = order.subarray(k * run.batchSize, (k + 1) * run.batchSize);
  const rng = streamFor(seed, epoch, step);
  const cut = (i: number) => Math.round((i * indices.length) / parts);
  return Array.from(
    { length: parts },
    (_, i) => buildBatch(run.gan, run.data, indices.subarray(cut(i), cut(i + 1)), rng),
  );
}

/** A step whose work is queued and whose losses are on their way back. */
interface QueuedStep {
  readonly step: number;
  readonly read: Promise<StepLosses>;
  /** The run's counters just after it. */
  readonly progress: Progress;
}

/** Queues step `run.progress.step` (batch → D, G, EMA → dispose); advances the counters. */
function queueStep(run: TrainingRun): QueuedStep {
  const { step } = run.progress;
  const padId = run.data.vocab.padId;
  const parts = batchPartsAt(run, step, run.replicas?.size ?? 1);
  const read = run.replicas
    ? run.replicas.step(run.gan, parts, padId, step)
    : trainStep(run.gan, parts[0], padId, step);
  read.catch(() => {}); // awaited by lossesOf; this only keeps an early exit quiet
  parts.forEach(disposeBatch);
  run.progress = {
    ...run.progress,
    step: step + 1,
    epoch: Math.floor(step / run.stepsPerEpoch),
    imagesSeen: run.progress.imagesSeen + run.batchSize,
  };
  return { step, read, progress: run.progress };
}

/** The queued step's losses, which must be finite. */
async function lossesOf(
  run: TrainingRun,
  q: QueuedStep,
): Promise<E.Either<PetalError, StepLosses>> {
  const losses = await q.read;
  return [losses.d, losses.g, losses.kl].every(Number.isFinite) ? E.right(losses) : E.left(
    petalError(
      "BadArgument",
      run.out,
      `loss is not finite at step ${q.step} (d=${losses.d}, g=${losses.g}, kl=${losses.kl}); ` +
        `kept the last good checkpoint`,
      "resume with a lower --lr, or try --loss hinge",
    ),
  );
}

/**
 * One step of the run: batch → D, G, EMA → dispose; advances `run.progress`. Its losses,
 * or the error of a loss that is not finite.
 */
export const stepOnce = (run: TrainingRun): Promise<E.Either<PetalError, StepLosses>> =>
  lossesOf(run, queueStep(run));

/** The step iterator, with the reason it stopped once it has. */
export interface StepLoop extends AsyncIterable<StepReport> {
  readonly stoppedBy: StopReason | undefined;
  /** Why it stopped early when a loss was not finite (`stoppedBy` is then `diverged`). */
  readonly failure: PetalError | undefined;
}

/** Why the run should stop before its next step, if it should. */
function stopReason(run: TrainingRun, budget: Budget, elapsed: number): StopReason | undefined {
  const steps = stepBudget(run, budget);
  if (run.progress.step >= steps) {
    return (budget.maxSteps ?? Infinity) < (budget.epochs ?? Infinity) * run.stepsPerEpoch
      ? "steps"
      : "epochs";
  }
  if (budget.shouldStop?.()) return "signal";
  if (elapsed >= (budget.minutes ?? Infinity) * 60) return "minutes";
  return undefined;
}

/** The report of the step just done: img/s and ETA from this session's clock. */
function report(
  run: TrainingRun,
  budget: Budget,
  losses: StepLosses,
  elapsed: number,
  progress: Progress = run.progress,
): StepReport {
  const { step, epoch } = progress;
  const done = step - run.firstStep;
  const steps = stepBudget(run, budget);
  const eta = Math.min(
    (steps - step) * (elapsed / done),
    (budget.minutes ?? Infinity) * 60 - elapsed,
  );
  return {
    step,
    epoch,
    stepInEpoch: ((step - 1) % run.stepsPerEpoch) + 1,
    stepsPerEpoch: run.stepsPerEpoch,
    totalSteps: Number.isFinite(steps) ? steps : undefined,
    losses,
    imagesPerSecond: (done * run.batchSize) / Math.max(elapsed - run.stepsFrom, 1e-9),
    elapsed,
    seconds: run.secondsBefore + elapsed,
    eta: Number.isFinite(eta) ? eta : undefined,
  };
}

/**
 * Steps `run` until the budget ends, yielding a report after each step. With `lrDecay`,
 * the learning rates fall linearly to 0 over the budget's last part. The loop stops
 * before a step when the step or epoch budget is spent, `shouldStop` says so, or the
 * minutes are up; `stoppedBy` then says which. A loss that is not finite ends it too
 * (`diverged`), with the error in `failure`.
 *
 * On webgpu a step's losses are awaited only once the next step of the same epoch is
 * queued, so the GPU never idles while they come back (no per-step sync). A report then
 * comes with `run.progress` one step ahead; the last step of an epoch, and the last
 * before a stop, are reported with nothing queued after them (checkpoints stay exact).
 *
 * @example Two steps of a script's own loop, and why it stopped.
 * ```ts
 * import { disposeRun, ensureSyntheticData, prepareTraining, recipe, trainSteps, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`,
 *   recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 }) }));
 * const steps = trainSteps(run, { maxSteps: 2 });
 * for await (const s of steps) console.log(s.step, s.stepInEpoch, s.losses.d > 0); // 1 1 true, then 2 2 true
 * console.log(steps.stoppedBy); // "steps"
 * disposeRun(run);
 * ```
 */
export function trainSteps(run: TrainingRun, budget: Budget = {}): StepLoop {
  let stoppedBy: StopReason | undefined;
  let failure: PetalError | undefined;
  const lagged = tf.getBackend() === "webgpu";
  /** The step's report, or undefined (and the loop's failure set) when it diverged. */
  const reportOf = async (q: QueuedStep) => {
    const losses = await lossesOf(run, q);
    if (E.isRight(losses)) return report(run, budget, losses.right, run.clock(), q.progress);
    [stoppedBy, failure] = ["diverged", losses.left];
  };
  async function* loop(): AsyncGenerator<StepReport> {
    let pending: QueuedStep | undefined;
    while ((stoppedBy = stopReason(run, budget, run.clock())) === undefined) {
      const { lrDecay } = run.gan.train;
      if (lrDecay) {
        scaleLearningRates(run.gan, decayScale(budgetSpent(run, budget, run.clock()), lrDecay));
      }
      const queued = queueStep(run);
      if (pending) {
        const r = await reportOf(pending);
        if (!r) return;
        yield r;
      }
      pending = queued;
      if (!lagged || queued.progress.step % run.stepsPerEpoch === 0) {
        pending = undefined;
        const r = await reportOf(queued);
        if (!r) return;
        yield r;
      }
    }
    const last = pending && await reportOf(pending);
    if (last) yield last;
  }
  return {
    [Symbol.asyncIterator]: loop,
    get stoppedBy() {
      return stoppedBy;
    },
    get failure() {
      return failure;
    },
  };
}

/** Batches (of 64) of a standing-statistics pass: 8 measured as good as 40 (0.3431). */
export const STANDING_BATCHES = 8;

/**
 * Standing statistics for the run's EMA generator (stages/train_step.ts) and its mean
 * condition (what drawing's guidance pushes away from), from the same training captions
 * and noise of one fixed stream, and the matcher's rivals from another: the same weights
 * always get the same statistics, so a resumed run's checkpoints stay those of an
 * uninterrupted one. Returns how many batch-norm variables were set.
 */
export function settleEma(run: TrainingRun, batches = STANDING_BATCHES): number {
  const { seqLen, zDim } = run.gan.model;
  const rng = streamFor(run.gan.train.seed, -1, -2);
  const B = 64;
  const draws: StandingDraw[] = Array.from({ length: batches }, () => {
    const indices = Int32Array.from({ length: B }, () => rng.int(run.data.bank.length));
    return {
      ids: tf.tensor2d(sampleCaptions(run.data.bank, indices, seqLen, rng), [B, seqLen], "int32"),
      z: tf.tensor2d(rng.normals(B * zDim), [B, zDim]),
    };
  });
  try {
    setMeanCondition(run.gan, draws.map((d) => d.ids), run.data.vocab.padId);
    keepRivals(run);
    return emaStandingStatistics(run.gan, draws, run.data.vocab.padId);
  } finally {
    tf.dispose(draws.flatMap((d) => [d.ids, d.z]));
  }
}

/** Captions per pass of the rivals' text encoding (reed's encoder: 0.15 GiB a pass of 64). */
const RIVAL_BATCH = 64;

/**
 * The matcher's rivals (stages/match.ts `RIVAL_COUNT` training captions, one of a random
 * image each, from a fixed stream of their own): what a pick weighs a candidate's own
 * caption against. Nothing where the run keeps no matcher.
 */
function keepRivals(run: TrainingRun): void {
  if (!run.gan.match) return;
  const { seqLen } = run.gan.model;
  const rng = streamFor(run.gan.train.seed, -1, -3);
  const indices = Int32Array.from({ length: RIVAL_COUNT }, () => rng.int(run.data.bank.length));
  const captions = sampleCaptions(run.data.bank, indices, seqLen, rng);
  const batches = Array.from({ length: Math.ceil(RIVAL_COUNT / RIVAL_BATCH) }, (_, i) => {
    const rows = Math.min(RIVAL_BATCH, RIVAL_COUNT - i * RIVAL_BATCH);
    const from = i * RIVAL_BATCH * seqLen;
    return tf.tensor2d(captions.subarray(from, from + rows * seqLen), [rows, seqLen], "int32");
  });
  try {
    setCaptionRivals(run.gan, batches, run.data.vocab.padId);
  } finally {
    tf.dispose(batches);
  }
}

/**
 * Frees the run's tensors (model and optimisers) and stops its replicas' workers.
 *
 * @example A prepared run holds tensors until it is disposed.
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { disposeRun, ensureSyntheticData, prepareTraining, recipe, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const before = tf.memory().numTensors;
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`,
 *   recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 }) }));
 * disposeRun(run);
 * console.log(tf.memory().numTensors - before); // 0
 * ```
 */
export function disposeRun(run: TrainingRun): void {
  run.replicas?.close();
  disposeGan(run.gan);
}
