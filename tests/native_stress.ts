/**
 * Stress script for the native backend, run by tests/native_stress_test.ts in a subprocess
 * (so a heap fault kills the script, not the suite) and usable by hand:
 *
 * ```sh
 * DNNL_MAX_CPU_ISA=AVX2 deno run -A tests/native_stress.ts --workers 3 --rounds 4
 * ```
 *
 * The main thread computes reference results of a set of convolutions (forward and both
 * gradients), matmuls, batch norms and stages/fused.ts's kernels, so libpetal's primitive cache holds primitives made
 * on this thread. Then several workers (other OS threads, as `deno test --parallel` and
 * `deno task serve` use) run the same operations at once, plus shapes of their own, while
 * the main thread spawns child processes. Finally the main thread runs everything again,
 * including the primitives the workers made. Every result must match the reference.
 * Prints `stress ok: ...` with the convolution contexts libpetal made (one per convolution
 * that ran beside another) and exits 0, or names the first mismatch and exits 1.
 */
import * as tf from "@tensorflow/tfjs";
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { registerNativeBackend } from "../pipeline/backends/native.ts";
import { loadLibpetal } from "../pipeline/backends/native/ffi.ts";
import { seededTensor } from "./seeded.ts";
import {
  batchNormAct,
  biasAct,
  newContext,
  type Params,
  upsampleNearest,
} from "../stages/layers.ts";

type Case = { name: string; run: () => Float32Array };

/** Deterministic inputs (mulberry32) in [-1, 1), so every thread builds the same tensors. */
const rand = (shape: number[], seed: number): tf.Tensor => seededTensor(shape, seed);

/** conv2d forward and both gradients (data, filter) through tf.grads, flattened. */
function convCase(n: number, hw: number, c: number, oc: number, k: number, stride: number): Case {
  return {
    name: `conv n${n} ${hw}x${hw}x${c}->${oc} k${k} s${stride}`,
    run: () =>
      tf.tidy(() => {
        const x = rand([n, hw, hw, c], hw * 7 + c), f = rand([k, k, c, oc], k * 13 + oc);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, "same").square().mean()
        );
        const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, "same");
        return tf.concat([y.flatten(), ...g([x, f]).map((t) => t.flatten())]).dataSync();
      }) as Float32Array,
  };
}

/**
 * A generator's last layer: conv2dTranspose to RGB. oneDNN runs three output channels as
 * a gemm-based (im2col) convolution, whose column buffer is a large scratchpad.
 */
function toRgbCase(n: number, hw: number, c: number): Case {
  return {
    name: `conv2dTranspose n${n} ${hw}x${hw}x${c}->rgb`,
    run: () =>
      tf.tidy(() => {
        const x = rand([n, hw, hw, c], hw + c), f = rand([4, 4, 3, c], c + 3);
        const shape: [number, number, number, number] = [n, 2 * hw, 2 * hw, 3];
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, shape, 2, "same").square()
            .mean()
        );
        const y = tf.conv2dTranspose(x as tf.Tensor4D, f as tf.Tensor4D, shape, 2, "same");
        return tf.concat([y.flatten(), ...g([x, f]).map((t) => t.flatten())]).dataSync();
      }) as Float32Array,
  };
}

/** Shapes with enough work to use both cores and oneDNN scratchpads on AVX2 and AVX-512. */
const SHARED_CASES = [
  toRgbCase(8, 32, 64),
  convCase(8, 64, 3, 32, 4, 2),
  convCase(16, 32, 32, 64, 4, 2),
  convCase(8, 16, 64, 128, 4, 2),
  convCase(8, 32, 16, 16, 3, 1),
  // At most 4 output channels: libpetal's direct kernels (native/src/conv_narrow.cpp), on
  // both cores at this size. The default recipe's RGB layer, and a critic's score.
  convCase(8, 64, 16, 3, 3, 1),
  convCase(8, 4, 128, 1, 4, 1),
  {
    name: "matmul 384x256x320",
    run: () => tf.tidy(() => tf.matMul(rand([384, 256], 1), rand([256, 320], 2)).dataSync()),
  },
  {
    name: "batch norm 8x16x16x48",
    run: () =>
      tf.tidy(() => {
        const x = rand([8, 16, 16, 48], 3);
        const m = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x, m.mean, m.variance, rand([48], 4), rand([48], 5), 1e-5)
          .dataSync();
      }),
  },
  {
    // stages/fused.ts's kernels: G's conditional batch norm with ReLU, D's bias with leaky
    // ReLU, the up-sampling; forward and every gradient (all of them per-call buffers).
    name: "fused batch norm, bias, up-sampling 8x16x16x32 and gradients",
    run: () =>
      tf.tidy(() => {
        const x = rand([8, 16, 16, 32], 6), r = rand([8, 32, 32, 32], 7);
        const p = { "bn.gamma": rand([32], 8), "bn.beta": rand([32], 9) } as unknown as Params;
        const f = (xx: tf.Tensor, s: tf.Tensor, b: tf.Tensor) => {
          const mod = { scale: s as tf.Tensor2D, shift: rand([8, 32], 11) as tf.Tensor2D };
          const h = batchNormAct(xx as tf.Tensor4D, p, "bn", newContext(true), "relu", mod);
          return tf.sum(tf.mul(upsampleNearest(biasAct(h, b, "leakyRelu") as tf.Tensor4D), r));
        };
        const gs = tf.grads(f)([x, rand([8, 32], 10), rand([32], 12)]);
        return tf.concat(gs.map((g) => g.flatten())).dataSync() as Float32Array;
      }),
  },
  {
    // Eval-mode batch norm (running statistics) as the affine kernel, conditional and ReLU.
    name: "eval batch norm (affine and activation) 8x16x16x32",
    run: () =>
      tf.tidy(() => {
        const p = {
          "bn.gamma": rand([32], 13),
          "bn.beta": rand([32], 14),
          "bn.mean": rand([32], 15),
          "bn.var": tf.abs(rand([32], 16)),
        } as unknown as Params;
        const mod = {
          scale: rand([8, 32], 17) as tf.Tensor2D,
          shift: rand([8, 32], 18) as tf.Tensor2D,
        };
        return batchNormAct(
          rand([8, 16, 16, 32], 19) as tf.Tensor4D,
          p,
          "bn",
          newContext(false),
          "relu",
          mod,
        )
          .dataSync() as Float32Array;
      }),
  },
] as Case[];

