/**
 * A custom training loop from petal's parts: hinge loss, the built-in loss log, and a
 * sample grid every N steps; a checkpoint at the end that `deno task infer` reads.
 *
 * ```sh
 * deno run -A docs/examples/custom_train.ts [DATA_DIR] [OUT_DIR] [STEPS] [EVERY]
 * ```
 */
import {
  checkpointRun,
  disposeRun,
  ensureSyntheticData,
  lossLog,
  prepareTraining,
  recipe,
  runObservers,
  sampleEvery,
  trainSteps,
  unwrap,
  useBackend,
} from "../../mod.ts";

const [data, out = "runs/custom", steps = "40", every = "10"] = Deno.args;
console.log(`backend: ${await useBackend("auto")}`);

// resolve settings → load data → prepare → init: a run ready to step.
const run = await unwrap(prepareTraining({
  data: data ?? await ensureSyntheticData(".cache/synthetic"),
  out,
  recipe: recipe("gan-int-cls", { loss: "hinge", batchSize: 8 }),
}));
// Bookkeeping as observers: the loss log, and a sample grid every `every` steps.
const captions = ["a red flower with round petals", "a blue flower with pointed petals"];
const observers = runObservers([lossLog(), sampleEvery(Number(every), captions)]);
try {
  await observers.start(run, {});
  // The algorithm: steps until the budget ends (stream → batch → D, G, EMA → dispose).
  for await (const s of trainSteps(run, { maxSteps: Number(steps) })) {
    await observers.step(s, run);
    if (s.step % Number(every) === 0) {
      console.log(`step ${s.step}: d=${s.losses.d.toFixed(3)} g=${s.losses.g.toFixed(3)}`);
    }
  }
  console.log(`checkpoint: ${await checkpointRun(run)}`);
} finally {
  await observers.close();
  disposeRun(run);
}
