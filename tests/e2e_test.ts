/**
 * The README's path on the synthetic set, run as a user runs it: train → infer →
 * evaluator → score, then what each bad input to infer and score says.
 */
import sharp from "sharp";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { hasShared, runTask, SHARED, syntheticFixture } from "./fixtures.ts";

const ok = (r: { code: number; stdout: string; stderr: string }) => {
  assertEquals(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

const oneLineError = (r: { code: number; stderr: string }, pattern: RegExp) => {
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n").filter((l) =>
    !l.startsWith("Hi, looks like") && !l.startsWith("=") && l.trim()
  );
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0], pattern);
};

Deno.test("end to end on the synthetic set: train → infer → evaluator → score", async (t) => {
  const data = await syntheticFixture(48, 6);
  const work = await Deno.makeTempDir({ prefix: "petal-e2e-" });
  const run = `${work}/run`;
  const inference = `${work}/inference`;
  const evaluator = `${work}/eval`;

  await t.step("train writes checkpoint, loss log and sample grids", async () => {
    const out = ok(
      await runTask("train.ts", ["--data", data, "--out", run, "--steps", "3", "--batch", "8"]),
    );
    assertMatch(out, /backend: \w+/);
    assertMatch(out, /stopped by steps at step 3/);
    for (const f of ["checkpoint.petal", "losses.csv", "samples/latest.png"]) {
      await Deno.stat(`${run}/${f}`);
    }
    const rows = (await Deno.readTextFile(`${run}/losses.csv`)).trim().split("\n");
    assertEquals(rows[0], "step,epoch,loss_d,loss_g,kl,img_per_s,seconds");
    assertEquals(rows.length, 4);
  });

  await t.step("train --resume continues from the checkpoint", async () => {
    const out = ok(
      await runTask("train.ts", ["--data", data, "--out", run, "--steps", "5", "--resume"]),
    );
    assertMatch(out, /resumed from .* at step 3/);
    assertMatch(out, /stopped by steps at step 5/);
  });

  await t.step("infer writes one 64×64 JPEG per caption, plus the report grid beside", async () => {
    const out = ok(
      await runTask("infer.ts", [
        "--checkpoint",
        run,
        "--captions",
        `${data}/test_captions.csv`,
        "--out",
        inference,
        "--report",
      ]),
    );
    assertMatch(out, /wrote 6 images/);
    const names = [...Deno.readDirSync(inference)].map((e) => e.name).sort();
    assertEquals(names, [
      "inference_0049.jpg",
      "inference_0050.jpg",
      "inference_0051.jpg",
      "inference_0052.jpg",
      "inference_0053.jpg",
      "inference_0054.jpg",
    ]);
    const meta = await sharp(`${inference}/inference_0049.jpg`).metadata();
    assertEquals([meta.format, meta.width, meta.height, meta.channels], ["jpeg", 64, 64, 3]);
    const report = await sharp(`${inference}_report.png`).metadata();
    assert(
      report.width! > 5 * 64 && report.height! >= 5 * 64,
      `report ${report.width}×${report.height}`,
    );
  });

  await t.step("evaluator trains and reports held-out accuracy", async () => {
    const out = ok(
      await runTask("evaluator.ts", [
        "--data",
        data,
        "--out",
        evaluator,
        "--epochs",
        "2",
        "--batch",
        "16",
      ]),
    );
    assertMatch(out, /held-out accuracy \d+\.\d% on \d+ images/);
    const manifest = JSON.parse(await Deno.readTextFile(`${evaluator}/evaluator.json`));
    assert(manifest.classes.length >= 2 && manifest.heldOutIds.length >= 2);
  });

  await t.step("score writes score.csv exactly as the task does", async () => {
    const csv = `${work}/score.csv`;
    const out = ok(
      await runTask("score.ts", [
        inference,
        csv,
        "5",
        "--evaluator",
        evaluator,
        "--reference",
        `${data}/test_images`,
      ]),
    );
    assertMatch(out, /mean score: +\d+\.\d{4}/);
    assertMatch(out, /inception score: +\d/);
    assertMatch(out, /FID \(evaluator\): +\d/);
    const lines = (await Deno.readTextFile(csv)).trim().split("\n");
    assertEquals(lines[0], "score,id");
    assertEquals(lines.slice(1).map((l) => l.split(",")[1]), ["0", "1", "2", "3", "4", "5"]);
    assert(lines.slice(1).every((l) => Number.isFinite(Number(l.split(",")[0]))));
  });

  await t.step("score: bad inputs end in one clear line", async () => {
    const score = (dir: string, ref = `${data}/test_images`) =>
      runTask("score.ts", [
        dir,
        `${work}/x.csv`,
        "4",
        "--evaluator",
        evaluator,
        "--reference",
        ref,
      ]);
    const empty = `${work}/empty`;
    await Deno.mkdir(empty);
    oneLineError(await score(empty), /empty: no images to score — run `deno task infer/);

    const extra = `${work}/extra`;
    await Deno.mkdir(extra);
    await Deno.copyFile(`${inference}/inference_0049.jpg`, `${extra}/inference_0049.jpg`);
    await Deno.writeTextFile(`${extra}/notes.txt`, "hi");
    oneLineError(await score(extra), /notes\.txt: not an inference_NNNN\.jpg file/);

    const fake = `${work}/fake`;
    await Deno.mkdir(fake);
    await Deno.writeTextFile(`${fake}/inference_0049.jpg`, "not a jpeg");
    oneLineError(await score(fake), /inference_0049\.jpg: not a JPEG file/);

    const dup = `${work}/dup`;
    await Deno.mkdir(dup);
    await Deno.copyFile(`${inference}/inference_0049.jpg`, `${dup}/inference_0049.jpg`);
    await Deno.copyFile(`${inference}/inference_0049.jpg`, `${dup}/inference_049.jpg`);
    oneLineError(await score(dup), /id 49 appears twice/);

    const orphan = `${work}/orphan`;
    await Deno.mkdir(orphan);
    await Deno.copyFile(`${inference}/inference_0049.jpg`, `${orphan}/inference_0001.jpg`);
    oneLineError(await score(orphan), /inference_0001\.jpg: 1 images have no reference image/);

    const json = `${work}/ref.json`;
    await Deno.writeTextFile(json, JSON.stringify({ 49: [1, 2, 3], 999: [1, 2, 3] }));
    oneLineError(await score(extra.replace("extra", "one"), json), /no such folder/);
    const one = `${work}/one`;
    await Deno.mkdir(one);
    await Deno.copyFile(`${inference}/inference_0049.jpg`, `${one}/inference_0049.jpg`);
    oneLineError(await score(one, json), /1 reference ids have no image \(first: 999\)/);

    // Another size is resized, as the task does: a 128×128 copy scores like the original.
    const big = `${work}/big`;
    await Deno.mkdir(big);
    await sharp(`${inference}/inference_0049.jpg`).resize(128, 128).jpeg().toFile(
      `${big}/inference_0049.jpg`,
    );
    ok(await score(big));
  });

  await t.step("infer: bad inputs end in one clear line", async () => {
    oneLineError(
      await runTask("infer.ts", [
        "--checkpoint",
        `${work}/none`,
        "--captions",
        `${data}/test_captions.csv`,
        "--out",
        `${work}/i2`,
      ]),
      /none\/checkpoint\.petal: no checkpoint here/,
    );
    const badCsv = `${work}/bad.csv`;
    await Deno.writeTextFile(badCsv, "id,caption\n1,a\n1,b\n");
    oneLineError(
      await runTask("infer.ts", ["--checkpoint", run, "--captions", badCsv, "--out", `${work}/i3`]),
      /bad\.csv: row 3: id 1 appears twice/,
    );
  });
});

Deno.test({
  name: "real data: infer reads the task's testData.pkl — 819 images and the report ids",
  ignore: !hasShared,
  fn: async () => {
    const data = await syntheticFixture(16, 2);
    const work = await Deno.makeTempDir({ prefix: "petal-pkl-" });
    ok(
      await runTask("train.ts", [
        "--data",
        data,
        "--out",
        `${work}/run`,
        "--steps",
        "1",
        "--batch",
        "8",
      ]),
    );
    const out = ok(
      await runTask("infer.ts", [
        "--checkpoint",
        `${work}/run`,
        "--captions",
        `${SHARED}competition/dataset/testData.pkl`,
        "--out",
        `${work}/inference`,
        "--report",
      ]),
    );
    assertMatch(out, /report: .*inference_report\.png \(ids 5685, 5883, 7547, 253, 6519\)/);
    assertMatch(out, /wrote 819 images/);
    const names = [...Deno.readDirSync(`${work}/inference`)].map((e) => e.name);
    assertEquals(names.length, 819);
    assert(names.includes("inference_6735.jpg") && names.includes("inference_0023.jpg"));
  },
});
