/**
 * The Reverse Image Caption task's own files, read without Python: the vocabulary
 * (`dictionary/word2Id.npy`, `dictionary/id2Word.npy`) and the test captions
 * (`dataset/testData.pkl`, a pandas DataFrame of `ID` and 20 token ids per caption).
 *
 * @example
 * ```ts
 * import * as E from "fp-ts/Either";
 * import { decodeTokenIds, loadTaskDictionary, readTestDataPkl } from "./task.ts";
 * const dir = "/work/shared/competition/";
 * const dict = loadTaskDictionary(
 *   await Deno.readFile(dir + "dictionary/word2Id.npy"),
 *   await Deno.readFile(dir + "dictionary/id2Word.npy"),
 * );
 * const test = readTestDataPkl(await Deno.readFile(dir + "dataset/testData.pkl"));
 * if (E.isRight(dict) && E.isRight(test)) {
 *   console.log(decodeTokenIds(test.right[0].tokenIds, dict.right.idToWord));
 * }
 * ```
 */

import * as E from "fp-ts/Either";
import { pipe } from "fp-ts/function";
import { type PetalError, petalError } from "../errors.ts";
import { parseNpy } from "./npy.ts";
import { readPandasDataFrame } from "./pandas.ts";
import { parsePickle } from "./pickle.ts";

/** Padding token and its id in the task's dictionary (fills captions up to 20 ids). */
export const PAD_TOKEN = "<PAD>";
/** The task's `<PAD>` id (also id 0 in `id2Word.npy`). */
export const PAD_ID = 5427;
/** Out-of-vocabulary token and its id. */
export const RARE_TOKEN = "<RARE>";
/** The task's `<RARE>` id: words not in the dictionary. */
export const RARE_ID = 5428;
/** Token ids per caption in the task's files. */
export const CAPTION_LENGTH = 20;

/** Both directions of the task's vocabulary. */
export interface TaskDictionary {
  /** Word → id. Like Python's `dict(word2Id)`, a repeated word keeps its last id. */
  readonly wordToId: ReadonlyMap<string, number>;
  readonly idToWord: ReadonlyMap<number, string>;
}

/** One row of `testData.pkl`: the image number and its caption as token ids. */
export interface TestTokens {
  readonly id: number;
  readonly tokenIds: number[];
}

const bad = (path: string, message: string, fix: string): PetalError =>
  petalError("BadFormat", path, message, fix);

const DICT_FIX = "use the task's original dictionary/word2Id.npy and id2Word.npy";

/** An (N, 2) array of strings → its rows as pairs. */
const stringPairs = (
  bytes: Uint8Array,
  path: string,
): E.Either<PetalError, [string, string][]> =>
  pipe(
    parseNpy(bytes, path),
    E.flatMap((a) =>
      a.shape.length === 2 && a.shape[1] === 2 && /^[<>|=]?U\d+$/.test(a.dtype) &&
        Array.isArray(a.data)
        ? E.right(
          Array.from(
            { length: a.shape[0] },
            (_, i) => [a.data[2 * i], a.data[2 * i + 1]] as [string, string],
          ),
        )
        : E.left(
          bad(
            path,
            `expected an (N, 2) array of strings, got ${a.dtype} ${JSON.stringify(a.shape)}`,
            DICT_FIX,
          ),
        )
    ),
  );

const parseId = (s: string): number | undefined => /^\d+$/.test(s) ? Number(s) : undefined;

/**
 * Builds both vocabulary maps from the bytes of `word2Id.npy` (rows `[word, id]`) and
 * `id2Word.npy` (rows `[id, word]`). Checks that ids are decimal integers, unique per file, that
 * the two files hold the same pairs, and that `<PAD>` = 5427 and `<RARE>` = 5428.
 *
 * The real dictionary lists `<PAD>` twice (ids 0 and 5427); `wordToId` keeps 5427 as Python's
 * `dict()` would, while `idToWord` maps both ids to `<PAD>`.
 *
 * @example
 * ```ts
 * import { loadTaskDictionary } from "./task.ts";
 * const d = loadTaskDictionary(await Deno.readFile("word2Id.npy"), await Deno.readFile("id2Word.npy"));
 * // Right({ wordToId: Map { "<PAD>" => 5427, "flower" => 1, ... }, idToWord: Map { 0 => "<PAD>", ... } })
 * ```
 */
