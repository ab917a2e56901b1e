/**
 * Stage behaviour the review found untested: augment's mismatched-caption rule, loss
 * values on hand-computed cases, the EMA warm-up, and the --minutes stop.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { Rng } from "../stages/rng.ts";
import { mismatchedCaptions, sampleCaptions } from "../stages/augment.ts";
import {
  bceWithLogits,
  discriminatorLoss,
  generatorLoss,
  gradientPenalty,
} from "../stages/losses.ts";
import {
  createGan,
  discriminatorStep,
  disposeBatch,
  disposeGan,
  emaStandingStatistics,
  embedCaptions,
  type Gan,
  meanCondition,
  runDiscriminator,
  runGenerator,
  sample,
  updateEma,
} from "../stages/train_step.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import { newContext, trainable } from "../stages/layers.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { prepareTraining, train } from "../pipeline/train.ts";
import { disposeRun, settleEma, trainSteps } from "../pipeline/steps.ts";
import { plainRecipe, randomBatch, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const near = (a: number, b: number, what: string, eps = 1e-5) =>
  assert(Math.abs(a - b) < eps, `${what}: ${a} vs ${b}`);
const scalar = (t: tf.Tensor) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

Deno.test("augment: a mismatched caption is always another image's, every other image drawn", () => {
  // Image i has 3 captions of length 1 whose ids are 10·i + k: the id names its image.
  const bank = Array.from({ length: 5 }, (_, i) => Int32Array.from([0, 1, 2], (k) => 10 * i + k));
  const rng = new Rng(7);
  const drawn = new Map<number, Set<number>>();
  for (let round = 0; round < 400; round++) {
    const indices = [0, 1, 2, 3, 4];
    const wrong = mismatchedCaptions(bank, indices, 1, rng);
    indices.forEach((i, b) => {
      const owner = Math.floor(wrong[b] / 10);
      assert(owner !== i, `image ${i} got its own caption ${wrong[b]}`);
      drawn.set(i, (drawn.get(i) ?? new Set()).add(owner));
    });
  }
  for (const [i, owners] of drawn) assertEquals(owners.size, 4, `image ${i}`);
  // The matching caption is one of the image's own.
  const right = sampleCaptions(bank, [3, 1], 1, rng);
  assertEquals([Math.floor(right[0] / 10), Math.floor(right[1] / 10)], [3, 1]);
});

Deno.test("losses: BCE, hinge and WGAN values on hand-computed cases", () => {
  const t = (xs: number[]) => tf.tensor1d(xs);
  // BCE of logit 0 is log 2 against either target; log(1 + e^-2) for logit 2, target 1.
  near(scalar(bceWithLogits(t([0]), 1)), Math.LN2, "bce(0, 1)");
  near(scalar(bceWithLogits(t([2]), 1)), Math.log1p(Math.exp(-2)), "bce(2, 1)");
  near(scalar(bceWithLogits(t([2]), 0)), 2 + Math.log1p(Math.exp(-2)), "bce(2, 0)");
  // D (bce) at all-zero logits: log 2 + ½(log 2 + log 2) = 2 log 2.
  near(scalar(discriminatorLoss("bce", t([0, 0]), t([0]), t([0]))), 2 * Math.LN2, "D bce");
  near(scalar(generatorLoss("bce", t([0]))), Math.LN2, "G bce");
  // Label smoothing, real target 0.9: bce(2, 0.9) = 2 − 1.8 + log(1 + e^-2); the fake and
  // wrong terms keep target 0: ½(log 2 + log 2).
  const smoothed = 0.2 + Math.log1p(Math.exp(-2)) + Math.LN2;
  near(scalar(discriminatorLoss("bce", t([2]), t([0]), t([0]), undefined, 0.9)), smoothed, "D ls");
  // Hinge: real [0.5, 2] → mean(0.5, 0) = 0.25; fake [-2, 0] → mean(0, 1) = 0.5;
  // wrong [1] → 2; D = 0.25 + ½(0.5 + 2) = 1.5; G = −mean(fake) = 1.
  const [real, fake, wrong] = [t([0.5, 2]), t([-2, 0]), t([1])];
  near(scalar(discriminatorLoss("hinge", real, fake, wrong)), 1.5, "D hinge");
  near(scalar(generatorLoss("hinge", fake)), 1, "G hinge");
  // WGAN: −1.25 + ½(−1 + 1) = −1.25, plus the penalty when given.
  near(scalar(discriminatorLoss("wgan-gp", real, fake, wrong)), -1.25, "D wgan");
  near(scalar(discriminatorLoss("wgan-gp", real, fake, wrong, tf.scalar(0.3))), -0.95, "D wgan+gp");
  tf.dispose([real, fake, wrong]);
});

Deno.test("losses: gradient penalty of a linear critic is (‖w‖ − 1)²", () => {
  // critic(x) = Σ 2x over a 2×2×1 image: ∇ = 2 everywhere, ‖∇‖ = √(4·4) = 4 → (4 − 1)² = 9.
  const critic = (x: tf.Tensor4D) => tf.sum(tf.mul(x, 2), [1, 2, 3]) as tf.Tensor1D;
  const real = tf.ones([3, 2, 2, 1]) as tf.Tensor4D;
  const fake = tf.zeros([3, 2, 2, 1]) as tf.Tensor4D;
  const alpha = tf.tensor4d([0.1, 0.5, 0.9], [3, 1, 1, 1]);
  near(scalar(gradientPenalty(critic, real, fake, alpha)), 9, "GP", 1e-4);
  tf.dispose([real, fake, alpha]);
});

Deno.test("EMA warm-up: decay min(ema, (1 + t)/(10 + t)), so early EMA follows G", () => {
  const gan = (emaDecay: number) =>
    ({
      train: { emaDecay },
      g: { w: tf.variable(tf.scalar(1)) },
      ema: { w: tf.variable(tf.scalar(0)) },
    }) as unknown as Gan;
  const emaAfter = (g: Gan, step: number) => {
    updateEma(g, step);
    const v = g.ema.w.dataSync()[0];
    tf.dispose([g.g.w, g.ema.w]);
    return v;
  };
  // Step 0: decay 1/10 → ema = 0.1·0 + 0.9·1.
  near(emaAfter(gan(0.999), 0), 0.9, "step 0");
  // Step 1000: (1001/1010) < 0.999 still warms up.
  near(emaAfter(gan(0.999), 1000), 1 - 1001 / 1010, "step 1000");
  // Step 100 000: the configured decay.
  near(emaAfter(gan(0.999), 100_000), 0.001, "step 100000");
  // A decay below the warm-up curve holds from the first steps on.
  near(emaAfter(gan(0.5), 20), 0.5, "decay 0.5 at step 20");
});

Deno.test("--minutes: the loop stops by the clock before the next step", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir();
  const opts = { data, out, recipe: plainRecipe({ batchSize: 4, seed: 2 }) };
  const prepared = await unwrap(prepareTraining(opts));
  let now = 0;
  const run = { ...prepared, clock: () => now };
  const budget = { minutes: 1, epochs: 100 };
  const loop = trainSteps(run, budget);
  const steps: number[] = [];
  for await (const s of loop) {
    steps.push(s.step);
    if (s.step === 2) now = 60; // a minute passes during step 2
  }
  assertEquals(steps, [1, 2]);
  assertEquals(loop.stoppedBy, "minutes");
  disposeRun(run);
  // The whole pipeline, with no time at all: no step, a checkpoint, stopped by minutes.
  const r = await unwrap(train({ ...opts, out: `${out}/zero`, minutes: 0 }));
  assertEquals([r.stoppedBy, r.progress.step], ["minutes", 0]);
  await Deno.stat(`${out}/zero/checkpoint.petal`);
});

Deno.test("--freeze-text: steps train D and G but leave φ as it was; without it φ learns", async () => {
  const data = await syntheticFixture(16, 1);
  const snapshot = (p: Record<string, tf.Variable>) =>
    Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Array.from(v.dataSync())]));
  const changed = (before: Record<string, number[]>, p: Record<string, tf.Variable>) =>
    Object.keys(before).filter((k) => p[k].dataSync().some((x, i) => x !== before[k][i]));
  for (const freezeText of [true, false]) {
    const out = await Deno.makeTempDir();
    const run = await unwrap(
      prepareTraining({ data, out, recipe: plainRecipe({ batchSize: 4, seed: 2, freezeText }) }),
    );
    const [text, d, g] = [run.gan.text, run.gan.d, run.gan.g].map(snapshot);
    const counts: number[] = []; // after each step (Adam's moments appear in step 1)
    for await (const _ of trainSteps(run, { maxSteps: 3 })) counts.push(tf.memory().numTensors);
    assertEquals(counts[2], counts[1], "a step leaves no tensor behind");
    assertEquals(changed(text, run.gan.text).length === 0, freezeText, `φ, frozen ${freezeText}`);
    assert(changed(d, run.gan.d).length > 0, "D learns");
    assert(changed(g, run.gan.g).length > 0, "G learns");
    disposeRun(run);
  }
});

Deno.test("img/s counts from the first step: time spent before it (text pre-training) is left out", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir();
  const prepared = await unwrap(
    prepareTraining({ data, out, recipe: plainRecipe({ batchSize: 4, seed: 2 }) }),
  );
  let now = 12; // 10 s of pre-training, then 2 s per step
  const run = { ...prepared, clock: () => now, stepsFrom: 10 };
  const rates: number[] = [];
  for await (const s of trainSteps(run, { maxSteps: 2, minutes: 1 })) {
    rates.push(s.imagesPerSecond);
    now += 2;
  }
  assertEquals(rates, [4 / 2, 8 / 4]); // not 4/12 and 8/14
  disposeRun(run);
});

Deno.test("standing statistics: the EMA G's batch norm gets its own batch moments, weights untouched", () => {
  const gan = createGan(modelConfig("small", 30, "dcgan", "nearest"), defaultTrainConfig(), 3);
  // The EMA's running statistics start as G's initial ones (0 and 1): far from its own.
  const ids = tf.tensor2d(
    Int32Array.from({ length: 8 * 20 }, (_, i) => (i * 7) % 30),
    [8, 20],
    "int32",
  );
  const z = tf.randomNormal([8, gan.model.zDim], 0, 1, "float32", 4) as tf.Tensor2D;
  const weights = Object.entries(gan.ema).filter(([, v]) => v.trainable);
  const before = weights.map(([, v]) => [...v.dataSync()]);
  const trainMode = tf.tidy(() => {
    const eps = tf.zeros([8, gan.model.condDim]) as tf.Tensor2D;
    const ctx = newContext(true);
    const out = runGenerator(gan, gan.ema, z, embedCaptions(gan, ids, 0), eps, ctx).images;
    tf.dispose(ctx.updates.map(([, t]) => t));
    return [...out.dataSync()];
  });
  const evalMode = () => tf.tidy(() => [...sample(gan, z, embedCaptions(gan, ids, 0)).dataSync()]);
  const worst = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  assert(worst(evalMode(), trainMode) > 0.05, "before: eval mode is not the batch's normalisation");
  // One draw: eval mode with standing statistics is that batch's own normalisation.
  assertEquals(emaStandingStatistics(gan, [{ ids, z }], 0), 8); // 4 batch norms × mean, var
  assert(worst(evalMode(), trainMode) < 1e-3, `after: ${worst(evalMode(), trainMode)}`);
  assertEquals(weights.map(([, v]) => [...v.dataSync()]), before, "trainable EMA weights");
  // Two draws: the average of their moments; the same draw twice gives the same.
  assertEquals(emaStandingStatistics(gan, [{ ids, z }, { ids, z }], 0), 8);
  assert(worst(evalMode(), trainMode) < 1e-3, "the mean of two equal draws");
  tf.dispose([ids, z]);
  disposeGan(gan);
  const df = createGan(modelConfig("small", 30, "dfgan"), defaultTrainConfig(), 3);
  const dfIds = tf.zeros([2, 20], "int32") as tf.Tensor2D;
  const dfZ = tf.zeros([2, df.model.zDim]) as tf.Tensor2D;
  assertEquals(
    emaStandingStatistics(df, [{ ids: dfIds, z: dfZ }], 0),
    0,
    "DF-GAN's G has no batch norm",
  );
  tf.dispose([dfIds, dfZ]);
  disposeGan(df);
});

Deno.test("settleEma: one fixed stream, so the same weights get the same statistics; no tensor left", async () => {
  const data = await syntheticFixture(16, 1);
  const run = await unwrap(
    prepareTraining({
      data,
      out: await Deno.makeTempDir(),
      recipe: plainRecipe({ batchSize: 4, seed: 2 }),
    }),
  );
  const stats = () =>
    Object.entries(run.gan.ema).filter(([k]) => /\.(mean|var)$/.test(k))
      .map(([, v]) => [...v.dataSync()]);
  const count = tf.memory().numTensors;
  const center = () => [...meanCondition(run.gan)!.dataSync()];
  assertEquals(settleEma(run, 2), 8);
  const first = stats();
  const firstCenter = center();
  assertEquals(tf.memory().numTensors, count + 1, "one new variable: the mean condition");
  assertEquals(settleEma(run, 2), 8);
  assertEquals([stats(), center()], [first, firstCenter], "the same weights, the same values");
  assertEquals(tf.memory().numTensors, count + 1, "set again, not made again");
  for await (const _ of trainSteps(run, { maxSteps: 1 })); // the EMA blends G's in again
  assert(JSON.stringify(stats()) !== JSON.stringify(first), "a step moves them");
  settleEma(run, 2);
  assert(JSON.stringify(stats()) !== JSON.stringify(first), "new weights, new statistics");
  assert(JSON.stringify(center()) !== JSON.stringify(firstCenter), "and a new mean condition");
  disposeRun(run);
});

/** The D step as three whole D passes (real/right, fake/right, real/wrong): the reference. */
function threePassDStep(gan: Gan, b: ReturnType<typeof randomBatch>, padId: number): number {
  const e = embedCaptions(gan, tf.concat([b.right, b.wrong]) as tf.Tensor2D, padId);
  const B = b.right.shape[0];
  const [eRight, eWrong] = [e.slice([0, 0], [B, -1]), e.slice([B, 0], [B, -1])];
  const gCtx = newContext(true);
  const fake = tf.tidy(() =>
    runGenerator(gan, gan.g, b.z, eRight as tf.Tensor2D, b.eps, gCtx).images
  );
  tf.dispose(gCtx.updates.map(([, t]) => t));
  const loss = gan.optD.minimize(
    () => {
      const ctx = newContext(true);
      const critic = (x: tf.Tensor4D, t: tf.Tensor2D) => runDiscriminator(gan, x, t, ctx);
      return discriminatorLoss(
        gan.train.loss,
        critic(b.real, eRight as tf.Tensor2D),
        critic(fake, eRight as tf.Tensor2D),
        critic(b.real, eWrong as tf.Tensor2D),
        undefined,
        1 - (gan.train.labelSmooth ?? 0),
      );
    },
    true,
    trainable(gan.d),
  )!;
  tf.dispose([e, eRight, eWrong, fake]);
  return scalar(loss);
}

