/**
 * A check that the score means what it should, with real images standing in for
 * generated ones: the held-out real images scored against themselves must beat the same
 * images shuffled across ids, which must beat noise.
 *
 * @example
 * ```ts
 * import { scoreSanity } from "./sanity.ts";
 * const rows = await scoreSanity({ evaluator: "runs/evaluator", images: "../shared/oxford102/images" })();
 * // [{ name: "real", meanScore: ... }, { name: "shuffled", ... }, { name: "noise", ... }]
 * ```
 */
import { disposeEvaluator, loadEvaluator } from "./evaluator.ts";
import { encodeJpeg } from "./io/images.ts";
import { numberedImages, scoreFolder, type ScoreSummary } from "./score.ts";
import type * as TE from "fp-ts/TaskEither";
import { attempt, type PetalError, unwrap } from "./io/errors.ts";
import { Rng } from "../stages/rng.ts";
import { inferenceName } from "./infer.ts";

/** Options of {@link scoreSanity} (the `deno task score-check` flags). */
export interface SanityOptions {
  readonly evaluator: string;
  /** Folder of the real images (image_NNNNN.jpg). */
  readonly images: string;
  /** Ids to use; default: the evaluator's held-out ids. */
  readonly ids?: readonly number[];
  readonly seed?: number;
}

/** The summary of one of the three folders: real, shuffled or noise. */
export interface SanityRow extends ScoreSummary {
  readonly name: "real" | "shuffled" | "noise";
}

/** The three folders, real, shuffled and noise, scored in turn. */
export const scoreSanity = (opts: SanityOptions): TE.TaskEither<PetalError, SanityRow[]> =>
  attempt(() => runSanity(opts), opts.images);

async function runSanity(opts: SanityOptions): Promise<SanityRow[]> {
  const ev = await loadEvaluator(opts.evaluator);
  const ids = opts.ids ?? ev.manifest.heldOutIds;
  disposeEvaluator(ev);
  const real = await numberedImages(opts.images, false);
  const rng = new Rng(opts.seed ?? 3);
  const work = await Deno.makeTempDir({ prefix: "petal-sanity-" });
  const perm = rng.permutation(ids.length);
  const folders = { real: `${work}/real`, shuffled: `${work}/shuffled`, noise: `${work}/noise` };
  for (const dir of Object.values(folders)) await Deno.mkdir(dir);
  for (const [i, id] of ids.entries()) {
    await Deno.copyFile(real.get(id)!, `${folders.real}/${inferenceName(id)}`);
    // Another id's real image: right kind of picture, wrong caption.
    await Deno.copyFile(
      real.get(ids[perm[i] === i ? (i + 1) % ids.length : perm[i]])!,
      `${folders.shuffled}/${inferenceName(id)}`,
    );
    const noise = Uint8Array.from({ length: 64 * 64 * 3 }, () => rng.int(256));
    await Deno.writeFile(`${folders.noise}/${inferenceName(id)}`, await encodeJpeg(noise, 64));
  }
  const rows: SanityRow[] = [];
  try {
    for (const name of ["real", "shuffled", "noise"] as const) {
      const s = await unwrap(scoreFolder({
        inference: folders[name],
        csv: `${work}/${name}.csv`,
        batch: 64,
        evaluator: opts.evaluator,
        reference: opts.images,
      }));
      rows.push({ name, ...s });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return rows;
}
