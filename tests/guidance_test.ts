/**
 * Guidance: the EMA generator keeps its mean condition (set with its standing statistics
 * at every checkpoint, from training captions), checkpoints and exports keep it, and
 * drawing moves each caption's condition to center + scale · (condition − center):
 * 1.5 by default where the checkpoint keeps one, 1 (G as trained) where it was written
 * before. An image still depends on its own caption only, never on its batch.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { guide } from "../stages/generate.ts";
import { encodeText } from "../stages/embed.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import {
  createGan,
  disposeGan,
  generatorCondition,
  MEAN_CONDITION,
  meanCondition,
  sample,
  setCaptionRivals,
  setMeanCondition,
  withMatcher,
} from "../stages/train_step.ts";
import { rivals, setRivals } from "../stages/match.ts";
import { variable } from "../stages/layers.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { train } from "../pipeline/train.ts";
import {
  readCheckpoint,
  writeCheckpoint,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import {
  DEFAULT_GUIDANCE,
  disposeGenerator,
  drawPixels,
  guidanceFor,
  infer,
  loadGenerator,
} from "../pipeline/infer.ts";
import { middleScale } from "../pipeline/draw.ts";
import { plainRecipe, runTask, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxDiff = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const captionIds = (rows: number, seed: number) =>
  tf.tensor2d(
    Int32Array.from({ length: rows * 20 }, (_, i) => 2 + ((i * 7 + seed * 13) % 17)),
    [rows, 20],
    "int32",
  );
const VOCAB = ["<PAD>", "<RARE>", ...Array.from({ length: 18 }, (_, i) => `w${i}`)];
const PROGRESS = { step: 3, epoch: 0, imagesSeen: 96, seconds: 1 };

Deno.test("guide: center + scale · (v − center); scale 1 and no guidance leave v as it is", () => {
  const v = tf.tensor2d([[3, 1], [0, -2]]);
  const center = tf.tensor1d([1, 1]);
  const g = guide(v, { center, scale: 2 });
  assertEquals(values(g), [5, 1, -1, -5]);
  assertEquals(guide(v, { center, scale: 1 }), v);
  assertEquals(guide(v), v);
  tf.dispose([v, center, g]);
});

for (const arch of ["dcgan", "dfgan"] as const) {
  Deno.test(`${arch}: setMeanCondition is the mean of G's condition over the captions`, () => {
    const gan = createGan(modelConfig("small", 20, arch), defaultTrainConfig(), 4);
    const batches = [captionIds(5, 1), captionIds(3, 2)];
    assertEquals(meanCondition(gan), undefined, "a fresh GAN has none");
    const before = tf.memory().numTensors;
    setMeanCondition(gan, batches, 0);
    assertEquals(tf.memory().numTensors, before + 1, "one variable, nothing else left");
    const expected = tf.tidy(() =>
      tf.mean(
        tf.concat(
          batches.map((ids) => generatorCondition(gan, gan.ema, encodeText(gan.text, ids, 0))),
        ),
        0,
      )
    );
    const width = arch === "dfgan" ? expected.shape[0] : gan.model.condDim;
    assertEquals(meanCondition(gan)!.shape, [width]);
    const diff = maxDiff(meanCondition(gan)!, expected);
    assert(diff < 1e-5, `${diff}`);
    expected.dispose();
    setMeanCondition(gan, [batches[0]], 0); // assigned again: no new variable
    assertEquals(tf.memory().numTensors, before + 1);
    tf.dispose(batches);
    disposeGan(gan);
  });
}

Deno.test("setCaptionRivals: every batch's sentence vectors, in order, as unit rivals; nothing else left", () => {
  const gan = withMatcher(createGan(modelConfig("small", 20), defaultTrainConfig(), 4), 4);
  const batches = [captionIds(5, 1), captionIds(3, 2), captionIds(4, 3)];
  const before = tf.memory().numTensors;
  setCaptionRivals(gan, batches, 0);
  assertEquals(tf.memory().numTensors, before + 1, "one rivals variable, no batch's intermediates");
  const expected = tf.tidy(() => {
    const s = encodeText(gan.text, tf.concat(batches) as tf.Tensor2D, 0);
    return tf.div(s, tf.norm(s, 2, 1, true));
  });
  assertEquals(rivals(gan.match!)!.shape, [12, expected.shape[1]]);
  const diff = maxDiff(rivals(gan.match!)!, expected);
  assert(diff < 1e-5, `${diff}`);
  tf.dispose([expected, ...batches]);
  disposeGan(gan);
});

Deno.test("sample: guidance 1 is G as trained; other scales need the mean condition", () => {
  const gan = createGan(modelConfig("small", 20, "dcgan", "nearest"), defaultTrainConfig(), 5);
  // A fresh G barely reads its condition (its conditional parts start at zero): give the
  // colour offset weights, so that the condition shows.
  const colour = gan.ema["out.cond"];
  colour.assign(tf.randomNormal(colour.shape, 0, 1, "float32", 8));
  const ids = captionIds(3, 4);
  const z = tf.randomNormal([3, gan.model.zDim], 0, 1, "float32", 2) as tf.Tensor2D;
  const e = encodeText(gan.text, ids, 0);
  assertThrows(() => sample(gan, z, e, 1.5), /needs the generator's mean condition/);
  const plain = sample(gan, z, e);
  setMeanCondition(gan, [captionIds(8, 9)], 0);
  const one = sample(gan, z, e, 1);
  assertEquals(values(one), values(plain), "scale 1: unguided");
  const guided = sample(gan, z, e, 1.5);
  const moved = maxDiff(guided, plain);
  assert(moved > 1e-2, `guidance changes the images (${moved})`);
  // The center is the GAN's own, not the batch's: an image depends on its caption alone.
  const alone = sample(gan, z.slice(1, 1), e.slice(1, 1), 1.5);
  const diff = tf.tidy(() => maxDiff(alone, guided.slice(1, 1)));
  assert(diff < 1e-5, `caption 1 alone vs in its batch: ${diff}`);
  tf.dispose([ids, z, e, plain, one, guided, alone]);
  disposeGan(gan);
});

Deno.test("checkpoints keep the mean condition; an older one draws unguided, and says why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-guidance-" });
  const gan = createGan(modelConfig("small", 20), defaultTrainConfig(), 6);
  await writeCheckpoint(`${dir}/old`, gan, PROGRESS, VOCAB); // as written before guidance
  setMeanCondition(gan, [captionIds(6, 3)], 0);
  await writeCheckpoint(`${dir}/full`, gan, PROGRESS, VOCAB);
  await writeGeneratorCheckpoint(`${dir}/gen`, gan, PROGRESS, VOCAB);
  for (const name of ["full", "gen"]) {
    const ck = await readCheckpoint(`${dir}/${name}`);
    assertEquals(values(ck.tensors.get(`ema/${MEAN_CONDITION}`)!), values(meanCondition(gan)!));
    tf.dispose([...ck.tensors.values()]);
    const gen = await loadGenerator(`${dir}/${name}`);
    assertEquals(values(meanCondition(gen.gan)!), values(meanCondition(gan)!), name);
    assertEquals(guidanceFor(gen, name), { _tag: "Right", right: [DEFAULT_GUIDANCE] });
    assertEquals(guidanceFor(gen, name, 1), { _tag: "Right", right: [1] });
    assertMatch(JSON.stringify(guidanceFor(gen, name, -1)), /--guidance -1 is not a number ≥ 0/);
    assertMatch(JSON.stringify(guidanceFor(gen, name, [1, NaN])), /--guidance NaN is not a number/);
    assertMatch(JSON.stringify(guidanceFor(gen, name, [])), /--guidance \(none\) is not a number/);
    // Several scales need a matcher to pick among their images; this GAN keeps none.
    const several = guidanceFor(gen, name, [1, 2]);
    assert(several._tag === "Left");
    assertMatch(several.left.message, /keeps no image–text matcher to pick among guidance 1,2/);
    assertMatch(several.left.fix, /pass one scale, or train with --pretrain-text/);
    disposeGenerator(gen);
  }
  const old = await loadGenerator(`${dir}/old`);
  assertEquals(meanCondition(old.gan), undefined);
  assertEquals(guidanceFor(old, "old"), { _tag: "Right", right: [1] });
  const refused = guidanceFor(old, "old", 2);
  assert(refused._tag === "Left");
  assertMatch(refused.left.message, /keeps no mean condition .* guidance 2/);
  assertMatch(refused.left.fix, /--guidance 1, or `deno task export/);
  // What drawing defaults to is what guidanceFor says: the old one unguided.
  const rows = [{ id: 3, caption: "w1 w2 w3" }];
  assertEquals(
    await drawPixels(old, rows, { seed: 0 }),
    await drawPixels(old, rows, { seed: 0, guidance: 1 }),
  );
  disposeGenerator(old);
  disposeGan(gan);
});

Deno.test("a run's checkpoint keeps its mean condition; infer draws with 1.5 unless told", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-guided-run-" });
  await unwrap(train({ data, out, recipe: plainRecipe({ batchSize: 4, seed: 3 }), maxSteps: 2 }));
  const ck = await readCheckpoint(out);
  const center = ck.tensors.get(`ema/${MEAN_CONDITION}`);
  assert(center, "the checkpoint keeps the mean condition");
  assert(values(center).some((v) => v !== 0), "set from the training captions");
  tf.dispose([...ck.tensors.values()]);
  const captions = `${out}/captions.csv`;
  await Deno.writeTextFile(captions, "id,caption\n1,a red flower\n2,a yellow flower\n");
  const logs: string[] = [];
  const run = (guidance: number | undefined, dir: string) =>
    unwrap(
      infer({
        checkpoint: out,
        captions,
        out: `${out}/${dir}`,
        guidance,
        log: (l) => logs.push(l),
      }),
    );
  const guided = await run(undefined, "default");
  assertEquals(guided.guidance, [DEFAULT_GUIDANCE]);
  assert(logs.some((l) => /guidance 1\.5 \(away from the checkpoint's mean condition\)/.test(l)));
  assertEquals((await run(1, "plain")).guidance, [1]);
  const bytes = (dir: string) => Deno.readFile(`${out}/${dir}/inference_0001.jpg`);
  const [a, b] = [await bytes("default"), await bytes("plain")];
  assert(a.length !== b.length || a.some((v, i) => v !== b[i]), "guidance 1.5 draws other images");
});

Deno.test("export --data gives an older checkpoint its mean condition from the training captions", async () => {
  const data = await syntheticFixture(8, 1);
  const dir = await Deno.makeTempDir({ prefix: "petal-export-center-" });
  const gan = createGan(modelConfig("small", 20), defaultTrainConfig(), 7);
  await writeCheckpoint(`${dir}/old`, gan, PROGRESS, VOCAB);
  disposeGan(gan);
  const r = await runTask("export.ts", [
    "--checkpoint",
    `${dir}/old`,
    "--out",
    `${dir}/new`,
    "--data",
    data,
    "--backend",
    "cpu",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /mean condition: from the first captions of 8 training images/);
  const gen = await loadGenerator(`${dir}/new`);
  assert(meanCondition(gen.gan), "the export keeps one");
  assertEquals(guidanceFor(gen, "new"), { _tag: "Right", right: [DEFAULT_GUIDANCE] });
  disposeGenerator(gen);
});

Deno.test("export --data gives an older matcher its rivals from the training captions", async () => {
  const data = await syntheticFixture(8, 1);
  const dir = await Deno.makeTempDir({ prefix: "petal-export-rivals-" });
  const gan = withMatcher(createGan(modelConfig("small", 20), defaultTrainConfig(), 7), 1);
  await writeCheckpoint(`${dir}/old`, gan, PROGRESS, VOCAB); // as written before the rivals
  disposeGan(gan);
  const before = await loadGenerator(`${dir}/old`);
  assertEquals(rivals(before.gan.match!), undefined);
  disposeGenerator(before);
  const args = ["--checkpoint", `${dir}/old`, "--out", `${dir}/new`, "--data", data];
  const r = await runTask("export.ts", [...args, "--backend", "cpu"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(
    r.stdout,
    /mean condition and matcher's rivals: from the first captions of 8 training images/,
  );
  const gen = await loadGenerator(`${dir}/new`);
  assertEquals(rivals(gen.gan.match!)!.shape, [8, 128], "one rival per training image (< 1024)");
  assertEquals(guidanceFor(gen, "new", [1, 2]), { _tag: "Right", right: [1, 2] });
  disposeGenerator(gen);
});

Deno.test("an interpolation strip, which picks nothing, takes the middle of several scales", () => {
  assertEquals(middleScale(1.5), 1.5);
  assertEquals(middleScale([2, 1, 1.5]), 1.5);
  assertEquals(middleScale([2, 1]), 1, "the lower middle of an even count");
});

Deno.test("a checkpoint whose matcher's rivals are not sentence vectors is one error at load", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-bad-rivals-" });
  const gan = withMatcher(createGan(modelConfig("small", 20), defaultTrainConfig(), 9), 9);
  const narrow = tf.ones([4, 7]) as tf.Tensor2D; // 7 is no sentence width
  setRivals(gan.match!, narrow);
  narrow.dispose();
  await writeGeneratorCheckpoint(`${dir}/bad`, gan, PROGRESS, VOCAB);
  disposeGan(gan);
  const before = tf.memory().numTensors;
  await assertRejects(
    () => loadGenerator(`${dir}/bad`),
    /matcher's rivals are \[4,7\], not \[N, \d+\] sentence vectors/,
  );
  assertEquals(tf.memory().numTensors, before, "nothing half-loaded is left");
});

Deno.test("a checkpoint whose mean condition is not G's condition width is one error at load", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-bad-center-" });
  const model = modelConfig("small", 20);
  const gan = createGan(model, defaultTrainConfig(), 9);
  gan.ema[MEAN_CONDITION] = variable(undefined, tf.ones([model.condDim + 1]), false);
  await writeGeneratorCheckpoint(`${dir}/bad`, gan, PROGRESS, VOCAB);
  disposeGan(gan);
  const before = tf.memory().numTensors;
  await assertRejects(
    () => loadGenerator(`${dir}/bad`),
    new RegExp(`mean condition is \\[${model.condDim + 1}\\], not \\[${model.condDim}\\]`),
  );
  assertEquals(tf.memory().numTensors, before, "nothing half-loaded is left");
});
