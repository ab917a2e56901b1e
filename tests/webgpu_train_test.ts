/**
 * The webgpu backend end to end, against tfjs cpu: a whole training step (small model,
 * every loss) gives the same losses and gradients, inference the same images, the
 * evaluator the same logits and gradients; the loop leaks no tensors and never reads
 * synchronously; backend choice prints the adapter and explains a missing one. GPU cases
 * are ignored, with the reason, where no WebGPU adapter exists.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { gpu, gpuTest, rand, recordKernels, relError } from "./webgpu_parity.ts";
import { MODEL_KERNELS } from "./webgpu_model_kernels.ts";
import { plainRecipe, runTask, syntheticFixture } from "./fixtures.ts";
import { registerWebgpuBackend, summarizeAdapter } from "../pipeline/backends/webgpu.ts";
import { train } from "../pipeline/train.ts";
import { LOSS_KINDS, type LossKind, modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  embedCaptions,
  type Gan,
  sample,
  trainStep,
} from "../stages/train_step.ts";
import { classify, initClassifier } from "../stages/classifier.ts";
import { newContext, trainable } from "../stages/layers.ts";

const B = 3;
const VOCAB = 20;

/** A fixed batch (same values on every backend): odd batch, padded captions. */
function fixedBatch(zDim: number, condDim: number, seed = 0): BatchTensors {
  const T = 20;
  const ids = (o: number) =>
    tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i % T) < 3 + (i / T | 0) ? 1 + (i * 7 + o) % 19 : 0),
      [B, T],
      "int32",
    );
  const t2 = (n: number, s: number) => tf.tensor2d(rand(B * n, seed + s), [B, n]);
  return {
    real: tf.tensor4d(rand(B * 64 * 64 * 3, seed + 1), [B, 64, 64, 3]),
    right: ids(0),
    wrong: ids(5),
    z: t2(zDim, 2),
    eps: t2(condDim, 3),
    zInt: t2(zDim, 4),
    epsInt: t2(condDim, 5),
    partners: tf.tensor1d([1, 2, 0], "int32"),
    alpha: tf.tensor4d(rand(B, seed + 6).map(Math.abs), [B, 1, 1, 1]),
  };
}

const LR = 0.01;

/** One step with plain SGD (so each variable's change is −lr·gradient), on `backend`. */
async function stepOn(backend: string, loss: LossKind, seen = new Set<string>()) {
  await tf.setBackend(backend);
  const model = modelConfig("small", VOCAB);
  const base = createGan(model, defaultTrainConfig({ loss, batchSize: B }), 1);
  const gan: Gan = { ...base, optD: tf.train.sgd(LR), optG: tf.train.sgd(LR) };
  const vars = [...trainable(gan.text), ...trainable(gan.g), ...trainable(gan.d)];
  const before = await Promise.all(vars.map((v) => v.data()));
  const b = fixedBatch(model.zDim, model.condDim);
  const losses = await recordKernels(seen, () => trainStep(gan, b, 0, 0));
  disposeBatch(b);
  const grads = await Promise.all(vars.map(async (v, i) => {
    const after = await v.data();
    return { name: v.name, g: Float32Array.from(after, (a, j) => (before[i][j] - a) / LR) };
  }));
  disposeGan(base);
  gan.optD.dispose();
  gan.optG.dispose();
  return { losses, grads };
}

for (const loss of LOSS_KINDS) {
  gpuTest(`train step (small, ${loss}): losses and every gradient match cpu`, async () => {
    const ref = await stepOn("cpu", loss);
    const seen = new Set<string>();
    const got = await stepOn("webgpu", loss, seen);
    for (const k of ["d", "g", "kl"] as const) {
      const e = Math.abs(got.losses[k] - ref.losses[k]) / Math.max(Math.abs(ref.losses[k]), 1e-3);
      assert(e <= 1e-4, `${k} loss: ${got.losses[k]} vs cpu ${ref.losses[k]}`);
    }
    ref.grads.forEach((r, i) => {
      const e = relError(got.grads[i].g, r.g);
      assert(e <= 1e-2, `gradient of ${r.name}: relative error ${e.toExponential(2)}`);
    });
    const unlisted = [...seen].filter((k) => !MODEL_KERNELS.includes(k));
    assertEquals(unlisted, [], "kernels without a parity case (add them to the kernel test)");
  });
}

gpuTest("inference: the EMA generator's images match cpu", async () => {
  const images: Float32Array[] = [];
  for (const backend of ["cpu", "webgpu"]) {
    await tf.setBackend(backend);
    const model = modelConfig("small", VOCAB);
    const gan = createGan(model, defaultTrainConfig({}), 1);
    const ids = tf.tensor2d(Array.from({ length: B * 20 }, (_, i) => i % 5), [B, 20], "int32");
    const z = tf.tensor2d(rand(B * model.zDim, 8), [B, model.zDim]);
    const out = tf.tidy(() => sample(gan, z, embedCaptions(gan, ids, 0)));
    assertEquals(out.shape, [B, 64, 64, 3]);
    images.push(Float32Array.from(await out.data()));
    tf.dispose([ids, z, out]);
    disposeGan(gan);
  }
  const e = relError(images[1], images[0]);
  assert(e <= 1e-3, `relative error ${e.toExponential(2)}`);
});

