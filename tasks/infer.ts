/**
 * `deno task infer --checkpoint DIR --captions FILE --out inference/ [--report]
 *  [--interpolate "caption A" "caption B"]`: one 64×64 JPEG per caption,
 * `inference_{id:04d}.jpg`. FILE is an `id,caption` CSV or the task's testData.pkl.
 */
import { infer } from "../pipeline/infer.ts";
import { petalError, PetalFailure, unwrap } from "../pipeline/io/errors.ts";
import { defineTask } from "./flags.ts";
import {
  BACKEND_FLAG,
  DEFAULT_DATA,
  exists,
  GUIDANCE_FLAG,
  reportFallbacks,
  runTask,
  selectBackend,
  SHIPPED_MODEL,
  SYNTHETIC_DIR,
} from "./cli.ts";

export const INFER = defineTask({
  name: "infer",
  positionals: '[--interpolate "caption A" "caption B"]',
  summary: "one 64×64 JPEG per caption, inference_{id:04d}.jpg, from the EMA generator",
  flags: {
    checkpoint: {
      type: "string",
      arg: "DIR",
      default: "runs/latest",
      help: "run folder (or checkpoint.petal) to draw with",
      defaultText: "`runs/latest`, else the shipped `models/flowers`",
    },
    captions: {
      type: "string",
      arg: "FILE",
      help: "`id,caption` CSV or the task's `testData.pkl`",
      defaultText: "`test_captions.csv` of ../shared/oxford102, else of the synthetic set",
    },
    out: { type: "string", arg: "DIR", default: "inference", help: "folder of the JPEGs" },
    dictionary: {
      type: "string",
      arg: "DIR",
      help: "the task's `dictionary/` for a `.pkl` (default: beside its `dataset/`)",
    },
    batch: { type: "number", integer: true, min: 1, default: 64, help: "images per batch" },
    seed: { type: "number", integer: true, default: 0, help: "noise seed" },
    candidates: {
      type: "number",
      integer: true,
      min: 1,
      arg: "K",
      help: "noises per caption; the checkpoint's image–text matcher keeps the best (1: no pick)",
      defaultText: "8 where the checkpoint keeps its matcher, else 1",
    },
    guidance: GUIDANCE_FLAG,
    report: {
      type: "boolean",
      help: "also the task's 5×5 report grid, `inference_report.png` beside the folder",
    },
    interpolate: {
      type: "boolean",
      help: "an 8-step strip between the two captions given after the flags",
    },
    backend: BACKEND_FLAG,
  },
});

const INTERPOLATE_USAGE = 'quote them: --interpolate "a red flower" "a blue flower"';

if (import.meta.main) {
  await runTask(INFER, async (values, positionals) => {
    if (values.interpolate && positionals.length !== 2) {
      throw new PetalFailure(petalError(
        "BadArgument",
        "--interpolate",
        `needs two captions, got ${positionals.length}`,
        INTERPOLATE_USAGE,
      ));
    }
    const interpolate = values.interpolate ? [positionals[0], positionals[1]] as const : undefined;
    let captions = values.captions;
    if (!captions && !interpolate) {
      captions = (await exists(`${DEFAULT_DATA}/test_captions.csv`))
        ? `${DEFAULT_DATA}/test_captions.csv`
        : `${SYNTHETIC_DIR}/test_captions.csv`;
      console.log(`captions: ${captions}`);
    }
    if (
      values.checkpoint === "runs/latest" && !(await exists("runs/latest/checkpoint.petal")) &&
      await exists(`${SHIPPED_MODEL}/checkpoint.petal`)
    ) {
      values.checkpoint = SHIPPED_MODEL;
      console.log(`checkpoint: ${SHIPPED_MODEL} (the shipped model; no runs/latest yet)`);
    }
    await selectBackend(values.backend);
    const result = await unwrap(infer({ ...values, captions, interpolate, log: console.log }));
    console.log(
      `wrote ${result.written} images to ${values.out} in ${result.seconds.toFixed(1)} s` +
        (result.written ? ` (${(result.written / result.seconds).toFixed(1)} img/s)` : ""),
    );
    await reportFallbacks();
  });
}
