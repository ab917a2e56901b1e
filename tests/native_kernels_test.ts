/**
 * Parity of the native backend (libpetal over FFI) with tfjs's cpu backend: every routed
 * kernel on random inputs with odd sizes, strides 1 and 2, 'same'/'valid'/explicit padding
 * and batch 1, plus gradients through tf.grad. Each case also asserts the kernel really ran
 * on libpetal (nativeCallCount), so a silent fallback to cpu fails the test.
 * Skipped, with the reason printed, when native/build/libpetal.so is not built.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { nativeCallCount, registerNativeBackend } from "../pipeline/backends/native.ts";

const registered = await registerNativeBackend();
const available = registered.ok;
if (!registered.ok) console.log(`native kernel tests skipped: ${registered.reason}`);

const TOL = 1e-4;

/** Deterministic inputs (mulberry32), identical for both backends. */
function rand(shape: number[], seed: number): { shape: number[]; values: Float32Array } {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return { shape, values };
}

type Input = { shape: number[]; values: Float32Array };

/** Runs `fn` on `backend` with fresh tensors of `inputs`; returns every output's values. */
async function runOn(
  backend: string,
  inputs: Input[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<{ shape: number[]; values: Float32Array }[]> {
  await tf.setBackend(backend);
  const xs = inputs.map((i) => tf.tensor(i.values, i.shape));
  const r = fn(...xs);
  const outs = Array.isArray(r) ? r : [r];
  const got = outs.map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  tf.dispose([...xs, ...outs]);
  return got;
}

/** max |a - b| / max |b| over all outputs must stay within TOL; shapes must match. */
async function parity(
  inputs: Input[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
  kernels: string[],
): Promise<void> {
  const ref = await runOn("cpu", inputs, fn);
  const before = kernels.map(nativeCallCount);
  const got = await runOn("native", inputs, fn);
  kernels.forEach((k, i) =>
    assert(nativeCallCount(k) > before[i], `${k} did not run on libpetal (fell back to cpu)`)
  );
  assert.strictEqual(got.length, ref.length);
  for (let o = 0; o < ref.length; o++) {
    assert.deepStrictEqual(got[o].shape, ref[o].shape);
    let diff = 0, scale = 0;
    for (let i = 0; i < ref[o].values.length; i++) {
      diff = Math.max(diff, Math.abs(got[o].values[i] - ref[o].values[i]));
      scale = Math.max(scale, Math.abs(ref[o].values[i]));
    }
    assert(scale > 0, "reference output is all zero: the case tests nothing");
    assert(diff / scale <= TOL, `output ${o}: relative error ${diff / scale} > ${TOL}`);
  }
}

type Pad = "same" | "valid" | number;
type ConvCase = {
  n: number;
  h: number;
  w: number;
  c: number;
  k: [number, number];
  oc: number;
  stride: number;
  pad: Pad;
  dilation?: number;
};

const convCases: ConvCase[] = [
  { n: 1, h: 7, w: 9, c: 3, k: [3, 3], oc: 5, stride: 1, pad: "same" },
  { n: 1, h: 7, w: 9, c: 3, k: [3, 3], oc: 5, stride: 2, pad: "same" },
  { n: 2, h: 11, w: 6, c: 4, k: [4, 4], oc: 3, stride: 2, pad: "same" },
  { n: 1, h: 9, w: 7, c: 5, k: [3, 2], oc: 6, stride: 1, pad: "valid" },
  { n: 3, h: 10, w: 9, c: 2, k: [4, 4], oc: 7, stride: 2, pad: "valid" },
  { n: 1, h: 8, w: 8, c: 16, k: [4, 4], oc: 8, stride: 2, pad: 1 },
  { n: 2, h: 9, w: 9, c: 3, k: [3, 3], oc: 4, stride: 1, pad: "same", dilation: 2 },
  { n: 2, h: 5, w: 5, c: 13, k: [1, 1], oc: 9, stride: 1, pad: "valid" },
  // ~100 MFLOP: above libpetal's one-thread cut-off, so the all-cores path is checked too.
  { n: 2, h: 26, w: 25, c: 64, k: [3, 3], oc: 64, stride: 1, pad: "same" },
  // At most 4 output channels: libpetal's direct kernels (native/src/conv_narrow.cpp). A
  // generator's RGB layer at 64×64 (past the one-thread cut-off), a critic's score, channel
  // counts off the 8-lane vectors, strides and asymmetric "same" padding.
  { n: 3, h: 64, w: 64, c: 16, k: [3, 3], oc: 3, stride: 1, pad: "same" },
  { n: 4, h: 4, w: 4, c: 128, k: [4, 4], oc: 1, stride: 1, pad: "valid" },
  { n: 2, h: 9, w: 10, c: 13, k: [4, 4], oc: 2, stride: 2, pad: "same" },
  { n: 2, h: 7, w: 5, c: 5, k: [1, 1], oc: 4, stride: 1, pad: "valid" },
  { n: 1, h: 8, w: 9, c: 9, k: [3, 2], oc: 3, stride: 3, pad: 1 },
];

const label = (c: ConvCase) =>
  `${c.n}x${c.h}x${c.w}x${c.c} k${c.k.join("x")} oc${c.oc} s${c.stride} ${c.pad}` +
  (c.dilation ? ` d${c.dilation}` : "");

for (const [i, c] of convCases.entries()) {
  Deno.test({
    name: `native Conv2D forward ${label(c)}`,
    ignore: !available,
    fn: () =>
      parity(
        [rand([c.n, c.h, c.w, c.c], 10 + i), rand([...c.k, c.c, c.oc], 20 + i)],
        (x, f) =>
          tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad, "NHWC", c.dilation ?? 1),
        ["Conv2D"],
      ),
  });
  // tfjs has no conv2d gradient for dilations > 1 on any backend.
  if (c.dilation) continue;
  Deno.test({
    name: `native Conv2D gradients (BackpropInput, BackpropFilter) ${label(c)}`,
    ignore: !available,
    fn: async () => {
      // Weight the output by a random tensor so every dy element differs.
      const outShape = await runOn(
        "cpu",
        [rand([c.n, c.h, c.w, c.c], 1), rand([...c.k, c.c, c.oc], 2)],
        (x, f) =>
          tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad, "NHWC", c.dilation ?? 1),
      );
      await parity(
        [
          rand([c.n, c.h, c.w, c.c], 30 + i),
          rand([...c.k, c.c, c.oc], 40 + i),
          rand(outShape[0].shape, 50 + i),
        ],
        (x, f, r) =>
          tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.conv2d(
                  xx as tf.Tensor4D,
                  ff as tf.Tensor4D,
                  c.stride,
                  c.pad,
                  "NHWC",
                  c.dilation ?? 1,
                ),
                r,
              ),
            )
          )([x, f]),
        ["Conv2DBackpropInput", "Conv2DBackpropFilter"],
      );
    },
  });
}

