/**
 * The "native" tfjs backend: a tfjs-backend-cpu MathBackendCPU (tensors live in JS
 * TypedArrays) whose heavy kernels — convolutions and their gradients, matmul, batch norm,
 * elementwise, reductions, tile — run in libpetal (oneDNN + OpenMP, native/) over Deno FFI
 * on all cores. Every other kernel, and every case a fast kernel declines (int32, odd
 * broadcasts, NCHW), runs tfjs's own cpu kernel, so any model that runs on cpu runs here.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { registerNativeBackend } from "./native.ts";
 * const r = await registerNativeBackend();
 * if (r.ok) await tf.setBackend("native");
 * else console.log(r.reason); // e.g. ".../libpetal.so not found: run native/build.sh"
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { loadLibpetal } from "./native/ffi.ts";
import {
  fastCallCount,
  type FastKernel,
  type KernelArgs,
  recordFast,
} from "./native/kernel_util.ts";
import { convKernels } from "./native/kernels_conv.ts";
import { elementwiseOps, mathKernels } from "./native/kernels_math.ts";
import { fallbackReport, formatFallbackReport, timed } from "./native/profile.ts";
import { installNativeGradients } from "./native/gradients.ts";
import { installFusedAdam } from "./native/adam.ts";
import { installFused } from "./native/fused.ts";

export {
  fallbackReport,
  formatFallbackReport,
  kernelProfile,
  resetKernelProfile,
} from "./native/profile.ts";

/** The backend name registered with tfjs. */
export const NATIVE_BACKEND = "native";

type Registered = { ok: true } | { ok: false; reason: string };
let registration: Registered | undefined;

let libRef: ReturnType<typeof loadLibpetal> | undefined;

/**
 * Seconds libpetal's convolutions spent so far in oneDNN layout reorders and in the
 * convolution primitives themselves, and the reorders run (null before registration).
 *
 * @example
 * ```ts
 * const s = convStats(); // { reorderS: 0.8, convS: 2.1, reorders: 1848 }
 * ```
 */
export function convStats(): { reorderS: number; convS: number; reorders: number } | null {
  if (!libRef?.ok) return null;
  const out = new Float64Array(3);
  libRef.lib.petal_conv_stats(out);
  return { reorderS: out[0], convS: out[1], reorders: out[2] };
}

/**
 * Sets OpenMP's thread count for libpetal's kernels called from this thread (the main
 * thread or a worker: each keeps its own); returns the count before, or undefined before
 * the native backend is registered (nothing to set).
 *
 * @example
 * ```ts
 * import { setNativeThreads } from "./native.ts";
 * const before = setNativeThreads(1); // this thread's kernels now run on one core
 * if (before !== undefined) setNativeThreads(before);
 * ```
 */
export function setNativeThreads(n: number): number | undefined {
  return libRef?.ok ? libRef.lib.petal_set_threads(n) : undefined;
}

/** Names of the kernels libpetal accelerates (the rest are plain tfjs cpu kernels). */
export let nativeKernelNames: readonly string[] = [];

/**
 * How many calls of each kernel ran on libpetal (not the cpu fallback) so far: tests use it
 * to prove a case took the fast path.
 *
 * @example
 * ```ts
 * const before = nativeCallCount("Conv2D");
 * tf.conv2d(x, f, 1, "same");
 * console.assert(nativeCallCount("Conv2D") === before + 1);
 * ```
 */
export const nativeCallCount = (kernel: string): number => fastCallCount(kernel);

