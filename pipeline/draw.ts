/**
 * The one drawing path. {@link drawPixels}: captions (each with its id) → RGB bytes, the
 * best of K noises per caption where K > 1 (the checkpoint's matcher picks, stages/match.ts
 * `pickBest`); {@link drawFolder}: captions → a folder of `inference_NNNN.jpg`. infer,
 * quality, serve, the sample grids, the report grid and docs/examples/custom_infer.ts all
 * draw through these, and every noise comes from the one noise policy (stages/noise.ts
 * `captionNoise`): an image depends on (checkpoint, caption id, seed, K, guidance) only,
 * never on the batch size or the other captions of its batch. Guidance (stages/generate.ts
 * `Guidance`) moves each caption's condition away from the checkpoint's mean condition:
 * given several scales, every noise is drawn at each and the matcher picks among all of
 * them ({@link defaultGuidance}: {@link PICKED_GUIDANCE} where the checkpoint keeps a mean
 * condition and a matcher).
 *
 * @example
 * ```ts
 * import { drawPixels } from "./draw.ts";
 * // const rgb = await drawPixels(gen, [{ id: 7, caption: "a red flower" }], { seed: 0 });
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { encodeJpeg, toBytes, writeFilesAtomic } from "./io/images.ts";
import { ioError, type PetalError, petalError } from "./io/errors.ts";
import { tokenizeAll, type Vocabulary } from "../stages/tokenize.ts";
import {
  embedCaptions,
  type Gan,
  meanCondition,
  sample,
  setCaptionRivals,
  setMeanCondition,
} from "../stages/train_step.ts";
import { pickBest, RIVAL_COUNT, rivals } from "../stages/match.ts";
import { captionNoise, noiseRows, positionIds } from "../stages/noise.ts";

/** A loaded generator: the EMA G and the text encoder of a checkpoint, with its vocabulary. */
export interface Generator {
  readonly gan: Gan;
  readonly vocab: Vocabulary;
}

/** A caption to draw and its id (the noise policy's key; a position where it has none). */
export interface Drawn {
  readonly id: number;
  readonly caption: string;
}

/**
 * Guidance: one scale (1: none), or several, each of a caption's K noises then drawn at
 * every scale and the matcher keeping the best of all K · scales (it chooses, per
 * caption, how far to push).
 */
export type GuidanceScales = number | readonly number[];

/** How to draw: the noise seed, K noises per caption, and captions per forward pass. */
export interface DrawOptions {
  readonly seed: number;
  /** Noises per caption of which the matcher keeps the best (default 1: no pick). */
  readonly candidates?: number;
  /** Guidance scale or scales; default {@link defaultGuidance}. */
  readonly guidance?: GuidanceScales;
  /**
   * Captions per forward pass, at most (default 64; fewer where their K candidates would
   * pass {@link imagesPerPass}): memory only, the images do not depend on it.
   */
  readonly batch?: number;
}

/**
 * The most images one forward pass of G draws (captions × candidates): the K candidates
 * go through G together, as many as fit 64 MiB of G's largest activation (its last
 * block's channels at the full image size): 256 for `small`, 64 for `reed`. A bigger pass is faster
 * (best-of-8 on `small`: 86 img/s at 64 images per pass, 99 at 256), and the bound keeps
 * the memory of the activations a pass holds (reed at 512 images: 2.5 GiB).
 */
export const imagesPerPass = (model: { imageSize: number; gChannels: readonly number[] }) =>
  Math.max(1, Math.floor(2 ** 26 / (model.imageSize ** 2 * model.gChannels.at(-1)! * 4)));

/** Best-of-K's default: the noises drawn per caption where a matcher picks among them. */
export const DEFAULT_CANDIDATES = 8;

/** K where none is asked: {@link DEFAULT_CANDIDATES} with a matcher, 1 without. */
export const defaultCandidates = (gen: Generator): number => gen.gan.match ? DEFAULT_CANDIDATES : 1;

