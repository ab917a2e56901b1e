/**
 * The one drawing path and its noise policy (pipeline/draw.ts, stages/noise.ts): an image
 * depends on (checkpoint, caption id, seed, K) only — not on the batch size, nor on the
 * other captions it is drawn with. And the folder writes: a batch is whole or not there.
 */
import { assert, assertEquals } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { train } from "../pipeline/train.ts";
import { disposeGenerator, infer, inferenceName, loadGenerator } from "../pipeline/infer.ts";
import {
  byPosition,
  drawFolder,
  drawPixels,
  generateImages,
  imagesPerPass,
} from "../pipeline/draw.ts";
import { modelConfig } from "../stages/config.ts";
import { writeFilesAtomic } from "../pipeline/io/images.ts";
import * as E from "fp-ts/Either";
import { captionNoise, noiseRows, noiseStreamSeed } from "../stages/noise.ts";
import { plainRecipe, syntheticFixture } from "./fixtures.ts";

await useBackend("auto");

const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

Deno.test("noise policy: one stream per (seed, caption id, candidate)", () => {
  const z = captionNoise(3, 5685, 1, 16);
  assertEquals(z.length, 16);
  assertEquals(Array.from(captionNoise(3, 5685, 1, 16)), Array.from(z), "the same on every call");
  // Every key takes part: another seed, id or candidate is another stream.
  const keys = [[3, 5685, 1], [4, 5685, 1], [3, 5686, 1], [3, 5685, 0], [3, 5685, 2]];
  const seeds = keys.map(([s, id, k]) => noiseStreamSeed(s, id, k));
  assertEquals(new Set(seeds).size, keys.length, `stream seeds ${seeds}`);
  // A longer draw starts with the shorter one: zDim does not reshuffle the noise.
  assertEquals(Array.from(captionNoise(3, 5685, 1, 32).subarray(0, 16)), Array.from(z));
  // Rows are the captions' own noises, whatever their order.
  const rows = noiseRows(3, [9, 5685, 0], 1, 16);
  assertEquals(Array.from(rows.subarray(16, 32)), Array.from(z));
  assertEquals(Array.from(rows.subarray(0, 16)), Array.from(captionNoise(3, 9, 1, 16)));
  assertEquals(byPosition(["a", "b"]), [{ id: 0, caption: "a" }, { id: 1, caption: "b" }]);
});

Deno.test("infer --batch 7 and --batch 64 write byte-identical JPEGs (K = 2, 70 captions)", async () => {
  const data = await syntheticFixture(16, 1);
  const out = await Deno.makeTempDir({ prefix: "petal-draw-" });
  await unwrap(
    train({
      data,
      out,
      maxSteps: 1,
      recipe: plainRecipe({ pretrainSteps: 1, batchSize: 4, seed: 5 }),
    }),
  );
  const colours = ["red", "yellow", "blue", "white", "pink", "purple", "orange"];
  // Ids out of order and sparse: the noise is keyed by id, not by the row's position.
  const rows = Array.from({ length: 70 }, (_, i) => ({
    id: (i * 37) % 211 + 1,
    caption: `a ${colours[i % 7]} flower with ${i % 5 + 1} petals`,
  }));
  const captions = `${out}/captions.csv`;
  await Deno.writeTextFile(
    captions,
    ["id,caption", ...rows.map((r) => `${r.id},${r.caption}`)].join("\n") + "\n",
  );
  const draw = (batch: number) =>
    unwrap(infer({ checkpoint: out, captions, out: `${out}/b${batch}`, batch, candidates: 2 }));
  assertEquals((await draw(7)).written, 70);
  assertEquals((await draw(64)).written, 70);
  const files = (dir: string) => [...Deno.readDirSync(`${out}/${dir}`)].map((e) => e.name).sort();
  const names = rows.map((r) => inferenceName(r.id)).sort();
  assertEquals(files("b7"), names);
  assertEquals(files("b64"), names);
  let differ = 0;
  for (const name of names) {
    const a = await Deno.readFile(`${out}/b7/${name}`);
    const b = await Deno.readFile(`${out}/b64/${name}`);
    assert(same(a, b), `${name} differs between --batch 7 and --batch 64`);
    if (!same(a, await Deno.readFile(`${out}/b7/${names[0]}`))) differ++;
  }
  assert(differ > 60, `the captions draw different images (${differ} differ from the first)`);

  // A caption's image does not depend on its neighbours: alone, or with others before it.
  const gen = await loadGenerator(out);
  const alone = await drawPixels(gen, [rows[40]], { seed: 0, candidates: 2 });
  const crowd = await drawPixels(gen, rows.slice(33, 45), { seed: 0, candidates: 2, batch: 5 });
  assert(same(alone[0], crowd[7]), "caption 40 alone = caption 40 among 12");
  // K = 1 draws candidate 0 of any K: captionNoise(seed, id, 0).
  const [one] = await drawPixels(gen, [rows[40]], { seed: 0 });
  const [byHand] = await generateImages(
    gen,
    [rows[40].caption],
    captionNoise(0, rows[40].id, 0, gen.gan.model.zDim),
  );
  assert(same(one, byHand), "one candidate is the caption's candidate-0 noise");
  disposeGenerator(gen);
  await Deno.remove(out, { recursive: true });
});

