/**
 * The score pipeline, as the task's evaluator runs it: every image of an inference folder
 * → evaluator logits and softmax; per image, cosine distance to the reference logits of
 * the same id + 0.5 / IS over all images; `score.csv` (`score,id`, id = row 0..N−1, rows
 * in ascending image number). Also FID on evaluator features and retrieval R-precision.
 *
 * Images of another size are resized to 64×64 (whole image), as the task does.
 *
 * @example
 * ```ts
 * import { scoreFolder } from "./score.ts";
 * const s = await scoreFolder({ inference: "inference", csv: "score.csv", batch: 64,
 *   evaluator: "runs/evaluator", reference: "../shared/oxford102/images" })();
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import { attempt, type PetalError, petalError, PetalFailure, unwrap } from "./io/errors.ts";
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

const fail = (path: string, message: string, fix: string): never => {
  throw new PetalFailure(petalError("BadFormat", path, message, fix));
};

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
export async function numberedImages(dir: string, strict: boolean): Promise<Map<number, string>> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)].sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return fail(dir, "no such folder", "pass the folder the images were written to");
  }
  const byId = new Map<number, string>();
  for (const e of entries) {
    const m = NUMBERED.exec(e.name);
    if (!e.isFile || !m) {
      if (strict) {
        fail(
          `${dir}/${e.name}`,
          "not an inference_NNNN.jpg file",
          "move it out of the folder: every file in it is scored",
        );
      }
      continue;
    }
    const id = Number(m[1]);
    const path = `${dir}/${e.name}`;
    if (byId.has(id)) {
      fail(path, `id ${id} appears twice (also ${byId.get(id)})`, "keep one image per id");
    }
    if (strict && !(await isJpeg(path))) {
      fail(path, "not a JPEG file", "write JPEG images (inference_NNNN.jpg)");
    }
    byId.set(id, path);
  }
  if (strict && byId.size === 0) {
    fail(dir, "no images to score", "run `deno task infer --out DIR` first");
  }
  return byId;
}

/** Decodes images to NHWC Float32 at 64×64 (other sizes are resized, as the task does). */
async function decodeAll(paths: readonly string[]): Promise<Float32Array> {
  const per = IMAGE_SIZE * IMAGE_SIZE * 3;
  const out = new Float32Array(paths.length * per);
  for (let i = 0; i < paths.length; i += 16) {
    const chunk = paths.slice(i, i + 16);
    const decoded = await Promise.all(chunk.map(async (p) => {
      try {
        return await decodeImage(p, IMAGE_SIZE);
      } catch (e) {
        return fail(
          p,
          `cannot decode image (${(e as Error).message.split("\n")[0]})`,
          "replace the file",
        );
      }
    }));
    decoded.forEach((d, j) => out.set(toUnitRange(d), (i + j) * per));
  }
  return out;
}

/** Reference logits from JSON: `{ "id": [logits…] }` or `[{ "id": n, "logits": […] }]`. */
async function referenceLogitsJson(path: string): Promise<Map<number, Float32Array>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return fail(
      path,
      "not readable JSON",
      'write {"id": [logits...]} or [{"id": n, "logits": [...]}]',
    );
  }
  const pairs: Array<[unknown, unknown]> = Array.isArray(raw)
    ? raw.map((r) => [r?.id, r?.logits])
    : Object.entries(raw as Record<string, unknown>);
  const out = new Map<number, Float32Array>();
  for (const [id, logits] of pairs) {
    if (!Number.isInteger(Number(id)) || !Array.isArray(logits)) {
      fail(
        path,
        `entry ${JSON.stringify(id)} has no integer id or no logits array`,
        "fix the JSON",
      );
    }
    if (out.has(Number(id))) fail(path, `id ${id} appears twice`, "keep one entry per id");
    out.set(Number(id), Float32Array.from(logits as number[]));
  }
  return out;
}