/** Shapes each worker builds first (so their primitives are made on that worker's thread). */
const workerCases = (w: number): Case[] => [
  convCase(4 + w, 24, 24, 40, 3, 2),
  toRgbCase(2 + w, 16, 32),
  convCase(2 + w, 32, 16, 3, 3, 1),
];

const TOL = 1e-4;

function maxRelError(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let err = 0, scale = 0;
  for (let i = 0; i < got.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / (scale || 1);
}

async function useNative(): Promise<void> {
  const r = await registerNativeBackend();
  if (!r.ok) throw new Error(r.reason);
  await tf.setBackend("native");
}

/** Runs cases against references; the first mismatch as text, or null. */
function check(cases: Case[], refs: Map<string, Float32Array>, where: string): string | null {
  for (const c of cases) {
    const got = c.run(), want = refs.get(c.name);
    if (!want) continue;
    const e = maxRelError(got, want);
    if (!(e <= TOL)) return `${where}: ${c.name} differs from the reference (rel. error ${e})`;
  }
  return null;
}

type Job = { worker: number; rounds: number; refs: [string, Float32Array][] };
type Done = { worker: number; error: string | null; own: [string, Float32Array][] };

async function workerMain(job: Job): Promise<Done> {
  await useNative();
  const own = workerCases(job.worker).map((c) => [c.name, c.run()] as [string, Float32Array]);
  const refs = new Map(job.refs);
  for (let r = 0; r < job.rounds; r++) {
    const error = check(SHARED_CASES, refs, `worker ${job.worker} round ${r}`);
    if (error) return { worker: job.worker, error, own };
  }
  return { worker: job.worker, error: null, own };
}

/** Spawns `count` short child processes one after another, as playwright spawns chromium. */
async function spawnChildren(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(Deno.execPath(), ["eval", "console.log(1 + 1)"], { stdio: "pipe" });
      let out = "";
      child.stdout.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
      child.on("error", reject);
      child.on(
        "close",
        (code: number) =>
          code === 0 && out.trim() === "2" ? resolve() : reject(new Error(`child exit ${code}`)),
      );
    });
  }
}

function runWorker(job: Job): Promise<Done> {
  return new Promise((resolve, reject) => {
    const w = new Worker(import.meta.url, { type: "module" });
    w.onmessage = (e: MessageEvent<Done>) => {
      w.terminate();
      resolve(e.data);
    };
    w.onerror = (e) => {
      e.preventDefault();
      w.terminate();
      reject(new Error(`worker ${job.worker}: ${e.message}`));
    };
    w.postMessage(job);
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workers: { type: "string", default: "3" },
      rounds: { type: "string", default: "3" },
      children: { type: "string", default: "4" },
    },
  });
  await useNative();
  const refs = new Map(SHARED_CASES.map((c) => [c.name, c.run()]));
  const jobs = Array.from({ length: Number(values.workers) }, (_, worker) => ({
    worker,
    rounds: Number(values.rounds),
    refs: [...refs.entries()],
  }));
  const [done] = await Promise.all([
    Promise.all(jobs.map(runWorker)),
    spawnChildren(Number(values.children)),
  ]);
  for (const d of done) {
    if (d.error) return fail(d.error);
    for (const [name, v] of d.own) refs.set(name, v);
  }
  // Back on the main thread: the workers' threads are gone; run their primitives here too.
  const all = [...SHARED_CASES, ...jobs.flatMap((j) => workerCases(j.worker))];
  const error = check(all, refs, "main thread after the workers");
  if (error) return fail(error);
  await spawnChildren(2);
  // Convolution contexts made: the most convolutions that ran at once (native/src/conv.cpp).
  const lib = loadLibpetal();
  const contexts = lib.ok ? lib.lib.petal_conv_contexts() : 0;
  console.log(
    `stress ok: ${all.length} cases, ${jobs.length} workers × ${values.rounds} rounds, ` +
      `children spawned; ${contexts} convolution contexts`,
  );
  return 0;
}

function fail(message: string): number {
  console.error(`stress failed: ${message}`);
  return 1;
}

if ("WorkerGlobalScope" in globalThis) {
  // Loaded as a worker by runWorker (import.meta.main is true there too): one job, one reply.
  const scope = self as unknown as {
    onmessage: (e: MessageEvent<Job>) => void;
    postMessage: (d: Done) => void;
  };
  scope.onmessage = async (e) => scope.postMessage(await workerMain(e.data));
} else if (import.meta.main) {
  Deno.exit(await main());
}
