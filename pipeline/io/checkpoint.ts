/**
 * Checkpoints: one file, `checkpoint.petal`, holding everything a run needs to go on
 * exactly where it stopped — text encoder, G, D, the EMA of G, both Adam states, the
 * counters, the vocabulary and the recipe — in a versioned format:
 *
 *   "PETALCK1" | u32 header length | header JSON | f32/i32 tensor bytes
 *
 * There is no separate RNG state: every draw comes from a stream seeded by (the recipe's
 * seed, epoch, step), so `progress.step` and `train.seed` are the whole of it.
 *
 * It is written to a temp file, synced, and renamed over the old one, so a crash
 * mid-write never leaves a broken checkpoint, and the last good one survives a NaN stop.
 *
 * @example
 * ```ts
 * import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
 * // await writeCheckpoint("runs/a", gan, { step, epoch, imagesSeen, seconds }, vocabulary);
 * // const ck = await readCheckpoint("runs/a"); // header + named tensors
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig, TrainConfig } from "../../stages/config.ts";
import type { RecipeOrigin } from "../../stages/recipe.ts";
import {
  createGan,
  disposeGan,
  type Gan,
  MEAN_CONDITION,
  namedVariables,
  withMatcher,
} from "../../stages/train_step.ts";
import * as E from "fp-ts/Either";
import { petalError, PetalFailure } from "./errors.ts";
import { writeFileAtomic } from "./images.ts";
import { variable } from "../../stages/layers.ts";
import { RIVALS } from "../../stages/match.ts";
import { sentenceDim } from "../../stages/embed.ts";
import { validateHeader } from "./checkpoint_header.ts";
import { type Vocabulary, vocabularyFromJson } from "../../stages/tokenize.ts";

export const CHECKPOINT_FILE = "checkpoint.petal";
const MAGIC = "PETALCK1";
export const FORMAT_VERSION = 1;

/** Where a run stands: its counters (the whole RNG state) and time trained. */
export interface Progress {
  readonly step: number;
  readonly epoch: number;
  /** Images seen, for img/s across resumes. */
  readonly imagesSeen: number;
  /** Wall seconds trained so far, across resumes. */
  readonly seconds: number;
}

interface TensorEntry {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: "float32" | "int32";
  readonly offset: number;
}

/** A checkpoint read back: its header and its tensors by stable name. */
export interface CheckpointHeader {
  readonly format: "petal-checkpoint";
  readonly version: number;
  readonly model: ModelConfig;
  readonly train: TrainConfig;
  /**
   * The recipe's preset and pre-training steps (its other settings are `model` and
   * `train`; stages/recipe.ts `storedRecipe` joins them). Absent in older checkpoints.
   */
  readonly recipe?: RecipeOrigin;
  /** Words in id order: the tokenizer that the text encoder was trained with. */
  readonly vocabulary: readonly string[];
  readonly progress: Progress;
  readonly tensors: readonly TensorEntry[];
  /** Optimiser weights in their order (names are stable, not tfjs's instance names). */
  readonly optimizers: { readonly d: readonly string[]; readonly g: readonly string[] };
  readonly savedAt: string;
  /**
   * A generator-only checkpoint ({@link writeGeneratorCheckpoint}): the text encoder and
   * the EMA of G, no D, no optimiser state. It draws (infer, serve) but cannot resume.
   */
  readonly generatorOnly?: boolean;
}

/** A checkpoint read back: its header and its tensors by stable name. */
export interface Checkpoint {
  readonly header: CheckpointHeader;
  readonly tensors: ReadonlyMap<string, tf.Tensor>;
}

/** `DIR` or `DIR/checkpoint.petal` → the file. */
export const checkpointPath = (dirOrFile: string): string =>
  dirOrFile.endsWith(".petal") ? dirOrFile : `${dirOrFile.replace(/\/$/, "")}/${CHECKPOINT_FILE}`;

/** tfjs variable name → stable name, for renaming optimiser slots. */
function stableNames(gan: Gan): Map<string, string> {
  return new Map([...namedVariables(gan)].map(([stable, v]) => [v.name, stable]));
}

const renameSlot = (name: string, names: Map<string, string>) => {
  const cut = name.lastIndexOf("/");
  const base = name.slice(0, cut);
  return names.has(base) ? `${names.get(base)}${name.slice(cut)}` : name;
};

