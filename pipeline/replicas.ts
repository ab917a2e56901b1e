/**
 * Data-parallel training on one machine: the run's step split over `replicas` threads,
 * the main thread and a Deno worker per other replica, each with its own copy of the GAN
 * and its own share of the cores. Each step the batch is cut into one part per replica;
 * every replica runs the step on its part, their gradients are averaged
 * (pipeline/allreduce.ts) before Adam applies them, so their weights stay equal, and the
 * logged losses are their mean. Batch norm sees each replica's part (its statistics are
 * per replica, as in PyTorch's DistributedDataParallel without SyncBatchNorm).
 *
 * The workers start from the main thread's GAN as it stands (fresh, pre-trained or
 * resumed: weights and Adam's state, through a checkpoint), and only the main thread keeps
 * the EMA, samples and writes checkpoints.
 *
 * @example
 * ```ts ignore
 * const replicas = await startReplicas(gan, 2);
 * const losses = await replicas.step(gan, [partA, partB], padId, step);
 * replicas.close();
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { type BatchTensors, type Gan, type StepLosses, trainStep } from "../stages/train_step.ts";
import { Exchange, exchangeBuffer, gradientMean } from "./allreduce.ts";
import { writeCheckpoint } from "./io/checkpoint.ts";
import { setNativeThreads } from "./backends/native.ts";
import { trainable } from "../stages/layers.ts";

/** A batch part as plain arrays, to post to a worker (tensors belong to one thread). */
export type Wire =
  | { readonly tensor: { shape: number[]; dtype: tf.DataType; values: tf.TypedArray } }
  | { readonly record: Record<string, Wire> };

