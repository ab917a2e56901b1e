/**
 * The train pipeline, as the algorithm reads:
 *
 *   load → tokenize → cache images → for each epoch {augment → embed → D step → G step}
 *   → checkpoint
 *
 * Files, clocks and randomness live here; the stages it composes are pure functions.
 * Every random draw comes from a stream seeded by (seed, epoch) or (seed, step), so the
 * whole RNG state is the counters: `--resume` replays nothing and continues exactly.
 *
 * @example
 * ```ts
 * import { train } from "./train.ts";
 * const result = await train({ data: ".cache/synthetic", out: "runs/demo", epochs: 2 })();
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { type CaptionedImage, loadReedFolder } from "./data.ts";
import { type ImageStack, loadImageStack, toBytes, writeFileAtomic } from "./images.ts";
import { ioError, type PetalError, petalError, PetalFailure } from "./errors.ts";
import { Rng } from "./rng.ts";
import { renderGrid } from "./grid.ts";
import { pretrainTextEncoder } from "./pretrain.ts";
import { loadTaskVocabulary } from "./task_files.ts";
import { writeLossPlot } from "./plots.ts";
import {
  checkpointPath,
  disposeCheckpoint,
  type Progress,
  readCheckpoint,
  restoreGan,
  writeCheckpoint,
} from "./checkpoint.ts";
import {
  buildVocabulary,
  tokenizeAll,
  type Vocabulary,
  vocabularyFromJson,
  vocabularyToJson,
} from "../stages/tokenize.ts";
import {
  type CaptionBank,
  cropAndFlip,
  interpolationPartners,
  mismatchedCaptions,
  sampleCaptions,
} from "../stages/augment.ts";
import {
  DEFAULT_LR,
  defaultTrainConfig,
  modelConfig,
  type SizeName,
  type TrainConfig,
} from "../stages/config.ts";
import {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  embedCaptions,
  type Gan,
  sample,
  type StepLosses,
  trainStep,
} from "../stages/train_step.ts";

export interface TrainOptions {
  readonly data: string;
  readonly out: string;
  readonly size?: SizeName;
  readonly train?: Partial<TrainConfig>;
  readonly epochs?: number;
  readonly minutes?: number;
  /** Stop after this many steps in all (tests, and `--steps`). */
  readonly maxSteps?: number;
  readonly resume?: boolean;
  /** Where decoded images are cached between runs. */
  readonly cacheDir?: string;
  /** The task's dictionary/ folder: use its vocabulary (ids equal the task's). */
  readonly dictionary?: string;
  /** Contrastive pre-training steps for the text encoder before a fresh run (0: none). */
  readonly pretrainSteps?: number;
  /** Captions of the sample grid; defaults to captions of evenly spaced training images. */
  readonly sampleCaptions?: readonly string[];
  /** Checked between steps: true → checkpoint and stop (Ctrl-C). */
  readonly shouldStop?: () => boolean;
  readonly onStep?: (s: StepReport) => void;
  readonly log?: (line: string) => void;
}

export interface StepReport {
  readonly step: number;
  readonly epoch: number;
  readonly stepInEpoch: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps?: number;
  readonly losses: StepLosses;
  readonly imagesPerSecond: number;
  readonly elapsed: number;
  /** Seconds left by whichever budget (epochs, steps, minutes) ends first. */
  readonly eta?: number;
}

export interface TrainResult {
  readonly checkpoint: string;
  readonly progress: Progress;
  readonly stoppedBy: "epochs" | "steps" | "minutes" | "signal";
  readonly losses: readonly StepLosses[];
  readonly imagesPerSecond: number;
}

/** What the loop needs, prepared once. */
interface Prepared {
  readonly records: readonly CaptionedImage[];
  readonly vocab: Vocabulary;
  readonly bank: CaptionBank;
  readonly images: ImageStack;
}

const SAMPLE_ROWS = 6;
const SAMPLE_COLS = 6;

/** Stream seeded by (seed, a, b): the hash keeps neighbouring counters unrelated. */
const streamFor = (seed: number, a: number, b: number) =>
  new Rng(
    Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(a + 1, 0xc2b2ae35) ^
      Math.imul(b + 7, 0x27d4eb2f),
  );

