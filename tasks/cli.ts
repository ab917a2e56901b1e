/**
 * What every task shares: `node:util` parseArgs (JSR's @std/cli is unreachable here),
 * backend selection, and one-line errors with a non-zero exit.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * await main(async () => { console.log("work"); });
 * ```
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import * as E from "fp-ts/Either";
import type * as TE from "fp-ts/TaskEither";
import { type PetalError, petalError, PetalFailure } from "../pipeline/errors.ts";
import { type BackendChoice, isBackendChoice, useBackend } from "../pipeline/backend.ts";

/** Runs a task body; a PetalFailure becomes `error: PATH: WHAT — FIX` and exit code 1. */
export async function main(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (e instanceof PetalFailure) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
}

/** The Right value, or throw the Left as a PetalFailure. */
export async function orFail<T>(task: TE.TaskEither<PetalError, T>): Promise<T> {
  const result = await task();
  if (E.isLeft(result)) throw new PetalFailure(result.left);
  return result.right;
}

export const backendOption = {
  backend: { type: "string", default: "auto" },
} as const satisfies ParseArgsConfig["options"];

/** parseArgs with strict checking; an unknown flag is a one-line error, not a stack. */
export function parse<const O extends NonNullable<ParseArgsConfig["options"]>>(
  task: string,
  options: O,
  args: string[] = Deno.args,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new PetalFailure(
      petalError("BadArgument", `deno task ${task}`, (e as Error).message, "see README.md"),
    );
  }
}

/** Selects the backend named by --backend and prints it. */
export async function selectBackend(value: string | undefined): Promise<string> {
  const choice = value ?? "auto";
  if (!isBackendChoice(choice)) {
    throw new PetalFailure(petalError(
      "BadArgument",
      "--backend",
      `unknown backend "${choice}"`,
      "use auto, tensorflow, webgpu, native, wasm or cpu",
    ));
  }
  const name = await useBackend(choice as BackendChoice);
  console.log(`backend: ${name}${await adapterNote(name)}`);
  return name;
}

/** On webgpu, the adapter it got: " (llvmpipe … — vendor …, …, software …)". */
async function adapterNote(name: string): Promise<string> {
  if (name !== "webgpu") return "";
  const { activeAdapter, describeAdapter } = await import("../pipeline/backends/webgpu.ts");
  const a = activeAdapter();
  return a ? ` (adapter: ${describeAdapter(a)})` : "";
}

/** A number flag, checked. */
export function numberFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) {
    throw new PetalFailure(
      petalError("BadArgument", `--${name}`, `"${value}" is not a number`, `pass --${name} N`),
    );
  }
  return n;
}

/** Where the shared data sits, beside the project root. */
export const SHARED = new URL("../../shared/", import.meta.url).pathname.replace(/\/$/, "");
export const DEFAULT_DATA = `${SHARED}/oxford102`;
export const SYNTHETIC_DIR = new URL("../.cache/synthetic", import.meta.url).pathname;

export const exists = async (path: string) => {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
};
