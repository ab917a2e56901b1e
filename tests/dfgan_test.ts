/**
 * The DF-GAN recipe's parts: nearest up-sampling, the affine fusion, G and D shapes,
 * the matching-aware gradient penalty, DiffAugment (hand-computed values), the recipe
 * presets, caption retrieval, and one training step of each recipe without leaks.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import {
  affine,
  dfDiscriminate,
  dfGenerate,
  initDfDiscriminator,
  initDfGenerator,
} from "../stages/dfgan.ts";
import { newContext, upsampleNearest } from "../stages/layers.ts";
import { generate, initGenerator } from "../stages/generate.ts";
import {
  augmentColour,
  augmentTranslateCutout,
  diffAugment,
  type DiffAugmentDraw,
  diffAugmentTensors,
  drawDiffAugment,
} from "../stages/diffaugment.ts";
import { matchingAwarePenalty } from "../stages/losses.ts";
import { captionIndex, retrieveByWords } from "../stages/retrieval.ts";
import { Rng } from "../stages/rng.ts";
import { createGan, disposeBatch, disposeGan, trainStep } from "../stages/train_step.ts";
import { recipeFromFlags, recipeText, type RecipeValues } from "../tasks/recipe.ts";
import { randomBatch } from "./fixtures.ts";
import { useBackend } from "../pipeline/backends/backend.ts";

// Native where built (CI), else wasm: a training step on tfjs's cpu kernels takes minutes.
await useBackend("auto");
const cfg = modelConfig("small", 40, "dfgan");

Deno.test("upsampleNearest repeats each pixel 2×2, and its gradient sums them back", () => {
  const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  assertEquals(
    Array.from(upsampleNearest(x).dataSync()),
    [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
  );
  const w = tf.tensor4d(Array.from({ length: 16 }, (_, i) => i), [1, 4, 4, 1]);
  const g = tf.grad((v) => tf.sum(tf.mul(upsampleNearest(v as tf.Tensor4D), w)))(x);
  // Pixel (0,0) feeds outputs 0, 1, 4, 5: 0 + 1 + 4 + 5 = 10.
  assertEquals(Array.from(g.dataSync()), [10, 18, 42, 50]);
  tf.dispose([x, w, g]);
});

Deno.test("affine fusion is the identity at initialisation, then γ(c)·h + β(c)", () => {
  const g = initDfGenerator(cfg, 16, 1);
  const h = tf.randomNormal([2, 8, 8, 128], 0, 1, "float32", 3) as tf.Tensor4D;
  const c = tf.randomNormal([2, cfg.zDim + 16], 0, 1, "float32", 4) as tf.Tensor2D;
  const y = affine(h, g, "blk0.f1.a", c);
  assertAlmostEquals(tf.max(tf.abs(tf.sub(y, h))).dataSync()[0], 0, 1e-6);
  // γ's last layer: bias 2 → γ = 2; β's last bias 0.5 → β = 0.5.
  g["blk0.f1.a.g2.b"].assign(tf.fill([128], 2));
  g["blk0.f1.a.b2.b"].assign(tf.fill([128], 0.5));
  const y2 = affine(h, g, "blk0.f1.a", c);
  assertAlmostEquals(tf.max(tf.abs(tf.sub(y2, tf.add(tf.mul(h, 2), 0.5)))).dataSync()[0], 0, 1e-5);
  tf.dispose([h, c, y, y2, ...Object.values(g)]);
});

Deno.test("DF-GAN G gives [B, 64, 64, 3] in (−1, 1); D gives one logit per image", () => {
  const g = initDfGenerator(cfg, 16, 1);
  const d = initDfDiscriminator(cfg, 16, 2);
  const before = tf.memory().numTensors;
  const logits = tf.tidy(() => {
    const x = dfGenerate(g, cfg, tf.randomNormal([3, cfg.zDim]), tf.randomNormal([3, 16]));
    assertEquals(x.shape, [3, 64, 64, 3]);
    assert(tf.max(tf.abs(x)).dataSync()[0] < 1);
    return dfDiscriminate(d, cfg, x, tf.randomNormal([3, 16]));
  });
  assertEquals(logits.shape, [3]);
  logits.dispose();
  assertEquals(tf.memory().numTensors, before);
  // No transposed convolution and no batch norm anywhere in G.
  assert(Object.keys(g).every((k) => !k.includes("bn") && !k.startsWith("up")));
  tf.dispose([...Object.values(g), ...Object.values(d)]);
});

Deno.test("matching-aware penalty: k·mean(‖(∇x D, ∇e D)‖^p), by hand", () => {
  // D(x, e) = Σ 2x + Σ e²: ∇x = 2 everywhere (4 pixels → 16), ∇e = 2e.
  const critic = (x: tf.Tensor4D, e: tf.Tensor2D) =>
    tf.add(tf.sum(tf.mul(2, x), [1, 2, 3]), tf.sum(tf.square(e), 1)) as tf.Tensor1D;
  const x = tf.zeros([2, 2, 2, 1]) as tf.Tensor4D;
  const e = tf.tensor2d([[1, 0], [0, 2]]);
  // Sample 1: 16 + 4 = 20; sample 2: 16 + 16 = 32. p = 2 → mean 26, ×k 3 = 78.
  assertAlmostEquals(matchingAwarePenalty(critic, x, e, 3, 2).dataSync()[0], 78, 1e-4);
  // p = 6: (20³ + 32³) / 2 · 2 = 8000 + 32768.
  assertAlmostEquals(matchingAwarePenalty(critic, x, e, 2, 6).dataSync()[0], 40768, 0.5);
  tf.dispose([x, e]);
});

/** A draw with chosen values, for hand-computed augmentations. */
const draw = (over: Partial<DiffAugmentDraw>): DiffAugmentDraw => ({
  brightness: new Float32Array([0]),
  saturation: new Float32Array([1]),
  contrast: new Float32Array([1]),
  shift: new Int32Array([0, 0]),
  cutout: new Int32Array([-100, -100]),
  ...over,
});

