/**
 * One recipe: `train()` with nothing else trains what `deno task train` trains, the
 * checkpoint keeps the resolved recipe, a resume takes it whole, and a flag that
 * contradicts it is a one-line error. Budgets bound the text pre-training too.
 */
import * as E from "fp-ts/Either";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { plainRecipe, runTask, syntheticFixture } from "./fixtures.ts";
import { readRecipe, train } from "../pipeline/train.ts";
import { formatError, unwrap } from "../pipeline/io/errors.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { readCheckpoint } from "../pipeline/io/checkpoint.ts";
import { parseFlags } from "../tasks/flags.ts";
import { TRAIN, trainRecipe } from "../tasks/train.ts";
import { recipeFromFlags, resumedRecipe } from "../tasks/recipe.ts";
import { generate, initGenerator } from "../stages/generate.ts";
import { newContext, type Params } from "../stages/layers.ts";
import { modelConfig } from "../stages/config.ts";
import { recipe, RECIPE_NAMES, recipeConflict, storedRecipe } from "../stages/recipe.ts";

await useBackend("auto");

const flags = (args: string[]) => {
  const parsed = parseFlags(TRAIN, args);
  assert(E.isRight(parsed));
  return parsed.right.values;
};

Deno.test("deno task train with no flags resolves recipe(), what train() trains by default", async () => {
  assertEquals(await unwrap(trainRecipe(flags([]))), recipe());
  assertEquals(
    await unwrap(trainRecipe(flags(["--recipe", "dfgan", "--size", "medium"]))),
    recipe("dfgan", { size: "medium" }),
  );
  // Every setting resolved: no field is left to a fallback elsewhere.
  for (const name of RECIPE_NAMES) {
    const r = recipe(name);
    const unset = Object.entries(r.train).filter(([, v]) => v === undefined).map(([k]) => k);
    assertEquals(unset, [], name);
  }
});

Deno.test("train() with nothing but data and out stores recipe() in its checkpoint", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-recipe-" });
  const lines: string[] = [];
  const r = await unwrap(train({ data, out, maxSteps: 1, log: (l) => lines.push(l) }));
  assertEquals(r.recipe, recipe());
  assertEquals(await unwrap(readRecipe(out)), recipe());
  // The default pre-trains φ, and says first what that adds to a step budget.
  assert(
    lines.some((l) => /^text pre-training: 60 steps before the GAN/.test(l)),
    lines.join("\n"),
  );
  const ck = await readCheckpoint(out);
  assertEquals(ck.header.recipe, {
    name: "gan-int-cls",
    pretrainSteps: 3000,
    pretrainBatch: recipe().pretrainBatch,
  });
  assertEquals([ck.header.model.upsample, ck.header.train.freezeText], ["nearest", true]);
  ck.tensors.forEach((t) => t.dispose());
});

Deno.test("a stored recipe reads back as it was written; older headers are rebuilt", () => {
  for (
    const r of [
      recipe(),
      recipe("dfgan", { size: "reed" }),
      plainRecipe({ emaDecay: 0.99 }),
      recipe("gan-int-cls", { labelSmooth: 0.1 }),
      recipe("gan-int-cls", { pretrainBatch: 48 }),
    ]
  ) {
    const model = modelConfig(r.size, 50, r.arch, r.upsample);
    assertEquals(storedRecipe(model, r.train, r), r);
  }
  // A checkpoint from before recipes: no origin, optional fields absent.
  const old = storedRecipe(modelConfig("small", 50), {
    ...recipe().train,
    freezeText: undefined,
    lrDecay: undefined,
    contrastiveWeight: undefined,
  });
  assertEquals([old.name, old.upsample, old.pretrainSteps], ["gan-int-cls", "transposed", 0]);
  assertEquals(old.pretrainBatch, 32, "every run before recipes kept it pre-trained at 32");
  const noBatch = storedRecipe(modelConfig("small", 50), recipe().train, {
    name: "gan-int-cls",
    pretrainSteps: 3000,
  });
  assertEquals(noBatch.pretrainBatch, 32, "an origin without a batch: 32, as then");
  const oneThread = storedRecipe(modelConfig("small", 50), {
    ...recipe().train,
    replicas: undefined,
  });
  assertEquals(oneThread.train.replicas, 1, "checkpoints from before data parallelism: one");
  assertEquals([old.train.freezeText, old.train.lrDecay, old.train.contrastiveWeight], [
    false,
    0,
    0,
  ]);
});

