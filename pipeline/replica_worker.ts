/**
 * A replica of data-parallel training (pipeline/replicas.ts), in its own worker: it loads
 * the main thread's GAN from the checkpoint it is given, then runs each step it is posted
 * on its part of the batch, its gradients averaged with the others' through the shared
 * exchange. It keeps no EMA and writes nothing.
 */
/// <reference lib="deno.worker" />
import { useBackend } from "./backends/backend.ts";
import { setNativeThreads } from "./backends/native.ts";
import { disposeCheckpoint, readCheckpoint, restoreGan } from "./io/checkpoint.ts";
import {
  type BatchTensors,
  disposeBatch,
  type Gan,
  type GradientReduce,
  trainStep,
} from "../stages/train_step.ts";
import { Exchange, gradientMean } from "./allreduce.ts";
import { fromWire, reducedShapes, type ReplicaMessage, type ReplicaReply } from "./replicas.ts";
import type { BackendChoice } from "./backends/backend.ts";

let gan: Gan | undefined;
let exchange: Exchange | undefined;
let reduce: GradientReduce | undefined;
let queue: Promise<void> = Promise.resolve();

const reply = (r: ReplicaReply) => self.postMessage(r);

async function init(m: Extract<ReplicaMessage, { kind: "init" }>): Promise<void> {
  await useBackend(m.backend as BackendChoice);
  setNativeThreads(m.threads);
  const ck = await readCheckpoint(m.checkpoint);
  try {
    gan = await restoreGan(ck, m.checkpoint);
  } finally {
    disposeCheckpoint(ck);
  }
  exchange = new Exchange(m.buffer, m.rank, m.size);
  reduce = gradientMean(exchange);
  reply({ kind: "ready", shapes: reducedShapes(gan) });
}

async function step(m: Extract<ReplicaMessage, { kind: "step" }>): Promise<void> {
  const [rateD, rateG] = m.rates;
  (gan!.optD as unknown as { learningRate: number }).learningRate = rateD;
  (gan!.optG as unknown as { learningRate: number }).learningRate = rateG;
  const batch = fromWire(m.batch) as BatchTensors;
  try {
    const own = await trainStep(gan!, batch, m.padId, m.step, { reduce, ema: false });
    exchange!.mean([Float32Array.of(own.d, own.g, own.kl)]);
  } finally {
    disposeBatch(batch);
  }
}

self.onmessage = (e: MessageEvent<ReplicaMessage>) => {
  const m = e.data;
  queue = queue.then(() => m.kind === "init" ? init(m) : step(m)).catch((err) => {
    const message = err instanceof Error ? err.message : String(err);
    exchange?.fail();
    if (m.kind === "step") console.error(`petal: replica ${exchange?.rank}: ${message}`);
    reply({ kind: "error", message });
  });
};
