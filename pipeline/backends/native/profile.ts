/**
 * Per-kernel wall-clock profile of the native backend, on when PETAL_PROFILE=1 at
 * registration. tfjs cpu-style kernels are synchronous, so timing the kernelFunc call is
 * the kernel's whole cost.
 *
 * @example
 * ```ts
 * import { kernelProfile, resetKernelProfile } from "./profile.ts";
 * resetKernelProfile();
 * // ... run a step ...
 * console.table(kernelProfile());
 * ```
 */
import type * as tf from "@tensorflow/tfjs";

type Entry = { calls: number; ms: number; native: number; elems: number };
const stats = new Map<string, Entry>();

/** True when PETAL_PROFILE asks for kernel timing. */
export const profilingOn = (): boolean => {
  const v = Deno.env.get("PETAL_PROFILE");
  return v !== undefined && v !== "" && v !== "0";
};

/** Wraps a kernelFunc so each call adds its time under `name`; `native` counts fast paths. */
export function timed(
  name: string,
  fn: tf.KernelFunc,
  ranNative: () => boolean,
): tf.KernelFunc {
  return (args) => {
    const t0 = performance.now();
    const r = fn(args);
    const e = stats.get(name) ?? { calls: 0, ms: 0, native: 0, elems: 0 };
    e.calls++;
    e.ms += performance.now() - t0;
    for (const t of Array.isArray(r) ? r : [r]) e.elems += t.shape.reduce((a, b) => a * b, 1);
    if (ranNative()) e.native++;
    stats.set(name, e);
    return r;
  };
}

/** One kernel's totals: calls, ms, calls that ran on libpetal, output elements (millions). */
export type KernelStats = {
  kernel: string;
  calls: number;
  ms: number;
  native: number;
  melems: number;
};

/** Kernels sorted by total time. */
export function kernelProfile(): KernelStats[] {
  return [...stats.entries()]
    .map(([kernel, e]) => ({
      kernel,
      calls: e.calls,
      ms: e.ms,
      native: e.native,
      melems: e.elems / 1e6,
    }))
    .sort((a, b) => b.ms - a.ms);
}

/** Clears the profile (e.g. after warm-up). */
export function resetKernelProfile(): void {
  stats.clear();
}