const transposeCases: {
  n: number;
  h: number;
  w: number;
  c: number;
  oc: number;
  k: number;
  s: number;
  pad: "same" | "valid";
}[] = [
  { n: 1, h: 4, w: 4, c: 8, oc: 5, k: 4, s: 2, pad: "same" },
  { n: 2, h: 5, w: 3, c: 3, oc: 4, k: 3, s: 2, pad: "valid" },
  { n: 1, h: 7, w: 7, c: 6, oc: 2, k: 3, s: 1, pad: "same" },
];
for (const [i, c] of transposeCases.entries()) {
  const outH = c.pad === "same" ? c.h * c.s : (c.h - 1) * c.s + c.k;
  const outW = c.pad === "same" ? c.w * c.s : (c.w - 1) * c.s + c.k;
  Deno.test({
    name: `native conv2dTranspose + gradients ${c.n}x${c.h}x${c.w}x${c.c} k${c.k} s${c.s} ${c.pad}`,
    ignore: !available,
    fn: () =>
      parity(
        [
          rand([c.n, c.h, c.w, c.c], 60 + i),
          rand([c.k, c.k, c.oc, c.c], 70 + i),
          rand([c.n, outH, outW, c.oc], 80 + i),
        ],
        (x, f, r) => {
          const up = (xx: tf.Tensor, ff: tf.Tensor) =>
            tf.conv2dTranspose(
              xx as tf.Tensor4D,
              ff as tf.Tensor4D,
              [c.n, outH, outW, c.oc],
              c.s,
              c.pad,
            );
          const [gx, gf] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
            tf.sum(tf.mul(up(xx, ff), r))
          )([x, f]);
          return [up(x, f), gx, gf];
        },
        ["Conv2DBackpropInput", "Conv2D", "Conv2DBackpropFilter"],
      ),
  });
}

