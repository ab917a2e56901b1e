/**
 * Data loading at the edge: folders and CSV files → typed records, as fp-ts TaskEither
 * with one PetalError per problem (path + fix).
 *
 * Reed's layout (`cvpr2016_flowers`, and ../shared/oxford102):
 *   DIR/images/image_NNNNN.jpg   (or DIR/jpg/)
 *   DIR/text_c10/class_CCCCC/image_NNNNN.txt   (one caption a line)
 *
 * The class folder is read into {@link ClassLabels}, an opaque type kept apart from the
 * records: GAN and text-encoder code take `CaptionedImage`, which has no class field, so
 * labels cannot leak into them by accident (task rule). Only the evaluator unwraps them.
 *
 * @example Oxford-102 in Reed's layout, where you keep it.
 * ```ts ignore
 * import { loadReedFolder } from "./data.ts";
 * const result = await loadReedFolder("../shared/oxford102")();
 * if (result._tag === "Right") console.log(result.right.records.length); // 7370
 * ```
 */
import * as TE from "fp-ts/TaskEither";
import * as E from "fp-ts/Either";
import { pipe } from "fp-ts/function";
import { parse } from "csv-parse/sync";
import { ioError, type PetalError, petalError } from "./errors.ts";

/** A training image and its captions; no class label (task rule). */
export interface CaptionedImage {
  /** The number in `image_NNNNN.jpg`. */
  readonly imageId: number;
  readonly imagePath: string;
  readonly captions: readonly string[];
}

declare const labelBrand: unique symbol;
/** Class number per image id. Opaque: read it with {@link labelsForEvaluator} only. */
export interface ClassLabels {
  readonly [labelBrand]: true;
}

/** A loaded Reed-layout folder: the records, and the class labels kept apart. */
export interface ReedDataset {
  readonly root: string;
  readonly records: readonly CaptionedImage[];
  readonly labels: ClassLabels;
  /** How many class folders hold images (a count, not a label). */
  readonly classCount: number;
  /** Blank lines inside caption files: skipped, counted so the total stays explainable. */
  readonly blankCaptionLines: number;
}

/**
 * Unwraps class labels. The evaluator (pipeline/evaluator.ts) is the one caller:
 * tests/labels_test.ts fails if any other module of the GAN side calls it.
 */
export const labelsForEvaluator = (labels: ClassLabels): ReadonlyMap<number, number> =>
  labels as unknown as ReadonlyMap<number, number>;

const wrapLabels = (m: Map<number, number>): ClassLabels => m as unknown as ClassLabels;

/** One row of an `id,caption` file, as text (the task's `.pkl` rows are decoded to these). */
export interface TestCaption {
  readonly id: number;
  readonly caption: string;
}

/** Bytes of a caption CSV (the task's has 819 rows in 60 kB). */
export const MAX_CSV_BYTES = 64 << 20;
/** Bytes of one caption file (ten lines of a few hundred bytes). */
export const MAX_CAPTION_FILE_BYTES = 1 << 20;
/** Characters of one CSV record. */
const MAX_RECORD_CHARS = 1 << 16;

/** Reads a text file of at most `max` bytes; a bigger one is a `kind` error naming it. */
const readBoundedText = (
  path: string,
  max: number,
  kind: "BadCsv" | "BadFormat",
  fix: string,
) =>
async (): Promise<E.Either<PetalError, string>> => {
  try {
    const size = (await Deno.stat(path)).size;
    if (size > max) {
      return E.left(petalError(kind, path, `file is ${size} bytes, more than ${max}`, fix));
    }
    return E.right(await Deno.readTextFile(path));
  } catch (e) {
    return E.left(
      e instanceof Deno.errors.NotFound
        ? petalError("MissingFile", path, "no such file", fix)
        : ioError(path, fix)(e),
    );
  }
};

const IMAGE_NAME = /^image_(\d+)\.jpe?g$/i;
const TEXT_NAME = /^image_(\d+)\.txt$/;
const CLASS_NAME = /^class_(\d+)$/;

const join = (...parts: string[]) => parts.join("/").replace(/\/+/g, "/");

async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(path)) out.push(e);
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

const isDir = async (path: string) => {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
};

