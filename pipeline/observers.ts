/**
 * The training run's bookkeeping, as observers the train pipeline calls: the loss log
 * (`losses.csv`), the loss plot (`losses.png`), the budget for the training page's ETA
 * (`budget.json`), the sample grids (`samples/`), and a per-step callback. A script's
 * own loop can call the same ones, or write its own.
 *
 * @example
 * ```ts
 * import { lossLog, notifyStep, runObservers } from "./observers.ts";
 * const observers = runObservers([lossLog(), notifyStep((s) => console.log(s.step))]);
 * await observers.close(); // a loop calls start(run, budget), step(report, run), ... close()
 * ```
 */
import { writeFileAtomic } from "./io/images.ts";
import { renderGrid } from "./io/grid.ts";
import { writeLossPlot } from "./io/plots.ts";
import { type Budget, stepBudget, type StepReport, type TrainingRun } from "./steps.ts";
import type { Vocabulary } from "../stages/tokenize.ts";
import type { Gan } from "../stages/train_step.ts";
import { byPosition, drawPixels } from "./draw.ts";

export type { StepReport };

type Awaitable = void | Promise<void>;

/** Hooks a training loop calls; every one is optional. */
export interface TrainObserver {
  /** Once, before the first step of this session. */
  readonly start?: (run: TrainingRun, budget: Budget) => Awaitable;
  /** After every step. */
  readonly step?: (report: StepReport, run: TrainingRun) => Awaitable;
  /** After the last step of an epoch, before its checkpoint (`epoch`: epochs done). */
  readonly epochEnd?: (epoch: number, run: TrainingRun) => Awaitable;
  /** When the run stops inside an epoch (or before any step), before the last checkpoint. */
  readonly stopped?: (run: TrainingRun) => Awaitable;
  /** Always, last, even after an error. */
  readonly close?: () => Awaitable;
}

/**
 * Several observers as one, called in order.
 *
 * @example Two observers as one: each hook calls them in turn.
 * ```ts
 * import { runObservers } from "../mod.ts";
 *
 * const calls: string[] = [];
 * const all = runObservers([{ close: () => void calls.push("a") }, { close: () => void calls.push("b") }]);
 * await all.close();
 * console.log(calls); // [ "a", "b" ]
 * ```
 */
export function runObservers(observers: readonly TrainObserver[]): Required<TrainObserver> {
  const each =
    <K extends keyof TrainObserver>(key: K) =>
    async (...args: Parameters<NonNullable<TrainObserver[K]>>) => {
      for (const o of observers) {
        await (o[key] as ((...a: typeof args) => Awaitable) | undefined)?.(...args);
      }
    };
  return {
    start: each("start"),
    step: each("step"),
    epochEnd: each("epochEnd"),
    stopped: each("stopped"),
    close: each("close"),
  };
}

/** Calls `onStep` after every step (the task's progress bar). */
export const notifyStep = (onStep: (s: StepReport) => void): TrainObserver => ({
  step: (s) => onStep(s),
});

/** The loss log's header. */
export const LOSS_LOG_HEADER = "step,epoch,loss_d,loss_g,kl,img_per_s,seconds";

const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));

/** The loss log's header of a run with adaptive augmentation: its p after each step, last. */
export const ADA_LOSS_LOG_HEADER = `${LOSS_LOG_HEADER},augment_p`;

/** One loss-log row (with adaptive augmentation's p last, where the step reports it). */
export const lossLogRow = (s: StepReport): string =>
  `${s.step},${s.epoch},${fmt(s.losses.d)},${fmt(s.losses.g)},${fmt(s.losses.kl)},${
    s.imagesPerSecond.toFixed(2)
  },${s.seconds.toFixed(1)}${s.losses.augment === undefined ? "" : `,${fmt(s.losses.augment)}`}`;

/**
 * `OUT/losses.csv`, a row per step. A fresh run starts a new log; a resumed one keeps the
 * rows up to its checkpoint's step and drops any after it.
 *
 * @example The loss log of a script's own loop: its header and a row per step.
 * ```ts
 * import { disposeRun, ensureSyntheticData, lossLog, prepareTraining, recipe, runObservers, trainSteps, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`,
 *   recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 }) }));
 * const observers = runObservers([lossLog()]);
 * await observers.start(run, { maxSteps: 1 });
 * for await (const s of trainSteps(run, { maxSteps: 1 })) await observers.step(s, run);
 * await observers.close();
 * disposeRun(run);
 * console.log((await Deno.readTextFile(`${dir}/run/losses.csv`)).split("\n")[0]);
 * // step,epoch,loss_d,loss_g,kl,img_per_s,seconds
 * ```
 */
