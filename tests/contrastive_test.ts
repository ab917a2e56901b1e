/**
 * The contrastive G loss (`--contrastive W`): the text pre-training's image model is
 * kept, frozen, and scores each fake against its own caption; G learns from it, the
 * image model does not; checkpoints keep it for a resume, and the export for best-of-K
 * inference (tests/best_of_test.ts). And `--lr-decay F`: both learning rates fall linearly over the budget's end.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { halve, initMatcher, matchFeatures } from "../stages/match.ts";
import { decayScale, disposeGan, type Gan } from "../stages/train_step.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { prepareTraining, train } from "../pipeline/train.ts";
import { disposeRun, trainSteps } from "../pipeline/steps.ts";
import { readCheckpoint, restoreGan, writeGeneratorCheckpoint } from "../pipeline/io/checkpoint.ts";
import { recipeFromFlags, type RecipeValues } from "../tasks/recipe.ts";
import { plainRecipe, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const snapshot = (p: Record<string, tf.Variable>) =>
  Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Array.from(v.dataSync())]));
const changed = (before: Record<string, number[]>, p: Record<string, tf.Variable>) =>
  Object.keys(before).filter((k) => p[k].dataSync().some((x, i) => x !== before[k][i]));
const contrastive = (contrastiveWeight: number) => ({
  batchSize: 4,
  seed: 2,
  freezeText: true,
  contrastiveWeight,
});

Deno.test("match: image vectors of φ's width; its pooling has avgPool's values and gradient", () => {
  const m = initMatcher(24, 3);
  const x = tf.randomNormal([3, 64, 64, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  assertEquals(tf.tidy(() => matchFeatures(m, x).shape), [3, 24]);
  const weights = tf.randomNormal([3, 32, 32, 3], 0, 1, "float32", 6);
  const [mine, theirs] = [halve, (t: tf.Tensor4D) => tf.avgPool(t, 2, 2, "valid")].map((f) =>
    tf.tidy(() => {
      const value = Array.from(f(x).dataSync());
      const grad = tf.grad((t) => tf.sum(tf.mul(f(t as tf.Tensor4D), weights)))(x);
      return { value, grad: Array.from(grad.dataSync()) };
    })
  );
  const far = (a: number[], b: number[]) => a.findIndex((v, i) => Math.abs(v - b[i]) > 1e-5);
  assertEquals(far(mine.value, theirs.value), -1, "values");
  assertEquals(far(mine.grad, theirs.grad), -1, "gradients");
  tf.dispose([x, weights, ...Object.values(m)]);
});

Deno.test("--contrastive: G learns from it, the pre-trained image model stays as it was", async () => {
  const data = await syntheticFixture(16, 1);
  const gAfterOneStep: number[][] = [];
  for (const weight of [1, 0]) {
    const out = await Deno.makeTempDir();
    const run = await unwrap(
      prepareTraining({
        data,
        out,
        recipe: plainRecipe({ pretrainSteps: 4, ...contrastive(weight) }),
      }),
    );
    assert(run.gan.match, "the pre-trained image model is kept");
    const match = snapshot(run.gan.match);
    const counts: number[] = [];
    for await (const _ of trainSteps(run, { maxSteps: 3 })) {
      counts.push(tf.memory().numTensors);
      if (counts.length === 1) {
        gAfterOneStep.push(Array.from(Object.values(run.gan.g)[0].dataSync()));
      }
    }
    assertEquals(counts[2], counts[1], "a step leaves no tensor behind");
    assertEquals(changed(match, run.gan.match), [], "the image model is frozen");
    disposeRun(run);
  }
  // Same seed, same pre-training, same batch: only the contrastive term tells them apart.
  assert(gAfterOneStep[0].some((v, i) => v !== gAfterOneStep[1][i]), "the loss reaches G");
});

Deno.test("--contrastive: a resume restores the image model; the export keeps it too", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir();
  const opts = {
    data,
    out,
    recipe: plainRecipe({ pretrainSteps: 4, ...contrastive(1) }),
    keepModel: true,
  };
  const r = await unwrap(train({ ...opts, maxSteps: 2 }));
  const trained = snapshot(r.model!.gan.match!);
  const ck = await readCheckpoint(out);
  assert(ck.tensors.has("match/proj"), "the full checkpoint keeps it");
  const resumed = await restoreGan(ck, out, ck.header.model);
  assertEquals(changed(trained, resumed.match!), []);
  await writeGeneratorCheckpoint(`${out}/gen`, r.model!.gan, r.progress, ck.header.vocabulary);
  const shipped = await readCheckpoint(`${out}/gen`);
  const loaded: Gan = await restoreGan(shipped, `${out}/gen`);
  assertEquals(changed(trained, loaded.match!), [], "for best-of-K inference");
  tf.dispose([...ck.tensors.values(), ...shipped.tensors.values()]);
  [resumed, loaded, r.model!.gan].forEach(disposeGan);
});

Deno.test("--contrastive without a pre-trained, frozen φ fails with a one-line fix", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir();
  for (const [pretrainSteps, freezeText] of [[0, true], [4, false]] as const) {
    const result = await train({
      data,
      out,
      maxSteps: 1,
      recipe: plainRecipe({ pretrainSteps, ...contrastive(1), freezeText }),
    })();
    assert(result._tag === "Left", `pretrain ${pretrainSteps}, frozen ${freezeText}`);
    assertMatch(result.left.message, /needs the text pre-training and a frozen text encoder/);
  }
  const flags = (v: RecipeValues) => recipeFromFlags(v).train;
  assertEquals(flags({ contrastive: 0.5 }).contrastiveWeight, 0.5);
  assertEquals(flags({ "lr-decay": 0.3 }).lrDecay, 0.3);
  assertEquals([flags({ "label-smooth": 0.1 }).labelSmooth, flags({}).labelSmooth], [0.1, 0]);
  assertEquals([flags({}).contrastiveWeight, flags({}).lrDecay], [0, 0]);
});

Deno.test("--lr-decay: 1 before the budget's last part, then linearly to 0, by steps or by clock", async () => {
  assertEquals([0, 0.5, 0.75, 0.875, 1].map((d) => decayScale(d, 0.25)), [1, 1, 1, 0.5, 0]);
  assertEquals(decayScale(0.99, 0), 1);
  const data = await syntheticFixture(16, 1);
  const rates = async (budget: { maxSteps?: number; minutes?: number }, tick = 0) => {
    const out = await Deno.makeTempDir();
    const prepared = await unwrap(
      prepareTraining({
        data,
        out,
        recipe: plainRecipe({ batchSize: 4, seed: 2, lrDecay: 0.5, lrG: 1e-3 }),
      }),
    );
    let now = 0;
    const run = { ...prepared, clock: () => now };
    const seen: number[] = [];
    const lr = (o: tf.Optimizer) => (o as unknown as { learningRate: number }).learningRate;
    for await (const _ of trainSteps(run, { ...budget, maxSteps: budget.maxSteps ?? 4 })) {
      seen.push(lr(run.gan.optG) / 1e-3, lr(run.gan.optD) / run.gan.train.lrD);
      now += tick;
    }
    disposeRun(run);
    return seen.map((v) => Math.round(v * 1000) / 1000);
  };
  // 4 steps, the last half decays: step k runs at min(1, (1 − k/4) / 0.5), for G and D.
  assertEquals(await rates({ maxSteps: 4 }), [1, 1, 1, 1, 1, 1, 0.5, 0.5]);
  // One minute, 15 s per step: the clock is further along than the 8-step budget.
  assertEquals(await rates({ maxSteps: 8, minutes: 1 }, 15), [1, 1, 1, 1, 1, 1, 0.5, 0.5]);
});
