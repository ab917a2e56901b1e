import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { assert } from "./assert.ts";
import { conv2d, conv2dTranspose, conv2dTransposeAsConv } from "../stages/layers.ts";
import { leakyRelu } from "../stages/layers.ts";
import { embedLookup } from "../stages/embed.ts";
import { installFastRoutes } from "../pipeline/backends/fast_routes.ts";

// The routes on wasm only: cpu keeps tfjs's own kernels, the reference here.
installFastRoutes(["wasm"]);
const isRoute = (kernel: string, backend: string) =>
  (tf.getKernel(kernel, backend) as { petal?: boolean } | undefined)?.petal === true;

/** Runs `f` on a backend and returns plain arrays (so they survive the switch). */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const arrays = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(out);
  return arrays;
}

const maxRelError = (a: Float32Array, b: Float32Array) => {
  let scale = 1e-6;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / scale;
};

const data = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

const cases = [
  {
    name: "3×3 stride 1 same, odd size",
    x: [2, 7, 9, 3],
    k: [3, 3, 3, 5],
    stride: 1,
    pad: "same" as const,
  },
  { name: "4×4 stride 2 same", x: [3, 8, 8, 4], k: [4, 4, 4, 6], stride: 2, pad: "same" as const },
  {
    name: "3×3 stride 2 same, odd size",
    x: [1, 9, 7, 2],
    k: [3, 3, 2, 4],
    stride: 2,
    pad: "same" as const,
  },
  {
    name: "4×4 valid, batch 1",
    x: [1, 4, 4, 5],
    k: [4, 4, 5, 1],
    stride: 1,
    pad: "valid" as const,
  },
  {
    name: "3×3 stride 2 valid, odd size",
    x: [2, 9, 8, 3],
    k: [3, 3, 3, 2],
    stride: 2,
    pad: "valid" as const,
  },
];

for (const c of cases) {
  Deno.test(`conv2d gradients routed through conv2d match tfjs cpu: ${c.name}`, async () => {
    const run = (useOurs: boolean) => () => {
      const x = tf.tensor4d(
        data(c.x.reduce((a, b) => a * b), 1),
        c.x as [number, number, number, number],
      );
      const w = tf.tensor4d(
        data(c.k.reduce((a, b) => a * b), 2),
        c.k as [number, number, number, number],
      );
      const f = (xx: tf.Tensor, ww: tf.Tensor) =>
        tf.sum(tf.square(
          useOurs
            ? conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad)
            : tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad),
        ));
      return tf.grads(f)([x, w]);
    };
    const expected = await on("cpu", run(false));
    const ours = await on("wasm", run(true));
    assert(isRoute("Conv2DBackpropFilter", "wasm"), "wasm's filter gradient is the conv2d route");
    assert(isRoute("Conv2DBackpropInput", "wasm"), "wasm's input gradient is the conv2d route");
    assert(!isRoute("Conv2DBackpropFilter", "cpu"), "the cpu reference is tfjs's own kernel");
    for (let i = 0; i < 2; i++) {
      const e = maxRelError(ours[i], expected[i]);
      assert(e <= 1e-4, `${["dx", "dW"][i]} relative error ${e}`);
    }
  });
}

Deno.test("transposed conv gradients match tfjs cpu (G's 4×4 stride-2 up-sampling)", async () => {
  const run = (useOurs: boolean) => () => {
    const x = tf.tensor4d(data(2 * 4 * 4 * 6, 3), [2, 4, 4, 6]);
    const w = tf.tensor4d(data(4 * 4 * 3 * 6, 4), [4, 4, 3, 6]);
    const f = (xx: tf.Tensor, ww: tf.Tensor) =>
      tf.sum(tf.square(
        useOurs
          ? conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, 2)
          : tf.conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, [2, 8, 8, 3], 2, "same"),
      ));
    return [...tf.grads(f)([x, w]), f(x, w)];
  };
  const expected = await on("cpu", run(false));
  const ours = await on("wasm", run(true));
  for (let i = 0; i < 3; i++) {
    const e = maxRelError(ours[i], expected[i]);
    assert(e <= 1e-4, `${["dx", "dW", "value"][i]} relative error ${e}`);
  }
});

