/**
 * Images at the edge: JPEG/PNG decode and encode through sharp, Float32 in [-1, 1], and a
 * decoded-image cache so that epochs after the first (and later runs) never decode a
 * JPEG again.
 *
 * @example An image of yours, as the model reads it.
 * ```ts ignore
 * import { decodeImage, toUnitRange } from "./images.ts";
 * const rgb = await decodeImage("../shared/oxford102/images/image_00001.jpg", 64);
 * const x = toUnitRange(rgb); // Float32Array of 64·64·3 in [-1, 1]
 * ```
 */
import sharp from "sharp";
import * as TE from "fp-ts/TaskEither";
import * as E from "fp-ts/Either";
import { ioError, type PetalError, petalError } from "./errors.ts";
import type { ImageStack } from "../../stages/augment.ts";

export type { ImageStack };

/**
 * Pixels an input image may have (width × height, 2^25: e.g. 5792²): a JPEG header can
 * claim 65535² and make the decoder allocate gigabytes before it finds the data short.
 */
export const MAX_INPUT_PIXELS = 1 << 25;

/** Decodes any image sharp reads and resizes it (whole image, aspect not kept) to size². */
export async function decodeImage(path: string | Uint8Array, size: number): Promise<Uint8Array> {
  const data = await sharp(path, { limitInputPixels: MAX_INPUT_PIXELS }).removeAlpha()
    .resize(size, size, { fit: "fill" }).toColourspace("srgb").raw().toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Decode with a typed error that names the file; `bytes`, when given, are the file's
 * contents already read (the fuzz suite decodes mutated JPEGs without writing them).
 */
export const decodeImageTE = (
  path: string,
  size: number,
  bytes?: Uint8Array,
): TE.TaskEither<PetalError, Uint8Array> =>
  TE.tryCatch(
    () => decodeImage(bytes ?? path, size),
    (e) =>
      petalError(
        "CorruptImage",
        path,
        `cannot decode image (${String((e as Error)?.message ?? e).split("\n")[0]})`,
        "replace or delete the file and its caption file",
      ),
  );

/** Bytes 0..255 → Float32 in [-1, 1]. */
export function toUnitRange(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 127.5 - 1;
  return out;
}

/** Float32 in [-1, 1] → bytes, clamped and rounded. */
export function toBytes(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.max(0, Math.min(255, Math.round((x[i] + 1) * 127.5)));
  }
  return out;
}

/** The temp-file name prefix of `path` for process `pid`: `PATH.PID.`. */
const tempPrefix = (path: string, pid: number) => `${path}.${pid}.`;

/** A path's folder and file name (`.` for a bare name). */
function splitPath(path: string): [string, string] {
  const cut = path.lastIndexOf("/");
  return [cut < 0 ? "." : path.slice(0, cut) || "/", path.slice(cut + 1)];
}

/**
 * Removes temp files another process left beside `path` (a kill mid-write): any
 * `PATH.PID.XXXXXXXX.tmp` of a PID other than this one. Temps of this process may belong
 * to a write still in flight, so they stay.
 */
export async function removeStaleTemps(path: string): Promise<number> {
  const [dir, base] = splitPath(path);
  return await removeStaleTempsOf(dir, new Set([base]));
}

/** {@link removeStaleTemps} for several file names of one folder, in one listing. */
async function removeStaleTempsOf(dir: string, bases: ReadonlySet<string>): Promise<number> {
  const stale = /^(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;
  let removed = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.isFile ? stale.exec(e.name) : null;
      if (m && bases.has(m[1]) && Number(m[2]) !== Deno.pid) {
        await Deno.remove(`${dir}/${e.name}`).then(() => removed++, () => {});
      }
    }
  } catch { /* no folder yet: nothing stale */ }
  return removed;
}

/** Flushes a folder's entries (a rename) to disk; a no-op where folders cannot be opened. */
async function syncDir(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    /* Windows, or a file system without directory fsync */
  } finally {
    f?.close();
  }
}

/**
 * Writes `bytes` to a temp file beside `path`, fsyncs it, renames it over `path`, then
 * fsyncs the folder: never a half-written file, even across a power cut. Temp files a
 * killed writer left behind are removed first.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await removeStaleTemps(path);
  await renameIn(await writeTemp(path, bytes), path);
  await syncDir(splitPath(path)[0]);
}

/**
 * {@link writeFileAtomic} for many files of one folder (`files`: name → bytes): the temps
 * are written and fsynced side by side, then renamed, and the folder is fsynced once.
 * Each file is either as it was or wholly new; where a write fails, no temp stays and the
 * files not yet renamed keep their old contents.
 *
 * @example
 * ```ts
 * import { writeFilesAtomic } from "./images.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFilesAtomic(dir, new Map([["a.txt", "one"], ["b.txt", "two"]]));
 * console.log(await Deno.readTextFile(`${dir}/b.txt`)); // two
 * ```
 */
export async function writeFilesAtomic(
  dir: string,
  files: ReadonlyMap<string, Uint8Array | string>,
): Promise<void> {
  await removeStaleTempsOf(dir, new Set(files.keys()));
  const written = await Promise.allSettled(
    [...files].map(async ([name, bytes]) => [await writeTemp(`${dir}/${name}`, bytes), name]),
  );
  const failed = written.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(
      written.map((r) =>
        r.status === "fulfilled" ? Deno.remove(r.value[0]).catch(() => {}) : undefined
      ),
    );
    throw (failed as PromiseRejectedResult).reason;
  }
  const temps = (written as PromiseFulfilledResult<[string, string]>[]).map((r) => r.value);
  for (const [i, [tmp, name]] of temps.entries()) {
    await renameIn(tmp, `${dir}/${name}`).catch(async (e) => {
      await Promise.all(temps.slice(i + 1).map(([t]) => Deno.remove(t).catch(() => {})));
      throw e;
    });
  }
  await syncDir(dir);
}