const matmulCases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
  { a: [7, 5], b: [5, 3], ta: false, tb: false },
  { a: [5, 7], b: [5, 3], ta: true, tb: false },
  { a: [7, 5], b: [3, 5], ta: false, tb: true },
  { a: [5, 7], b: [3, 5], ta: true, tb: true },
  { a: [4, 7, 5], b: [4, 5, 3], ta: false, tb: false },
  { a: [4, 7, 5], b: [1, 5, 3], ta: false, tb: false },
  { a: [1, 33, 65], b: [65, 17], ta: false, tb: false },
];
for (const [i, c] of matmulCases.entries()) {
  Deno.test({
    name: `native BatchMatMul ${c.a} x ${c.b} tA=${c.ta} tB=${c.tb} + gradients`,
    ignore: !available,
    fn: () =>
      parity(
        [rand(c.a, 90 + i), rand(c.b, 100 + i)],
        (a, b) => {
          const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, c.ta, c.tb);
          // tfjs's BatchMatMul gradient does not reduce a broadcast batch: forward only.
          if (c.a.length !== c.b.length || c.a[0] !== c.b[0]) return mm(a, b);
          return [
            mm(a, b),
            ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(mm(x, y))))([a, b]),
          ];
        },
        ["BatchMatMul"],
      ),
  });
}

Deno.test({
  name: "native fused matMul (bias + relu) and fused conv2d (bias + leakyrelu)",
  ignore: !available,
  fn: async () => {
    await parity(
      [rand([9, 6], 1), rand([6, 5], 2), rand([5], 3)],
      (a, b, bias) =>
        tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: "relu" }),
      ["_FusedMatMul"],
    );
    await parity(
      [rand([2, 7, 7, 3], 4), rand([3, 3, 3, 5], 5), rand([5], 6)],
      (x, f, bias) =>
        tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: f as tf.Tensor4D,
          strides: 2,
          pad: "same",
          bias,
          activation: "leakyrelu",
          leakyreluAlpha: 0.2,
        }),
      ["FusedConv2D"],
    );
  },
});

const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
  ["Add", tf.add],
  ["Sub", tf.sub],
  ["Multiply", tf.mul],
  ["RealDiv", tf.div],
  ["SquaredDifference", tf.squaredDifference],
  ["Maximum", tf.maximum],
  ["Minimum", tf.minimum],
];
// [full, other] shape pairs: same shape, scalar, per-channel, per-sample, and swapped.
const broadcastPairs: [number[], number[]][] = [
  [[2, 5, 3, 7], [2, 5, 3, 7]],
  [[2, 5, 3, 7], []],
  [[2, 5, 3, 7], [7]],
  [[2, 5, 3, 7], [1, 1, 1, 7]],
  [[2, 5, 3, 7], [2, 1, 1, 7]],
  [[7], [3, 7]],
  [[], [4, 9]],
  // Short rows against one value each (DiffAugment's [N,H,W,3] against [N,H,W,1]), both
  // orders, and enough rows to cross the parallel threshold.
  [[2, 5, 3, 7], [2, 5, 3, 1]],
  [[2, 5, 3, 1], [2, 5, 3, 7]],
  [[16, 32, 32, 3], [16, 32, 32, 1]],
];
for (const [name, op] of binaryOps) {
  Deno.test({
    name: `native ${name} with broadcasts`,
    ignore: !available,
    fn: async () => {
      for (const [i, [sa, sb]] of broadcastPairs.entries()) {
        // Keep divisors away from zero so RealDiv's reference is well conditioned.
        const b = rand(sb, 200 + i);
        if (name === "RealDiv") {
          b.values.forEach((v, j) => (b.values[j] = v < 0 ? v - 0.5 : v + 0.5));
        }
        await parity([rand(sa, 100 + i), b], op, [name]);
      }
    },
  });
}

Deno.test({
  name: "native comparisons and where (select)",
  ignore: !available,
  fn: async () => {
    const cmp: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ["Greater", tf.greater],
      ["GreaterEqual", tf.greaterEqual],
      ["Less", tf.less],
      ["LessEqual", tf.lessEqual],
      ["Equal", tf.equal],
      ["NotEqual", tf.notEqual],
    ];
    for (const [name, op] of cmp) {
      // Quantised inputs so Equal/NotEqual see both outcomes; scalar on the left too.
      const a = rand([3, 4, 5], 7), b = rand([5], 8), s = rand([], 9);
      for (const t of [a, b, s]) t.values.forEach((v, j) => (t.values[j] = Math.round(v * 2)));
      await parity([a, b, s], (x, y, z) => [
        tf.cast(op(x, y), "float32"),
        tf.cast(op(z, x), "float32"),
        tf.where(op(x, y), x, tf.neg(x)),
      ], [name, "Select"]);
    }
  },
});

