/**
 * `deno task export --checkpoint DIR --out models/NAME`: the generator-only checkpoint
 * of a run — text encoder, EMA generator and vocabulary, no D and no optimiser state —
 * small enough to ship; `deno task infer` and `deno task serve` draw with it.
 */
import {
  disposeCheckpoint,
  readCheckpoint,
  restoreGan,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import { disposeGan } from "../stages/train_step.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, runTask, selectBackend } from "./cli.ts";

export const EXPORT = defineTask({
  name: "export",
  summary: "writes the generator-only checkpoint of a run (EMA G, text encoder, vocabulary)",
  flags: {
    checkpoint: {
      type: "string",
      arg: "DIR",
      default: "runs/latest",
      help: "run folder (or checkpoint.petal) to export",
    },
    out: {
      type: "string",
      arg: "DIR",
      default: "models/flowers",
      help: "where its `checkpoint.petal` goes",
    },
    backend: BACKEND_FLAG,
  },
});

if (import.meta.main) {
  await runTask(EXPORT, async (values) => {
    await selectBackend(values.backend);
    const ck = await readCheckpoint(values.checkpoint);
    try {
      const gan = await restoreGan(ck, values.checkpoint);
      const { progress, vocabulary, recipe } = ck.header;
      const path = await writeGeneratorCheckpoint(values.out, gan, progress, vocabulary, recipe);
      disposeGan(gan);
      const mb = (await Deno.stat(path)).size / 2 ** 20;
      console.log(`wrote ${path} (${mb.toFixed(2)} MB; step ${progress.step})`);
    } finally {
      disposeCheckpoint(ck);
    }
  });
}
