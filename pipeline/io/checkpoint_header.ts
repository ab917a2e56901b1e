/**
 * The checkpoint header, checked whole before a single tensor is made: a header is data
 * from a file, and a file can be truncated, edited or hostile. {@link validateHeader} is
 * pure; it either returns the header typed, or says in one line what is wrong with it.
 *
 * Sizes are bounded by the model presets (stages/config.ts): no field may exceed the
 * largest preset's value by more than {@link SIZE_FACTOR}, so `createGan` never allocates
 * a model far beyond any petal trains.
 *
 * @example
 * ```ts
 * import { validateHeader } from "./checkpoint_header.ts";
 * const r = validateHeader(JSON.parse(text), dataBytes); // Right(header) or Left("…")
 * ```
 */
import * as E from "fp-ts/Either";
import {
  ARCHS,
  LOSS_KINDS,
  type ModelConfig,
  modelConfig,
  SIZES,
  UPSAMPLES,
} from "../../stages/config.ts";
import { RECIPE_NAMES } from "../../stages/recipe.ts";

/** How far past the largest preset a stored size may go. */
export const SIZE_FACTOR = 2;
/** Words in a stored vocabulary (the task's is 5,429). */
export const MAX_VOCAB = 1 << 20;
/** Tensors in a checkpoint (a full `reed` checkpoint holds a few hundred). */
export const MAX_TENSORS = 10_000;
/** Dimensions of one stored tensor. */
export const MAX_RANK = 8;
/** Text pre-training steps a stored recipe may name. */
export const MAX_PRETRAIN_STEPS = 10_000_000;
/** The text pre-training batch a stored recipe may name. */
export const MAX_PRETRAIN_BATCH = 1 << 16;
/** Entries of `gChannels` / `dChannels` (64 = 4·2^4 needs 4). */
export const MAX_STAGES = 8;

class HeaderFailure extends Error {}

