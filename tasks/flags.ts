/**
 * Flags, declared once per task. A task lists its flags (name, type, default, one help
 * line); `--help`, parsing (node:util `parseArgs`, strict), number checks and the README's
 * flag tables all come from that one declaration. JSR's @std/cli is unreachable here, so
 * this is a small module of our own.
 *
 * @example
 * ```ts
 * import { defineTask, parseFlags } from "./flags.ts";
 * const spec = defineTask({
 *   name: "demo",
 *   summary: "prints a greeting",
 *   flags: {
 *     name: { type: "string", default: "flower", arg: "S", help: "who to greet" },
 *     times: { type: "number", default: 1, integer: true, min: 1, help: "how often" },
 *   },
 * });
 * const parsed = parseFlags(spec, ["--times", "2"]);
 * // Right({ help: false, values: { name: "flower", times: 2 }, positionals: [] })
 * ```
 */
import { parseArgs } from "node:util";
import * as E from "fp-ts/Either";
import { type PetalError, petalError } from "../pipeline/io/errors.ts";

interface FlagBase {
  /** One help line (also the README table's "meaning" cell). */
  readonly help: string;
  /** What the README and --help show as default, when it is not just `default`. */
  readonly defaultText?: string;
  /** Internal flags (e.g. bench's --worker) stay out of --help and the README. */
  readonly hidden?: boolean;
}

/** A free-text flag. */
export interface StringFlag extends FlagBase {
  readonly type: "string";
  readonly default?: string;
  /** The placeholder shown after the flag: `--out DIR`. */
  readonly arg?: string;
}

/** A number flag, checked at parse time. */
export interface NumberFlag extends FlagBase {
  readonly type: "number";
  readonly default?: number;
  readonly arg?: string;
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
}

/** Numbers separated by commas (`1,1.5,2`), each checked at parse time. */
export interface NumbersFlag extends FlagBase {
  readonly type: "numbers";
  readonly arg?: string;
  readonly min?: number;
  readonly max?: number;
}

/** One of a fixed set of words. */
export interface ChoiceFlag<C extends string = string> extends FlagBase {
  readonly type: "choice";
  readonly choices: readonly C[];
  readonly default?: C;
  readonly arg?: string;
}

/** A switch: present → true. */
export interface BooleanFlag extends FlagBase {
  readonly type: "boolean";
}

export type Flag = StringFlag | NumberFlag | NumbersFlag | ChoiceFlag | BooleanFlag;

/** The placeholder a flag's help shows for its value when it names none (`arg`). */
const ARG_NAMES = { string: "S", number: "N", numbers: "LIST", choice: "X" } as const;

/** What one task takes. */
export interface TaskSpec<F extends Record<string, Flag>> {
  /** The `deno task NAME`. */
  readonly name: string;
  /** Positional arguments, as shown in the usage line (e.g. `<folder>`). */
  readonly positionals?: string;
  /** One sentence on what the task does. */
  readonly summary: string;
  readonly flags: F;
}

type ValueOf<T extends Flag> = T extends BooleanFlag ? boolean
  : T extends NumberFlag ? (T["default"] extends number ? number : number | undefined)
  : T extends NumbersFlag ? number[] | undefined
  : T extends ChoiceFlag<infer C> ? (T["default"] extends string ? C : C | undefined)
  : T extends StringFlag ? (T["default"] extends string ? string : string | undefined)
  : never;

/** The parsed values of a task's flags, typed from its declaration. */
export type FlagValues<F extends Record<string, Flag>> = {
  -readonly [K in keyof F]: ValueOf<F[K]>;
};

/** The result of parsing: the values, the positionals, and whether --help was asked. */
export interface Parsed<F extends Record<string, Flag>> {
  readonly help: boolean;
  readonly values: FlagValues<F>;
  readonly positionals: string[];
}

/** Declares a task's flags; keeps literal types (choices, defaults) for {@link FlagValues}. */
export const defineTask = <const F extends Record<string, Flag>>(spec: TaskSpec<F>): TaskSpec<F> =>
  spec;

const bad = (flag: string, message: string, fix: string) =>
  E.left(petalError("BadArgument", `--${flag}`, message, fix));

