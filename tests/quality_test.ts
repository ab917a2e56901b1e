/**
 * The quality loop on the synthetic set with a tiny budget: it never trains on the
 * evaluator's held-out images, the same seed and --steps give the same numbers, the
 * ledger gets one row per run under its baselines, and a missing evaluator is one line.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runTask, syntheticFixture } from "./fixtures.ts";
import { trainEvaluator } from "../pipeline/evaluator.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { heldOutCaptions, runQuality } from "../pipeline/quality.ts";
import { infer, inferenceName } from "../pipeline/infer.ts";
import { appendRun, emptyLedger, gridName, runRow, writeBaselines } from "../pipeline/ledger.ts";
import { recipeSettings } from "../tasks/recipe.ts";
import { useBackend } from "../pipeline/backends/backend.ts";

await useBackend("auto");
const work = await Deno.makeTempDir({ prefix: "petal-quality-" });

/** A synthetic set and a one-epoch evaluator on it, made once for the file. */
const setup = (async () => {
  const data = await syntheticFixture(48, 4);
  const evaluator = `${work}/eval`;
  await unwrap(trainEvaluator({ data, out: evaluator, epochs: 1, batchSize: 8 }));
  return { data, evaluator };
})();

Deno.test("quality: held-out images are left out; same seed and steps, same numbers", async () => {
  const { data, evaluator } = await setup;
  const manifest = JSON.parse(await Deno.readTextFile(`${evaluator}/evaluator.json`));
  const { held, training } = await unwrap(heldOutCaptions(data, manifest.heldOutIds));
  assert(held.length > 0 && training.length + held.length === 48);
  assert(training.every((t) => !manifest.heldOutIds.includes(t.id)));
  // The default recipe (pre-trained φ, nearest up-sampling) and DF-GAN, each run twice.
  for (const name of ["gan-int-cls", "dfgan"] as const) {
    await sameNumbersTwice(name, data, evaluator, held, training.length);
  }
});

async function sameNumbersTwice(
  name: "gan-int-cls" | "dfgan",
  data: string,
  evaluator: string,
  held: readonly { id: number; caption: string }[],
  trainImages: number,
) {
  const recipe = recipeSettings({ recipe: name, size: "small", batch: 4, seed: 7 });
  const run = (out: string) =>
    unwrap(runQuality({
      data,
      evaluator,
      out: `${work}/${name}-${out}`,
      maxSteps: 2,
      size: recipe.size,
      arch: recipe.arch,
      upsample: recipe.upsample,
      train: recipe.train,
      pretrainSteps: recipe.pretrainSteps,
      cacheDir: `${work}/cache`,
    }));
  const a = await run("a");
  const b = await run("b");
  assertEquals(a.steps, 2);
  assertEquals(a.trainImages, trainImages);
  assertEquals(a.summary.images, held.length);
  assertEquals(a.summary.ids, held.map((h) => h.id).sort((x, y) => x - y));
  for (const key of ["meanScore", "meanCosine", "inceptionScore", "fid", "rPrecision"] as const) {
    assertEquals(a.summary[key], b.summary[key], key);
  }
  assertEquals(
    await Deno.readFile(`${work}/${name}-a/inference/${inferenceName(held[0].id)}`),
    await Deno.readFile(`${work}/${name}-b/inference/${inferenceName(held[0].id)}`),
  );
  await Deno.stat(a.gridPath);
  // One drawing path: `deno task infer` on the run's checkpoint draws the held-out
  // captions byte for byte as the quality loop drew them (same ids, seed 0, same K).
  const captions = `${work}/${name}-held.csv`;
  await Deno.writeTextFile(
    captions,
    ["id,caption", ...held.map((h) => `${h.id},"${h.caption.replaceAll('"', '""')}"`)].join("\n"),
  );
  const inferred = await unwrap(
    infer({ checkpoint: `${work}/${name}-a`, captions, out: `${work}/${name}-infer` }),
  );
  assertEquals([inferred.written, inferred.candidates], [held.length, a.candidates]);
  for (const h of held) {
    assertEquals(
      await Deno.readFile(`${work}/${name}-infer/${inferenceName(h.id)}`),
      await Deno.readFile(`${work}/${name}-a/inference/${inferenceName(h.id)}`),
      `image ${h.id}: infer and quality draw the same`,
    );
  }
}

Deno.test("ledger: baselines rewritten in place at the top, run rows appended below", async () => {
  const ledger = `${work}/ledger.md`;
  const summary = {
    images: 3,
    meanScore: 0.5,
    meanCosine: 0.25,
    inceptionScore: 2,
    fid: 30,
    rPrecision: 0.1,
    rPrecisionR: 3,
    ids: [1, 2, 3],
  };
  const row = runRow({
    date: "2026-11-29",
    commit: "abc1234",
    recipe: "--recipe dfgan",
    backend: "native",
    minutes: 20,
    steps: 100,
    epochs: 0.5,
    imagesPerSecond: 3.21,
    evaluatorAccuracy: 0.561,
    summary,
    grid: "quality/x.png",
    notes: "load 9",
  });
  assertEquals(
    row,
    "| 2026-11-29 | abc1234 | `--recipe dfgan` | native | 20.0 | 100 | 0.50 | 3.2 | 56.1% | " +
      "**0.5000** | 0.2500 | 2.00 | 30.0 | 10.0% | [grid](quality/x.png) | load 9 |",
  );
  await appendRun(ledger, row);
  await writeBaselines(ledger, ["| uniform noise | 3 | **0.9000** | 0.4 | 1.0 | 300 | 1% |"]);
  await appendRun(ledger, row.replace("abc1234", "def5678"));
  await writeBaselines(ledger, ["| uniform noise | 3 | **0.9500** | 0.4 | 1.0 | 300 | 1% |"]);
  const text = await Deno.readTextFile(ledger);
  assert(text.startsWith(emptyLedger().split("<!-- baselines -->")[0]));
  assertEquals(text.match(/uniform noise/g)?.length, 1);
  assertMatch(text, /0\.9500[\s\S]*abc1234[^\n]*\n[^\n]*def5678[^\n]*\n$/);
});

Deno.test("ledger: each run's grid gets its own name, replicates included", () => {
  const none = () => false;
  assertEquals(
    gridName("2026-11-29", "ce28ac9", "--recipe gan-int-cls --ema 0.9995", "60min", none),
    "2026-11-29-ce28ac9-gan-int-cls-ema-0.9995-60min.png",
  );
  assertEquals(
    gridName("2026-11-29", "ce28ac9+", "--recipe dfgan", "500steps", none),
    "2026-11-29-ce28ac9-dirty-dfgan-500steps.png",
  );
  const taken = new Set(["2026-11-29-ce28ac9-dfgan-60min.png"]);
  const name = (commit: string) =>
    gridName("2026-11-29", commit, "--recipe dfgan", "60min", (n) => taken.has(n));
  assertEquals(name("ce28ac9"), "2026-11-29-ce28ac9-dfgan-60min-2.png");
  taken.add(name("ce28ac9"));
  assertEquals(name("ce28ac9"), "2026-11-29-ce28ac9-dfgan-60min-3.png");
  assertEquals(name("51412dc"), "2026-11-29-51412dc-dfgan-60min.png");
});

Deno.test("deno task quality without an evaluator: one line with the command", async () => {
  const { data } = await setup;
  const r = await runTask("quality.ts", ["--data", data, "--evaluator", `${work}/none`]);
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0], /no evaluator here.*deno task evaluator --data .* --out .*none/);
});
