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
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";
import sharp from "sharp";
import { pipe } from "fp-ts/function";
import { loadReedFolder } from "./io/data.ts";
import { attempt, ioError, type PetalError, petalError } from "./io/errors.ts";
import { writeFileAtomic } from "./io/images.ts";
import { renderGrid } from "./io/grid.ts";
import { type EvaluatorManifest, sameClassPhotos } from "./evaluator.ts";
import { disposeGenerator, loadGenerator } from "./infer.ts";
import {
  candidatesTE,
  completeGenerator,
  drawFolder,
  type Generator,
  type GuidanceScales,
  guidanceTE,
  inferenceName,
  reportRows,
} from "./draw.ts";
import { scoreFolder, type ScoreSummary } from "./score.ts";
import { scoreSanity } from "./sanity.ts";
import { PRETRAIN_CLOCK_SHARE, train, type TrainOptions } from "./train.ts";
import type { StopReason } from "./steps.ts";
import { captionIndex, retrieveByWords } from "../stages/retrieval.ts";

/** Options of {@link runQuality}: the train options (minus exclusions) and where to score. */
export interface QualityOptions extends Omit<TrainOptions, "excludeIds" | "keepModel" | "resume"> {
  readonly evaluator: string;
  /** Report captions (`id,caption` CSV) for the grid; else the first held-out captions. */
  readonly reportCaptions?: readonly { id: number; caption: string }[];
  /** Where the grid PNG of the last point goes (else `OUT/report.png`). */
  readonly gridPath?: string;
  /** Where the grid PNG of an earlier point goes (else `OUT/report-POINT.png`). */
  readonly gridPathAt?: (point: number) => string;
  /** Noise seed of the generated images (fixed: same seed, same images). */
  readonly noiseSeed?: number;
  /** Noises per caption of which the matcher keeps the best (infer's default when absent). */
  readonly candidates?: number;
  /** Guidance scale or scales (infer's default when absent). */
  readonly guidance?: GuidanceScales;
  /**
   * Points of the budget at which the run is scored on its way, in the budget's unit
   * (minutes, or steps with `maxSteps`); see {@link budgetPoints}. The run trains to a
   * point, is scored, and trains on from its checkpoint (an exact resume); the time spent
   * scoring is not training time.
   */
  readonly points?: readonly number[];
  /** Called with each point's result once it is scored, before the run trains on. */
  readonly onPoint?: (r: QualityResult) => Promise<void> | void;
}

/** What {@link runQuality} measured at one point of its budget. */
export interface QualityResult {
  readonly summary: ScoreSummary;
  /** The point: minutes or steps of the budget (its last point: the budget). */
  readonly point: number;
  readonly steps: number;
  readonly epochs: number;
  /** Minutes trained so far (loading and text pre-training included), scoring excluded. */
  readonly minutes: number;
  /** Training images per second of the GAN steps so far. */
  readonly imagesPerSecond: number;
  readonly heldOutAccuracy: number;
  readonly trainImages: number;
  readonly gridPath: string;
  /** Noises drawn per caption (1: no pick). */
  readonly candidates: number;
  /** The guidance scales drawn with ([1]: none). */
  readonly guidance: readonly number[];
}

/** Minutes at which {@link runQuality}'s callers score a run on its way by default. */
export const QUALITY_LADDER: readonly number[] = [15, 30, 60, 120, 240, 480];

/**
 * The points a run is scored at: the asked ones inside the budget, in order, each once,
 * and the budget itself last.
 *
 * @example
 * ```ts
 * import { budgetPoints, QUALITY_LADDER } from "./quality.ts";
 * console.log(budgetPoints(120, QUALITY_LADDER)); // [ 15, 30, 60, 120 ]
 * console.log(budgetPoints(20, [60, 15, 15])); // [ 15, 20 ]
 * ```
 */
