/**
 * `deno task score <inference_dir> <score.csv> <batch> --evaluator EVAL_DIR --reference REF`
 * — the task's arguments (any batch size works). REF: folder of real images
 * (`image_NNNNN.jpg` or `inference_NNNN.jpg`, matched by number) or a JSON of logits.
 */
import { scoreFolder } from "../pipeline/score.ts";
import { petalError, PetalFailure } from "../pipeline/errors.ts";
import { main, numberFlag, orFail, parse, selectBackend } from "./cli.ts";

const USAGE =
  "deno task score <inference_dir> <score.csv> <batch> --evaluator EVAL_DIR --reference REF";

await main(async () => {
  const { values, positionals } = parse("score", {
    evaluator: { type: "string", default: "runs/evaluator" },
    reference: { type: "string" },
    captions: { type: "string" },
    backend: { type: "string", default: "auto" },
  });
  const [inference, csv, batchText] = positionals;
  if (!inference || !csv || !values.reference) {
    throw new PetalFailure(
      petalError("BadArgument", "deno task score", "missing arguments", `usage: ${USAGE}`),
    );
  }
  const batch = numberFlag("batch", batchText ?? "64", 64);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new PetalFailure(
      petalError("BadArgument", "<batch>", `"${batchText}" is not a positive integer`, USAGE),
    );
  }
  await selectBackend(values.backend);
  const s = await orFail(scoreFolder({
    inference,
    csv,
    batch,
    evaluator: values.evaluator,
    reference: values.reference,
    captions: values.captions,
  }));
  console.log(`images:            ${s.images}`);
  console.log(`mean score:        ${s.meanScore.toFixed(4)}   (lower is better)`);
  console.log(`mean cosine dist.: ${s.meanCosine.toFixed(4)}`);
  console.log(
    `inception score:   ${s.inceptionScore.toFixed(3)}   (0.5/IS = ${
      (0.5 / s.inceptionScore).toFixed(4)
    })`,
  );
  if (s.fid !== undefined) console.log(`FID (evaluator):   ${s.fid.toFixed(3)}`);
  console.log(`R-precision@${s.rPrecisionR}:   ${(100 * s.rPrecision).toFixed(1)}%`);
  console.log(`wrote ${csv}`);
});
