/**
 * The kernels of stages/fused.ts against tfjs's autodiff of the tf ops they stand for
 * (stages/layers.ts `batchNormActOps`, `biasActOps`, `upsampleNearestOps`, on cpu): on
 * native (libpetal: native/src/norm.cpp, upsample.cpp) and as cpu's own kernels
 * (pipeline/backends/fused_routes.ts, whose gradients are stages/fused.ts's tf-op ones).
 * Batch norm: forward values, running statistics, every gradient, a second-order gradient,
 * no tensor left behind, and a clear error on a bad shape; in eval mode (the affine kernel),
 * values and gradients against tf.batchNorm on the running statistics. Bias and activation: values and
 * gradients, second order. Up-sampling: values and gradient, bit for bit. Skipped when
 * libpetal is not built.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { nativeCallCount, registerNativeBackend } from "../pipeline/backends/native.ts";
import { seededTensor } from "./seeded.ts";
import {
  type Activation,
  AFFINE_ACT,
  BIAS_ACT,
  BIAS_ACT_GRAD,
  FUSED_COND_NORM,
  FUSED_NORM,
  FUSED_NORM_GRAD,
  UPSAMPLE,
  UPSAMPLE_GRAD,
} from "../stages/fused.ts";
import {
  batchNormAct,
  batchNormActOps,
  biasAct,
  biasActOps,
  type Context,
  newContext,
  type Params,
  upsampleNearest,
  upsampleNearestOps,
} from "../stages/layers.ts";

const registered = await registerNativeBackend();
const available = registered.ok;
if (!registered.ok) console.log(`fused kernel tests skipped: ${registered.reason}`);

const TOL = 2e-5;

/** Deterministic values in [-2, 2), so both backends get the same bytes. */
const rand = (shape: number[], seed: number): tf.Tensor => seededTensor(shape, seed, -2, 2);

/** Runs fn on `backend` and reads every output back. */
async function on(backend: string, fn: () => tf.Tensor[]) {
  await tf.setBackend(backend);
  return tf.tidy(fn).map((t) => {
    const r = { shape: t.shape, values: Array.from(t.dataSync()) };
    t.dispose();
    return r;
  });
}

function assertClose(got: Awaited<ReturnType<typeof on>>, ref: Awaited<ReturnType<typeof on>>) {
  assert.strictEqual(got.length, ref.length);
  ref.forEach((r, o) => {
    assert.deepStrictEqual(got[o].shape, r.shape, `output ${o} shape`);
    let diff = 0, scale = 0;
    r.values.forEach((v, i) => {
      diff = Math.max(diff, Math.abs(got[o].values[i] - v));
      scale = Math.max(scale, Math.abs(v));
    });
    assert(scale > 0, `output ${o} is all zero: the case tests nothing`);
    assert(diff / scale <= TOL, `output ${o}: relative error ${diff / scale} > ${TOL}`);
  });
}

/** A batch-norm layer's params from plain tensors (running statistics with `running`). */
function layer(C: number, seed: number, running: boolean): Params {
  const p: Record<string, tf.Tensor> = {
    "bn.gamma": tf.add(1, tf.mul(0.5, rand([C], seed))),
    "bn.beta": tf.mul(0.5, rand([C], seed + 1)),
  };
  if (running) {
    p["bn.mean"] = tf.variable(rand([C], seed + 2), false);
    p["bn.var"] = tf.variable(tf.add(1.5, rand([C], seed + 3)), false);
  }
  return p as unknown as Params;
}

const cases: Array<{ shape: number[]; act: Activation; mod: boolean }> = [
  { shape: [3, 5, 5, 7], act: "relu", mod: true }, // G's conditional batch norm
  { shape: [4, 16, 16, 8], act: "leakyRelu", mod: false }, // D's; 256 rows per sample
  { shape: [5, 1, 1, 6], act: "linear", mod: true },
  { shape: [2, 9, 3, 5], act: "leakyRelu", mod: true },
  { shape: [6, 4, 4, 3], act: "relu", mod: false },
];

