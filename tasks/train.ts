/**
 * `deno task train`: trains the text-to-flower GAN. Without --data it trains on
 * ../shared/oxford102 when that folder exists, else on the built-in synthetic set.
 * Run with --help for the flags.
 */
import { train, type TrainOptions } from "../pipeline/train.ts";
import type { StepReport } from "../pipeline/steps.ts";
import { ensureSyntheticData } from "../pipeline/io/synthetic.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { LOSS_KINDS, SIZES } from "../stages/config.ts";
import { defineTask, type FlagValues } from "./flags.ts";
import {
  BACKEND_FLAG,
  DEFAULT_DATA,
  exists,
  reportFallbacks,
  runTask,
  selectBackend,
  SYNTHETIC_DIR,
} from "./cli.ts";
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
    size: {
      type: "choice",
      choices: SIZES,
      default: "small",
      arg: "S",
      help: "model size (`reed`: Reed et al. 2016, the bench model)",
    },
    batch: { type: "number", integer: true, min: 1, help: "batch size", defaultText: "32" },
    loss: {
      type: "choice",
      choices: LOSS_KINDS,
      default: "bce",
      arg: "L",
      help: "GAN loss (`bce` is GAN-CLS)",
    },
    lr: {
      type: "number",
      arg: "X",
      min: 0,
      help: "Adam learning rate of G and D (the one setting a `--resume` may change)",
      defaultText: "5e-4 small, 2e-4 reed",
    },
    "pretrain-text": {
      type: "number",
      integer: true,
      min: 0,
      help:
        "contrastive (CLIP-style) pre-training of the text encoder, N steps, before a fresh run",
    },
    "no-d-bn": {
      type: "boolean",
      help: "discriminator without batch norm (always so for `wgan-gp`)",
    },
    "no-interp": { type: "boolean", help: "turn off the GAN-INT interpolated-text loss" },
    ema: {
      type: "number",
      arg: "X",
      min: 0,
      max: 1,
      help: "EMA decay of the generator used for samples and inference",
      defaultText: "0.999",
    },
    seed: { type: "number", integer: true, help: "random seed", defaultText: "1" },
    cache: { type: "string", arg: "DIR", default: ".cache/images", help: "decoded-image cache" },
    backend: BACKEND_FLAG,
    quiet: { type: "boolean", help: "no progress bar" },
  },
});

type Values = FlagValues<typeof TRAIN.flags>;

/** --data, --synthetic, or the default: Oxford-102 beside the project, else synthetic. */
async function resolveData(values: Values): Promise<string> {
  if (values.data && !values.synthetic) {
    console.log(`data: ${values.data}`);
    return values.data;
  }
  if (!values.synthetic && await exists(`${DEFAULT_DATA}/images`)) {
    console.log(`data: ${DEFAULT_DATA} (Oxford-102, found beside the project)`);
    return DEFAULT_DATA;
  }
  const data = await ensureSyntheticData(SYNTHETIC_DIR);
  console.log(
    `data: ${data} (built-in synthetic flowers${
      values.synthetic ? "" : ": ../shared/oxford102 is absent"
    })`,
  );
  return data;
}

/** The flags as the pipeline's options (only what was given overrides a default). */
export function trainOptions(values: Values, data: string): TrainOptions {
  const noBudget = values.minutes === undefined && values.steps === undefined;
  const given = <K extends string, V>(key: K, v: V | undefined) =>
    v === undefined ? {} : { [key]: v } as Record<K, V>;
  return {
    data,
    out: values.out,
    size: values.size,
    epochs: values.epochs ?? (noBudget ? 20 : undefined),
    minutes: values.minutes,
    maxSteps: values.steps,
    resume: values.resume,
    dictionary: values.dictionary,
    pretrainSteps: values["pretrain-text"] ?? 0,
    cacheDir: values.cache,
    train: {
      loss: values.loss,
      interpolate: !values["no-interp"],
      dBatchNorm: !values["no-d-bn"],
      ...given("batchSize", values.batch),
      ...given("lrG", values.lr),
      ...given("lrD", values.lr),
      ...given("emaDecay", values.ema),
      ...given("seed", values.seed),
    },
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
