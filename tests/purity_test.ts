/**
 * The promises of stages/mod.ts and of pipeline/, checked in the source:
 *
 * - stages/ reads no clock, file, environment or global random source, asks no backend
 *   which it is (a backend's fast route is a kernel it registers), and keeps no
 *   module-level mutable state;
 * - inside pipeline/, failures travel as `Left` values: no `unwrap(` (tasks/ and tests
 *   bridge to promises) and no `throw new PetalFailure`, except the bridge itself and the
 *   files named below as pending.
 */
import { assert, assertEquals } from "./assert.ts";
import { ROOT, tsFiles } from "./fixtures.ts";

/** Source without comments (so doc examples may show what code may not do). */
const code = (source: string) =>
  source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/[^\n]*/g, "$1");

/** What a stage may not touch, each with the pattern that finds it. */
const STAGE_RULES: ReadonlyArray<[string, RegExp]> = [
  ["reads files or the environment (Deno.)", /\bDeno\./],
  ["reads the clock (Date.)", /\bDate\.|new Date\(/],
  ["reads the clock (performance.)", /\bperformance\./],
  ["draws from a global random source (Math.random)", /\bMath\.random\b/],
  ["asks the active backend (tf.getBackend)", /\bgetBackend\s*\(/],
  ["asks the active backend (tf.backend())", /\btf\.backend\s*\(/],
  ["looks up kernels (getKernel)", /\bgetKernel\s*\(/],
  ["switches backends (setBackend)", /\bsetBackend\s*\(/],
  ["keeps module-level mutable state (a top-level let/var)", /^(export\s+)?(let|var)\s/m],
];

/** Each rule a source breaks. */
const stageViolations = (source: string) =>
  STAGE_RULES.filter(([, re]) => re.test(code(source))).map(([what]) => what);

/** What pipeline/ may not do: errors thrown and caught again. */
const PIPELINE_RULES: ReadonlyArray<[string, RegExp]> = [
  ["unwraps a TaskEither (unwrap()", /\bunwrap\s*\(/],
  ["throws a PetalFailure", /\bthrow\s+new\s+PetalFailure\b/],
];

const pipelineViolations = (source: string) =>
  PIPELINE_RULES.filter(([, re]) => re.test(code(source))).map(([what]) => what);

/**
 * Files of pipeline/ allowed to break a rule, and why. A pending entry must still break
 * it: remove the entry with the fix (the test below fails until then).
 */
const PIPELINE_EXCEPTIONS: Readonly<Record<string, string>> = {
  // The bridge itself: unwrap is defined here, and throws the Left for tasks/ and tests.
  "pipeline/io/errors.ts": "the bridge",
  // pending: useBackend is a promise API that tasks and tests await; a TaskEither form
  // (and its callers) is still to come.
  "pipeline/backends/backend.ts": "pending: useBackend",
};

Deno.test("stages/: no clock, files, environment, global randomness, backend or module state", () => {
  const files = tsFiles("stages");
  assert(files.length >= 15, `found ${files.length} stage files`);
  const broken = files.flatMap((f) =>
    stageViolations(Deno.readTextFileSync(`${ROOT}${f}`)).map((what) => `${f}: ${what}`)
  );
  assertEquals(broken, []);
});

Deno.test("pipeline/: failures travel as Left (no unwrap, no thrown PetalFailure)", () => {
  const broken = tsFiles("pipeline")
    .filter((f) => !(f in PIPELINE_EXCEPTIONS))
    .flatMap((f) =>
      pipelineViolations(Deno.readTextFileSync(`${ROOT}${f}`)).map((what) => `${f}: ${what}`)
    );
  assertEquals(broken, []);
});

Deno.test("pipeline/: every named exception still needs its exception", () => {
  for (const [file, why] of Object.entries(PIPELINE_EXCEPTIONS)) {
    const source = Deno.readTextFileSync(`${ROOT}${file}`);
    assert(
      pipelineViolations(source).length > 0,
      `${file} (${why}) no longer unwraps or throws: remove it from PIPELINE_EXCEPTIONS`,
    );
  }
});

Deno.test("the guards catch what they look for, and not in comments", () => {
  assertEquals(stageViolations("export const f = () => Date.now();"), ["reads the clock (Date.)"]);
  assertEquals(stageViolations("let counter = 0;\nexport const f = () => ++counter;"), [
    "keeps module-level mutable state (a top-level let/var)",
  ]);
  assertEquals(
    stageViolations("export const f = () => tf.getBackend() === 'wasm' && tf.getKernel('X', 'y');"),
    ["asks the active backend (tf.getBackend)", "looks up kernels (getKernel)"],
  );
  assertEquals(stageViolations("const x = Deno.env.get('A'); const r = Math.random();"), [
    "reads files or the environment (Deno.)",
    "draws from a global random source (Math.random)",
  ]);
  // A `let` inside a function is local state, not module state; comments are not code.
  assertEquals(stageViolations("export function f() {\n  let i = 0;\n  return i;\n}"), []);
  assertEquals(stageViolations("/** Date.now() */\n// Deno.readFile\nexport const a = 1;"), []);
  assertEquals(pipelineViolations("const x = await unwrap(task);"), [
    "unwraps a TaskEither (unwrap()",
  ]);
  assertEquals(pipelineViolations("throw new PetalFailure(petalError('Io', p, m, f));"), [
    "throws a PetalFailure",
  ]);
  assertEquals(pipelineViolations(" * const r = await unwrap(train(opts));\n"), [
    "unwraps a TaskEither (unwrap()",
  ]);
  assertEquals(pipelineViolations("/**\n * await unwrap(train(opts));\n */"), []);
});
