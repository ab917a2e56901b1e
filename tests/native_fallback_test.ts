/**
 * No silent slow paths: a training step of each model size and each loss, on a vocabulary
 * of the real data's size, must spend under 5% of its kernel time in tfjs's cpu kernels
 * (a kernel libpetal lacks, or a case its kernel declined). The embedding gradient was one
 * such path: 113 s of two steps on the real vocabulary before it had a native kernel.
 * Skipped, with the reason printed, when native/build/libpetal.so is not built.
 */
import * as tf from "@tensorflow/tfjs";
import { assert } from "./assert.ts";
import {
  fallbackReport,
  formatFallbackReport,
  registerNativeBackend,
  resetKernelProfile,
} from "../pipeline/backends/native.ts";
import { Rng } from "../stages/rng.ts";
import { LOSS_KINDS, modelConfig, SIZES } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import {
  type BatchTensors,
  createGan,
  disposeBatch,
  disposeGan,
  trainStep,
} from "../stages/train_step.ts";
import { diffAugmentTensors, drawAugmentGates, drawDiffAugment } from "../stages/diffaugment.ts";
import { randomBatch } from "./fixtures.ts";

const registered = await registerNativeBackend();
if (!registered.ok) console.log(`native fallback tests skipped: ${registered.reason}`);

/** The vocabulary of ../shared/oxford102's captions (5,429 words) plus <PAD> and <RARE>. */
const REAL_VOCAB = 5431;
const BATCH = 8;

const cases = [
  ...SIZES.flatMap((size) =>
    LOSS_KINDS.map((loss) => ({ size, loss, spectralNorm: false, ada: false }))
  ),
  { size: "small", loss: "bce", spectralNorm: true, ada: false },
  { size: "small", loss: "bce", spectralNorm: false, ada: true },
] as const;

/** A batch with DiffAugment's draws and adaptive augmentation's gates. */
const augmented = (b: BatchTensors, rng: Rng): BatchTensors => ({
  ...b,
  augReal: diffAugmentTensors(drawDiffAugment(BATCH, 64, rng), 64),
  augFake: diffAugmentTensors(drawDiffAugment(BATCH, 64, rng), 64),
  gateReal: drawAugmentGates(BATCH, rng),
  gateFake: drawAugmentGates(BATCH, rng),
});

for (const { size, loss, spectralNorm, ada } of cases) {
  const flags = `${spectralNorm ? " --spectral-norm" : ""}${ada ? " --ada 0.6" : ""}`;
  Deno.test({
    name: `native: a ${size}/${loss}${flags} training step ` +
      `on a ${REAL_VOCAB}-word vocabulary spends < 5% of kernel time in cpu fallbacks`,
    ignore: !registered.ok,
    fn: async () => {
      await tf.setBackend("native");
      const cfg = modelConfig(size, REAL_VOCAB);
      const train = defaultTrainConfig({
        loss,
        batchSize: BATCH,
        spectralNorm,
        ...(ada ? { diffAugment: true, adaTarget: 0.6 } : {}),
      });
      const gan = createGan(cfg, train, 1);
      const rng = new Rng(7);
      // The first step builds oneDNN primitives and Adam's slots: measure the second.
      for (const measured of [false, true]) {
        const plain = randomBatch(BATCH, cfg.zDim, cfg.condDim, REAL_VOCAB, rng);
        const b = ada ? augmented(plain, rng) : plain;
        if (measured) resetKernelProfile();
        await trainStep(gan, b, 0, measured ? 1 : 0);
        disposeBatch(b);
      }
      const report = fallbackReport(0.005);
      disposeGan(gan);
      assert(report.totalMs > 0, "no kernel time was recorded");
      assert(
        report.fallbackMs / report.totalMs < 0.05,
        formatFallbackReport(report, 0.005),
      );
    },
  });
}
