/**
 * `deno task bench`: the bench model of ../shared/peer/README.md (one training step at
 * batch 64, and G inference of 819 images) on every available tfjs backend, and the
 * PyTorch peer (torch_gan_step.py, 2 threads) in the same run; prints one table with
 * s/step, img/s, ratio vs PyTorch, % of the machine's fp32 peak and peak RSS.
 *
 * Each backend runs in its own subprocess (`--worker NAME`) so its peak RSS (VmHWM) is its
 * own. cpu (~500 s/step) runs only with --with-cpu. webgpu runs when listed in --backends
 * (on a software adapter such as lavapipe its numbers are CPU numbers, not a GPU's). With --profile, native also prints
 * its per-kernel time (PETAL_PROFILE).
 *
 * Then what users run (product.ts), when ../shared/oxford102 is there: `deno task train`
 * at its defaults on the real data for each model size and `deno task infer` of the 819
 * test captions, img/s and peak RSS per backend, with the ratio to wasm.
 *
 * @example
 * ```sh
 * deno task bench                         # native, wasm and PyTorch
 * deno task bench --backends native --steps 5 --profile
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { DEFAULT_DATA, exists, runTask, SHARED } from "../cli.ts";
import { defineTask, type FlagValues } from "../flags.ts";
import { type BackendChoice, useBackend } from "../../pipeline/backends/backend.ts";
import { benchModel } from "./bench_model.ts";
import { type BenchResult, formatTable } from "./bench_table.ts";
import { benchProduct, formatProductTable, type ProductRow, WARMUP_STEPS } from "./product.ts";
import { type SizeName, SIZES } from "../../stages/config.ts";
import { timeRecipeSteps } from "./recipe_step.ts";
import { recipe } from "../../stages/recipe.ts";

/** The recipe the bench times: the default, what `deno task train` trains. */
const DEFAULT_RECIPE = recipe();
const RECIPE_BATCH = DEFAULT_RECIPE.train.batchSize;
import { formatPeak, machinePeak } from "./peak.ts";
import { petalError, PetalFailure } from "../../pipeline/io/errors.ts";

const BATCH = 64;
const INFER_IMAGES = 819;
/** Backends slower than ~30 s/step get one warm-up and one timed step. */
const SLOW = new Set(["wasm", "cpu"]);

export const BENCH = defineTask({
  name: "bench",
  summary: "times the bench model on each backend beside the PyTorch peer",
  flags: {
    backends: {
      type: "string",
      arg: "LIST",
      default: "native,wasm",
      help: "comma-separated backends to time",
    },
    "with-cpu": { type: "boolean", help: "also tfjs's cpu backend (~500 s/step)" },
    steps: {
      type: "number",
      integer: true,
      min: 1,
      help: "timed steps per backend",
      defaultText: "5 (1 on wasm and cpu)",
    },
    warmup: {
      type: "number",
      integer: true,
      min: 0,
      help: "untimed steps first",
      defaultText: "2 (1 on wasm and cpu)",
    },
    batch: { type: "number", integer: true, min: 1, default: BATCH, help: "batch size" },
    profile: { type: "boolean", help: "native: per-kernel time (PETAL_PROFILE)" },
    "no-torch": { type: "boolean", help: "skip the PyTorch peer" },
    "no-product": {
      type: "boolean",
      help: "skip the train/infer rows on the real data (../shared/oxford102)",
    },
    "product-steps": {
      type: "number",
      integer: true,
      min: WARMUP_STEPS + 2,
      help: "training steps per product row",
      defaultText: "12 small, 6 reed (6 and 4 on wasm)",
    },
    sizes: {
      type: "string",
      arg: "LIST",
      default: "small,reed",
      help: "model sizes of the train/infer rows",
    },
    "no-model": { type: "boolean", help: "skip the bench-model rows (and the PyTorch peer)" },
    "no-recipe": {
      type: "boolean",
      help: "skip the default recipe's step beside its PyTorch twin (the summary line)",
    },
    "recipe-steps": {
      type: "number",
      integer: true,
      min: 1,
      default: 10,
      help: "timed steps of the default recipe's step (and its twin)",
    },
    worker: { type: "string", hidden: true, help: "internal: time one backend" },
    "recipe-worker": { type: "string", hidden: true, help: "internal: the recipe step" },
  },
});

type BenchFlags = FlagValues<typeof BENCH.flags>;

