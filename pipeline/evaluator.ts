/**
 * The evaluator: a 102-class CNN trained on the training images with class labels from
 * the `text_c10/class_*` folders. It is the one module that reads labels (task rule:
 * labels may feed the evaluator only); tests/labels_test.ts enforces that.
 *
 * Files in EVAL_DIR: `evaluator.json` (classes, layer list, held-out ids and accuracy,
 * tensor table) and `evaluator.bin` (float32 weights), both written atomically.
 *
 * @example The logits of a batch of images, by an evaluator you trained.
 * ```ts ignore
 * import { unwrap } from "./io/errors.ts";
 * import { disposeEvaluator, loadEvaluator, logitsOf } from "./evaluator.ts";
 * const ev = await unwrap(loadEvaluator("runs/evaluator"));
 * const { logits } = await logitsOf(ev, imagesNHWC, count); // imagesNHWC: count·64·64·3 in [-1, 1]
 * disposeEvaluator(ev);
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { labelsForEvaluator, loadReedFolder } from "./io/data.ts";
import { loadImageStack, writeFileAtomic } from "./io/images.ts";
import { ioError, type PetalError, petalError } from "./io/errors.ts";
import { Rng } from "../stages/rng.ts";
import { cropAndFlip, type ImageStack } from "../stages/augment.ts";
import {
  CLASSIFIER_LAYERS,
  type ClassifierLayers,
  classify,
  initClassifier,
} from "../stages/classifier.ts";
import { applyUpdates, newContext, type Params, trainable } from "../stages/layers.ts";

export const EVALUATOR_FORMAT = 1;
const IMAGE_SIZE = 64;
const CROP_MARGIN = 16;
const WEIGHT_DECAY = 5e-4;

/**
 * What `evaluator.json` holds: classes, layers, the held-out split and accuracy, and the
 * tensor table of `evaluator.bin`.
 */
export interface EvaluatorManifest {
  readonly format: "petal-evaluator";
  readonly version: number;
  /** Class number (folder `class_CCCCC`) of each logit. */
  readonly classes: readonly number[];
  readonly layers: ClassifierLayers;
  /** Input average-pooling factor (absent in older evaluators: 2, as now). */
  readonly inputPool?: number;
  readonly heldOutIds: readonly number[];
  readonly heldOutAccuracy: number;
  readonly trainAccuracy: number;
  readonly epochs: number;
  readonly tensors: ReadonlyArray<{ name: string; shape: number[]; offset: number }>;
}

export interface Evaluator {
  readonly manifest: EvaluatorManifest;
  readonly params: Params;
}

/** Options of {@link trainEvaluator} (the `deno task evaluator` flags). */
export interface EvaluatorTrainOptions {
  readonly data: string;
  readonly out: string;
  readonly epochs: number;
  readonly heldOut?: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed?: number;
  readonly cacheDir?: string;
  readonly minutes?: number;
  readonly log?: (line: string) => void;
}

/** Stratified split: about `fraction` of each class held out (at least one per class). */
export function stratifiedSplit(labels: ReadonlyMap<number, number>, fraction: number, rng: Rng) {
  const byClass = new Map<number, number[]>();
  for (const [id, c] of labels) byClass.set(c, [...(byClass.get(c) ?? []), id]);
  const held = new Set<number>();
  for (const ids of byClass.values()) {
    const order = rng.permutation(ids.length);
    const n = Math.max(1, Math.round(ids.length * fraction));
    for (let i = 0; i < n && ids.length > 1; i++) held.add(ids[order[i]]);
  }
  return held;
}

/**
 * The evaluator's logits and features for a batch: the mean over the image and its
 * mirror image (flowers have no handedness; it steadies the logits the score compares).
 */
export function evaluate(
  params: Params,
  x: tf.Tensor4D,
  layers = CLASSIFIER_LAYERS,
  inputPool = 2,
) {
  return tf.tidy(() => {
    const a = classify(params, x, newContext(false), 0, layers, inputPool);
    const b = classify(params, tf.reverse(x, 2), newContext(false), 0, layers, inputPool);
    return {
      logits: tf.div(tf.add(a.logits, b.logits), 2) as tf.Tensor2D,
      features: tf.div(tf.add(a.features, b.features), 2) as tf.Tensor2D,
    };
  });
}