Deno.test("a batch that cannot be written: one error naming the folder, no temp file, nothing after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-draw-fail-" });
  // A folder where inference_0003.jpg should go: renaming the JPEG over it fails.
  await Deno.mkdir(`${dir}/${inferenceName(3)}/kept`, { recursive: true });
  const gen = await loadGenerator("models/flowers");
  const rows = [1, 2, 3, 4, 5].map((id) => ({ id, caption: `a red flower number ${id}` }));
  const result = await drawFolder(gen, rows, dir, { seed: 0, candidates: 1, batch: 2 })();
  disposeGenerator(gen);
  assert(E.isLeft(result), "the write's failure is the result");
  assertEquals(result.left.path, dir);
  assertEquals(result.left.fix, "check the folder is writable and the disk has room");
  // The first batch is whole; the second stopped at its failure, and the third was
  // never written.
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names, [inferenceName(1), inferenceName(2), inferenceName(3)]);
  assert((await Deno.readFile(`${dir}/${inferenceName(1)}`)).length > 100, "a whole JPEG");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFilesAtomic: every file whole, other writers' stale temps of those names swept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-write-" });
  const stale = `a.jpg.99999999.deadbeef.tmp`, other = `c.jpg.99999999.deadbeef.tmp`;
  const own = `a.jpg.${Deno.pid}.cafe0123.tmp`; // this process's: may be a write in flight
  for (const name of [stale, other, own]) await Deno.writeTextFile(`${dir}/${name}`, "half");
  await Deno.writeTextFile(`${dir}/b.jpg`, "old");
  await writeFilesAtomic(
    dir,
    new Map<string, string | Uint8Array>([["a.jpg", "new a"], ["b.jpg", new Uint8Array([1, 2])]]),
  );
  assertEquals(await Deno.readTextFile(`${dir}/a.jpg`), "new a");
  assertEquals(Array.from(await Deno.readFile(`${dir}/b.jpg`)), [1, 2]);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names, ["a.jpg", own, "b.jpg", other].sort());
  // A name that cannot be written: the error, and neither file changed nor a temp left.
  await Deno.remove(`${dir}/${own}`);
  await Deno.remove(`${dir}/${other}`);
  const failed = await writeFilesAtomic(
    dir,
    new Map([["a.jpg", "newer"], ["no/such/folder.jpg", "x"]]),
  ).then(() => null, (e: Error) => e);
  assert(failed instanceof Deno.errors.NotFound, `got ${failed}`);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.jpg", "b.jpg"]);
  assertEquals(await Deno.readTextFile(`${dir}/a.jpg`), "new a");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a pass of G holds the K candidates of as many captions as 64 MiB of its last layer allow", () => {
  assertEquals(imagesPerPass(modelConfig("small", 100)), 256); // 64×64×16 floats an image
  assertEquals(imagesPerPass(modelConfig("medium", 100)), 128);
  assertEquals(imagesPerPass(modelConfig("reed", 100)), 64);
  assertEquals(imagesPerPass({ imageSize: 4096, gChannels: [64] }), 1, "at least one");
});
