/**
 * Typed errors for everything that touches the outside world. Each carries the path it
 * concerns and a fix, so a task can print one line that tells the user what to do.
 *
 * @example
 * ```ts
 * import { petalError, formatError } from "./errors.ts";
 * const e = petalError("MissingFolder", "data/", "no such folder", "pass --data DIR");
 * console.error(formatError(e)); // "error: data/: no such folder — pass --data DIR"
 * ```
 */
import * as E from "fp-ts/Either";
import * as TE from "fp-ts/TaskEither";

/** What kind of problem a {@link PetalError} is. */
export type PetalErrorKind =
  | "MissingFolder"
  | "MissingFile"
  | "NoImages"
  | "MissingCaptions"
  | "EmptyCaptions"
  | "CorruptImage"
  | "BadCsv"
  | "DuplicateId"
  | "BadFormat"
  | "BadCheckpoint"
  | "BadArgument"
  | "Backend"
  | "Io";

/** A problem at the edge: which file, what is wrong, what to do. */
export interface PetalError {
  readonly kind: PetalErrorKind;
  /** The file or folder the problem is in. */
  readonly path: string;
  /** What is wrong, in a few words. */
  readonly message: string;
  /** What the user should do about it. */
  readonly fix: string;
}

/**
 * Makes a {@link PetalError}.
 *
 * @example
 * ```ts
 * petalError("MissingFile", "a.csv", "no such file", "pass --captions FILE");
 * ```
 */
export const petalError = (
  kind: PetalErrorKind,
  path: string,
  message: string,
  fix: string,
): PetalError => ({ kind, path, message, fix });

/**
 * One line: `error: PATH: MESSAGE — FIX`.
 *
 * @example What a failed pipeline says.
 * ```ts
 * import { formatError, loadCaptions } from "../../mod.ts";
 *
 * const r = await loadCaptions("no/such/captions.csv")();
 * if (r._tag === "Left") console.log(formatError(r.left)); // error: no/such/captions.csv: … — …
 * ```
 */
export const formatError = (e: PetalError): string =>
  `error: ${e.path}: ${e.message} — ${e.fix}`.replace(/\s*\n\s*/g, " ");

/** Thrown form, for code that lives in async/await land (tasks, tests). */
export class PetalFailure extends Error {
  constructor(readonly error: PetalError) {
    super(formatError(error));
    this.name = "PetalFailure";
  }
}

/** Wraps an unknown thrown value as an Io error for `path`. */
export const ioError = (path: string, fix: string) => (cause: unknown): PetalError =>
  petalError("Io", path, cause instanceof Error ? cause.message : String(cause), fix);

/**
 * The one bridge from a TaskEither to async code: the Right value, or the Left thrown as
 * a {@link PetalFailure} (which `main` in tasks/cli.ts prints as one line).
 *
 * @example
 * ```ts
 * import * as TE from "fp-ts/TaskEither";
 * import { loadCaptions, unwrap } from "../../mod.ts";
 *
 * console.log(await unwrap(TE.right(3))); // 3
 * await unwrap(loadCaptions("no/such/captions.csv")).catch((e) => console.log(e.message));
 * // error: no/such/captions.csv: no such file — pass --captions pointing at id,caption CSV
 * ```
 */
export async function unwrap<T>(task: TE.TaskEither<PetalError, T>): Promise<T> {
  const result = await task();
  if (E.isLeft(result)) throw new PetalFailure(result.left);
  return result.right;
}

/**
 * The bridge the other way: async code → TaskEither. A {@link PetalFailure} it throws
 * becomes its PetalError; anything else (a disk full, a tensor error) an Io error on
 * `path`. Nothing is rethrown.
 *
 * @example
 * ```ts
 * import { attempt } from "../../mod.ts";
 *
 * const size = attempt(async () => (await Deno.stat("no/such/dir")).size, "no/such/dir");
 * const r = await size();
 * console.log(r._tag, r._tag === "Left" && r.left.kind); // Left Io
 * ```
 */
export const attempt = <T>(
  run: () => Promise<T>,
  path: string,
  fix = "see the message above",
): TE.TaskEither<PetalError, T> =>
  TE.tryCatch(run, (e) => (e instanceof PetalFailure ? e.error : ioError(path, fix)(e)));