for (const { shape, act, mod } of cases) {
  Deno.test({
    name: `fused batch norm [${shape}] ${act}${mod ? ", modulated" : ""}: values, statistics, ` +
      "gradients match autodiff of the ops, on native and as cpu's kernel",
    ignore: !available,
    fn: async () => {
      const [B, , , C] = shape;
      // `layer`: batchNormAct (the kernel, its gradient); else tfjs's autodiff of the ops.
      const run = (layerPath: boolean) => () => {
        const x = rand(shape, 10), r = rand(shape, 11);
        const scale = tf.mul(0.3, rand([B, C], 12)), shift = rand([B, C], 13);
        const p = layer(C, 20, true);
        const ctx: Context = newContext(true);
        const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, s: tf.Tensor, t: tf.Tensor) => {
          const q = { ...p, "bn.gamma": g, "bn.beta": b } as unknown as Params;
          const m = mod ? { scale: s as tf.Tensor2D, shift: t as tf.Tensor2D } : undefined;
          if (layerPath) return batchNormAct(xx as tf.Tensor4D, q, "bn", ctx, act, m);
          const o = batchNormActOps(xx, g, b, act, 1e-5, m);
          ctx.updates.push(
            [p["bn.mean"] as tf.Variable, tf.add(tf.mul(p["bn.mean"], 0.9), tf.mul(o.mean, 0.1))],
            [p["bn.var"] as tf.Variable, tf.add(tf.mul(p["bn.var"], 0.9), tf.mul(o.variance, 0.1))],
          );
          return o.y;
        };
        const all = [x, p["bn.gamma"], p["bn.beta"], scale, shift];
        const y = f(...all as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]);
        const updates = ctx.updates.map(([, v]) => v);
        ctx.updates.length = 0;
        // Without modulation, y does not depend on scale and shift.
        const grads = tf.grads((...xs: tf.Tensor[]) =>
          tf.sum(tf.mul(f(xs[0], xs[1], xs[2], xs[3] ?? scale, xs[4] ?? shift), r))
        )(all.slice(0, mod ? 5 : 3));
        tf.dispose(ctx.updates.map(([, v]) => v));
        const out = [y, ...updates, ...grads];
        tf.dispose([p["bn.mean"], p["bn.var"]]);
        return out;
      };
      const ref = await on("cpu", run(false));
      assertClose(await on("cpu", run(true)), ref);
      const kernel = mod ? FUSED_COND_NORM : FUSED_NORM;
      const before = [nativeCallCount(kernel), nativeCallCount(FUSED_NORM_GRAD)];
      const got = await on("native", run(true));
      assert(nativeCallCount(kernel) > before[0], `${kernel} did not run`);
      assert(nativeCallCount(FUSED_NORM_GRAD) > before[1], `${FUSED_NORM_GRAD} did not run`);
      assertClose(got, ref);
    },
  });
}

for (const { shape, act, mod } of cases) {
  Deno.test({
    name: `eval-mode batch norm [${shape}] ${act}${mod ? ", modulated" : ""}: the affine ` +
      "kernel's values and gradients match autodiff of tf.batchNorm on the running statistics",
    ignore: !available,
    fn: async () => {
      const [B, , , C] = shape;
      const run = (layerPath: boolean) => () => {
        const x = rand(shape, 60), r = rand(shape, 61);
        const scale = tf.mul(0.3, rand([B, C], 62)), shift = rand([B, C], 63);
        const p = layer(C, 64, true);
        const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, s: tf.Tensor, t: tf.Tensor) => {
          const m = mod ? { scale: s as tf.Tensor2D, shift: t as tf.Tensor2D } : undefined;
          if (layerPath) {
            const q = { ...p, "bn.gamma": g, "bn.beta": b } as unknown as Params;
            return batchNormAct(xx as tf.Tensor4D, q, "bn", newContext(false), act, m);
          }
          let h = tf.batchNorm(xx, p["bn.mean"], p["bn.var"], b, g, 1e-5);
          if (m) h = tf.add(tf.mul(h, tf.add(1, s.reshape([B, 1, 1, C]))), t.reshape([B, 1, 1, C]));
          return act === "relu" ? tf.relu(h) : act === "leakyRelu" ? tf.leakyRelu(h, 0.2) : h;
        };
        const all = [x, p["bn.gamma"], p["bn.beta"], scale, shift];
        const y = f(...all as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]);
        const grads = tf.grads((...xs: tf.Tensor[]) =>
          tf.sum(tf.mul(f(xs[0], xs[1], xs[2], xs[3] ?? scale, xs[4] ?? shift), r))
        )(all.slice(0, mod ? 5 : 3));
        tf.dispose([p["bn.mean"], p["bn.var"]]);
        return [y, ...grads];
      };
      const ref = await on("cpu", run(false));
      assertClose(await on("cpu", run(true)), ref);
      const before = nativeCallCount(AFFINE_ACT);
      const got = await on("native", run(true));
      assert(nativeCallCount(AFFINE_ACT) > before, `${AFFINE_ACT} did not run`);
      assertClose(got, ref);
    },
  });
}

