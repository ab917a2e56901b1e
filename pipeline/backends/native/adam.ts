/**
 * Adam in one native call per variable on the native backend (issue 18). tfjs's
 * AdamOptimizer.applyGradients runs 14 kernels per variable, each allocating a fresh array;
 * `petal_adam` (native/src/adam.cpp) does the same float32 operations in the same order in
 * one pass, so the weights and moments are bit for bit tfjs's (tests/native_engine_test.ts).
 * Optimiser state stays where tfjs keeps it (accumulatedFirstMoment/SecondMoment, accBeta1/2,
 * iterations), so getWeights/setWeights and checkpoints are unchanged. Results go to new
 * arrays that replace the variables' data (assign), never written in place: a dataSync()
 * array handed out earlier (a checkpoint being written) keeps its values.
 *
 * On other backends, or for any variable that is not float32, tfjs's own code runs.
 * PETAL_FUSED_ADAM=0 turns it off.
 *
 * @example
 * ```ts
 * import { installFusedAdam } from "./adam.ts";
 * // installFusedAdam(lib); // by registerNativeBackend()
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type { Libpetal } from "./ffi.ts";
import { recordFast } from "./kernel_util.ts";

type Slot = { originalName: string; variable: tf.Variable };
type AdamState = {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
  incrementIterations(): void;
};
type Grads = tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[];

let installed = false;
let enabled = true;

/** Turns the fused update off (tfjs's own Adam) or on again; returns the previous state. */
export function setFusedAdam(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Routes tf.AdamOptimizer.applyGradients through petal_adam while "native" is the backend. */
export function installFusedAdam(lib: Libpetal, backendName: string): void {
  if (installed) return;
  installed = true;
  if (Deno.env.get("PETAL_FUSED_ADAM") === "0") return;
  const proto = tf.AdamOptimizer.prototype as unknown as {
    applyGradients(this: AdamState, g: Grads): void;
  };
  const original = proto.applyGradients;
  proto.applyGradients = function (this: AdamState, grads: Grads) {
    if (!enabled || tf.getBackend() !== backendName || !fused(lib, this, grads)) {
      original.call(this, grads);
    }
  };
}

const f32 = (b: MathBackendCPU, t: tf.Tensor): Float32Array | null => {
  if (t.dtype !== "float32") return null;
  const v = b.data.get(t.dataId)?.values;
  return v instanceof Float32Array ? v : null;
};

/** The fused update; false (nothing changed) when a case needs tfjs's own code. */
function fused(lib: Libpetal, opt: AdamState, grads: Grads): boolean {
  const backend = tf.backend() as unknown as MathBackendCPU;
  const names = Array.isArray(grads) ? grads.map((g) => g.name) : Object.keys(grads);
  const gradOf = (name: string, i: number) =>
    Array.isArray(grads) ? grads[i].tensor : (grads as tf.NamedTensorMap)[name];
  const vars = tf.engine().registeredVariables;
  // Check every operand first, so that a declined call changes nothing.
  for (const [i, name] of names.entries()) {
    const value = vars[name], g = gradOf(name, i);
    if (!value || !f32(backend, value)) return false;
    if (g != null && (!f32(backend, g) || g.size !== value.size)) return false;
    for (const slot of [opt.accumulatedFirstMoment[i], opt.accumulatedSecondMoment[i]]) {
      if (slot && (!f32(backend, slot.variable) || slot.variable.size !== value.size)) return false;
    }
  }
  const acc1 = f32(backend, opt.accBeta1), acc2 = f32(backend, opt.accBeta2);
  if (!acc1 || !acc2) return false;
  const c1 = Math.fround(1 - acc1[0]), c2 = Math.fround(1 - acc2[0]);
  const b1 = opt.beta1, b2 = opt.beta2;
  const wrap = (shape: number[], values: Float32Array) =>
    tf.engine().makeTensorFromTensorInfo(backend.makeTensorInfo(shape, "float32", values));
  tf.tidy(() => {
    for (const [i, name] of names.entries()) {
      const value = vars[name];
      opt.accumulatedFirstMoment[i] ??= {
        originalName: `${name}/m`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      opt.accumulatedSecondMoment[i] ??= {
        originalName: `${name}/v`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const g = gradOf(name, i);
      if (g == null) continue;
      const m = opt.accumulatedFirstMoment[i].variable;
      const v = opt.accumulatedSecondMoment[i].variable;
      const n = value.size;
      const x1 = new Float32Array(n), m1 = new Float32Array(n), v1 = new Float32Array(n);
      const status = lib.petal_adam(
        f32(backend, value)!,
        f32(backend, m)!,
        f32(backend, v)!,
        f32(backend, g)!,
        x1,
        m1,
        v1,
        n,
        b1,
        1 - b1,
        b2,
        1 - b2,
        c1,
        c2,
        opt.epsilon,
        -opt.learningRate,
      );
      if (status !== 0) throw new Error(`libpetal adam failed with status ${status}`);
      m.assign(wrap(m.shape, m1));
      v.assign(wrap(v.shape, v1));
      value.assign(wrap(value.shape, x1));
      recordFast("PetalAdam");
    }
    opt.accBeta1.assign(tf.mul(opt.accBeta1, b1));
    opt.accBeta2.assign(tf.mul(opt.accBeta2, b2));
  });
  opt.incrementIterations();
  return true;
}
