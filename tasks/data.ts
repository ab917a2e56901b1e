/**
 * `deno task data <folder> [--dictionary DIR]`: what is in a data folder — images,
 * captions, classes, vocabulary size and a caption-length histogram — after checking that
 * every image decodes.
 */
import { type DataSummary, loadReedFolder, summarizeData } from "../pipeline/io/data.ts";
import { checkImagesDecode } from "../pipeline/io/images.ts";
import { unwrap } from "../pipeline/io/errors.ts";
import { buildVocabulary, words } from "../stages/tokenize.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, runTask, selectBackend, usageError } from "./cli.ts";

export const DATA = defineTask({
  name: "data",
  positionals: "<folder>",
  summary: "checks a Reed-layout folder (every image decodes) and prints what is in it",
  flags: { backend: BACKEND_FLAG },
});

/** The report `deno task data` prints. */
export function dataReport(folder: string, s: DataSummary, blankLines: number): string[] {
  const lengths = [...s.lengthHistogram.keys()].sort((a, b) => a - b);
  const peak = Math.max(...s.lengthHistogram.values());
  return [
    `folder:     ${folder}`,
    `images:     ${s.images}`,
    `captions:   ${s.captions + blankLines} lines` +
    ` (${s.captions} captions, ${blankLines} blank lines skipped)`,
    `classes:    ${s.classes}`,
    `vocabulary: ${s.vocabulary} (with <PAD> and <RARE>)`,
    "caption length (words):",
    ...lengths.map((n) => {
      const count = s.lengthHistogram.get(n)!;
      const bar = "#".repeat(Math.max(1, Math.round((count / peak) * 40)));
      return `  ${String(n).padStart(3)} ${String(count).padStart(6)} ${bar}`;
    }),
  ];
}

if (import.meta.main) {
  await runTask(DATA, async (values, positionals) => {
    const folder = positionals[0];
    if (!folder) throw usageError("data", "no folder given", "deno task data <folder>");
    // No tensors here; the flag is accepted (and reported) like on every other task.
    await selectBackend(values.backend);
    const data = await unwrap(loadReedFolder(folder));
    await unwrap(checkImagesDecode(data.records.map((r) => r.imagePath)));
    const vocab = buildVocabulary(data.records.flatMap((r) => r.captions));
    const s = summarizeData(data.records, data.classCount, vocab.size, (c) => words(c).length);
    for (const line of dataReport(folder, s, data.blankCaptionLines)) console.log(line);
  });
}
