/**
 * The bench's result table (markdown, so README.md can keep it verbatim). Ratios are
 * against the PyTorch row of the same run; % of peak uses the peer README's FLOP counts.
 *
 * @example
 * ```ts
 * import { formatTable } from "./bench_table.ts";
 * console.log(formatTable([{ engine: "native", stepS: 3.2, steps: [3.2], infer819S: 1.2,
 *   peakRssMiB: 1500 }], 64));
 * ```
 */

/** One engine's measurements (seconds, MiB). */
export type BenchResult = {
  engine: string;
  stepS: number;
  steps: number[];
  infer819S: number;
  peakRssMiB: number | null;
  tensorsLeft?: number;
  /** The native backend's cpu-fallback line (see pipeline/backends/native.ts). */
  fallbacks?: string;
  profile?: { kernel: string; calls: number; ms: number; native: number; melems: number }[];
};

/** ../shared/peer/README.md: FLOP per batch-64 step, per 819-image inference, peak. */
export const STEP_GFLOP = 222;
export const INFER_GFLOP = 173;
export const PEAK_GFLOPS = 157;

const f = (x: number, digits = 2) => x.toFixed(digits);

/** Markdown table of all rows; failed engines show their reason. */
export function formatTable(
  rows: (BenchResult | { engine: string; error: string })[],
  batch: number,
): string {
  const torch = rows.find((r): r is BenchResult => r.engine.startsWith("torch") && "stepS" in r);
  const head = [
    "| engine | s/step | img/s | × PyTorch (step) | % peak (step) | 819-img infer s | img/s infer | × PyTorch (infer) | % peak (infer) | peak RSS |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  const body = rows.map((r) => {
    if (!("stepS" in r)) return `| ${r.engine} | failed: ${r.error} | | | | | | | | |`;
    const scale = batch / 64; // FLOP counts are for batch 64
    const cells = [
      r.engine,
      f(r.stepS),
      f(batch / r.stepS, 1),
      torch ? `${f(torch.stepS / r.stepS)}×` : "–",
      `${f((100 * STEP_GFLOP * scale) / r.stepS / PEAK_GFLOPS, 0)}%`,
      f(r.infer819S),
      f(819 / r.infer819S, 0),
      torch ? `${f(torch.infer819S / r.infer819S)}×` : "–",
      `${f((100 * INFER_GFLOP) / r.infer819S / PEAK_GFLOPS, 0)}%`,
      r.peakRssMiB === null ? "?" : `${f(r.peakRssMiB / 1024)} GiB`,
    ];
    return `| ${cells.join(" | ")} |`;
  });
  return [...head, ...body].join("\n");
}