/**
 * How many noises per caption: `asked`, or {@link defaultCandidates}. Asking for more than
 * one of a checkpoint without a matcher is an error naming the fix.
 *
 * @example The shipped model keeps its matcher: best of 8 by default.
 * ```ts
 * import { candidatesFor, disposeGenerator, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * console.log(candidatesFor(gen, "models/flowers")); // { _tag: "Right", right: 8 }
 * console.log(candidatesFor(gen, "models/flowers", 0)._tag); // "Left": not a whole number ≥ 1
 * disposeGenerator(gen);
 * ```
 */
export function candidatesFor(
  gen: Generator,
  checkpoint: string,
  asked?: number,
): E.Either<PetalError, number> {
  if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1)) {
    return E.left(petalError(
      "BadArgument",
      checkpoint,
      `--candidates ${asked} is not a whole number ≥ 1`,
      "pass --candidates 1 (no pick) or more",
    ));
  }
  if (asked !== undefined && asked > 1 && !gen.gan.match) {
    return E.left(petalError(
      "BadArgument",
      checkpoint,
      `this checkpoint keeps no image–text matcher, so it cannot pick the best of ${asked}`,
      "pass --candidates 1, or train with --pretrain-text (the default) to keep one",
    ));
  }
  return E.right(asked ?? defaultCandidates(gen));
}

/**
 * Guidance's default scale where the checkpoint keeps its mean condition. Chosen on the
 * ledger's held-out split (docs/quality.md, "Guidance"): of 1, 1.25, 1.5, 1.75 and 2 on
 * three checkpoints, 1.5 gave the best mean score on two and was 0.001 behind 1.75 on the
 * third; every scale above 1 beat 1 on all three.
 */
export const DEFAULT_GUIDANCE = 1.5;

/**
 * Guidance's default scales where the checkpoint keeps its mean condition and a matcher:
 * each noise drawn at every scale, the matcher keeping the best of all. On the ledger's
 * held-out split (docs/quality.md, "Which candidate to keep", "Stronger guidance"), 8
 * noises at 1, 1.5 and 2 beat 8 at 1.5 alone; at the same cost, 1, 2 and 3 beat 1, 1.5 and
 * 2 on the mean score and IS of both 60-minute runs of the default (0.3026 against 0.3081,
 * 0.3122 against 0.3139; 0.3028 and 0.3134 with the pick's cap on clipped candidates,
 * stages/match.ts `MAX_CLIPPED`, which scale 3 needs).
 */
export const PICKED_GUIDANCE: readonly number[] = [1, 2, 3];

/**
 * Guidance where none is asked: {@link PICKED_GUIDANCE} where the checkpoint keeps its
 * mean condition and a matcher to pick, [{@link DEFAULT_GUIDANCE}] where it keeps only
 * the mean condition, [1] (none) where it was written before petal kept one.
 */
export const defaultGuidance = (gen: Generator): readonly number[] =>
  !meanCondition(gen.gan) ? [1] : gen.gan.match ? PICKED_GUIDANCE : [DEFAULT_GUIDANCE];

/** Whether `scales` move any condition (anything but the one scale 1). */
export const guided = (scales: readonly number[]): boolean => scales.length > 1 || scales[0] !== 1;

/** The scales of a {@link GuidanceScales}, as a list. */
export const scalesOf = (g: GuidanceScales): readonly number[] => typeof g === "number" ? [g] : g;

/**
 * The one scale that a drawing without a pick (an interpolation strip) takes of several:
 * the middle one (the lower middle of an even count).
 */
export function middleScale(g: GuidanceScales): number {
  const sorted = [...scalesOf(g)].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1];
}

/**
 * The guidance scales: `asked`, or {@link defaultGuidance}. A scale that is not a number
 * ≥ 0, no scale at all, guidance other than 1 from a checkpoint without a mean condition,
 * or several scales from one without a matcher to pick among them, is an error naming
 * the fix.
 *
 * @example The shipped model keeps its mean condition and matcher: guidance 1, 2 and 3.
 * ```ts
 * import { disposeGenerator, guidanceFor, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * console.log(guidanceFor(gen, "models/flowers")); // { _tag: "Right", right: [ 1, 2, 3 ] }
 * console.log(guidanceFor(gen, "models/flowers", [1, 2])); // { _tag: "Right", right: [ 1, 2 ] }
 * console.log(guidanceFor(gen, "models/flowers", -1)._tag); // "Left": not a number ≥ 0
 * disposeGenerator(gen);
 * ```
 */
