/**
 * The quality ledger, `docs/quality.md`: baselines at the top (rewritten in place between
 * `<!-- baselines -->` markers), then one row per measured run, appended, never edited.
 *
 * @example
 * ```ts
 * import { appendRun, runRow } from "./ledger.ts";
 * // await appendRun("docs/quality.md", runRow({ date: "2026-11-29", commit: "abc1234", ... }));
 * ```
 */
import type { ScoreSummary } from "./score.ts";
import { writeFileAtomic } from "./io/images.ts";

/** What one ledger row of a run holds. */
export interface RunEntry {
  readonly date: string;
  readonly commit: string;
  readonly recipe: string;
  readonly backend: string;
  readonly minutes: number;
  readonly steps: number;
  readonly epochs: number;
  readonly imagesPerSecond: number;
  readonly evaluatorAccuracy: number;
  readonly summary: ScoreSummary;
  /** Link to the grid, relative to the ledger. */
  readonly grid: string;
  readonly notes: string;
}

const RUNS_HEADER = [
  "| date | commit | recipe | backend | minutes | steps | epochs | img/s | evaluator acc. | " +
  "mean score | cosine | IS | FID | R-prec. | grid | notes |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
].join("\n");

const BASELINE_HEADER = [
  "| baseline | images | mean score | cosine | IS | FID | R-prec. |",
  "| --- | --- | --- | --- | --- | --- | --- |",
].join("\n");

/** What each baseline is, as the ledger describes it. */
export const BASELINE_MEANING: Record<string, string> = {
  real: "held-out real photos, own ids",
  shuffled: "held-out real photos, shuffled across ids",
  noise: "uniform noise",
  retrieval: "caption retrieval: the training photo whose captions share most words",
  "same-class": "a training photo of the held-out image's class (the evaluator's labels)",
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const fid = (s: ScoreSummary) => s.fid === undefined ? "-" : s.fid.toFixed(1);
const cell = (s: string) => s.replaceAll("|", "\\|");

/**
 * The markdown row of a run.
 *
 * @example
 * ```ts
 * runRow(entry); // "| 2026-11-29 | abc1234 | `--recipe dfgan` | native | 20.0 | … |"
 * ```
 */
export function runRow(e: RunEntry): string {
  const s = e.summary;
  return `| ${e.date} | ${e.commit} | \`${cell(e.recipe)}\` | ${e.backend} | ${
    e.minutes.toFixed(1)
  } | ${e.steps} | ${e.epochs.toFixed(2)} | ${e.imagesPerSecond.toFixed(1)} | ${
    pct(e.evaluatorAccuracy)
  } | **${s.meanScore.toFixed(4)}** | ${s.meanCosine.toFixed(4)} | ${
    s.inceptionScore.toFixed(2)
  } | ${fid(s)} | ${pct(s.rPrecision)} | [grid](${e.grid}) | ${cell(e.notes)} |`;
}

/** The markdown row of a baseline. */
export const baselineRow = (name: string, s: ScoreSummary): string =>
  `| ${BASELINE_MEANING[name] ?? name} | ${s.images} | **${s.meanScore.toFixed(4)}** | ${
    (Math.abs(s.meanCosine) < 5e-5 ? 0 : s.meanCosine).toFixed(4)
  } | ${s.inceptionScore.toFixed(2)} | ${fid(s)} | ${pct(s.rPrecision)} |`;

/** A new ledger: title, how to read it, an empty baselines block and the runs header. */
export const emptyLedger = (): string =>
  [
    "# Quality ledger",
    "",
    "Written by `deno task quality` (see README, Results). Every run trains on the training",
    "images minus the evaluator's held-out split, draws one image per held-out image from its",
    "first caption (fixed noise seed 0, EMA generator), and is scored against the held-out real",
    "images with the evaluator: mean score (cosine distance + 0.5 / IS, lower is better),",
    "cosine distance, IS, FID on evaluator features, R-precision@100. Rows are appended, never",
    "edited: failures stay.",
    "",
    "## Baselines",
    "",
    "<!-- baselines -->",
    "",
    BASELINE_HEADER,
    "",
    "<!-- /baselines -->",
    "",
    "## Runs",
    "",
    RUNS_HEADER,
    "",
  ].join("\n");

async function readLedger(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return emptyLedger();
    throw e;
  }
}

/**
 * The default file name of a run's grid: date, commit, recipe and budget, and a `-2`,
 * `-3`, … when a run of the same code and recipe already has that name (a replicate), so
 * that no row's link ever points at another run's grid.
 *
 * @example
 * ```ts
 * gridName("2026-11-29", "ce28ac9", "--recipe gan-int-cls", "60min", () => false);
 * // "2026-11-29-ce28ac9-gan-int-cls-60min.png"
 * ```
 */
export function gridName(
  date: string,
  commit: string,
  recipe: string,
  budget: string,
  taken: (name: string) => boolean,
): string {
  const slug = recipe.replace(/--recipe /, "").replace(/--/g, "").replace(/[^\w.-]+/g, "-");
  const stem = `${date}-${commit.replace("+", "-dirty")}-${slug}-${budget}`;
  let name = `${stem}.png`;
  for (let n = 2; taken(name); n++) name = `${stem}-${n}.png`;
  return name;
}