/** A batch (a record of tensors, nested) as {@link Wire} arrays. */
export function toWire(value: tf.Tensor | object): Wire {
  if (value instanceof tf.Tensor) {
    return { tensor: { shape: value.shape, dtype: value.dtype, values: value.dataSync() } };
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return { record: Object.fromEntries(entries.map(([k, v]) => [k, toWire(v)])) };
}

/** {@link toWire}'s record as tensors again, in this thread. */
export function fromWire(w: Wire): unknown {
  if ("tensor" in w) return tf.tensor(w.tensor.values, w.tensor.shape, w.tensor.dtype);
  return Object.fromEntries(Object.entries(w.record).map(([k, v]) => [k, fromWire(v)]));
}

/** What the main thread posts to a replica worker. */
export type ReplicaMessage =
  | {
    readonly kind: "init";
    readonly backend: string;
    readonly checkpoint: string;
    readonly buffer: SharedArrayBuffer;
    readonly rank: number;
    readonly size: number;
    readonly threads: number;
  }
  | {
    readonly kind: "step";
    readonly step: number;
    readonly padId: number;
    readonly rates: readonly [number, number];
    readonly batch: Wire;
  };

/** What a replica worker answers: ready (with its variables' shapes), or an error. */
export type ReplicaReply =
  | { readonly kind: "ready"; readonly shapes: string }
  | { readonly kind: "error"; readonly message: string };

/** The replicas of a run, as the main thread drives them. */
export interface Replicas {
  /** Replicas in all, the main thread's included. */
  readonly size: number;
  /** OpenMP threads each replica's kernels run on. */
  readonly threads: number;
  /** One step over `parts` (one per replica; the first is the main thread's). */
  step(gan: Gan, parts: readonly BatchTensors[], padId: number, step: number): Promise<StepLosses>;
  /** Stops the workers. */
  close(): void;
}

/** The trainable variables' shapes in the order a step reduces them (D's, then G's). */
export const reducedShapes = (gan: Gan): string =>
  [...trainable(gan.d), ...trainable(gan.text), ...trainable(gan.g)]
    .map((v) => v.shape.join("x")).join(",");

/** Floats the largest reduction of a step carries: D's (and φ's) gradients, or G's. */
function reduceCapacity(gan: Gan): number {
  const size = (vs: tf.Variable[]) => vs.reduce((n, v) => n + v.size, 0);
  return Math.max(size([...trainable(gan.d), ...trainable(gan.text)]), size(trainable(gan.g)), 4);
}

/** Cores for the kernels in all: OMP_NUM_THREADS when set, else the machine's. */
const coreCount = (): number =>
  Number(Deno.env.get("OMP_NUM_THREADS")) || navigator.hardwareConcurrency || 1;

/** The learning rates the optimisers run at now (a decay may have scaled them). */
const ratesOf = (gan: Gan): [number, number] => [
  (gan.optD as unknown as { learningRate: number }).learningRate,
  (gan.optG as unknown as { learningRate: number }).learningRate,
];

/**
 * Starts `size − 1` workers, each a replica of `gan` as it stands, on the backend the
 * main thread runs. Throws naming the worker's error when one cannot start.
 */
export async function startReplicas(gan: Gan, size: number): Promise<Replicas> {
  const threads = Math.max(1, Math.floor(coreCount() / size));
  const buffer = exchangeBuffer(size, reduceCapacity(gan));
  const exchange = new Exchange(buffer, 0, size);
  const dir = await Deno.makeTempDir({ prefix: "petal-replica-" });
  const workers: Worker[] = [];
  try {
    const checkpoint = await writeCheckpoint(
      dir,
      gan,
      { step: 0, epoch: 0, imagesSeen: 0, seconds: 0 },
      [],
    );
    for (let rank = 1; rank < size; rank++) {
      const w = new Worker(new URL("./replica_worker.ts", import.meta.url), { type: "module" });
      workers.push(w);
      const init: ReplicaMessage = {
        kind: "init",
        backend: tf.getBackend(),
        checkpoint,
        buffer,
        rank,
        size,
        threads,
      };
      w.postMessage(init);
    }
    const expected = reducedShapes(gan);
    await Promise.all(workers.map((w, i) => ready(w, i + 1, expected)));
  } catch (e) {
    workers.forEach((w) => w.terminate());
    throw e;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const w of workers) {
    w.onmessage = (e: MessageEvent<ReplicaReply>) => {
      if (e.data.kind === "error") console.error(`petal: replica: ${e.data.message}`);
    };
  }
  const reduce = gradientMean(exchange);
  return {
    size,
    threads,
    async step(gan, parts, padId, step) {
      if (parts.length !== size) {
        throw new RangeError(`replicas: ${parts.length} batch parts for ${size} replicas`);
      }
      parts.slice(1).forEach((part, i) => {
        const message: ReplicaMessage = {
          kind: "step",
          step,
          padId,
          rates: ratesOf(gan),
          batch: toWire(part),
        };
        workers[i].postMessage(message);
      });
      const before = setNativeThreads(threads);
      try {
        const own = await trainStep(gan, parts[0], padId, step, { reduce });
        const [mean] = exchange.mean([Float32Array.of(own.d, own.g, own.kl)]);
        return { ...own, d: mean[0], g: mean[1], kl: mean[2] };
      } finally {
        if (before !== undefined) setNativeThreads(before);
      }
    },
    close() {
      exchange.fail(); // wakes a worker still waiting at a barrier
      workers.forEach((w) => w.terminate());
    },
  };
}

/** Resolves when worker `rank` has its replica, with the same variables as `expected`. */
function ready(w: Worker, rank: number, expected: string): Promise<void> {
  return new Promise((resolve, reject) => {
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`replica ${rank} did not start: ${e.message}`));
    };
    w.onmessage = (e: MessageEvent<ReplicaReply>) => {
      if (e.data.kind === "error") {
        reject(new Error(`replica ${rank} did not start: ${e.data.message}`));
      } else if (e.data.shapes !== expected) {
        reject(new Error(`replica ${rank} holds other variables than the main thread's`));
      } else resolve();
    };
  });
}