export function guidanceFor(
  gen: Generator,
  checkpoint: string,
  asked?: GuidanceScales,
): E.Either<PetalError, readonly number[]> {
  if (asked === undefined) return E.right(defaultGuidance(gen));
  const scales = scalesOf(asked);
  const fail = (message: string, fix: string) =>
    E.left(petalError("BadArgument", checkpoint, message, fix));
  const wrong = scales.find((g) => !(Number.isFinite(g) && g >= 0));
  if (scales.length === 0 || wrong !== undefined) {
    return fail(
      `--guidance ${scales.length ? wrong : "(none)"} is not a number ≥ 0`,
      "pass --guidance 1 (none), a scale such as 1.5, or scales such as 1,1.5,2",
    );
  }
  if (scales.some((g) => g !== 1) && !meanCondition(gen.gan)) {
    return fail(
      `this checkpoint keeps no mean condition (it was written before guidance), so it cannot draw with guidance ${
        scales.join(",")
      }`,
      "pass --guidance 1, or `deno task export --checkpoint DIR --data DATA` to give it one",
    );
  }
  if (scales.length > 1 && !gen.gan.match) {
    return fail(
      `this checkpoint keeps no image–text matcher to pick among guidance ${scales.join(",")}`,
      "pass one scale, or train with --pretrain-text (the default) to keep a matcher",
    );
  }
  return E.right(scales);
}

/**
 * Gives a generator whose checkpoint was written before petal kept the mean condition
 * one (stages/train_step.ts `setMeanCondition`) from `captions`, which should be the
 * training captions of its run; a run's own checkpoints get theirs from training.
 */
export const giveMeanCondition = (gen: Generator, captions: readonly string[]): void =>
  withTokenBatches(gen, captions, (batches) => setMeanCondition(gen.gan, batches, gen.vocab.padId));

/** Runs `use` on `captions` tokenized in batches of 256 rows, and frees the batches. */
function withTokenBatches(
  gen: Generator,
  captions: readonly string[],
  use: (batches: readonly tf.Tensor2D[]) => void,
): void {
  const { seqLen } = gen.gan.model;
  const batches: tf.Tensor2D[] = [];
  for (let start = 0; start < captions.length; start += 256) {
    const part = captions.slice(start, start + 256);
    batches.push(tf.tensor2d(tokenizeAll(gen.vocab, part, seqLen), [part.length, seqLen], "int32"));
  }
  try {
    use(batches);
  } finally {
    tf.dispose(batches);
  }
}

/**
 * Gives a generator whose checkpoint was written before petal kept the matcher's rivals
 * (stages/match.ts `setRivals`) sentence vectors of `captions` as rivals: at most
 * {@link RIVAL_COUNT}, evenly spaced. They should be training captions of its run (a
 * run's own checkpoints keep a random {@link RIVAL_COUNT} of them). Nothing for a
 * generator without a matcher.
 */
export function giveRivals(gen: Generator, captions: readonly string[]): void {
  const step = Math.max(1, captions.length / RIVAL_COUNT);
  const chosen = Array.from(
    { length: Math.min(RIVAL_COUNT, captions.length) },
    (_, i) => captions[Math.floor(i * step)],
  );
  withTokenBatches(gen, chosen, (batches) => setCaptionRivals(gen.gan, batches, gen.vocab.padId));
}

/** What drawing uses that a checkpoint written before petal kept it lacks. */
export interface Lacking {
  /** No mean condition (guidance's centre). */
  readonly center: boolean;
  /** A matcher without its rivals (the pick's other captions). */
  readonly rivals: boolean;
}

/** What `gen` lacks of what drawing uses ({@link Lacking}). */
export const lacking = (gen: Generator): Lacking => ({
  center: !meanCondition(gen.gan),
  rivals: gen.gan.match !== undefined && !rivals(gen.gan.match),
});

/**
 * Gives `gen` what it lacks ({@link giveMeanCondition}, {@link giveRivals}) from the
 * first caption of each of `training`, which should be its run's training images, and
 * returns what it lacked.
 */