Deno.test("--g-top C: the dcgan G gets a 3×3 conv of C channels at 64×64 before RGB", () => {
  assertEquals([recipe().gTop, recipeFromFlags({ "g-top": 16 }).gTop], [0, 16]);
  const r = recipe("gan-int-cls", { gTop: 16 });
  const model = modelConfig(r.size, 50, r.arch, r.upsample, r.gTop);
  assertEquals(model.gTop, 16);
  // Without one nothing is written: older configs and checkpoints stay byte-equal.
  assertEquals("gTop" in modelConfig("small", 50, "dcgan", "nearest"), false);
  assertEquals(storedRecipe(model, r.train, r), r);
  assertEquals(recipeConflict(r, resumedRecipe(r, {})), undefined);
  assertEquals(recipeConflict(r, resumedRecipe(r, { "g-top": 0 })), "gTop: 16, not 0");
  const before = tf.memory().numTensors;
  const [plain, topped] = [0, 16].map((gTop) =>
    initGenerator(modelConfig("small", 50, "dcgan", "nearest", gTop), 128, 1)
  );
  const shape = (p: Params, k: string) => p[k]?.shape;
  // The last up-sampling writes 16 channels (not RGB), batch-normed; then top.w writes RGB.
  assertEquals([shape(plain, "up3.w"), shape(topped, "up3.w")], [[3, 3, 16, 3], [3, 3, 16, 16]]);
  assertEquals([shape(plain, "top.w"), shape(topped, "top.w")], [undefined, [3, 3, 16, 3]]);
  assertEquals([shape(plain, "bn4.gamma"), shape(topped, "bn4.cscale")], [undefined, [64, 16]]);
  const cfg = modelConfig("small", 50, "dcgan", "nearest", 16);
  const ctx = newContext(true);
  const [shapeOut, lo, hi] = tf.tidy(() => {
    const { images } = generate(
      topped,
      cfg,
      tf.randomNormal([2, cfg.zDim]),
      tf.randomNormal([2, 128]),
      tf.zeros([2, cfg.condDim]),
      ctx,
    );
    return [images.shape, images.min().dataSync()[0], images.max().dataSync()[0]];
  });
  assertEquals(shapeOut, [2, 64, 64, 3]);
  assert(lo >= -1 && hi <= 1 && hi > lo, `${lo} ${hi}`);
  // Training mode: each of the 5 batch norms records its running mean and variance.
  assertEquals(ctx.updates.length, 10);
  tf.dispose([...ctx.updates.map(([, t]) => t), ...Object.values(plain), ...Object.values(topped)]);
  assertEquals(tf.memory().numTensors, before, "no tensor left");
});

Deno.test("--label-smooth with a loss other than bce is a one-line error, before a model is made", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-smooth-" });
  const before = tf.memory().numTensors;
  const result = await train({
    data,
    out,
    recipe: recipe("gan-int-cls", { loss: "hinge", labelSmooth: 0.1 }),
    maxSteps: 1,
  })();
  assert(E.isLeft(result));
  assertEquals(result.left.kind, "BadArgument");
  assertMatch(
    formatError(result.left),
    /--label-smooth moves the bce loss's target, and this recipe's loss is hinge — drop --label-smooth, or add --loss bce/,
  );
  assertEquals(tf.memory().numTensors, before, "no tensor left");
  assertEquals([...Deno.readDirSync(out)], [], "nothing written");
  await Deno.remove(out, { recursive: true });
});

Deno.test("--g-top on DF-GAN's generator is a one-line error, before a model is made", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-gtop-" });
  const before = tf.memory().numTensors;
  const result = await train({ data, out, recipe: recipe("dfgan", { gTop: 16 }), maxSteps: 1 })();
  assert(E.isLeft(result));
  assertEquals(result.left.kind, "BadArgument");
  assertMatch(
    formatError(result.left),
    /--g-top adds a conv to the dcgan generator, and this recipe's is dfgan — drop --g-top, or add --arch dcgan/,
  );
  assertEquals(tf.memory().numTensors, before);
  assertEquals([...Deno.readDirSync(out)], [], "nothing written");
});

Deno.test("a resume takes the stored recipe; only the learning rates may change", () => {
  const stored = recipe("gan-int-cls", { size: "reed", pretrainSteps: 0 });
  // No flags: exactly the stored recipe (the reed run that needed --size before).
  assertEquals(resumedRecipe(stored, {}), stored);
  const faster = resumedRecipe(stored, { lr: 1e-4 });
  assertEquals([faster.train.lrG, faster.train.lrD], [1e-4, 1e-4]);
  assertEquals(recipeConflict(stored, faster), undefined);
  assertEquals(
    recipeConflict(stored, resumedRecipe(stored, { size: "small" })),
    "size: reed, not small",
  );
  assertEquals(
    recipeConflict(stored, resumedRecipe(stored, { recipe: "dfgan" })),
    "name: gan-int-cls, not dfgan",
  );
  assertEquals(recipeConflict(stored, resumedRecipe(stored, { seed: 9 })), "seed: 1, not 9");
});

