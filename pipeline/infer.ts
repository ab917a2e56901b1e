/**
 * The infer pipeline: checkpoint + captions → one 64×64 JPEG per caption,
 * `inference_{id:04d}.jpg`, generated in batches by the EMA generator. Optional extras:
 * the task's report grid (5 captions × 5 noises) and an interpolation strip between two
 * captions.
 *
 * @example
 * ```ts
 * import { infer } from "./infer.ts";
 * await infer({ checkpoint: "runs/latest", captions: "test_captions.csv", out: "inference" })();
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { encodeJpeg, toBytes, writeFileAtomic } from "./io/images.ts";
import { attempt, type PetalError } from "./io/errors.ts";
import { disposeCheckpoint, readCheckpoint, restoreGan } from "./io/checkpoint.ts";
import { Rng } from "../stages/rng.ts";
import { renderGrid } from "./io/grid.ts";
import { loadCaptions } from "./io/task_files.ts";
import type { TestCaption } from "./io/data.ts";
import { tokenizeAll, type Vocabulary, vocabularyFromJson } from "../stages/tokenize.ts";
import { disposeGan, embedCaptions, type Gan, sample } from "../stages/train_step.ts";

/** The task's report ids, used when the captions hold them. */
export const REPORT_IDS = [5685, 5883, 7547, 253, 6519];

/** Options of {@link infer} (the `deno task infer` flags). */
export interface InferOptions {
  readonly checkpoint: string;
  readonly captions?: string;
  readonly out: string;
  readonly batch?: number;
  readonly seed?: number;
  readonly dictionary?: string;
  readonly report?: boolean;
  readonly interpolate?: readonly [string, string];
  readonly log?: (line: string) => void;
}

/** What {@link infer} wrote: how many images, and the report and strip paths. */
export interface InferResult {
  readonly written: number;
  readonly report?: string;
  readonly interpolation?: string;
  readonly seconds: number;
}

/** A loaded generator: the EMA G and the text encoder of a checkpoint, with its vocabulary. */
export interface Generator {
  readonly gan: Gan;
  readonly vocab: Vocabulary;
}

/**
 * The EMA generator and text encoder of a checkpoint (a run folder or a `.petal` file),
 * with its vocabulary. Free it with {@link disposeGenerator}.
 *
 * @example
 * ```ts
 * const gen = await loadGenerator("runs/latest");
 * disposeGenerator(gen);
 * ```
 */
export async function loadGenerator(checkpoint: string): Promise<Generator> {
  const ck = await readCheckpoint(checkpoint);
  try {
    return {
      gan: await restoreGan(ck, checkpoint),
      vocab: vocabularyFromJson(ck.header.vocabulary),
    };
  } finally {
    disposeCheckpoint(ck);
  }
}

/** Frees a generator's tensors. */
export const disposeGenerator = (g: Generator): void => disposeGan(g.gan);

/**
 * RGB bytes of one image per caption. Row i uses noise row i of `noise` (zDim each).
 */
export async function generateImages(
  gen: Generator,
  captions: readonly string[],
  noise: Float32Array,
  batch = 64,
): Promise<Uint8Array[]> {
  const { gan, vocab } = gen;
  const { zDim, seqLen, imageSize } = gan.model;
  const out: Uint8Array[] = [];
  const per = imageSize * imageSize * 3;
  for (let start = 0; start < captions.length; start += batch) {
    const part = captions.slice(start, start + batch);
    const n = part.length;
    const pixels = tf.tidy(() => {
      const ids = tf.tensor2d(tokenizeAll(vocab, part, seqLen), [n, seqLen], "int32");
      const z = tf.tensor2d(noise.subarray(start * zDim, (start + n) * zDim), [n, zDim]);
      return sample(gan, z, embedCaptions(gan, ids, vocab.padId));
    });
    const data = await pixels.data();
    pixels.dispose();
    for (let i = 0; i < n; i++) out.push(toBytes(data.subarray(i * per, (i + 1) * per)));
  }
  return out;
}

/** Images along the straight line between two captions' embeddings, fixed noise. */
export async function interpolateCaptions(
  gen: Generator,
  a: string,
  b: string,
  steps: number,
  noise: Float32Array,
): Promise<Uint8Array[]> {
  const { gan, vocab } = gen;
  const { zDim, seqLen, imageSize } = gan.model;
  const pixels = tf.tidy(() => {
    const ids = tf.tensor2d(tokenizeAll(vocab, [a, b], seqLen), [2, seqLen], "int32");
    const e = embedCaptions(gan, ids, vocab.padId);
    const w = tf.linspace(0, 1, steps).reshape([steps, 1]);
    const mixed = tf.add(
      tf.mul(tf.sub(1, w), e.slice([0, 0], [1, -1])),
      tf.mul(w, e.slice([1, 0], [1, -1])),
    );
    const z = tf.tile(tf.tensor2d(noise.subarray(0, zDim), [1, zDim]), [steps, 1]);
    return sample(gan, z as tf.Tensor2D, mixed as tf.Tensor2D);
  });
  const data = await pixels.data();
  pixels.dispose();
  const per = imageSize * imageSize * 3;
  return Array.from({ length: steps }, (_, i) => toBytes(data.subarray(i * per, (i + 1) * per)));
}

