/**
 * The infer pipeline: checkpoint + captions → one 64×64 JPEG per caption,
 * `inference_{id:04d}.jpg`, generated in batches by the EMA generator. Where the
 * checkpoint keeps its image–text matcher, each image is the best of 8 noises for its
 * caption (`candidates`; stages/match.ts `pickBest`). Optional extras:
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
import { attempt, type PetalError, petalError, PetalFailure } from "./io/errors.ts";
import {
  checkpointVocabulary,
  disposeCheckpoint,
  readCheckpoint,
  restoreGan,
} from "./io/checkpoint.ts";
import { Rng } from "../stages/rng.ts";
import { renderGrid } from "./io/grid.ts";
import { loadCaptions } from "./io/task_files.ts";
import type { TestCaption } from "./io/data.ts";
import { tokenizeAll, type Vocabulary } from "../stages/tokenize.ts";
import { disposeGan, embedCaptions, type Gan, sample } from "../stages/train_step.ts";
import { pickBest } from "../stages/match.ts";

/** The task's report ids, used when the captions hold them. */
export const REPORT_IDS = [5685, 5883, 7547, 253, 6519];

/** Options of {@link infer} (the `deno task infer` flags). */
export interface InferOptions {
  readonly checkpoint: string;
  readonly captions?: string;
  readonly out: string;
  readonly batch?: number;
  readonly seed?: number;
  /**
   * Noises drawn per caption, of which the matcher keeps the image nearest the caption
   * (default {@link DEFAULT_CANDIDATES} where the checkpoint keeps its matcher, else 1).
   */
  readonly candidates?: number;
  readonly dictionary?: string;
  readonly report?: boolean;
  readonly interpolate?: readonly [string, string];
  readonly log?: (line: string) => void;
}

/** What {@link infer} wrote: how many images, and the report and strip paths. */
export interface InferResult {
  readonly written: number;
  /** Noises drawn per caption (the matcher kept the best; 1: no pick). */
  readonly candidates: number;
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
    // The vocabulary first: a bad one then fails before a model is made (and leaked).
    const vocab = checkpointVocabulary(ck, checkpoint);
    return { gan: await restoreGan(ck, checkpoint), vocab };
  } finally {
    disposeCheckpoint(ck);
  }
}

/** Frees a generator's tensors. */
export const disposeGenerator = (g: Generator): void => disposeGan(g.gan);

/** Best-of-K's default: the noises drawn per caption where a matcher picks among them. */
export const DEFAULT_CANDIDATES = 8;

/**
 * How many noises per caption: `asked`, or {@link DEFAULT_CANDIDATES} where the
 * checkpoint keeps its matcher and 1 where it does not. Asking for more than one of a
 * checkpoint without a matcher is an error naming the fix.
 */
export function candidatesFor(gen: Generator, checkpoint: string, asked?: number): number {
  if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1)) {
    throw new PetalFailure(petalError(
      "BadArgument",
      checkpoint,
      `--candidates ${asked} is not a whole number ≥ 1`,
      "pass --candidates 1 (no pick) or more",
    ));
  }
  if (asked !== undefined && asked > 1 && !gen.gan.match) {
    throw new PetalFailure(petalError(
      "BadArgument",
      checkpoint,
      `this checkpoint keeps no image–text matcher, so it cannot pick the best of ${asked}`,
      "pass --candidates 1, or train with --pretrain-text (the default) to keep one",
    ));
  }
  return asked ?? (gen.gan.match ? DEFAULT_CANDIDATES : 1);
}

/** The candidates' noise streams: the first is `seed`'s, others from their own stream. */
export const candidateStreams = (seed: number): [Rng, Rng] => [
  new Rng(seed),
  new Rng(seed ^ 0xca4d1d),
];

/**
 * `candidates` noises for `count` images: the first from `first` (so that one candidate
 * draws exactly what it always drew), the others from `more`.
 */
export const candidateNoise = (
  [first, more]: readonly [Rng, Rng],
  count: number,
  zDim: number,
  candidates: number,
): Float32Array[] => [
  first.normals(count * zDim),
  ...Array.from({ length: candidates - 1 }, () => more.normals(count * zDim)),
];

/**
 * RGB bytes of one image per caption. Row i uses noise row i of `noise` (zDim each).
 * Given several noises (each of that shape), each caption's image is the candidate its
 * matcher finds nearest the caption (the generator must keep a matcher).
 */
