/**
 * `deno task infer --checkpoint DIR --captions FILE --out inference/ [--report]
 *  [--interpolate "caption A" "caption B"]`: one 64×64 JPEG per caption,
 * `inference_{id:04d}.jpg`. FILE is an `id,caption` CSV or the task's testData.pkl.
 */
import { infer } from "../pipeline/infer.ts";
import { petalError, PetalFailure } from "../pipeline/errors.ts";
import {
  DEFAULT_DATA,
  exists,
  main,
  numberFlag,
  orFail,
  parse,
  reportFallbacks,
  selectBackend,
  SYNTHETIC_DIR,
} from "./cli.ts";

await main(async () => {
  const { values, positionals } = parse("infer", {
    checkpoint: { type: "string", default: "runs/latest" },
    captions: { type: "string" },
    out: { type: "string", default: "inference" },
    dictionary: { type: "string" },
    batch: { type: "string", default: "64" },
    seed: { type: "string", default: "0" },
    report: { type: "boolean", default: false },
    interpolate: { type: "boolean", default: false },
    backend: { type: "string", default: "auto" },
  });
  let interpolate: [string, string] | undefined;
  if (values.interpolate) {
    if (positionals.length !== 2) {
      throw new PetalFailure(petalError(
        "BadArgument",
        "--interpolate",
        `needs two captions, got ${positionals.length}`,
        'quote them: --interpolate "a red flower" "a blue flower"',
      ));
    }
    interpolate = [positionals[0], positionals[1]];
  }
  let captions = values.captions;
  if (!captions && !interpolate) {
    captions = (await exists(`${DEFAULT_DATA}/test_captions.csv`))
      ? `${DEFAULT_DATA}/test_captions.csv`
      : `${SYNTHETIC_DIR}/test_captions.csv`;
    console.log(`captions: ${captions}`);
  }
  await selectBackend(values.backend);
  const result = await orFail(infer({
    checkpoint: values.checkpoint,
    captions,
    out: values.out,
    dictionary: values.dictionary,
    batch: numberFlag("batch", values.batch, 64),
    seed: numberFlag("seed", values.seed, 0),
    report: values.report,
    interpolate,
    log: console.log,
  }));
  console.log(
    `wrote ${result.written} images to ${values.out} in ${result.seconds.toFixed(1)} s` +
      (result.written ? ` (${(result.written / result.seconds).toFixed(1)} img/s)` : ""),
  );
  await reportFallbacks();
});