function checkNumber(
  name: string,
  f: NumberFlag | NumbersFlag,
  text: string,
): E.Either<PetalError, number> {
  const n = Number(text);
  const integer = f.type === "number" && f.integer;
  const what = integer ? "an integer" : "a number";
  const range = f.min !== undefined && f.max !== undefined
    ? ` in ${f.min}..${f.max}`
    : f.min !== undefined
    ? ` ≥ ${f.min}`
    : f.max !== undefined
    ? ` ≤ ${f.max}`
    : "";
  const fix = f.type === "numbers"
    ? `pass --${name} ${f.arg ?? "LIST"} (numbers separated by commas, each${range})`
    : `pass --${name} ${f.arg ?? "N"} (${what}${range})`;
  if (text.trim() === "" || !Number.isFinite(n)) return bad(name, `"${text}" is not a number`, fix);
  if (integer && !Number.isInteger(n)) {
    return bad(name, `"${text}" is not an integer`, fix);
  }
  if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) {
    return bad(name, `${n} is out of range`, fix);
  }
  return E.right(n);
}

function convert(name: string, f: Flag, raw: unknown): E.Either<PetalError, unknown> {
  if (f.type === "boolean") return E.right(raw === true);
  if (f.type === "numbers") {
    return raw === undefined
      ? E.right(undefined)
      : E.traverseArray((t: string) => checkNumber(name, f, t))((raw as string).split(","));
  }
  if (raw === undefined) return E.right(f.default);
  const text = raw as string;
  if (f.type === "number") return checkNumber(name, f, text);
  if (f.type === "choice" && !f.choices.includes(text)) {
    return bad(name, `unknown value "${text}"`, `use ${orList(f.choices)}`);
  }
  return E.right(text);
}

const orList = (xs: readonly string[]) =>
  xs.length < 2 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs.at(-1)}`;

/**
 * Parses `args` against a task's declaration: strict (an unknown flag is an error),
 * numbers checked, choices checked, defaults filled in. `--help` sets `help`.
 */
export function parseFlags<F extends Record<string, Flag>>(
  spec: TaskSpec<F>,
  args: readonly string[],
): E.Either<PetalError, Parsed<F>> {
  const options = Object.fromEntries([
    ...Object.entries(spec.flags).map(([name, f]) => [
      name,
      { type: f.type === "boolean" ? "boolean" as const : "string" as const },
    ]),
    ["help", { type: "boolean" as const }],
  ]);
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (e) {
    return E.left(
      petalError(
        "BadArgument",
        `deno task ${spec.name}`,
        (e as Error).message,
        `see deno task ${spec.name} --help`,
      ),
    );
  }
  const raw = parsed.values as Record<string, unknown>;
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const v = convert(name, f, raw[name]);
    if (E.isLeft(v)) return v;
    values[name] = v.right;
  }
  return E.right({
    help: raw.help === true,
    values: values as FlagValues<F>,
    positionals: parsed.positionals,
  });
}

const shownDefault = (f: Flag, code = (s: string) => s): string | undefined =>
  f.defaultText ??
    ("default" in f && f.default !== undefined ? code(String(f.default)) : undefined);

/** `--name ARG` as --help and the README show it. */
export const flagLabel = (name: string, f: Flag): string =>
  f.type === "boolean" ? `--${name}` : `--${name} ${f.arg ?? ARG_NAMES[f.type]}`;

const helpLine = (f: Flag): string => {
  const d = shownDefault(f);
  const choices = f.type === "choice" ? ` (${f.choices.join(", ")})` : "";
  return `${f.help}${choices}${d === undefined ? "" : ` [default: ${d}]`}`;
};

/** The text `deno task NAME --help` prints. */
export function helpText<F extends Record<string, Flag>>(spec: TaskSpec<F>): string {
  const shown = Object.entries(spec.flags).filter(([, f]) => !f.hidden);
  const labels = shown.map(([name, f]) => flagLabel(name, f));
  const width = Math.max(6, ...labels.map((l) => l.length)) + 2;
  return [
    `deno task ${spec.name}${spec.positionals ? ` ${spec.positionals}` : ""} [flags]`,
    `  ${spec.summary}`,
    "",
    ...shown.map(([, f], i) => `  ${labels[i].padEnd(width)}${helpLine(f)}`),
    `  ${"--help".padEnd(width)}this text`,
  ].join("\n");
}

/** The README's flag table of a task (markdown; `deno fmt` aligns its columns). */
export function flagTable<F extends Record<string, Flag>>(spec: TaskSpec<F>): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = Object.entries(spec.flags).filter(([, f]) => !f.hidden).map(([name, f]) => {
    const choices = f.type === "choice" ? `: ${f.choices.map((c) => `\`${c}\``).join(", ")}` : "";
    const d = shownDefault(f, (s) => `\`${s}\``);
    return `| \`${flagLabel(name, f)}\` | ${cell(f.help + choices)} | ${
      d === undefined ? "" : cell(d)
    } |`;
  });
  return ["| flag | meaning | default |", "| --- | --- | --- |", ...rows].join("\n");
}