async function accuracy(
  ev: Params,
  x: Float32Array,
  y: ArrayLike<number>,
  count: number,
): Promise<number> {
  let right = 0;
  const per = IMAGE_SIZE * IMAGE_SIZE * 3;
  for (let start = 0; start < count; start += 128) {
    const n = Math.min(128, count - start);
    const pred = tf.tidy(() => {
      const batch = tf.tensor4d(x.subarray(start * per, (start + n) * per), [
        n,
        IMAGE_SIZE,
        IMAGE_SIZE,
        3,
      ]);
      return tf.argMax(evaluate(ev, batch).logits, 1);
    });
    const p = await pred.data();
    pred.dispose();
    for (let i = 0; i < n; i++) if (p[i] === y[start + i]) right++;
  }
  return right / Math.max(count, 1);
}

/** The evaluator's data: images at two sizes, the split, and class indices. */
interface EvaluatorData {
  readonly imageIds: readonly number[];
  readonly classes: readonly number[];
  readonly trainIdx: readonly number[];
  readonly testIdx: readonly number[];
  /** Class index of record i. */
  readonly label: (i: number) => number;
  /** Images at 64 + crop margin (training crops) and at 64 (evaluation). */
  readonly big: ImageStack;
  readonly exact: ImageStack;
}

/** Records, labels (the one read of them), the stratified split, the image stacks. */
const loadEvaluatorData = (
  opts: EvaluatorTrainOptions,
  rng: Rng,
): TE.TaskEither<PetalError, EvaluatorData> =>
  pipe(
    TE.Do,
    TE.bind("data", () => loadReedFolder(opts.data)),
    TE.let("paths", ({ data }) => data.records.map((r) => r.imagePath)),
    TE.bind("big", ({ paths }) => loadImageStack(paths, IMAGE_SIZE + CROP_MARGIN, opts.cacheDir)),
    TE.bind("exact", ({ paths }) => loadImageStack(paths, IMAGE_SIZE, opts.cacheDir)),
    TE.map(({ data: { records, labels: opaque }, big, exact }) => {
      const labels = labelsForEvaluator(opaque);
      const classes = [...new Set(labels.values())].sort((a, b) => a - b);
      const classIndex = new Map(classes.map((c, i) => [c, i]));
      const held = stratifiedSplit(labels, opts.heldOut ?? 0.1, rng);
      return {
        imageIds: records.map((r) => r.imageId),
        classes,
        trainIdx: records.flatMap((r, i) => (held.has(r.imageId) ? [] : [i])),
        testIdx: records.flatMap((r, i) => (held.has(r.imageId) ? [i] : [])),
        label: (i: number) => classIndex.get(labels.get(records[i].imageId)!)!,
        big,
        exact,
      };
    }),
  );

/** One epoch of augmented mini-batches; returns the mean loss. */
async function trainEpoch(
  params: Params,
  optimizer: tf.Optimizer,
  data: EvaluatorData,
  batchSize: number,
  rng: Rng,
): Promise<number> {
  const weights = Object.entries(params).filter(([k]) => k.endsWith(".w")).map(([, v]) => v);
  const order = rng.permutation(data.trainIdx.length);
  const B = batchSize;
  let lossSum = 0;
  let steps = 0;
  for (let k = 0; k + B <= data.trainIdx.length; k += B) {
    const idx = Array.from(order.subarray(k, k + B), (j) => data.trainIdx[j]);
    const x = tf.tensor4d(cropAndFlip(data.big, idx, IMAGE_SIZE, rng), [
      B,
      IMAGE_SIZE,
      IMAGE_SIZE,
      3,
    ]);
    const y = tf.oneHot(tf.tensor1d(idx.map(data.label), "int32"), data.classes.length);
    const ctx = newContext(true);
    const loss = optimizer.minimize(
      () =>
        tf.add(
          tf.losses.softmaxCrossEntropy(y, classify(params, x, ctx, 0.5).logits, undefined, 0.1),
          // L2 on the conv and dense weights: the small set overfits (train 84%, held-out 55%).
          tf.mul(WEIGHT_DECAY, tf.addN(weights.map((w) => tf.sum(tf.square(w))))),
        ) as tf.Scalar,
      true,
      trainable(params),
    )!;
    applyUpdates(ctx);
    lossSum += (await loss.data())[0];
    steps++;
    tf.dispose([x, y, loss]);
  }
  return lossSum / steps;
}

