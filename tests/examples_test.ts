/**
 * The README's "Composing your own pipeline" scripts, run as a user runs them: a custom
 * training loop (hinge loss, samples every N steps) and a custom infer pipeline
 * (captions CSV → images → score).
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { disposeCheckpoint, readCheckpoint } from "../pipeline/io/checkpoint.ts";
import { trainEvaluator } from "../pipeline/evaluator.ts";
import { infer } from "../pipeline/infer.ts";
import { syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const example = async (name: string, args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../docs/examples/${name}`, import.meta.url).pathname, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  assertEquals(r.code, 0, `${name}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

Deno.test("docs/examples: a custom loop, then a custom infer pipeline on its checkpoint", async () => {
  const data = await syntheticFixture(16, 4);
  const work = await Deno.makeTempDir({ prefix: "petal-examples-" });
  const run = `${work}/run`;
  const out = await example("custom_train.ts", [data, run, "6", "3"]);
  assertMatch(out, /step 3: d=[\d.]+ g=-?[\d.]+\nstep 6: /);
  const log = (await Deno.readTextFile(`${run}/losses.csv`)).trim().split("\n");
  assertEquals(log.length, 1 + 6);
  for (const f of ["step_000003.png", "step_000006.png"]) await Deno.stat(`${run}/samples/${f}`);
  const ck = await readCheckpoint(run);
  assertEquals([ck.header.train.loss, ck.header.progress.step], ["hinge", 6]);
  disposeCheckpoint(ck);

  const evaluator = `${work}/eval`;
  await unwrap(trainEvaluator({ data, out: evaluator, epochs: 1, batchSize: 8 }));
  const inferred = await example("custom_infer.ts", [
    run,
    `${data}/test_captions.csv`,
    evaluator,
    `${data}/test_images`,
    `${work}/infer`,
  ]);
  assertMatch(inferred, /images: 4, mean score: \d+\.\d{4}/);
  const csv = (await Deno.readTextFile(`${work}/infer/score.csv`)).trim().split("\n");
  assertEquals(csv[0], "score,id");
  assertEquals(csv.length, 1 + 4);
  assert(csv.slice(1).every((l) => Number.isFinite(Number(l.split(",")[0]))));
  // The example draws through infer's path: the same JPEGs, byte for byte.
  await unwrap(
    infer({ checkpoint: run, captions: `${data}/test_captions.csv`, out: `${work}/task` }),
  );
  const names = [...Deno.readDirSync(`${work}/infer/images`)].map((e) => e.name).sort();
  assertEquals(names.length, 4);
  for (const name of names) {
    assertEquals(
      await Deno.readFile(`${work}/infer/images/${name}`),
      await Deno.readFile(`${work}/task/${name}`),
      name,
    );
  }
});
