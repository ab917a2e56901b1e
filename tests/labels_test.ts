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
  const ganSide = files.filter((f) =>
    f.startsWith("stages/") || f === "pipeline/train.ts" || f === "pipeline/infer.ts"
  );
  for (const f of ganSide) {
    const text = Deno.readTextFileSync(`${ROOT}${f}`);
    assert(!/ClassLabels|\.labels\b|classCount|class_/.test(text), `${f} mentions class labels`);
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