export function completeGenerator(
  gen: Generator,
  training: readonly { readonly captions: readonly string[] }[],
): Lacking {
  const lacked = lacking(gen);
  const firsts = training.flatMap((t) => t.captions.slice(0, 1));
  if (lacked.center) giveMeanCondition(gen, firsts);
  if (lacked.rivals) giveRivals(gen, firsts);
  return lacked;
}

/** Captions without ids, keyed by position (the noise policy's rule for them). */
export const byPosition = (captions: readonly string[]): Drawn[] =>
  positionIds(captions.length).map((id) => ({ id, caption: captions[id] }));

/** Rows one after another, in one array. */
function concatRows(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  rows.reduce((at, r) => (out.set(r, at), at + r.length), 0);
  return out;
}

/**
 * One forward pass: RGB bytes of each caption given each candidate's noise rows
 * ([n·zDim] each), drawn at each guidance scale; with several candidates, the matcher's
 * pick of all of them.
 */
async function forward(
  gen: Generator,
  captions: readonly string[],
  noises: readonly Float32Array[],
  scales: readonly number[],
): Promise<Uint8Array[]> {
  const { gan, vocab } = gen;
  const { zDim, seqLen, imageSize } = gan.model;
  const n = captions.length;
  const K = noises.length, drawn = K * scales.length;
  if (drawn > 1 && !gan.match) throw new Error("a pick of several candidates needs the matcher");
  const pixels = tf.tidy(() => {
    const ids = tf.tensor2d(tokenizeAll(vocab, captions, seqLen), [n, seqLen], "int32");
    const text = embedCaptions(gan, ids, vocab.padId);
    // The K candidates in one pass of G per scale: rows k·n … k·n + n − 1 are noise k's.
    const z = tf.tensor2d(concatRows(noises), [K * n, zDim]);
    const textK = K === 1 ? text : tf.tile(text, [K, 1]) as tf.Tensor2D;
    const perScale = scales.map((g) => sample(gan, z, textK, g));
    const images = perScale.length === 1 ? perScale[0] : tf.concat(perScale) as tf.Tensor4D;
    return drawn === 1 ? images : pickBest(gan.match!, images, text);
  });
  const data = await pixels.data();
  pixels.dispose();
  const per = imageSize * imageSize * 3;
  return Array.from({ length: n }, (_, i) => toBytes(data.subarray(i * per, (i + 1) * per)));
}

/**
 * RGB bytes (imageSize² · 3 each) of one image per caption: candidate k of caption `id`
 * drawn from `captionNoise(seed, id, k)`, the matcher's pick of the K (the generator must
 * keep a matcher when K > 1), drawn with `guidance` ({@link defaultGuidance} unless set).
 * The batch size changes memory and speed, not the images.
 *
 * @example A caption's image depends on its id, not on the batch it is drawn in.
 * ```ts
 * import { disposeGenerator, drawPixels, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * const rows = [{ id: 1, caption: "a red flower" }, { id: 2, caption: "a white daisy" }];
 * const [red, daisy] = await drawPixels(gen, rows, { seed: 0, candidates: 2 });
 * const [alone] = await drawPixels(gen, rows.slice(1), { seed: 0, candidates: 2 });
 * console.log(red.length, daisy.every((v, i) => v === alone[i])); // 12288 true
 * disposeGenerator(gen);
 * ```
 */
export async function drawPixels(
  gen: Generator,
  captions: readonly Drawn[],
  opts: DrawOptions,
): Promise<Uint8Array[]> {
  const { zDim } = gen.gan.model;
  const batch = opts.batch ?? 64;
  const K = opts.candidates ?? 1;
  const scales = scalesOf(opts.guidance ?? defaultGuidance(gen));
  const out: Uint8Array[] = [];
  const perPass = Math.floor(imagesPerPass(gen.gan.model) / (K * scales.length));
  const per = Math.max(1, Math.min(batch, perPass));
  for (let start = 0; start < captions.length; start += per) {
    const part = captions.slice(start, start + per);
    const ids = part.map((c) => c.id);
    const noises = Array.from({ length: K }, (_, k) => noiseRows(opts.seed, ids, k, zDim));
    out.push(...await forward(gen, part.map((c) => c.caption), noises, scales));
  }
  return out;
}

