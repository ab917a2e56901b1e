/**
 * `deno task score-check --evaluator EVAL_DIR [--images DIR]`: scores the evaluator's
 * held-out real images as if generated — against themselves, shuffled across ids, and
 * against noise — and prints the three mean scores (they must come in that order).
 */
import { scoreSanity } from "../pipeline/sanity.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, DEFAULT_DATA, runTask, selectBackend } from "./cli.ts";

export const SCORE_CHECK = defineTask({
  name: "score-check",
  summary: "scores the evaluator's held-out real images: own ids < shuffled < noise",
  flags: {
    evaluator: {
      type: "string",
      arg: "DIR",
      default: "models/evaluator",
      help: "the evaluator (its held-out ids are the images used)",
    },
    images: {
      type: "string",
      arg: "DIR",
      default: `${DEFAULT_DATA}/images`,
      defaultText: "`../shared/oxford102/images`",
      help: "folder of the real images (`image_NNNNN.jpg`)",
    },
    backend: BACKEND_FLAG,
  },
});

/** Four decimals, without the "-0.0000" that rounding of a zero distance gives. */
const fixed = (x: number) => (Math.abs(x) < 5e-5 ? 0 : x).toFixed(4);

if (import.meta.main) {
  await runTask(SCORE_CHECK, async (values) => {
    await selectBackend(values.backend);
    const rows = await unwrap(scoreSanity({ evaluator: values.evaluator, images: values.images }));
    console.log("| inference | images | mean score | mean cosine | IS | FID | R-precision |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${r.images} | ${r.meanScore.toFixed(4)} | ${fixed(r.meanCosine)} | ` +
          `${r.inceptionScore.toFixed(2)} | ${r.fid?.toFixed(2) ?? "-"} | ${
            (100 * r.rPrecision).toFixed(1)
          }% |`,
      );
    }
    const ordered = rows[0].meanScore < rows[1].meanScore && rows[1].meanScore < rows[2].meanScore;
    console.log(
      ordered
        ? "order holds: real < shuffled < noise"
        : "ORDER BROKEN: real < shuffled < noise fails",
    );
    if (!ordered) Deno.exit(1);
  });
}
