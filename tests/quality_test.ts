/**
 * The quality loop on the synthetic set with a tiny budget: it never trains on the
 * evaluator's held-out images, the same seed and --steps give the same numbers, the
 * ledger gets one row per run under its baselines, and a missing evaluator is one line.
 */
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "./assert.ts";
import { runTask, syntheticFixture } from "./fixtures.ts";
import { sameClassPhotos, trainEvaluator } from "../pipeline/evaluator.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import {
  budgetPoints,
  heldOutCaptions,
  QUALITY_LADDER,
  qualityBaselines,
  rescoreCheckpoint,
  runQuality,
} from "../pipeline/quality.ts";
import {
  DEFAULT_GUIDANCE,
  disposeGenerator,
  infer,
  inferenceName,
  loadGenerator,
  PICKED_GUIDANCE,
} from "../pipeline/infer.ts";
import {
  appendRun,
  baselineRow,
  emptyLedger,
  gridName,
  ledgerBaselines,
  ledgerRuns,
  qualityCurves,
  runRow,
  writeBaselines,
} from "../pipeline/ledger.ts";
import { writeCurvesPlot } from "../pipeline/io/plots.ts";
import { recipeFromFlags } from "../tasks/recipe.ts";

import {
  checkpointPath,
  readCheckpointHeader,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import { MEAN_CONDITION, meanCondition } from "../stages/train_step.ts";
import { RIVALS, rivals } from "../stages/match.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import sharp from "sharp";

await useBackend("auto");
const work = await Deno.makeTempDir({ prefix: "petal-quality-" });

/** A synthetic set and a one-epoch evaluator on it, made once for the file. */
const setup = (async () => {
  const data = await syntheticFixture(48, 4);
  const evaluator = `${work}/eval`;
  await unwrap(trainEvaluator({ data, out: evaluator, epochs: 1, batchSize: 8 }));
  return { data, evaluator };
})();

/** The first non-blank caption of image `id`, read straight from the Reed folder. */
async function firstCaption(data: string, id: number): Promise<string> {
  const name = `image_${String(id).padStart(5, "0")}.txt`;
  for await (const c of Deno.readDir(`${data}/text_c10`)) {
    const text = await Deno.readTextFile(`${data}/text_c10/${c.name}/${name}`).catch(() => "");
    const line = text.split("\n").map((l) => l.trim()).find((l) => l.length > 0);
    if (line) return line;
  }
  throw new Error(`no caption for ${id}`);
}

Deno.test("quality: held-out images are left out; same seed and steps, same numbers", async () => {
  const { data, evaluator } = await setup;
  const manifest = JSON.parse(await Deno.readTextFile(`${evaluator}/evaluator.json`));
  const heldIds: number[] = [...manifest.heldOutIds].sort((a: number, b: number) => a - b);
  assert(heldIds.length > 0 && heldIds.length < 48);
  // What the quality loop must draw: the first caption of each held-out image, by id.
  const { held, training } = await unwrap(heldOutCaptions(data, manifest.heldOutIds));
  const sorted = [...held].sort((a, b) => a.id - b.id);
  assertEquals(
    sorted,
    await Promise.all(heldIds.map(async (id) => ({ id, caption: await firstCaption(data, id) }))),
  );
  assertEquals(training.length, 48 - heldIds.length);
  assert(training.every((t) => !heldIds.includes(t.id)));
  // The default recipe (pre-trained φ, nearest up-sampling) and DF-GAN, each run twice.
  for (const name of ["gan-int-cls", "dfgan"] as const) {
    await sameNumbersTwice(name, data, evaluator, sorted);
  }
});

/**
 * A checkpoint from before petal kept the mean condition and the matcher's rivals (the
 * run's own, written without them) is re-scored with guidance and the rivals pick all the
 * same: it is given them from the split's training captions, and says so.
 */
async function oldCheckpointCentered(run: string, data: string, evaluator: string) {
  const { progress, vocabulary } = (await readCheckpointHeader(checkpointPath(run)))!;
  const gen = await loadGenerator(run);
  meanCondition(gen.gan)!.dispose();
  delete gen.gan.ema[MEAN_CONDITION];
  rivals(gen.gan.match!)!.dispose();
  delete gen.gan.match![RIVALS];
  await writeGeneratorCheckpoint(`${run}-old`, gen.gan, progress, vocabulary);
  disposeGenerator(gen);
  const old = await unwrap(rescoreCheckpoint({
    checkpoint: `${run}-old`,
    data,
    evaluator,
    out: `${run}-old-rescore`,
  }));
  assertEquals([old.guidance, old.centered, old.rivalled], [PICKED_GUIDANCE, true, true]);
  assert(Number.isFinite(old.summary.meanScore));
}

async function sameNumbersTwice(
  name: "gan-int-cls" | "dfgan",
  data: string,
  evaluator: string,
  held: readonly { id: number; caption: string }[],
) {
  const heldIds = held.map((h) => h.id);
  const recipe = recipeFromFlags({ recipe: name, batch: 4, seed: 7 });
  const run = (out: string) =>
    unwrap(runQuality({
      data,
      evaluator,
      out: `${work}/${name}-${out}`,
      maxSteps: 2,
      recipe,
      cacheDir: `${work}/cache`,
    }));
  const a = await run("a");
  const b = await run("b");
  // Scored on the way at step 1: the run trains on from its checkpoint, and its end is
  // the straight run's, number for number.
  const seen: [number, number][] = [];
  const c = await unwrap(runQuality({
    data,
    evaluator,
    out: `${work}/${name}-c`,
    maxSteps: 2,
    points: [1, 5],
    onPoint: (p) => void seen.push([p.point, p.steps]),
    recipe,
    cacheDir: `${work}/cache`,
  }));
  assertEquals(seen, [[1, 1], [2, 2]], "a point inside the budget, then the budget");
  assertEquals(c.summary, a.summary);
  // Anyone re-scores a row from its checkpoint: the same images, the same numbers.
  const again = await unwrap(rescoreCheckpoint({
    checkpoint: `${work}/${name}-a`,
    data,
    evaluator,
    out: `${work}/${name}-rescore`,
  }));
  assertEquals([again.summary, again.candidates], [a.summary, a.candidates]);
  assertEquals(
    [again.guidance, again.centered, again.rivalled],
    [name === "gan-int-cls" ? PICKED_GUIDANCE : [DEFAULT_GUIDANCE], false, false],
    "the run's own mean condition and rivals; several scales where it keeps a matcher (dfgan does not pre-train)",
  );
  if (name === "gan-int-cls") await oldCheckpointCentered(`${work}/${name}-a`, data, evaluator);
  assertEquals(a.steps, 2);
  assertEquals(a.trainImages, 48 - heldIds.length, "trained without the held-out images");
  assertEquals(a.summary.images, heldIds.length);
  assertEquals(a.summary.ids, heldIds);
  for (const key of ["meanScore", "meanCosine", "inceptionScore", "fid", "rPrecision"] as const) {
    assert(Number.isFinite(a.summary[key]), key);
    assertEquals(a.summary[key], b.summary[key], key);
  }
  for (const id of heldIds) {
    const [x, y] = await Promise.all(
      ["a", "b"].map((r) => Deno.readFile(`${work}/${name}-${r}/inference/${inferenceName(id)}`)),
    );
    assertEquals(x, y, `image ${id}`);
  }
  // The report grid: up to 5 captions (rows) × 5 noises, 64 px drawn at 2×, a 300 px label column.
  const grid = await sharp(a.gridPath).metadata();
  const rows = Math.min(5, heldIds.length);
  assertEquals([grid.format, grid.width, grid.height], ["png", 300 + 5 * 132 + 4, rows * 132 + 4]);
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

Deno.test("baselines: real, shuffled, noise, retrieval, and a training photo of the held-out image's class", async () => {
  const { data, evaluator } = await setup;
  const manifest = JSON.parse(await Deno.readTextFile(`${evaluator}/evaluator.json`));
  const heldIds: number[] = manifest.heldOutIds;
  // The class of every image, read from the Reed folder's layout.
  const classOf = new Map<number, string>();
  for await (const c of Deno.readDir(`${data}/text_c10`)) {
    for await (const f of Deno.readDir(`${data}/text_c10/${c.name}`)) {
      classOf.set(Number(/(\d+)/.exec(f.name)![1]), c.name);
    }
  }
  const photos = await unwrap(sameClassPhotos(data, heldIds));
  assertEquals([...photos.keys()], heldIds);
  for (const [id, photo] of photos) {
    const picked = Number(/image_(\d+)\.jpg$/.exec(photo)![1]);
    assert(!heldIds.includes(picked), `${id}: ${picked} is a training image`);
    assertEquals(classOf.get(picked), classOf.get(id), `${id}: the same class`);
  }
  assertEquals(await unwrap(sameClassPhotos(data, heldIds)), photos, "the same pick again");
  const rows = await unwrap(qualityBaselines(data, evaluator));
  assertEquals(rows.map((r) => r.name), ["real", "shuffled", "noise", "retrieval", "same-class"]);
  assert(rows.every((r) => r.summary.images === heldIds.length));
  assertAlmostEquals(rows[0].summary.meanCosine, 0, 1e-9, "real photos against themselves");
});

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

Deno.test("deno task quality --at: a bad list is one line naming the flag", async () => {
  const { data, evaluator } = await setup;
  const r = await runTask("quality.ts", ["--data", data, "--evaluator", evaluator, "--at", "15,x"]);
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0], /--at.*"15,x" is not a list of positive numbers.*--at 15,30,60/);
});