const unaryOps: [string, (x: tf.Tensor) => tf.Tensor, boolean][] = [
  ["Relu", tf.relu, false],
  ["LeakyRelu", (x) => tf.leakyRelu(x, 0.2), false],
  ["Tanh", tf.tanh, false],
  ["Sigmoid", tf.sigmoid, false],
  ["Exp", tf.exp, false],
  ["Log", tf.log, true],
  ["Sqrt", tf.sqrt, true],
  ["Rsqrt", tf.rsqrt, true],
  ["Square", tf.square, false],
  ["Neg", tf.neg, false],
  ["Abs", tf.abs, false],
  ["Step", (x) => tf.step(x, 0.3), false],
  ["Reciprocal", tf.reciprocal, true],
  ["Elu", tf.elu, false],
  ["Relu6", (x) => tf.relu6(tf.mul(x, 8)), false],
];
for (const [name, op, positive] of unaryOps) {
  Deno.test({
    name: `native ${name} and its gradient`,
    ignore: !available,
    fn: async () => {
      // Large enough (> 32768) to take the OpenMP path in libpetal.
      const x = rand([3, 33, 17, 21], 300);
      if (positive) x.values.forEach((v, j) => (x.values[j] = Math.abs(v) + 0.1));
      // Step's gradient is zero by definition: nothing to compare there.
      const fusedGrad = name === "Relu" || name === "LeakyRelu" ? ["PetalActivationGrad"] : [];
      await parity(
        [x],
        (t) => (name === "Step" ? op(t) : [op(t), tf.grad(op)(t)]),
        [name, ...fusedGrad],
      );
    },
  });
}

Deno.test({
  name: "native Sum/Mean/Max/Min over leading, trailing and middle axes",
  ignore: !available,
  fn: async () => {
    const x = rand([6, 17, 19, 24], 400);
    const axesList: (number | number[])[] = [[0, 1, 2], 3, [1, 2], 0, [0, 1, 2, 3], -1];
    for (const axes of axesList) {
      for (const keep of [false, true]) {
        await parity([x], (t) => [
          tf.sum(t, axes, keep),
          tf.mean(t, axes, keep),
          tf.max(t, axes, keep),
          tf.min(t, axes, keep),
        ], ["Sum", "Mean", "Max", "Min"]);
      }
    }
    // Many rows of 3 (a mean over an image's channels).
    await parity([rand([8, 32, 32, 3], 401)], (t) => [
      tf.mean(t, 3, true),
      tf.max(t, -1),
      tf.sum(t, [3]),
    ], ["Sum", "Mean", "Max"]);
  },
});

Deno.test({
  name: "native Tile and AddN",
  ignore: !available,
  fn: async () => {
    await parity([rand([1, 1, 1, 5], 500)], (t) => tf.tile(t, [3, 4, 6, 1]), ["Tile"]);
    await parity([rand([2, 3, 1], 501)], (t) => tf.tile(t, [2, 1, 7]), ["Tile"]);
    await parity(
      [rand([4, 9], 502), rand([4, 9], 503), rand([4, 9], 504)],
      (a, b, c) => tf.addN([a, b, c]),
      ["AddN"],
    );
  },
});

Deno.test({
  name: "native batch norm with training-mode moments, and its gradients",
  ignore: !available,
  fn: async () => {
    const shape = [4, 9, 7, 12];
    await parity(
      [rand(shape, 600), rand([12], 601), rand([12], 602), rand(shape, 603)],
      (x, gamma, beta, r) => {
        const bn = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { mean, variance } = tf.moments(xx, [0, 1, 2], false);
          return tf.batchNorm(xx, mean, variance, b, g, 1e-5);
        };
        const grads = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.leakyRelu(bn(xx, g, b), 0.2), r))
        )([x, gamma, beta]);
        return [bn(x, gamma, beta), ...grads];
      },
      ["FusedBatchNorm", "Mean", "Tile", "Sum", "PetalBatchNormGrad", "PetalActivationGrad"],
    );
  },
});

Deno.test({
  name: "native Adam step on a conv layer matches cpu",
  ignore: !available,
  fn: () =>
    parity(
      [rand([2, 9, 9, 3], 700), rand([4, 4, 3, 6], 701)],
      (x, f0) => {
        const f = tf.variable(f0.clone());
        const opt = tf.train.adam(2e-4, 0.5, 0.999);
        for (let i = 0; i < 3; i++) {
          opt.minimize(() =>
            tf.mean(tf.square(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, "same")))
          );
        }
        const result = f.clone();
        opt.dispose();
        f.dispose();
        return result;
      },
      ["Conv2D", "Conv2DBackpropFilter"],
    ),
});

