/**
 * The score pipeline, as the task's evaluator runs it: every image of an inference folder
 * → evaluator logits and softmax; per image, cosine distance to the reference logits of
 * the same id + 0.5 / IS over all images; `score.csv` (`score,id`, id = row 0..N−1, rows
 * in ascending image number). Also FID on evaluator features and retrieval R-precision.
 *
 * Images of another size are resized to 64×64 (whole image), as the task does.
 *
 * @example Your drawings against the real images, as the task scores them.
 * ```ts ignore
 * import { unwrap } from "./io/errors.ts";
 * import { scoreFolder } from "./score.ts";
 * const s = await unwrap(scoreFolder({ inference: "inference", csv: "score.csv", batch: 64,
 *   evaluator: "runs/evaluator", reference: "../shared/oxford102/images" }));
 * ```
 */
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { ioError, type PetalError, petalError } from "./io/errors.ts";
import { decodeImage, toUnitRange, writeFileAtomic } from "./io/images.ts";
import { disposeEvaluator, type Evaluator, loadEvaluator, logitsOf } from "./evaluator.ts";
import { Rng } from "../stages/rng.ts";
import { loadCaptions } from "./io/task_files.ts";
import { frechetDistance, rPrecision, scoreCsv, taskScores } from "../stages/score.ts";

const IMAGE_SIZE = 64;
const NUMBERED = /^(?:inference|image)_(\d+)\.jpe?g$/i;

/** Options of {@link scoreFolder}: the task's three arguments and the references. */
export interface ScoreOptions {
  readonly inference: string;
  readonly csv: string;
  readonly batch: number;
  readonly evaluator: string;
  /** Folder of real images (image_NNNNN.jpg or inference_NNNN.jpg) or JSON of logits. */
  readonly reference: string;
  /** Optional captions file: every id in it must have an image. */
  readonly captions?: string;
  readonly seed?: number;
}

/** What {@link scoreFolder} prints: mean score, cosine, IS, FID, R-precision. */
export interface ScoreSummary {
  readonly images: number;
  readonly meanScore: number;
  readonly meanCosine: number;
  readonly inceptionScore: number;
  /** FID between evaluator features of the images and of their references (folder refs). */
  readonly fid?: number;
  readonly rPrecision: number;
  readonly rPrecisionR: number;
  readonly ids: readonly number[];
}

/** A BadFormat error on `path`: the value every check here fails with. */
const bad = (path: string, message: string, fix: string): PetalError =>
  petalError("BadFormat", path, message, fix);

const isJpeg = async (path: string) => {
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(3);
    const n = await f.read(head);
    return n === 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  } finally {
    f.close();
  }
};

/**
 * Numbered JPEGs of a folder: id → path. Every file must be one (`strict`), or others
 * are skipped (a reference folder may hold more than the images scored).
 */
export const numberedImages = (
  dir: string,
  strict: boolean,
): TE.TaskEither<PetalError, Map<number, string>> =>
async () => {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)].sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return E.left(bad(dir, "no such folder", "pass the folder the images were written to"));
  }
  const byId = new Map<number, string>();
  for (const e of entries) {
    const m = NUMBERED.exec(e.name);
    const path = `${dir}/${e.name}`;
    if (!e.isFile || !m) {
      if (!strict) continue;
      return E.left(bad(
        path,
        "not an inference_NNNN.jpg file",
        "move it out of the folder: every file in it is scored",
      ));
    }
    const id = Number(m[1]);
    if (byId.has(id)) {
      return E.left(
        bad(path, `id ${id} appears twice (also ${byId.get(id)})`, "keep one image per id"),
      );
    }
    if (strict && !(await isJpeg(path).catch(() => false))) {
      return E.left(bad(path, "not a JPEG file", "write JPEG images (inference_NNNN.jpg)"));
    }
    byId.set(id, path);
  }
  if (strict && byId.size === 0) {
    return E.left(bad(dir, "no images to score", "run `deno task infer --out DIR` first"));
  }
  return E.right(byId);
};

