/**
 * Conditioning works: after a short training run on the synthetic flowers, captions that
 * name a red flower give measurably redder images than captions that name a blue one.
 */
import { assert } from "./assert.ts";
import { useBackend } from "../pipeline/backends/backend.ts";
import { ensureSyntheticData } from "../pipeline/io/synthetic.ts";
import { train } from "../pipeline/train.ts";
import { disposeGenerator, generateImages, loadGenerator } from "../pipeline/infer.ts";
import { Rng } from "../stages/rng.ts";
import { plainRecipe } from "./fixtures.ts";

/** Steps of the short run, and the least (R − B) gap, in [-1, 1] units, it must open. */
export const CONDITIONING_STEPS = 160;
export const REDNESS_MARGIN = 0.1;

const TEMPLATES = [
  "this flower has five COLOUR petals and a yellow center",
  "a large COLOUR flower with six petals",
  "this flower is COLOUR in color with a brown center",
  "COLOUR petals surround a green center",
];

/** Mean of (R − B) over all pixels of images drawn for captions naming `colour`. */
export async function redness(checkpoint: string, colour: string): Promise<number> {
  const gen = await loadGenerator(checkpoint);
  try {
    const captions = TEMPLATES.flatMap((t) => Array<string>(8).fill(t.replace("COLOUR", colour)));
    const images = await generateImages(
      gen,
      captions,
      new Rng(5).normals(captions.length * gen.gan.model.zDim),
    );
    let sum = 0;
    let n = 0;
    for (const im of images) {
      for (let i = 0; i < im.length; i += 3) {
        sum += (im[i] - im[i + 2]) / 127.5;
        n++;
      }
    }
    return sum / n;
  } finally {
    disposeGenerator(gen);
  }
}

Deno.test("red captions give redder images than blue captions", async () => {
  await useBackend("auto");
  const dir = await Deno.makeTempDir({ prefix: "petal-cond-" });
  const data = await ensureSyntheticData(`${dir}/synthetic`, { trainImages: 256, testImages: 8 });
  const run = await train({
    data,
    out: `${dir}/run`,
    maxSteps: CONDITIONING_STEPS,
    recipe: plainRecipe({ batchSize: 8 }),
  })();
  assert(run._tag === "Right", run._tag === "Left" ? run.left.message : "");
  const red = await redness(`${dir}/run`, "red");
  const blue = await redness(`${dir}/run`, "blue");
  console.log(`mean (R − B): red captions ${red.toFixed(3)}, blue captions ${blue.toFixed(3)}`);
  assert(
    red - blue >= REDNESS_MARGIN,
    `red − blue = ${(red - blue).toFixed(3)} < ${REDNESS_MARGIN}`,
  );
});