function prepare(
  opts: TrainOptions,
  vocabFromCheckpoint: readonly string[] | undefined,
  loadSize: number,
  seqLen: number,
) {
  // The vocabulary: the checkpoint's on resume, else the task's dictionary when given
  // (ids then equal the task's), else built from the training captions.
  const vocabulary = (records: readonly CaptionedImage[]): TE.TaskEither<PetalError, Vocabulary> =>
    vocabFromCheckpoint
      ? TE.right(vocabularyFromJson(vocabFromCheckpoint))
      : opts.dictionary
      ? loadTaskVocabulary(opts.dictionary)
      : TE.right(buildVocabulary(records.flatMap((r) => r.captions)));
  return pipe(
    loadReedFolder(opts.data),
    TE.chain(({ records }) => pipe(vocabulary(records), TE.map((vocab) => ({ records, vocab })))),
    TE.map(({ records, vocab }) => {
      const bank = records.map((r) => tokenizeAll(vocab, r.captions, seqLen));
      return { records, vocab, bank };
    }),
    TE.chain((p) =>
      pipe(
        loadImageStack(
          p.records.map((r) => r.imagePath),
          loadSize,
          opts.cacheDir,
          (done, total) => {
            if (done === total || done % 1024 === 0) opts.log?.(`decoding images ${done}/${total}`);
          },
        ),
        TE.map((images): Prepared => ({ ...p, images })),
      )
    ),
  );
}

/** One training batch as tensors, every draw from `rng`. */
function makeBatch(gan: Gan, prep: Prepared, indices: Int32Array, rng: Rng): BatchTensors {
  const { model } = gan;
  const B = indices.length;
  const T = model.seqLen;
  const real = cropAndFlip(prep.images, indices, model.imageSize, rng);
  const right = sampleCaptions(prep.bank, indices, T, rng);
  const wrong = mismatchedCaptions(prep.bank, indices, T, rng);
  return {
    real: tf.tensor4d(real, [B, model.imageSize, model.imageSize, 3]),
    right: tf.tensor2d(right, [B, T], "int32"),
    wrong: tf.tensor2d(wrong, [B, T], "int32"),
    z: tf.tensor2d(rng.normals(B * model.zDim), [B, model.zDim]),
    eps: tf.tensor2d(rng.normals(B * model.condDim), [B, model.condDim]),
    zInt: tf.tensor2d(rng.normals(B * model.zDim), [B, model.zDim]),
    epsInt: tf.tensor2d(rng.normals(B * model.condDim), [B, model.condDim]),
    partners: tf.tensor1d(interpolationPartners(B, rng), "int32"),
    alpha: tf.tensor4d(Float32Array.from({ length: B }, () => rng.uniform()), [B, 1, 1, 1]),
  };
}

/** The per-epoch sample sheet: fixed captions × fixed noises, from the EMA generator. */
async function writeSampleGrid(
  gan: Gan,
  vocab: Vocabulary,
  captions: readonly string[],
  seed: number,
  path: string,
) {
  const rng = new Rng(seed + 999);
  const z = tf.tensor2d(rng.normals(SAMPLE_COLS * gan.model.zDim), [SAMPLE_COLS, gan.model.zDim]);
  const rows = [];
  for (const caption of captions) {
    const pixels = tf.tidy(() => {
      const ids = tf.tensor2d(
        tokenizeAll(vocab, Array(SAMPLE_COLS).fill(caption), gan.model.seqLen),
        [
          SAMPLE_COLS,
          gan.model.seqLen,
        ],
        "int32",
      );
      return sample(gan, z, embedCaptions(gan, ids, vocab.padId));
    });
    const data = await pixels.data();
    pixels.dispose();
    const n = gan.model.imageSize ** 2 * 3;
    rows.push({
      label: caption,
      images: Array.from(
        { length: SAMPLE_COLS },
        (_, i) => toBytes(data.subarray(i * n, (i + 1) * n)),
      ),
    });
  }
  z.dispose();
  await writeFileAtomic(path, await renderGrid(rows, gan.model.imageSize));
}

const LOG_HEADER = "step,epoch,loss_d,loss_g,kl,img_per_s,seconds";

/** Keeps the loss log consistent with a resumed checkpoint: rows after its step go. */
async function openLossLog(path: string, resumeStep: number | undefined): Promise<Deno.FsFile> {
  if (resumeStep === undefined) {
    await writeFileAtomic(path, LOG_HEADER + "\n");
  } else {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch { /* a resume into a fresh folder starts a new log */ }
    const kept = text.split("\n").filter((l, i) =>
      i > 0 && l && Number(l.split(",")[0]) <= resumeStep
    );
    await writeFileAtomic(path, [LOG_HEADER, ...kept].join("\n") + "\n");
  }
  return await Deno.open(path, { append: true });
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));

