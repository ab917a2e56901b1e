/**
 * A check that the score means what it should, with real images standing in for
 * generated ones: the held-out real images scored against themselves must beat the same
 * images shuffled across ids, which must beat noise.
 *
 * @example
 * ```ts
 * import { scoreSanity } from "./sanity.ts";
 * const rows = await scoreSanity({ evaluator: "runs/evaluator", images: "../shared/oxford102/images" });
 * // [{ name: "real", meanScore: ... }, { name: "shuffled", ... }, { name: "noise", ... }]
 * ```
 */
import { disposeEvaluator, loadEvaluator } from "./evaluator.ts";
import { encodeJpeg } from "./images.ts";
import { numberedImages, scoreFolder, type ScoreSummary } from "./score.ts";
import { PetalFailure } from "./errors.ts";
import { Rng } from "./rng.ts";
import { inferenceName } from "./infer.ts";

export interface SanityOptions {
  readonly evaluator: string;
  /** Folder of the real images (image_NNNNN.jpg). */
  readonly images: string;
  /** Ids to use; default: the evaluator's held-out ids. */
  readonly ids?: readonly number[];
  readonly seed?: number;
}

export interface SanityRow extends ScoreSummary {
  readonly name: "real" | "shuffled" | "noise";
}

export async function scoreSanity(opts: SanityOptions): Promise<SanityRow[]> {
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
      const s = await scoreFolder({
        inference: folders[name],
        csv: `${work}/${name}.csv`,
        batch: 64,
        evaluator: opts.evaluator,
        reference: opts.images,
      })();
      if (s._tag === "Left") throw new PetalFailure(s.left);
      rows.push({ name, ...s.right });
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return rows;
}