for (const backend of ["native", "cpu"]) {
  Deno.test({
    name: `fused kernels on ${backend}: no tensor left after training steps through all three`,
    ignore: !available,
    fn: async () => {
      await tf.setBackend(backend);
      const p = layer(8, 40, true);
      const gamma = tf.variable(p["bn.gamma"], true), bias = tf.variable(rand([8], 42), true);
      const q = { ...p, "bn.gamma": gamma } as unknown as Params;
      const opt = tf.train.adam(1e-3);
      const x = rand([4, 8, 8, 8], 41) as tf.Tensor4D, s = rand([4, 8], 43) as tf.Tensor2D;
      const step = () => {
        const ctx = newContext(true);
        opt.minimize(
          () => {
            const mod = { scale: s, shift: s };
            const h = batchNormAct(x, q, "bn", ctx, "relu", mod);
            return tf.mean(
              tf.square(upsampleNearest(biasAct(h, bias, "leakyRelu") as tf.Tensor4D)),
            );
          },
          false,
          [gamma, bias],
        );
        for (const [v, t] of ctx.updates) {
          v.assign(t);
          t.dispose();
        }
      };
      step(); // Adam's moments are made on the first step
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      assert.strictEqual(tf.memory().numTensors, before);
      tf.dispose([gamma, bias, x, s, ...Object.values(p)]);
      opt.dispose();
    },
  });
}

for (const shape of [[2, 4, 4, 128], [3, 5, 7, 3], [1, 1, 1, 1]]) {
  Deno.test({
    name: `nearest up-sampling [${shape}]: values and gradient bit for bit autodiff of the ops`,
    ignore: !available,
    fn: async () => {
      const [B, H, W, C] = shape;
      const run = (up: (x: tf.Tensor4D) => tf.Tensor4D) => () => {
        const x = rand(shape, 50) as tf.Tensor4D, r = rand([B, 2 * H, 2 * W, C], 51);
        const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(up(v as tf.Tensor4D), r)))(x);
        return [up(x), dx];
      };
      const ref = await on("cpu", run(upsampleNearestOps));
      assert.deepStrictEqual(await on("cpu", run(upsampleNearest)), ref);
      const before = [nativeCallCount(UPSAMPLE), nativeCallCount(UPSAMPLE_GRAD)];
      const got = await on("native", run(upsampleNearest));
      assert(nativeCallCount(UPSAMPLE) > before[0], `${UPSAMPLE} did not run`);
      assert(nativeCallCount(UPSAMPLE_GRAD) > before[1], `${UPSAMPLE_GRAD} did not run`);
      assert.deepStrictEqual(got, ref);
    },
  });
}

const badInputs: Array<[string, string, () => tf.NamedTensorMap, tf.NamedAttrMap, RegExp]> = [
  [
    "bias and activation: a bias of the wrong length",
    BIAS_ACT,
    () => ({ x: tf.ones([2, 3]), bias: tf.ones([4]) }),
    { act: 2, alpha: 0.2 },
    /^bias and activation: bias must be float32 \[3\], got \[4\]$/,
  ],
  [
    "fused batch norm: a gamma of the wrong length",
    FUSED_NORM,
    () => ({ x: tf.ones([2, 3, 3, 4]), gamma: tf.ones([5]), beta: tf.zeros([4]) }),
    { act: 1, alpha: 0, epsilon: 1e-5 },
    /^fused batch norm: gamma must be float32 \[4\], got \[5\]$/,
  ],
  [
    "nearest up-sampling: an odd-sized gradient",
    UPSAMPLE_GRAD,
    () => ({ dy: tf.ones([1, 3, 4, 2]) }),
    {},
    /^nearest up-sampling: dy must be float32 \[B, 2H, 2W, C\], got \[1,3,4,2\]$/,
  ],
  [
    "affine and activation: a per-channel a where it wants one per sample",
    AFFINE_ACT,
    () => ({ x: tf.ones([2, 3, 3, 4]), a: tf.ones([1, 4]), b: tf.zeros([2, 4]) }),
    { act: 1, alpha: 0 },
    /^affine and activation: a must be float32 \[2,4\], got \[1,4\]$/,
  ],
];
for (const [what, kernel, inputs, attrs, message] of badInputs) {
  Deno.test({
    name: `${what} is a one-line error naming it`,
    ignore: !available,
    fn: async () => {
      await tf.setBackend("native");
      tf.tidy(() => {
        assert.throws(() => tf.engine().runKernel(kernel, inputs(), attrs), (e: Error) => {
          assert.match(e.message, message);
          return true;
        });
      });
    },
  });
}

