/**
 * Flags declared once: parsing and checks, `--help` on every task, and the README's flag
 * tables written from the same declarations.
 */
import * as E from "fp-ts/Either";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { defineTask, flagTable, helpText, parseFlags } from "../tasks/flags.ts";
import { DOCS, flagBlocks, TASKS } from "../tasks/flags_doc.ts";
import { runTask } from "./fixtures.ts";

const DEMO = defineTask({
  name: "demo",
  positionals: "<folder>",
  summary: "a demo task",
  flags: {
    out: { type: "string", arg: "DIR", default: "runs/x", help: "where it goes" },
    port: { type: "number", integer: true, min: 0, max: 65535, default: 8000, help: "port" },
    lr: { type: "number", arg: "X", help: "learning rate" },
    loss: { type: "choice", choices: ["bce", "hinge"], default: "bce", help: "loss" },
    quiet: { type: "boolean", help: "no bar" },
    scales: { type: "numbers", min: 0, arg: "G", help: "scales" },
    worker: { type: "string", hidden: true, help: "internal" },
  },
});

const left = <T>(e: E.Either<{ path: string; message: string; fix: string }, T>) => {
  assert(E.isLeft(e), JSON.stringify(e));
  return e.left;
};

Deno.test("flags: defaults, numbers, choices and positionals", () => {
  const p = parseFlags(DEMO, ["dir", "--port", "0", "--loss", "hinge", "--quiet"]);
  assert(E.isRight(p));
  assertEquals(p.right.values, {
    out: "runs/x",
    port: 0,
    lr: undefined,
    loss: "hinge",
    quiet: true,
    scales: undefined,
    worker: undefined,
  });
  const listed = parseFlags(DEMO, ["--scales", "1,1.5,2"]);
  assert(E.isRight(listed));
  assertEquals(listed.right.values.scales, [1, 1.5, 2]);
  const one = parseFlags(DEMO, ["--scales", "1.5"]);
  assert(E.isRight(one));
  assertEquals(one.right.values.scales, [1.5]);
  assertEquals(p.right.positionals, ["dir"]);
  assertEquals(p.right.help, false);
  const help = parseFlags(DEMO, ["--help"]);
  assert(E.isRight(help) && help.right.help);
});

Deno.test("flags: each bad value is one error naming the flag and the fix", () => {
  const nan = left(parseFlags(DEMO, ["--lr", "fast"]));
  assertEquals([nan.path, nan.message], ["--lr", '"fast" is not a number']);
  const frac = left(parseFlags(DEMO, ["--port", "80.5"]));
  assertEquals(frac.message, '"80.5" is not an integer');
  const range = left(parseFlags(DEMO, ["--port", "70000"]));
  assertEquals(range.message, "70000 is out of range");
  assertMatch(range.fix, /in 0\.\.65535/);
  const choice = left(parseFlags(DEMO, ["--loss", "l2"]));
  assertEquals([choice.message, choice.fix], ['unknown value "l2"', "use bce or hinge"]);
  const gap = left(parseFlags(DEMO, ["--scales", "1,,2"]));
  assertEquals([gap.path, gap.message], ["--scales", '"" is not a number']);
  assertEquals(gap.fix, "pass --scales G (numbers separated by commas, each ≥ 0)");
  const negative = left(parseFlags(DEMO, ["--scales", "1,-2"]));
  assertEquals(negative.message, "-2 is out of range");
  const unknown = left(parseFlags(DEMO, ["--nope"]));
  assertEquals(unknown.path, "deno task demo");
  assertMatch(unknown.message, /Unknown option '--nope'/);
});

Deno.test("flags: --help text and README table come from the declaration", () => {
  const help = helpText(DEMO);
  assertMatch(help, /^deno task demo <folder> \[flags\]\n {2}a demo task\n/);
  assertMatch(help, /--port N +port \[default: 8000\]/);
  assertMatch(help, /--loss X +loss \(bce, hinge\) \[default: bce\]/);
  assert(!help.includes("--worker"), "hidden flags stay out of --help");
  const table = flagTable(DEMO).split("\n");
  assertEquals(table[0], "| flag | meaning | default |");
  assertEquals(table[3], "| `--port N` | port | `8000` |");
  assertMatch(help, /--scales G +scales\n/);
  assertEquals(table.length, 2 + 6);
});

Deno.test("every task answers --help with its flags, exit 0", async () => {
  const scripts: Record<string, string> = {
    train: "train.ts",
    infer: "infer.ts",
    score: "score.ts",
    evaluator: "evaluator.ts",
    data: "data.ts",
    serve: "serve.ts",
    bench: "bench/bench.ts",
    "score-check": "score_check.ts",
    quality: "quality.ts",
    export: "export.ts",
    fuzz: "fuzz.ts",
  };
  assertEquals([...TASKS.keys()].sort(), Object.keys(scripts).sort());
  const runs = await Promise.all(
    Object.entries(scripts).map(async ([name, file]) => [name, await runTask(file, ["--help"])]),
  ) as [string, { code: number; stdout: string; stderr: string }][];
  for (const [name, r] of runs) {
    assertEquals(r.code, 0, `${name}: ${r.stderr}`);
    assertEquals(r.stdout.trim(), helpText(TASKS.get(name)!), name);
    // bench times several backends (--backends); every other task takes --backend.
    assertMatch(r.stdout, name === "bench" ? /--backends LIST/ : /--backend B/);
  }
});

Deno.test("a bad number flag on a task is one line and exit 1", async () => {
  const r = await runTask("serve.ts", ["--port", "http"]);
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr.trim(),
    'error: --port: "http" is not a number — pass --port N (an integer in 0..65535)',
  );
});

Deno.test("the README's flag tables are the tasks' declarations (deno task flags-doc)", async () => {
  const seen = new Set<string>();
  for (const doc of DOCS) {
    const text = await Deno.readTextFile(new URL(`../${doc}`, import.meta.url));
    for (const [name, rows] of flagBlocks(text)) {
      seen.add(name);
      const expected = flagBlocks(
        `<!-- flags:${name} -->\n${flagTable(TASKS.get(name)!)}\n<!-- /flags -->`,
      )
        .get(name);
      assertEquals(rows, expected, `${doc}: the ${name} table is stale; run deno task flags-doc`);
    }
  }
  assertEquals([...seen].sort(), [...TASKS.keys()].sort());
});
