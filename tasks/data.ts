/**
 * `deno task data <folder> [--dictionary DIR]`: what is in a data folder — images,
 * captions, classes, vocabulary size and a caption-length histogram.
 */
import { loadReedFolder, summarize } from "../pipeline/data.ts";
import { buildVocabulary, words } from "../stages/tokenize.ts";
import { main, orFail, parse, selectBackend } from "./cli.ts";
import { petalError, PetalFailure } from "../pipeline/errors.ts";

await main(async () => {
  const { values, positionals } = parse("data", { backend: { type: "string", default: "auto" } });
  const folder = positionals[0];
  if (!folder) {
    throw new PetalFailure(
      petalError("BadArgument", "deno task data", "no folder given", "deno task data <folder>"),
    );
  }
  // No tensors here; the flag is accepted (and reported) like on every other task.
  await selectBackend(values.backend);
  const data = await orFail(loadReedFolder(folder));
  const vocab = buildVocabulary(data.records.flatMap((r) => r.captions));
  const s = summarize(data.records, data.classCount, vocab.size, (c) => words(c).length);
  console.log(`folder:     ${folder}`);
  console.log(`images:     ${s.images}`);
  console.log(
    `captions:   ${s.captions + data.blankCaptionLines} lines` +
      ` (${s.captions} captions, ${data.blankCaptionLines} blank lines skipped)`,
  );
  console.log(`classes:    ${s.classes}`);
  console.log(`vocabulary: ${s.vocabulary} (with <PAD> and <RARE>)`);
  console.log("caption length (words):");
  const lengths = [...s.lengthHistogram.keys()].sort((a, b) => a - b);
  const peak = Math.max(...s.lengthHistogram.values());
  for (const n of lengths) {
    const count = s.lengthHistogram.get(n)!;
    const bar = "#".repeat(Math.max(1, Math.round((count / peak) * 40)));
    console.log(`  ${String(n).padStart(3)} ${String(count).padStart(6)} ${bar}`);
  }
});
