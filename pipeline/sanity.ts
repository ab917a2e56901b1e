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
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { disposeEvaluator, loadEvaluator } from "./evaluator.ts";
import { encodeJpeg } from "./io/images.ts";
import { numberedImages, scoreFolder, type ScoreSummary } from "./score.ts";
import { ioError, type PetalError } from "./io/errors.ts";
import { Rng } from "../stages/rng.ts";
import { inferenceName } from "./draw.ts";

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

const NAMES = ["real", "shuffled", "noise"] as const;
type Folders = Record<SanityRow["name"], string>;

/** The evaluator's held-out ids (where `ids` are not given). */
const heldOutIds = (evaluator: string): TE.TaskEither<PetalError, readonly number[]> =>
  TE.bracket(
    loadEvaluator(evaluator),
    (ev) => TE.right(ev.manifest.heldOutIds),
    (ev) => TE.fromIO(() => disposeEvaluator(ev)),
  );

/** The three folders in `work`: real images, another id's real image, noise. */
const writeFolders = (
  work: string,
  ids: readonly number[],
  real: ReadonlyMap<number, string>,
  seed: number,
): TE.TaskEither<PetalError, Folders> =>
  TE.tryCatch(async () => {
    const rng = new Rng(seed);
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
    return folders;
  }, ioError(work, "check the temp folder has room"));

/** Each folder scored against the real images, in turn. */
const scoreAll = (
  opts: SanityOptions,
  work: string,
  folders: Folders,
): TE.TaskEither<PetalError, SanityRow[]> =>
  pipe(
    TE.sequenceSeqArray(NAMES.map((name) =>
      pipe(
        scoreFolder({
          inference: folders[name],
          csv: `${work}/${name}.csv`,
          batch: 64,
          evaluator: opts.evaluator,
          reference: opts.images,
        }),
        TE.map((s): SanityRow => ({ name, ...s })),
      )
    )),
    TE.map((rows) => [...rows]),
  );

/** The three folders, real, shuffled and noise, scored in turn. */
export const scoreSanity = (opts: SanityOptions): TE.TaskEither<PetalError, SanityRow[]> =>
  pipe(
    TE.Do,
    TE.bind("ids", () => opts.ids ? TE.right(opts.ids) : heldOutIds(opts.evaluator)),
    TE.bind("real", () => numberedImages(opts.images, false)),
    TE.chain(({ ids, real }) =>
      TE.bracket(
        TE.tryCatch(
          () => Deno.makeTempDir({ prefix: "petal-sanity-" }),
          ioError("temp", "check the temp folder is writable"),
        ),
        (work) =>
          pipe(
            writeFolders(work, ids, real, opts.seed ?? 3),
            TE.chain((folders) => scoreAll(opts, work, folders)),
          ),
        (work) =>
          TE.tryCatch(
            () => Deno.remove(work, { recursive: true }),
            ioError(work, "remove the folder by hand"),
          ),
      )
    ),
  );
