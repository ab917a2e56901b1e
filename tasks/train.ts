/**
 * `deno task train`: trains the text-to-flower GAN. Without --data it trains on
 * ../shared/oxford102 when that folder exists, else on the built-in synthetic set.
 * Run with --help for the flags.
 */
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { PRETRAIN_CLOCK_SHARE, readRecipe, train, type TrainOptions } from "../pipeline/train.ts";
import type { StepReport } from "../pipeline/steps.ts";
import { type PetalError, unwrap } from "../pipeline/io/errors.ts";
import { DEFAULT_EPOCHS, type Recipe } from "../stages/recipe.ts";
import { RECIPE_FLAGS, recipeFromFlags, resumedRecipe } from "./recipe.ts";
import { defineTask, type FlagValues } from "./flags.ts";
import { BACKEND_FLAG, reportFallbacks, resolveData, runTask, selectBackend } from "./cli.ts";
import { progressLine } from "./progress.ts";

export const TRAIN = defineTask({
  name: "train",
  summary: "trains the text-to-flower GAN; writes checkpoint, losses and sample grids",
  flags: {
    data: {
      type: "string",
      arg: "DIR",
      help: "Reed-layout folder: `images/` (or `jpg/`) + `text_c10/class_*/image_*.txt`",
      defaultText: "`../shared/oxford102`, else synthetic",
    },
    synthetic: {
      type: "boolean",
      help: "train on the built-in synthetic flowers (written to `.cache/synthetic`)",
    },
    dictionary: {
      type: "string",
      arg: "DIR",
      help: "use the task's `dictionary/` (word2Id.npy, id2Word.npy) as vocabulary",
    },
    out: {
      type: "string",
      arg: "DIR",
      default: "runs/latest",
      help: "where `checkpoint.petal`, `losses.csv`, `losses.png` and `samples/` go",
    },
    epochs: {
      type: "number",
      integer: true,
      min: 1,
      help: "stop after N epochs of GAN steps (the text pre-training comes first)",
      defaultText: `${DEFAULT_EPOCHS} (when no other budget)`,
    },
    minutes: {
      type: "number",
      arg: "M",
      min: 0,
      help: `stop after M minutes in all, loading and text pre-training (at most ${
        PRETRAIN_CLOCK_SHARE * 100
      }% of M) included`,
    },
    steps: {
      type: "number",
      integer: true,
      min: 0,
      help: "stop after N GAN steps in all (the text pre-training comes first)",
    },
    resume: {
      type: "boolean",
      help:
        "continue from `DIR/checkpoint.petal`, exactly, with its recipe (only --lr and --lr-d may change)",
    },
    ...RECIPE_FLAGS,
    cache: { type: "string", arg: "DIR", default: ".cache/images", help: "decoded-image cache" },
    backend: BACKEND_FLAG,
    quiet: { type: "boolean", help: "no progress bar" },
  },
});

type Values = FlagValues<typeof TRAIN.flags>;

/**
 * The recipe the flags ask for: on `--resume` the checkpoint's, with the flags given on
 * top (train() refuses any but the learning rates that differ from it).
 */
export const trainRecipe = (values: Values): TE.TaskEither<PetalError, Recipe> =>
  values.resume
    ? pipe(readRecipe(values.out), TE.map((stored) => resumedRecipe(stored, values)))
    : TE.right(recipeFromFlags(values));

/** The flags as the pipeline's options (a budget only where one was given). */
export const trainOptions = (values: Values, data: string, recipe: Recipe): TrainOptions => ({
  data,
  out: values.out,
  recipe,
  epochs: values.epochs,
  minutes: values.minutes,
  maxSteps: values.steps,
  resume: values.resume,
  dictionary: values.dictionary,
  cacheDir: values.cache,
});

/** Ctrl-C: finish the step, checkpoint, stop; a second Ctrl-C quits at once. */
function stopOnSigint() {
  let requested = false;
  const listener = () => {
    if (requested) Deno.exit(130);
    requested = true;
    console.error(
      "\nstopping: finishing this step and saving a checkpoint (Ctrl-C again to quit now)",
    );
  };
  Deno.addSignalListener("SIGINT", listener);
  return {
    requested: () => requested,
    remove: () => Deno.removeSignalListener("SIGINT", listener),
  };
}

/** The progress bar on a terminal, else a line every 10 s (and at the last step). */
function progressReporter(quiet: boolean, showBar: boolean) {
  let lastLine = 0;
  return (s: StepReport) => {
    if (quiet) return;
    const line = progressLine(s);
    if (showBar) Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
    else if (s.elapsed - lastLine >= 10 || s.step === s.totalSteps) {
      lastLine = s.elapsed;
      console.log(line);
    }
  };
}

if (import.meta.main) {
  await runTask(TRAIN, async (values) => {
    await selectBackend(values.backend);
    const data = await resolveData(values);
    const showBar = !values.quiet && Deno.stderr.isTerminal();
    const stop = stopOnSigint();
    const recipe = await unwrap(trainRecipe(values));
    const result = await unwrap(train({
      ...trainOptions(values, data, recipe),
      shouldStop: stop.requested,
      log: (line) => console.log(showBar ? `\r\x1b[K${line}` : line),
      onStep: progressReporter(values.quiet, showBar),
    }));
    stop.remove();
    if (showBar) console.error("");
    console.log(
      `stopped by ${result.stoppedBy} at step ${result.progress.step} (epoch ${result.progress.epoch}), ` +
        `${result.imagesPerSecond.toFixed(2)} img/s; checkpoint ${result.checkpoint}`,
    );
    await reportFallbacks();
  });
}
