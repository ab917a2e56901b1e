/**
 * Every kernel the GAN (small and reed; bce, hinge, wgan-gp), inference and the evaluator
 * use on webgpu, forward and gradient, against tfjs cpu (relative error ≤ 1e-3), on odd
 * shapes: batch 1 and 3, stride 1 and 2, 'same' and 'valid'. The last test checks that
 * the cases covered every kernel in MODEL_KERNELS (the list webgpu_train_test.ts checks a
 * real training step against). Ignored, with the reason, where no WebGPU adapter exists.
 */
import * as tf from "@tensorflow/tfjs";
import { assert } from "./assert.ts";
import { coveredKernels, gpuTest, parity, type Spec } from "./webgpu_parity.ts";
import {
  batchNormAct,
  biasAct,
  conv2d,
  conv2dTranspose,
  leakyRelu,
  upsampleNearest,
} from "../stages/layers.ts";
import { embedLookup } from "../stages/embed.ts";
import { bceWithLogits, discriminatorLoss, gradientPenalty } from "../stages/losses.ts";
import { MODEL_KERNELS } from "./webgpu_model_kernels.ts";

const T4 = (t: tf.Tensor) => t as tf.Tensor4D;
const x4: Spec = { shape: [3, 5, 7, 2] };

// ------------------------------------------------------------------ elementwise

const unary: [string, (x: tf.Tensor) => tf.Tensor, boolean?][] = [
  ["Abs", tf.abs],
  ["Exp", tf.exp],
  ["Log", tf.log, true],
  ["Log1p", tf.log1p, true],
  ["Sigmoid", tf.sigmoid],
  ["Tanh", tf.tanh],
  ["Relu", tf.relu],
  ["LeakyRelu", (x) => tf.leakyRelu(x, 0.2)],
  ["Sqrt", tf.sqrt, true],
  ["Rsqrt", tf.rsqrt, true],
  ["Square", tf.square],
  ["Neg", tf.neg],
];
for (const [k, f, positive] of unary) {
  gpuTest(`${k}, forward and gradient`, () => parity([{ ...x4, positive }], f, [k]));
}
gpuTest(
  "Floor (forward; no gradient)",
  () => parity([x4], (x) => tf.floor(tf.mul(x, 3)), ["Floor"], { grad: false }),
);
gpuTest(
  "layers.leakyRelu, and its gradient's gradient",
  () => parity([x4], (x) => tf.grad((y) => tf.sum(tf.square(leakyRelu(y))))(x), ["Relu", "Step"]),
);

const binary: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
  ["Add", tf.add],
  ["Sub", tf.sub],
  ["Multiply", tf.mul],
  ["RealDiv", tf.div],
  ["Maximum", tf.maximum],
  ["Pow", tf.pow],
  ["SquaredDifference", tf.squaredDifference],
];
/** The broadcasts the models use: same shape, per channel, per sample, per row, mask. */
const broadcasts: [string, Spec, Spec][] = [
  ["same shape", x4, { ...x4, positive: true }],
  ["per channel", { shape: [3, 5, 7, 4] }, { shape: [4], positive: true }],
  ["per sample", { shape: [1, 3, 5, 2] }, { shape: [1, 1, 1, 1], positive: true }],
  ["per row", { shape: [3, 6] }, { shape: [3, 1], positive: true }],
  ["mask", { shape: [3, 5, 4] }, { shape: [3, 5, 1], positive: true }],
];
// tfjs-core's Maximum and SquaredDifference gradients do not reduce over broadcast axes
// (on any backend); the models use those two only on same shapes or without a gradient.
const sameShapeOnly = new Set(["Maximum", "SquaredDifference"]);
for (const [k, f] of binary) {
  for (const [b, xa, xb] of broadcasts.slice(0, sameShapeOnly.has(k) ? 1 : undefined)) {
    // Pow: a positive base, as Adam and the models use it.
    const a = k === "Pow" ? { ...xa, positive: true } : xa;
    gpuTest(`${k}, ${b}, forward and gradients`, () => parity([a, xb], f, [k]));
  }
}
gpuTest(
  "scalar operands: 1 − x, 0.2·x, x / 7, max(x, 1)",
  () =>
    parity([x4], (x) => [tf.sub(1, x), tf.mul(0.2, x), tf.div(x, 7), tf.maximum(x, 1)], [
      "Sub",
      "Multiply",
      "RealDiv",
      "Maximum",
    ]),
);