export const loadTaskDictionary = (
  word2IdBytes: Uint8Array,
  id2WordBytes: Uint8Array,
  paths: { readonly word2Id: string; readonly id2Word: string } = {
    word2Id: "word2Id.npy",
    id2Word: "id2Word.npy",
  },
): E.Either<PetalError, TaskDictionary> =>
  pipe(
    E.Do,
    E.apS("w2i", stringPairs(word2IdBytes, paths.word2Id)),
    E.apS("i2w", stringPairs(id2WordBytes, paths.id2Word)),
    E.flatMap(({ w2i, i2w }) => {
      const idToWord = new Map<number, string>();
      for (const [idText, word] of i2w) {
        const id = parseId(idText);
        if (id === undefined) {
          return E.left(
            bad(paths.id2Word, `id ${JSON.stringify(idText)} is not an integer`, DICT_FIX),
          );
        }
        if (idToWord.has(id)) return E.left(bad(paths.id2Word, `id ${id} appears twice`, DICT_FIX));
        idToWord.set(id, word);
      }
      const wordToId = new Map<string, number>();
      const seen = new Set<number>();
      for (const [word, idText] of w2i) {
        const id = parseId(idText);
        if (id === undefined) {
          return E.left(
            bad(paths.word2Id, `id ${JSON.stringify(idText)} is not an integer`, DICT_FIX),
          );
        }
        if (seen.has(id)) return E.left(bad(paths.word2Id, `id ${id} appears twice`, DICT_FIX));
        seen.add(id);
        // Both files must describe one vocabulary, or decoded captions silently drift.
        if (idToWord.get(id) !== word) {
          return E.left(
            bad(
              paths.word2Id,
              `pair (${JSON.stringify(word)}, ${id}) disagrees with ${paths.id2Word} (${
                JSON.stringify(idToWord.get(id) ?? null)
              })`,
              DICT_FIX,
            ),
          );
        }
        wordToId.set(word, id);
      }
      if (seen.size !== idToWord.size) {
        return E.left(
          bad(
            paths.word2Id,
            `has ${seen.size} ids but ${paths.id2Word} has ${idToWord.size}`,
            DICT_FIX,
          ),
        );
      }
      for (const [token, id] of [[PAD_TOKEN, PAD_ID], [RARE_TOKEN, RARE_ID]] as const) {
        if (wordToId.get(token) !== id || idToWord.get(id) !== token) {
          return E.left(
            bad(
              paths.word2Id,
              `${token} is not id ${id} (found ${wordToId.get(token) ?? "none"})`,
              DICT_FIX,
            ),
          );
        }
      }
      return E.right({ wordToId, idToWord });
    }),
  );

/** A caption cell: a list of token ids as ints or as numpy strings of digits. */
const tokenIdsOf = (cell: unknown): number[] | undefined => {
  if (!Array.isArray(cell)) return undefined;
  const ids = cell.map((t) =>
    typeof t === "number" && Number.isInteger(t) && t >= 0
      ? t
      : typeof t === "bigint" && t >= 0n && t <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(t)
      : typeof t === "string" && /^\d+$/.test(t.trim())
      ? Number(t.trim())
      : NaN
  );
  return ids.every(Number.isInteger) ? ids : undefined;
};

/**
 * Reads `testData.pkl` (pandas DataFrame with columns `ID` and `Captions`) into rows of image id
 * and token ids, in file order.
 *
 * @example
 * ```ts
 * import { readTestDataPkl } from "./task.ts";
 * const rows = readTestDataPkl(await Deno.readFile("testData.pkl"), "testData.pkl");
 * // Right([{ id: 6735, tokenIds: [4, 12, 3, 16, 1, 5, 791, 2, 3, 78, 59, 5427, ...] }, ...])
 * ```
 */
export const readTestDataPkl = (
  bytes: Uint8Array,
  path = "testData.pkl",
): E.Either<PetalError, TestTokens[]> =>
  pipe(
    parsePickle(bytes, path),
    E.flatMap((v) => readPandasDataFrame(v, path)),
    E.flatMap((df) => {
      const fix = "use the task's original dataset/testData.pkl";
      for (const c of ["ID", "Captions"]) {
        if (!df.columns.includes(c)) {
          return E.left(bad(path, `no ${c} column (columns: ${df.columns.join(", ")})`, fix));
        }
      }
      const out: TestTokens[] = [];
      for (const [i, row] of df.rows.entries()) {
        const id = row.ID;
        const tokenIds = tokenIdsOf(row.Captions);
        if (typeof id !== "number" || !Number.isInteger(id)) {
          return E.left(
            bad(path, `row ${i}: ID ${JSON.stringify(String(id))} is not an integer`, fix),
          );
        }
        if (tokenIds === undefined) {
          return E.left(bad(path, `row ${i} (ID ${id}): Captions is not a list of token ids`, fix));
        }
        out.push({ id, tokenIds });
      }
      return E.right(out);
    }),
  );

/**
 * Token ids → caption text: drops padding, maps ids missing from the dictionary to `<RARE>`.
 *
 * @example
 * ```ts
 * import { decodeTokenIds } from "./task.ts";
 * decodeTokenIds([4, 1, 5427], new Map([[4, "this"], [1, "flower"], [5427, "<PAD>"]])); // "this flower"
 * ```
 */
export const decodeTokenIds = (
  tokenIds: readonly number[],
  idToWord: ReadonlyMap<number, string>,
): string =>
  tokenIds
    .map((id) => idToWord.get(id) ?? RARE_TOKEN)
    .filter((w) => w !== PAD_TOKEN)
    .join(" ");