/** The image folder of a Reed layout: `images/`, else `jpg/`. */
const findImageDir = (root: string): TE.TaskEither<PetalError, string> => async () => {
  if (!(await isDir(root))) {
    return E.left(petalError(
      "MissingFolder",
      root,
      "no such folder",
      "pass --data pointing at a folder with images/ and text_c10/",
    ));
  }
  for (const name of ["images", "jpg"]) {
    if (await isDir(join(root, name))) return E.right(join(root, name));
  }
  return E.left(petalError(
    "NoImages",
    root,
    "no images/ or jpg/ folder",
    "put the JPEGs in DIR/images/image_NNNNN.jpg",
  ));
};

const readImageNames = (dir: string): TE.TaskEither<PetalError, Map<number, string>> =>
  pipe(
    TE.tryCatch(() => listDir(dir), ioError(dir, "check the folder's permissions")),
    TE.chain((entries) => {
      const byId = new Map<number, string>();
      for (const e of entries) {
        const m = e.isFile ? IMAGE_NAME.exec(e.name) : null;
        if (m) byId.set(Number(m[1]), join(dir, e.name));
      }
      return byId.size > 0 ? TE.right(byId) : TE.left(petalError(
        "NoImages",
        dir,
        "no image_NNNNN.jpg files",
        "put the training JPEGs here, named image_NNNNN.jpg",
      ));
    }),
  );

interface CaptionFile {
  readonly imageId: number;
  readonly classId: number;
  readonly path: string;
}

const readCaptionIndex = (root: string): TE.TaskEither<PetalError, CaptionFile[]> => async () => {
  const textDir = join(root, "text_c10");
  if (!(await isDir(textDir))) {
    return E.left(petalError(
      "MissingCaptions",
      textDir,
      "no caption folder",
      "add text_c10/class_CCCCC/image_NNNNN.txt caption files",
    ));
  }
  const files: CaptionFile[] = [];
  for (const cls of await listDir(textDir)) {
    const c = cls.isDirectory ? CLASS_NAME.exec(cls.name) : null;
    if (!c) continue;
    for (const f of await listDir(join(textDir, cls.name))) {
      const m = f.isFile ? TEXT_NAME.exec(f.name) : null;
      if (m) {
        files.push({
          imageId: Number(m[1]),
          classId: Number(c[1]),
          path: join(textDir, cls.name, f.name),
        });
      }
    }
  }
  return E.right(files);
};

/** Caption lines of one file: trimmed, blank lines dropped. */
export const captionLines = (text: string): string[] =>
  text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);

interface CaptionText {
  readonly lines: string[];
  readonly blank: number;
}

const readCaptions = (file: CaptionFile): TE.TaskEither<PetalError, CaptionText> =>
  pipe(
    readBoundedText(
      file.path,
      MAX_CAPTION_FILE_BYTES,
      "BadFormat",
      "keep one short caption a line in each caption file",
    ),
    TE.chain((text) => {
      const lines = captionLines(text);
      const blank = text.replace(/\r?\n$/, "").split(/\r?\n/).length - lines.length;
      return lines.length > 0 ? TE.right({ lines, blank }) : TE.left(petalError(
        "EmptyCaptions",
        file.path,
        "caption file is empty",
        "write at least one caption line, or remove the image",
      ));
    }),
  );

/**
 * Loads a Reed-layout folder: every image paired with its captions; labels apart.
 *
 * @example The synthetic set, which is written in Reed's layout.
 * ```ts
 * import { ensureSyntheticData, loadReedFolder, unwrap } from "../../mod.ts";
 *
 * const data = await ensureSyntheticData(`${await Deno.makeTempDir()}/data`, { trainImages: 16, testImages: 2 });
 * const set = await unwrap(loadReedFolder(data));
 * console.log(set.records.length, set.classCount); // 16 10
 * console.log(set.records[0].captions.length > 0); // true: every image has its captions
 * ```
 */