// ------------------------------------------------------------------ reductions

gpuTest(
  "Sum and Mean over [0,1,2], [1,2], [1] and all, keepDims both ways",
  () =>
    parity([{ shape: [3, 5, 7, 4] }], (x) => [
      tf.sum(x, [0, 1, 2]),
      tf.mean(x, [1, 2]),
      tf.sum(x, 1, true),
      tf.mean(x),
      tf.sum(x, [1, 2, 3]),
    ], ["Sum", "Mean"]),
);
gpuTest(
  "Max (log-sum-exp), moments over [0,1,2]",
  () =>
    parity([{ shape: [3, 11] }, { shape: [3, 5, 7, 4] }], (x, y) => {
      const { mean, variance } = tf.moments(y, [0, 1, 2], false);
      return [tf.logSumExp(x, 1), mean, variance];
    }, ["Max"]),
);
gpuTest(
  "norm along axis 1 (text vectors)",
  () => parity([{ shape: [3, 8] }], (x) => tf.div(x, tf.add(tf.norm(x, 2, 1, true), 1e-6)), []),
);

// ------------------------------------------------------------------ matmul

gpuTest(
  "BatchMatMul: a·b, a·bᵀ, aᵀ·b",
  () =>
    parity([{ shape: [3, 7] }, { shape: [7, 5] }, { shape: [5, 7] }, { shape: [3, 5] }], (
      a,
      b,
      c,
      d,
    ) => [tf.matMul(a, b), tf.matMul(a, c, false, true), tf.matMul(a, d, true, false)], [
      "BatchMatMul",
    ]),
);

// tfjs-webgpu's split-K matmul (one matrix, inner size ≥ 2000) is wrong for a·bᵀ, which
// is the gradient of a dense layer of width ≥ 2000 (pipeline/backends/webgpu.ts avoids it).
gpuTest(
  "BatchMatMul, inner size 2048: a·bᵀ, and a 2048-wide dense layer's gradient",
  () =>
    parity([{ shape: [3, 2048] }, { shape: [64, 2048] }, { shape: [3, 64] }], (a, b, x) => [
      tf.matMul(a, b, false, true), // [3, 64]: split-K territory
      tf.matMul(x, b), // its dx = dy·bᵀ, the same
    ], ["BatchMatMul"]),
);

// ------------------------------------------------------------------ convolutions

const convCases: [string, number[], number[], number, "same" | "valid"][] = [
  ["3×3 stride 1 same, odd size", [3, 7, 9, 3], [3, 3, 3, 5], 1, "same"],
  ["4×4 stride 2 same", [3, 8, 8, 4], [4, 4, 4, 6], 2, "same"],
  ["3×3 stride 2 same, odd size, batch 1", [1, 9, 7, 2], [3, 3, 2, 4], 2, "same"],
  ["4×4 valid, batch 1 (D's last conv)", [1, 4, 4, 5], [4, 4, 5, 1], 1, "valid"],
  ["1×1 valid (D's fuse conv)", [3, 4, 4, 6], [1, 1, 6, 5], 1, "valid"],
  ["3×3 stride 2 valid, odd size", [3, 9, 8, 3], [3, 3, 3, 2], 2, "valid"],
];
for (const [name, xs, ws, stride, pad] of convCases) {
  gpuTest(
    `conv2d ${name}: forward, dx, dW`,
    () =>
      parity([{ shape: xs }, { shape: ws }], (x, w) => conv2d(T4(x), T4(w), stride, pad), [
        "Conv2D",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
      ]),
  );
}
const convTCases: [string, number[], number[]][] = [
  ["4×4 stride 2, batch 3", [3, 4, 4, 6], [4, 4, 5, 6]],
  ["4×4 stride 2, odd 3×5, batch 1", [1, 3, 5, 4], [4, 4, 3, 4]],
];
for (const [name, xs, ws] of convTCases) {
  gpuTest(
    `conv2dTranspose ${name}: forward, dx, dW`,
    () =>
      parity([{ shape: xs }, { shape: ws }], (x, w) => conv2dTranspose(T4(x), T4(w), 2), [
        "Conv2DBackpropInput",
        "Conv2D",
        "Conv2DBackpropFilter",
      ]),
  );
}