/** What a checkpoint may keep beside the model: its recipe's origin; generator only. */
export interface CheckpointExtras {
  readonly recipe?: RecipeOrigin;
  /** Only what drawing needs ({@link writeGeneratorCheckpoint}). */
  readonly generatorOnly?: boolean;
}

/**
 * Writes `DIR/checkpoint.petal`: every named tensor of `gan` (or, generator-only, what
 * drawing needs), both optimisers' state, the counters, the vocabulary and the recipe.
 * Returns the file's path.
 */
export async function writeCheckpoint(
  dir: string,
  gan: Gan,
  progress: Progress,
  vocabulary: readonly string[],
  { recipe, generatorOnly = false }: CheckpointExtras = {},
): Promise<string> {
  const names = stableNames(gan);
  const entries: Array<[string, tf.Tensor]> = [...namedVariables(gan)]
    .filter(([name]) => !generatorOnly || /^(text|ema|match)\//.test(name));
  const optimizers = { d: [] as string[], g: [] as string[] };
  for (const part of generatorOnly ? [] : ["d", "g"] as const) {
    const optimizer = part === "d" ? gan.optD : gan.optG;
    const weights = await optimizer.getWeights();
    for (const w of weights) {
      const name = `opt.${part}/${renameSlot(w.name, names)}`;
      optimizers[part].push(name);
      entries.push([name, w.tensor]);
    }
    for (const [key, t] of Object.entries(adamPowers(optimizer))) {
      entries.push([`adam.${part}/${key}`, t]);
    }
  }
  const tensors: TensorEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  try {
    for (const [name, t] of entries) {
      const data = await t.data();
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
      tensors.push({ name, shape: t.shape, dtype: t.dtype as "float32" | "int32", offset });
      chunks.push(bytes);
      offset += bytes.length;
    }
  } finally {
    // getWeights() makes a fresh scalar of the iteration count; the rest are the
    // optimiser's own variables.
    tf.dispose(entries.map(([, t]) => t).filter((t) => !(t instanceof tf.Variable)));
  }
  const header: CheckpointHeader = {
    format: "petal-checkpoint",
    version: FORMAT_VERSION,
    model: gan.model,
    train: gan.train,
    ...(recipe
      ? {
        recipe: {
          name: recipe.name,
          pretrainSteps: recipe.pretrainSteps,
          pretrainBatch: recipe.pretrainBatch,
        },
      }
      : {}),
    vocabulary,
    progress,
    tensors,
    optimizers,
    savedAt: new Date().toISOString(),
    ...(generatorOnly ? { generatorOnly } : {}),
  };
  await Deno.mkdir(dir, { recursive: true });
  const path = checkpointPath(dir);
  await writeFileAtomic(path, checkpointBytes(header, chunks));
  return path;
}

/**
 * A checkpoint file's bytes: the magic, the header's length and JSON, then the tensor
 * bytes (`chunks`, in order). The header is written as given, unchecked.
 *
 * @example
 * ```ts
 * const bytes = checkpointBytes({ format: "petal-checkpoint" }, [new Uint8Array(4)]);
 * checkpointParts(bytes).data.length; // 4
 * ```
 */
export function checkpointBytes(header: unknown, chunks: readonly Uint8Array[]): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataLength = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(12 + headerBytes.length + dataLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  let at = 12 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * A well-formed checkpoint file's parts: its header, parsed but not validated, and the
 * tensor bytes after it (for tools that edit a header, such as the fuzzer).
 */
export function checkpointParts(bytes: Uint8Array): { header: unknown; data: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  return { header, data: bytes.subarray(12 + length) };
}

/**
 * A generator-only checkpoint at `DIR/checkpoint.petal`: the text encoder, the EMA of G
 * and the vocabulary (what infer and serve need), no D and no optimiser state — a small
 * file to ship. Returns its path.
 *
 * @example
 * ```ts
 * // await writeGeneratorCheckpoint("models/flowers", gan, progress, vocabulary);
 * ```
 */
export const writeGeneratorCheckpoint = (
  dir: string,
  gan: Gan,
  progress: Progress,
  vocabulary: readonly string[],
  recipe?: RecipeOrigin,
): Promise<string> =>
  writeCheckpoint(dir, gan, progress, vocabulary, { recipe, generatorOnly: true });

const bad = (
  path: string,
  message: string,
  fix = "train a new one, or pass the right --checkpoint",
) => new PetalFailure(petalError("BadCheckpoint", path, message, fix));

/** Reads and checks a checkpoint file; tensors are new tf.Tensors the caller disposes. */
export async function readCheckpoint(dirOrFile: string): Promise<Checkpoint> {
  const path = checkpointPath(dirOrFile);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw bad(
        path,
        "no checkpoint here",
        "run `deno task train --out DIR` first, or fix --checkpoint",
      );
    }
    throw bad(path, `cannot read it (${(e as Error).message})`);
  }
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw bad(path, "not a petal checkpoint");
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (12 + headerLength > bytes.length) {
    throw bad(path, "header runs past the end (truncated file?)");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  } catch {
    throw bad(path, "header is not valid JSON (truncated file?)");
  }
  const { format, version } = (parsed ?? {}) as Partial<CheckpointHeader>;
  if (format !== "petal-checkpoint" || version !== FORMAT_VERSION) {
    throw bad(path, `format version ${version}, this petal reads ${FORMAT_VERSION}`);
  }
  const base = 12 + headerLength;
  // Checked whole before any tensor is made: nothing to free when it is bad.
  const checked = validateHeader<CheckpointHeader>(parsed, bytes.length - base);
  if (E.isLeft(checked)) throw bad(path, `bad header: ${checked.left}`);
  const header = checked.right;
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const e of header.tensors) {
      const count = e.shape.reduce((a, b) => a * b, 1);
      const start = base + e.offset;
      const slice = bytes.slice(start, start + count * 4);
      const data = e.dtype === "int32"
        ? new Int32Array(slice.buffer)
        : new Float32Array(slice.buffer);
      tensors.set(e.name, tf.tensor(data, e.shape, e.dtype));
    }
  } catch (e) {
    tf.dispose([...tensors.values()]);
    throw bad(path, `cannot load its tensors (${(e as Error).message})`);
  }
  return { header, tensors };
}

