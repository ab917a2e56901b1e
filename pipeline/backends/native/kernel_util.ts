/**
 * Shared plumbing for the native kernels: read a tensor's Float32Array from the cpu-style
 * data store, wrap a result, and the "fast path or fall back" kernel shape.
 *
 * @example
 * ```ts
 * import { f32 } from "./kernel_util.ts";
 * // inside a kernelFunc: const xs = f32(backend, inputs.x);
 * ```
 */
import type * as tf from "@tensorflow/tfjs";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

/** A kernel body that returns null when it cannot handle the case (dtype, layout, shape). */
export type FastKernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null;

/** A kernel's arguments as tfjs passes them. Optional inputs (bias, ...) may be absent. */
export type KernelArgs = {
  inputs: Record<string, tf.TensorInfo>;
  backend: MathBackendCPU;
  attrs: tf.NamedAttrMap;
};

/**
 * The float32 values of a tensor held by a MathBackendCPU, or null for other dtypes. tfjs's
 * cpu Cast keeps the int32 or bool values of a tensor cast to float32 (a mask, a count): those
 * come back converted, a copy the size of the (usually small) tensor.
 */
export function f32(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== "float32") return null;
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  return v instanceof Int32Array || v instanceof Uint8Array ? Float32Array.from(v) : null;
}

/** The product of a shape's dimensions. */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Wraps a freshly computed buffer as a tensor of this backend (no copy). */
export function out(
  backend: MathBackendCPU,
  shape: number[],
  values: Float32Array | Uint8Array,
  dtype: tf.DataType = "float32",
): tf.TensorInfo {
  return backend.makeTensorInfo(shape, dtype, values);
}

/** Throws on a non-zero libpetal status: kernels check shapes first, so this is a bug. */
export function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`libpetal ${what} failed with status ${status}`);
}

const fastCalls = new Map<string, number>();

/** Counts one call of `kernel` that ran on libpetal (see nativeCallCount in ../native.ts). */
export function recordFast(kernel: string): void {
  fastCalls.set(kernel, (fastCalls.get(kernel) ?? 0) + 1);
}

/** How many calls of `kernel` ran on libpetal so far. */
export const fastCallCount = (kernel: string): number => fastCalls.get(kernel) ?? 0;