Deno.test({
  name: "native Slice and SplitV (non-contiguous), and concat/tile gradients through them",
  ignore: !available,
  fn: async () => {
    await parity(
      [rand([3, 5, 7, 9], 800)],
      (x) => [
        tf.slice(x, [1, 2, 0, 3], [2, 3, 7, 5]),
        ...tf.split(x, [2, 3, 4], 3),
        ...tf.unstack(x, 1),
      ],
      ["Slice", "SplitV", "Unpack"],
    );
    await parity(
      [rand([4, 3, 3, 6], 801), rand([4, 1, 1, 5], 802), rand([4, 3, 3, 11], 803)],
      (a, t, r) =>
        tf.grads((aa: tf.Tensor, tt: tf.Tensor) =>
          tf.sum(tf.mul(tf.concat([aa, tf.tile(tt, [1, 3, 3, 1])], 3), r))
        )([a, t]),
      ["SplitV", "Slice"],
    );
  },
});

Deno.test({
  // (tfjs itself cannot differentiate batchNorm without scale and offset, on any backend.)
  name: "native batch norm gradient on a rank-2 input",
  ignore: !available,
  fn: () =>
    parity(
      [rand([37, 10], 900), rand([37, 10], 901), rand([10], 902), rand([10], 903)],
      (x, r, g, b) =>
        tf.grads((xx: tf.Tensor, gg: tf.Tensor) => {
          const { mean, variance } = tf.moments(xx, [0], false);
          return tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, b, gg), r));
        })([x, g]),
      ["FusedBatchNorm", "PetalBatchNormGrad"],
    ),
});

Deno.test({
  name: "native Mean/Sum gradients over several axes",
  ignore: !available,
  fn: async () => {
    for (const axes of [[0, 1, 2], [1, 2], 3, [0, 1, 2, 3]]) {
      for (const keep of [false, true]) {
        await parity(
          [rand([5, 6, 7, 8], 910)],
          (x) => [
            tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.mean(t, axes, keep))))(x),
            tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.sum(t, axes, keep))))(x),
          ],
          ["Mean", "Sum", "Tile"],
        );
      }
    }
  },
});

Deno.test({
  name: "native second-order gradients (gradient penalty through relu and batch norm)",
  ignore: !available,
  fn: () =>
    parity(
      [rand([3, 6, 6, 4], 1000), rand([3, 3, 4, 5], 1001), rand([5], 1002), rand([5], 1003)],
      (x, f, g, b) => {
        // WGAN-GP style: the penalty differentiates a gradient, so the backward pass of
        // relu / batch norm is itself on the tape. (tfjs has no second-order leaky relu.)
        const critic = (xx: tf.Tensor) => {
          const h = tf.conv2d(xx as tf.Tensor4D, f as tf.Tensor4D, 1, "same");
          const { mean, variance } = tf.moments(h, [0, 1, 2], false);
          return tf.sum(tf.mul(tf.relu(tf.batchNorm(h, mean, variance, b, g, 1e-5)), h));
        };
        return tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.grad(critic)(xx))))(x);
      },
      ["Conv2D", "Conv2DBackpropInput"],
    ),
});

// The embedding gradient: tf.gather's gradient is UnsortedSegmentSum, whose tfjs cpu kernel
// costs segments × ids (two minutes a step on the real vocabulary before it was routed).
const segmentCases = [
  { rows: 13, row: [7], segments: 9 }, // ids repeat and some segments get none
  { rows: 1, row: [5], segments: 1 },
  { rows: 40, row: [3, 2], segments: 5431 }, // a real-size vocabulary, rank-3 rows
];
for (const c of segmentCases) {
  Deno.test({
    name: `native UnsortedSegmentSum and gather gradient, ${c.rows} ids → ${c.segments} rows`,
    ignore: !available,
    fn: async () => {
      const ids = Int32Array.from({ length: c.rows }, (_, i) => (i * 7919 + 3) % c.segments);
      if (c.rows > 2) ids[1] = ids[0]; // a repeated id must sum both rows
      const x = rand([c.rows, ...c.row], 60 + c.rows);
      const table = rand([c.segments, ...c.row], 70 + c.rows);
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const idt = tf.tensor1d(ids, "int32");
          const sum = tf.unsortedSegmentSum(tf.tensor(x.values, x.shape), idt, c.segments);
          const weights = tf.tensor(x.values, x.shape);
          const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idt), weights)))(
            tf.tensor(table.values, table.shape),
          );
          return [sum, grad].map((t) => ({ shape: t.shape, values: t.dataSync().slice() }));
        });
      };
      const ref = await run("cpu");
      const before = nativeCallCount("UnsortedSegmentSum");
      const got = await run("native");
      assert.strictEqual(nativeCallCount("UnsortedSegmentSum"), before + 2);
      for (const [i, r] of ref.entries()) {
        assert.deepStrictEqual(got[i].shape, r.shape);
        let diff = 0, scale = 0;
        r.values.forEach((v, j) => {
          diff = Math.max(diff, Math.abs(got[i].values[j] - v));
          scale = Math.max(scale, Math.abs(v));
        });
        assert(scale > 0 && diff / scale <= TOL, `output ${i}: relative error ${diff / scale}`);
      }
    },
  });
}