/** The --sizes list, checked against the model sizes. */
function sizesFlag(list: string): SizeName[] {
  const sizes = list.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = sizes.find((s) => !(SIZES as readonly string[]).includes(s));
  if (bad) {
    throw new PetalFailure(
      petalError("BadArgument", "--sizes", `unknown size "${bad}"`, `use ${SIZES.join(", ")}`),
    );
  }
  return sizes as SizeName[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Peak resident set of this process in MiB (Linux VmHWM). */
function peakRssMiB(): number | null {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+)\s+kB/);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The worker: times the bench model on one backend and prints one JSON line. */
async function worker(backend: string, steps: number, warmup: number, batch: number) {
  const name = await useBackend(backend as BackendChoice);
  const native = name === "native" ? await import("../../pipeline/backends/native.ts") : null;
  const model = benchModel(batch);
  const times: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    if (i === warmup) native?.resetKernelProfile();
    const t0 = performance.now();
    if (name === "webgpu") await model.stepAsync(); // webgpu reads only asynchronously
    else model.step();
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  // The table only with --profile (PETAL_PROFILE); the accounting itself is always on.
  const wanted = ["1", "true"].includes(Deno.env.get("PETAL_PROFILE") ?? "");
  const profile = !wanted ? undefined : native?.kernelProfile().map((k) => ({
    ...k,
    calls: k.calls / steps,
    native: k.native / steps,
    ms: Math.round(k.ms / steps),
    melems: Math.round(k.melems / steps),
  }));
  const t0 = performance.now();
  if (name === "webgpu") await model.inferAsync(INFER_IMAGES, batch);
  else model.infer(INFER_IMAGES, batch);
  const inferS = (performance.now() - t0) / 1000;
  model.dispose();
  const result: BenchResult = {
    engine: name,
    stepS: median(times),
    steps: times,
    infer819S: inferS,
    peakRssMiB: peakRssMiB(),
    tensorsLeft: tf.memory().numTensors,
    profile: profile?.length ? profile : undefined,
    fallbacks: native?.nativeFallbackSummary() ?? undefined,
  };
  console.log(`BENCH ${JSON.stringify(result)}`);
}

/** Runs `cmd` and returns the JSON of its last line starting with `prefix`, or the error. */
async function runJson(
  cmd: string,
  args: string[],
  prefix: string,
  env: Record<string, string> = {},
): Promise<{ ok: true; json: Record<string, unknown> } | { ok: false; reason: string }> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").reverse().find((l) => l.startsWith(prefix));
  if (out.success && line) return { ok: true, json: JSON.parse(line.slice(prefix.length)) };
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter(Boolean);
  return { ok: false, reason: err.at(-1) ?? `exit ${out.code}` };
}

/** The PyTorch peer, with its peak RSS read by a runpy wrapper (ru_maxrss, KiB on Linux). */
async function torchPeer(batch: number): Promise<BenchResult | { engine: string; error: string }> {
  const script = `${SHARED}/peer/torch_gan_step.py`;
  const wrapper = [
    "import json, resource, runpy, sys",
    `sys.argv = [${JSON.stringify(script)}, "--threads", "2", "--batch", "${batch}"]`,
    `runpy.run_path(${JSON.stringify(script)}, run_name="__main__")`,
    'print("RSS " + json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))',
  ].join("\n");
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", wrapper],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  const json = lines.find((l) => l.startsWith("{"));
  const rss = lines.find((l) => l.startsWith("RSS "));
  if (!out.success || !json) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    return { engine: "torch", error: err ?? `exit ${out.code}` };
  }
  const r = JSON.parse(json);
  return {
    engine: `${r.engine} (${r.threads} threads)`,
    stepS: r.step_s,
    steps: r.steps_s,
    infer819S: r.infer819_s,
    peakRssMiB: rss ? Number(rss.slice(4)) / 1024 : null,
  };
}

/** The bench model on each backend beside the PyTorch peer: one table. */
async function benchModelRows(a: BenchFlags, backends: string[]): Promise<void> {
  const batch = a.batch;
  const rows: (BenchResult | { engine: string; error: string })[] = [];
  if (!a["no-torch"]) {
    console.error("bench: PyTorch peer ...");
    rows.push(await torchPeer(batch));
  }
  const self = new URL(import.meta.url).pathname;
  for (const b of backends) {
    console.error(`bench: ${b} ...`);
    const args = ["run", "-A", "--unstable-webgpu", self, "--worker", b, "--batch", String(batch)];
    if (a.steps !== undefined) args.push("--steps", String(a.steps));
    if (a.warmup !== undefined) args.push("--warmup", String(a.warmup));
    const env: Record<string, string> = a.profile && b === "native" ? { PETAL_PROFILE: "1" } : {};
    const got = await runJson(Deno.execPath(), args, "BENCH ", env);
    rows.push(got.ok ? (got.json as BenchResult) : { engine: b, error: got.reason });
  }
  console.log(formatTable(rows, batch));
  for (const r of rows) {
    if ("fallbacks" in r && r.fallbacks) console.log(`bench model, ${r.fallbacks}`);
  }
  for (const r of rows) {
    if ("profile" in r && r.profile) {
      console.log(`\nper-kernel profile, ${r.engine}, ms per training step:`);
      console.table(r.profile.slice(0, 25));
    }
  }
}

