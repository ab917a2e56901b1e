/**
 * Spectral normalisation (`--spectral-norm`): σ is W's top singular value, the gradient is
 * the paper's (u, v held fixed), the dcgan D carries it in place of batch norm, every D
 * step moves the estimate, and a checkpoint keeps it.
 */
import * as E from "fp-ts/Either";
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "./assert.ts";
import { plainRecipe, randomBatch, syntheticFixture } from "./fixtures.ts";
import { initSpectral, powerIteration, spectralKeys, spectralWeight } from "../stages/spectral.ts";
import { initDiscriminator } from "../stages/discriminate.ts";
import { createGan, discriminatorStep, disposeGan, type Gan } from "../stages/train_step.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig, recipe } from "../stages/recipe.ts";
import { type Params, variable } from "../stages/layers.ts";
import { Rng } from "../stages/rng.ts";
import { recipeFromFlags } from "../tasks/recipe.ts";
import { train } from "../pipeline/train.ts";
import { readCheckpoint, restoreGan } from "../pipeline/io/checkpoint.ts";
import { formatError, unwrap } from "../pipeline/io/errors.ts";
import { useBackend } from "../pipeline/backends/backend.ts";

await useBackend("auto");

/** The top singular value of a [rows, cols] matrix, by 500 plain power iterations on WᵀW. */
function topSingular(w: number[][]): number {
  let u = w[0].map((_, j) => 1 + j / 7);
  let s = 0;
  for (let it = 0; it < 500; it++) {
    const v = w.map((row) => row.reduce((a, x, j) => a + x * u[j], 0));
    const back = u.map((_, j) => w.reduce((a, row, i) => a + row[j] * v[i], 0));
    const n = Math.hypot(...back);
    u = back.map((x) => x / n);
    s = Math.sqrt(n);
  }
  return s;
}

const asRows = (t: tf.Tensor): number[][] =>
  tf.tidy(() => t.reshape([-1, t.shape[t.shape.length - 1]]).arraySync() as number[][]);

Deno.test("σ is the weight's top singular value: W / σ has spectral norm 1", () => {
  const before = tf.memory().numTensors;
  const w = tf.randomNormal([3, 3, 4, 6], 0, 0.02, "float32", 3);
  const sigma = topSingular(asRows(w));
  const p: Params = { "c.w": variable(undefined, w) };
  Object.assign(p, initSpectral(p, ["c.w"], 5));
  assertEquals(spectralKeys(p), ["c.w"]);
  assertEquals([p["c.w.u"].shape, p["c.w.v"].shape], [[6, 1], [36, 1]]);
  assert(!p["c.w.u"].trainable && !p["c.w.v"].trainable, "u and v are not trained");
  for (let i = 0; i < 30; i++) powerIteration(p);
  const normed = spectralWeight(p, "c.w");
  assertEquals(normed.shape, [3, 3, 4, 6]);
  assertAlmostEquals(topSingular(asRows(normed)), 1, 1e-3);
  const [lo, hi] = tf.tidy(() => {
    const ratio = tf.div(p["c.w"], normed);
    return [tf.min(ratio).dataSync()[0], tf.max(ratio).dataSync()[0]];
  });
  assertAlmostEquals(lo, sigma, sigma * 1e-3, "the same σ divides every entry");
  assertAlmostEquals(hi, sigma, sigma * 1e-3);
  tf.dispose([normed, ...Object.values(p)]);
  assertEquals(tf.memory().numTensors, before, "no tensor left");
});

Deno.test("a weight without power-iteration vectors passes through unchanged", () => {
  const p: Params = { w: variable(undefined, tf.tensor2d([[3, 0], [0, 1]])) };
  assert(spectralWeight(p, "w") === p.w, "the variable itself");
  powerIteration(p); // nothing to iterate
  assertEquals(p.w.arraySync(), [[3, 0], [0, 1]]);
  p.w.dispose();
});

