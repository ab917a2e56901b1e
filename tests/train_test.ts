import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { pretrainStepsFor, train, type TrainOptions } from "../pipeline/train.ts";
import {
  checkpointPath,
  disposeCheckpoint,
  readCheckpoint,
  restoreGan,
} from "../pipeline/io/checkpoint.ts";
import { PetalFailure } from "../pipeline/io/errors.ts";
import { Rng } from "../stages/rng.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import { createGan, disposeBatch, disposeGan, trainStep } from "../stages/train_step.ts";
import { hasShared, plainRecipe, randomBatch, SHARED, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

/** A deliberately tiny model so the loop tests take seconds. */
const tiny = { recipe: plainRecipe({ batchSize: 8, seed: 3 }) };

for (const loss of ["bce", "hinge", "wgan-gp"] as const) {
  Deno.test(`${loss}: live tensor count stays flat across training steps`, async () => {
    const cfg = modelConfig("small", 50);
    const gan = createGan(cfg, defaultTrainConfig({ loss, batchSize: 4 }), 1);
    const rng = new Rng(1);
    const counts: number[] = [];
    const losses = [];
    for (let step = 0; step < 4; step++) {
      const b = randomBatch(4, cfg.zDim, cfg.condDim, 50, rng);
      losses.push(await trainStep(gan, b, 0, step));
      disposeBatch(b);
      counts.push(tf.memory().numTensors);
    }
    // Step 1 creates the Adam slots; from then on nothing may accumulate.
    assertEquals(counts.slice(1), [counts[1], counts[1], counts[1]]);
    assert(
      losses.every((l) => Number.isFinite(l.d) && Number.isFinite(l.g)),
      JSON.stringify(losses),
    );
    disposeGan(gan);
  });
}

const csvRows = async (dir: string) =>
  (await Deno.readTextFile(`${dir}/losses.csv`)).trim().split("\n").slice(1).map((l) =>
    l.split(",")
  );

Deno.test("train() leaves no tensor behind, however many epochs (checkpoints) it runs", async () => {
  const data = await syntheticFixture(16, 2);
  const left: number[] = [];
  for (const epochs of [1, 3]) {
    const before = tf.memory().numTensors;
    const r = await train({ data, out: await Deno.makeTempDir(), ...tiny, epochs })();
    assert(r._tag === "Right", r._tag === "Left" ? r.left.message : "");
    assertEquals(r.right.progress.epoch, epochs);
    left.push(tf.memory().numTensors - before);
  }
  assertEquals(left, [0, 0]);
});

Deno.test("interrupted-and-resumed training gives the same losses as one run", async () => {
  const data = await syntheticFixture(24, 2);
  const base = await Deno.makeTempDir();
  const opts = (out: string, extra: Partial<TrainOptions>): TrainOptions => ({
    data,
    out,
    ...tiny,
    ...extra,
  });
  const whole = await train(opts(`${base}/whole`, { maxSteps: 5 }))();
  assert(whole._tag === "Right", JSON.stringify(whole));
  // Stop after 2 steps (mid-epoch: 3 steps per epoch), then resume to 5.
  const first = await train(opts(`${base}/split`, { maxSteps: 2 }))();
  assert(first._tag === "Right");
  assertEquals(first.right.progress.step, 2);
  const second = await train(opts(`${base}/split`, { maxSteps: 5, resume: true }))();
  assert(second._tag === "Right");
  assertEquals(second.right.progress.step, 5);
  const a = await csvRows(`${base}/whole`);
  const b = await csvRows(`${base}/split`);
  assertEquals(a.length, 5);
  assertEquals(b.map((r) => r[0]), ["1", "2", "3", "4", "5"]);
  // Bit for bit: the log's six significant digits of d, g and KL agree on every row.
  assertEquals(b.map((r) => r.slice(2, 5)), a.map((r) => r.slice(2, 5)));
  // What a run leaves: checkpoint, loss log, sample grids.
  const files = [...Deno.readDirSync(`${base}/whole/samples`)].map((e) => e.name).sort();
  assertEquals(files, ["epoch_0001.png", "latest.png"]);
  const ck = await readCheckpoint(`${base}/whole`);
  // The EMA G, its standing statistics included, is that of the uninterrupted run.
  const split = await readCheckpoint(`${base}/split`);
  const ema = (c: typeof ck) =>
    [...c.tensors].filter(([k]) => k.startsWith("ema/")).map(([k, t]) => [k, [...t.dataSync()]]);
  assertEquals(ema(split), ema(ck));
  disposeCheckpoint(split);
  assertEquals(ck.header.progress.step, 5);
  assertEquals(ck.header.format, "petal-checkpoint");
  assert(
    ck.tensors.has("ema/fc.w") && ck.tensors.has("opt.d/d/out.w/m"),
    [...ck.tensors.keys()].slice(0, 5).join(),
  );
  disposeCheckpoint(ck);
});

Deno.test("a checkpoint of another architecture fails with a clear message", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const r = await train({ data, out, ...tiny, maxSteps: 1 })();
  assert(r._tag === "Right");
  const ck = await readCheckpoint(out);
  const other = modelConfig("reed", ck.header.model.vocabSize);
  const err = await assertRejects(() => restoreGan(ck, checkpointPath(out), other));
  assert(err instanceof PetalFailure);
  assertMatch(err.message, /checkpoint is small .* this run wants reed/);
  disposeCheckpoint(ck);
  const reed = plainRecipe({ size: "reed", batchSize: 8, seed: 3 });
  const resumed = await train({ data, out, recipe: reed, resume: true, maxSteps: 2 })();
  assert(resumed._tag === "Left");
  assertEquals(resumed.left.kind, "BadArgument");
  assertMatch(resumed.left.message, /keeps the checkpoint's recipe.*\(size: small, not reed\)/);
});

Deno.test("a resume keeps the checkpoint's up-sampling (nearest) and continues its steps", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const nearest = plainRecipe({ batchSize: 8, seed: 3, upsample: "nearest" });
  const first = await train({ data, out, recipe: nearest, maxSteps: 1 })();
  assert(first._tag === "Right", first._tag === "Left" ? first.left.message : "");
  const resumed = await train({ data, out, resume: true, maxSteps: 2 })();
  assert(resumed._tag === "Right", resumed._tag === "Left" ? resumed.left.message : "");
  assertEquals(resumed.right.progress.step, 2);
  const ck = await readCheckpoint(out);
  assertEquals(ck.header.model.upsample, "nearest");
  assertEquals(ck.tensors.get("g/up0.w")?.shape.slice(0, 2), [3, 3]);
  disposeCheckpoint(ck);
});

