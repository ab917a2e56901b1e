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
  disposeGenerator,
  encodeJpeg,
  generateImages,
  type Generator,
  inferenceName,
  loadCaptions,
  loadGenerator,
  Rng,
  scoreFolder,
  type TestCaption,
  unwrap,
  useBackend,
} from "../../mod.ts";

const [checkpoint, captions, evaluator, reference, out] = Deno.args;
console.log(`backend: ${await useBackend("auto")}`);

/** One JPEG per caption, noise from seed 0, as `OUT/images/inference_NNNN.jpg`. */
const draw = (rows: readonly TestCaption[]) => (gen: Generator) =>
  attempt(async () => {
    const { zDim, imageSize } = gen.gan.model;
    const noise = new Rng(0).normals(rows.length * zDim);
    const images = await generateImages(gen, rows.map((r) => r.caption), noise);
    await Deno.mkdir(`${out}/images`, { recursive: true });
    for (const [i, r] of rows.entries()) {
      await Deno.writeFile(
        `${out}/images/${inferenceName(r.id)}`,
        await encodeJpeg(images[i], imageSize),
      );
    }
    return rows.length;
  }, out);

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
