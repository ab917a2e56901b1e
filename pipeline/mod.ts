/**
 * The pipelines: compositions of the stages with files, clocks and randomness, as fp-ts
 * `TaskEither<PetalError, T>`.
 *
 * - **compositions**: `train` (with its parts `steps` and `observers`), `infer`,
 *   `score`, `evaluator`, `pretrain`, `sanity`;
 * - **files in and out** (`io/`): `data` (Reed folders, caption CSVs), `images` (decode,
 *   cache, encode), `task_files` and `formats/` (the task's .npy and .pkl), `checkpoint`,
 *   `synthetic`, `plots`, `grid`, `errors`;
 * - **the web server** (`serve/`): `app`, `generator_cache`, `run_info`, `web/` — not
 *   re-exported here (tasks/serve.ts starts it);
 * - **backends** (`backends/`): `backend` (auto, tensorflow, native, wasm, cpu), `native`.
 *
 * @example
 * ```ts
 * import { train, unwrap } from "./mod.ts";
 * const result = await unwrap(train({ data: ".cache/synthetic", out: "runs/demo", maxSteps: 10 }));
 * ```
 * @module
 */
export * from "./io/errors.ts";
export * from "./backends/backend.ts";
export * from "../stages/rng.ts";
// labelsForEvaluator stays out: only pipeline/evaluator.ts may read class labels.
export {
  type CaptionedImage,
  captionLines,
  type ClassLabels,
  type DataSummary,
  loadReedFolder,
  loadTestCaptions,
  parseTestCaptions,
  type ReedDataset,
  summarizeData,
  type TestCaption,
} from "./io/data.ts";
export * from "./io/images.ts";
export * from "./io/grid.ts";
export * from "./io/synthetic.ts";
export * from "./io/checkpoint.ts";
export * from "./io/task_files.ts";
export * from "./steps.ts";
export * from "./replicas.ts";
export * from "./allreduce.ts";
export * from "./observers.ts";
export * from "./train.ts";
export * from "./draw.ts";
export * from "./infer.ts";
export * from "./evaluator.ts";
export * from "./score.ts";
export * from "./sanity.ts";
export * from "./quality.ts";
export * from "./ledger.ts";
export * from "./pretrain.ts";
