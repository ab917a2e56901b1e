/**
 * The bench rows for what users run: `deno task train` at its defaults on the real data
 * (each model size, the real vocabulary; the GAN steps, with one step of the text
 * pre-training instead of 3000) and `deno task infer` of the 819 test captions with the
 * checkpoint it wrote (the best of 8 noises each, as by default), each as a subprocess
 * on one backend. Training img/s is
 * the steady rate from `losses.csv` (the first steps, which build oneDNN primitives and
 * Adam's slots, are left out); peak RSS is the subprocess's VmHWM, polled while it runs.
 *
 * @example
 * ```ts
 * import { benchProduct, formatProductTable } from "./product.ts";
 * const row = await benchProduct({ backend: "native", size: "small", steps: 12, data, root });
 * console.log(formatProductTable([row]));
 * ```
 */
import type { SizeName } from "../../stages/config.ts";

/** One backend × model size: training and inference as a user runs them. */
export type ProductRow = {
  backend: string;
  size: SizeName;
  /** Steady-state training images per second (batch 32, after the warm-up steps). */
  trainImgS: number;
  trainSteps: number;
  trainRssMiB: number | null;
  /** Images per second of `deno task infer` on the 819 test captions. */
  inferImgS: number;
  inferRssMiB: number | null;
  /** Training's cpu-fallback line on native ("native: cpu fallbacks ..."), if it printed one. */
  fallbacks?: string;
};

/** A row that could not be measured, with the reason. */
export type ProductFailure = { backend: string; size: SizeName; error: string };

/** Steps left out of the training rate: primitive building, Adam slots. */
export const WARMUP_STEPS = 2;
const BATCH = 32; // train's default

const task = (name: string) => new URL(`../${name}.ts`, import.meta.url).pathname;

/** Runs a subprocess to its end, polling its peak resident set (Linux VmHWM). */
async function runWatched(args: string[]): Promise<
  { ok: boolean; stdout: string; stderr: string; peakMiB: number | null }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peakMiB: number | null = null;
  const poll = setInterval(() => {
    try {
      const m = Deno.readTextFileSync(`/proc/${child.pid}/status`).match(/VmHWM:\s+(\d+)/);
      if (m) peakMiB = Math.max(peakMiB ?? 0, Number(m[1]) / 1024);
    } catch { /* gone, or not Linux */ }
  }, 250);
  const out = await child.output();
  clearInterval(poll);
  const dec = new TextDecoder();
  return {
    ok: out.success,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    peakMiB,
  };
}

const lastLine = (text: string) => text.trim().split("\n").filter(Boolean).at(-1) ?? "";

/** Images per second over the rows of losses.csv after the warm-up steps. */
export function steadyImagesPerSecond(lossCsv: string, batch = BATCH): number {
  const rows = lossCsv.trim().split("\n").slice(1).map((l) => l.split(","));
  const seconds = rows.map((r) => Number(r[6]));
  if (seconds.length <= WARMUP_STEPS) return NaN;
  const span = seconds[seconds.length - 1] - seconds[WARMUP_STEPS - 1];
  return ((seconds.length - WARMUP_STEPS) * batch) / span;
}

/** Trains `steps` steps at the defaults in `root`, then infers the 819 test captions. */
export async function benchProduct(o: {
  backend: string;
  size: SizeName;
  steps: number;
  data: string;
  root: string;
}): Promise<ProductRow | ProductFailure> {
  const out = `${o.root}/${o.backend}-${o.size}`;
  const base = { backend: o.backend, size: o.size };
  const train = await runWatched([
    "run",
    "-A",
    task("train"),
    "--data",
    o.data,
    "--size",
    o.size,
    "--steps",
    String(o.steps),
    // The default's GAN step (frozen φ, nearest up-sampling), its one-off text
    // pre-training cut to one step (3000 would outlast the timed steps many times over):
    // enough to keep the image–text matcher, so that infer draws the best of 8 as a
    // user's does.
    "--pretrain-text",
    "1",
    "--freeze-text",
    "--out",
    out,
    "--backend",
    o.backend,
    "--quiet",
  ]);
  if (!train.ok) return { ...base, error: `train: ${lastLine(train.stderr)}` };
  const trainImgS = steadyImagesPerSecond(await Deno.readTextFile(`${out}/losses.csv`));
  const infer = await runWatched([
    "run",
    "-A",
    task("infer"),
    "--checkpoint",
    out,
    "--captions",
    `${o.data}/test_captions.csv`,
    "--out",
    `${out}/inference`,
    "--backend",
    o.backend,
  ]);
  const rate = infer.stdout.match(/wrote 819 images .*\(([\d.]+) img\/s\)/);
  if (!infer.ok || !rate) return { ...base, error: `infer: ${lastLine(infer.stderr)}` };
  return {
    ...base,
    trainImgS,
    trainSteps: o.steps,
    trainRssMiB: train.peakMiB,
    inferImgS: Number(rate[1]),
    inferRssMiB: infer.peakMiB,
    fallbacks: train.stdout.split("\n").find((l) => l.startsWith("native: cpu fallbacks")),
  };
}

const gib = (mib: number | null) => (mib === null ? "?" : `${(mib / 1024).toFixed(2)} GiB`);

/** Markdown table of the product rows, with each backend's ratio to wasm per size. */
export function formatProductTable(rows: (ProductRow | ProductFailure)[]): string {
  const wasm = (size: SizeName) =>
    rows.find((r): r is ProductRow => r.backend === "wasm" && r.size === size && !("error" in r));
  const ratio = (x: number, ref?: number) => (ref ? `${(x / ref).toFixed(1)}×` : "–");
  const head = [
    "| backend | size | train img/s | × wasm | train peak RSS | infer 819 img/s | × wasm | infer peak RSS |",
    "|---|---|---|---|---|---|---|---|",
  ];
  const body = rows.map((r) => {
    if ("error" in r) return `| ${r.backend} | ${r.size} | failed: ${r.error} | | | | | |`;
    const w = wasm(r.size);
    return `| ${r.backend} | ${r.size} | ${r.trainImgS.toFixed(1)} | ${
      ratio(r.trainImgS, w?.trainImgS)
    } | ${gib(r.trainRssMiB)} | ${r.inferImgS.toFixed(0)} | ${ratio(r.inferImgS, w?.inferImgS)} | ${
      gib(r.inferRssMiB)
    } |`;
  });
  return [...head, ...body].join("\n");
}
