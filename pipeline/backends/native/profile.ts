/**
 * Per-kernel wall-clock accounting of the native backend, always on. tfjs cpu-style kernels
 * are synchronous, so timing the kernelFunc call is the kernel's whole cost (two clock
 * reads, well under a microsecond, against kernels of tens of microseconds and more).
 *
 * Each call is booked as native (it ran in libpetal, or a copy kernel of ours) or as a cpu
 * fallback (tfjs's own JavaScript kernel ran: the kernel has no native version, or its
 * native version declined the case). Views that only relabel a shape (Identity, Reshape,
 * a Cast to the same dtype) touch no data and are not fallbacks. {@link fallbackReport} names the fallbacks that cost a noticeable share of the
 * time: `train`, `infer` and `bench` print it at the end, so a slow path never stays
 * silent. PETAL_PROFILE=1 also counts output elements per kernel (for the bench profile).
 *
 * @example
 * ```ts
 * import { fallbackReport, kernelProfile, resetKernelProfile } from "./profile.ts";
 * resetKernelProfile();
 * // ... run a step ...
 * console.table(kernelProfile());
 * console.log(fallbackReport().over); // [{ kernel: "GatherV2", share: 0.031, ... }]
 * ```
 */
import type * as tf from "@tensorflow/tfjs";

type Entry = {
  calls: number;
  ms: number;
  native: number;
  nativeMs: number;
  elems: number;
  flops: number;
};
const stats = new Map<string, Entry>();

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Floating-point operations of one call (a multiply-add counts 2), from its shapes: the
 * convolutions (forward and both gradients: each is 2 · |dy| · kh · kw · ci multiply-adds
 * of the forward conv it belongs to) and the matrix products. Other kernels count 0: they
 * are memory-bound, and their arithmetic is a rounding error beside these.
 */
export function kernelFlops(
  name: string,
  inputs: Record<string, tf.TensorInfo | undefined>,
  attrs: tf.NamedAttrMap | undefined,
  out: tf.TensorInfo | tf.TensorInfo[],
): number {
  const first = Array.isArray(out) ? out[0] : out;
  switch (name) {
    case "Conv2D":
    case "FusedConv2D": {
      const f = inputs.filter?.shape;
      return f ? 2 * prod(first.shape) * f[0] * f[1] * f[2] : 0;
    }
    case "Conv2DBackpropInput": {
      const f = inputs.filter?.shape, dy = inputs.dy?.shape;
      return f && dy ? 2 * prod(dy) * f[0] * f[1] * f[2] : 0;
    }
    case "Conv2DBackpropFilter": {
      const f = attrs?.filterShape as number[] | undefined, dy = inputs.dy?.shape;
      return f && dy ? 2 * prod(dy) * f[0] * f[1] * f[2] : 0;
    }
    case "MatMul":
    case "BatchMatMul":
    case "_FusedMatMul": {
      const a = inputs.a?.shape;
      if (!a) return 0;
      const k = attrs?.transposeA ? a[a.length - 2] : a[a.length - 1];
      return 2 * prod(first.shape) * k;
    }
    default:
      return 0;
  }
}

/** True when PETAL_PROFILE asks for the element counts too. */
export const profilingOn = (): boolean => {
  const v = Deno.env.get("PETAL_PROFILE");
  return v !== undefined && v !== "" && v !== "0";
};

/** Wraps a kernelFunc so each call adds its time under `name`, as native or fallback. */
export function timed(
  name: string,
  fn: tf.KernelFunc,
  ranNative: (args: Parameters<tf.KernelFunc>[0]) => boolean,
): tf.KernelFunc {
  const countElems = profilingOn();
  return (args) => {
    const t0 = performance.now();
    const r = fn(args);
    const ms = performance.now() - t0;
    let e = stats.get(name);
    if (!e) stats.set(name, e = { calls: 0, ms: 0, native: 0, nativeMs: 0, elems: 0, flops: 0 });
    e.calls++;
    e.ms += ms;
    e.flops += kernelFlops(name, args.inputs, args.attrs, r);
    if (ranNative(args)) {
      e.native++;
      e.nativeMs += ms;
    }
    if (countElems) {
      for (const t of Array.isArray(r) ? r : [r]) e.elems += t.shape.reduce((a, b) => a * b, 1);
    }
    return r;
  };
}

/** One kernel's totals: calls, ms, calls that ran on libpetal, ms on the cpu fallback. */
export type KernelStats = {
  kernel: string;
  calls: number;
  ms: number;
  native: number;
  fallbackMs: number;
  /** Output elements in millions (PETAL_PROFILE=1 only, else 0). */
  melems: number;
  /** Floating-point operations in millions ({@link kernelFlops}; 0 for memory-bound kernels). */
  mflops: number;
};

/** Kernels sorted by total time. */
export function kernelProfile(): KernelStats[] {
  return [...stats.entries()]
    .map(([kernel, e]) => ({
      kernel,
      calls: e.calls,
      ms: e.ms,
      native: e.native,
      fallbackMs: e.ms - e.nativeMs,
      melems: e.elems / 1e6,
      mflops: e.flops / 1e6,
    }))
    .sort((a, b) => b.ms - a.ms);
}

/** Clears the accounting (e.g. after warm-up). */
export function resetKernelProfile(): void {
  stats.clear();
}

/** A fallback kernel's cost: ms on tfjs's cpu code and its share of all kernel time. */
export type FallbackCost = { kernel: string; ms: number; calls: number; share: number };

/** Kernel time so far, the part spent in cpu fallbacks, and the fallbacks over `minShare`. */
export type FallbackReport = {
  totalMs: number;
  fallbackMs: number;
  over: FallbackCost[];
};

/**
 * The cpu fallbacks whose time is above `minShare` (default 2%) of all kernel time.
 *
 * @example
 * ```ts
 * const r = fallbackReport();
 * if (r.over.length) console.log(formatFallbackReport(r));
 * ```
 */
export function fallbackReport(minShare = 0.02): FallbackReport {
  const all = kernelProfile();
  const totalMs = all.reduce((s, k) => s + k.ms, 0);
  const fallbackMs = all.reduce((s, k) => s + k.fallbackMs, 0);
  const over = all
    .map((k) => ({
      kernel: k.kernel,
      ms: k.fallbackMs,
      calls: k.calls - k.native,
      share: totalMs > 0 ? k.fallbackMs / totalMs : 0,
    }))
    .filter((k) => k.share > minShare)
    .sort((a, b) => b.ms - a.ms);
  return { totalMs, fallbackMs, over };
}

/**
 * One line for a task's summary, e.g.
 * "native: cpu fallbacks 1.2% of kernel time (none above 2%)".
 */
export function formatFallbackReport(r: FallbackReport, minShare = 0.02): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const head = `native: cpu fallbacks ${pct(r.totalMs ? r.fallbackMs / r.totalMs : 0)} of ` +
    `kernel time (${(r.totalMs / 1000).toFixed(1)} s)`;
  if (!r.over.length) return `${head}, none above ${pct(minShare)}`;
  const list = r.over.map((k) => `${k.kernel} ${pct(k.share)} (${k.calls} calls)`).join(", ");
  return `${head}; above ${pct(minShare)}: ${list}`;
}