Deno.test("DiffAugment colour: brightness, saturation and contrast, by hand", () => {
  const x = tf.tensor4d([0, 0.3, 0.6, 0.2, 0.2, 0.2], [1, 1, 2, 3]);
  const a = diffAugmentTensors(
    draw({
      brightness: new Float32Array([0.1]),
      saturation: new Float32Array([0]),
      contrast: new Float32Array([2]),
    }),
    2,
  );
  // +0.1 → pixel means 0.4, 0.3; saturation 0 → greys 0.4, 0.3; contrast 2 about 0.35.
  const y = Array.from(augmentColour(x, a).dataSync());
  [0.45, 0.45, 0.45, 0.25, 0.25, 0.25].forEach((v, i) => assertAlmostEquals(y[i], v, 1e-6));
  tf.dispose([x, ...Object.values(a)]);
});

Deno.test("DiffAugment translation is zero-filled; cutout zeroes a half-size square", () => {
  const size = 8; // shift margin 1, cutout 4×4
  const x = tf.tensor4d(Array.from({ length: 64 }, (_, i) => i + 1), [1, 8, 8, 1]);
  const moved = diffAugmentTensors(draw({ shift: new Int32Array([1, -1]) }), size);
  const y = augmentTranslateCutout(x, moved).arraySync()[0];
  // Output (r, c) reads input (r + 1, c − 1): first column and last row are zero.
  assertEquals(y[0].map((p) => p[0]), [0, 9, 10, 11, 12, 13, 14, 15]);
  assertEquals(y[7].map((p) => p[0]), [0, 0, 0, 0, 0, 0, 0, 0]);
  const cut = diffAugmentTensors(draw({ cutout: new Int32Array([2, 3]) }), size);
  const z = augmentTranslateCutout(x, cut).dataSync();
  const zeros = Array.from(z).flatMap((v, i) => (v === 0 ? [i] : []));
  assertEquals(zeros, [19, 20, 21, 22, 27, 28, 29, 30, 35, 36, 37, 38, 43, 44, 45, 46]);
  const g = tf.grad((v) => tf.sum(augmentTranslateCutout(v as tf.Tensor4D, moved)))(x);
  assertEquals(tf.sum(g).dataSync()[0], 49); // the 7×7 pixels that stay in view
  tf.dispose([x, g, ...Object.values(moved), ...Object.values(cut)]);
});

Deno.test("DiffAugment draws are fixed by the stream and in range", () => {
  const a = drawDiffAugment(16, 64, new Rng(5));
  const b = drawDiffAugment(16, 64, new Rng(5));
  assertEquals(a, b);
  assert(a.shift.every((s) => s >= -8 && s <= 8));
  assert(a.saturation.every((s) => s >= 0 && s < 2));
  const t = diffAugmentTensors(a, 64);
  const y = diffAugment(tf.zeros([16, 64, 64, 3]), t);
  assertEquals(y.shape, [16, 64, 64, 3]);
  tf.dispose([y, ...Object.values(t)]);
});