export const loadReedFolder = (root: string): TE.TaskEither<PetalError, ReedDataset> =>
  pipe(
    TE.Do,
    TE.bind("imageDir", () => findImageDir(root)),
    TE.bind("images", ({ imageDir }) => readImageNames(imageDir)),
    TE.bind("captionFiles", () => readCaptionIndex(root)),
    TE.chain(({ images, captionFiles }) => {
      const byImage = new Map(captionFiles.map((f) => [f.imageId, f]));
      for (const [id, path] of images) {
        if (!byImage.has(id)) {
          return TE.left(petalError(
            "MissingCaptions",
            path,
            "image has no caption file",
            `add text_c10/class_CCCCC/image_${String(id).padStart(5, "0")}.txt or remove the image`,
          ));
        }
      }
      const ids = [...images.keys()].sort((a, b) => a - b);
      return pipe(
        TE.traverseSeqArray((id: number) => readCaptions(byImage.get(id)!))(ids),
        TE.map((captionLists): ReedDataset => ({
          root,
          records: ids.map((id, i) => ({
            imageId: id,
            imagePath: images.get(id)!,
            captions: captionLists[i].lines,
          })),
          labels: wrapLabels(new Map(ids.map((id) => [id, byImage.get(id)!.classId]))),
          classCount: new Set(ids.map((id) => byImage.get(id)!.classId)).size,
          blankCaptionLines: captionLists.reduce((n, c) => n + c.blank, 0),
        })),
      );
    }),
  );

/** Parses `id,caption` CSV text; `path` only names the file in errors. */
export function parseTestCaptions(text: string, path: string): E.Either<PetalError, TestCaption[]> {
  const header = text.split(/\r?\n/, 1)[0].replace(/^\uFEFF/, "").trim();
  if (header !== "id,caption") {
    return E.left(petalError(
      "BadCsv",
      path,
      `header is "${header.slice(0, 40)}", expected "id,caption"`,
      "make the first line exactly: id,caption",
    ));
  }
  let rows: Record<string, string>[];
  try {
    rows = parse(text, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      max_record_size: MAX_RECORD_CHARS,
    });
  } catch (e) {
    const message = String((e as Error)?.message ?? e).split("\n")[0];
    return E.left(petalError("BadCsv", path, message, "fix the CSV quoting"));
  }
  const seen = new Set<number>();
  const out: TestCaption[] = [];
  for (const [i, row] of rows.entries()) {
    const id = /^\d{1,15}$/.test(row.id ?? "") ? Number(row.id) : NaN;
    if (!Number.isInteger(id)) {
      return E.left(petalError(
        "BadCsv",
        path,
        `row ${i + 2}: id "${row.id}" is not a non-negative integer`,
        "use integer image ids",
      ));
    }
    if (seen.has(id)) {
      return E.left(petalError(
        "DuplicateId",
        path,
        `row ${i + 2}: id ${id} appears twice`,
        "keep one caption per id",
      ));
    }
    seen.add(id);
    const caption = row.caption ?? "";
    if (caption === "") {
      return E.left(petalError(
        "BadCsv",
        path,
        `row ${i + 2}: id ${id} has an empty caption`,
        "write a caption for it, or remove the row",
      ));
    }
    out.push({ id, caption });
  }
  return E.right(out);
}

/** Reads a test-caption CSV file. */
export const loadTestCaptions = (path: string): TE.TaskEither<PetalError, TestCaption[]> =>
  pipe(
    readBoundedText(path, MAX_CSV_BYTES, "BadCsv", "pass --captions pointing at id,caption CSV"),
    TE.chainEitherK((text) => parseTestCaptions(text, path)),
  );

export interface DataSummary {
  readonly images: number;
  readonly captions: number;
  readonly classes: number;
  readonly vocabulary: number;
  /** caption length in words → count */
  readonly lengthHistogram: ReadonlyMap<number, number>;
}

/** Counts for `deno task data`. Pure. */
export function summarizeData(
  records: readonly CaptionedImage[],
  classCount: number,
  vocabularySize: number,
  wordCount: (caption: string) => number,
): DataSummary {
  const lengthHistogram = new Map<number, number>();
  let captions = 0;
  for (const r of records) {
    for (const c of r.captions) {
      captions++;
      const n = wordCount(c);
      lengthHistogram.set(n, (lengthHistogram.get(n) ?? 0) + 1);
    }
  }
  return {
    images: records.length,
    captions,
    classes: classCount,
    vocabulary: vocabularySize,
    lengthHistogram,
  };
}