/** Every id in the captions file must have an image. */
async function checkCaptionIds(opts: ScoreOptions, images: ReadonlyMap<number, string>) {
  if (!opts.captions) return;
  const caps = await unwrap(loadCaptions(opts.captions));
  const missing = caps.filter((c) => !images.has(c.id)).map((c) => c.id);
  if (missing.length) {
    fail(
      opts.inference,
      `${missing.length} ids have no image (first: ${missing.slice(0, 5).join(", ")})`,
      "run infer on the whole captions file",
    );
  }
}

/** What each image is compared with: logits (and features, for a folder of images). */
interface References {
  readonly logits: Float32Array[];
  readonly features?: Float32Array[];
}

/** Reference logits from a JSON table: every reference id needs an image, and back. */
async function referencesFromJson(
  opts: ScoreOptions,
  images: ReadonlyMap<number, string>,
  ids: readonly number[],
): Promise<References> {
  const table = await referenceLogitsJson(opts.reference);
  const noImage = [...table.keys()].filter((id) => !images.has(id));
  if (noImage.length) {
    fail(
      opts.inference,
      `${noImage.length} reference ids have no image (first: ${noImage.slice(0, 5).join(", ")})`,
      "generate an image for every reference id",
    );
  }
  return {
    logits: ids.map((id) =>
      table.get(id) ??
        fail(opts.reference, `no reference logits for id ${id}`, "add them, or remove the image")
    ),
  };
}

/** Reference images of the same ids, through the evaluator. */
async function referencesFromImages(
  opts: ScoreOptions,
  ev: Evaluator,
  images: ReadonlyMap<number, string>,
  ids: readonly number[],
): Promise<References> {
  const refs = await numberedImages(opts.reference, false);
  const missing = ids.filter((id) => !refs.has(id));
  if (missing.length) {
    fail(
      images.get(missing[0])!,
      `${missing.length} images have no reference image (ids ${missing.slice(0, 5).join(", ")}…)`,
      `put image_NNNNN.jpg for them in ${opts.reference}`,
    );
  }
  const decoded = await decodeAll(ids.map((id) => refs.get(id)!));
  return await logitsOf(ev, decoded, ids.length, opts.batch);
}

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
async function runScore(opts: ScoreOptions, ev: Evaluator): Promise<ScoreSummary> {
  const images = await numberedImages(opts.inference, true);
  const ids = [...images.keys()].sort((a, b) => a - b);
  await checkCaptionIds(opts, images);
  const decoded = await decodeAll(ids.map((id) => images.get(id)!));
  const gen = await logitsOf(ev, decoded, ids.length, opts.batch);
  const ref = opts.reference.endsWith(".json")
    ? await referencesFromJson(opts, images, ids)
    : await referencesFromImages(opts, ev, images, ids);
  const table = taskScores(gen.logits, ref.logits);
  await writeFileAtomic(opts.csv, scoreCsv(table.scores));
  const R = Math.min(100, ids.length);
  const distractors = distractorsFrom(new Rng(opts.seed ?? 5), ids.length, R);
  return {
    images: ids.length,
    meanScore: table.mean,
    meanCosine: table.meanCosine,
    inceptionScore: table.inceptionScore,
    fid: ref.features && ids.length > 2 ? frechetDistance(gen.features, ref.features) : undefined,
    rPrecision: rPrecision(gen.logits, ref.logits, R, distractors),
    rPrecisionR: R,
    ids,
  };
}

/** The score pipeline: load the evaluator, score the folder, free the evaluator. */
export const scoreFolder = (opts: ScoreOptions): TE.TaskEither<PetalError, ScoreSummary> =>
  TE.bracket(
    attempt(() => loadEvaluator(opts.evaluator), opts.evaluator),
    (ev) => attempt(() => runScore(opts, ev), opts.inference),
    (ev) => TE.fromIO(() => disposeEvaluator(ev)),
  );