/**
 * RGB bytes of one image per caption from explicit noise: row i of `noise` (zDim each)
 * for caption i; given several noises, the matcher's pick; with `guidance` (default
 * {@link defaultGuidance}). For a script's own noise; the tools draw with {@link drawPixels}.
 *
 * @example One noise of your own, under two captions.
 * ```ts
 * import { disposeGenerator, generateImages, loadGenerator, Rng, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * const z = new Rng(3).normals(gen.gan.model.zDim);
 * const noise = Float32Array.from([...z, ...z]); // row i: the noise of caption i
 * const images = await generateImages(gen, ["a red flower", "a blue flower"], noise);
 * console.log(images.length, images[0].length); // 2 12288
 * disposeGenerator(gen);
 * ```
 */
export async function generateImages(
  gen: Generator,
  captions: readonly string[],
  noise: Float32Array | readonly Float32Array[],
  batch = 64,
  guidance: GuidanceScales = defaultGuidance(gen),
): Promise<Uint8Array[]> {
  const { zDim } = gen.gan.model;
  const noises = noise instanceof Float32Array ? [noise] : noise;
  const out: Uint8Array[] = [];
  for (let start = 0; start < captions.length; start += batch) {
    const part = captions.slice(start, start + batch);
    const rows = noises.map((z) => z.subarray(start * zDim, (start + part.length) * zDim));
    out.push(...await forward(gen, part, rows, scalesOf(guidance)));
  }
  return out;
}

/**
 * Images along the straight line between two captions' embeddings, with the noise of
 * the first image of a request under `seed` (`captionNoise(seed, 0, 0)`), at the
 * {@link middleScale} of `guidance` (default {@link defaultGuidance}): one noise, no pick.
 *
 * @example Five steps from a red flower to a yellow one.
 * ```ts
 * import { disposeGenerator, interpolateCaptions, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * const strip = await interpolateCaptions(gen, "a red flower", "a yellow flower", 5, 0);
 * console.log(strip.length); // 5: the first is "a red flower", the last "a yellow flower"
 * disposeGenerator(gen);
 * ```
 */
export async function interpolateCaptions(
  gen: Generator,
  a: string,
  b: string,
  steps: number,
  seed: number,
  guidance: GuidanceScales = defaultGuidance(gen),
): Promise<Uint8Array[]> {
  const { gan, vocab } = gen;
  const scale = middleScale(guidance);
  const { zDim, seqLen, imageSize } = gan.model;
  const noise = captionNoise(seed, 0, 0, zDim);
  const pixels = tf.tidy(() => {
    const ids = tf.tensor2d(tokenizeAll(vocab, [a, b], seqLen), [2, seqLen], "int32");
    const e = embedCaptions(gan, ids, vocab.padId);
    const w = tf.linspace(0, 1, steps).reshape([steps, 1]);
    const mixed = tf.add(
      tf.mul(tf.sub(1, w), e.slice([0, 0], [1, -1])),
      tf.mul(w, e.slice([1, 0], [1, -1])),
    );
    const z = tf.tile(tf.tensor2d(noise, [1, zDim]), [steps, 1]);
    return sample(gan, z as tf.Tensor2D, mixed as tf.Tensor2D, scale);
  });
  const data = await pixels.data();
  pixels.dispose();
  const per = imageSize * imageSize * 3;
  return Array.from({ length: steps }, (_, i) => toBytes(data.subarray(i * per, (i + 1) * per)));
}

/**
 * The task's file name of image `id`.
 *
 * @example
 * ```ts
 * import { inferenceName } from "../mod.ts";
 *
 * console.log(inferenceName(7)); // "inference_0007.jpg"
 * ```
 */
export const inferenceName = (id: number): string => `inference_${String(id).padStart(4, "0")}.jpg`;

/** Options of {@link drawFolder}: {@link DrawOptions} and a progress line per batch. */
export interface FolderOptions extends DrawOptions {
  readonly log?: (line: string) => void;
}