/** `bytes` in a fresh fsynced temp file beside `path` (removed again if the write fails). */
async function writeTemp(path: string, bytes: Uint8Array | string): Promise<string> {
  const tmp = `${tempPrefix(path, Deno.pid)}${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      for (let at = 0; at < data.length;) at += await file.write(data.subarray(at));
      await file.sync();
    } finally {
      file.close();
    }
    return tmp;
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Renames a temp over `path`; the temp is removed if that fails. */
async function renameIn(tmp: string, path: string): Promise<void> {
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

const rawInput = (rgb: Uint8Array, width: number, height: number) =>
  sharp(rgb, { raw: { width, height, channels: 3 } });

/**
 * RGB bytes (height·width·3) → JPEG bytes.
 *
 * @example A red 64×64 image, as a JPEG file.
 * ```ts
 * import { encodeJpeg } from "../../mod.ts";
 *
 * const red = new Uint8Array(64 * 64 * 3).map((_, i) => (i % 3 === 0 ? 220 : 30));
 * const jpeg = await encodeJpeg(red, 64);
 * console.log(jpeg[0].toString(16), jpeg[1].toString(16)); // ff d8: a JPEG's first bytes
 * await Deno.writeFile(`${await Deno.makeTempDir()}/red.jpg`, jpeg);
 * ```
 */
export async function encodeJpeg(
  rgb: Uint8Array,
  width: number,
  height = width,
  quality = 95,
): Promise<Uint8Array> {
  return new Uint8Array(await rawInput(rgb, width, height).jpeg({ quality }).toBuffer());
}

/** RGB bytes (height·width·3) → PNG bytes. */
export async function encodePng(
  rgb: Uint8Array,
  width: number,
  height: number,
): Promise<Uint8Array> {
  return new Uint8Array(await rawInput(rgb, width, height).png().toBuffer());
}

/** A stack of decoded images: n × size × size × 3 bytes. */
async function cacheKey(paths: readonly string[], size: number): Promise<string> {
  const stats = await Promise.all(paths.map((p) => Deno.stat(p)));
  const text = paths.map((p, i) => `${p}:${stats[i].size}:${stats[i].mtime?.getTime()}`).join("\n");
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${size}\n${text}`),
  );
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Decodes `paths` at `size` into one stack, reading `cacheDir/images-<key>.u8` when a
 * cache for exactly these files (paths, sizes, mtimes) and size exists. Decoding runs a
 * few images at a time; the first corrupt image stops it with an error naming the file.
 */
export const loadImageStack = (
  paths: readonly string[],
  size: number,
  cacheDir?: string,
  onProgress?: (done: number, total: number) => void,
): TE.TaskEither<PetalError, ImageStack> =>
async () => {
  const per = size * size * 3;
  let cachePath: string | undefined;
  if (cacheDir) {
    try {
      cachePath = `${cacheDir}/images-${size}-${await cacheKey(paths, size)}.u8`;
      const bytes = await Deno.readFile(cachePath);
      if (bytes.length === per * paths.length) {
        return E.right({ count: paths.length, size, bytes });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        return E.left(ioError(cacheDir, "delete the cache folder")(e));
      }
    }
  }
  const bytes = new Uint8Array(per * paths.length);
  const width = 8;
  for (let start = 0; start < paths.length; start += width) {
    const chunk = paths.slice(start, start + width);
    const decoded = await Promise.all(chunk.map((p) => decodeImageTE(p, size)()));
    for (const [j, d] of decoded.entries()) {
      if (E.isLeft(d)) return d;
      bytes.set(d.right, (start + j) * per);
    }
    onProgress?.(Math.min(start + width, paths.length), paths.length);
  }
  if (cachePath && cacheDir) {
    try {
      await Deno.mkdir(cacheDir, { recursive: true });
      await writeFileAtomic(cachePath, bytes);
    } catch (e) {
      return E.left(ioError(cachePath, "make the cache folder writable or pass --cache")(e));
    }
  }
  return E.right({ count: paths.length, size, bytes });
};

/**
 * Checks that every image decodes (fully: a truncated JPEG or a text file named .jpg
 * fails), a few at a time; the first that does not is a CorruptImage error naming it.
 * Decodes at 8×8, which lets libjpeg scale while decoding.
 *
 * @example
 * ```ts ignore
 * import { checkImagesDecode } from "./images.ts";
 * const ok = await checkImagesDecode(["../shared/oxford102/images/image_00001.jpg"])();
 * ```
 */
export const checkImagesDecode =
  (paths: readonly string[]): TE.TaskEither<PetalError, number> => async () => {
    const width = 8;
    for (let start = 0; start < paths.length; start += width) {
      const chunk = paths.slice(start, start + width);
      const decoded = await Promise.all(chunk.map((p) => decodeImageTE(p, 8)()));
      const bad = decoded.find(E.isLeft);
      if (bad) return bad;
    }
    return E.right(paths.length);
  };