// The reed model's (and bench model's) widths: tfjs-webgpu picks its programs by shape, so
// these run the programs the small shapes above do not (batch 1 to keep cpu quick).
const reedConvs: [string, number[], number[], number, "same" | "valid"][] = [
  ["D 64→128 at 32×32, stride 2", [1, 32, 32, 64], [4, 4, 64, 128], 2, "same"],
  ["D fuse 1×1, 640→512 at 4×4", [1, 4, 4, 640], [1, 1, 640, 512], 1, "valid"],
  ["D out 4×4 valid, 512→1", [1, 4, 4, 512], [4, 4, 512, 1], 1, "valid"],
];
for (const [name, xs, ws, stride, pad] of reedConvs) {
  gpuTest(
    `reed widths: conv2d ${name}: forward, dx, dW`,
    () =>
      parity([{ shape: xs }, { shape: ws }], (x, w) => conv2d(T4(x), T4(w), stride, pad), [
        "Conv2D",
      ]),
  );
}
gpuTest(
  "reed widths: conv2dTranspose 512→256, 4×4 → 8×8: forward, dx, dW",
  () =>
    parity(
      [{ shape: [1, 4, 4, 512] }, { shape: [4, 4, 256, 512] }],
      (x, w) => conv2dTranspose(T4(x), T4(w), 2),
      ["Conv2DBackpropInput"],
    ),
);
gpuTest("reed widths: dense layers (G fc 228→8192, GRU 512→1536, words 300→1536)", () =>
  parity(
    [{ shape: [1, 228] }, { shape: [228, 8192] }, { shape: [3, 512] }, { shape: [512, 1536] }, {
      shape: [60, 300],
    }, { shape: [300, 1536] }],
    (z, fc, h, wh, x, wx) => [tf.matMul(z, fc), tf.matMul(h, wh), tf.matMul(x, wx)],
    ["BatchMatMul"],
  ));

/** A tiny critic shaped like D: conv/2 → leaky relu → batch 'valid' conv → logits. */
const critic = (w1: tf.Tensor, w2: tf.Tensor) => (x: tf.Tensor4D) =>
  conv2d(T4(leakyRelu(conv2d(x, T4(w1), 2, "same"))), T4(w2), 1, "valid").reshape([
    x.shape[0],
  ]) as tf.Tensor1D;
gpuTest("WGAN-GP penalty: second-order gradient through conv2d and leaky relu", () =>
  parity(
    [{ shape: [3, 8, 8, 3] }, { shape: [3, 8, 8, 3] }, { shape: [3, 1, 1, 1], positive: true }, {
      shape: [4, 4, 3, 5],
    }, { shape: [4, 4, 5, 1] }],
    (real, fake, alpha, w1, w2) =>
      gradientPenalty(critic(w1, w2), T4(real), T4(fake), T4(tf.div(alpha, 2))),
    ["Conv2DBackpropInput", "Conv2DBackpropFilter"],
  ));

gpuTest(
  "AvgPool 2×2 valid (evaluator input pooling)",
  () => parity([{ shape: [3, 8, 6, 3] }], (x) => tf.avgPool(T4(x), 2, 2, "valid"), ["AvgPool"]),
);

// ------------------------------------------------------------------ batch norm

// stages/fused.ts's kernels: on webgpu the tf ops they stand for inside one kernel
// (pipeline/backends/fused_routes.ts), their gradients in tf ops (Sign among them).
gpuTest(
  "layers.batchNormAct, training, conditional (G) and plain (D): forward and gradients",
  () =>
    parity(
      [{ shape: [3, 5, 7, 4] }, { shape: [4], positive: true }, { shape: [4] }, {
        shape: [3, 4],
      }, { shape: [3, 4] }],
      (x, g, b, s, t) => {
        const p = { "bn.gamma": g, "bn.beta": b } as unknown as Record<string, tf.Variable>;
        const ctx = { training: true, updates: [] };
        const mod = { scale: s as tf.Tensor2D, shift: t as tf.Tensor2D };
        const relu = batchNormAct(T4(x), p, "bn", ctx, "relu", mod);
        return tf.add(relu, batchNormAct(T4(x), p, "bn", ctx, "leakyRelu"));
      },
      ["PetalCondBatchNormAct", "PetalBatchNormAct", "Step"],
    ),
);
gpuTest(
  "layers.biasAct and upsampleNearest: forward and gradients",
  () =>
    parity(
      [{ shape: [3, 5, 7, 4] }, { shape: [4] }],
      (x, b) => upsampleNearest(T4(biasAct(x, b, "leakyRelu"))),
      ["PetalBiasAct", "PetalUpsampleNearest2x"],
    ),
);
gpuTest(
  "layers.batchNormAct, eval (running statistics; the affine kernel): forward and gradients",
  () =>
    parity(
      [{ shape: [3, 5, 7, 4] }, { shape: [4] }, { shape: [4], positive: true }, { shape: [4] }, {
        shape: [3, 4],
      }],
      (x, m, v, b, s) => {
        const p = { "bn.gamma": v, "bn.beta": b, "bn.mean": m, "bn.var": v } as unknown as Record<
          string,
          tf.Variable
        >;
        const ctx = { training: false, updates: [] };
        const mod = { scale: s as tf.Tensor2D, shift: s as tf.Tensor2D };
        return tf.add(
          batchNormAct(T4(x), p, "bn", ctx, "relu", mod),
          batchNormAct(T4(x), p, "bn", ctx, "leakyRelu"),
        );
      },
      ["PetalAffineAct"],
    ),
);
gpuTest("tf.batchNorm, eval (FusedBatchNorm) forward", () =>
  parity(
    [{ shape: [3, 5, 7, 4] }, { shape: [4] }, { shape: [4], positive: true }, { shape: [4] }, {
      shape: [4],
      positive: true,
    }],
    (x, m, v, b, g) => tf.batchNorm(x, m, v, b, g, 1e-5),
    ["FusedBatchNorm"],
    { grad: false },
  ));
