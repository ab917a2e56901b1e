/**
 * `deno task export --checkpoint DIR --out models/NAME`: the generator-only checkpoint
 * of a run — text encoder, EMA generator (with its mean condition) and vocabulary, no D
 * and no optimiser state — small enough to ship; `deno task infer` and `deno task serve`
 * draw with it. With `--data`, a checkpoint written before petal kept the mean condition
 * (what drawing's guidance pushes away from) or its matcher's rivals (what a pick weighs
 * a caption against) is given them from that data's training captions, minus the images
 * `--evaluator` holds out.
 */
import {
  checkpointVocabulary,
  disposeCheckpoint,
  readCheckpoint,
  restoreGan,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import { completeGenerator, lacking } from "../pipeline/draw.ts";
import { evaluatorManifest, heldOutCaptions } from "../pipeline/quality.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { disposeGan, type Gan } from "../stages/train_step.ts";
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
    data: {
      type: "string",
      arg: "DIR",
      help:
        "training data (Reed layout) whose captions give an older checkpoint its mean condition and its matcher's rivals",
    },
    evaluator: {
      type: "string",
      arg: "DIR",
      help: "with --data: leave out the images this evaluator holds out (a ledger run's split)",
    },
    backend: BACKEND_FLAG,
  },
});

/**
 * Gives `gan` what its checkpoint did not keep, its mean condition and its matcher's
 * rivals, from the first caption of each training image of `data`.
 */
async function complete(
  gan: Gan,
  vocab: ReturnType<typeof checkpointVocabulary>,
  data: string,
  evaluator?: string,
) {
  const gen = { gan, vocab };
  const lacks = lacking(gen);
  if (!lacks.center && !lacks.rivals) return;
  const held = evaluator ? (await unwrap(evaluatorManifest(evaluator))).heldOutIds : [];
  const { training } = await unwrap(heldOutCaptions(data, held));
  const lacked = completeGenerator(gen, training);
  const given = [lacked.center ? "mean condition" : "", lacked.rivals ? "matcher's rivals" : ""];
  console.log(
    `${given.filter(Boolean).join(" and ")}: from the first captions of ${training.length} ` +
      `training images of ${data}` +
      (held.length ? ` (${held.length} held out by ${evaluator})` : ""),
  );
}

if (import.meta.main) {
  await runTask(EXPORT, async (values) => {
    await selectBackend(values.backend);
    const ck = await readCheckpoint(values.checkpoint);
    try {
      const gan = await restoreGan(ck, values.checkpoint);
      if (values.data) {
        await complete(
          gan,
          checkpointVocabulary(ck, values.checkpoint),
          values.data,
          values.evaluator,
        );
      }
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