/**
 * The JSON header alone, without reading the tensors (a `reed` checkpoint is hundreds of
 * MB and the training page polls every few seconds). Undefined when there is no
 * readable checkpoint (yet).
 */
export async function readCheckpointHeader(path: string): Promise<CheckpointHeader | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return undefined;
  }
  try {
    const head = new Uint8Array(12);
    if ((await file.read(head)) !== 12) return undefined;
    if (new TextDecoder().decode(head.subarray(0, 8)) !== MAGIC) return undefined;
    const bytes = new Uint8Array(new DataView(head.buffer).getUint32(8, true));
    for (let got = 0; got < bytes.length;) {
      const n = await file.read(bytes.subarray(got));
      if (n === null) return undefined;
      got += n;
    }
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}

const describeModel = (m: ModelConfig) =>
  `${m.size} (G ${m.gChannels.join("-")}, D ${
    m.dChannels.join("-")
  }, text ${m.hiddenDim}×2, vocab ${m.vocabSize})`;

/**
 * The GAN with an image–text matcher exactly when the checkpoint holds one: pre-trained
 * runs keep it since best-of-K inference; older files have none, and an older
 * generator-only file of a `--contrastive` run left it out.
 */
function withStoredMatcher(gan: Gan, ck: Checkpoint): Gan {
  if ([...ck.tensors.keys()].some((name) => name.startsWith("match/"))) {
    return withMatcher(gan, 0);
  }
  if (!gan.match || !ck.header.generatorOnly) return gan;
  tf.dispose(Object.values(gan.match));
  return { ...gan, match: undefined };
}

/**
 * A GAN with the checkpoint's weights and optimiser states. Fails with a clear message
 * when the checkpoint's architecture differs from `expected` (when given) or a tensor is
 * missing or of another shape.
 */