const fail = (message: string): never => {
  throw new HeaderFailure(message);
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const record = (v: unknown, what: string): Record<string, unknown> =>
  isRecord(v) ? v : fail(`${what} is not an object`);

const show = (v: unknown) => JSON.stringify(v)?.slice(0, 40) ?? String(v);

const int = (v: unknown, what: string, lo: number, hi: number): number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= lo && v <= hi
    ? v
    : fail(`${what} is ${show(v)}, not an integer from ${lo} to ${hi}`);

const finite = (v: unknown, what: string): number =>
  typeof v === "number" && Number.isFinite(v) ? v : fail(`${what} is ${show(v)}, not a number`);

const oneOf = <T extends string>(v: unknown, what: string, allowed: readonly T[]): T =>
  allowed.includes(v as T) ? v as T : fail(`${what} is ${show(v)}, not one of ${allowed}`);

const strings = (v: unknown, what: string, max: number): string[] =>
  Array.isArray(v) && v.length <= max && v.every((s) => typeof s === "string")
    ? v
    : fail(`${what} is not a list of at most ${max} strings`);

/** The largest value of each numeric field over the presets, times {@link SIZE_FACTOR}. */
const LIMITS = (() => {
  const presets = SIZES.map((s) => modelConfig(s, 1));
  const most = (f: (m: ModelConfig) => number) => SIZE_FACTOR * Math.max(...presets.map(f));
  return {
    imageSize: most((m) => m.imageSize),
    seqLen: most((m) => m.seqLen),
    wordDim: most((m) => m.wordDim),
    hiddenDim: most((m) => m.hiddenDim),
    zDim: most((m) => m.zDim),
    condDim: most((m) => m.condDim),
    dTextDim: most((m) => m.dTextDim),
    channels: most((m) => Math.max(...m.gChannels, ...m.dChannels)),
  };
})();

const channels = (v: unknown, what: string): number[] =>
  Array.isArray(v) && v.length >= 1 && v.length <= MAX_STAGES
    ? v.map((c, i) => int(c, `${what}[${i}]`, 1, LIMITS.channels))
    : fail(`${what} is not a list of 1 to ${MAX_STAGES} channel counts`);

/** Checks a stored ModelConfig: known names, every size a positive integer in range. */
export function checkModel(v: unknown): ModelConfig {
  const m = record(v, "model");
  oneOf(m.size, "model.size", SIZES);
  if (m.arch !== undefined) oneOf(m.arch, "model.arch", ARCHS);
  if (m.upsample !== undefined) oneOf(m.upsample, "model.upsample", UPSAMPLES);
  if (m.gTop !== undefined) int(m.gTop, "model.gTop", 0, LIMITS.channels);
  int(m.vocabSize, "model.vocabSize", 1, MAX_VOCAB);
  for (const key of ["imageSize", "seqLen", "wordDim", "hiddenDim", "zDim", "condDim"] as const) {
    int(m[key], `model.${key}`, 1, LIMITS[key]);
  }
  int(m.dTextDim, "model.dTextDim", 1, LIMITS.dTextDim);
  channels(m.gChannels, "model.gChannels");
  channels(m.dChannels, "model.dChannels");
  return m as unknown as ModelConfig;
}

/** Numeric training settings: the optimisers' are required, the rest checked when there. */
const TRAIN_REQUIRED = ["lrG", "lrD", "beta1", "beta2"];
const TRAIN_NUMBERS = [
  "klWeight",
  "interpBeta",
  "gpWeight",
  "maGpWeight",
  "maGpPower",
  "contrastiveWeight",
  "lrDecay",
  "labelSmooth",
  "emaDecay",
  "cropMargin",
  "seed",
];

/** Checks the stored training settings: numbers finite, batch and loss sane. */
function checkTrain(v: unknown): void {
  const t = record(v, "train");
  int(t.batchSize, "train.batchSize", 1, 1 << 16);
  oneOf(t.loss, "train.loss", LOSS_KINDS);
  for (const key of TRAIN_REQUIRED) finite(t[key], `train.${key}`);
  for (const key of TRAIN_NUMBERS) if (t[key] !== undefined) finite(t[key], `train.${key}`);
  for (const [key, value] of Object.entries(t)) {
    if (typeof value === "number") finite(value, `train.${key}`);
  }
}

/** Checks the tensor table; returns the stored names. */
function checkTensors(v: unknown, dataBytes: number): Set<string> {
  if (!Array.isArray(v) || v.length > MAX_TENSORS) {
    return fail(`tensors is not a list of at most ${MAX_TENSORS} entries`);
  }
  const names = new Set<string>();
  v.forEach((raw, i) => {
    const e = record(raw, `tensors[${i}]`);
    if (typeof e.name !== "string" || e.name === "") fail(`tensors[${i}] has no name`);
    const name = e.name as string;
    if (names.has(name)) fail(`tensor ${name} appears twice`);
    names.add(name);
    oneOf(e.dtype, `tensor ${name} dtype`, ["float32", "int32"] as const);
    if (!Array.isArray(e.shape) || e.shape.length > MAX_RANK) {
      fail(`tensor ${name} shape is not a list of at most ${MAX_RANK} sizes`);
    }
    const shape = (e.shape as unknown[]).map((d, k) =>
      int(d, `tensor ${name} shape[${k}]`, 0, dataBytes)
    );
    const offset = int(e.offset, `tensor ${name} offset`, 0, dataBytes);
    const bytes = shape.reduce((a, b) => a * b, 4);
    if (offset + bytes > dataBytes) {
      fail(`tensor ${name} runs past the end of the file (truncated file?)`);
    }
  });
  return names;
}

function checkHeaderOrThrow(v: unknown, dataBytes: number): void {
  const h = record(v, "header");
  strings(h.vocabulary, "vocabulary", MAX_VOCAB);
  const model = checkModel(h.model);
  if ((h.vocabulary as string[]).length > model.vocabSize) {
    fail(
      `vocabulary has ${
        (h.vocabulary as string[]).length
      } words, model.vocabSize is ${model.vocabSize}`,
    );
  }
  checkTrain(h.train);
  const p = record(h.progress, "progress");
  for (const key of ["step", "epoch", "imagesSeen", "seconds"]) {
    if (finite(p[key], `progress.${key}`) < 0) fail(`progress.${key} is negative`);
  }
  const known = checkTensors(h.tensors, dataBytes);
  const o = record(h.optimizers, "optimizers");
  for (const part of ["d", "g"]) {
    for (const name of strings(o[part], `optimizers.${part}`, MAX_TENSORS)) {
      if (!known.has(name)) fail(`optimizer weight ${name} has no tensor`);
    }
  }
  if (h.generatorOnly !== undefined && typeof h.generatorOnly !== "boolean") {
    fail("generatorOnly is not true or false");
  }
  if (h.recipe !== undefined) checkRecipeOrigin(h.recipe);
}

/** The recipe's origin (stages/recipe.ts `RecipeOrigin`): a known preset, whole steps. */
function checkRecipeOrigin(v: unknown): void {
  const r = record(v, "recipe");
  oneOf(r.name, "recipe.name", RECIPE_NAMES);
  int(r.pretrainSteps, "recipe.pretrainSteps", 0, MAX_PRETRAIN_STEPS);
  if (r.pretrainBatch !== undefined) {
    int(r.pretrainBatch, "recipe.pretrainBatch", 2, MAX_PRETRAIN_BATCH);
  }
}

/**
 * Checks a parsed checkpoint header against the `dataBytes` that follow it in the file:
 * field types, known dtypes, tensor shapes and offsets non-negative integers inside the
 * data, optimiser weights that exist, and model sizes within the presets' range. Format
 * and version are checked before (they decide whether this petal reads the file at all).
 *
 * @example
 * ```ts
 * import { validateHeader } from "./checkpoint_header.ts";
 * validateHeader({ tensors: [] }, 0); // Left("vocabulary is not a list of at most 1048576 strings")
 * ```
 */
export function validateHeader<H>(v: unknown, dataBytes: number): E.Either<string, H> {
  try {
    checkHeaderOrThrow(v, dataBytes);
    return E.right(v as H);
  } catch (e) {
    if (e instanceof HeaderFailure) return E.left(e.message);
    return E.left(`unreadable header (${e instanceof Error ? e.message : String(e)})`);
  }
}