Deno.test("recipes: gan-int-cls with a pre-trained frozen φ, dfgan presets DF-GAN, flags override", () => {
  const old = recipeFromFlags({});
  assertEquals([old.name, old.arch, old.size], ["gan-int-cls", "dcgan", "small"]);
  // The defaults, the size's lr, and φ pre-trained 3000 steps then frozen.
  assertEquals([old.train, old.pretrainSteps], [
    defaultTrainConfig({ freezeText: true }),
    3000,
  ]);
  const frozen = (v: RecipeValues) => recipeFromFlags(v).train.freezeText;
  assertEquals(
    [
      frozen({ "pretrain-text": 0 }),
      frozen({ "joint-text": true }),
      frozen({ "pretrain-text": 9 }),
    ],
    [false, false, true],
  );
  const df = recipeFromFlags({ recipe: "dfgan", "lr-d": 1e-3 });
  assertEquals([df.arch, df.train.loss, df.train.lrG, df.train.lrD], [
    "dfgan",
    "hinge",
    2e-4,
    1e-3,
  ]);
  assertEquals([df.train.maGpWeight, df.train.diffAugment, df.train.interpolate], [2, true, false]);
  assertEquals([df.pretrainSteps, df.train.freezeText], [0, false]);
  const dfFrozen = recipeFromFlags({ recipe: "dfgan", "pretrain-text": 100, "freeze-text": true });
  assertEquals([dfFrozen.pretrainSteps, dfFrozen.train.freezeText], [100, true]);
  assertEquals(recipeFromFlags({ recipe: "dfgan", "no-diffaug": true }).train.diffAugment, false);
  assertEquals(recipeFromFlags({ lr: 1e-4 }).train.lrD, 1e-4);
  assertEquals(recipeFromFlags({ size: "reed" }).train.lrG, 2e-4);
  assertEquals(
    recipeText({ recipe: "dfgan", size: "small", "lr-d": 1e-3, diffaug: false }),
    "--recipe dfgan --lr-d 0.001",
  );
  // A DCGAN config is written as before recipes existed: old checkpoints compare equal.
  assertEquals("arch" in modelConfig("small", 40), false);
  assertEquals("upsample" in modelConfig("small", 40), false);
  assertEquals([old.upsample, df.upsample], ["nearest", "nearest"]);
  const tc = recipeFromFlags({ upsample: "transposed" });
  assertEquals([tc.arch, tc.upsample], ["dcgan", "transposed"]);
  assertEquals(
    recipeText({ upsample: "transposed" }),
    "--recipe gan-int-cls --upsample transposed",
  );
});

Deno.test("dcgan G with nearest up-sampling: 3×3 conv filters, [B, 64, 64, 3] in (−1, 1)", () => {
  const nn = modelConfig("small", 40, "dcgan", "nearest");
  const g = initGenerator(nn, 16, 1);
  // Each up-block: a 3×3 conv from C_i to C_{i+1} (3 at the end) after the ×2 up-sampling.
  assertEquals(g["up0.w"].shape, [3, 3, 128, 64]);
  assertEquals(g["up3.w"].shape, [3, 3, 16, 3]);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const { images } = generate(
      g,
      nn,
      tf.randomNormal([2, nn.zDim]),
      tf.randomNormal([2, 16]),
      tf.zeros([2, nn.condDim]),
      newContext(false),
    );
    assertEquals(images.shape, [2, 64, 64, 3]);
    assert(tf.max(tf.abs(images)).dataSync()[0] < 1);
  });
  assertEquals(tf.memory().numTensors, before);
  tf.dispose(Object.values(g));
});

Deno.test("caption retrieval picks the image whose caption shares the most words", () => {
  const index = captionIndex([
    ["a white flower with many petals"],
    ["the petals are red", "a red flower with a yellow centre"],
    ["red red red"],
  ]);
  assertEquals(retrieveByWords("A red flower, yellow centre", index), 1);
  assertEquals(retrieveByWords("nothing in common", index), 0); // ties: lowest index
});

for (const arch of ["dcgan", "dfgan"] as const) {
  Deno.test(`one ${arch} step with DiffAugment and MA-GP: finite losses, no leaked tensors`, async () => {
    const model = modelConfig("small", 30, arch);
    const train = defaultTrainConfig({
      batchSize: 4,
      loss: "hinge",
      maGpWeight: 2,
      diffAugment: true,
      interpolate: arch === "dcgan",
      dBatchNorm: arch === "dcgan",
    });
    const gan = createGan(model, train, 3);
    const rng = new Rng(2);
    const augment = () => diffAugmentTensors(drawDiffAugment(4, 64, rng), 64);
    let before = 0;
    for (let step = 0; step < 3; step++) {
      // After the first step: Adam has made its slots.
      if (step === 1) before = tf.memory().numTensors;
      const batch = {
        ...randomBatch(4, model.zDim, model.condDim, 30, rng),
        augReal: augment(),
        augFake: augment(),
      };
      const losses = await trainStep(gan, batch, 0, step);
      disposeBatch(batch);
      assert([losses.d, losses.g, losses.kl].every(Number.isFinite), JSON.stringify(losses));
    }
    assertEquals(tf.memory().numTensors, before);
    disposeGan(gan);
  });
}