/**
 * Captions → `DIR/inference_NNNN.jpg`, one per caption (named by its id), drawn by
 * {@link drawPixels} a batch at a time; the number written. The one captions → folder
 * path: infer, quality and the examples write through it.
 *
 * @example Two captions → two JPEGs named by their ids.
 * ```ts
 * import { disposeGenerator, drawFolder, loadGenerator, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * const dir = await Deno.makeTempDir();
 * const rows = [{ id: 5, caption: "a red flower" }, { id: 9, caption: "a white daisy" }];
 * console.log(await unwrap(drawFolder(gen, rows, dir, { seed: 0, candidates: 2 }))); // 2
 * console.log([...Deno.readDirSync(dir)].map((e) => e.name).sort()); // [ "inference_0005.jpg", "inference_0009.jpg" ]
 * disposeGenerator(gen);
 * ```
 */
export const drawFolder = (
  gen: Generator,
  rows: readonly Drawn[],
  dir: string,
  opts: FolderOptions,
): TE.TaskEither<PetalError, number> =>
  TE.tryCatch(async () => {
    const { imageSize } = gen.gan.model;
    const batch = opts.batch ?? 64;
    await Deno.mkdir(dir, { recursive: true });
    // A batch's JPEGs are encoded and written while the next batch is drawn.
    let writing: Promise<void> = Promise.resolve();
    try {
      for (let start = 0; start < rows.length; start += batch) {
        const part = rows.slice(start, start + batch);
        const images = await drawPixels(gen, part, { ...opts, batch });
        await writing;
        const done = start + part.length;
        writing = writeJpegs(dir, part, images, imageSize)
          .then(() => opts.log?.(`generated ${done}/${rows.length}`));
        writing.catch(() => {}); // handled: the next `await writing` throws it
      }
    } catch (e) {
      await writing.catch(() => {}); // no write left running once this fails
      throw e;
    }
    await writing;
    return rows.length;
  }, ioError(dir, "check the folder is writable and the disk has room"));

/** One batch's images as `DIR/inference_NNNN.jpg`, encoded side by side, written atomically. */
async function writeJpegs(
  dir: string,
  rows: readonly Drawn[],
  images: readonly Uint8Array[],
  imageSize: number,
): Promise<void> {
  const jpegs = await Promise.all(images.map((rgb) => encodeJpeg(rgb, imageSize)));
  await writeFilesAtomic(dir, new Map(rows.map((r, i) => [inferenceName(r.id), jpegs[i]])));
}

/** The task's report ids, used when the captions hold them. */
export const REPORT_IDS = [5685, 5883, 7547, 253, 6519];

/** Columns of the report grid. */
export const REPORT_COLUMNS = 5;

/**
 * The rows of the task's report grid: 5 captions (the report ids when `captions` hold
 * them, else its first 5) × 5 columns, column j drawn with id j (the position rule), so
 * every row shares the column's noise; each image the best of `candidates`.
 */
export async function reportRows(
  gen: Generator,
  captions: readonly Drawn[],
  seed: number,
  candidates: number,
  guidance?: GuidanceScales,
): Promise<{ label: string; images: Uint8Array[] }[]> {
  const byId = new Map(captions.map((r) => [r.id, r.caption]));
  const ids = REPORT_IDS.every((id) => byId.has(id))
    ? REPORT_IDS
    : captions.slice(0, 5).map((r) => r.id);
  const rows = [];
  for (const id of ids) {
    const caption = byId.get(id)!;
    const cells = byPosition(Array(REPORT_COLUMNS).fill(caption));
    rows.push({
      label: `${id}: ${caption}`,
      images: await drawPixels(gen, cells, { seed, candidates, guidance }),
    });
  }
  return rows;
}

/** Lifts {@link guidanceFor} into a TaskEither, for pipelines. */
export const guidanceTE = (
  gen: Generator,
  checkpoint: string,
  asked?: GuidanceScales,
): TE.TaskEither<PetalError, readonly number[]> =>
  pipe(guidanceFor(gen, checkpoint, asked), TE.fromEither);

/** Lifts {@link candidatesFor} into a TaskEither, for pipelines. */
export const candidatesTE = (
  gen: Generator,
  checkpoint: string,
  asked?: number,
): TE.TaskEither<PetalError, number> => pipe(candidatesFor(gen, checkpoint, asked), TE.fromEither);