Deno.test("budget points: inside the budget, in order, once, the budget last", () => {
  assertEquals(budgetPoints(120, QUALITY_LADDER), [15, 30, 60, 120]);
  assertEquals(budgetPoints(60, QUALITY_LADDER), [15, 30, 60]);
  assertEquals(budgetPoints(1, QUALITY_LADDER), [1]);
  assertEquals(budgetPoints(20, [60, 15, 15, 0, -3]), [15, 20]);
  assertEquals(budgetPoints(4), [4]);
});

Deno.test("ledger curves: the last table only, one curve per recipe, seeds averaged", async () => {
  const ledger = `${work}/curves.md`;
  const summary = (meanScore: number, inceptionScore: number) => ({
    images: 743,
    ids: [],
    meanScore,
    meanCosine: 0.2,
    inceptionScore,
    fid: 10,
    rPrecision: 0.05,
    rPrecisionR: 100,
  });
  const row = (recipe: string, minutes: number, score: number, is: number) =>
    runRow({
      date: "2026-12-01",
      commit: "abc1234",
      recipe,
      backend: "native",
      minutes,
      steps: 100,
      epochs: 1,
      imagesPerSecond: 60,
      evaluatorAccuracy: 0.571,
      summary: summary(score, is),
      grid: "g.png",
      notes: "a | in a note",
    });
  await appendRun(ledger, row("--recipe old", 60, 0.9, 1));
  // A second table (a new evaluator): only its rows are drawn.
  const lines = emptyLedger().split("\n");
  const header = lines.slice(lines.findIndex((l) => l.startsWith("| date")), undefined).slice(0, 2);
  await Deno.writeTextFile(ledger, `\n## Second table\n\n${header.join("\n")}\n`, { append: true });
  await appendRun(ledger, row("--recipe gan-int-cls", 15.3, 0.40, 3.0));
  await appendRun(ledger, row("--recipe gan-int-cls --seed 2", 14.9, 0.42, 3.2));
  await appendRun(ledger, row("--recipe gan-int-cls", 60.1, 0.33, 4.2));
  await appendRun(ledger, row("--recipe dfgan", 15.0, 0.5, 2.0));
  const runs = ledgerRuns(await Deno.readTextFile(ledger));
  assertEquals(runs.map((r) => r.recipe), [
    "--recipe gan-int-cls",
    "--recipe gan-int-cls --seed 2",
    "--recipe gan-int-cls",
    "--recipe dfgan",
  ]);
  const { score, is } = qualityCurves(runs);
  assertEquals(score.map((c) => c.name), ["--recipe gan-int-cls", "--recipe dfgan"]);
  assertEquals(score[0].points.map(([x]) => x), [15, 60]);
  assertAlmostEquals(score[0].points[0][1], 0.41, 1e-9);
  assertAlmostEquals(is[0].points[0][1], 3.1, 1e-9);
  assertEquals(is[1].points, [[15, 2]]);
  // The plot: a PNG two panels wide, one legend line per recipe.
  const png = await writeCurvesPlot({ score, is }, `${work}/curves.png`);
  const meta = await sharp(png).metadata();
  assertEquals([meta.format, meta.width, meta.height], ["png", 840, 300 + 18 * 2 + 16]);
  // The baselines block gives the reference lines; `--plot` redraws beside the ledger.
  await writeBaselines(ledger, [baselineRow("retrieval", summary(0.3518, 5.95))]);
  assertEquals(ledgerBaselines(await Deno.readTextFile(ledger)), {
    retrieval: { meanScore: 0.3518, inceptionScore: 5.95 },
  });
  const r = await runTask("quality.ts", ["--plot", "--ledger", ledger]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim(), `curves ${work}/quality/curves.png`);
  const drawn = await sharp(`${work}/quality/curves.png`).metadata();
  assertEquals([drawn.width, drawn.height], [840, 300 + 18 * 2 + 16]);
});

