/**
 * tokenize: caption text → fixed-length word ids. Pure.
 *
 * Lower-cases, strips punctuation, maps words to ids with `<RARE>` for unknown words,
 * then pads with `<PAD>` (or truncates) to `SEQ_LEN`. A vocabulary is either built from
 * the training captions or taken from the task's own dictionary, in which case the ids
 * equal the task's (`<PAD>` = 5427, `<RARE>` = 5428).
 *
 * @example
 * ```ts
 * import { buildVocabulary, tokenize } from "./tokenize.ts";
 * const vocab = buildVocabulary(["a red flower", "a blue flower"]);
 * tokenize(vocab, "A red, RED flower!"); // ids of a red red flower, then <PAD> × 16
 * ```
 */

export const SEQ_LEN = 20;
/** The padding word (id 0 in a built vocabulary). */
export const PAD = "<PAD>";
/** The word that stands for any unknown word (id 1 in a built vocabulary). */
export const RARE = "<RARE>";

/** Words ↔ ids, with the pad and rare ids. */
export interface Vocabulary {
  readonly wordToId: ReadonlyMap<string, number>;
  readonly idToWord: ReadonlyMap<number, string>;
  readonly padId: number;
  readonly rareId: number;
  /** One more than the largest id: the size of an embedding table. */
  readonly size: number;
}

/** Lower case, punctuation out, split on white space. */
export const words = (text: string): string[] =>
  text.toLowerCase().replace(/[^a-z0-9\s]+/g, " ").split(/\s+/).filter((w) => w.length > 0);

/**
 * Vocabulary from captions: `<PAD>` = 0, `<RARE>` = 1, then words seen at least
 * `minCount` times, most frequent first (ties alphabetical, so the ids are stable).
 *
 * @example
 * ```ts
 * import { buildVocabulary } from "../mod.ts";
 *
 * const vocab = buildVocabulary(["a red flower", "a blue flower"]);
 * console.log(vocab.size, vocab.wordToId.get("a"), vocab.wordToId.get("blue")); // 6 2 4
 * console.log(buildVocabulary(["a red flower", "a blue flower"], 2).size); // 4: <PAD> <RARE> a flower
 * ```
 */
export function buildVocabulary(captions: Iterable<string>, minCount = 1): Vocabulary {
  const counts = new Map<string, number>();
  for (const caption of captions) {
    for (const w of words(caption)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const kept = [...counts].filter(([, n]) => n >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  return fromWordList([PAD, RARE, ...kept]);
}

/** Vocabulary whose ids are the positions in `list`; `list` must hold `<PAD>` and `<RARE>`. */
export function fromWordList(list: readonly string[]): Vocabulary {
  return fromPairs(list.map((w, i) => [w, i]));
}

/** Vocabulary from explicit (word, id) pairs, e.g. the task's `word2Id.npy`. */
export function fromPairs(pairs: Iterable<readonly [string, number]>): Vocabulary {
  const wordToId = new Map<string, number>();
  const idToWord = new Map<number, string>();
  let size = 0;
  for (const [w, id] of pairs) {
    wordToId.set(w, id);
    idToWord.set(id, w);
    size = Math.max(size, id + 1);
  }
  const padId = wordToId.get(PAD);
  const rareId = wordToId.get(RARE);
  if (padId === undefined || rareId === undefined) {
    throw new Error(`a vocabulary needs ${PAD} and ${RARE} entries`);
  }
  return { wordToId, idToWord, padId, rareId, size };
}

/**
 * Word ids of one caption, padded or truncated to `length`.
 *
 * @example Unknown words become `<RARE>` (1), the rest is `<PAD>` (0).
 * ```ts
 * import { buildVocabulary, tokenize } from "../mod.ts";
 *
 * const vocab = buildVocabulary(["a red flower", "a blue flower"]);
 * console.log(tokenize(vocab, "A red, RED rose!", 6)); // Int32Array(6) [ 2, 5, 5, 1, 0, 0 ]
 * ```
 */
export function tokenize(vocab: Vocabulary, caption: string, length = SEQ_LEN): Int32Array {
  const ids = new Int32Array(length).fill(vocab.padId);
  words(caption).slice(0, length).forEach((w, i) => {
    ids[i] = vocab.wordToId.get(w) ?? vocab.rareId;
  });
  return ids;
}

/** Many captions → one [n, length] row-major id matrix. */
export function tokenizeAll(
  vocab: Vocabulary,
  captions: readonly string[],
  length = SEQ_LEN,
): Int32Array {
  const out = new Int32Array(captions.length * length);
  captions.forEach((c, i) => out.set(tokenize(vocab, c, length), i * length));
  return out;
}

/** Ids → text, `<PAD>` dropped: the inverse of tokenize for known words. */
export const detokenize = (vocab: Vocabulary, ids: ArrayLike<number>): string =>
  Array.from(ids).filter((id) => id !== vocab.padId)
    .map((id) => vocab.idToWord.get(id) ?? RARE).join(" ");

/** Serializable form, for checkpoints: the words in id order (holes as ""). */
export function vocabularyToJson(vocab: Vocabulary): string[] {
  const list = new Array<string>(vocab.size).fill("");
  for (const [id, w] of vocab.idToWord) list[id] = w;
  return list;
}

export const vocabularyFromJson = (list: readonly string[]): Vocabulary =>
  fromPairs(list.flatMap((w, i) => (w === "" ? [] : [[w, i] as const])));
