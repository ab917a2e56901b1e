/**
 * This machine's fp32 peak, detected at run time (README, Speed): cores × clock × FLOP per
 * cycle per core, where FLOP per cycle = 2 (a fused multiply-add) × 2 FMA pipes × fp32
 * lanes of the widest vector unit: 16 with AVX-512 (8 on AMD Zen 4, family 25, whose
 * AVX-512 runs on 256-bit pipes), 8 with AVX2 + FMA, 4 otherwise. The clock is the
 * highest of cpufreq's cpuinfo_max_freq and /proc/cpuinfo's "cpu MHz" (virtual machines
 * often report only the base clock: the peak is then a lower bound on the real one).
 *
 * @example
 * ```ts
 * import { machinePeak } from "./peak.ts";
 * const p = machinePeak(); // { gflops: 166.1, cores: 2, ghz: 2.6, isa: "avx512 (256-bit pipes)", ... }
 * ```
 */

/** The detected peak and what it is made of. */
export type MachinePeak = {
  gflops: number;
  cores: number;
  ghz: number;
  flopsPerCycle: number;
  isa: string;
};

const read = (path: string): string | null => {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
};

/** The peak of this machine (Linux /proc; elsewhere a guess from the core count). */
export function machinePeak(): MachinePeak {
  const info = read("/proc/cpuinfo") ?? "";
  const field = (name: string) =>
    info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, "m"))?.[1].trim() ?? "";
  const flags = new Set(field("flags").split(/\s+/));
  const amd = field("vendor_id") === "AuthenticAMD";
  const family = Number(field("cpu family"));
  const cores = navigator.hardwareConcurrency ?? 1;
  const mhz = Math.max(
    0,
    ...[...info.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1])),
    Number(read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") ?? 0) / 1000,
  );
  const ghz = mhz > 0 ? mhz / 1000 : 2.5;
  let lanes = 4, isa = "sse";
  if (flags.has("avx512f")) {
    const narrow = amd && family === 25; // Zen 4: 512-bit ops on 256-bit pipes
    lanes = narrow ? 8 : 16;
    isa = narrow ? "avx512 (256-bit pipes)" : "avx512";
  } else if (flags.has("avx2") && flags.has("fma")) {
    lanes = 8;
    isa = "avx2";
  }
  const flopsPerCycle = 2 * 2 * lanes;
  return { gflops: cores * ghz * flopsPerCycle, cores, ghz, flopsPerCycle, isa };
}

/** One line, e.g. "2 cores × 2.60 GHz × 32 FLOP/cycle (avx512 (256-bit pipes)) = 166 GFLOP/s". */
export const formatPeak = (p: MachinePeak): string =>
  `${p.cores} cores × ${p.ghz.toFixed(2)} GHz × ${p.flopsPerCycle} FLOP/cycle (${p.isa}) = ${
    p.gflops.toFixed(0)
  } GFLOP/s`;
