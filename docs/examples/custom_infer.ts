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
  candidateNoise,
  candidatesFor,
  candidateStreams,
  disposeGenerator,
  encodeJpeg,
  generateImages,
  type Generator,
  inferenceName,
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
 * One JPEG per caption, as `OUT/images/inference_NNNN.jpg`: noise from seed 0, the best of
 * 8 noises where the checkpoint keeps its image–text matcher (as `deno task infer`).
 */
const draw = (rows: readonly TestCaption[]) => (gen: Generator) =>
  attempt(async () => {
    const { zDim, imageSize } = gen.gan.model;
    const candidates = candidatesFor(gen, checkpoint);
    const noise = candidateNoise(candidateStreams(0), rows.length, zDim, candidates);
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
