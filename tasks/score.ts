/**
 * `deno task score <inference_dir> <score.csv> <batch> --evaluator EVAL_DIR --reference REF`
 * — the task's arguments (any batch size works). REF: folder of real images
 * (`image_NNNNN.jpg` or `inference_NNNN.jpg`, matched by number) or a JSON of logits.
 */
import { scoreFolder, type ScoreSummary } from "../pipeline/score.ts";
import { petalError, PetalFailure, unwrap } from "../pipeline/io/errors.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, runTask, selectBackend, usageError } from "./cli.ts";

export const SCORE = defineTask({
  name: "score",
  positionals: "<inference_dir> <score.csv> <batch>",
  summary: "scores an inference folder as the task does; writes score.csv (score,id)",
  flags: {
    evaluator: {
      type: "string",
      arg: "DIR",
      default: "models/evaluator",
      help: "the evaluator (`deno task evaluator`)",
    },
    reference: {
      type: "string",
      arg: "REF",
      help: "folder of real images, or JSON of reference logits (required)",
    },
    captions: {
      type: "string",
      arg: "FILE",
      help: "captions file: every id in it must have an image",
    },
    backend: BACKEND_FLAG,
  },
});

const USAGE =
  "deno task score <inference_dir> <score.csv> <batch> --evaluator EVAL_DIR --reference REF";

/** `<batch>`: a positive integer. */
function batchArgument(text: string | undefined): number {
  const batch = Number(text ?? "64");
  if (!Number.isInteger(batch) || batch < 1) {
    throw new PetalFailure(
      petalError("BadArgument", "<batch>", `"${text}" is not a positive integer`, USAGE),
    );
  }
  return batch;
}

/** The summary lines the task prints. */
export const summaryLines = (s: ScoreSummary): string[] => [
  `images:            ${s.images}`,
  `mean score:        ${s.meanScore.toFixed(4)}   (lower is better)`,
  `mean cosine dist.: ${s.meanCosine.toFixed(4)}`,
  `inception score:   ${s.inceptionScore.toFixed(3)}   (0.5/IS = ${
    (0.5 / s.inceptionScore).toFixed(4)
  })`,
  ...(s.fid === undefined ? [] : [`FID (evaluator):   ${s.fid.toFixed(3)}`]),
  `R-precision@${s.rPrecisionR}:   ${(100 * s.rPrecision).toFixed(1)}%`,
];

if (import.meta.main) {
  await runTask(SCORE, async (values, positionals) => {
    const [inference, csv, batchText] = positionals;
    if (!inference || !csv || !values.reference) {
      throw usageError("score", "missing arguments", USAGE);
    }
    const batch = batchArgument(batchText);
    await selectBackend(values.backend);
    const s = await unwrap(
      scoreFolder({ ...values, reference: values.reference, inference, csv, batch }),
    );
    for (const line of summaryLines(s)) console.log(line);
    console.log(`wrote ${csv}`);
  });
}
