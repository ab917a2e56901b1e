/**
 * Best-of-K inference: a pre-trained run keeps its image–text matcher (with standing
 * batch-norm statistics from real images), the export ships it, and `infer` draws K
 * noises per caption and keeps the image the matcher finds nearest its caption. One
 * candidate draws what inference always drew; a checkpoint without a matcher draws one,
 * and asking it for more is a one-line error.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import {
  initMatcher,
  matcherStatistics,
  matchFeatures,
  matchSimilarity,
  pickBest,
} from "../stages/match.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { train } from "../pipeline/train.ts";
import { readCheckpoint, writeGeneratorCheckpoint } from "../pipeline/io/checkpoint.ts";
import {
  disposeGenerator,
  drawPixels,
  generateImages,
  infer,
  inferenceName,
  loadGenerator,
} from "../pipeline/infer.ts";
import { noiseRows } from "../stages/noise.ts";
import { encodeJpeg } from "../pipeline/io/images.ts";
import { plainRecipe, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const maxDiff = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

Deno.test("matcher statistics: eval mode then matches the batch's training-mode vectors", () => {
  const m = initMatcher(16, 4);
  const x = tf.randomUniform([6, 64, 64, 3], -1, 1, "float32", 9) as tf.Tensor4D;
  const before = tf.tidy(() => maxDiff(matchFeatures(m, x, false), matchFeatures(m, x, true)));
  assert(before > 0.05, `fresh running statistics differ from the batch's (${before})`);
  const tensors = tf.memory().numTensors;
  assertEquals(matcherStatistics(m, [x]), 10); // 5 batch norms × mean, variance
  assertEquals(tf.memory().numTensors, tensors, "no tensor left behind");
  const after = tf.tidy(() => maxDiff(matchFeatures(m, x, false), matchFeatures(m, x, true)));
  assert(after < 1e-3, `eval mode equals the batch's own statistics (${after})`);
  // Eval mode: an image's vector no longer depends on the rest of its batch.
  const alone = tf.tidy(() =>
    maxDiff(matchFeatures(m, x.slice(0, 2), false), matchFeatures(m, x, false).slice(0, 2))
  );
  assert(alone < 1e-4, `${alone}`);
  tf.dispose([x, ...Object.values(m)]);
});

Deno.test("pickBest: per caption, the candidate of highest similarity to its sentence", () => {
  const m = initMatcher(16, 5);
  const sentences = tf.randomNormal([6, 16], 0, 1, "float32", 3) as tf.Tensor2D;
  const candidates = [0, 1, 2].map((k) =>
    tf.randomUniform([6, 64, 64, 3], -1, 1, "float32", 20 + k) as tf.Tensor4D
  );
  const stacked = tf.concat(candidates) as tf.Tensor4D; // candidate-major: [3·6, …]
  const tensors = tf.memory().numTensors;
  const best = pickBest(m, stacked, sentences);
  assertEquals(tf.memory().numTensors, tensors + 1, "only the result is left");
  const sims = candidates.map((c) =>
    tf.tidy(() => Array.from(matchSimilarity(m, c, sentences).dataSync()))
  );
  const picks = [0, 1, 2, 3, 4, 5].map((i) =>
    [0, 1, 2].reduce((a, k) => sims[k][i] > sims[a][i] ? k : a, 0)
  );
  assert(new Set(picks).size > 1, `the picks vary: ${picks}`);
  for (const [i, k] of picks.entries()) {
    assertEquals(
      maxDiff(best.slice(i, 1), candidates[k].slice(i, 1)),
      0,
      `caption ${i}: candidate ${k}`,
    );
  }
  const one = pickBest(m, candidates[0], sentences);
  assertEquals(maxDiff(one, candidates[0]), 0, "one candidate is returned as it is");
  assertThrows(
    () => tf.tidy(() => pickBest(m, stacked.slice(0, 10), sentences)),
    /10 candidates for 6 sentences/,
  );
  tf.dispose([best, one, stacked, sentences, ...candidates, ...Object.values(m)]);
});

/** A 2-step run on the synthetic set, pre-trained (so with a matcher) or not. */
async function tinyRun(pretrainSteps: number) {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-bestof-" });
  const recipe = plainRecipe({ pretrainSteps, batchSize: 4, seed: 3 });
  await unwrap(train({ data, out, recipe, maxSteps: 2 }));
  const captions = `${out}/captions.csv`;
  await Deno.writeTextFile(
    captions,
    "id,caption\n1,a red flower with round petals\n2,a yellow flower\n3,a blue flower\n",
  );
  return { out, captions };
}

