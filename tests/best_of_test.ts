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
  CLIP_LEVEL,
  clippedShare,
  initMatcher,
  matcherStatistics,
  matchFeatures,
  matchSimilarity,
  MAX_CLIPPED,
  PICK_TEMPERATURE,
  pickBest,
  pickScores,
  RIVAL_COUNT,
  RIVALS,
  rivals,
  setRivals,
} from "../stages/match.ts";
import { embedCaptions, sample } from "../stages/train_step.ts";
import { tokenizeAll } from "../stages/tokenize.ts";
import { toBytes } from "../pipeline/io/images.ts";
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

/** `x` [N, 64, 64, 3] with its first `rows` rows white (every channel 1). */
const whiteTop = (x: tf.Tensor4D, rows: number): tf.Tensor4D =>
  tf.tidy(() =>
    tf.concat([tf.onesLike(x.slice([0, 0], [-1, rows])), x.slice([0, rows])], 1) as tf.Tensor4D
  );

Deno.test("pickBest: a candidate with more than MAX_CLIPPED of its pixels clipped is passed over, unless all are", () => {
  const m = initMatcher(16, 7);
  const sentences = tf.randomNormal([8, 16], 0, 1, "float32", 4) as tf.Tensor2D;
  const plain = [0, 1, 2].map((k) =>
    tf.randomUniform([8, 64, 64, 3], -1, 1, "float32", 40 + k) as tf.Tensor4D
  );
  const clipped = whiteTop(plain[1], 13); // 13 of 64 rows: 20% of the pixels
  const shareOf = (x: tf.Tensor4D) => tf.tidy(() => Array.from(clippedShare(x).dataSync()));
  const share = shareOf(clipped);
  assert(share.every((v) => v > MAX_CLIPPED && v < 0.25), `clipped shares ${share}`);
  assert(shareOf(plain[0]).every((v) => v < 0.01), "noise is not");
  assert(CLIP_LEVEL < 1, "a channel at 1 counts as clipped");
  const candidates = [plain[0], clipped, plain[2]];
  const stacked = tf.concat(candidates) as tf.Tensor4D;
  const scores = candidates.map((c) =>
    tf.tidy(() => Array.from(pickScores(m, c, sentences).dataSync()))
  );
  const argmax = (ks: number[], i: number) =>
    ks.reduce((a, k) => scores[k][i] > scores[a][i] ? k : a);
  const rawBest = [...Array(8).keys()].map((i) => argmax([0, 1, 2], i));
  assert(rawBest.includes(1), `the clipped candidate ranks first somewhere: ${rawBest}`);
  const best = pickBest(m, stacked, sentences);
  for (let i = 0; i < 8; i++) {
    const k = argmax([0, 2], i);
    assertEquals(maxDiff(best.slice(i, 1), candidates[k].slice(i, 1)), 0, `caption ${i}: ${k}`);
  }
  // Every candidate clipped: the matcher's order among them, as without the cap.
  const allClipped = candidates.map((c) => whiteTop(c, 13));
  const allScores = allClipped.map((c) =>
    tf.tidy(() => Array.from(pickScores(m, c, sentences).dataSync()))
  );
  const stackedClipped = tf.concat(allClipped) as tf.Tensor4D;
  const bestClipped = pickBest(m, stackedClipped, sentences);
  for (let i = 0; i < 8; i++) {
    const k = [0, 1, 2].reduce((a, j) => allScores[j][i] > allScores[a][i] ? j : a);
    assertEquals(maxDiff(bestClipped.slice(i, 1), allClipped[k].slice(i, 1)), 0, `all: ${i}`);
  }
  tf.dispose([best, bestClipped, stacked, stackedClipped, sentences, clipped, ...plain]);
  tf.dispose([...allClipped, ...Object.values(m)]);
});

