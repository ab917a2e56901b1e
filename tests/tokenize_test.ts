import { assertEquals, assertThrows } from "./assert.ts";
import {
  buildVocabulary,
  detokenize,
  fromPairs,
  SEQ_LEN,
  tokenize,
  vocabularyFromJson,
  vocabularyToJson,
  words,
} from "../stages/tokenize.ts";

Deno.test("words: lower case, punctuation out", () => {
  assertEquals(words("This flower's petals: RED, and  yellow!"), [
    "this",
    "flower",
    "s",
    "petals",
    "red",
    "and",
    "yellow",
  ]);
});

Deno.test("built vocabulary: <PAD>=0, <RARE>=1, most frequent first", () => {
  const v = buildVocabulary(["a red flower", "a blue flower", "a flower"]);
  assertEquals(v.padId, 0);
  assertEquals(v.rareId, 1);
  assertEquals(v.wordToId.get("a"), 2);
  assertEquals(v.wordToId.get("flower"), 3);
  assertEquals(v.size, 6);
  const ids = tokenize(v, "A red, unseen flower");
  assertEquals(ids.length, SEQ_LEN);
  assertEquals([...ids.slice(0, 5)], [2, v.wordToId.get("red"), 1, 3, 0]);
  assertEquals(detokenize(v, ids), "a red <RARE> flower");
});

Deno.test("long captions are truncated to 20 ids", () => {
  const v = buildVocabulary(["w"]);
  const ids = tokenize(v, Array(30).fill("w").join(" "));
  assertEquals(ids.length, 20);
  assertEquals(new Set(ids), new Set([v.wordToId.get("w")]));
});

Deno.test("task-style vocabulary keeps the given ids; round-trips through JSON", () => {
  const v = fromPairs([["the", 0], ["flower", 1], ["<PAD>", 5427], ["<RARE>", 5428]]);
  assertEquals(v.padId, 5427);
  assertEquals([...tokenize(v, "the flower is", 4)], [0, 1, 5428, 5427]);
  const again = vocabularyFromJson(vocabularyToJson(v));
  assertEquals(again.wordToId, v.wordToId);
  assertThrows(() => fromPairs([["a", 0]]), /needs <PAD> and <RARE>/);
});
