import { assert, assertEquals, assertMatch } from "./assert.ts";
import * as E from "fp-ts/Either";
import { loadReedFolder, loadTestCaptions, parseTestCaptions } from "../pipeline/io/data.ts";
import { decodeImage, loadImageStack, toBytes, toUnitRange } from "../pipeline/io/images.ts";
import { formatError, type PetalError } from "../pipeline/io/errors.ts";
import { hasShared, runTask, SHARED, syntheticFixture } from "./fixtures.ts";

const left = <T>(r: E.Either<PetalError, T>): PetalError => {
  if (E.isRight(r)) throw new Error("expected an error, got a value");
  return r.left;
};

Deno.test("Reed layout loads records with captions, labels kept apart", async () => {
  const dir = await syntheticFixture(24, 4);
  const data = await loadReedFolder(dir)();
  assert(E.isRight(data));
  const { records, classCount } = data.right;
  assertEquals(records.length, 24);
  assertEquals(records[0].imageId, 1);
  assertEquals(records[0].captions.length, 10);
  assert(classCount >= 2);
  // The record type carries no class: only three fields.
  assertEquals(Object.keys(records[0]).sort(), ["captions", "imageId", "imagePath"]);
});

Deno.test("missing folder, no images, image without captions, empty captions", async () => {
  const missing = left(await loadReedFolder("/nonexistent/petal")());
  assertEquals(missing.kind, "MissingFolder");
  assertMatch(formatError(missing), /^error: \/nonexistent\/petal: no such folder — /);

  const empty = await Deno.makeTempDir();
  assertEquals(left(await loadReedFolder(empty)()).kind, "NoImages");
  await Deno.mkdir(`${empty}/images`);
  const noJpegs = left(await loadReedFolder(empty)());
  assertEquals(noJpegs.kind, "NoImages");
  assertEquals(noJpegs.path, `${empty}/images`);

  const dir = await syntheticFixture(6, 1);
  await Deno.copyFile(`${dir}/images/image_00001.jpg`, `${dir}/images/image_00999.jpg`);
  const orphan = left(await loadReedFolder(dir)());
  assertEquals(orphan.kind, "MissingCaptions");
  assertEquals(orphan.path, `${dir}/images/image_00999.jpg`);
  assertMatch(orphan.fix, /image_00999\.txt/);
  await Deno.remove(`${dir}/images/image_00999.jpg`);

  const [captionFile] = [...Deno.readDirSync(`${dir}/text_c10`)].flatMap((c) =>
    [...Deno.readDirSync(`${dir}/text_c10/${c.name}`)].map((f) =>
      `${dir}/text_c10/${c.name}/${f.name}`
    )
  );
  await Deno.writeTextFile(captionFile, "\n  \n");
  const blank = left(await loadReedFolder(dir)());
  assertEquals(blank.kind, "EmptyCaptions");
  assertEquals(blank.path, captionFile);
});

Deno.test("test-caption CSV: header, duplicate ids, bad ids", () => {
  const ok = parseTestCaptions('id,caption\n7,a red flower\n9,"a, quoted one"\n', "t.csv");
  assert(E.isRight(ok));
  assertEquals(ok.right, [{ id: 7, caption: "a red flower" }, { id: 9, caption: "a, quoted one" }]);

  const header = left(parseTestCaptions("ID;caption\n1,x\n", "t.csv"));
  assertEquals(header.kind, "BadCsv");
  assertMatch(formatError(header), /t\.csv: header is "ID;caption", expected "id,caption"/);

  const dup = left(parseTestCaptions("id,caption\n1,a\n2,b\n1,c\n", "d.csv"));
  assertEquals(dup.kind, "DuplicateId");
  assertMatch(dup.message, /row 4: id 1 appears twice/);

  assertEquals(left(parseTestCaptions("id,caption\nx,a\n", "b.csv")).kind, "BadCsv");
  // An empty caption would silently make an image of nothing: one error naming the row.
  const empty = left(parseTestCaptions("id,caption\n0,a red flower\n1,\n", "e.csv"));
  assertEquals([empty.kind, empty.path], ["BadCsv", "e.csv"]);
  assertEquals(empty.message, "row 3: id 1 has an empty caption");
});