/** The worker: the default recipe's step on one backend; one JSON line. */
async function recipeWorker(backend: string, steps: number): Promise<void> {
  await useBackend(backend as BackendChoice);
  const r = await timeRecipeSteps(steps, 3, DEFAULT_RECIPE);
  const wanted = ["1", "true"].includes(Deno.env.get("PETAL_PROFILE") ?? "");
  console.log(`RECIPE ${JSON.stringify({ ...r, profile: wanted ? r.profile : undefined })}`);
}

type TwinResult = { ok: true; engine: string; imgS: number; stepS: number } | {
  ok: false;
  reason: string;
};

/** tasks/bench/torch_twin.py, 2 threads; a reason instead when torch is missing. */
async function torchTwin(steps: number): Promise<TwinResult> {
  const script = new URL("./torch_twin.py", import.meta.url).pathname;
  let out;
  try {
    out = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--threads", "2", "--steps", String(steps), "--batch", String(RECIPE_BATCH)],
      // The OpenMP environment libpetal runs under (it sets PASSIVE waits when unset):
      // PyTorch's libgomp spins at every barrier by default, and beside a busy core that
      // alone makes it 7× slower here (6.9 against 48.8 img/s, 2026-12-01, load 9).
      env: { OMP_WAIT_POLICY: Deno.env.get("OMP_WAIT_POLICY") || "PASSIVE" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return { ok: false, reason: "no /usr/bin/python3" };
  }
  const json = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith("{"));
  if (!out.success || !json) {
    const err = new TextDecoder().decode(out.stderr);
    if (err.includes("No module named 'torch'")) {
      return { ok: false, reason: "python3-torch missing: apt-get install -y python3-torch" };
    }
    return { ok: false, reason: err.trim().split("\n").at(-1) ?? `exit ${out.code}` };
  }
  const r = JSON.parse(json);
  return {
    ok: true,
    engine: `${r.engine} (${r.threads} threads)`,
    imgS: r.img_per_s,
    stepS: r.step_s,
  };
}

/**
 * The default recipe's step on native beside its PyTorch twin (same run, alternating
 * native, twin, native); returns the summary line:
 * `default recipe: native N img/s, PyTorch twin M img/s, ratio R×, G GFLOP/s, P% of peak`.
 */
