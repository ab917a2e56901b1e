/**
 * `deno task train`: trains the text-to-flower GAN. Without --data it trains on
 * ../shared/oxford102 when that folder exists, else on the built-in synthetic set.
 * Run with --help for the flags.
 */
import { train, type TrainOptions } from "../pipeline/train.ts";
import type { StepReport } from "../pipeline/steps.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { RECIPE_FLAGS, recipeSettings } from "./recipe.ts";
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
      help: "stop after N epochs",
      defaultText: "20 (when no other budget)",
    },
    minutes: { type: "number", arg: "M", min: 0, help: "stop after M minutes" },
    steps: { type: "number", integer: true, min: 0, help: "stop after N steps in all" },
    resume: { type: "boolean", help: "continue from `DIR/checkpoint.petal`, exactly" },
    ...RECIPE_FLAGS,
    cache: { type: "string", arg: "DIR", default: ".cache/images", help: "decoded-image cache" },
    backend: BACKEND_FLAG,
    quiet: { type: "boolean", help: "no progress bar" },
  },
});

type Values = FlagValues<typeof TRAIN.flags>;

/**
 * The flags as the pipeline's options (only what was given overrides a default). A resume
 * keeps the checkpoint's settings but for the learning rates given on the command line.
 */
export function trainOptions(values: Values, data: string): TrainOptions {
  const noBudget = values.minutes === undefined && values.steps === undefined;
  const recipe = recipeSettings(values);
  const lrs = Object.fromEntries(
    Object.entries({ lrG: values.lr, lrD: values["lr-d"] ?? values.lr })
      .filter(([, v]) => v !== undefined),
  );
  return {
    data,
    out: values.out,
    size: values.size,
    arch: recipe.arch,
    upsample: recipe.upsample,
    epochs: values.epochs ?? (noBudget ? 20 : undefined),
    minutes: values.minutes,
    maxSteps: values.steps,
    resume: values.resume,
    dictionary: values.dictionary,
    pretrainSteps: recipe.pretrainSteps,
    cacheDir: values.cache,
    train: values.resume ? lrs : recipe.train,
  };
}

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
    const result = await unwrap(train({
      ...trainOptions(values, data),
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
