/**
 * The infer pipeline: checkpoint + captions → one 64×64 JPEG per caption,
 * `inference_{id:04d}.jpg`, drawn by the EMA generator through the one drawing path
 * (pipeline/draw.ts `drawFolder`; the noise policy is stages/noise.ts): an image depends
 * on (checkpoint, caption id, seed, K, guidance) only, not on `--batch`. Where the
 * checkpoint keeps its image–text matcher, each image is the best of 8 noises for its
 * caption (`candidates`; stages/match.ts `pickBest`); where it keeps its mean condition,
 * each noise is drawn with guidance 1, 2 and 3 (`guidance`; stages/generate.ts
 * `Guidance`) and the matcher keeps the best of all. Optional extras: the task's report
 * grid (5 captions × 5 columns) and an interpolation strip between two captions.
 *
 * @example The task's test captions, drawn by your run, with the report grid.
 * ```ts ignore
 * import { infer, unwrap } from "./infer.ts";
 * await unwrap(infer({ checkpoint: "runs/latest", captions: "../shared/competition/dataset/testData.pkl",
 *   out: "inference", report: true }));
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { writeFileAtomic } from "./io/images.ts";
import { attempt, ioError, type PetalError } from "./io/errors.ts";
import {
  checkpointVocabulary,
  disposeCheckpoint,
  readCheckpoint,
  restoreGan,
} from "./io/checkpoint.ts";
import { renderGrid } from "./io/grid.ts";
import { loadCaptions } from "./io/task_files.ts";
import type { TestCaption } from "./io/data.ts";
import { disposeGan } from "../stages/train_step.ts";
import {
  candidatesTE,
  drawFolder,
  type Generator,
  type GuidanceScales,
  guidanceTE,
  guided,
  interpolateCaptions,
  reportRows,
} from "./draw.ts";

export {
  candidatesFor,
  DEFAULT_CANDIDATES,
  DEFAULT_GUIDANCE,
  defaultCandidates,
  defaultGuidance,
  drawFolder,
  drawPixels,
  generateImages,
  type Generator,
  guidanceFor,
  type GuidanceScales,
  inferenceName,
  interpolateCaptions,
  PICKED_GUIDANCE,
  REPORT_IDS,
  reportRows,
} from "./draw.ts";

/** Options of {@link infer} (the `deno task infer` flags). */
export interface InferOptions {
  readonly checkpoint: string;
  readonly captions?: string;
  readonly out: string;
  readonly batch?: number;
  readonly seed?: number;
  /**
   * Noises drawn per caption, of which the matcher keeps the image most surely the caption's
   * (default {@link DEFAULT_CANDIDATES} where the checkpoint keeps its matcher, else 1).
   */
  readonly candidates?: number;
  /**
   * Guidance scale (1: none), or several: each noise drawn at every scale, the matcher
   * keeping the best of all. Default {@link defaultGuidance}: 1, 2 and 3 where the
   * checkpoint keeps its mean condition and matcher.
   */
  readonly guidance?: GuidanceScales;
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
  /** The guidance scales drawn with ([1]: none). */
  readonly guidance: readonly number[];
  readonly report?: string;
  readonly interpolation?: string;
  readonly seconds: number;
}

/**
 * The EMA generator and text encoder of a checkpoint (a run folder or a `.petal` file),
 * with its vocabulary. Free it with {@link disposeGenerator}.
 *
 * @example The shipped model's generator.
 * ```ts
 * import { disposeGenerator, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const gen = await loadGenerator("models/flowers");
 * console.log(gen.gan.model.imageSize, gen.gan.match !== undefined); // 64 true
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

/**
 * Frees a generator's tensors.
 *
 * @example Load, draw, free: the tensors drawing made and the generator's are all gone.
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { disposeGenerator, drawPixels, loadGenerator, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const before = tf.memory().numTensors;
 * const gen = await loadGenerator("models/flowers");
 * await drawPixels(gen, [{ id: 1, caption: "a yellow flower" }], { seed: 0 });
 * disposeGenerator(gen);
 * console.log(tf.memory().numTensors - before); // 0
 * ```
 */
export const disposeGenerator = (g: Generator): void => disposeGan(g.gan);

/**
 * Extras go beside the inference folder (`inference_report.png`), never in it: the
 * task's scorer reads every file of that folder as an image to score.
 */