export const budgetPoints = (budget: number, asked: readonly number[] = []): number[] => [
  ...new Set([...asked].filter((p) => p > 0 && p < budget).sort((a, b) => a - b)),
  budget,
];

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
    TE.chainEitherK(({ records }) => {
      const present = new Set(records.map((r) => r.imageId));
      const missing = ids.filter((id) => !present.has(id));
      return missing.length === 0 ? E.right({ records }) : E.left(petalError(
        "BadArgument",
        data,
        `${missing.length} of the evaluator's ${ids.length} held-out images are not in this folder (the evaluator was trained on other data)`,
        `train one on it: deno task evaluator --data ${data} --out runs/evaluator, then pass --evaluator runs/evaluator`,
      ));
    }),
    TE.map(({ records }) => {
      const wanted = new Set(ids);
      const held = records.filter((r) => wanted.has(r.imageId) && r.captions.length > 0)
        .map((r) => ({ id: r.imageId, caption: r.captions[0] }));
      const training = records.filter((r) => !wanted.has(r.imageId))
        .map((r) => ({ id: r.imageId, path: r.imagePath, captions: r.captions }));
      return { held, training };
    }),
  );

/** A missing folder is already empty; other errors stand. */
const notFound = (e: unknown) => {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
};

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
  { candidates, guidance }: Drawing,
): TE.TaskEither<PetalError, void> =>
  TE.tryCatch(async () => {
    const rows = await reportRows(gen, captions, seed, candidates, guidance);
    // A 256-colour PNG: the grid is committed with the ledger, so it should stay small.
    const png = await sharp(await renderGrid(rows, gen.gan.model.imageSize, { labelWidth: 300 }))
      .png({ palette: true, colours: 256, compressionLevel: 9, effort: 10 }).toBuffer();
    await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await writeFileAtomic(path, png);
  }, ioError(path, "check the folder is writable"));

/** What drawing for the quality loop needs besides the generator. */
type DrawSettings = Pick<
  QualityOptions,
  "out" | "noiseSeed" | "candidates" | "guidance" | "reportCaptions"
>;

/** How the held-out captions were drawn: K noises per caption, and the guidance scales. */
interface Drawing {
  readonly candidates: number;
  readonly guidance: readonly number[];
}

/**
 * With a generator (the caller's, disposed after): K, the held-out images (one per held-out
 * caption, through the drawing path, as infer draws them), the report grid, and their
 * scores against the real held-out images.
 */
const drawAndScore = (
  generator: TE.TaskEither<PetalError, Generator>,
  opts: DrawSettings & { readonly data: string; readonly evaluator: string },
  held: readonly HeldOutCaption[],
  gridPath: string,
): TE.TaskEither<PetalError, Drawing & { summary: ScoreSummary }> => {
  const seed = opts.noiseSeed ?? 0;
  const dir = `${opts.out}/inference`;
  const draw = (gen: Generator): TE.TaskEither<PetalError, Drawing> =>
    pipe(
      TE.Do,
      TE.bind("candidates", () => candidatesTE(gen, opts.out, opts.candidates)),
      TE.bind("guidance", () => guidanceTE(gen, opts.out, opts.guidance)),
      TE.chainFirst(() => emptyFolder(dir)),
      TE.chainFirst((drawing) => drawFolder(gen, held, dir, { seed, ...drawing })),
      TE.chainFirst((drawing) =>
        drawReport(
          gen,
          opts.reportCaptions?.length ? opts.reportCaptions : held,
          gridPath,
          seed,
          drawing,
        )
      ),
    );
  return pipe(
    TE.bracket(generator, draw, (gen) => TE.fromIO(() => disposeGenerator(gen))),
    TE.bind("summary", () =>
      scoreFolder({
        inference: dir,
        csv: `${opts.out}/score.csv`,
        batch: 64,
        evaluator: opts.evaluator,
        reference: `${opts.data}/images`,
      })),
  );
};

/** The evaluator's split, as the legs of a run need it. */
interface Scoring {
  readonly manifest: EvaluatorManifest;
  readonly split: HeldOutSplit;
}