// tf.batchNorm's gradient throws "Cannot read properties of undefined (reading 'dataId')"
// when `scale` is omitted — on cpu as well as webgpu (a tfjs-core bug, not a webgpu one).
// Every batch norm here passes scale and offset; this is the bench model's form.
gpuTest(
  "tf.batchNorm with batch moments, scale and offset (bench model): gradients",
  () =>
    parity([{ shape: [1, 5, 3, 4] }, { shape: [4], positive: true }, { shape: [4] }], (x, g, b) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2], false);
      return tf.batchNorm(x, mean, variance, b, g, 1e-5);
    }, ["FusedBatchNorm"]),
);

// ------------------------------------------------------------------ gather, shapes

gpuTest("embedLookup / GatherV2 and its gradient (UnsortedSegmentSum)", () =>
  parity(
    [{ shape: [11, 5] }, { shape: [7], dtype: "int32", values: [3, 0, 10, 3, 7, 1, 3] }],
    (t, i) => [embedLookup(t as tf.Tensor2D, i as tf.Tensor1D), tf.gather(t, [2, 0, 1])],
    ["GatherV2", "UnsortedSegmentSum"],
  ));
gpuTest(
  "Concat on axes 1, 2, 3 and its gradient (Slice)",
  () =>
    parity([{ shape: [3, 4] }, { shape: [3, 5, 2] }, { shape: [1, 4, 4, 3] }], (a, b, c) => [
      tf.concat([a, a.mul(2)], 1),
      tf.concat([b, b.neg()], 2),
      tf.concat([c, tf.tile(c.slice([0, 0, 0, 0], [1, 1, 1, 2]), [1, 4, 4, 1])], 3),
    ], ["Concat", "Slice", "Tile"]),
);
gpuTest(
  "stack/unstack (Pack, Unpack), split (SplitV), slice",
  () =>
    parity([{ shape: [3, 4, 6] }], (x) => {
      const steps = tf.unstack(x, 1);
      const [p, q, r] = tf.split(steps[1], 3, 1);
      return [tf.stack([steps[2], steps[0]], 1), tf.add(p, tf.mul(q, r)), x.slice([1, 0, 2], -1)];
    }, ["Pack", "Unpack", "SplitV", "Slice"]),
);
gpuTest(
  "Transpose, Reverse, PadV2, Reshape (the conv routes' layout ops)",
  () =>
    parity([{ shape: [3, 4, 5, 2] }], (x) => [
      x.transpose([3, 1, 2, 0]),
      x.transpose([1, 2, 0, 3]),
      tf.reverse(x, [0, 1]),
      tf.reverse(x, 2),
      x.pad([[0, 0], [1, 2], [0, 1], [0, 0]]),
      x.reshape([3, 2, 10, 2]),
    ], ["Transpose", "Reverse", "PadV2", "Reshape"]),
);
gpuTest("NotEqual, Cast, OneHot, Select, Greater, ZerosLike, OnesLike, Identity", () =>
  parity(
    [{ shape: [3, 4], dtype: "int32", values: [1, 0, 2, 0, 0, 0, 3, 4, 1, 1, 0, 2] }, {
      shape: [3, 4],
    }],
    (ids, x) => [
      tf.cast(tf.notEqual(ids, 0), "float32"),
      tf.oneHot(tf.tensor1d([0, 3, 1], "int32"), 4),
      tf.where(tf.greater(x, 0), x, tf.zerosLike(x)),
      tf.onesLike(x),
      x.clone(),
    ],
    ["NotEqual", "Cast", "OneHot", "Select", "Greater", "ZerosLike", "OnesLike", "Identity"],
    { grad: false },
  ));

