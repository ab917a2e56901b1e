/**
 * The quality loop: train a recipe for a fixed budget on the training images minus the
 * evaluator's held-out split, draw one image per held-out image from one fixed caption
 * of it (fixed seeds, EMA generator), score them against the held-out real images with
 * the evaluator, and append a row to the ledger (docs/quality.md). Baselines — real,
 * shuffled real, noise and caption retrieval — are scored the same way and kept at the
 * top of the ledger.
 *
 *   evaluator → held-out ids → train (without them) → captions → images → score → row
 *
 * @example
 * ```ts
 * import { runQuality } from "./quality.ts";
 * const r = await runQuality({ data: ".cache/synthetic", evaluator: "runs/evaluator",
 *   out: "runs/quality", maxSteps: 20, train: { seed: 1 } })();
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import sharp from "sharp";
import { pipe } from "fp-ts/function";
import { loadReedFolder } from "./io/data.ts";
import { attempt, type PetalError, petalError, PetalFailure, unwrap } from "./io/errors.ts";
import { encodeJpeg, writeFileAtomic } from "./io/images.ts";
import { renderGrid } from "./io/grid.ts";
import type { EvaluatorManifest } from "./evaluator.ts";
import {
  candidateNoise,
  candidatesFor,
  candidateStreams,
  disposeGenerator,
  generateImages,
  type Generator,
  inferenceName,
  reportRows,
} from "./infer.ts";
import { scoreFolder, type ScoreSummary } from "./score.ts";
import { scoreSanity } from "./sanity.ts";
import { train, type TrainOptions } from "./train.ts";
import { captionIndex, retrieveByWords } from "../stages/retrieval.ts";

/** Options of {@link runQuality}: the train options (minus exclusions) and where to score. */
export interface QualityOptions extends Omit<TrainOptions, "excludeIds" | "keepModel"> {
  readonly evaluator: string;
  /** Report captions (`id,caption` CSV) for the grid; else the first held-out captions. */
  readonly reportCaptions?: readonly { id: number; caption: string }[];
  /** Where the grid PNG goes (else `OUT/report.png`). */
  readonly gridPath?: string;
  /** Noise seed of the generated images (fixed: same seed, same images). */
  readonly noiseSeed?: number;
  /** Noises per caption of which the matcher keeps the best (infer's default when absent). */
  readonly candidates?: number;
}

/** What {@link runQuality} measured. */
export interface QualityResult {
  readonly summary: ScoreSummary;
  readonly steps: number;
  readonly epochs: number;
  readonly minutes: number;
  readonly imagesPerSecond: number;
  readonly heldOutAccuracy: number;
  readonly trainImages: number;
  readonly gridPath: string;
  /** Noises drawn per caption (1: no pick). */
  readonly candidates: number;
}

/** One held-out image and the caption its generated image is drawn from. */
export interface HeldOutCaption {
  readonly id: number;
  readonly caption: string;
}

/**
 * The evaluator's manifest, or a one-line error with the command that trains one.
 */