/** Decodes images to NHWC Float32 at 64×64 (other sizes are resized, as the task does). */
const decodeAll =
  (paths: readonly string[]): TE.TaskEither<PetalError, Float32Array> => async () => {
    const per = IMAGE_SIZE * IMAGE_SIZE * 3;
    const out = new Float32Array(paths.length * per);
    for (let i = 0; i < paths.length; i += 16) {
      const chunk = paths.slice(i, i + 16);
      const decoded = await Promise.all(chunk.map((p) =>
        decodeImage(p, IMAGE_SIZE).then(
          (d) => E.right(d),
          (e) =>
            E.left(bad(
              p,
              `cannot decode image (${(e as Error).message.split("\n")[0]})`,
              "replace the file",
            )),
        )
      ));
      for (const [j, d] of decoded.entries()) {
        if (E.isLeft(d)) return d;
        out.set(toUnitRange(d.right), (i + j) * per);
      }
    }
    return E.right(out);
  };

const JSON_FIX = 'write {"id": [logits...]} or [{"id": n, "logits": [...]}]';

/** Reference logits from JSON: `{ "id": [logits…] }` or `[{ "id": n, "logits": […] }]`. */
const referenceLogitsJson = (path: string): TE.TaskEither<PetalError, Map<number, Float32Array>> =>
  pipe(
    TE.tryCatch(
      async () => JSON.parse(await Deno.readTextFile(path)) as unknown,
      () => bad(path, "not readable JSON", JSON_FIX),
    ),
    TE.chainEitherK((raw) => {
      const pairs: Array<[unknown, unknown]> = Array.isArray(raw)
        ? raw.map((r) => [r?.id, r?.logits])
        : Object.entries(raw as Record<string, unknown>);
      const out = new Map<number, Float32Array>();
      for (const [id, logits] of pairs) {
        if (!Number.isInteger(Number(id)) || !Array.isArray(logits)) {
          return E.left(bad(
            path,
            `entry ${JSON.stringify(id)} has no integer id or no logits array`,
            "fix the JSON",
          ));
        }
        if (out.has(Number(id))) {
          return E.left(bad(path, `id ${id} appears twice`, "keep one entry per id"));
        }
        out.set(Number(id), Float32Array.from(logits as number[]));
      }
      return E.right(out);
    }),
  );

/** Every id in the captions file must have an image. */
const checkCaptionIds = (
  opts: ScoreOptions,
  images: ReadonlyMap<number, string>,
): TE.TaskEither<PetalError, void> =>
  !opts.captions ? TE.right(undefined) : pipe(
    loadCaptions(opts.captions),
    TE.chainEitherK((caps) => {
      const missing = caps.filter((c) => !images.has(c.id)).map((c) => c.id);
      return missing.length
        ? E.left(bad(
          opts.inference,
          `${missing.length} ids have no image (first: ${missing.slice(0, 5).join(", ")})`,
          "run infer on the whole captions file",
        ))
        : E.right(undefined);
    }),
  );

/** What each image is compared with: logits (and features, for a folder of images). */
interface References {
  readonly logits: Float32Array[];
  readonly features?: Float32Array[];
}

/** Reference logits from a JSON table: every reference id needs an image, and back. */
const referencesFromJson = (
  opts: ScoreOptions,
  images: ReadonlyMap<number, string>,
  ids: readonly number[],
): TE.TaskEither<PetalError, References> =>
  pipe(
    referenceLogitsJson(opts.reference),
    TE.chainEitherK((table) => {
      const noImage = [...table.keys()].filter((id) => !images.has(id));
      if (noImage.length) {
        return E.left(bad(
          opts.inference,
          `${noImage.length} reference ids have no image (first: ${
            noImage.slice(0, 5).join(", ")
          })`,
          "generate an image for every reference id",
        ));
      }
      const missing = ids.find((id) => !table.has(id));
      return missing === undefined
        ? E.right({ logits: ids.map((id) => table.get(id)!) })
        : E.left(bad(
          opts.reference,
          `no reference logits for id ${missing}`,
          "add them, or remove the image",
        ));
    }),
  );

/** Evaluator logits and features of decoded images (a tensor failure is an Io error). */
const logitsTE = (
  ev: Evaluator,
  images: Float32Array,
  count: number,
  batch: number,
  path: string,
) => TE.tryCatch(() => logitsOf(ev, images, count, batch), ioError(path, "see the message above"));

