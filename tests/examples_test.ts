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

Deno.test("docs/examples/train_and_resume.ts: the default recipe from a script, then its resume", async () => {
  const data = await syntheticFixture(16, 1);
  const out = `${await Deno.makeTempDir({ prefix: "petal-script-" })}/run`;
  const printed = await example("train_and_resume.ts", [data, out]);
  assertMatch(printed, /^trained gan-int-cls to step 20: .*checkpoint\.petal\n/);
  assertMatch(printed, /\nresumed to step 40 \(steps\): /);
  const lines = (await Deno.readTextFile(`${out}/losses.csv`)).trim().split("\n");
  assertEquals(lines.length, 1 + 40, "one loss row per step, across the resume");
  const ck = await readCheckpoint(out);
  assertEquals([ck.header.recipe?.name, ck.header.model.upsample], ["gan-int-cls", "nearest"]);
  disposeCheckpoint(ck);
  // Twelve lines of code: the brief's "a script of ten lines", give or take its logging.
  const code =
    (await Deno.readTextFile(new URL("../docs/examples/train_and_resume.ts", import.meta.url)))
      .split("\n").filter((l) => l.trim() && !/^\s*(\/\*\*|\*)/.test(l));
  assert(code.length <= 12, `${code.length} lines`);
});