export async function generateImages(
  gen: Generator,
  captions: readonly string[],
  noise: Float32Array | readonly Float32Array[],
  batch = 64,
): Promise<Uint8Array[]> {
  const { gan, vocab } = gen;
  const { zDim, seqLen, imageSize } = gan.model;
  const noises = noise instanceof Float32Array ? [noise] : noise;
  if (noises.length > 1 && !gan.match) throw new Error("best-of-K needs the GAN's matcher");
  const out: Uint8Array[] = [];
  const per = imageSize * imageSize * 3;
  for (let start = 0; start < captions.length; start += batch) {
    const part = captions.slice(start, start + batch);
    const n = part.length;
    const pixels = tf.tidy(() => {
      const ids = tf.tensor2d(tokenizeAll(vocab, part, seqLen), [n, seqLen], "int32");
      const text = embedCaptions(gan, ids, vocab.padId);
      const images = noises.map((z) =>
        sample(gan, tf.tensor2d(z.subarray(start * zDim, (start + n) * zDim), [n, zDim]), text)
      );
      return images.length === 1 ? images[0] : pickBest(gan.match!, images, text);
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
async function writeImages(
  gen: Generator,
  rows: readonly TestCaption[],
  opts: InferOptions,
  candidates: number,
) {
  const { zDim, imageSize } = gen.gan.model;
  const streams = candidateStreams(opts.seed ?? 0);
  const batch = opts.batch ?? 64;
  await Deno.mkdir(opts.out, { recursive: true });
  for (let start = 0; start < rows.length; start += batch) {
    const part = rows.slice(start, start + batch);
    const noise = candidateNoise(streams, part.length, zDim, candidates);
    const images = await generateImages(gen, part.map((r) => r.caption), noise, batch);
    for (const [i, r] of part.entries()) {
      const path = `${opts.out}/${inferenceName(r.id)}`;
      await writeFileAtomic(path, await encodeJpeg(images[i], imageSize));
    }
    opts.log?.(`generated ${start + part.length}/${rows.length}`);
  }
  return rows.length;
}

/**
 * The rows of the task's report grid: 5 captions (the report ids when `captions` hold
 * them, else its first 5) × 5 noises of `seed`, each the best of `candidates`.
 */
export async function reportRows(
  gen: Generator,
  captions: readonly { id: number; caption: string }[],
  seed: number,
  candidates: number,
): Promise<{ label: string; images: Uint8Array[] }[]> {
  const byId = new Map(captions.map((r) => [r.id, r.caption]));
  const ids = REPORT_IDS.every((id) => byId.has(id))
    ? REPORT_IDS
    : captions.slice(0, 5).map((r) => r.id);
  const noise = candidateNoise(candidateStreams(seed), 5, gen.gan.model.zDim, candidates);
  const rows = [];
  for (const id of ids) {
    const caption = byId.get(id)!;
    rows.push({
      label: `${id}: ${caption}`,
      images: await generateImages(gen, Array(5).fill(caption), noise),
    });
  }
  return rows;
}

/** The task's report grid (5 captions × 5 noises) beside the folder. */
async function writeReport(
  gen: Generator,
  rows: readonly TestCaption[],
  opts: InferOptions,
  candidates: number,
) {
  const gridRows = await reportRows(gen, rows, (opts.seed ?? 0) + 1, candidates);
  const path = `${sibling(opts.out)}_report.png`;
  const grid = await renderGrid(gridRows, gen.gan.model.imageSize, { labelWidth: 300 });
  await writeFileAtomic(path, grid);
  opts.log?.(`report: ${path} (ids ${gridRows.map((r) => r.label.split(":")[0]).join(", ")})`);
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

/** The noises per caption, said in the log when the matcher picks among several. */
function chooseCandidates(gen: Generator, opts: InferOptions): number {
  const k = candidatesFor(gen, opts.checkpoint, opts.candidates);
  if (k > 1) opts.log?.(`best of ${k} noises per caption (the checkpoint's matcher picks)`);
  return k;
}

/** With the generator loaded: the images, then the optional report and strip. */
const drawAll =
  (opts: InferOptions, rows: readonly TestCaption[], started: number) =>
  (gen: Generator): TE.TaskEither<PetalError, InferResult> =>
    pipe(
      TE.Do,
      TE.bind("candidates", () =>
        attempt(() => Promise.resolve(chooseCandidates(gen, opts)), opts.checkpoint)),
      TE.bind("written", ({ candidates }) =>
        attempt(() =>
          writeImages(gen, rows, opts, candidates), opts.out)),
      TE.bind("report", ({ candidates }) =>
        optional(
          opts.report && rows.length > 0,
          () =>
            writeReport(gen, rows, opts, candidates),
          opts.out,
        )),
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