const sibling = (out: string) => out.replace(/\/+$/, "");

/** The task's report grid (5 captions × 5 columns) beside the folder. */
async function writeReport(
  gen: Generator,
  rows: readonly TestCaption[],
  opts: InferOptions,
  candidates: number,
  guidance: readonly number[],
) {
  const gridRows = await reportRows(gen, rows, opts.seed ?? 0, candidates, guidance);
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
  guidance: readonly number[],
) {
  const images = await interpolateCaptions(gen, a, b, 8, opts.seed ?? 0, guidance);
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
  when === false || when === undefined
    ? TE.right(undefined)
    : TE.tryCatch(() => write(when), ioError(path, "check the folder is writable"));

/** The noises per caption, said in the log when the matcher picks among several. */
const chooseCandidates = (gen: Generator, opts: InferOptions): TE.TaskEither<PetalError, number> =>
  pipe(
    candidatesTE(gen, opts.checkpoint, opts.candidates),
    TE.tapIO((k) => () => {
      if (k > 1) opts.log?.(`best of ${k} noises per caption (the checkpoint's matcher picks)`);
    }),
  );

/** The guidance scales, said in the log unless the one scale is 1. */
const chooseGuidance = (
  gen: Generator,
  opts: InferOptions,
): TE.TaskEither<PetalError, readonly number[]> =>
  pipe(
    guidanceTE(gen, opts.checkpoint, opts.guidance),
    TE.tapIO((g) => () => {
      const what = g.length > 1
        ? `each noise at guidance ${g.join(", ")}, the matcher picking`
        : `guidance ${g[0]}`;
      if (guided(g)) opts.log?.(`${what} (away from the checkpoint's mean condition)`);
    }),
  );

/** With the generator loaded: the images, then the optional report and strip. */
const drawAll =
  (opts: InferOptions, rows: readonly TestCaption[], started: number) =>
  (gen: Generator): TE.TaskEither<PetalError, InferResult> =>
    pipe(
      TE.Do,
      TE.bind("candidates", () => chooseCandidates(gen, opts)),
      TE.bind("guidance", () => chooseGuidance(gen, opts)),
      TE.bind("written", ({ candidates, guidance }) =>
        drawFolder(gen, rows, opts.out, {
          seed: opts.seed ?? 0,
          candidates,
          guidance,
          batch: opts.batch,
          log: opts.log,
        })),
      TE.bind("report", ({ candidates, guidance }) =>
        optional(
          opts.report && rows.length > 0,
          () => writeReport(gen, rows, opts, candidates, guidance),
          opts.out,
        )),
      TE.bind("interpolation", ({ guidance }) =>
        optional(
          opts.interpolate,
          (pair) => writeInterpolation(gen, pair, opts, guidance),
          opts.out,
        )),
      TE.map((r) => ({ ...r, seconds: (performance.now() - started) / 1000 })),
    );

/**
 * The infer pipeline: captions (CSV or testData.pkl) → the checkpoint's EMA generator →
 * JPEGs, plus the optional report grid and interpolation strip.
 *
 * @example Two captions of an `id,caption` CSV, drawn by the shipped model.
 * ```ts
 * import { infer, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/captions.csv`, "id,caption\n1,a red flower\n2,a white daisy\n");
 * const r = await unwrap(infer({ checkpoint: "models/flowers", captions: `${dir}/captions.csv`,
 *   out: `${dir}/inference`, candidates: 2 }));
 * console.log(r.written, r.candidates); // 2 2
 * console.log([...Deno.readDirSync(`${dir}/inference`)].length); // 2: inference_0001.jpg, inference_0002.jpg
 * ```
 */
export const infer = (opts: InferOptions): TE.TaskEither<PetalError, InferResult> => {
  const started = performance.now();
  return pipe(
    opts.captions ? loadCaptions(opts.captions, opts.dictionary) : TE.right([]),
    TE.chain((rows) =>
      TE.bracket(
        // The checkpoint reader throws its failures: this is the edge that turns them
        // into values.
        attempt(() => loadGenerator(opts.checkpoint), opts.checkpoint),
        drawAll(opts, rows, started),
        (gen) => TE.fromIO(() => disposeGenerator(gen)),
      )
    ),
  );
};