/** Images and seconds of GAN steps so far, and the step the last leg ended at. */
interface Tally {
  readonly images: number;
  readonly seconds: number;
  readonly step: number;
}

/** The budget of one leg: the minutes since the last point, or the steps in all. */
const legBudget = (opts: QualityOptions, points: readonly number[], i: number) =>
  opts.maxSteps !== undefined
    ? { maxSteps: points[i], minutes: undefined }
    : opts.minutes !== undefined
    ? {
      minutes: points[i] - (points[i - 1] ?? 0),
      // The text pre-training (first leg only) gets the whole budget's share, within the leg.
      pretrainMinutes: Math.min(opts.minutes * PRETRAIN_CLOCK_SHARE, points[0]),
    }
    : {};

/** One leg: train to point `i` (resuming after the first), draw, score. */
const leg = (
  opts: QualityOptions,
  { manifest, split }: Scoring,
  points: readonly number[],
  i: number,
  tally: Tally,
): TE.TaskEither<PetalError, { result: QualityResult; tally: Tally; stoppedBy: StopReason }> => {
  const last = i === points.length - 1;
  const gridPath = last
    ? opts.gridPath ?? `${opts.out}/report.png`
    : opts.gridPathAt?.(points[i]) ?? `${opts.out}/report-${points[i]}.png`;
  const excludeIds = new Set(manifest.heldOutIds);
  return pipe(
    train({ ...opts, ...legBudget(opts, points, i), excludeIds, keepModel: true, resume: i > 0 }),
    TE.bindTo("trained"),
    TE.bind(
      "scored",
      ({ trained }) => drawAndScore(TE.right(trained.model!), opts, split.held, gridPath),
    ),
    TE.map(({ trained, scored: { candidates, guidance, summary } }) => {
      const { step } = trained.progress;
      const images = (step - tally.step) * trained.recipe.train.batchSize;
      const seconds = trained.imagesPerSecond > 0 ? images / trained.imagesPerSecond : 0;
      const next = { images: tally.images + images, seconds: tally.seconds + seconds, step };
      const perEpoch = Math.max(
        1,
        Math.floor(split.training.length / trained.recipe.train.batchSize),
      );
      return {
        tally: next,
        stoppedBy: trained.stoppedBy,
        result: {
          summary,
          point: points[i],
          steps: step,
          epochs: step / perEpoch,
          minutes: trained.progress.seconds / 60,
          imagesPerSecond: next.images / Math.max(next.seconds, 1e-9),
          heldOutAccuracy: manifest.heldOutAccuracy,
          trainImages: split.training.length,
          gridPath,
          candidates,
          guidance,
        },
      };
    }),
  );
};

/** Legs `i` onwards, each point's result handed to `onPoint`; the last point's result. */
const legsFrom = (
  opts: QualityOptions,
  scoring: Scoring,
  points: readonly number[],
  i: number,
  tally: Tally,
): TE.TaskEither<PetalError, QualityResult> =>
  pipe(
    leg(opts, scoring, points, i, tally),
    TE.chainFirst(({ result }) =>
      TE.tryCatch(
        async () => await opts.onPoint?.(result),
        ioError(opts.out, "check where the point's result is written"),
      )
    ),
    // A stop request (Ctrl-C, `shouldStop`) ends the run at the point it reached.
    TE.chain(({ result, tally, stoppedBy }) =>
      i + 1 < points.length && stoppedBy !== "signal"
        ? legsFrom(opts, scoring, points, i + 1, tally)
        : TE.right(result)
    ),
  );