for (const [arch, labelSmooth] of [["dcgan", 0], ["dfgan", 0], ["dcgan", 0.2]] as const) {
  Deno.test(`${arch} D step (label smoothing ${labelSmooth}): one trunk pass for the real images gives the three-pass loss and update`, () => {
    const model = modelConfig("small", 40, arch);
    const loss = arch === "dfgan" ? "hinge" : "bce";
    const trainCfg = defaultTrainConfig({ loss, labelSmooth });
    const [a, ref] = [createGan(model, trainCfg, 5), createGan(model, trainCfg, 5)];
    const rng = new Rng(9);
    const b = randomBatch(8, model.zDim, model.condDim, 40, rng);
    const fixed = tf.tidy(() => {
      const e = embedCaptions(a, tf.concat([b.right, b.wrong]) as tf.Tensor2D, 0);
      return { right: e.slice([0, 0], [8, -1]), wrong: e.slice([8, 0], [8, -1]) };
    });
    const shared = scalar(discriminatorStep(a, b, 0, fixed as never));
    tf.dispose([fixed.right, fixed.wrong]);
    const reference = threePassDStep(ref, b, 0);
    near(shared, reference, "D loss");
    if (labelSmooth) {
      // The smoothed target reached the step: the same batch without it scores otherwise.
      const plain = createGan(model, defaultTrainConfig({ loss }), 5);
      const unsmoothed = threePassDStep(plain, b, 0);
      assert(Math.abs(unsmoothed - shared) > 1e-3, `${unsmoothed} vs ${shared}`);
      disposeGan(plain);
    }
    assert(Number.isFinite(shared), `D loss ${shared}`);
    for (const [k, v] of Object.entries(a.d)) {
      const diff = scalar(tf.max(tf.abs(tf.sub(v, ref.d[k]))));
      // Adam's first step moves each weight by about lr (5e-4) whatever the gradient's
      // size, so float rounding in a tiny gradient shows here: a tenth of a step.
      assert(diff < 5e-5, `${k} after the step differs by ${diff}`);
    }
    // Adam moved D: the comparison above is of updated weights, not initial ones.
    const fresh = createGan(model, trainCfg, 5);
    const moved = scalar(
      tf.max(
        tf.abs(tf.sub(a.d["out.w"] ?? a.d["logit.w"], fresh.d["out.w"] ?? fresh.d["logit.w"])),
      ),
    );
    assert(moved > 1e-4, `D's last layer moved by ${moved}`);
    disposeGan(fresh);
    disposeBatch(b);
    disposeGan(a);
    disposeGan(ref);
  });
}