// tfjs-webgpu's own Cast relabels int32/bool buffers as float32 (pipeline/backends/webgpu.ts
// replaces it): these read the cast values through float kernels, where that went wrong.
gpuTest(
  "Cast int32/bool → float32, read by float kernels (text mask, one-hot labels)",
  () =>
    parity(
      [{ shape: [3, 4], dtype: "int32", values: [1, 0, 2, 0, 0, 0, 3, 4, 1, 1, 0, 2] }, {
        shape: [3, 4],
      }],
      (ids, x) => [
        tf.sum(tf.cast(tf.notEqual(ids, 0), "float32").reshape([3, 4, 1]), 1),
        tf.mul(tf.oneHot(tf.tensor1d([0, 3, 1], "int32"), 4), 0.9),
        tf.mul(tf.cast(tf.add(ids, 1), "float32"), x),
        tf.mul(tf.cast(ids, "float32"), 0.5),
      ],
      ["Cast", "Sum", "Multiply"],
    ),
);

// ------------------------------------------------------------------ losses, optimizer

gpuTest(
  "losses: bce, hinge, wgan-gp D losses and the G loss, with gradients",
  () =>
    parity([{ shape: [3] }, { shape: [3] }, { shape: [3] }], (r, f, w) => [
      discriminatorLoss("bce", r as tf.Tensor1D, f as tf.Tensor1D, w as tf.Tensor1D),
      discriminatorLoss("hinge", r as tf.Tensor1D, f as tf.Tensor1D, w as tf.Tensor1D),
      discriminatorLoss("wgan-gp", r as tf.Tensor1D, f as tf.Tensor1D, w as tf.Tensor1D),
      bceWithLogits(f, 1),
    ], ["Log1p", "Relu", "Abs", "Mean"]),
);
gpuTest(
  "softmax and sigmoid cross-entropy (evaluator, bench model), with gradients",
  () =>
    parity([{ shape: [3, 5] }, { shape: [3] }], (logits, d) => [
      tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.tensor1d([4, 0, 2], "int32"), 5),
        logits,
        undefined,
        0.1,
      ),
      tf.losses.sigmoidCrossEntropy(tf.onesLike(d), d),
    ], ["Max", "Exp", "Log"]),
);
gpuTest(
  "Adam: three steps of minimize give the same variables",
  () =>
    parity(
      [{ shape: [4, 3] }, { shape: [3] }],
      (w0, b0) => {
        const w = tf.variable(w0), b = tf.variable(b0);
        const opt = tf.train.adam(0.01, 0.5, 0.999);
        for (let i = 0; i < 3; i++) {
          opt.minimize(() => tf.sum(tf.square(tf.add(tf.matMul(tf.ones([2, 4]), w), b))), false, [
            w,
            b,
          ]);
        }
        const out = [w.clone(), b.clone()];
        opt.dispose();
        tf.dispose([w, b]);
        return out;
      },
      ["Sqrt", "RealDiv"],
      { grad: false },
    ),
);
gpuTest("dropout keeps the shape and scales kept values by 1/(1−rate)", async () => {
  await tf.setBackend("webgpu");
  const x = tf.ones([3, 40]);
  const y = await tf.dropout(x, 0.5).data();
  x.dispose();
  assert(y.every((v) => v === 0 || Math.abs(v - 2) < 1e-6), "values other than 0 and 2");
  const kept = y.filter((v) => v > 0).length;
  assert(kept > 20 && kept < 100, `kept ${kept} of 120`);
});

// ------------------------------------------------------------------ coverage

gpuTest("the cases above ran every kernel the models use on webgpu", () => {
  const missing = MODEL_KERNELS.filter((k) => !coveredKernels.has(k));
  assert(missing.length === 0, `no parity case ran: ${missing.join(", ")}`);
  return Promise.resolve();
});