/**
 * The quality loop: train without the evaluator's held-out images, draw one image per
 * held-out caption, score against the real held-out images (see the module comment); at
 * each of `points` on the way too. `out` is emptied first, once the evaluator and the data
 * have passed their checks. Returns the last point's result.
 *
 * @example A tiny evaluator, then two training steps scored after one and after two.
 * ```ts
 * import { ensureSyntheticData, recipe, runQuality, trainEvaluator, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * await unwrap(trainEvaluator({ data, out: `${dir}/eval`, epochs: 1, batchSize: 8 }));
 * const quick = recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 8 });
 * const r = await unwrap(runQuality({
 *   data, evaluator: `${dir}/eval`, out: `${dir}/q`, recipe: quick, maxSteps: 2, points: [1],
 *   onPoint: (p) => console.log(p.point, p.steps), // 1 1, then 2 2
 * }));
 * console.log(r.trainImages, r.summary.images, r.steps); // 12 4 2
 * console.log(r.summary.meanScore); // the task's score of the 4 drawings: lower is better
 * ```
 */
export const runQuality = (opts: QualityOptions): TE.TaskEither<PetalError, QualityResult> => {
  const budget = opts.maxSteps ?? opts.minutes;
  // An epoch budget has no points: one leg with the options' own budget.
  const points = budget === undefined ? [Infinity] : budgetPoints(budget, opts.points);
  return pipe(
    evaluatorManifest(opts.evaluator),
    TE.chain((manifest) =>
      pipe(
        heldOutCaptions(opts.data, manifest.heldOutIds),
        TE.map((split): Scoring => ({ manifest, split })),
      )
    ),
    // Emptied once every check has passed: a refused run leaves the folder as it was.
    TE.chainFirst(() =>
      TE.tryCatch(
        () => Deno.remove(opts.out, { recursive: true }).catch(notFound),
        ioError(opts.out, "check the folder is writable"),
      )
    ),
    TE.chain((scoring) => legsFrom(opts, scoring, points, 0, { images: 0, seconds: 0, step: 0 })),
  );
};

/** A checkpoint's generator, and what it was given that its checkpoint did not keep. */
interface Completed {
  readonly gen: Generator;
  /** It kept no mean condition: given one. */
  readonly centered: boolean;
  /** Its matcher kept no rivals: given them. */
  readonly rivalled: boolean;
}

/**
 * A checkpoint's generator with a mean condition and, where it keeps a matcher, the
 * matcher's rivals: its own, or ones given from the first caption of each training image,
 * for a checkpoint written before petal kept them.
 */
const loadCompleted = (
  checkpoint: string,
  training: HeldOutSplit["training"],
): TE.TaskEither<PetalError, Completed> =>
  attempt(async () => {
    const gen = await loadGenerator(checkpoint);
    const lacked = completeGenerator(gen, training);
    return { gen, centered: lacked.center, rivalled: lacked.rivals };
  }, checkpoint);

/** Options of {@link rescoreCheckpoint}: the checkpoint, and how to draw and score it. */
export interface RescoreOptions extends DrawSettings {
  /** A run folder or `checkpoint.petal` that never trained on the evaluator's held-out images. */
  readonly checkpoint: string;
  readonly data: string;
  readonly evaluator: string;
  /** Where the grid PNG goes (else `OUT/report.png`). */
  readonly gridPath?: string;
}

/** What {@link rescoreCheckpoint} measured. */
export interface RescoreResult {
  readonly summary: ScoreSummary;
  readonly candidates: number;
  readonly guidance: readonly number[];
  /** The checkpoint kept no mean condition: it was given one from the split's training captions. */
  readonly centered: boolean;
  /** Its matcher kept no rivals: it was given them from the split's training captions. */
  readonly rivalled: boolean;
  readonly heldOutAccuracy: number;
  readonly gridPath: string;
}

