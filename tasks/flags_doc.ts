/**
 * The README's (and docs/serve.md's) flag tables, written from the tasks' declarations:
 * every `<!-- flags:NAME -->` … `<!-- /flags -->` block is replaced with the table of
 * task NAME. `deno task flags-doc` rewrites the files; tests/flags_test.ts checks they
 * are current.
 *
 * @example
 * ```sh
 * deno task flags-doc && deno fmt README.md docs/serve.md
 * ```
 */
import { type Flag, flagTable, type TaskSpec } from "./flags.ts";
import { TRAIN } from "./train.ts";
import { INFER } from "./infer.ts";
import { SCORE } from "./score.ts";
import { DATA } from "./data.ts";
import { EVALUATOR } from "./evaluator.ts";
import { SERVE } from "./serve.ts";
import { BENCH } from "./bench/bench.ts";
import { SCORE_CHECK } from "./score_check.ts";
import { QUALITY } from "./quality.ts";
import { EXPORT } from "./export.ts";
import { FUZZ } from "./fuzz.ts";

/** Every task's declaration, by task name. */
export const TASKS: ReadonlyMap<string, TaskSpec<Record<string, Flag>>> = new Map(
  [TRAIN, INFER, SCORE, DATA, EVALUATOR, SERVE, BENCH, SCORE_CHECK, QUALITY, EXPORT, FUZZ].map((
    t,
  ) => [t.name, t]),
);

/** The files that hold flag tables. */
export const DOCS = ["README.md", "docs/serve.md"];

const BLOCK = /<!-- flags:([\w-]+) -->\n[\s\S]*?<!-- \/flags -->/g;

/** `text` with every flag block rewritten from the declarations. */
export const withFlagTables = (text: string): string =>
  text.replace(BLOCK, (_, name: string) => {
    const spec = TASKS.get(name);
    if (!spec) throw new Error(`flag block for unknown task "${name}"`);
    return `<!-- flags:${name} -->\n\n${flagTable(spec)}\n\n<!-- /flags -->`;
  });

/** The flag blocks of `text`: task name → table rows as trimmed cells. */
export function flagBlocks(text: string): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const m of text.matchAll(BLOCK)) {
    const rows = m[0].split("\n").filter((l) => l.startsWith("|") && !/^\|[\s:|-]+\|$/.test(l));
    out.set(m[1], rows.map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim())));
  }
  return out;
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url).pathname;
  for (const doc of DOCS) {
    const path = `${root}${doc}`;
    await Deno.writeTextFile(path, withFlagTables(await Deno.readTextFile(path)));
    console.log(`flag tables written: ${doc}`);
  }
}
