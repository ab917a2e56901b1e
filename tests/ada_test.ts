/**
 * Adaptive augmentation (`--ada T`): each DiffAugment operation applies to an image with a
 * probability p, gated per image and operation; p moves after every D step by the batch
 * over ADA_IMAGES, up while E[sign D(real, right)] is above the target, down while below;
 * a checkpoint keeps p, a resume continues it, and the loss log reports it.
 */
import * as E from "fp-ts/Either";
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "./assert.ts";
import { plainRecipe, randomBatch, syntheticFixture } from "./fixtures.ts";
import {
  type AugmentGates,
  diffAugment,
  diffAugmentTensors,
  disposeDiffAugment,
  drawAugmentGates,
  drawDiffAugment,
  gateDiffAugment,
} from "../stages/diffaugment.ts";
import { AUGMENT_P, createGan, disposeBatch, disposeGan, trainStep } from "../stages/train_step.ts";
import { ADA_IMAGES, modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import { Rng } from "../stages/rng.ts";
import { recipeFromFlags } from "../tasks/recipe.ts";
import { train } from "../pipeline/train.ts";
import { readCheckpoint } from "../pipeline/io/checkpoint.ts";
import { formatError, unwrap } from "../pipeline/io/errors.ts";
import { useBackend } from "../pipeline/backends/backend.ts";

await useBackend("auto");

/** Gates with these draws per image (the same for the three operations). */
const gates = (u: number[]): AugmentGates => {
  const col = () => tf.tensor4d(u, [u.length, 1, 1, 1]);
  return { colour: col(), shift: col(), cutout: col() };
};

Deno.test("gated DiffAugment: p = 1 is DiffAugment, p = 0 none, between it goes by image", () => {
  const x = tf.randomUniform([3, 16, 16, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const a = diffAugmentTensors(drawDiffAugment(3, 16, new Rng(2)), 16);
  const u = gates([0.1, 0.5, 0.9]);
  const at = (p: number) => {
    const g = gateDiffAugment(a, u, tf.tensor1d([p]));
    const y = diffAugment(x, g);
    disposeDiffAugment(g);
    return y;
  };
  const full = diffAugment(x, a);
  const [one, zero, half] = [at(1), at(0), at(0.5)];
  const diff = (p: tf.Tensor, q: tf.Tensor) => tf.max(tf.abs(tf.sub(p, q))).dataSync()[0];
  assert(diff(one, full) < 1e-6, "p = 1: every operation on every image");
  assert(diff(zero, x) < 1e-6, "p = 0: the images as they were");
  // p = 0.5: the first image (draw 0.1) is augmented, the last two (0.5, 0.9) are not.
  const row = (t: tf.Tensor, i: number) => t.slice([i, 0, 0, 0], [1, -1, -1, -1]);
  assert(diff(row(half, 0), row(full, 0)) < 1e-6, "image 0 augmented");
  assert(diff(row(full, 0), row(x, 0)) > 0.1, "and augmenting it changes it");
  for (const i of [1, 2]) assert(diff(row(half, i), row(x, i)) < 1e-6, `image ${i} kept`);
  tf.dispose([x, full, one, zero, half, ...Object.values(u)]);
  disposeDiffAugment(a);
});

Deno.test("each operation has its own gate: a shift alone moves the image, no colour, no cutout", () => {
  const x = tf.randomUniform([1, 8, 8, 1], 0.5, 1, "float32", 3) as tf.Tensor4D;
  const draw = drawDiffAugment(1, 8, new Rng(4));
  draw.shift.set([1, 0]);
  const a = diffAugmentTensors(draw, 8);
  const u = { colour: tf.tensor4d([0.9], [1, 1, 1, 1]), shift: tf.tensor4d([0.1], [1, 1, 1, 1]) };
  const g = gateDiffAugment(
    a,
    { ...u, cutout: tf.tensor4d([0.9], [1, 1, 1, 1]) },
    tf.tensor1d([0.5]),
  );
  const y = diffAugment(x, g).arraySync()[0];
  const rows = x.arraySync()[0];
  // Output row r reads input row r + 1; the last row comes from outside: 0. Nothing cut.
  for (let r = 0; r < 7; r++) assertEquals(y[r], rows[r + 1], `row ${r}`);
  assertEquals(y[7].flat(), new Array(8).fill(0));
  tf.dispose([x, ...Object.values(u)]);
  [a, g].forEach(disposeDiffAugment);
});

Deno.test("the gates' draws are fixed by the stream and uniform in [0, 1)", () => {
  const [a, b] = [drawAugmentGates(64, new Rng(9)), drawAugmentGates(64, new Rng(9))];
  for (const k of ["colour", "shift", "cutout"] as const) {
    const v = a[k].dataSync();
    assertEquals([...v], [...b[k].dataSync()], k);
    assert(v.every((x) => x >= 0 && x < 1), k);
  }
  assert(a.colour.dataSync()[0] !== a.shift.dataSync()[0], "each operation its own draw");
  tf.dispose([...Object.values(a), ...Object.values(b)]);
});

/** The GAN's p after one step from `p0` with target `target`, and the step's report of it. */
async function stepFrom(p0: number, target: number): Promise<[number, number]> {
  const model = modelConfig("small", 50);
  const gan = createGan(model, defaultTrainConfig({ diffAugment: true, adaTarget: target }), 3);
  const rng = new Rng(8);
  const B = 4;
  const batch = {
    ...randomBatch(B, model.zDim, model.condDim, 50, rng),
    augReal: diffAugmentTensors(drawDiffAugment(B, 64, rng), 64),
    augFake: diffAugmentTensors(drawDiffAugment(B, 64, rng), 64),
    gateReal: drawAugmentGates(B, rng),
    gateFake: drawAugmentGates(B, rng),
  };
  await trainStep(gan, batch, 0, 0); // the first step makes Adam's moments
  const start = tf.tensor1d([p0]);
  gan.d[AUGMENT_P].assign(start);
  start.dispose();
  const before = tf.memory().numTensors;
  const losses = await trainStep(gan, batch, 0, 1);
  assertEquals(tf.memory().numTensors, before, "a step leaves no tensor behind");
  const p = gan.d[AUGMENT_P].dataSync()[0];
  disposeBatch(batch);
  disposeGan(gan);
  return [p, losses.augment!];
}

Deno.test("p moves by B / ADA_IMAGES each D step, towards the target, within [0, 1]", async () => {
  const step = 4 / ADA_IMAGES;
  // E[sign D(real)] lies in [−1, 1]: a target under it always raises p, one over it lowers it.
  const [up, reported] = await stepFrom(0.5, -1.5);
  assertAlmostEquals(up, 0.5 + step, 1e-7);
  assertEquals(reported, up, "the step reports p after it");
  assertAlmostEquals((await stepFrom(0.5, 1.5))[0], 0.5 - step, 1e-7);
  assertEquals((await stepFrom(0, 1.5))[0], 0, "never below 0");
  assertEquals((await stepFrom(1, -1.5))[0], 1, "never above 1");
});

Deno.test("--ada T implies DiffAugment; with --no-diffaug it is a one-line error, nothing written", async () => {
  const r = recipeFromFlags({ ada: 0.6 });
  assertEquals([r.train.adaTarget, r.train.diffAugment], [0.6, true]);
  assertEquals(recipeFromFlags({}).train.adaTarget, 0, "off by default");
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-ada-" });
  const result = await train({
    data,
    out,
    recipe: recipeFromFlags({ ada: 0.6, "no-diffaug": true, "pretrain-text": 0 }),
    maxSteps: 1,
  })();
  assert(E.isLeft(result));
  assertMatch(
    formatError(result.left),
    /--ada 0.6 gates DiffAugment's operations, and this recipe has none — drop --no-diffaug, or drop --ada/,
  );
  assertEquals([...Deno.readDirSync(out)], [], "nothing written");
  await Deno.remove(out, { recursive: true });
});

Deno.test("an --ada run logs p, keeps it in its checkpoint, and a resume goes on as one run", async () => {
  const data = await syntheticFixture(24, 2);
  const base = await Deno.makeTempDir({ prefix: "petal-ada-" });
  // A target under any E[sign D(real)]: p rises by 8 / ADA_IMAGES every step.
  const recipe = plainRecipe({ batchSize: 8, seed: 3, diffAugment: true, adaTarget: -1.5 });
  const run = (out: string, maxSteps: number, resume = false) =>
    unwrap(train({ data, out: `${base}/${out}`, recipe, maxSteps, resume }));
  await run("whole", 4);
  await run("split", 2);
  await run("split", 4, true);
  const log = async (out: string) =>
    (await Deno.readTextFile(`${base}/${out}/losses.csv`)).trim().split("\n");
  const [whole, split] = [await log("whole"), await log("split")];
  assertEquals(whole[0], "step,epoch,loss_d,loss_g,kl,img_per_s,seconds,augment_p");
  const p = whole.slice(1).map((l) => Number(l.split(",")[7]));
  p.forEach((v, i) => assertAlmostEquals(v, (8 * (i + 1)) / ADA_IMAGES, 1e-6, `step ${i + 1}`));
  // Losses and p of the resumed run are the uninterrupted run's, row by row.
  const cols = (rows: string[]) =>
    rows.slice(1).map((l) => [...l.split(",").slice(2, 5), l.split(",")[7]]);
  assertEquals(cols(split), cols(whole));
  const ck = await readCheckpoint(`${base}/split`);
  assertAlmostEquals(ck.tensors.get(`d/${AUGMENT_P}`)!.dataSync()[0], p[3], 1e-7);
  tf.dispose([...ck.tensors.values()]);
  await Deno.remove(base, { recursive: true });
});