Deno.test("pickScores: the own caption's log-probability against the rivals; the cosine without", () => {
  const m = initMatcher(16, 6);
  const sentences = tf.randomNormal([4, 16], 0, 1, "float32", 5) as tf.Tensor2D;
  const images = tf.randomUniform([4, 64, 64, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const scores = () => tf.tidy(() => Array.from(pickScores(m, images, sentences).dataSync()));
  const cosines = tf.tidy(() => Array.from(matchSimilarity(m, images, sentences).dataSync()));
  assertEquals(scores(), cosines, "no rivals (an older checkpoint): the cosine");
  const tensors = tf.memory().numTensors;
  const given = tf.randomNormal([5, 16], 0, 1, "float32", 8) as tf.Tensor2D;
  setRivals(m, given);
  given.dispose(); // the matcher keeps its own copy
  const kept = rivals(m)!;
  assertEquals([kept.shape, kept.trainable], [[5, 16], false]);
  const norms = tf.tidy(() => Array.from(tf.norm(kept, 2, 1).dataSync()));
  assert(norms.every((n) => Math.abs(n - 1) < 1e-5), `rows of length 1: ${norms}`);
  // By hand: unit image vectors against the unit own sentence and the rivals.
  const unitRows = (t: tf.Tensor2D) =>
    tf.tidy(() => tf.div(t, tf.norm(t, 2, 1, true)).arraySync() as number[][]);
  const features = tf.tidy(() => matchFeatures(m, images, false));
  const f = unitRows(features);
  features.dispose();
  const own = unitRows(sentences), others = kept.arraySync() as number[][];
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
  const expected = f.map((fi, i) => {
    const logits = [...others.map((r) => dot(fi, r)), dot(fi, own[i])].map((c) =>
      c / PICK_TEMPERATURE
    );
    const top = Math.max(...logits);
    return logits.at(-1)! - top - Math.log(logits.reduce((s, l) => s + Math.exp(l - top), 0));
  });
  const got = scores();
  assert(got.every((g, i) => Math.abs(g - expected[i]) < 1e-4), `${got} vs ${expected}`);
  assert(got.every((g) => g < 0), "a log-probability");
  // Set again with another count: replaced, nothing left behind.
  const fewer = tf.randomNormal([3, 16], 0, 1, "float32", 9) as tf.Tensor2D;
  setRivals(m, fewer);
  fewer.dispose();
  assertEquals(rivals(m)!.shape, [3, 16]);
  assertEquals(tf.memory().numTensors, tensors + 1, "one rivals variable");
  tf.dispose([sentences, images, ...Object.values(m)]);
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
  const kept = ck.tensors.get(`match/${RIVALS}`)!;
  assertEquals(kept.shape, [RIVAL_COUNT, 128], "its rivals: training captions' sentence vectors");
  const norms = tf.tidy(() => Array.from(tf.norm(kept, 2, 1).dataSync()));
  assert(norms.every((n) => Math.abs(n - 1) < 1e-4), "each of length 1");
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
  assertEquals(maxDiff(rivals(exported.gan.match)!, kept), 0, "and its rivals");
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

Deno.test("several guidance scales: each caption keeps the matcher's pick of every noise at every scale", async () => {
  const { out } = await tinyRun(4);
  const gen = await loadGenerator(out);
  const { gan, vocab } = gen;
  const { zDim, seqLen } = gan.model;
  const caps = ["a red flower with round petals", "a yellow flower", "a blue flower"];
  const rows = caps.map((caption, i) => ({ id: i + 1, caption }));
  const picked = await drawPixels(gen, rows, { seed: 0, candidates: 2, guidance: [1, 2] });
  // By hand: noise k of each caption at each scale, every image ranked by pickScores.
  const per = 64 * 64 * 3;
  const drawn = [1, 2].flatMap((g) =>
    [0, 1].map((k) =>
      tf.tidy(() => {
        const ids = tf.tensor2d(tokenizeAll(vocab, caps, seqLen), [3, seqLen], "int32");
        const text = embedCaptions(gan, ids, vocab.padId);
        const z = tf.tensor2d(noiseRows(0, [1, 2, 3], k, zDim), [3, zDim]);
        const images = sample(gan, z, text, g);
        return {
          pixels: images.dataSync() as Float32Array,
          scores: Array.from(pickScores(gan.match!, images, text).dataSync()),
        };
      })
    )
  );
  for (const [i, image] of picked.entries()) {
    const ranked = [...drawn].sort((a, b) => b.scores[i] - a.scores[i]);
    const [first, second] = ranked;
    const bytes = (c: typeof first) => toBytes(c.pixels.subarray(i * per, (i + 1) * per));
    const tie = first.scores[i] - second.scores[i] < 1e-5;
    const same = (a: Uint8Array, b: Uint8Array) => a.every((v, j) => v === b[j]);
    assert(
      same(image, bytes(first)) || (tie && same(image, bytes(second))),
      `caption ${i + 1}: the best of 4 candidates (scores ${drawn.map((c) => c.scores[i])})`,
    );
  }
  // One scale, as a list or a number: the same drawing.
  const listed = await drawPixels(gen, rows, { seed: 0, candidates: 2, guidance: [1.5] });
  const plain = await drawPixels(gen, rows, { seed: 0, candidates: 2, guidance: 1.5 });
  assertEquals(listed, plain);
  disposeGenerator(gen);
});
