/**
 * A custom infer pipeline: captions from a CSV → images from a checkpoint → the task's
 * score against reference images, composed with fp-ts.
 *
 * ```sh
 * deno run -A docs/examples/custom_infer.ts CHECKPOINT CAPTIONS.csv EVALUATOR REFERENCE OUT
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import {
  attempt,
  candidatesFor,
  disposeGenerator,
  drawFolder,
  type Generator,
  loadCaptions,
  loadGenerator,
  scoreFolder,
  type TestCaption,
  unwrap,
  useBackend,
} from "../../mod.ts";

const [checkpoint, captions, evaluator, reference, out] = Deno.args;
console.log(`backend: ${await useBackend("auto")}`);

/**
 * One JPEG per caption, as `OUT/images/inference_NNNN.jpg`, through the drawing path of
 * `deno task infer` (pipeline/draw.ts): noise seed 0, the best of 8 noises where the
 * checkpoint keeps its image–text matcher, so the images are infer's, byte for byte.
 */
const draw = (rows: readonly TestCaption[]) => (gen: Generator) =>
  pipe(
    TE.fromEither(candidatesFor(gen, checkpoint)),
    TE.chain((candidates) => drawFolder(gen, rows, `${out}/images`, { seed: 0, candidates })),
  );

const summary = await unwrap(pipe(
  loadCaptions(captions),
  TE.chain((rows) =>
    TE.bracket(
      attempt(() => loadGenerator(checkpoint), checkpoint),
      draw(rows),
      (gen) => TE.fromIO(() => disposeGenerator(gen)),
    )
  ),
  TE.chain(() =>
    scoreFolder({
      inference: `${out}/images`,
      csv: `${out}/score.csv`,
      batch: 16,
      evaluator,
      reference,
    })
  ),
));
console.log(`images: ${summary.images}, mean score: ${summary.meanScore.toFixed(4)}`);