const biasCases: Array<{ shape: number[]; act: Activation }> = [
  { shape: [4, 16, 16, 16], act: "leakyRelu" }, // D's first layer
  { shape: [32, 64], act: "leakyRelu" }, // D's text projection
  { shape: [3, 5, 5, 6], act: "relu" },
  { shape: [7, 3], act: "linear" },
];
for (const { shape, act } of biasCases) {
  Deno.test({
    name: `bias and ${act} [${shape}]: values and both gradients match autodiff of the ops`,
    ignore: !available,
    fn: async () => {
      const C = shape[shape.length - 1];
      const run = (fn: typeof biasAct) => () => {
        const x = rand(shape, 60), b = rand([C], 61), r = rand(shape, 62);
        const f = (xx: tf.Tensor, bb: tf.Tensor) => fn(xx, bb, act);
        return [
          f(x, b),
          ...tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, bb), r)))([x, b]),
        ];
      };
      const ref = await on("cpu", run(biasActOps));
      assertClose(await on("cpu", run(biasAct)), ref);
      const before = [nativeCallCount(BIAS_ACT), nativeCallCount(BIAS_ACT_GRAD)];
      const got = await on("native", run(biasAct));
      assert(nativeCallCount(BIAS_ACT) > before[0], `${BIAS_ACT} did not run`);
      assert(nativeCallCount(BIAS_ACT_GRAD) > before[1], `${BIAS_ACT_GRAD} did not run`);
      assertClose(got, ref);
    },
  });
}

/**
 * A WGAN-GP-style penalty's gradient through `layer` after a conv: the outer gradient
 * differentiates the layer's backward pass, so the kernels' gradients must be on the tape.
 */
const penaltyGradient = (layer: (h: tf.Tensor4D) => tf.Tensor) => () => {
  const x = rand([3, 6, 6, 4], 30), f = rand([3, 3, 4, 5], 31);
  const critic = (xx: tf.Tensor) => {
    const h = tf.conv2d(xx as tf.Tensor4D, f as tf.Tensor4D, 1, "same");
    return tf.sum(tf.mul(layer(h), h));
  };
  return [tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.grad(critic)(xx))))(x)];
};

const bn = layer(5, 32, false), bias = rand([5], 33);
const secondOrder: Array<[string, (h: tf.Tensor4D) => tf.Tensor, (h: tf.Tensor4D) => tf.Tensor]> = [
  [
    "batch norm and leaky ReLU",
    (h) => batchNormAct(h, bn, "bn", newContext(true), "leakyRelu"),
    (h) => batchNormActOps(h, bn["bn.gamma"], bn["bn.beta"], "leakyRelu", 1e-5).y,
  ],
  [
    "bias and leaky ReLU",
    (h) => biasAct(h, bias, "leakyRelu"),
    (h) => biasActOps(h, bias, "leakyRelu"),
  ],
];
for (const [what, kernel, ops] of secondOrder) {
  Deno.test({
    name: `${what}: a gradient penalty through it (second order) matches autodiff of the ops`,
    ignore: !available,
    fn: async () => {
      const ref = await on("cpu", penaltyGradient(ops));
      assertClose(await on("cpu", penaltyGradient(kernel)), ref);
      assertClose(await on("native", penaltyGradient(kernel)), ref);
    },
  });
}