/** The epochs, with a cosine-decayed learning rate, until the epochs or minutes end. */
async function fitEvaluator(
  params: Params,
  data: EvaluatorData,
  opts: EvaluatorTrainOptions,
  rng: Rng,
  heldOutAccuracy: () => Promise<number>,
): Promise<number> {
  const lr = opts.lr ?? 2e-3;
  const optimizer = tf.train.adam(lr);
  const B = Math.min(opts.batchSize ?? 64, data.trainIdx.length);
  const started = performance.now();
  const budget = (opts.minutes ?? Infinity) * 60_000;
  let epochsDone = 0;
  for (let epoch = 0; epoch < opts.epochs && performance.now() - started < budget; epoch++) {
    (optimizer as unknown as { learningRate: number }).learningRate = lr * 0.5 *
      (1 + Math.cos((Math.PI * epoch) / opts.epochs));
    const loss = await trainEpoch(params, optimizer, data, B, rng);
    epochsDone = epoch + 1;
    const acc = await heldOutAccuracy();
    opts.log?.(
      `epoch ${epochsDone}/${opts.epochs}: loss ${loss.toFixed(3)}, held-out accuracy ${
        (100 * acc).toFixed(1)
      }%`,
    );
  }
  optimizer.dispose();
  return epochsDone;
}

/** Trains the evaluator on its data, saves it, and returns its manifest. */
async function trainAndSave(opts: EvaluatorTrainOptions, data: EvaluatorData, rng: Rng) {
  const unaugmented = (idx: readonly number[]) =>
    cropAndFlip(data.exact, idx, IMAGE_SIZE, rng, false);
  const accuracyOn = (idx: readonly number[], x: Float32Array) =>
    accuracy(params, x, Int32Array.from(idx, data.label), idx.length);
  const testX = unaugmented(data.testIdx);
  const params = initClassifier(data.classes.length, opts.seed ?? 11);
  try {
    const epochs = await fitEvaluator(
      params,
      data,
      opts,
      rng,
      () => accuracyOn(data.testIdx, testX),
    );
    const sampleTrain = data.trainIdx.slice(0, 1000);
    const manifest = {
      format: "petal-evaluator" as const,
      version: EVALUATOR_FORMAT,
      classes: data.classes,
      layers: CLASSIFIER_LAYERS,
      inputPool: 2,
      heldOutIds: data.testIdx.map((i) => data.imageIds[i]),
      heldOutAccuracy: await accuracyOn(data.testIdx, testX),
      trainAccuracy: await accuracyOn(sampleTrain, unaugmented(sampleTrain)),
      epochs,
    };
    await saveEvaluator(opts.out, manifest, params);
    return { ...manifest, tensors: [] };
  } finally {
    tf.dispose(Object.values(params));
  }
}

/**
 * Trains the evaluator and saves it: load (labels read here only) → split → decode →
 * epochs → save. Returns its manifest.
 *
 * @example One epoch on a small synthetic set: 4 of its 16 images held out.
 * ```ts
 * import { ensureSyntheticData, trainEvaluator, unwrap, useBackend } from "../mod.ts";
 *
 * await useBackend("auto");
 * const dir = await Deno.makeTempDir();
 * const data = await ensureSyntheticData(`${dir}/data`, { trainImages: 16, testImages: 2 });
 * const m = await unwrap(trainEvaluator({ data, out: `${dir}/eval`, epochs: 1, batchSize: 8 }));
 * console.log(m.classes.length, m.heldOutIds.length); // 10 4
 * console.log(m.heldOutAccuracy); // a fraction in [0, 1]: near chance after one epoch
 * ```
 */
export const trainEvaluator = (
  opts: EvaluatorTrainOptions,
): TE.TaskEither<PetalError, EvaluatorManifest> => {
  const rng = new Rng(opts.seed ?? 11);
  return pipe(
    loadEvaluatorData(opts, rng),
    TE.chain((data) =>
      TE.tryCatch(
        () => trainAndSave(opts, data, rng),
        ioError(opts.out, "see the message above"),
      )
    ),
  );
};

async function saveEvaluator(
  dir: string,
  manifest: Omit<EvaluatorManifest, "tensors">,
  params: Params,
) {
  const tensors: Array<{ name: string; shape: number[]; offset: number }> = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [name, v] of Object.entries(params)) {
    const data = (await v.data()) as Float32Array;
    tensors.push({ name, shape: v.shape, offset });
    chunks.push(data);
    offset += data.length;
  }
  const bin = new Float32Array(offset);
  chunks.reduce((at, c) => (bin.set(c, at), at + c.length), 0);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(`${dir}/evaluator.bin`, new Uint8Array(bin.buffer));
  await writeFileAtomic(`${dir}/evaluator.json`, JSON.stringify({ ...manifest, tensors }, null, 1));
}

/**
 * A saved evaluator (`DIR/evaluator.json` and `evaluator.bin`), or a BadCheckpoint error
 * naming the file and the fix. Free it with {@link disposeEvaluator}.
 */