/**
 * A ledger row's numbers again from its checkpoint: the held-out captions drawn as the
 * quality loop draws them (same noises, same K, same guidance) and scored by the
 * evaluator. The quality loop's own checkpoint re-scores to its row exactly; the
 * checkpoint must not have trained on the held-out images (quality runs and
 * `models/flowers` did not). A checkpoint written before petal kept the mean condition or
 * the matcher's rivals is given them from the split's training captions (each image's
 * first), so that it can be scored with guidance and the rivals pick.
 *
 * @example
 * ```ts ignore
 * import { rescoreCheckpoint } from "./quality.ts";
 * const r = await rescoreCheckpoint({ checkpoint: "models/flowers", data: "../shared/oxford102",
 *   evaluator: "models/evaluator", out: "runs/rescore" })();
 * ```
 */
export const rescoreCheckpoint = (
  opts: RescoreOptions,
): TE.TaskEither<PetalError, RescoreResult> => {
  const gridPath = opts.gridPath ?? `${opts.out}/report.png`;
  return pipe(
    evaluatorManifest(opts.evaluator),
    TE.bindTo("manifest"),
    TE.bind("split", ({ manifest }) => heldOutCaptions(opts.data, manifest.heldOutIds)),
    TE.bind("loaded", ({ split }) => loadCompleted(opts.checkpoint, split.training)),
    TE.bind(
      "scored",
      ({ split, loaded }) => drawAndScore(TE.right(loaded.gen), opts, split.held, gridPath),
    ),
    TE.map(({ manifest, scored, loaded }) => ({
      ...scored,
      centered: loaded.centered,
      rivalled: loaded.rivalled,
      heldOutAccuracy: manifest.heldOutAccuracy,
      gridPath,
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

/** Held-out id → photo, copied as `inference_NNNN.jpg` into `work/name` and scored as if generated. */
const photoBaseline = (
  name: string,
  photos: ReadonlyMap<number, string>,
  data: string,
  evaluator: string,
  work: string,
): TE.TaskEither<PetalError, ScoreSummary> => {
  const dir = `${work}/${name}`;
  return pipe(
    TE.tryCatch(() => Deno.mkdir(dir, { recursive: true }), ioError(dir, "check the disk")),
    TE.chain(() =>
      TE.sequenceSeqArray(
        [...photos].map(([id, photo]) => copy(photo, `${dir}/${inferenceName(id)}`)),
      )
    ),
    TE.chain(() =>
      scoreFolder({
        inference: dir,
        csv: `${work}/${name}.csv`,
        batch: 64,
        evaluator,
        reference: `${data}/images`,
      })
    ),
  );
};

/**
 * Caption retrieval: for each held-out caption, the training photo (never a held-out
 * one) whose captions share the most words with it.
 */
const retrievalPhotos = (
  data: string,
  heldIds: readonly number[],
): TE.TaskEither<PetalError, ReadonlyMap<number, string>> =>
  pipe(
    heldOutCaptions(data, heldIds),
    TE.map(({ held, training }) => {
      const index = captionIndex(training.map((t) => t.captions));
      return new Map(held.map((h) => [h.id, training[retrieveByWords(h.caption, index)].path]));
    }),
  );

/**
 * The photo baselines, each held-out id → a photo scored as if generated: caption
 * retrieval, and the same kind of flower (a training photo of the image's class, the
 * evaluator's labels, {@link sameClassPhotos}: what a generator that drew a real photo of
 * the caption's class would score).
 */
const PHOTO_BASELINES = [
  ["retrieval", retrievalPhotos],
  ["same-class", sameClassPhotos],
] as const;

/**
 * The baselines: real, shuffled real and noise (pipeline/sanity.ts), caption retrieval, and
 * a photo of the same class.
 */
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
            evaluatorManifest(evaluator),
            TE.chain(({ heldOutIds }) =>
              TE.sequenceSeqArray(PHOTO_BASELINES.map(([name, pick]) =>
                pipe(
                  pick(data, heldOutIds),
                  TE.chain((photos) => photoBaseline(name, photos, data, evaluator, work)),
                  TE.map((summary): BaselineRow => ({ name, summary })),
                )
              ))
            ),
            TE.map((photoRows) => [
              ...rows.map((r) => ({ name: r.name, summary: r })),
              ...photoRows,
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
