/**
 * Data parallelism (`--replicas N`, pipeline/replicas.ts): the exchange's mean, a step
 * over replicas with the same part twice equal bit for bit to one step on that part, the
 * batch cut into parts from the step's one stream, a run that trains and resumes with its
 * workers, and the main thread's tensors counted across replica steps.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { plainRecipe, randomBatch, syntheticFixture } from "./fixtures.ts";
import { Exchange, exchangeBuffer, gradientMean } from "../pipeline/allreduce.ts";
import { fromWire, startReplicas, toWire } from "../pipeline/replicas.ts";
import {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  type Gan,
  namedVariables,
  trainStep,
} from "../stages/train_step.ts";
import { modelConfig } from "../stages/config.ts";
import { Rng } from "../stages/rng.ts";
import { prepareTraining, replicaCount, train } from "../pipeline/train.ts";
import { batchAt, batchPartsAt, disposeRun, trainSteps } from "../pipeline/steps.ts";
import { formatError, unwrap } from "../pipeline/io/errors.ts";
import { recipeFromFlags } from "../tasks/recipe.ts";
import * as E from "fp-ts/Either";
import { readCheckpoint } from "../pipeline/io/checkpoint.ts";
import { useBackend } from "../pipeline/backends/backend.ts";

await useBackend("auto");

Deno.test("exchange: one replica's mean is its values; too many values, a failure and silence throw", () => {
  const one = new Exchange(exchangeBuffer(1, 4), 0, 1);
  assertEquals([...one.mean([Float32Array.of(1, 2), Float32Array.of(3)])[1]], [3]);
  assertThrows(() => one.mean([new Float32Array(5)]), /5 values, the buffer holds 4/);
  assertThrows(() => new Exchange(exchangeBuffer(2, 4), 2, 2), /rank 2 of 2/);
  const lonely = new Exchange(exchangeBuffer(2, 4), 0, 2, 50);
  assertThrows(() => lonely.barrier(), /no word from the other replicas in 50 ms/);
  const buffer = exchangeBuffer(2, 4);
  new Exchange(buffer, 1, 2).fail();
  assertThrows(() => new Exchange(buffer, 0, 2).barrier(), /another replica failed/);
});

Deno.test("exchange: gradientMean gives each variable its gradient's mean, by name and shape", () => {
  const v = tf.variable(tf.zeros([2, 2]), true, "replica-test/v");
  const grads = { [v.name]: tf.tensor2d([[1, 2], [3, 4]]) };
  const out = gradientMean(new Exchange(exchangeBuffer(1, 4), 0, 1))(grads, [v]);
  assertEquals(out[v.name].shape, [2, 2]);
  assertEquals([...out[v.name].dataSync()], [1, 2, 3, 4]);
  tf.dispose([v, grads[v.name], out[v.name]]);
});

Deno.test("wire: a batch and its DiffAugment draws cross to a worker's form and back unchanged", () => {
  const b = randomBatch(3, 8, 4, 50, new Rng(1));
  const back = fromWire(structuredClone(toWire(b))) as BatchTensors;
  for (const [k, t] of Object.entries(b) as [keyof BatchTensors, tf.Tensor][]) {
    const u = back[k] as tf.Tensor;
    assertEquals([u.dtype, u.shape], [t.dtype, t.shape], k);
    assertEquals([...u.dataSync()], [...t.dataSync()], k);
  }
  disposeBatch(b);
  disposeBatch(back);
});

const smallGan = (replicas: number): Gan =>
  createGan(modelConfig("small", 60), plainRecipe({ replicas, batchSize: 8 }).train, 3);

const weights = (gan: Gan) =>
  new Map([...namedVariables(gan)].map(([k, v]) => [k, v.dataSync().slice()]));

Deno.test("replicas: two replicas given the same part step exactly as one thread on it", async () => {
  const alone = smallGan(1);
  const paired = smallGan(2);
  const replicas = await startReplicas(paired, 2);
  const counts: number[] = [];
  try {
    for (let step = 0; step < 3; step++) {
      const part = () => randomBatch(4, alone.model.zDim, alone.model.condDim, 60, new Rng(step));
      const [a, p, q] = [part(), part(), part()];
      const one = await trainStep(alone, a, 1, step);
      const two = await replicas.step(paired, [p, q], 1, step);
      assertEquals([two.d, two.g, two.kl], [one.d, one.g, one.kl], `losses at step ${step}`);
      [a, p, q].forEach(disposeBatch);
      counts.push(tf.memory().numTensors);
    }
    // The EMA included; batch-norm running statistics are the main thread's own.
    const [wa, wp] = [weights(alone), weights(paired)];
    for (const [name, values] of wa) assertEquals(wp.get(name), values, name);
    // Adam's moments appear with the first update; after it, no growth.
    assertEquals(counts, [counts[0], counts[0], counts[0]], "the main thread's tensors");
  } finally {
    replicas.close();
    disposeGan(alone);
    disposeGan(paired);
  }
});

Deno.test("replicas: the batch's parts come from the step's one stream; one part is the batch", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const run = await unwrap(prepareTraining({
    data,
    out,
    recipe: plainRecipe({ batchSize: 8 }),
  }));
  try {
    const whole = batchAt(run, 3);
    const [one] = batchPartsAt(run, 3, 1);
    assertEquals([...one.real.dataSync()], [...whole.real.dataSync()]);
    const parts = batchPartsAt(run, 3, 2);
    assertEquals(parts.map((p) => p.real.shape[0]), [4, 4]);
    // The first part draws first from the same stream: its crops are the batch's first four.
    assertEquals(
      [...parts[0].real.dataSync()].slice(0, 100),
      [...whole.real.dataSync()].slice(0, 100),
    );
    for (const p of parts) {
      const partners = [...p.partners.dataSync()];
      assert(partners.every((i) => i >= 0 && i < 4), `partners within the part: ${partners}`);
    }
    [whole, one, ...parts].forEach(disposeBatch);
    const asking = (replicas: number) => ({ ...run.gan.train, replicas });
    assertEquals(replicaCount(run.gan.train, 8), 1);
    assertEquals(replicaCount(asking(3), 32), 3);
    assertEquals(replicaCount(asking(8), 32), 4, "≥ 8 images a part");
    assertEquals(replicaCount(asking(2), 8), 1, "8 images: one part");
    assertEquals(replicaCount(asking(3), 32, "webgpu"), 1);
  } finally {
    disposeRun(run);
  }
});

Deno.test("replicas: a run trains on two, says so, keeps `replicas` in its checkpoint and resumes", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  const r = plainRecipe({ batchSize: 16, replicas: 2 });
  const first = await unwrap(
    train({ data, out, recipe: r, maxSteps: 3, log: (l) => lines.push(l) }),
  );
  assertEquals(first.stoppedBy, "steps");
  const said = lines.filter((l) => l.startsWith("data-parallel"));
  assertEquals(said.length, 1, lines.join("\n"));
  assert(/^data-parallel: 2 replicas, \d+ thread\(s\) each$/.test(said[0]), said[0]);
  const ck = await readCheckpoint(out);
  assertEquals(ck.header.train.replicas, 2);
  assertEquals(ck.header.progress.step, 3);
  const again = await unwrap(train({ data, out, recipe: r, resume: true, maxSteps: 5 }));
  assertEquals(again.stoppedBy, "steps");
  assertEquals((await readCheckpoint(out)).header.progress.step, 5);
  // Losses from the workers' steps are finite, as the log says.
  const log = await Deno.readTextFile(`${out}/losses.csv`);
  assert(
    log.trim().split("\n").slice(1).every((l) => l.split(",").every((x) => x.trim() !== "NaN")),
  );
});

Deno.test("replicas: a run's loop frees every tensor of its steps on the main thread", async () => {
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const run = await unwrap(prepareTraining({
    data,
    out,
    recipe: plainRecipe({ batchSize: 16, replicas: 2 }),
  }));
  try {
    assertEquals(run.replicas?.size, 2);
    const counts: number[] = [];
    for await (const s of trainSteps(run, { maxSteps: 4 })) {
      assert(Number.isFinite(s.losses.d) && Number.isFinite(s.losses.g));
      counts.push(tf.memory().numTensors);
    }
    // Adam's moments appear with the first update; from the second step on, no growth.
    assertEquals(counts.slice(1), [counts[1], counts[1], counts[1]]);
  } finally {
    disposeRun(run);
  }
});

Deno.test("replicas: --ada trains on one (the flag says so); a recipe asking both is a one-line error", async () => {
  assertEquals(recipeFromFlags({ ada: 0.6 }).train.replicas, 1);
  assertEquals(recipeFromFlags({}).train.replicas, 2, "two by default");
  const data = await syntheticFixture(16, 2);
  const out = await Deno.makeTempDir();
  const got = await train({
    data,
    out,
    maxSteps: 1,
    recipe: plainRecipe({ batchSize: 16, diffAugment: true, adaTarget: 0.6, replicas: 2 }),
  })();
  assert(E.isLeft(got));
  assertMatch(
    formatError(got.left),
    /--ada 0\.6 moves p by one thread's real images.*add --replicas 1/,
  );
});

Deno.test("replicas: a script that keeps its model after training on two exits (its workers stop)", async () => {
  const data = await syntheticFixture(16, 2);
  const dir = await Deno.makeTempDir();
  const script = `${dir}/keep.ts`;
  const mod = new URL("../mod.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { recipe, train, unwrap, useBackend } from "${mod}";
await useBackend("auto");
const r = await unwrap(train({ data: "${data}", out: "${dir}/run", maxSteps: 2, keepModel: true,
  recipe: recipe("gan-int-cls", { pretrainSteps: 0, batchSize: 16, replicas: 2 }) }));
console.log("kept", r.model !== undefined);
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", new URL("../deno.json", import.meta.url).pathname, script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, `${text}\n${new TextDecoder().decode(out.stderr)}`);
  assertMatch(text, /kept true/);
});