gpuTest("evaluator: logits (eval mode) and training gradients match cpu", async () => {
  const runs: Float32Array[][] = [];
  for (const backend of ["cpu", "webgpu"]) {
    await tf.setBackend(backend);
    const p = initClassifier(5, 1);
    const x = tf.tensor4d(rand(B * 64 * 64 * 3, 9), [B, 64, 64, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 4, 2], "int32"), 5);
    const logits = tf.tidy(() => classify(p, x, newContext(false)).logits);
    const { value, grads } = tf.variableGrads(
      () =>
        tf.losses.softmaxCrossEntropy(y, classify(p, x, newContext(true)).logits, undefined, 0.1),
      trainable(p),
    );
    const outs = [logits, value, ...Object.values(grads)];
    runs.push(await Promise.all(outs.map(async (t) => Float32Array.from(await t.data()))));
    tf.dispose([x, y, ...outs, ...Object.values(p)]);
  }
  runs[0].forEach((r, i) => {
    const e = relError(runs[1][i], r);
    assert(e <= 1e-3, `output ${i}: relative error ${e.toExponential(2)}`);
  });
});

gpuTest("training on webgpu: flat live tensor count, losses finite", async () => {
  await tf.setBackend("webgpu");
  const model = modelConfig("small", VOCAB);
  const gan = createGan(model, defaultTrainConfig({ loss: "bce", batchSize: B }), 1);
  const counts: number[] = [];
  for (let step = 0; step < 5; step++) {
    const b = fixedBatch(model.zDim, model.condDim, step);
    const l = await trainStep(gan, b, 0, step);
    disposeBatch(b);
    assert([l.d, l.g, l.kl].every(Number.isFinite), JSON.stringify(l));
    counts.push(tf.memory().numTensors);
  }
  // Step 1 creates the Adam slots; from then on nothing may accumulate.
  assertEquals(counts.slice(1), Array(4).fill(counts[1]));
  disposeGan(gan);
});

gpuTest("train() on webgpu reads nothing synchronously and logs every step", async () => {
  await tf.setBackend("webgpu");
  const backend = tf.backend() as unknown as { readSync: (id: unknown) => unknown };
  const readSync = backend.readSync;
  let syncReads = 0;
  backend.readSync = function (id: unknown) {
    syncReads++;
    return readSync.call(this, id);
  };
  const data = await syntheticFixture(9, 2); // 3 steps per epoch at batch 3
  const out = await Deno.makeTempDir({ prefix: "petal-webgpu-" });
  const counts: number[] = [];
  const onStep = () => void counts.push(tf.memory().numTensors);
  try {
    // Across an epoch end (step 3: samples and checkpoint, nothing queued past it).
    const recipe = plainRecipe({ batchSize: B });
    const result = await train({ data, out, maxSteps: 5, recipe, onStep })();
    assert(result._tag === "Right", JSON.stringify(result));
    assertEquals(result.right.losses.length, 5);
    assertEquals(result.right.progress.step, 5);
  } finally {
    backend.readSync = readSync;
  }
  assertEquals(syncReads, 0, "synchronous GPU reads during training");
  // A report may come while the next step's [3] loss tensor is still being read back (at
  // most one tensor in flight); beyond that nothing may accumulate.
  const epoch1 = counts.slice(0, 3);
  const spread = Math.max(...epoch1) - Math.min(...epoch1);
  assert(counts.length === 5 && spread <= 1, `live tensors at each step's report: ${counts}`);
  const rows = (await Deno.readTextFile(`${out}/losses.csv`)).trim().split("\n").slice(1);
  assertEquals(rows.map((r) => r.split(",").slice(0, 2).join(",")), [
    "1,0",
    "2,0",
    "3,0",
    "4,1",
    "5,1",
  ]);
  await Deno.stat(`${out}/samples/epoch_0001.png`);
});

// ------------------------------------------------------------------ backend choice

Deno.test("adapter summary: software when marked fallback or named so, else hardware", () => {
  const lavapipe = summarizeAdapter({
    vendor: "65541",
    description: "llvmpipe (LLVM 15.0.6, 256 bits)",
    isFallbackAdapter: true,
  });
  assertEquals(lavapipe.software, true);
  assertEquals(lavapipe.vendor, "Mesa");
  assertEquals(summarizeAdapter({ description: "SwiftShader Device" }).software, true);
  const nvidia = summarizeAdapter({
    vendor: "4318",
    architecture: "ampere",
    description: "NVIDIA GeForce RTX 3080",
  });
  assertEquals([nvidia.software, nvidia.vendor, nvidia.architecture], [false, "NVIDIA", "ampere"]);
});

gpuTest("auto skips a software adapter; --backend webgpu prints it", async () => {
  const softwareOnly = gpu.ok && gpu.adapter.software;
  const auto = await registerWebgpuBackend({ allowSoftware: false });
  assertEquals(auto.ok, !softwareOnly);
  if (!auto.ok) assertMatch(auto.reason, /software adapter .*--backend webgpu/);
  const data = await syntheticFixture(4, 1);
  const run = await runTask("data.ts", [data, "--backend", "webgpu"]);
  assertEquals(run.code, 0, run.stderr);
  assertMatch(run.stdout, /backend: webgpu \(adapter: .* — vendor .*, (software|hardware)/);
});

Deno.test("--backend webgpu without a Vulkan driver: one line that says what to install", async () => {
  if (Deno.build.os !== "linux") return;
  // Vulkan only, and a loader that finds no driver: a machine without mesa-vulkan-drivers.
  const env = { DENO_WEBGPU_BACKEND: "vulkan", VK_ICD_FILENAMES: "/nonexistent/icd.json" };
  const data = await syntheticFixture(4, 1);
  const run = await runTask("data.ts", [data, "--backend", "webgpu"], env);
  assertEquals(run.code, 1);
  const lines = run.stderr.trim().split("\n").filter((l) => !/XDG_RUNTIME_DIR/.test(l));
  assertEquals(lines.length, 1, run.stderr);
  assertMatch(
    lines[0],
    /--backend webgpu: no WebGPU adapter: .*apt-get install mesa-vulkan-drivers libvulkan1/,
  );
});
