/**
 * The fuzz suite in small: every reader of outside files (testData.pkl, word2Id.npy, a
 * caption CSV, a Reed caption file, a JPEG, a checkpoint) read back after a few dozen
 * fast-check mutations, with the properties of tasks/fuzz.ts — no throw, one-line typed
 * errors naming the file, no hang, no tensor left, a good file still loads. The long run
 * is `deno task fuzz --cases 10000` (README records it).
 */
import * as E from "fp-ts/Either";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { FUZZ_TARGETS, type FuzzTarget, fuzzTarget, mutate } from "../tasks/fuzz.ts";
import { petalError } from "../pipeline/io/errors.ts";

await useBackend("cpu");

/** Cases per reader in the suite: a few hundred in all, seconds not minutes. */
const CASES = 50;

for (const target of FUZZ_TARGETS) {
  const good = await target.good();
  Deno.test({
    name: `fuzz ${target.name}: ${CASES} mutated inputs, each a value or one typed line`,
    ignore: good === undefined,
    fn: async () => {
      const report = await fuzzTarget(target, CASES, 42);
      assert(report !== undefined, "the good input is there");
      assertEquals(report.failure, undefined);
      assertEquals(report.failures, 0);
      assertEquals(report.cases, CASES);
      assertEquals(report.refused + report.loaded, CASES, "every case answered");
      assert(report.refused > 0, "some mutations are refused: the mutations reach the reader");
    },
  });
}

Deno.test("mutations change bytes as described", () => {
  const b = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  assertEquals([...mutate(b, [{ kind: "flip", at: 0, bit: 1 }])], [3, 2, 3, 4, 5, 6]);
  assertEquals([...mutate(b, [{ kind: "cut", at: 2 }])], [1, 2]);
  assertEquals([...mutate(b, [{ kind: "delete", at: 1, length: 2 }])], [1, 4, 5, 6]);
  assertEquals([...mutate(b, [{ kind: "repeat", at: 4, length: 2, times: 1 }])], [
    1,
    2,
    3,
    4,
    5,
    6,
    5,
    6,
  ]);
  assertEquals(
    [...mutate(b, [{ kind: "u32", at: 5, value: 0xffffffff }])],
    [1, 2, 255, 255, 255, 255],
  );
  assertEquals([...b], [1, 2, 3, 4, 5, 6], "the good input is never changed");
});

/** A target whose reader has the bugs the properties exist to catch. */
const broken = (flaw: "throw" | "stack" | "hang" | "silent-path"): FuzzTarget => ({
  name: `broken-${flaw}`,
  good: () => Promise.resolve({ bytes: new Uint8Array(64), source: "zeros" }),
  hot: (b) => b.length,
  read: async (bytes) => {
    const path = "x.bin";
    const clean = bytes.length === 64 && bytes.every((x) => x === 0);
    if (clean) return { outcome: E.right(bytes), path };
    if (flaw === "throw") throw new RangeError("Invalid array length");
    if (flaw === "hang") await new Promise((r) => setTimeout(r, 2100));
    const message = flaw === "stack" ? "bad\n    at parse (file:///x.ts:1:2)" : "bad byte";
    return {
      outcome: E.left(petalError("BadFormat", flaw === "silent-path" ? "" : path, message, "fix")),
      path,
    };
  },
});

Deno.test("the properties catch a throw, a stack trace, a hang and an unnamed file", async () => {
  for (
    const [flaw, pattern] of [
      ["throw", /threw instead of a typed error: RangeError/],
      ["stack", /not one line/],
      ["hang", /took \d+ ms \(> 2000\)/],
      ["silent-path", /does not name x\.bin/],
    ] as const
  ) {
    const report = await fuzzTarget(broken(flaw), flaw === "hang" ? 1 : 20, 3);
    assert(report !== undefined);
    assertEquals(report.failures, 1, flaw);
    assertMatch(report.failure ?? "", pattern, flaw);
  }
});