export function lossLog(): TrainObserver {
  let file: Deno.FsFile | undefined;
  const enc = new TextEncoder();
  return {
    start: async (run) => {
      const path = `${run.out}/losses.csv`;
      await Deno.mkdir(run.out, { recursive: true });
      const resumed = run.firstStep > 0;
      let text = "";
      if (resumed) {
        try {
          text = await Deno.readTextFile(path);
        } catch { /* a resume into a fresh folder starts a new log */ }
      }
      const kept = text.split("\n").filter((l, i) =>
        i > 0 && l && Number(l.split(",")[0]) <= run.firstStep
      );
      const header = run.gan.train.adaTarget ? ADA_LOSS_LOG_HEADER : LOSS_LOG_HEADER;
      await writeFileAtomic(path, [header, ...kept].join("\n") + "\n");
      file = await Deno.open(path, { append: true });
    },
    step: async (s) => {
      await file?.write(enc.encode(lossLogRow(s) + "\n"));
    },
    close: () => file?.close(),
  };
}

/** `OUT/losses.png` at each epoch end and when the run stops. */
export const lossPlot = (): TrainObserver => ({
  epochEnd: async (_, run) => void await writeLossPlot(run.out),
  stopped: async (run) => void await writeLossPlot(run.out),
});

/** `OUT/budget.json`: total steps and deadline, for the training page's ETA (docs/serve.md). */
export const budgetFile = (): TrainObserver => ({
  start: async (run, budget) => {
    await Deno.mkdir(run.out, { recursive: true });
    const steps = stepBudget(run, budget);
    const seconds = (budget.minutes ?? Infinity) * 60;
    await writeFileAtomic(
      `${run.out}/budget.json`,
      JSON.stringify({
        ...(Number.isFinite(steps) ? { totalSteps: steps } : {}),
        ...(Number.isFinite(seconds)
          ? { deadline: new Date(Date.now() + seconds * 1000).toISOString() }
          : {}),
      }),
    );
  },
});

const SAMPLE_ROWS = 6;
const SAMPLE_COLS = 6;

/** Captions of evenly spaced training images: the default rows of the sample grid. */
export const defaultSampleCaptions = (run: TrainingRun): string[] => {
  const all = run.data.captions;
  return Array.from(
    { length: SAMPLE_ROWS },
    (_, i) => all[Math.floor((i * all.length) / SAMPLE_ROWS)][0],
  );
};

/** The path of epoch `n`'s sample grid. */
export const sampleGridPath = (out: string, epoch: number) =>
  `${out}/samples/epoch_${String(epoch).padStart(4, "0")}.png`;

/**
 * A sample sheet: one row per caption × 6 columns drawn by the EMA generator through the
 * drawing path (pipeline/draw.ts), column j with id j under `seed` (the noise policy's
 * position rule: every row shares column j's noise), one candidate each; captions
 * written beside the rows; a PNG at `path`.
 */
export async function writeSampleGrid(
  gan: Gan,
  vocab: Vocabulary,
  captions: readonly string[],
  seed: number,
  path: string,
): Promise<void> {
  const rows = [];
  for (const caption of captions) {
    const cells = byPosition(Array(SAMPLE_COLS).fill(caption));
    rows.push({ label: caption, images: await drawPixels({ gan, vocab }, cells, { seed }) });
  }
  await writeFileAtomic(path, await renderGrid(rows, gan.model.imageSize));
}

/**
 * `samples/epoch_NNNN.png` after every epoch, and `samples/latest.png` (a copy of the
 * last epoch's, or a fresh one when the run stops inside an epoch).
 */
export function sampleGrids(captions?: readonly string[]): TrainObserver {
  const rows = (run: TrainingRun) => captions ?? defaultSampleCaptions(run);
  const latest = (run: TrainingRun) => `${run.out}/samples/latest.png`;
  return {
    start: async (run) => await Deno.mkdir(`${run.out}/samples`, { recursive: true }),
    epochEnd: async (epoch, run) => {
      const grid = sampleGridPath(run.out, epoch);
      await writeSampleGrid(run.gan, run.data.vocab, rows(run), run.gan.train.seed, grid);
      await Deno.copyFile(grid, latest(run));
    },
    stopped: (run) =>
      writeSampleGrid(run.gan, run.data.vocab, rows(run), run.gan.train.seed, latest(run)),
  };
}

/**
 * Every N steps, a sample grid at `samples/step_NNNNNN.png` (for a script's own loop).
 *
 * @example A sample grid of two captions after every step.
 * ```ts
 * import { disposeRun, ensureSyntheticData, prepareTraining, recipe, runObservers, sampleEvery, trainSteps, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const run = await unwrap(prepareTraining({ data, out: `${dir}/run`,
 *   recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 }) }));
 * const observers = runObservers([sampleEvery(1, ["a red flower", "a blue flower"])]);
 * for await (const s of trainSteps(run, { maxSteps: 1 })) await observers.step(s, run);
 * disposeRun(run);
 * console.log([...Deno.readDirSync(`${dir}/run/samples`)].map((e) => e.name)); // [ "step_000001.png" ]
 * ```
 */
export const sampleEvery = (every: number, captions: readonly string[]): TrainObserver => ({
  step: async (s, run) => {
    if (s.step % every !== 0) return;
    const path = `${run.out}/samples/step_${String(s.step).padStart(6, "0")}.png`;
    await Deno.mkdir(`${run.out}/samples`, { recursive: true });
    await writeSampleGrid(run.gan, run.data.vocab, captions, run.gan.train.seed, path);
  },
});