Deno.test("leakyRelu as relu difference equals tf.leakyRelu and has a second derivative", async () => {
  const [ours, theirs, second] = await on("cpu", () => {
    const x = tf.tensor1d([-2, -0.5, 0.25, 3]);
    const g2 = tf.grad((v) => tf.sum(tf.grad((u) => tf.sum(tf.square(leakyRelu(u))))(v)))(x);
    return [leakyRelu(x), tf.leakyRelu(x, 0.2), g2];
  });
  assert(maxRelError(ours, theirs) < 1e-7);
  // d²/dx² of leaky(x)² is 2·slope²: 0.08 left of zero, 2 right of it.
  assert(maxRelError(second, Float32Array.from([0.08, 0.08, 2, 2])) < 1e-6, String(second));
});

for (
  const c of [
    {
      name: "4×4 stride 2 same",
      x: [2, 4, 4, 6],
      k: [4, 4, 3, 6],
      stride: 2,
      out: [2, 8, 8, 3],
      pad: "same" as const,
    },
    {
      name: "3×3 stride 2 same, odd",
      x: [1, 5, 4, 2],
      k: [3, 3, 4, 2],
      stride: 2,
      out: [1, 9, 7, 4],
      pad: "same" as const,
    },
    {
      name: "3×3 stride 1 same",
      x: [2, 5, 5, 3],
      k: [3, 3, 2, 3],
      stride: 1,
      out: [2, 5, 5, 2],
      pad: "same" as const,
    },
    {
      name: "4×4 valid (D's last layer)",
      x: [3, 1, 1, 4],
      k: [4, 4, 5, 4],
      stride: 1,
      out: [3, 4, 4, 5],
      pad: "valid" as const,
    },
    {
      name: "3×3 stride 2 valid, leftover row",
      x: [1, 4, 3, 2],
      k: [3, 3, 2, 2],
      stride: 2,
      out: [1, 10, 8, 2],
      pad: "valid" as const,
    },
  ]
) {
  Deno.test(`transposed conv as conv2d equals tf.conv2dTranspose: ${c.name}`, async () => {
    const [ours, theirs] = await on("cpu", () => {
      const x = tf.tensor4d(
        data(c.x.reduce((a, b) => a * b), 5),
        c.x as [number, number, number, number],
      );
      const w = tf.tensor4d(
        data(c.k.reduce((a, b) => a * b), 6),
        c.k as [number, number, number, number],
      );
      const out = c.out as [number, number, number, number];
      return [
        conv2dTransposeAsConv(x, w, c.stride, out, c.pad),
        tf.conv2dTranspose(x, w, out, c.stride, c.pad),
      ];
    });
    assert(maxRelError(ours, theirs) <= 1e-5, `relative error ${maxRelError(ours, theirs)}`);
  });
}

Deno.test("embedding gradient on wasm (UnsortedSegmentSum route) matches tfjs cpu", async () => {
  const run = () => {
    const table = tf.tensor2d(data(7 * 5, 8), [7, 5]);
    const ids = tf.tensor1d([3, 0, 3, 6, 1, 3], "int32");
    const f = (t: tf.Tensor) => tf.sum(tf.square(embedLookup(t as tf.Tensor2D, ids)));
    return [tf.grad(f)(table), f(table)];
  };
  const expected = await on("cpu", run);
  const ours = await on("wasm", run);
  assert(isRoute("UnsortedSegmentSum", "wasm"), "wasm's segment sum is the JS route");
  for (let i = 0; i < 2; i++) {
    const e = maxRelError(ours[i], expected[i]);
    assert(e <= 1e-6, `${["dTable", "value"][i]} relative error ${e}`);
  }
  // Row 3 is looked up three times: its gradient is the sum of the three (2·x each).
  assert(Math.abs(ours[0][3 * 5] - 6 * data(35, 8)[15]) < 1e-5, String(ours[0][15]));
  assert(ours[0].subarray(2 * 5, 3 * 5).every((v) => v === 0), "row 2 is never looked up");
});

Deno.test("a gradient of a conv's input gradient (WGAN-GP) on wasm matches tfjs cpu", async () => {
  const run = () => {
    const x = tf.tensor4d(data(2 * 8 * 8 * 3, 9), [2, 8, 8, 3]);
    const w = tf.tensor4d(data(4 * 4 * 3 * 4, 10), [4, 4, 3, 4]);
    const penalty = (ww: tf.Tensor) => {
      const dx = tf.grad((xx: tf.Tensor) =>
        tf.sum(tf.square(conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2)))
      )(x);
      return tf.sum(tf.square(dx));
    };
    return [tf.grad(penalty)(w), penalty(w)];
  };
  const expected = await on("cpu", run);
  const ours = await on("wasm", run);
  for (let i = 0; i < 2; i++) {
    const e = maxRelError(ours[i], expected[i]);
    assert(e <= 1e-4, `${["dW", "value"][i]} relative error ${e}`);
  }
});