Deno.test("missing CSV file names the file", async () => {
  const e = left(await loadTestCaptions("/nonexistent/test.csv")());
  assertEquals(e.kind, "MissingFile");
  assertEquals(e.path, "/nonexistent/test.csv");
});

Deno.test("images decode to [-1, 1] at the model size; the cache is reused", async () => {
  const dir = await syntheticFixture(8, 1);
  const rgb = await decodeImage(`${dir}/images/image_00001.jpg`, 32);
  assertEquals(rgb.length, 32 * 32 * 3);
  const x = toUnitRange(rgb);
  assert(x.every((v) => v >= -1 && v <= 1));
  assertEquals(toBytes(x), rgb);

  const cache = await Deno.makeTempDir();
  const paths = [1, 2, 3].map((i) => `${dir}/images/image_0000${i}.jpg`);
  const first = await loadImageStack(paths, 16, cache)();
  assert(E.isRight(first));
  const files = [...Deno.readDirSync(cache)];
  assertEquals(files.length, 1);
  // Poison the cache file: a second load must read it, not decode again.
  const cachePath = `${cache}/${files[0].name}`;
  const poisoned = new Uint8Array(16 * 16 * 3 * 3).fill(7);
  await Deno.writeFile(cachePath, poisoned);
  const second = await loadImageStack(paths, 16, cache)();
  assert(E.isRight(second));
  assertEquals(second.right.bytes[0], 7);
});

Deno.test("a corrupt JPEG stops loading with its path", async () => {
  const dir = await syntheticFixture(4, 1);
  const path = `${dir}/images/image_00002.jpg`;
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.slice(0, 40));
  const paths = [1, 2, 3].map((i) => `${dir}/images/image_0000${i}.jpg`);
  const e = left(await loadImageStack(paths, 16)());
  assertEquals(e.kind, "CorruptImage");
  assertEquals(e.path, path);
  assertMatch(e.fix, /replace or delete/);
});

Deno.test("deno task data: counts and one-line errors", async () => {
  const dir = await syntheticFixture(12, 2);
  const ok = await runTask("data.ts", [dir]);
  assertEquals(ok.code, 0, ok.stderr);
  assertMatch(ok.stdout, /images:\s+12\n/);
  assertMatch(ok.stdout, /captions:\s+120 lines/);
  const bad = await runTask("data.ts", ["/nonexistent/petal"]);
  assertEquals(bad.code, 1);
  assertEquals(bad.stderr.trim().split("\n").length, 1);
  assertMatch(bad.stderr, /error: \/nonexistent\/petal: no such folder/);
});

Deno.test("deno task data: an image that does not decode is one line naming it, exit 1", async () => {
  for (
    const [what, bytes] of [
      ["truncated JPEG", (b: Uint8Array) => b.slice(0, Math.floor(b.length / 2))],
      ["text file named .jpg", () => new TextEncoder().encode("not an image\n")],
    ] as const
  ) {
    const dir = await syntheticFixture(6, 1);
    const path = `${dir}/images/image_00003.jpg`;
    await Deno.writeFile(path, bytes(await Deno.readFile(path)));
    const r = await runTask("data.ts", [dir]);
    assertEquals(r.code, 1, `${what}: ${r.stdout}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assertMatch(lines[0], new RegExp(`^error: ${path}: cannot decode image`), what);
  }
});

Deno.test({
  name: "real data: ../shared/oxford102 has 7370 images, 73700 caption lines, 102 classes",
  ignore: !hasShared,
  fn: async () => {
    const out = await runTask("data.ts", [`${SHARED}oxford102`]);
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stdout, /images:\s+7370\n/);
    assertMatch(out.stdout, /captions:\s+73700 lines/);
    assertMatch(out.stdout, /classes:\s+102\n/);
    const csv = await loadTestCaptions(`${SHARED}oxford102/test_captions.csv`)();
    assert(E.isRight(csv));
    assertEquals(csv.right.length, 819);
  },
});