/** Appends a run row to the ledger (made first when missing). */
export async function appendRun(path: string, row: string): Promise<void> {
  const text = (await readLedger(path)).replace(/\n*$/, "\n");
  await writeFileAtomic(path, new TextEncoder().encode(`${text}${row}\n`));
}

/** Rewrites the baselines block of the ledger (made first when missing). */
export async function writeBaselines(path: string, rows: readonly string[]): Promise<void> {
  const text = await readLedger(path);
  const block = ["<!-- baselines -->", "", BASELINE_HEADER, ...rows, "", "<!-- /baselines -->"]
    .join("\n");
  const next = text.replace(/<!-- baselines -->[\s\S]*?<!-- \/baselines -->/, block);
  await writeFileAtomic(path, new TextEncoder().encode(next));
}

/** A run row as read back from the ledger: what the curves need. */
export interface LedgerRun {
  readonly recipe: string;
  readonly minutes: number;
  readonly evaluatorAccuracy: string;
  readonly meanScore: number;
  readonly inceptionScore: number;
}

/** A number cell, bold (`**0.3294**`) or not. */
const number = (cell: string) => Number(cell.replaceAll("*", ""));

/** The cells of a markdown table row (`\|` inside a cell is not a separator). */
const cells = (line: string): string[] =>
  line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim());

/**
 * The rows of the ledger's last runs table (a ledger starts a new table when its
 * evaluator changes: the rows of one table are scored alike).
 *
 * @example
 * ```ts
 * import { emptyLedger, ledgerRuns } from "./ledger.ts";
 * console.log(ledgerRuns(emptyLedger())); // []
 * ```
 */
export function ledgerRuns(text: string): LedgerRun[] {
  const lines = text.split("\n");
  const header = lines.findLastIndex((l) =>
    l.startsWith("| date ") && l.includes("| mean score |")
  );
  if (header < 0) return [];
  const runs: LedgerRun[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    const c = cells(line);
    const run = {
      recipe: c[2].replaceAll("`", "").replaceAll("\\|", "|"),
      minutes: number(c[4]),
      evaluatorAccuracy: c[8],
      meanScore: number(c[9]),
      inceptionScore: number(c[11]),
    };
    if ([run.minutes, run.meanScore, run.inceptionScore].every(Number.isFinite)) runs.push(run);
  }
  return runs;
}

/** One recipe's curve: its name and (minutes, value) points in order. */
export interface Curve {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/**
 * Mean score and IS against minutes, one curve per recipe: the `--seed N` of a recipe is
 * dropped (seeds are replicates, averaged at each budget point), minutes are rounded to
 * the point a row was scored at, and only rows scored by the last row's evaluator count.
 *
 * @example
 * ```ts
 * import { qualityCurves } from "./ledger.ts";
 * const row = (recipe: string, minutes: number, meanScore: number) =>
 *   ({ recipe, minutes, meanScore, inceptionScore: 4, evaluatorAccuracy: "58.3%" });
 * const { score } = qualityCurves([row("--recipe a", 15.2, 0.4), row("--recipe a --seed 2", 15.1, 0.2)]);
 * console.log(score); // [ { name: "--recipe a", points: [ [ 15, 0.3 ] ] } ]
 * ```
 */
export function qualityCurves(runs: readonly LedgerRun[]): { score: Curve[]; is: Curve[] } {
  const evaluator = runs.at(-1)?.evaluatorAccuracy;
  const groups = new Map<string, Map<number, LedgerRun[]>>();
  for (const r of runs.filter((r) => r.evaluatorAccuracy === evaluator)) {
    const name = r.recipe.replace(/\s*--seed \d+/, "").trim();
    const at = groups.get(name) ?? new Map<number, LedgerRun[]>();
    const x = Math.round(r.minutes);
    at.set(x, [...(at.get(x) ?? []), r]);
    groups.set(name, at);
  }
  const curve = (f: (r: LedgerRun) => number): Curve[] =>
    [...groups].map(([name, at]) => ({
      name,
      points: [...at].sort(([a], [b]) => a - b)
        .map(([x, rs]) => [x, rs.reduce((s, r) => s + f(r), 0) / rs.length] as const),
    }));
  return { score: curve((r) => r.meanScore), is: curve((r) => r.inceptionScore) };
}

/**
 * The baselines block's mean score and IS by baseline name (`real`, `shuffled`, `noise`,
 * `retrieval`): the curves' reference lines.
 *
 * @example
 * ```ts
 * import { emptyLedger, ledgerBaselines } from "./ledger.ts";
 * console.log(ledgerBaselines(emptyLedger())); // {}
 * ```
 */
export function ledgerBaselines(
  text: string,
): Record<string, { meanScore: number; inceptionScore: number }> {
  const block = text.match(/<!-- baselines -->([\s\S]*?)<!-- \/baselines -->/)?.[1] ?? "";
  const byMeaning = new Map(Object.entries(BASELINE_MEANING).map(([k, v]) => [v, k]));
  const out: Record<string, { meanScore: number; inceptionScore: number }> = {};
  for (const line of block.split("\n").filter((l) => l.startsWith("| "))) {
    const c = cells(line);
    const name = byMeaning.get(c[0]);
    if (name) {
      out[name] = { meanScore: number(c[2]), inceptionScore: number(c[4]) };
    }
  }
  return out;
}
