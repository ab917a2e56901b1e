/**
 * The default recipe from a script, then its resume: exactly what `deno task train`
 * and `deno task train --resume` do (`deno run -A docs/examples/train_and_resume.ts`).
 */
import { ensureSyntheticData, train, unwrap, useBackend } from "../../mod.ts";

await useBackend("auto");
const data = Deno.args[0] ?? await ensureSyntheticData(".cache/synthetic");
const out = Deno.args[1] ?? "runs/script";
const first = await unwrap(train({ data, out, maxSteps: 20 }));
console.log(`trained ${first.recipe.name} to step ${first.progress.step}: ${first.checkpoint}`);
const more = await unwrap(train({ data, out, resume: true, maxSteps: 40 }));
console.log(`resumed to step ${more.progress.step} (${more.stoppedBy}): ${more.checkpoint}`);
