/**
 * What every task shares: its flags declared once (tasks/flags.ts), `--help`, backend
 * selection, and one-line errors with a non-zero exit.
 *
 * @example
 * ```ts
 * import { defineTask } from "./flags.ts";
 * import { runTask } from "./cli.ts";
 * const spec = defineTask({ name: "hello", summary: "says hello", flags: {} });
 * await runTask(spec, async () => console.log("hello"));
 * ```
 */
import * as E from "fp-ts/Either";
import { formatError, type PetalError, petalError, PetalFailure } from "../pipeline/io/errors.ts";
import { BACKEND_CHOICES, type BackendChoice, useBackend } from "../pipeline/backends/backend.ts";
import { type Flag, type FlagValues, helpText, parseFlags, type TaskSpec } from "./flags.ts";
import { ensureSyntheticData } from "../pipeline/io/synthetic.ts";

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

/**
 * A task's whole command line: parses `args` against `spec` (a bad flag is one line and
 * exit 1), answers `--help`, else runs `body` under {@link main}.
 */
export async function runTask<F extends Record<string, Flag>>(
  spec: TaskSpec<F>,
  body: (values: FlagValues<F>, positionals: string[]) => Promise<void>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  await main(async () => {
    const parsed = parseFlags(spec, args);
    if (E.isLeft(parsed)) throw new PetalFailure(parsed.left);
    if (parsed.right.help) console.log(helpText(spec));
    else await body(parsed.right.values, parsed.right.positionals);
  });
}

/** The `--backend` flag every task takes. */
export const BACKEND_FLAG = {
  type: "choice",
  choices: BACKEND_CHOICES,
  default: "auto",
  arg: "B",
  help: "compute backend",
} as const satisfies Flag;

/** `--guidance G`, shared by the tasks that draw (infer, quality). */
export const GUIDANCE_FLAG = {
  type: "numbers",
  min: 0,
  arg: "G",
  help:
    "guidance: each condition pushed G times as far from the mean one (1: none); `1,2,3`: every noise at each, the matcher picks",
  defaultText:
    "1,2,3 where the checkpoint keeps its mean condition and matcher; 1.5 with no matcher; else 1",
} as const satisfies Flag;

/** Selects the backend named by --backend and prints it. */
export async function selectBackend(choice: BackendChoice): Promise<string> {
  const name = await useBackend(choice);
  console.log(`backend: ${name}${await adapterNote(name)}`);
  return name;
}

/** On webgpu, the adapter it got: " (adapter: llvmpipe … — vendor …, …, software …)". */
async function adapterNote(name: string): Promise<string> {
  if (name !== "webgpu") return "";
  const { activeAdapter, describeAdapter } = await import("../pipeline/backends/webgpu.ts");
  const a = activeAdapter();
  return a ? ` (adapter: ${describeAdapter(a)})` : "";
}

/**
 * Prints, when the task ran on the native backend, which kernels fell back to tfjs's cpu
 * code for more than 2% of the kernel time: a slow path never stays silent.
 */
export async function reportFallbacks(): Promise<void> {
  const { nativeFallbackSummary } = await import("../pipeline/backends/native.ts");
  const line = nativeFallbackSummary();
  if (line) console.log(line);
}

/** A one-line usage error for a task's positionals. */
export const usageError = (task: string, message: string, usage: string): PetalFailure =>
  new PetalFailure(petalError("BadArgument", `deno task ${task}`, message, `usage: ${usage}`));

/** Prints a PetalError as the tasks do (for code that holds an Either). */
export const printError = (e: PetalError) => console.error(formatError(e));

/** Where the shared data sits, beside the project root. */
export const SHARED = new URL("../../shared/", import.meta.url).pathname.replace(/\/$/, "");
export const DEFAULT_DATA = `${SHARED}/oxford102`;
export const SYNTHETIC_DIR = new URL("../.cache/synthetic", import.meta.url).pathname;
/** The run folder of the generator shipped with the project (`deno task export`). */
export const SHIPPED_MODELS = new URL("../models", import.meta.url).pathname;
export const SHIPPED_MODEL = `${SHIPPED_MODELS}/flowers`;

export const exists = async (path: string) => {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
};

/**
 * --data, --synthetic, or the default: Oxford-102 beside the project, else synthetic;
 * prints which (train and quality).
 */
export async function resolveData(
  values: { data?: string; synthetic?: boolean },
): Promise<string> {
  if (values.data && !values.synthetic) {
    console.log(`data: ${values.data}`);
    return values.data;
  }
  if (!values.synthetic && await exists(`${DEFAULT_DATA}/images`)) {
    console.log(`data: ${DEFAULT_DATA} (Oxford-102, found beside the project)`);
    return DEFAULT_DATA;
  }
  const data = await ensureSyntheticData(SYNTHETIC_DIR);
  console.log(
    `data: ${data} (built-in synthetic flowers${
      values.synthetic ? "" : ": ../shared/oxford102 is absent"
    })`,
  );
  return data;
}