/** The whole train pipeline. */
export const train = (opts: TrainOptions): TE.TaskEither<PetalError, TrainResult> =>
  TE.tryCatch(
    () => runTraining(opts),
    (e) => (e instanceof PetalFailure ? e.error : ioError(opts.out, "see the message above")(e)),
  );

async function runTraining(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? (() => {});
  const ck = opts.resume ? await readCheckpoint(opts.out) : undefined;
  // A resume keeps the run's settings; only the learning rates may be changed (e.g. lower
  // after a NaN stop).
  const lrOverrides = Object.fromEntries(
    Object.entries(opts.train ?? {}).filter(([k]) => k === "lrG" || k === "lrD"),
  ) as Partial<TrainConfig>;
  const size = opts.size ?? ck?.header.model.size ?? "small";
  const trainCfg = ck
    ? { ...ck.header.train, ...lrOverrides }
    : defaultTrainConfig({ lrG: DEFAULT_LR[size], lrD: DEFAULT_LR[size], ...opts.train });
  const seqLen = ck?.header.model.seqLen ?? modelConfig(size, 1).seqLen;
  const imageSize = modelConfig(size, 1).imageSize;
  const prepResult = await prepare(
    opts,
    ck?.header.vocabulary,
    imageSize + trainCfg.cropMargin,
    seqLen,
  )();
  if (prepResult._tag === "Left") throw new PetalFailure(prepResult.left);
  const prep = prepResult.right;
  const model = modelConfig(size, prep.vocab.size);

  let gan: Gan;
  let progress: Progress;
  if (ck) {
    gan = await restoreGan(ck, checkpointPath(opts.out), model, lrOverrides);
    progress = ck.header.progress;
    disposeCheckpoint(ck);
    log(
      `resumed from ${checkpointPath(opts.out)} at step ${progress.step} (epoch ${progress.epoch})`,
    );
  } else {
    gan = createGan(model, trainCfg, trainCfg.seed);
    progress = { step: 0, epoch: 0, imagesSeen: 0, seconds: 0 };
    if (opts.pretrainSteps) {
      const losses = await pretrainTextEncoder(gan, prep.images, prep.bank, prep.vocab.padId, {
        steps: opts.pretrainSteps,
        seed: trainCfg.seed,
      });
      log(
        `text encoder pre-trained (contrastive): loss ${losses[0].toFixed(3)} → ${
          losses.at(-1)!.toFixed(3)
        }`,
      );
    }
  }
  const seed = trainCfg.seed;
  const B = Math.min(trainCfg.batchSize, prep.records.length);
  const stepsPerEpoch = Math.floor(prep.records.length / B);
  if (stepsPerEpoch < 1) {
    throw new PetalFailure(
      petalError(
        "NoImages",
        opts.data,
        "fewer images than one batch",
        "add images or lower --batch",
      ),
    );
  }
  const sampleCaptions_ = opts.sampleCaptions ??
    Array.from(
      { length: SAMPLE_ROWS },
      (_, i) => prep.records[Math.floor((i * prep.records.length) / SAMPLE_ROWS)].captions[0],
    );

  await Deno.mkdir(`${opts.out}/samples`, { recursive: true });
  const lossLog = await openLossLog(`${opts.out}/losses.csv`, ck ? progress.step : undefined);
  const enc = new TextEncoder();
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const secondsBefore = progress.seconds;
  const save = async () => {
    progress = { ...progress, seconds: secondsBefore + elapsed() };
    await writeLossPlot(opts.out); // OUT/losses.png at each epoch end and at the end
    return await writeCheckpoint(opts.out, gan, progress, vocabularyToJson(prep.vocab));
  };
  const losses: StepLosses[] = [];
  const epochs = opts.epochs ?? Infinity;
  const stepBudget = Math.min(opts.maxSteps ?? Infinity, epochs * stepsPerEpoch);
  const timeBudget = (opts.minutes ?? Infinity) * 60;
  const firstStep = progress.step;
  // The run's budget, for the training page's ETA (docs/serve.md).
  await writeFileAtomic(
    `${opts.out}/budget.json`,
    JSON.stringify({
      ...(Number.isFinite(stepBudget) ? { totalSteps: stepBudget } : {}),
      ...(Number.isFinite(timeBudget)
        ? { deadline: new Date(Date.now() + timeBudget * 1000).toISOString() }
        : {}),
    }),
  );
  let stoppedBy: TrainResult["stoppedBy"] = (opts.maxSteps ?? Infinity) < epochs * stepsPerEpoch
    ? "steps"
    : "epochs";
  let path = checkpointPath(opts.out);
  // On webgpu losses are read one step late: step k's read-back is awaited after step k+1
  // is queued, so the GPU never waits idle for it (no per-step sync). On the CPU backends
  // the values are there at once, and the log's timings stay per step.
  const lagged = tf.getBackend() === "webgpu";
  type Pending = { read: Promise<StepLosses>; step: number; epoch: number; k: number };
  let pending: Pending | undefined;
  const record = async ({ read, step, epoch, k }: Pending) => {
    const l = await read;
    if (![l.d, l.g, l.kl].every(Number.isFinite)) {
      throw new PetalFailure(petalError(
        "BadArgument",
        opts.out,
        `loss is not finite at step ${step - 1} (d=${l.d}, g=${l.g}, kl=${l.kl}); ` +
          `kept the last good checkpoint`,
        "resume with a lower --lr, or try --loss hinge",
      ));
    }
    losses.push(l);
    const secs = elapsed();
    const ips = ((step - firstStep) * B) / secs;
    await lossLog.write(enc.encode(
      `${step},${epoch},${fmt(l.d)},${fmt(l.g)},${fmt(l.kl)},${ips.toFixed(2)},${
        (secondsBefore + secs).toFixed(1)
      }\n`,
    ));
    const stepsLeft = stepBudget - step;
    const perStep = secs / (step - firstStep);
    const eta = Math.min(stepsLeft * perStep, timeBudget - secs);
    opts.onStep?.({
      step,
      epoch,
      stepInEpoch: k + 1,
      stepsPerEpoch,
      totalSteps: Number.isFinite(stepBudget) ? stepBudget : undefined,
      losses: l,
      imagesPerSecond: ips,
      elapsed: secs,
      eta: Number.isFinite(eta) ? eta : undefined,
    });
  };
  const flush = async () => {
    const last = pending;
    pending = undefined;
    if (last) await record(last);
  };
  try {
    outer: while (progress.step < stepBudget) {
      const epoch = Math.floor(progress.step / stepsPerEpoch);
      const order = streamFor(seed, epoch, -1).permutation(prep.records.length);
      for (let k = progress.step % stepsPerEpoch; k < stepsPerEpoch; k++) {
        if (progress.step >= stepBudget) break outer;
        if (opts.shouldStop?.()) {
          stoppedBy = "signal";
          break outer;
        }
        if (elapsed() >= timeBudget) {
          stoppedBy = "minutes";
          break outer;
        }
        const rng = streamFor(seed, epoch, progress.step);
        const batch = makeBatch(gan, prep, order.subarray(k * B, (k + 1) * B), rng);
        const read = trainStep(gan, batch, prep.vocab.padId, progress.step);
        read.catch(() => {}); // awaited by record(); this only keeps an early exit quiet
        disposeBatch(batch);
        progress = {
          ...progress,
          step: progress.step + 1,
          epoch,
          imagesSeen: progress.imagesSeen + B,
        };
        const previous = pending;
        pending = { read, step: progress.step, epoch, k };
        if (previous) await record(previous);
        if (!lagged) await flush();
      }
      await flush();
      // End of an epoch: sample sheet and checkpoint.
      const epochDone = Math.floor(progress.step / stepsPerEpoch);
      if (progress.step % stepsPerEpoch === 0) {
        progress = { ...progress, epoch: epochDone };
        const grid = `${opts.out}/samples/epoch_${String(epochDone).padStart(4, "0")}.png`;
        await writeSampleGrid(gan, prep.vocab, sampleCaptions_, seed, grid);
        await Deno.copyFile(grid, `${opts.out}/samples/latest.png`);
        path = await save();
        log(`epoch ${epochDone}: checkpoint ${path}, samples ${grid}`);
      }
    }
    await flush();
    if (progress.step % stepsPerEpoch !== 0 || progress.step === firstStep) {
      await writeSampleGrid(
        gan,
        prep.vocab,
        sampleCaptions_,
        seed,
        `${opts.out}/samples/latest.png`,
      );
      path = await save();
    }
  } finally {
    lossLog.close();
    disposeGan(gan);
  }
  return {
    checkpoint: path,
    progress,
    stoppedBy,
    losses,
    imagesPerSecond: ((progress.step - firstStep) * B) / Math.max(elapsed(), 1e-9),
  };
}