function register(): Registered {
  const loaded = loadLibpetal();
  if (!loaded.ok) return loaded;
  libRef = loaded;
  const lib = loaded.lib;
  // Large tensors stay in the C heap between steps (native/src/allocator.cpp).
  lib.petal_tune_allocator();
  const ew = elementwiseOps(lib);
  const fast: Record<string, FastKernel> = { ...mathKernels(lib, ew), ...convKernels(lib, ew) };
  const debug = ["1", "true"].includes(Deno.env.get("PETAL_NATIVE_DEBUG") ?? "");

  tf.registerBackend(NATIVE_BACKEND, () => {
    const backend = new MathBackendCPU();
    // MathBackendCPU's first write prints "install tfjs-node"; this backend is the answer.
    (backend as unknown as { firstUse: boolean }).firstUse = false;
    return backend;
  }, 0);
  // First, so that the copy of cpu's kernels below skips these (cpu has them as tf ops).
  installFused(lib);

  for (const k of tf.getKernelsForBackend("cpu")) {
    if (tf.getKernel(k.kernelName, NATIVE_BACKEND)) continue;
    const body = fast[k.kernelName];
    let ranNative = false;
    const fallback = debug && !VIEWS.has(k.kernelName)
      ? explainFallback(k.kernelName, k.kernelFunc)
      : k.kernelFunc;
    const kernelFunc: tf.KernelFunc = body
      ? (args) => {
        const r = body(args as unknown as KernelArgs);
        ranNative = r !== null;
        if (r === null) return fallback(args);
        recordFast(k.kernelName);
        return r;
      }
      : fallback;
    tf.registerKernel({
      ...k,
      backendName: NATIVE_BACKEND,
      kernelFunc: timed(
        k.kernelName,
        kernelFunc,
        (args) => (body !== undefined && ranNative) || isView(k.kernelName, args),
      ),
    });
  }
  nativeKernelNames = Object.keys(fast).filter((n) => tf.getKernel(n, "cpu"));
  installNativeGradients(lib);
  installFusedAdam(lib, NATIVE_BACKEND);
  return { ok: true };
}

/** Kernels whose tfjs cpu version only relabels a shape: they share the input's data. */
const VIEWS = new Set(["Identity", "Reshape", "ExpandDims", "Squeeze"]);

/** True for a view: no data is touched, so no fast path is missing. */
function isView(kernel: string, args: Parameters<tf.KernelFunc>[0]): boolean {
  if (VIEWS.has(kernel)) return true;
  return kernel === "Cast" && args.inputs.x?.dtype === args.attrs?.dtype;
}

/** PETAL_NATIVE_DEBUG=1: prints each new (kernel, input shapes) that runs on tfjs's cpu. */
function explainFallback(name: string, fn: tf.KernelFunc): tf.KernelFunc {
  const seen = new Set<string>();
  return (args) => {
    const shapes = Object.entries(args.inputs)
      .map(([k, t]) => `${k}:${t?.dtype}[${t?.shape}]`).join(" ");
    const key = `${name} ${shapes} ${JSON.stringify(args.attrs ?? {})}`;
    if (!seen.has(key)) {
      seen.add(key);
      console.error(`native fallback: ${key}`);
    }
    return fn(args);
  };
}

/**
 * The one-line fallback summary a task prints at its end when it ran on native, e.g.
 * "native: cpu fallbacks 1.2% of kernel time (312.4 s), none above 2%"; null on other
 * backends.
 *
 * @example
 * ```ts
 * const line = nativeFallbackSummary();
 * if (line) console.log(line);
 * ```
 */
export function nativeFallbackSummary(minShare = 0.02): string | null {
  if (tf.getBackend() !== NATIVE_BACKEND) return null;
  return formatFallbackReport(fallbackReport(minShare), minShare);
}

/**
 * Registers backend "native" once per process. Never throws: when libpetal is missing or
 * does not load, resolves to `{ ok: false, reason }` naming the fix (run native/build.sh).
 *
 * @example
 * ```ts
 * const r = await registerNativeBackend();
 * if (r.ok) await tf.setBackend("native");
 * ```
 */
export function registerNativeBackend(): Promise<Registered> {
  try {
    registration ??= register();
  } catch (e) {
    registration = { ok: false, reason: `native backend: ${e instanceof Error ? e.message : e}` };
  }
  return Promise.resolve(registration);
}
