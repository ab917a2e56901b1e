/**
 * Shared by the webgpu tests: registers the backend (any adapter, lavapipe included),
 * `gpuTest` (ignored, with the reason in its name, where there is no adapter) and
 * `parity`, which runs a function and its gradients on tfjs cpu and on webgpu and compares.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { gpuTest, parity } from "./webgpu_parity.ts";
 * gpuTest("Exp", () => parity([{ shape: [3, 5] }], (x) => tf.exp(x), ["Exp"]));
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { registerWebgpuBackend } from "../pipeline/backends/webgpu.ts";
import { assert, assertEquals } from "./assert.ts";

export const gpu = await registerWebgpuBackend({ allowSoftware: true });
if (!gpu.ok) console.log(`webgpu tests skipped: ${gpu.reason}`);
// tfjs-webgpu runs kernels on small CPU-resident tensors with its cpu kernels; the tests'
// tensors are small, so without this the shaders would go untested.
if (gpu.ok) tf.env().set("WEBGPU_CPU_FORWARD", false); // a flag of tfjs-backend-webgpu

/** Deno.test on webgpu; ignored, with the reason in its name, where there is no adapter. */
export function gpuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: gpu.ok ? name : `${name} (skipped: ${gpu.reason})`,
    ignore: !gpu.ok,
    fn,
    // The GPU device and its buffers outlive a test by design.
    sanitizeResources: false,
    sanitizeOps: false,
  });
}

/** Deterministic values in [-1, 1) (mulberry32), identical on both backends. */
export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** An input: random floats (`positive`: in [0.5, 1.5)), or the given values / int dtype. */
export interface Spec {
  readonly shape: number[];
  readonly positive?: boolean;
  readonly values?: number[];
  readonly dtype?: "float32" | "int32";
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function makeInput(spec: Spec, seed: number): tf.Tensor {
  if (spec.values) return tf.tensor(spec.values, spec.shape, spec.dtype ?? "float32");
  const v = rand(size(spec.shape), seed);
  return tf.tensor(spec.positive ? v.map((x) => Math.abs(x) + 0.5) : v, spec.shape);
}

/** Kernel names run on webgpu by any parity case so far (the coverage test reads it). */
export const coveredKernels = new Set<string>();

type Engine = { runKernel: (name: string, ...rest: unknown[]) => unknown };

/** Runs `body` while recording the names of the kernels tfjs dispatches. */
export function recordKernels<T>(into: Set<string>, body: () => T): T {
  const engine = tf.engine() as unknown as Engine;
  const original = engine.runKernel;
  engine.runKernel = function (name: string, ...rest: unknown[]) {
    into.add(name);
    return original.call(this, name, ...rest);
  };
  try {
    return body();
  } finally {
    engine.runKernel = original;
  }
}

type Fn = (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
type Result = { shape: number[]; values: Float32Array }[];

/** Outputs of `f`, then (if `grad`) d(Σ w·f)/d(each float input) for fixed random w. */
async function runOn(backend: string, inputs: Spec[], f: Fn, grad: boolean, seen: Set<string>) {
  assert(await tf.setBackend(backend), `tf.setBackend('${backend}') failed`);
  const xs = inputs.map((s, i) => makeInput(s, 17 + 31 * i));
  const outs = recordKernels(seen, () =>
    tf.tidy(() => {
      const wrap = (...a: tf.Tensor[]) => {
        const r = f(...a);
        return Array.isArray(r) ? r : [r];
      };
      const ys = wrap(...xs);
      if (!grad) return ys;
      const floats = xs.map((x, i) => [x, i] as const).filter(([x]) => x.dtype === "float32");
      const loss = (...fx: tf.Tensor[]) => {
        const all = xs.map((x) => x);
        floats.forEach(([, i], k) => (all[i] = fx[k]));
        return tf.addN(
          wrap(...all).map((y, o) => tf.sum(tf.mul(y, tf.tensor(rand(y.size, 99 + o), y.shape)))),
        ) as tf.Scalar;
      };
      return [...ys, ...tf.grads(loss)(floats.map(([x]) => x))];
    }));
  const got: Result = [];
  for (const t of outs) got.push({ shape: t.shape, values: Float32Array.from(await t.data()) });
  tf.dispose([...xs, ...outs]);
  return got;
}

/** max |got − ref| / max |ref| of one output. */
export function relError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * `f` and its gradients (w.r.t. every float input) on webgpu match tfjs cpu within `tol`
 * (relative to the output's largest value), and each of `kernels` ran on webgpu.
 */
export async function parity(
  inputs: Spec[],
  f: Fn,
  kernels: string[],
  opts: { grad?: boolean; tol?: number } = {},
): Promise<void> {
  const grad = opts.grad ?? true;
  const tol = opts.tol ?? 1e-3;
  const ref = await runOn("cpu", inputs, f, grad, new Set());
  const seen = new Set<string>();
  const got = await runOn("webgpu", inputs, f, grad, seen);
  for (const k of kernels) assert(seen.has(k), `kernel ${k} did not run (ran: ${[...seen]})`);
  seen.forEach((k) => coveredKernels.add(k));
  assertEquals(got.length, ref.length);
  ref.forEach((r, o) => {
    assertEquals(got[o].shape, r.shape, `output ${o} shape`);
    const e = relError(got[o].values, r.values);
    assert(e <= tol, `output ${o}: relative error ${e.toExponential(2)} > ${tol}`);
    assert(got[o].values.every(Number.isFinite), `output ${o} has NaN or Inf`);
  });
}
