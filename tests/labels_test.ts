/**
 * Task rule: class labels may feed the evaluator only, never the GAN or the text encoder.
 * Labels come out of pipeline/io/data.ts as an opaque ClassLabels value; the one way to read
 * them is labelsForEvaluator, and only the evaluator may call it.
 */
import { assert, assertEquals } from "./assert.ts";
import { loadReedFolder } from "../pipeline/io/data.ts";
import { syntheticFixture } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const ALLOWED_READERS = ["pipeline/evaluator.ts"];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...sourceFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

Deno.test("only the evaluator reads class labels", () => {
  const files = ["stages", "pipeline", "tasks"].flatMap(sourceFiles).concat(["mod.ts"]);
  assert(files.includes("pipeline/train.ts") && files.includes("stages/embed.ts"));
  const readers = files.filter((f) =>
    /labelsForEvaluator\s*\(/.test(Deno.readTextFileSync(`${ROOT}${f}`))
  );
  assertEquals(readers.sort(), ALLOWED_READERS);
  // Nothing on the GAN side even names the label type or the dataset's labels field.
  for (const f of ganSide(files)) {
    const text = Deno.readTextFileSync(`${ROOT}${f}`);
    assert(!/ClassLabels|\.labels\b|classCount|class_/.test(text), `${f} mentions class labels`);
  }
});

/**
 * The GAN side: the stages, and the pipeline files that train, pre-train the text encoder,
 * draw and pick the best of K (the matcher) — every file a trained model's images depend on.
 * Not on it: stages/score.ts (the task's score), stages/mod.ts (re-exports) and
 * stages/classifier.ts, a CNN's shape that the matcher builds with weights of its own.
 */
const NOT_GAN_SIDE = ["stages/score.ts", "stages/mod.ts", "stages/classifier.ts"];
const ganSide = (files: readonly string[]) =>
  files.filter((f) =>
    (f.startsWith("stages/") && !NOT_GAN_SIDE.includes(f)) ||
    ["train", "steps", "pretrain", "observers", "infer", "draw"].some((n) =>
      f === `pipeline/${n}.ts`
    )
  );

Deno.test("training, drawing and the best-of-K pick take no signal from the evaluator", () => {
  const files = ["stages", "pipeline", "tasks"].flatMap(sourceFiles);
  const side = ganSide(files);
  assert(side.includes("pipeline/draw.ts") && side.includes("stages/match.ts"));
  for (const f of side) {
    const text = Deno.readTextFileSync(`${ROOT}${f}`);
    const imports = [...text.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]);
    const scoring = imports.filter((i) => /(evaluator|score|sanity|quality)\.ts$/.test(i));
    assertEquals(scoring, [], `${f} imports the evaluator's side`);
    assert(!/loadEvaluator|heldOutIds/.test(text), `${f} reaches for the evaluator`);
  }
});

Deno.test("training records carry no class; labels stay opaque", async () => {
  const data = await loadReedFolder(await syntheticFixture(6, 1))();
  assert(data._tag === "Right");
  for (const r of data.right.records) {
    assertEquals(Object.keys(r).sort(), ["captions", "imageId", "imagePath"]);
  }
  // The opaque value has no enumerable class fields to stumble on.
  assertEquals(Object.keys(data.right.labels), []);
});