export async function restoreGan(
  ck: Checkpoint,
  path: string,
  expected?: ModelConfig,
  trainOverrides: Partial<TrainConfig> = {},
): Promise<Gan> {
  const { header } = ck;
  if (expected && header.generatorOnly) {
    throw bad(
      path,
      "a generator-only checkpoint (no D, no optimiser state) cannot resume",
      "start without --resume, or resume the full checkpoint of its run",
    );
  }
  if (expected && JSON.stringify(expected) !== JSON.stringify(header.model)) {
    throw bad(
      path,
      `checkpoint is ${describeModel(header.model)}, this run wants ${describeModel(expected)}`,
      "use the same --size and data as the checkpoint, or start without --resume",
    );
  }
  const others = ck.tensors.get(`match/${RIVALS}`);
  const textDim = sentenceDim(header.model);
  if (others && !(others.rank === 2 && others.shape[0] >= 1 && others.shape[1] === textDim)) {
    throw bad(
      path,
      `its matcher's rivals are [${others.shape}], not [N, ${textDim}] sentence vectors`,
      "export the generator again from its run's checkpoint (deno task export --checkpoint RUN)",
    );
  }
  // The EMA generator's mean condition, where the checkpoint keeps one (written since
  // guidance; older ones draw without it): one vector of G's condition width.
  const center = ck.tensors.get(`ema/${MEAN_CONDITION}`);
  const width = header.model.arch === "dfgan" ? textDim : header.model.condDim;
  if (center && !(center.rank === 1 && center.shape[0] === width)) {
    throw bad(
      path,
      `its mean condition is [${center.shape}], not [${width}] (G's condition width)`,
      "export the generator again from its run's checkpoint (deno task export --checkpoint RUN)",
    );
  }
  const gan = withStoredMatcher(
    createGan(header.model, { ...header.train, ...trainOverrides }, 0),
    ck,
  );
  if (center) gan.ema[MEAN_CONDITION] = variable(undefined, tf.zeros(center.shape), false);
  // The matcher's rival captions, likewise (written since the rivals pick).
  if (others && gan.match) gan.match[RIVALS] = variable(undefined, tf.zeros(others.shape), false);
  try {
    await loadWeights(gan, ck, path);
  } catch (e) {
    // A half-loaded model is of no use to anyone: free it whole.
    disposeGan(gan);
    throw e instanceof PetalFailure ? e : bad(path, `cannot restore it (${(e as Error).message})`);
  }
  return gan;
}

/** Assigns the checkpoint's weights and optimiser states to a fresh `gan`. */
async function loadWeights(gan: Gan, ck: Checkpoint, path: string): Promise<void> {
  const { header } = ck;
  const names = stableNames(gan);
  const byStable = new Map([...names].map(([tfName, stable]) => [stable, tfName]));
  for (const [name, v] of namedVariables(gan)) {
    // A generator-only checkpoint: G is its EMA, D keeps its fresh weights, unused.
    const stored = header.generatorOnly && name.startsWith("g/") ? `ema/${name.slice(2)}` : name;
    if (header.generatorOnly && name.startsWith("d/")) continue;
    const t = ck.tensors.get(stored);
    if (!t) throw bad(path, `tensor ${name} is missing: another architecture`);
    if (t.shape.join("x") !== v.shape.join("x")) {
      throw bad(
        path,
        `tensor ${name} is ${t.shape.join("×")}, the model wants ${v.shape.join("×")}`,
      );
    }
    v.assign(t);
  }
  for (const part of ["d", "g"] as const) {
    const weights = header.optimizers[part].map((name) => {
      const slot = name.slice(`opt.${part}/`.length);
      const cut = slot.lastIndexOf("/");
      const tfName = byStable.get(slot.slice(0, cut));
      return { name: tfName ? `${tfName}${slot.slice(cut)}` : slot, tensor: ck.tensors.get(name)! };
    });
    const optimizer = part === "d" ? gan.optD : gan.optG;
    if (weights.length > 0) await optimizer.setWeights(weights);
    for (const [key, v] of Object.entries(adamPowers(optimizer))) {
      const saved = ck.tensors.get(`adam.${part}/${key}`);
      if (saved) v.assign(saved);
    }
  }
}

/**
 * Adam's running β₁ᵗ and β₂ᵗ. tfjs's setWeights recomputes them as pow(β, t + 1), which
 * differs in the last bits from the product it accumulated; saving the exact values
 * keeps a resumed run bit-for-bit on the uninterrupted one.
 */
function adamPowers(optimizer: tf.Optimizer): Record<string, tf.Variable> {
  const o = optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
  return o.accBeta1 && o.accBeta2 ? { accBeta1: o.accBeta1, accBeta2: o.accBeta2 } : {};
}

/**
 * The tokenizer a checkpoint's vocabulary makes. A vocabulary without `<PAD>` and
 * `<RARE>` is a BadCheckpoint naming the file (it can be exported, not drawn from).
 * Call it before {@link restoreGan}, so a bad one fails before a model is made.
 */
export function checkpointVocabulary(ck: Checkpoint, path: string): Vocabulary {
  try {
    return vocabularyFromJson(ck.header.vocabulary);
  } catch (e) {
    throw bad(path, `its vocabulary cannot tokenize captions (${(e as Error).message})`);
  }
}

/** Frees the tensors a {@link readCheckpoint} loaded. */
export const disposeCheckpoint = (ck: Checkpoint): void => tf.dispose([...ck.tensors.values()]);
