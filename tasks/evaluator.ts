/**
 * `deno task evaluator --data DIR --out EVAL_DIR [--epochs N] [--minutes M]`: trains the
 * 102-class evaluator CNN (class labels from text_c10/class_* — the only place labels
 * are read) and reports its held-out accuracy.
 */
import { trainEvaluator } from "../pipeline/evaluator.ts";
import {
  DEFAULT_DATA,
  exists,
  main,
  numberFlag,
  parse,
  selectBackend,
  SYNTHETIC_DIR,
} from "./cli.ts";
import { ensureSyntheticData } from "../pipeline/synthetic.ts";

await main(async () => {
  const { values } = parse("evaluator", {
    data: { type: "string" },
    out: { type: "string", default: "runs/evaluator" },
    epochs: { type: "string", default: "20" },
    minutes: { type: "string" },
    "held-out": { type: "string", default: "0.1" },
    batch: { type: "string", default: "64" },
    lr: { type: "string", default: "2e-3" },
    seed: { type: "string", default: "11" },
    cache: { type: "string", default: ".cache/images" },
    backend: { type: "string", default: "auto" },
  });
  await selectBackend(values.backend);
  const data = values.data ??
    (await exists(`${DEFAULT_DATA}/images`)
      ? DEFAULT_DATA
      : await ensureSyntheticData(SYNTHETIC_DIR));
  console.log(`data: ${data}`);
  const m = await trainEvaluator({
    data,
    out: values.out,
    epochs: numberFlag("epochs", values.epochs, 20),
    minutes: values.minutes === undefined ? undefined : numberFlag("minutes", values.minutes, 0),
    heldOut: numberFlag("held-out", values["held-out"], 0.1),
    batchSize: numberFlag("batch", values.batch, 64),
    lr: numberFlag("lr", values.lr, 2e-3),
    seed: numberFlag("seed", values.seed, 11),
    cacheDir: values.cache,
    log: console.log,
  });
  console.log(
    `evaluator: ${m.classes.length} classes, ${m.epochs} epochs, held-out accuracy ` +
      `${(100 * m.heldOutAccuracy).toFixed(1)}% on ${m.heldOutIds.length} images ` +
      `(train ${(100 * m.trainAccuracy).toFixed(1)}%); saved to ${values.out}`,
  );
});
