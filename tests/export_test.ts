/**
 * The generator-only checkpoint (`deno task export`): text encoder + EMA G + vocabulary,
 * no D and no optimiser state; it draws the same images as the full checkpoint, is
 * several times smaller, and refuses to resume.
 */
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runTask } from "./fixtures.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import { createGan, disposeGan, embedCaptions, sample } from "../stages/train_step.ts";
import {
  readCheckpoint,
  restoreGan,
  writeCheckpoint,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import {
  candidatesFor,
  disposeGenerator,
  generateImages,
  loadGenerator,
} from "../pipeline/infer.ts";
import { installFusedRoutes } from "../pipeline/backends/fused_routes.ts";

// The models run on tfjs's default cpu backend here, without backend.ts: give it the
// kernels of stages/fused.ts, as backend.ts does for every backend when it loads.
installFusedRoutes();

const draw = (gan: ReturnType<typeof createGan>) =>
  tf.tidy(() => {
    const ids = tf.tensor2d(Int32Array.from({ length: 40 }, (_, i) => i % 7), [2, 20], "int32");
    return Array.from(
      sample(gan, tf.ones([2, gan.model.zDim]), embedCaptions(gan, ids, 0)).dataSync(),
    );
  });

for (const arch of ["dcgan", "dfgan"] as const) {
  Deno.test(`${arch}: the generator-only checkpoint draws as the full one, and is smaller`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "petal-export-" });
    const gan = createGan(modelConfig("small", 20, arch), defaultTrainConfig(), 4);
    // Make the EMA differ from G, so that a mix-up would show.
    for (const v of Object.values(gan.ema)) if (v.trainable === false) v.assign(tf.mul(v, 0.5));
    const progress = { step: 3, epoch: 0, imagesSeen: 96, seconds: 1 };
    const vocab = ["<PAD>", "<RARE>", ...Array.from({ length: 18 }, (_, i) => `w${i}`)];
    await writeCheckpoint(`${dir}/full`, gan, progress, vocab);
    await writeGeneratorCheckpoint(`${dir}/gen`, gan, progress, vocab);
    const full = (await Deno.stat(`${dir}/full/checkpoint.petal`)).size;
    const small = (await Deno.stat(`${dir}/gen/checkpoint.petal`)).size;
    assert(small < full / 2, `${small} vs ${full} bytes`);
    const gen = await loadGenerator(`${dir}/gen`);
    assertEquals(draw(gen.gan), draw(gan));
    assertEquals(gen.vocab.size, 20);
    disposeGenerator(gen);
    const ck = await readCheckpoint(`${dir}/gen`);
    let message = "";
    await restoreGan(ck, `${dir}/gen`, ck.header.model).catch((e) => (message = e.message));
    assertMatch(message, /generator-only checkpoint .* cannot resume/);
    tf.dispose([...ck.tensors.values()]);
    disposeGan(gan);
  });
}

Deno.test("deno task export writes a generator-only checkpoint of a run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-export-" });
  const gan = createGan(modelConfig("small", 20), defaultTrainConfig(), 4);
  await writeCheckpoint(
    `${dir}/run`,
    gan,
    { step: 1, epoch: 0, imagesSeen: 32, seconds: 1 },
    [
      ...Array(20).keys(),
    ].map(String),
  );
  disposeGan(gan);
  const r = await runTask("export.ts", ["--checkpoint", `${dir}/run`, "--out", `${dir}/model`]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /wrote .*model\/checkpoint\.petal \([\d.]+ MB; step 1\)/);
  assertEquals((await readCheckpoint(`${dir}/model`)).header.generatorOnly, true);
});

Deno.test("the shipped model: generator-only, at most 5 MB, the default recipe with its matcher, draws flowers' colours", async () => {
  const path = new URL("../models/flowers/checkpoint.petal", import.meta.url).pathname;
  assert((await Deno.stat(path)).size <= 5 * 1024 * 1024, "at most 5 MB");
  const ck = await readCheckpoint(path);
  const { header } = ck;
  tf.dispose([...ck.tensors.values()]);
  assertEquals(header.generatorOnly, true);
  assertEquals([header.model.size, header.model.upsample, header.train.freezeText], [
    "small",
    "nearest",
    true,
  ]);
  assert(header.vocabulary.length > 4000, "the real vocabulary");
  assert(![...ck.tensors.keys()].some((k) => k.startsWith("d/") || k.startsWith("opt.")));
  assert(ck.tensors.has("match/proj"), "it keeps its matcher: infer draws the best of 8");
  const gen = await loadGenerator(path);
  assertEquals(candidatesFor(gen, path), E.right(8));
  const noise = new Float32Array(2 * gen.gan.model.zDim); // the mean noise
  const [yellow, pink] = await generateImages(gen, [
    "this flower has long yellow petals with a black center",
    "the petals of this flower are pink with a short stigma",
  ], noise);
  disposeGenerator(gen);
  // Mean R, G, B of the middle 32×32: yellow is green-and-red over blue, pink red over green.
  const mean = (img: Uint8Array, c: number) => {
    let sum = 0;
    for (let y = 16; y < 48; y++) for (let x = 16; x < 48; x++) sum += img[(y * 64 + x) * 3 + c];
    return sum / 1024;
  };
  assert(mean(yellow, 1) > mean(yellow, 2) + 40, "yellow: G well above B");
  assert(mean(pink, 0) > mean(pink, 1) + 20, "pink: R above G");
});
