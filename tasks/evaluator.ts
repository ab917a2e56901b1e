/**
 * `deno task evaluator --data DIR --out EVAL_DIR [--epochs N] [--minutes M]`: trains the
 * 102-class evaluator CNN (class labels from text_c10/class_* — the only place labels
 * are read) and reports its held-out accuracy.
 */
import { trainEvaluator } from "../pipeline/evaluator.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { ensureSyntheticData } from "../pipeline/io/synthetic.ts";
import { defineTask } from "./flags.ts";
import {
  BACKEND_FLAG,
  DEFAULT_DATA,
  exists,
  runTask,
  selectBackend,
  SYNTHETIC_DIR,
} from "./cli.ts";

export const EVALUATOR = defineTask({
  name: "evaluator",
  summary: "trains the 102-class evaluator CNN and reports its held-out accuracy",
  flags: {
    data: {
      type: "string",
      arg: "DIR",
      help: "Reed-layout folder (labels from `text_c10/class_*`)",
      defaultText: "`../shared/oxford102`, else synthetic",
    },
    out: {
      type: "string",
      arg: "DIR",
      default: "runs/evaluator",
      help: "where `evaluator.json` and `evaluator.bin` go",
    },
    epochs: { type: "number", integer: true, min: 1, default: 20, help: "epochs" },
    minutes: { type: "number", arg: "M", min: 0, help: "stop after M minutes" },
    "held-out": {
      type: "number",
      arg: "F",
      min: 0,
      max: 1,
      default: 0.1,
      help: "fraction of each class held out",
    },
    batch: { type: "number", integer: true, min: 1, default: 64, help: "batch size" },
    lr: { type: "number", arg: "X", min: 0, default: 2e-3, help: "Adam learning rate" },
    seed: { type: "number", integer: true, default: 11, help: "random seed" },
    cache: { type: "string", arg: "DIR", default: ".cache/images", help: "decoded-image cache" },
    backend: BACKEND_FLAG,
  },
});

if (import.meta.main) {
  await runTask(EVALUATOR, async (values) => {
    await selectBackend(values.backend);
    const data = values.data ??
      (await exists(`${DEFAULT_DATA}/images`)
        ? DEFAULT_DATA
        : await ensureSyntheticData(SYNTHETIC_DIR));
    console.log(`data: ${data}`);
    const m = await unwrap(trainEvaluator({
      data,
      out: values.out,
      epochs: values.epochs,
      minutes: values.minutes,
      heldOut: values["held-out"],
      batchSize: values.batch,
      lr: values.lr,
      seed: values.seed,
      cacheDir: values.cache,
      log: console.log,
    }));
    console.log(
      `evaluator: ${m.classes.length} classes, ${m.epochs} epochs, held-out accuracy ` +
        `${(100 * m.heldOutAccuracy).toFixed(1)}% on ${m.heldOutIds.length} images ` +
        `(train ${(100 * m.trainAccuracy).toFixed(1)}%); saved to ${values.out}`,
    );
  });
}