Deno.test({
  name: "native UnsortedSegmentSum drops ids outside [0, segments), as tfjs does",
  ignore: !available,
  fn: async () => {
    await tf.setBackend("native");
    const got = tf.tidy(() =>
      tf.unsortedSegmentSum(
        tf.tensor2d([[1, 2], [3, 4], [5, 6]]),
        tf.tensor1d([2, -1, 7], "int32"),
        3,
      ).arraySync()
    );
    assert.deepStrictEqual(got, [[0, 0], [0, 0], [1, 2]]);
  },
});

Deno.test({
  name: "native Pow with broadcasts (positive bases), and its gradient",
  ignore: !available,
  fn: async () => {
    for (const [i, [sa, sb]] of broadcastPairs.entries()) {
      const a = rand(sa, 300 + i), b = rand(sb, 310 + i);
      a.values.forEach((v, j) => (a.values[j] = Math.abs(v) + 0.1));
      b.values.forEach((v, j) => (b.values[j] = Math.abs(v) + 0.1));
      await parity([a, b], (x, y) => tf.pow(x, y), ["Pow"]);
    }
    await parity(
      [rand([3, 7], 320), rand([3, 7], 321)],
      (x, r) => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.pow(xx, tf.scalar(2)), r)))(x),
      ["Pow"],
    );
  },
});

Deno.test({
  name: "native Transpose (2-D, 4-D, identity), Concat and Pack on odd shapes",
  ignore: !available,
  fn: async () => {
    await parity(
      [rand([5, 7], 900), rand([2, 3, 5, 7], 901)],
      (m, x) => [
        tf.transpose(m),
        tf.transpose(m, [0, 1]),
        tf.transpose(x, [0, 3, 1, 2]),
        tf.transpose(x, [3, 2, 1, 0]),
      ],
      ["Transpose"],
    );
    await parity(
      [rand([2, 3, 5, 4], 902), rand([2, 3, 5, 1], 903), rand([2, 3, 5, 6], 904)],
      (a, b, c) => [tf.concat([a, b, c], 3), tf.concat([a, a], 0), tf.concat([b, b], 2)],
      ["Concat"],
    );
    await parity(
      [rand([3, 5], 905), rand([3, 5], 906), rand([3, 5], 907)],
      (a, b, c) => [tf.stack([a, b, c], 0), tf.stack([a, b, c], 1), tf.stack([a, b], 2)],
      ["Pack"],
    );
  },
});

Deno.test({
  name: "native GatherV2 of table rows (axis 0), and int32/bool values cast to float32",
  ignore: !available,
  fn: async () => {
    const ids = [4, 0, 4, 2, 6];
    await parity(
      [rand([7, 3, 2], 910)],
      (t) => tf.gather(t, tf.tensor1d(ids, "int32")),
      ["GatherV2"],
    );
    // Rows of 40 (above: of 6, copied element by element; these as views).
    await parity(
      [rand([7, 5, 8], 912)],
      (t) => tf.gather(t, tf.tensor1d([6, 1, 1, 0], "int32")),
      ["GatherV2"],
    );
    // tfjs's cpu Cast hands int32 and bool values on under dtype float32.
    await parity(
      [rand([4, 5], 911)],
      (x) =>
        tf.mul(
          x,
          tf.cast(tf.greater(x, tf.scalar(0)), "float32").add(
            tf.cast(tf.scalar(2, "int32"), "float32"),
          ),
        ),
      ["Multiply"],
    );
  },
});