Deno.test("deno task quality: an evaluator of other data is one line; --out is left as it was", async () => {
  const { data } = await setup;
  const shipped = new URL("../models/evaluator", import.meta.url).pathname;
  await Deno.mkdir(`${work}/x`, { recursive: true });
  await Deno.writeTextFile(`${work}/x/keep.txt`, "another run's file");
  const r = await runTask("quality.ts", [
    "--data",
    data,
    "--evaluator",
    shipped,
    "--out",
    `${work}/x`,
  ]);
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(
    lines[0],
    /of the evaluator's 743 held-out images are not in this folder.*deno task evaluator --data/,
  );
  assert(!r.stdout.includes("text pre-training"), "nothing trained");
  assertEquals(await Deno.readTextFile(`${work}/x/keep.txt`), "another run's file", "--out kept");
});

Deno.test("quality: a stop request ends the run at the point it reached", async () => {
  const { data, evaluator } = await setup;
  const seen: [number, number][] = [];
  let asked = 0;
  const r = await unwrap(runQuality({
    data,
    evaluator,
    out: `${work}/stopped`,
    maxSteps: 4,
    points: [2],
    shouldStop: () => ++asked > 1,
    onPoint: (p) => void seen.push([p.point, p.steps]),
    recipe: recipeFromFlags({ recipe: "gan-int-cls", batch: 4, seed: 7, "pretrain-text": 0 }),
    cacheDir: `${work}/cache`,
  }));
  assertEquals(seen, [[2, 1]], "scored once, where it stopped; no second leg");
  assertEquals(r.steps, 1);
});