export async function evaluatorManifest(dir: string): Promise<EvaluatorManifest> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/evaluator.json`));
  } catch {
    throw new PetalFailure(petalError(
      "MissingFolder",
      `${dir}/evaluator.json`,
      "no evaluator here (the quality loop scores with it and trains without its held-out split)",
      `train one: deno task evaluator --data ../shared/oxford102 --out ${dir}`,
    ));
  }
}

/**
 * One fixed caption per held-out image: its first non-blank caption (no randomness, so
 * every recipe is scored on the same captions).
 */
export async function heldOutCaptions(
  data: string,
  ids: readonly number[],
): Promise<
  { held: HeldOutCaption[]; training: { id: number; path: string; captions: readonly string[] }[] }
> {
  const { records } = await unwrap(loadReedFolder(data));
  const wanted = new Set(ids);
  const held = records.filter((r) => wanted.has(r.imageId) && r.captions.length > 0)
    .map((r) => ({ id: r.imageId, caption: r.captions[0] }));
  const training = records.filter((r) => !wanted.has(r.imageId))
    .map((r) => ({ id: r.imageId, path: r.imagePath, captions: r.captions }));
  return { held, training };
}

/** One image per held-out caption into `dir`, noise row i from one seeded stream. */
async function drawHeldOut(
  gen: Generator,
  rows: readonly HeldOutCaption[],
  dir: string,
  seed: number,
  candidates: number,
) {
  await Deno.mkdir(dir, { recursive: true });
  for (const e of Deno.readDirSync(dir)) await Deno.remove(`${dir}/${e.name}`);
  const { zDim, imageSize } = gen.gan.model;
  const noise = candidateNoise(candidateStreams(seed), rows.length, zDim, candidates);
  const images = await generateImages(gen, rows.map((r) => r.caption), noise);
  for (const [i, r] of rows.entries()) {
    await writeFileAtomic(`${dir}/${inferenceName(r.id)}`, await encodeJpeg(images[i], imageSize));
  }
}

/** The report grid: 5 captions × 5 fixed noises, captions beside the rows. */
async function drawReport(
  gen: Generator,
  captions: readonly { id: number; caption: string }[],
  path: string,
  seed: number,
  candidates: number,
) {
  const rows = await reportRows(gen, captions, seed + 1, candidates);
  // A 256-colour PNG: the grid is committed with the ledger, so it should stay small.
  const png = await sharp(await renderGrid(rows, gen.gan.model.imageSize, { labelWidth: 300 }))
    .png({ palette: true, colours: 256, compressionLevel: 9, effort: 10 }).toBuffer();
  await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  await writeFileAtomic(path, png);
}

async function quality(opts: QualityOptions): Promise<QualityResult> {
  const manifest = await evaluatorManifest(opts.evaluator);
  const excludeIds = new Set(manifest.heldOutIds);
  const { held, training } = await heldOutCaptions(opts.data, manifest.heldOutIds);
  const result = await unwrap(train({ ...opts, excludeIds, keepModel: true }));
  const gen = result.model!;
  const seed = opts.noiseSeed ?? 0;
  const gridPath = opts.gridPath ?? `${opts.out}/report.png`;
  let candidates = 1;
  try {
    candidates = candidatesFor(gen, opts.out, opts.candidates);
    await drawHeldOut(gen, held, `${opts.out}/inference`, seed, candidates);
    const report = opts.reportCaptions?.length ? opts.reportCaptions : held;
    await drawReport(gen, report, gridPath, seed, candidates);
  } finally {
    disposeGenerator(gen);
  }
  const summary = await unwrap(scoreFolder({
    inference: `${opts.out}/inference`,
    csv: `${opts.out}/score.csv`,
    batch: 64,
    evaluator: opts.evaluator,
    reference: `${opts.data}/images`,
  }));
  const { progress } = result;
  return {
    summary,
    steps: progress.step,
    epochs: progress.step /
      Math.max(1, Math.floor(training.length / result.recipe.train.batchSize)),
    minutes: progress.seconds / 60,
    imagesPerSecond: result.imagesPerSecond,
    heldOutAccuracy: manifest.heldOutAccuracy,
    trainImages: training.length,
    gridPath,
    candidates,
  };
}

/**
 * The quality loop: train without the evaluator's held-out images, draw one image per
 * held-out caption, score against the real held-out images (see the module comment).
 */
export const runQuality = (opts: QualityOptions): TE.TaskEither<PetalError, QualityResult> =>
  attempt(() => quality(opts), opts.out);

/** A baseline row: its name and summary. */
export interface BaselineRow {
  readonly name: string;
  readonly summary: ScoreSummary;
}

/**
 * Caption retrieval: for each held-out caption, the training photo (never a held-out
 * one) whose captions share the most words with it, scored as if generated.
 */
async function retrievalBaseline(data: string, evaluator: string, work: string) {
  const manifest = await evaluatorManifest(evaluator);
  const { held, training } = await heldOutCaptions(data, manifest.heldOutIds);
  const index = captionIndex(training.map((t) => t.captions));
  const dir = `${work}/retrieval`;
  await Deno.mkdir(dir, { recursive: true });
  for (const h of held) {
    const photo = training[retrieveByWords(h.caption, index)];
    await Deno.copyFile(photo.path, `${dir}/${inferenceName(h.id)}`);
  }
  return await unwrap(scoreFolder({
    inference: dir,
    csv: `${work}/retrieval.csv`,
    batch: 64,
    evaluator,
    reference: `${data}/images`,
  }));
}

/** The baselines: real, shuffled real and noise (pipeline/sanity.ts), caption retrieval. */
export const qualityBaselines = (
  data: string,
  evaluator: string,
): TE.TaskEither<PetalError, BaselineRow[]> =>
  pipe(
    scoreSanity({ evaluator, images: `${data}/images` }),
    TE.chain((rows) =>
      attempt(async () => {
        const work = await Deno.makeTempDir({ prefix: "petal-baselines-" });
        try {
          const retrieval = await retrievalBaseline(data, evaluator, work);
          return [
            ...rows.map((r) => ({ name: r.name, summary: r })),
            { name: "retrieval", summary: retrieval },
          ];
        } finally {
          await Deno.remove(work, { recursive: true });
        }
      }, evaluator)
    ),
  );
