/**
 * The task's native files at the edge: `dictionary/{word2Id,id2Word}.npy` → a Vocabulary
 * whose ids equal the task's, and `dataset/testData.pkl` → test captions as text.
 *
 * @example The task's test captions, where the task keeps them.
 * ```ts ignore
 * import { loadCaptions } from "./task_files.ts";
 * const rows = await loadCaptions("../shared/competition/dataset/testData.pkl")();
 * // Right([{ id: 6735, caption: "this white and purple flower has ..." }, ...])
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import { pipe } from "fp-ts/function";
import { ioError, type PetalError, petalError } from "./errors.ts";
import { loadTestCaptions, type TestCaption } from "./data.ts";
import {
  decodeTokenIds,
  loadTaskDictionary,
  readTestDataPkl,
  type TaskDictionary,
} from "./formats/task.ts";
import { fromPairs, type Vocabulary } from "../../stages/tokenize.ts";

const readBytes = (path: string, fix: string) =>
  TE.tryCatch(
    () => Deno.readFile(path),
    (e) =>
      e instanceof Deno.errors.NotFound
        ? petalError("MissingFile", path, "no such file", fix)
        : ioError(path, fix)(e),
  );

/** Reads DIR/word2Id.npy and DIR/id2Word.npy. */
export const loadDictionary = (dir: string): TE.TaskEither<PetalError, TaskDictionary> => {
  const fix = "pass --dictionary pointing at the task's dictionary/ folder";
  const paths = { word2Id: `${dir}/word2Id.npy`, id2Word: `${dir}/id2Word.npy` };
  return pipe(
    TE.Do,
    TE.apS("w", readBytes(paths.word2Id, fix)),
    TE.apS("i", readBytes(paths.id2Word, fix)),
    TE.chainEitherK(({ w, i }) => loadTaskDictionary(w, i, paths)),
  );
};

/** The task's vocabulary: token ids equal the task's own (`<PAD>` 5427, `<RARE>` 5428). */
export const loadTaskVocabulary = (dir: string): TE.TaskEither<PetalError, Vocabulary> =>
  pipe(loadDictionary(dir), TE.map((d) => fromPairs(d.wordToId)));

/** Where the dictionary sits for a testData.pkl: `../dictionary` beside `dataset/`. */
export const dictionaryBeside = (pklPath: string) => {
  const parts = pklPath.split("/");
  return [...parts.slice(0, -2), "dictionary"].join("/") || "dictionary";
};

/**
 * Captions from `id,caption` CSV or the task's testData.pkl (decoded with its dictionary).
 *
 * @example An `id,caption` CSV.
 * ```ts
 * import { loadCaptions, unwrap } from "../../mod.ts";
 *
 * const csv = `${await Deno.makeTempDir()}/captions.csv`;
 * await Deno.writeTextFile(csv, "id,caption\n7,a red flower\n9,a white daisy\n");
 * console.log(await unwrap(loadCaptions(csv))); // [ { id: 7, caption: "a red flower" }, { id: 9, caption: "a white daisy" } ]
 * ```
 */
export function loadCaptions(
  path: string,
  dictionaryDir?: string,
): TE.TaskEither<PetalError, TestCaption[]> {
  if (!path.endsWith(".pkl")) return loadTestCaptions(path);
  return pipe(
    TE.Do,
    TE.apS(
      "rows",
      pipe(
        readBytes(path, "pass --captions FILE"),
        TE.chainEitherK((b) => readTestDataPkl(b, path)),
      ),
    ),
    TE.apS("dict", loadDictionary(dictionaryDir ?? dictionaryBeside(path))),
    TE.map(({ rows, dict }) =>
      rows.map((r) => ({ id: r.id, caption: decodeTokenIds(r.tokenIds, dict.idToWord) }))
    ),
  );
}