async function recipeRows(a: BenchFlags): Promise<string> {
  const self = new URL(import.meta.url).pathname;
  const steps = a["recipe-steps"];
  const peak = machinePeak();
  const runNative = async () => {
    console.error("bench: the default recipe's step, native ...");
    const args = ["run", "-A", self, "--recipe-worker", "native", "--recipe-steps", String(steps)];
    const env: Record<string, string> = a.profile ? { PETAL_PROFILE: "1" } : {};
    return await runJson(Deno.execPath(), args, "RECIPE ", env);
  };
  const first = await runNative();
  let twin: TwinResult = { ok: false, reason: "--no-torch" };
  if (!a["no-torch"]) {
    console.error("bench: the default recipe's PyTorch twin (tasks/bench/torch_twin.py) ...");
    twin = await torchTwin(steps);
  }
  const second = twin.ok ? await runNative() : first;
  if (!first.ok || !second.ok) {
    const why = !first.ok ? first.reason : (second as { reason: string }).reason;
    return `default recipe: native failed (${why})`;
  }
  const runs = [first.json, second.json] as unknown as Awaited<
    ReturnType<typeof timeRecipeSteps>
  >[];
  const best = runs.reduce((x, y) => (y.imgS > x.imgS ? y : x));
  const gflops = best.gflopPerStep !== null ? best.gflopPerStep / best.stepS : NaN;
  console.log(
    `\nthe default recipe's GAN step (small, batch ${RECIPE_BATCH}, synthetic data; ` +
      `tasks/bench/recipe_step.ts), native, ${steps} steps after 3 warm-ups, twice around the ` +
      `twin:`,
  );
  for (const r of runs) {
    console.log(
      `  native ${r.imgS.toFixed(1)} img/s (${(1000 * r.stepS).toFixed(0)} ms/step), ` +
        `${r.gflopPerStep?.toFixed(2)} GFLOP/step, ${r.cores?.toFixed(2)} cores busy`,
    );
  }
  console.log(
    twin.ok
      ? `  ${twin.engine}: ${twin.imgS.toFixed(1)} img/s (${
        (1000 * twin.stepS).toFixed(0)
      } ms/step)`
      : `  PyTorch twin: not run (${twin.reason})`,
  );
  console.log(`  peak: ${formatPeak(peak)}`);
  if (best.profile) {
    console.log(`\nper-kernel profile, the default recipe's step on native, per step:`);
    console.table(best.profile);
  }
  if (best.kernelMs !== undefined) {
    const step = (1000 * best.steps.reduce((a, b) => a + b, 0)) / best.steps.length;
    const ms = (x?: number) => `${(x ?? NaN).toFixed(0)} ms`;
    console.log(
      `  where a step's ${ms(step)} go (mean): tfjs kernels ${ms(best.kernelMs)}, of which ` +
        `convolution primitives ${ms(best.convPrimitiveMs)} and their layout reorders ` +
        `${ms(best.reorderMs)}; JavaScript outside kernels (tape, gradients, fused Adam, ` +
        `bookkeeping, dispatch) ${ms(step - best.kernelMs)}; ${best.cores?.toFixed(2)} of ` +
        `${peak.cores} cores busy`,
    );
  }
  const twinText = twin.ok ? `${twin.imgS.toFixed(1)} img/s` : `n/a (${twin.reason})`;
  const ratio = twin.ok ? `${(best.imgS / twin.imgS).toFixed(2)}×` : "n/a";
  return `default recipe: native ${best.imgS.toFixed(1)} img/s, PyTorch twin ${twinText}, ` +
    `ratio ${ratio}, ${gflops.toFixed(1)} GFLOP/s, ${
      (100 * gflops / peak.gflops).toFixed(1)
    }% of peak`;
}

if (import.meta.main) {
  await runTask(BENCH, async (a) => {
    const batch = a.batch;
    if (a.worker) {
      const slow = SLOW.has(a.worker);
      await worker(a.worker, a.steps ?? (slow ? 1 : 5), a.warmup ?? (slow ? 1 : 2), batch);
      return;
    }
    if (a["recipe-worker"]) {
      await recipeWorker(a["recipe-worker"], a["recipe-steps"]);
      return;
    }
    const backends = a.backends.split(",").map((s) => s.trim()).filter(Boolean);
    if (a["with-cpu"] && !backends.includes("cpu")) backends.push("cpu");
    const sizes = sizesFlag(a.sizes);
    if (!a["no-model"]) await benchModelRows(a, backends);
    const summary = !a["no-recipe"] && backends.includes("native") ? await recipeRows(a) : null;
    await productRows(a, backends, sizes);
    if (summary) console.log(`\n${summary}`);
  });
}

/** `deno task train`/`infer` as users run them, on the real data (when it is there). */
async function productRows(a: BenchFlags, backends: string[], sizes: SizeName[]): Promise<void> {
  {
    if (a["no-product"]) return;
    if (!(await exists(`${DEFAULT_DATA}/images`))) {
      console.log(`\nproduct rows skipped: ${DEFAULT_DATA} is absent`);
      return;
    }
    const root = await Deno.makeTempDir({ prefix: "petal-bench-" });
    const rows: Awaited<ReturnType<typeof benchProduct>>[] = [];
    for (const size of sizes) {
      for (const backend of backends.filter((b) => b !== "cpu")) {
        const slow = SLOW.has(backend);
        const steps = a["product-steps"] ??
          (size === "small" ? (slow ? 6 : 12) : (slow ? 4 : 6));
        console.error(`bench: deno task train/infer, ${size}, ${backend} ...`);
        rows.push(await benchProduct({ backend, size, steps, data: DEFAULT_DATA, root }));
      }
    }
    await Deno.remove(root, { recursive: true });
    console.log(
      `\ndeno task train (defaults, ${DEFAULT_DATA}, batch 32, steady img/s after ` +
        `${WARMUP_STEPS} warm-up steps) and deno task infer (819 test captions):\n`,
    );
    console.log(formatProductTable(rows));
    for (const r of rows) {
      if ("fallbacks" in r && r.fallbacks) console.log(`train ${r.size}, ${r.fallbacks}`);
    }
    const failed = rows.filter((r): r is Exclude<typeof r, ProductRow> => "error" in r);
    for (const r of failed) console.error(`bench: ${r.backend} ${r.size}: ${r.error}`);
  }
}
