/** A runs folder holding one tiny trained run, for the serve tests (not a test file). */
import { useBackend } from "../pipeline/backends/backend.ts";
import { train } from "../pipeline/train.ts";
import { plainRecipe, syntheticFixture } from "./fixtures.ts";

/**
 * `ROOT/tiny` after `steps` training steps on 16 synthetic images (batch 8: two steps an
 * epoch), so it holds checkpoint.petal, losses.csv, losses.png and samples/. Returns ROOT.
 */
export async function tinyRuns(steps = 1): Promise<string> {
  await useBackend("auto");
  const root = await Deno.makeTempDir({ prefix: "petal-serve-" });
  const data = await syntheticFixture(16, 2);
  const result = await train({
    data,
    out: `${root}/tiny`,
    recipe: plainRecipe({ batchSize: 8, seed: 5 }),
    maxSteps: steps,
  })();
  if (result._tag === "Left") throw new Error(`fixture training failed: ${result.left.message}`);
  return root;
}