/** Reference images of the same ids, through the evaluator. */
const referencesFromImages = (
  opts: ScoreOptions,
  ev: Evaluator,
  images: ReadonlyMap<number, string>,
  ids: readonly number[],
): TE.TaskEither<PetalError, References> =>
  pipe(
    numberedImages(opts.reference, false),
    TE.filterOrElse(
      (refs) => ids.every((id) => refs.has(id)),
      (refs) => {
        const missing = ids.filter((id) => !refs.has(id));
        return bad(
          images.get(missing[0])!,
          `${missing.length} images have no reference image (ids ${
            missing.slice(0, 5).join(", ")
          }…)`,
          `put image_NNNNN.jpg for them in ${opts.reference}`,
        );
      },
    ),
    TE.chain((refs) => decodeAll(ids.map((id) => refs.get(id)!))),
    TE.chain((decoded) => logitsTE(ev, decoded, ids.length, opts.batch, opts.reference)),
  );

/** R − 1 distractors for row i, drawn from `rng` (the R-precision's retrieval set). */
const distractorsFrom = (rng: Rng, count: number, R: number) => (i: number) => {
  const out: number[] = [];
  while (out.length < R - 1) {
    const j = rng.int(count);
    if (j !== i && !out.includes(j)) out.push(j);
  }
  return out;
};

/** Images → logits → per-image scores → score.csv, and the summary. */
const runScore = (opts: ScoreOptions, ev: Evaluator): TE.TaskEither<PetalError, ScoreSummary> =>
  pipe(
    TE.Do,
    TE.bind("images", () => numberedImages(opts.inference, true)),
    TE.let("ids", ({ images }) => [...images.keys()].sort((a, b) => a - b)),
    TE.chainFirst(({ images }) => checkCaptionIds(opts, images)),
    TE.bind("decoded", ({ images, ids }) => decodeAll(ids.map((id) => images.get(id)!))),
    TE.bind(
      "gen",
      ({ decoded, ids }) => logitsTE(ev, decoded, ids.length, opts.batch, opts.inference),
    ),
    TE.bind(
      "ref",
      ({ images, ids }) =>
        opts.reference.endsWith(".json")
          ? referencesFromJson(opts, images, ids)
          : referencesFromImages(opts, ev, images, ids),
    ),
    TE.let("table", ({ gen, ref }) => taskScores(gen.logits, ref.logits)),
    TE.chainFirst(({ table }) =>
      TE.tryCatch(
        () => writeFileAtomic(opts.csv, scoreCsv(table.scores)),
        ioError(opts.csv, "check the folder is writable"),
      )
    ),
    TE.map(({ ids, gen, ref, table }) => {
      const R = Math.min(100, ids.length);
      const distractors = distractorsFrom(new Rng(opts.seed ?? 5), ids.length, R);
      return {
        images: ids.length,
        meanScore: table.mean,
        meanCosine: table.meanCosine,
        inceptionScore: table.inceptionScore,
        fid: ref.features && ids.length > 2
          ? frechetDistance(gen.features, ref.features)
          : undefined,
        rPrecision: rPrecision(gen.logits, ref.logits, R, distractors),
        rPrecisionR: R,
        ids,
      };
    }),
  );

/**
 * The score pipeline: load the evaluator, score the folder, free the evaluator.
 *
 * @example Real images scored against themselves: cosine distance 0, so the score is 0.5 / IS.
 * ```ts
 * import { ensureSyntheticData, scoreFolder, trainEvaluator, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * await unwrap(trainEvaluator({ data, out: `${dir}/eval`, epochs: 1, batchSize: 8 }));
 * const s = await unwrap(scoreFolder({ inference: `${data}/test_images`, csv: `${dir}/score.csv`,
 *   batch: 8, evaluator: `${dir}/eval`, reference: `${data}/test_images` }));
 * console.log(s.images, s.meanCosine < 1e-6, s.meanScore === 0.5 / s.inceptionScore); // 2 true true
 * console.log(await Deno.readTextFile(`${dir}/score.csv`)); // score,id then a row per image
 * ```
 */
export const scoreFolder = (opts: ScoreOptions): TE.TaskEither<PetalError, ScoreSummary> =>
  TE.bracket(
    loadEvaluator(opts.evaluator),
    (ev) => runScore(opts, ev),
    (ev) => TE.fromIO(() => disposeEvaluator(ev)),
  );
