/**
 * The promises of mod.ts, checked in the source:
 *
 * - every function (and class) it exports has, in the JSDoc right above its declaration,
 *   an `@example` with a code block that `deno test --doc` runs (not `ignore`);
 * - nothing it reaches imports the command line: mod.ts imports nothing from tasks/, no
 *   file of pipeline/ does, and no file in mod.ts's import graph is in tasks/.
 */
import { assert, assertEquals } from "./assert.ts";
import { ROOT, tsFiles } from "./fixtures.ts";
import * as api from "../mod.ts";

const read = (path: string) => Deno.readTextFileSync(`${ROOT}${path}`);

/** Source without comments (the import graph is the code's, not the doc examples'). */
const code = (source: string) =>
  source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/[^\n]*/g, "$1");

/** `a/b/../c.ts` → `a/c.ts`, relative to the repository root. */
function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

/** The relative specifiers `file` imports or re-exports from, resolved to root paths. */
function importsOf(file: string, source: string): string[] {
  const text = code(source);
  const dir = file.split("/").slice(0, -1).join("/");
  const specifiers = [
    ...text.matchAll(/\b(?:import|export)\b[^;'"`]*?\bfrom\s*["']([^"']+)["']/g),
    ...text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
    ...text.matchAll(/\bimport\s*["']([^"']+)["']/g),
  ].map((m) => m[1]);
  return specifiers.filter((s) => s.startsWith(".")).map((s) => normalize(`${dir}/${s}`));
}

const inTasks = (path: string) => path === "tasks" || path.startsWith("tasks/");

/** Each name mod.ts exports as a value (not `type`), with the file it comes from. */
function modExports(source: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of code(source).matchAll(/export\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']/g)) {
    for (const entry of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      if (entry.startsWith("type ")) continue;
      const exported = entry.split(/\s+as\s+/).pop()!;
      names.set(exported, normalize(m[2]));
    }
  }
  return names;
}

/** The line where `name` is declared in `file`, following re-exports; undefined if none. */
function declaration(file: string, name: string, seen = new Set<string>()): {
  file: string;
  lines: string[];
  at: number;
} | undefined {
  if (seen.has(file)) return undefined;
  seen.add(file);
  const source = read(file);
  const lines = source.split("\n");
  const decl = new RegExp(
    `^export\\s+(?:declare\\s+)?(?:async\\s+)?(?:function\\*?|const|let|class|abstract\\s+class)\\s+${name}\\b`,
  );
  const at = lines.findIndex((l) => decl.test(l));
  if (at >= 0) return { file, lines, at };
  // `export { name } from "./other.ts"`: look there.
  const dir = file.split("/").slice(0, -1).join("/");
  for (const m of code(source).matchAll(/export\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']/g)) {
    const entries = m[1].split(",").map((s) => s.trim().replace(/^type\s+/, "").split(/\s+as\s+/));
    const entry = entries.find((parts) => parts[parts.length - 1] === name);
    if (entry) return declaration(normalize(`${dir}/${m[2]}`), entry[0], seen);
  }
  return undefined;
}

/** The JSDoc block that ends on the line right above line `at`, or undefined. */
function jsDocAbove(lines: readonly string[], at: number): string | undefined {
  const end = at - 1;
  if (end < 0 || !lines[end].trim().endsWith("*/")) return undefined;
  let start = end;
  while (start >= 0 && !lines[start].trim().startsWith("/**")) start--;
  return start < 0 ? undefined : lines.slice(start, end + 1).join("\n");
}

/** Why a JSDoc is not a runnable example, or undefined when it is one. */
function exampleProblem(doc: string | undefined): string | undefined {
  if (doc === undefined) return "no JSDoc right above its declaration";
  const example = doc.indexOf("@example");
  if (example < 0) return "its JSDoc has no @example";
  const fences = [...doc.slice(example).matchAll(/```([^\n]*)/g)].map((m) => m[1].trim());
  const opening = fences.filter((_, i) => i % 2 === 0);
  if (opening.length === 0) return "its @example has no code block";
  if (!opening.some((f) => /^(ts|typescript|js|javascript)?$/.test(f) && !/\bignore\b/.test(f))) {
    return `its @example's code blocks are not run by deno test --doc (${opening.join(", ")})`;
  }
  return undefined;
}

const MOD = read("mod.ts");
const EXPORTS = modExports(MOD);

Deno.test("api: mod.ts's exports are found, about 60 names", () => {
  const values = [...EXPORTS.keys()];
  assert(values.includes("train") && values.includes("useBackend"), values.join(", "));
  const all = code(MOD).match(/export\s*\{[^}]*\}/g)!.join(",").replace(/export\s*\{|\}/g, "")
    .split(",").filter((s) => s.trim()).length;
  assert(all >= 40 && all <= 80, `mod.ts exports ${all} names: aim for about 60`);
  for (const name of Object.keys(api)) {
    assert(EXPORTS.has(name), `${name} is exported by mod.ts but not found by modExports`);
  }
});

Deno.test("api: every function and class mod.ts exports has a runnable @example", () => {
  const problems: string[] = [];
  let checked = 0;
  for (const [name, file] of EXPORTS) {
    const value = (api as Record<string, unknown>)[name];
    if (typeof value !== "function") continue;
    checked++;
    const found = declaration(file, name);
    if (!found) {
      problems.push(`${name} (${file}): declaration not found`);
      continue;
    }
    const problem = exampleProblem(jsDocAbove(found.lines, found.at));
    if (problem) problems.push(`${name} (${found.file}:${found.at + 1}): ${problem}`);
  }
  assert(checked >= 30, `only ${checked} functions checked: the export parser missed some`);
  assertEquals(problems, []);
});

Deno.test("api: mod.ts imports nothing from tasks/", () => {
  const imports = importsOf("mod.ts", MOD);
  assert(imports.length > 0, "no imports found in mod.ts: the parser is broken");
  assertEquals(imports.filter(inTasks), []);
});

Deno.test("api: no file of pipeline/ imports from tasks/", () => {
  const files = tsFiles("pipeline");
  assert(files.length > 10, "pipeline/ has too few files: wrong root?");
  const arrows = files.flatMap((f) =>
    importsOf(f, read(f)).filter(inTasks).map((t) => `${f} → ${t}`)
  );
  assertEquals(arrows, []);
});

Deno.test("api: mod.ts's import graph never reaches tasks/", () => {
  const seen = new Set<string>();
  const arrows: string[] = [];
  const queue = ["mod.ts"];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const target of importsOf(file, read(file))) {
      if (inTasks(target)) arrows.push(`${file} → ${target}`);
      else if (target.endsWith(".ts") && !seen.has(target)) queue.push(target);
    }
  }
  assert(seen.size > 20, `only ${seen.size} files reached from mod.ts: the parser is broken`);
  assertEquals(arrows, []);
});

Deno.test("api: `deno task doc-test` runs the examples of mod.ts and of every file it re-exports from", () => {
  const task: string = JSON.parse(read("deno.json")).tasks["doc-test"];
  assert(task?.includes("--doc"), `deno.json's doc-test task: ${task}`);
  const listed = task.split(/\s+/).filter((w) => w.endsWith(".ts")).sort();
  assertEquals(listed, [...new Set(["mod.ts", ...reExportSources()])].sort());
});

/** Every file mod.ts re-exports from, values or types. */
function reExportSources(): string[] {
  return [...code(MOD).matchAll(/export\s*(?:type\s*)?\{[^}]*\}\s*from\s*["']([^"']+)["']/g)]
    .map((m) => normalize(m[1]));
}

Deno.test("api: the checks fail on what they guard against", () => {
  assert(exampleProblem(undefined));
  assert(exampleProblem("/** Does a thing. */"));
  assert(exampleProblem("/**\n * @example\n * ```ts ignore\n * f();\n * ```\n */"));
  assertEquals(exampleProblem("/**\n * @example\n * ```ts\n * f();\n * ```\n */"), undefined);
  assertEquals(jsDocAbove(["/** a */", "", "export const f = 1;"], 2), undefined);
  assertEquals(jsDocAbove(["/** a */", "export const f = 1;"], 1), "/** a */");
  assertEquals(importsOf("pipeline/x.ts", 'import { a } from "../tasks/cli.ts";'), [
    "tasks/cli.ts",
  ]);
  assertEquals(importsOf("mod.ts", 'export { b } from "./tasks/b.ts";'), ["tasks/b.ts"]);
  assertEquals(importsOf("pipeline/io/x.ts", '/** import { a } from "../../tasks/a.ts" */'), []);
  assertEquals(
    modExports('export { a, type B, c as d } from "./x.ts";'),
    new Map([["a", "x.ts"], ["d", "x.ts"]]),
  );
});