Deno.test("deno task train --resume: a medium run resumes without --size; a contradicting flag is one line", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-resume-" });
  const base = ["--data", data, "--out", out, "--quiet"];
  const first = await runTask("train.ts", [
    ...base,
    ...["--size", "medium", "--pretrain-text", "0", "--batch", "8", "--steps", "1"],
  ]);
  assertEquals(first.code, 0, first.stderr);
  const resumed = await runTask("train.ts", [...base, "--resume", "--steps", "2"]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assertMatch(resumed.stdout, /stopped by steps at step 2 /);
  assertEquals((await unwrap(readRecipe(out))).size, "medium");
  const bad = await runTask("train.ts", [...base, "--resume", "--steps", "3", "--size", "small"]);
  assertEquals(bad.code, 1);
  const lines = bad.stderr.trim().split("\n");
  assertEquals(lines.length, 1, bad.stderr);
  assertMatch(
    lines[0],
    /checkpoint\.petal: a resume keeps the checkpoint's recipe, and this one differs \(size: medium, not small\) — drop that setting/,
  );
});

Deno.test("--minutes bounds the text pre-training; a stop request ends it too", async () => {
  const data = await syntheticFixture(16, 1);
  const pretrained = async (opts: { minutes?: number; shouldStop?: () => boolean }) => {
    const lines: string[] = [];
    const out = await Deno.makeTempDir({ prefix: "petal-budget-" });
    const r = await unwrap(train({
      data,
      out,
      recipe: plainRecipe({ pretrainSteps: 8, batchSize: 4 }),
      maxSteps: opts.minutes === undefined ? 1 : undefined,
      ...opts,
      log: (l) => lines.push(l),
    }));
    const done = lines.find((l) => l.startsWith("text encoder pre-trained"));
    const skipped = lines.some((l) =>
      /no step before its deadline.*keeps its initial weights/.test(l)
    );
    return { r, lines, steps: skipped ? 0 : Number(done?.match(/contrastive, (\d+) steps/)?.[1]) };
  };
  const full = await pretrained({});
  assertEquals(full.steps, 8);
  // No clock left: the pre-training stops before its first step, and the GAN takes none.
  const none = await pretrained({ minutes: 0 });
  assertEquals([none.steps, none.r.progress.step, none.r.stoppedBy], [0, 0, "minutes"]);
  assert(none.lines.some((l) => /within the first 0\.0 of the 0 minutes/.test(l)));
  let asked = 0;
  const stopped = await pretrained({ shouldStop: () => ++asked > 3 });
  assertEquals([stopped.steps, stopped.r.stoppedBy], [3, "signal"]);
});

Deno.test("--pretrain-batch N: the text pre-training's contrastive batch, its passes capped at 30", async () => {
  assertEquals(recipeFromFlags(flags(["--pretrain-batch", "48"])).pretrainBatch, 48);
  assertEquals(recipeFromFlags(flags([])).pretrainBatch, recipe().pretrainBatch);
  // A checkpoint names both: a value its reader would refuse is refused at the flag.
  for (const [flag, value] of [["--pretrain-batch", "70000"], ["--pretrain-text", "20000000"]]) {
    const refused = parseFlags(TRAIN, [flag, value]);
    assert(E.isLeft(refused), flag);
    assertMatch(formatError(refused.left), new RegExp(`${flag}.*out of range`));
  }
  const data = await syntheticFixture(16, 1);
  const pretrained = async (pretrainBatch: number) => {
    const lines: string[] = [];
    const out = await Deno.makeTempDir({ prefix: "petal-pretrain-batch-" });
    const r = await unwrap(train({
      data,
      out,
      recipe: plainRecipe({ pretrainSteps: 300, pretrainBatch, batchSize: 4 }),
      maxSteps: 1,
      log: (l) => lines.push(l),
    }));
    const done = lines.find((l) => l.startsWith("text encoder pre-trained"))!;
    const [, steps, first] = done.match(/contrastive, (\d+) steps\): loss ([\d.]+)/)!;
    assertEquals(await unwrap(readRecipe(out)), r.recipe, "kept in the checkpoint");
    return { steps: Number(steps), first: Number(first) };
  };
  // 16 images: 60 passes are 240 steps of 4, 60 of 16.
  const four = await pretrained(4);
  const sixteen = await pretrained(16);
  assertEquals([four.steps, sixteen.steps], [240, 60]);
  // An in-batch contrastive loss starts near ln B (an untrained encoder tells no pair apart).
  assert(Math.abs(four.first - Math.log(4)) < 0.5, `${four.first}`);
  assert(Math.abs(sixteen.first - Math.log(16)) < 0.5, `${sixteen.first}`);
});