Deno.test("a pre-trained run keeps its matcher, with statistics; the export ships it", async () => {
  const { out } = await tinyRun(4);
  const ck = await readCheckpoint(out);
  const names = [...ck.tensors.keys()];
  assert(names.includes("match/proj"), "the full checkpoint keeps the matcher");
  const mean = ck.tensors.get("match/bn0.mean")!;
  assert(Math.max(...Array.from(mean.dataSync()).map(Math.abs)) > 0, "its running mean is set");
  const gen = await loadGenerator(out);
  await writeGeneratorCheckpoint(`${out}/gen`, gen.gan, {
    step: 2,
    epoch: 0,
    imagesSeen: 8,
    seconds: 1,
  }, ck.header.vocabulary);
  const shipped = await readCheckpoint(`${out}/gen`);
  assertEquals(
    [...shipped.tensors.keys()].filter((k) => k.startsWith("match/")).sort(),
    names.filter((k) => k.startsWith("match/")).sort(),
  );
  assertEquals(maxDiff(shipped.tensors.get("match/proj")!, ck.tensors.get("match/proj")!), 0);
  const exported = await loadGenerator(`${out}/gen`);
  assert(exported.gan.match, "the export loads with its matcher");
  tf.dispose([...ck.tensors.values(), ...shipped.tensors.values()]);
  disposeGenerator(gen);
  disposeGenerator(exported);
});

Deno.test("infer: best of 8 by default; one candidate draws the single-noise images", async () => {
  const { out, captions } = await tinyRun(4);
  const logs: string[] = [];
  const run = (candidates: number | undefined, dir: string) =>
    unwrap(
      infer({
        checkpoint: out,
        captions,
        out: `${out}/${dir}`,
        candidates,
        log: (l) => logs.push(l),
      }),
    );
  assertEquals((await run(undefined, "default")).candidates, 8);
  assert(logs.some((l) => /best of 8 noises per caption/.test(l)), logs.join("\n"));
  assertEquals((await run(1, "one")).candidates, 1);
  assertEquals((await run(4, "four")).candidates, 4);
  const read = (dir: string, id: number) => Deno.readFile(`${out}/${dir}/${inferenceName(id)}`);
  // One candidate: exactly the images of the seed's single noise, as before best-of-K.
  const gen = await loadGenerator(out);
  const caps = ["a red flower with round petals", "a yellow flower", "a blue flower"];
  const { zDim } = gen.gan.model;
  const rows = caps.map((caption, i) => ({ id: i + 1, caption }));
  const single = await drawPixels(gen, rows, { seed: 0 });
  const four = await drawPixels(gen, rows, { seed: 0, candidates: 4 });
  // Candidate k of caption id is captionNoise(0, id, k): drawn here by hand, one at a time.
  const all = await Promise.all(
    [0, 1, 2, 3].map((k) => generateImages(gen, caps, noiseRows(0, [1, 2, 3], k, zDim))),
  );
  disposeGenerator(gen);
  const same = (a: Uint8Array, b: Uint8Array) => a.every((v, i) => v === b[i]);
  assert(caps.every((_, i) => same(single[i], all[0][i])), "candidate 0 is the single noise");
  assert(
    four.every((img, i) => all.some((c) => same(img, c[i]))),
    "each pick is one of its candidates",
  );
  assert(four.some((img, i) => !same(img, single[i])), "the pick is not always the first");
  // infer wrote these very images: its files are their JPEGs, byte for byte.
  for (const [dir, images] of [["one", single], ["four", four]] as const) {
    for (const [i, rgb] of images.entries()) {
      assertEquals(await read(dir, i + 1), await encodeJpeg(rgb, 64), `${dir}: caption ${i + 1}`);
    }
  }
});

Deno.test("infer without a matcher: one noise per caption; more is a one-line error", async () => {
  const { out, captions } = await tinyRun(0);
  assertEquals((await unwrap(infer({ checkpoint: out, captions, out: `${out}/a` }))).candidates, 1);
  const result = await infer({ checkpoint: out, captions, out: `${out}/b`, candidates: 4 })();
  assert(result._tag === "Left");
  assertMatch(result.left.message, /keeps no image–text matcher, so it cannot pick the best of 4/);
  assertMatch(result.left.fix, /--candidates 1/);
});
