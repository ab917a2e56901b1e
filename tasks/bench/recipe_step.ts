/**
 * The default recipe's GAN step (`gan-int-cls`, size `small`, batch 32: frozen,
 * pre-trained text encoder, nearest up-sampling, GAN-CLS + GAN-INT, Adam, EMA; see
 * tasks/recipe.ts) on synthetic data, in this process: what `deno task train` runs per step
 * once its data is decoded, and what tasks/bench/torch_twin.py runs in PyTorch. Times
 * `steps` steps after `warmup`, and counts from the kernels' shapes the FLOPs per step
 * (pipeline/backends/native/profile.ts, native only) and the process's CPU time.
 *
 * @example
 * ```ts
 * import { timeRecipeSteps } from "./recipe_step.ts";
 * import { recipe } from "../../stages/recipe.ts";
 * const r = await timeRecipeSteps(5, 2, recipe()); // { stepS, imgS, gflopPerStep, cores, ... }
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import {
  type ArchName,
  modelConfig,
  type SizeName,
  type TrainConfig,
  type Upsample,
} from "../../stages/config.ts";
import {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  trainStep,
} from "../../stages/train_step.ts";

/** The real vocabulary's size (Oxford-102 captions); the step's cost barely depends on it. */
export const RECIPE_VOCAB = 5431;

/**
 * What the timed step trains: a recipe's model and training settings (a `Recipe` of
 * stages/recipe.ts is one). Passed in, not imported, so that tasks/bench/ab_step.sh can
 * run this file in an older checkout with the new tree's `recipe()`.
 */
export interface StepSettings {
  readonly size: SizeName;
  readonly arch: ArchName;
  readonly upsample: Upsample;
  /** The G's full-resolution conv (absent: none, as in recipes before it). */
  readonly gTop?: number;
  readonly train: TrainConfig;
}

/** The default recipe's step, timed. */
export type RecipeTiming = {
  stepS: number;
  steps: number[];
  imgS: number;
  /** FLOP per step, from the convolutions' and matrix products' shapes (null off native). */
  gflopPerStep: number | null;
  /** Process CPU seconds (user + system) per wall second over the timed steps. */
  cores: number | null;
  /** ms per step in oneDNN layout reorders and in convolution primitives (native). */
  reorderMs?: number;
  convPrimitiveMs?: number;
  /** ms per step in tfjs kernels (all of them), the rest being JavaScript outside kernels. */
  kernelMs?: number;
  /** Per-kernel ms per step (with `profile`). */
  profile?: { kernel: string; calls: number; ms: number; mflops: number }[];
};

/** CPU seconds (user + system) of this process so far, from /proc/self/stat (Linux). */
export function cpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100)
  } catch {
    return null;
  }
}

function syntheticBatch(B: number, T: number, zDim: number, condDim: number): BatchTensors {
  const ids = () => tf.randomUniform([B, T], 2, RECIPE_VOCAB, "int32") as tf.Tensor2D;
  return {
    real: tf.randomUniform([B, 64, 64, 3], -1, 1) as tf.Tensor4D,
    right: ids(),
    wrong: ids(),
    z: tf.randomNormal([B, zDim]),
    eps: tf.randomNormal([B, condDim]),
    zInt: tf.randomNormal([B, zDim]),
    epsInt: tf.randomNormal([B, condDim]),
    partners: tf.tensor1d(Array.from({ length: B }, (_, i) => (i + 1) % B), "int32"),
    alpha: tf.randomUniform([B, 1, 1, 1]) as tf.Tensor4D,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Times a recipe's GAN step (the bench: the default's) on the current tfjs backend. */
export async function timeRecipeSteps(
  steps: number,
  warmup: number,
  settings: StepSettings,
): Promise<RecipeTiming> {
  const native = tf.getBackend() === "native"
    ? await import("../../pipeline/backends/native.ts")
    : null;
  const model = modelConfig(
    settings.size,
    RECIPE_VOCAB,
    settings.arch,
    settings.upsample,
    settings.gTop,
  );
  const batch = settings.train.batchSize;
  const gan = createGan(model, settings.train, 1);
  // Data parallelism as `deno task train` runs it (pipeline/replicas.ts): the batch in
  // parts, one per replica. A checkout from before it has no replicas.ts: one thread.
  const parts = Math.max(1, Math.min(settings.train.replicas ?? 1, Math.floor(batch / 2)));
  const dp = parts > 1
    ? await import("../../pipeline/replicas.ts").catch(() => {
      console.error("recipe step: this checkout has no data parallelism; one replica");
      return null;
    })
    : null;
  const replicas = dp ? await dp.startReplicas(gan, parts) : null;
  const cut = (i: number) => Math.round((i * batch) / (replicas?.size ?? 1));
  const times: number[] = [];
  let cpu0: number | null = null, wall0 = 0;
  let conv0: { reorderS: number; convS: number } | null = null;
  for (let i = 0; i < warmup + steps; i++) {
    const bs = Array.from(
      { length: replicas?.size ?? 1 },
      (_, r) => syntheticBatch(cut(r + 1) - cut(r), model.seqLen, model.zDim, model.condDim),
    );
    if (i === warmup) {
      native?.resetKernelProfile();
      conv0 = native?.convStats?.() ?? null;
      cpu0 = cpuSeconds();
      wall0 = performance.now();
    }
    const t0 = performance.now();
    await (replicas ? replicas.step(gan, bs, 0, i) : trainStep(gan, bs[0], 0, i));
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
    bs.forEach(disposeBatch);
  }
  replicas?.close();
  const cpu1 = cpuSeconds();
  const conv1 = native?.convStats?.() ?? null;
  const wall = (performance.now() - wall0) / 1000;
  const kernels = native?.kernelProfile();
  // The main thread's kernels: with replicas, one part of equal parts (each replica runs
  // the same kernels on its own).
  const flops = kernels
    ? kernels.reduce((s, k) => s + k.mflops, 0) * 1e6 / steps * (replicas?.size ?? 1)
    : null;
  disposeGan(gan);
  const stepS = median(times);
  return {
    stepS,
    steps: times,
    imgS: batch / stepS,
    gflopPerStep: flops === null ? null : flops / 1e9,
    cores: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / wall : null,
    ...(conv0 && conv1
      ? {
        reorderMs: (1000 * (conv1.reorderS - conv0.reorderS)) / steps,
        convPrimitiveMs: (1000 * (conv1.convS - conv0.convS)) / steps,
      }
      : {}),
    ...(kernels ? { kernelMs: kernels.reduce((s, k) => s + k.ms, 0) / steps } : {}),
    profile: kernels?.slice(0, 30).map((k) => ({
      kernel: k.kernel,
      calls: k.calls / steps,
      ms: Math.round(10 * k.ms / steps) / 10,
      mflops: Math.round(k.mflops / steps),
    })),
  };
}
