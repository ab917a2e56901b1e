/**
 * Typed errors for everything that touches the outside world. Each carries the path it
 * concerns and a fix, so a task can print one line that tells the user what to do.
 *
 * @example
 * ```ts
 * import { petalError, formatError } from "./errors.ts";
 * const e = petalError("MissingFolder", "data/", "pass --data pointing at an Oxford-102 folder");
 * console.error(formatError(e)); // "error: data/: missing folder — pass --data ..."
 * ```
 */

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

export interface PetalError {
  readonly kind: PetalErrorKind;
  /** The file or folder the problem is in. */
  readonly path: string;
  /** What is wrong, in a few words. */
  readonly message: string;
  /** What the user should do about it. */
  readonly fix: string;
}

export const petalError = (
  kind: PetalErrorKind,
  path: string,
  message: string,
  fix: string,
): PetalError => ({ kind, path, message, fix });

/** One line: `error: PATH: MESSAGE — FIX`. */
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