Deno.test("a non-finite loss stops with the step named and keeps the last good checkpoint", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const ok = await train({ data, out, ...tiny, maxSteps: 2 })();
  assert(ok._tag === "Right");
  const before = await Deno.readFile(checkpointPath(out));
  // Adam's step is about lr whatever the gradient: 1e30 overflows the weights at once.
  const blown = await train({
    data,
    out,
    resume: true,
    maxSteps: 6,
    recipe: plainRecipe({ batchSize: 8, seed: 3, lrD: 1e30, lrG: 1e30 }),
  })();
  assert(blown._tag === "Left");
  assertMatch(blown.left.message, /loss is not finite at step [2-5]/);
  assertEquals(await Deno.readFile(checkpointPath(out)), before);
});

Deno.test("not a checkpoint: one clear error", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/checkpoint.petal`, "hello");
  const err = await assertRejects(() => readCheckpoint(dir));
  assertMatch(err.message, /checkpoint\.petal: not a petal checkpoint/);
  const none = await assertRejects(() => readCheckpoint(`${dir}/nowhere`));
  assertMatch(none.message, /no checkpoint here — run `deno task train --out DIR` first/);
});

Deno.test({
  name: "real data: --dictionary makes the tokenizer's ids the task's own",
  ignore: !hasShared,
  fn: async () => {
    const data = await syntheticFixture(16, 2);
    const out = await Deno.makeTempDir();
    const r = await train({
      data,
      out,
      ...tiny,
      maxSteps: 1,
      dictionary: `${SHARED}competition/dictionary`,
    })();
    assert(r._tag === "Right", r._tag === "Left" ? r.left.message : "");
    const ck = await readCheckpoint(out);
    const vocab = ck.header.vocabulary;
    assertEquals([vocab[5427], vocab[5428]], ["<PAD>", "<RARE>"]);
    assertEquals(ck.header.model.vocabSize, 5429);
    disposeCheckpoint(ck);
  },
});

Deno.test("contrastive pre-training of the text encoder lowers its loss", async () => {
  const data = await syntheticFixture(32, 2);
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  const r = await train({
    data,
    out,
    recipe: plainRecipe({ batchSize: 8, seed: 3, pretrainSteps: 12 }),
    maxSteps: 1,
    log: (l) => lines.push(l),
  })();
  assert(r._tag === "Right", r._tag === "Left" ? r.left.message : "");
  const line = lines.find((l) => l.startsWith("text encoder pre-trained"));
  assert(line, lines.join("\n"));
  const [first, last] = line.match(/loss ([\d.]+) → ([\d.]+)/)!.slice(1).map(Number);
  assert(last < first, line);
  // 32 images: at most 60 passes of one batch, so 60 of the 100 steps asked.
  assertEquals(pretrainStepsFor(100, 32, 32), 60);
  assertEquals(pretrainStepsFor(500, 32, 8), 240, "60 passes of 4 batches of 8");
  assertEquals(pretrainStepsFor(100, 32, 64), 60, "a batch larger than the set is the set");
  assertEquals([pretrainStepsFor(1500, 6627, 32), pretrainStepsFor(0, 6627, 32)], [1500, 0]);
  assertEquals(pretrainStepsFor(5000, 6627, 128), 3120, "60 passes of 52 batches of 128");
});