export const loadEvaluator = (dir: string): TE.TaskEither<PetalError, Evaluator> => {
  const jsonPath = `${dir}/evaluator.json`;
  const binPath = `${dir}/evaluator.bin`;
  const retrain = "train one with `deno task evaluator --data DIR --out EVAL_DIR`";
  const bad = (path: string, message: string, fix = "train it again") =>
    petalError("BadCheckpoint", path, message, fix);
  return pipe(
    TE.tryCatch(
      async () => JSON.parse(await Deno.readTextFile(jsonPath)) as EvaluatorManifest,
      (e) =>
        bad(
          jsonPath,
          e instanceof Deno.errors.NotFound
            ? "no evaluator here"
            : "evaluator.json is not valid JSON",
          retrain,
        ),
    ),
    TE.filterOrElse(
      (m) => m.format === "petal-evaluator" && m.version === EVALUATOR_FORMAT,
      () => bad(jsonPath, "not a petal evaluator of this version"),
    ),
    TE.bindTo("manifest"),
    TE.bind("all", () =>
      TE.tryCatch(async () => {
        const bytes = await Deno.readFile(binPath);
        return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      }, (e) => bad(binPath, `cannot read the weights (${(e as Error).message})`, retrain))),
    TE.filterOrElse(
      ({ manifest, all }) =>
        manifest.tensors.every((t) => t.offset + t.shape.reduce((a, b) => a * b, 1) <= all.length),
      () => bad(binPath, "weights file is truncated"),
    ),
    TE.map(({ manifest, all }) => {
      const params: Params = {};
      for (const t of manifest.tensors) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        params[t.name] = tf.variable(tf.tensor(all.slice(t.offset, t.offset + n), t.shape), false);
      }
      return { manifest, params };
    }),
  );
};

/** Logits [N, K] and features [N, F] of N images (NHWC Float32 in [-1, 1]), in batches. */
export async function logitsOf(ev: Evaluator, images: Float32Array, count: number, batch = 64) {
  const per = IMAGE_SIZE * IMAGE_SIZE * 3;
  const logits: Float32Array[] = [];
  const features: Float32Array[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const [l, f] = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * per, (start + n) * per), [
        n,
        IMAGE_SIZE,
        IMAGE_SIZE,
        3,
      ]);
      const out = evaluate(ev.params, x, ev.manifest.layers, ev.manifest.inputPool ?? 2);
      return [out.logits, out.features];
    });
    const [ld, fd] = [await l.data() as Float32Array, await f.data() as Float32Array];
    tf.dispose([l, f]);
    const K = l.shape[1]!;
    const F = f.shape[1]!;
    for (let i = 0; i < n; i++) {
      logits.push(ld.slice(i * K, (i + 1) * K));
      features.push(fd.slice(i * F, (i + 1) * F));
    }
  }
  return { logits, features };
}

export const disposeEvaluator = (ev: Evaluator) => tf.dispose(Object.values(ev.params));

/**
 * For each of `heldIds`, the photo of a training image of the same class (an image not
 * in `heldIds`, drawn with `seed`): the "same kind of flower" baseline, what a generator
 * that drew a real photo of the caption's class would score. Captions are paired with
 * images at class level (../shared/oxford102/README), so this is the ceiling the task's
 * metric leaves a caption-conditional generator. It reads class labels, so it lives here.
 *
 * @example
 * ```ts ignore
 * import { unwrap } from "./io/errors.ts";
 * import { sameClassPhotos } from "./evaluator.ts";
 * const photos = await unwrap(sameClassPhotos("../shared/oxford102", [1, 2]));
 * console.log(photos.get(1)); // ".../images/image_000NN.jpg", another image of image 1's class
 * ```
 */
export const sameClassPhotos = (
  data: string,
  heldIds: readonly number[],
  seed = 0,
): TE.TaskEither<PetalError, ReadonlyMap<number, string>> =>
  pipe(
    loadReedFolder(data),
    TE.chainEitherK(({ records, labels: opaque }) => {
      const labels = labelsForEvaluator(opaque);
      const held = new Set(heldIds);
      const byClass = new Map<number, string[]>();
      for (const r of records) {
        if (held.has(r.imageId)) continue;
        const c = labels.get(r.imageId)!;
        if (!byClass.has(c)) byClass.set(c, []);
        byClass.get(c)!.push(r.imagePath);
      }
      const rng = new Rng(seed);
      const picked = new Map<number, string>();
      for (const id of heldIds) {
        const pool = byClass.get(labels.get(id) ?? -1) ?? [];
        if (pool.length === 0) {
          return E.left(petalError(
            "BadArgument",
            data,
            `held-out image ${id} has no training image of its class`,
            "train the evaluator on this folder: deno task evaluator --data DIR",
          ));
        }
        picked.set(id, pool[rng.int(pool.length)]);
      }
      return E.right(picked as ReadonlyMap<number, string>);
    }),
  );
