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
 * @example Twenty minutes of the default recipe on your data, scored by your evaluator.
 * ```ts ignore
 * import { unwrap } from "./io/errors.ts";
 * import { runQuality } from "./quality.ts";
 * import { recipe } from "../stages/recipe.ts";
 * const r = await unwrap(runQuality({ data: "../shared/oxford102", evaluator: "runs/evaluator",
 *   out: "runs/quality", minutes: 20, recipe: recipe("gan-int-cls", { seed: 1 }) }));
 * console.log(r.summary.meanScore);
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import sharp from "sharp";
import { pipe } from "fp-ts/function";
import { loadReedFolder } from "./io/data.ts";
import { ioError, type PetalError, petalError } from "./io/errors.ts";
import { writeFileAtomic } from "./io/images.ts";
import { renderGrid } from "./io/grid.ts";
import type { EvaluatorManifest } from "./evaluator.ts";
import { disposeGenerator } from "./infer.ts";
import { candidatesTE, drawFolder, type Generator, inferenceName, reportRows } from "./draw.ts";
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
export const evaluatorManifest = (dir: string): TE.TaskEither<PetalError, EvaluatorManifest> =>
  TE.tryCatch(
    async () => JSON.parse(await Deno.readTextFile(`${dir}/evaluator.json`)) as EvaluatorManifest,
    () =>
      petalError(
        "MissingFolder",
        `${dir}/evaluator.json`,
        "no evaluator here (the quality loop scores with it and trains without its held-out split)",
        `train one: deno task evaluator --data ../shared/oxford102 --out ${dir}`,
      ),
  );

/** The held-out captions and the training images left after taking them out. */
export interface HeldOutSplit {
  readonly held: HeldOutCaption[];
  readonly training: { id: number; path: string; captions: readonly string[] }[];
}

/**
 * One fixed caption per held-out image: its first non-blank caption (no randomness, so
 * every recipe is scored on the same captions).
 */
export const heldOutCaptions = (
  data: string,
  ids: readonly number[],
): TE.TaskEither<PetalError, HeldOutSplit> =>
  pipe(
    loadReedFolder(data),
    TE.map(({ records }) => {
      const wanted = new Set(ids);
      const held = records.filter((r) => wanted.has(r.imageId) && r.captions.length > 0)
        .map((r) => ({ id: r.imageId, caption: r.captions[0] }));
      const training = records.filter((r) => !wanted.has(r.imageId))
        .map((r) => ({ id: r.imageId, path: r.imagePath, captions: r.captions }));
      return { held, training };
    }),
  );

/** Empties `dir` (creating it): the held-out folder holds this run's images only. */
const emptyFolder = (dir: string): TE.TaskEither<PetalError, void> =>
  TE.tryCatch(async () => {
    await Deno.mkdir(dir, { recursive: true });
    for (const e of Deno.readDirSync(dir)) await Deno.remove(`${dir}/${e.name}`);
  }, ioError(dir, "check the folder is writable"));

/** The report grid: 5 captions × 5 columns, captions beside the rows. */
const drawReport = (
  gen: Generator,
  captions: readonly { id: number; caption: string }[],
  path: string,
  seed: number,
  candidates: number,
): TE.TaskEither<PetalError, void> =>
  TE.tryCatch(async () => {
    const rows = await reportRows(gen, captions, seed, candidates);
    // A 256-colour PNG: the grid is committed with the ledger, so it should stay small.
    const png = await sharp(await renderGrid(rows, gen.gan.model.imageSize, { labelWidth: 300 }))
      .png({ palette: true, colours: 256, compressionLevel: 9, effort: 10 }).toBuffer();
    await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await writeFileAtomic(path, png);
  }, ioError(path, "check the folder is writable"));

/**
 * With the trained generator: K, the held-out images (one per held-out caption, through
 * the drawing path, as infer draws them) and the report grid; returns K.
 */
const drawAll = (
  gen: Generator,
  opts: QualityOptions,
  held: readonly HeldOutCaption[],
  gridPath: string,
): TE.TaskEither<PetalError, number> => {
  const seed = opts.noiseSeed ?? 0;
  const dir = `${opts.out}/inference`;
  return pipe(
    candidatesTE(gen, opts.out, opts.candidates),
    TE.chainFirst(() => emptyFolder(dir)),
    TE.chainFirst((candidates) => drawFolder(gen, held, dir, { seed, candidates })),
    TE.chainFirst((candidates) =>
      drawReport(
        gen,
        opts.reportCaptions?.length ? opts.reportCaptions : held,
        gridPath,
        seed,
        candidates,
      )
    ),
  );
};

/**
 * The quality loop: train without the evaluator's held-out images, draw one image per
 * held-out caption, score against the real held-out images (see the module comment).
 *
 * @example A tiny evaluator, then one training step scored on its 4 held-out images.
 * ```ts
 * import { ensureSyntheticData, recipe, runQuality, trainEvaluator, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * await unwrap(trainEvaluator({ data, out: `${dir}/eval`, epochs: 1, batchSize: 8 }));
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * const r = await unwrap(runQuality({ data, evaluator: `${dir}/eval`, out: `${dir}/q`, recipe: quick, maxSteps: 1 }));
 * console.log(r.trainImages, r.summary.images, r.steps); // 12 4 1
 * console.log(r.summary.meanScore); // the task's score of the 4 drawings: lower is better
 * ```
 */
export const runQuality = (opts: QualityOptions): TE.TaskEither<PetalError, QualityResult> => {
  const gridPath = opts.gridPath ?? `${opts.out}/report.png`;
  return pipe(
    TE.Do,
    TE.bind("manifest", () => evaluatorManifest(opts.evaluator)),
    TE.bind("split", ({ manifest }) => heldOutCaptions(opts.data, manifest.heldOutIds)),
    TE.bind(
      "result",
      ({ manifest }) =>
        train({ ...opts, excludeIds: new Set(manifest.heldOutIds), keepModel: true }),
    ),
    TE.bind("candidates", ({ result, split }) =>
      TE.bracket(
        TE.right(result.model!),
        (gen) => drawAll(gen, opts, split.held, gridPath),
        (gen) => TE.fromIO(() => disposeGenerator(gen)),
      )),
    TE.bind("summary", () =>
      scoreFolder({
        inference: `${opts.out}/inference`,
        csv: `${opts.out}/score.csv`,
        batch: 64,
        evaluator: opts.evaluator,
        reference: `${opts.data}/images`,
      })),
    TE.map(({ manifest, split, result, candidates, summary }) => ({
      summary,
      steps: result.progress.step,
      epochs: result.progress.step /
        Math.max(1, Math.floor(split.training.length / result.recipe.train.batchSize)),
      minutes: result.progress.seconds / 60,
      imagesPerSecond: result.imagesPerSecond,
      heldOutAccuracy: manifest.heldOutAccuracy,
      trainImages: split.training.length,
      gridPath,
      candidates,
    })),
  );
};

/** A baseline row: its name and summary. */
export interface BaselineRow {
  readonly name: string;
  readonly summary: ScoreSummary;
}

/** Copies `photo` to `to`, as a TaskEither. */
const copy = (photo: string, to: string): TE.TaskEither<PetalError, void> =>
  TE.tryCatch(() => Deno.copyFile(photo, to), ioError(to, "check the folder is writable"));

/**
 * Caption retrieval: for each held-out caption, the training photo (never a held-out
 * one) whose captions share the most words with it, scored as if generated.
 */
const retrievalBaseline = (
  data: string,
  evaluator: string,
  work: string,
): TE.TaskEither<PetalError, ScoreSummary> => {
  const dir = `${work}/retrieval`;
  return pipe(
    evaluatorManifest(evaluator),
    TE.chain((manifest) => heldOutCaptions(data, manifest.heldOutIds)),
    TE.chainFirst(() =>
      TE.tryCatch(() => Deno.mkdir(dir, { recursive: true }), ioError(dir, "check the disk"))
    ),
    TE.chainFirst(({ held, training }) => {
      const index = captionIndex(training.map((t) => t.captions));
      return TE.sequenceSeqArray(
        held.map((h) =>
          copy(training[retrieveByWords(h.caption, index)].path, `${dir}/${inferenceName(h.id)}`)
        ),
      );
    }),
    TE.chain(() =>
      scoreFolder({
        inference: dir,
        csv: `${work}/retrieval.csv`,
        batch: 64,
        evaluator,
        reference: `${data}/images`,
      })
    ),
  );
};

/** The baselines: real, shuffled real and noise (pipeline/sanity.ts), caption retrieval. */
export const qualityBaselines = (
  data: string,
  evaluator: string,
): TE.TaskEither<PetalError, BaselineRow[]> =>
  pipe(
    scoreSanity({ evaluator, images: `${data}/images` }),
    TE.chain((rows) =>
      TE.bracket(
        TE.tryCatch(
          () => Deno.makeTempDir({ prefix: "petal-baselines-" }),
          ioError("temp", "check the temp folder is writable"),
        ),
        (work) =>
          pipe(
            retrievalBaseline(data, evaluator, work),
            TE.map((retrieval) => [
              ...rows.map((r) => ({ name: r.name, summary: r })),
              { name: "retrieval", summary: retrieval },
            ]),
          ),
        (work) =>
          TE.tryCatch(
            () => Deno.remove(work, { recursive: true }),
            ioError(work, "remove the folder by hand"),
          ),
      )
    ),
  );