Deno.test("the gradient holds u and v fixed: ∂⟨C, W/σ⟩/∂W = C/σ − ⟨C, W⟩/σ² · v uᵀ", () => {
  const p: Params = { w: variable(undefined, tf.tensor2d([[2, 1], [0.5, -1], [1, 1]])) };
  Object.assign(p, initSpectral(p, ["w"], 2));
  powerIteration(p);
  const c = tf.tensor2d([[1, -2], [0.5, 3], [-1, 0.25]]);
  const grad = tf.grad((w: tf.Tensor) =>
    tf.sum(tf.mul(c, spectralWeight({ ...p, w: w as tf.Variable }, "w")))
  )(p.w);
  const [u, v] = [p["w.u"].arraySync() as number[][], p["w.v"].arraySync() as number[][]];
  const W = p.w.arraySync() as number[][];
  const C = c.arraySync() as number[][];
  const sigma = W.reduce(
    (a, row, i) => a + row.reduce((b, x, j) => b + v[i][0] * x * u[j][0], 0),
    0,
  );
  const cw = W.reduce((a, row, i) => a + row.reduce((b, x, j) => b + C[i][j] * x, 0), 0);
  const expected = C.map((row, i) =>
    row.map((x, j) => x / sigma - (cw / (sigma * sigma)) * v[i][0] * u[j][0])
  );
  const got = grad.arraySync() as number[][];
  got.forEach((row, i) =>
    row.forEach((x, j) => assertAlmostEquals(x, expected[i][j], 1e-4, `[${i}, ${j}]`))
  );
  tf.dispose([c, grad, ...Object.values(p)]);
});

Deno.test("--spectral-norm: the dcgan D has no batch norm, every weight normalised, each D step iterates", () => {
  assertEquals(recipeFromFlags({ "spectral-norm": true }).train.spectralNorm, true);
  assertEquals(recipe().train.spectralNorm, false, "off by default");
  const model = modelConfig("small", 40);
  const plain = initDiscriminator(model, 128, 1, false, undefined, true);
  const weights = Object.keys(plain).filter((k) => k.endsWith(".w"));
  assertEquals(weights.length, model.dChannels.length + 3, "the downs, text, fuse and out");
  assertEquals(spectralKeys(plain).sort(), weights.sort());
  tf.dispose(Object.values(plain));
  const gan: Gan = createGan(model, defaultTrainConfig({ spectralNorm: true }), 5);
  assertEquals(Object.keys(gan.d).filter((k) => k.startsWith("bn")), [], "no batch norm");
  const u0 = gan.d["down1.w.u"].arraySync();
  const b = randomBatch(4, model.zDim, model.condDim, 40, new Rng(3));
  const step = () => {
    const loss = discriminatorStep(gan, b, 0);
    assert(Number.isFinite(loss.dataSync()[0]), "a finite D loss");
    loss.dispose();
  };
  step(); // Adam makes its moments here
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  assertEquals(tf.memory().numTensors, before, "three D steps leave no tensor behind");
  tf.dispose(Object.values(b));
  assert(JSON.stringify(gan.d["down1.w.u"].arraySync()) !== JSON.stringify(u0), "u moved");
  for (const key of spectralKeys(gan.d)) {
    const norm = tf.tidy(() => tf.norm(gan.d[`${key}.u`]).dataSync()[0]);
    assertAlmostEquals(norm, 1, 1e-4, `${key}.u is a unit vector`);
  }
  disposeGan(gan);
});

Deno.test("--spectral-norm: a checkpoint keeps u and v, a resume restores them", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-sn-" });
  const r = await unwrap(
    train({ data, out, recipe: plainRecipe({ spectralNorm: true }), maxSteps: 2, keepModel: true }),
  );
  const ck = await readCheckpoint(out);
  assert(
    ck.tensors.has("d/down1.w.u") && ck.tensors.has("d/out.w.v"),
    [...ck.tensors.keys()].join(),
  );
  assertEquals(ck.header.train.spectralNorm, true);
  const resumed = await restoreGan(ck, out, ck.header.model);
  for (const key of spectralKeys(r.model!.gan.d)) {
    for (const part of [".u", ".v"]) {
      assertEquals(
        resumed.d[key + part].arraySync(),
        r.model!.gan.d[key + part].arraySync(),
        key + part,
      );
    }
  }
  tf.dispose([...ck.tensors.values()]);
  [resumed, r.model!.gan].forEach(disposeGan);
  await Deno.remove(out, { recursive: true });
});

Deno.test("--spectral-norm on DF-GAN's discriminator is a one-line error, before a model is made", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-sn-" });
  const result = await train({
    data,
    out,
    recipe: recipe("dfgan", { spectralNorm: true }),
    maxSteps: 1,
  })();
  assert(E.isLeft(result));
  assertMatch(
    formatError(result.left),
    /--spectral-norm normalises the dcgan discriminator, and this recipe's is dfgan — drop --spectral-norm, or add --arch dcgan/,
  );
  assertEquals([...Deno.readDirSync(out)], [], "nothing written");
  await Deno.remove(out, { recursive: true });
});