/**
 * Extras go beside the inference folder (`inference_report.png`), never in it: the
 * task's scorer reads every file of that folder as an image to score.
 */
const sibling = (out: string) => out.replace(/\/+$/, "");

/**
 * The task's file name of image `id`.
 *
 * @example
 * ```ts
 * inferenceName(7); // "inference_0007.jpg"
 * ```
 */
export const inferenceName = (id: number): string => `inference_${String(id).padStart(4, "0")}.jpg`;

/** The images of every caption, in batches, as `OUT/inference_NNNN.jpg`; returns how many. */
async function writeImages(gen: Generator, rows: readonly TestCaption[], opts: InferOptions) {
  const { zDim, imageSize } = gen.gan.model;
  const rng = new Rng(opts.seed ?? 0);
  const batch = opts.batch ?? 64;
  await Deno.mkdir(opts.out, { recursive: true });
  for (let start = 0; start < rows.length; start += batch) {
    const part = rows.slice(start, start + batch);
    const noise = rng.normals(part.length * zDim);
    const images = await generateImages(gen, part.map((r) => r.caption), noise, batch);
    for (const [i, r] of part.entries()) {
      const path = `${opts.out}/${inferenceName(r.id)}`;
      await writeFileAtomic(path, await encodeJpeg(images[i], imageSize));
    }
    opts.log?.(`generated ${start + part.length}/${rows.length}`);
  }
  return rows.length;
}

/** The task's report grid (5 captions × 5 noises) beside the folder. */
async function writeReport(gen: Generator, rows: readonly TestCaption[], opts: InferOptions) {
  const byId = new Map(rows.map((r) => [r.id, r.caption]));
  const ids = REPORT_IDS.every((id) => byId.has(id))
    ? REPORT_IDS
    : rows.slice(0, 5).map((r) => r.id);
  const noise = new Rng((opts.seed ?? 0) + 1).normals(5 * gen.gan.model.zDim);
  const gridRows = [];
  for (const id of ids) {
    const caption = byId.get(id)!;
    const images = await generateImages(gen, Array(5).fill(caption), noise);
    gridRows.push({ label: `${id}: ${caption}`, images });
  }
  const path = `${sibling(opts.out)}_report.png`;
  const grid = await renderGrid(gridRows, gen.gan.model.imageSize, { labelWidth: 300 });
  await writeFileAtomic(path, grid);
  opts.log?.(`report: ${path} (ids ${ids.join(", ")})`);
  return path;
}

/** An 8-step strip between two captions, beside the folder. */
async function writeInterpolation(
  gen: Generator,
  [a, b]: readonly [string, string],
  opts: InferOptions,
) {
  const noise = new Rng((opts.seed ?? 0) + 2).normals(gen.gan.model.zDim);
  const images = await interpolateCaptions(gen, a, b, 8, noise);
  const path = `${sibling(opts.out)}_interpolation.png`;
  const grid = await renderGrid([{ label: `${a} → ${b}`, images }], gen.gan.model.imageSize);
  await writeFileAtomic(path, grid);
  opts.log?.(`interpolation: ${path}`);
  return path;
}

/** Runs `write` unless `when` is false (an optional output). */
const optional = <A>(
  when: A | false | undefined,
  write: (a: A) => Promise<string>,
  path: string,
): TE.TaskEither<PetalError, string | undefined> =>
  when === false || when === undefined ? TE.right(undefined) : attempt(() => write(when), path);

/** With the generator loaded: the images, then the optional report and strip. */
const drawAll =
  (opts: InferOptions, rows: readonly TestCaption[], started: number) =>
  (gen: Generator): TE.TaskEither<PetalError, InferResult> =>
    pipe(
      TE.Do,
      TE.bind("written", () => attempt(() => writeImages(gen, rows, opts), opts.out)),
      TE.bind("report", () =>
        optional(opts.report && rows.length > 0, () => writeReport(gen, rows, opts), opts.out)),
      TE.bind("interpolation", () =>
        optional(opts.interpolate, (pair) =>
          writeInterpolation(gen, pair, opts), opts.out)),
      TE.map((r) => ({ ...r, seconds: (performance.now() - started) / 1000 })),
    );

/**
 * The infer pipeline: captions (CSV or testData.pkl) → the checkpoint's EMA generator →
 * JPEGs, plus the optional report grid and interpolation strip.
 */
export const infer = (opts: InferOptions): TE.TaskEither<PetalError, InferResult> => {
  const started = performance.now();
  return pipe(
    opts.captions ? loadCaptions(opts.captions, opts.dictionary) : TE.right([]),
    TE.chain((rows) =>
      TE.bracket(
        attempt(() => loadGenerator(opts.checkpoint), opts.checkpoint),
        drawAll(opts, rows, started),
        (gen) => TE.fromIO(() => disposeGenerator(gen)),
      )
    ),
  );
};
