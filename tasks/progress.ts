/** The training progress line: bar, epoch, step, img/s, ETA, losses. */
import type { StepReport } from "../pipeline/steps.ts";

export const duration = (s: number): string => {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
    : `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
};

export function progressLine(s: StepReport, width = 20): string {
  const frac = s.totalSteps ? s.step / s.totalSteps : s.stepInEpoch / s.stepsPerEpoch;
  const filled = Math.round(Math.min(1, frac) * width);
  const bar = "█".repeat(filled) + "░".repeat(width - filled);
  return `${bar} epoch ${
    s.epoch + 1
  } step ${s.stepInEpoch}/${s.stepsPerEpoch} (${s.step} in all) ` +
    `${s.imagesPerSecond.toFixed(1)} img/s ETA ${s.eta === undefined ? "?" : duration(s.eta)} ` +
    `d=${s.losses.d.toFixed(3)} g=${s.losses.g.toFixed(3)}` +
    (s.losses.augment === undefined ? "" : ` p=${s.losses.augment.toFixed(3)}`);
}
