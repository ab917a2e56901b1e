/**
 * `deno task quality`: trains a recipe for a fixed budget without the evaluator's
 * held-out images, scores one image per held-out caption against the real ones, and
 * appends the row to the ledger (docs/quality.md). `--baselines` scores real, shuffled,
 * noise, caption retrieval and a photo of the same class instead and rewrites the
 * ledger's baselines block.
 * Run with --help for the flags.
 */
import {
  evaluatorManifest,
  QUALITY_LADDER,
  qualityBaselines,
  type QualityResult,
  rescoreCheckpoint,
  runQuality,
} from "../pipeline/quality.ts";
import {
  appendRun,
  baselineRow,
  gridName,
  ledgerBaselines,
  ledgerRuns,
  qualityCurves,
  runRow,
  writeBaselines,
} from "../pipeline/ledger.ts";
import { guided } from "../pipeline/draw.ts";
import { writeCurvesPlot } from "../pipeline/io/plots.ts";
import { loadCaptions } from "../pipeline/io/task_files.ts";
import { petalError, PetalFailure, unwrap } from "../pipeline/io/errors.ts";
import { defineTask, type FlagValues } from "./flags.ts";
import { BACKEND_FLAG, exists, GUIDANCE_FLAG, resolveData, runTask, selectBackend } from "./cli.ts";
import { RECIPE_FLAGS, recipeFromFlags, recipeText } from "./recipe.ts";
import { progressLine } from "./progress.ts";

export const QUALITY = defineTask({
  name: "quality",
  summary:
    "trains a recipe without the evaluator's held-out images, scores it, appends the ledger row",
  flags: {
    data: {
      type: "string",
      arg: "DIR",
      help: "Reed-layout folder (the evaluator's data)",
      defaultText: "`../shared/oxford102`, else synthetic",
    },
    synthetic: { type: "boolean", help: "use the built-in synthetic flowers" },
    evaluator: {
      type: "string",
      arg: "DIR",
      default: "models/evaluator",
      help: "the evaluator: its held-out split is left out of training and scored",
    },
    minutes: { type: "number", arg: "M", min: 0, default: 60, help: "training budget in minutes" },
    steps: {
      type: "number",
      integer: true,
      min: 1,
      help: "training budget in steps instead (exactly reproducible)",
    },
    at: {
      type: "string",
      arg: "LIST",
      help:
        "also score at these points of the budget (minutes, or steps with --steps), a row each; `end`: only at the end",
      defaultText: `${QUALITY_LADDER.join(", ")} minutes, those below --minutes`,
    },
    out: {
      type: "string",
      arg: "DIR",
      help: "the run: checkpoint, losses, `inference/`, `score.csv` (emptied first)",
      defaultText: "`runs/quality` (with --checkpoint: `runs/rescore`)",
    },
    ledger: {
      type: "string",
      arg: "FILE",
      default: "docs/quality.md",
      help: "the ledger to append to",
    },
    grid: {
      type: "string",
      arg: "FILE",
      help: "report grid PNG (5 report captions × 5 noises), linked from the row",
      defaultText:
        "`docs/quality/DATE-COMMIT-RECIPE-BUDGET.png` beside the ledger, `-2`, `-3` for a replicate",
    },
    note: { type: "string", arg: "TEXT", default: "", help: "the row's notes (machine load, …)" },
    candidates: {
      type: "number",
      integer: true,
      min: 1,
      arg: "K",
      help: "noises per held-out caption; the run's image–text matcher keeps the best (1: no pick)",
      defaultText: "8 where the run keeps its matcher (a pre-trained φ), else 1",
    },
    guidance: GUIDANCE_FLAG,
    checkpoint: {
      type: "string",
      arg: "DIR",
      help:
        "score this run folder's checkpoint instead of training (a ledger row again, or models/flowers)",
    },
    plot: {
      type: "boolean",
      help: "redraw the ledger's curves (`quality/curves.png` beside it) and stop",
    },
    baselines: {
      type: "boolean",
      help:
        "score the baselines (real, shuffled, noise, retrieval, same-class) into the ledger instead",
    },
    ...RECIPE_FLAGS,
    cache: { type: "string", arg: "DIR", default: ".cache/images", help: "decoded-image cache" },
    backend: BACKEND_FLAG,
    quiet: { type: "boolean", help: "no progress lines" },
  },
});

type Values = FlagValues<typeof QUALITY.flags>;

/** The commit the code runs at (`abc1234`, `+` when the tree has changes), or `-`. */
async function gitCommit(): Promise<string> {
  const git = (...args: string[]) =>
    new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    const dirty = await git("status", "--porcelain", "--untracked-files=no");
    const hash = new TextDecoder().decode(head.stdout).trim();
    return hash ? `${hash}${dirty.stdout.length ? "+" : ""}` : "-";
  } catch {
    return "-";
  }
}

/** The names in a folder; none when it is missing. */
async function fileNames(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for await (const e of Deno.readDir(dir)) names.add(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names;
}

/** `deno fmt` on the ledger, so its tables stay aligned (CI checks formatting). */
async function formatMarkdown(path: string) {
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path], stderr: "null" })
    .output();
}

/** The folder a file is in (`.` for a bare name). */
const folderOf = (path: string) => path.includes("/") ? path.replace(/\/[^/]*$/, "") : ".";

/** Ledger-relative path of the grid. */
const relativeTo = (ledger: string, path: string) => {
  const dir = ledger.includes("/") ? ledger.slice(0, ledger.lastIndexOf("/") + 1) : "";
  return dir && path.startsWith(dir) ? path.slice(dir.length) : path;
};

async function baselines(values: Values, data: string) {
  const rows = await unwrap(qualityBaselines(data, values.evaluator));
  await writeBaselines(values.ledger, rows.map((r) => baselineRow(r.name, r.summary)));
  await formatMarkdown(values.ledger);
  for (const r of rows) console.log(baselineRow(r.name, r.summary));
  console.log(`baselines written: ${values.ledger}`);
}

/** The points to score at: `--at`, else the ladder (minutes budgets only). */
function pointsOf(values: Values): number[] {
  if (values.at === "end") return [];
  if (values.at === undefined) return values.steps === undefined ? [...QUALITY_LADDER] : [];
  const points = values.at.split(",").map((p) => Number(p.trim()));
  if (points.some((p) => !(p > 0))) {
    throw new PetalFailure(petalError(
      "BadArgument",
      "--at",
      `"${values.at}" is not a list of positive numbers`,
      "e.g. --at 15,30,60 (minutes, or steps with --steps), or --at end",
    ));
  }
  return points;
}

/** The ledger's curves (mean score and IS against minutes) as `DIR/quality/curves.png`. */
async function plotCurves(ledger: string, ledgerDir: string): Promise<string> {
  const text = await Deno.readTextFile(ledger).catch(() => {
    throw new PetalFailure(petalError(
      "MissingFile",
      ledger,
      "no ledger to draw the curves from",
      "give --ledger FILE, or append a row first with deno task quality",
    ));
  });
  const { real, retrieval } = ledgerBaselines(text);
  const references = {
    score: retrieval ? [{ name: "caption retrieval", y: retrieval.meanScore }] : [],
    is: [
      ...(real ? [{ name: "real photos", y: real.inceptionScore }] : []),
      ...(retrieval ? [{ name: "caption retrieval", y: retrieval.inceptionScore }] : []),
    ],
  };
  const path = `${ledgerDir}/quality/curves.png`;
  return await writeCurvesPlot(qualityCurves(ledgerRuns(text)), path, references);
}

/** The ledger's recipe column: the recipe's flags and how its images were drawn. */
const drawnWith = (text: string, r: { candidates: number; guidance: readonly number[] }) =>
  text + (r.candidates > 1 ? ` --candidates ${r.candidates}` : "") +
  (guided(r.guidance) ? ` --guidance ${r.guidance.join(",")}` : "");

async function quality(values: Values, data: string, backend: string) {
  const out = values.out ?? "runs/quality";
  const commit = await gitCommit(); // the code the run starts with
  const text = recipeText(values);
  const date = new Date().toISOString().slice(0, 10);
  const ledgerDir = folderOf(values.ledger);
  const unit = values.steps !== undefined ? "steps" : "min";
  const budget = values.steps ?? values.minutes;
  const points = pointsOf(values).filter((p) => p < budget);
  const taken = await fileNames(`${ledgerDir}/quality`);
  const gridAt = (point: number) => {
    const at = point === budget ? `${budget}${unit}` : `${point}of${budget}${unit}`;
    const name = gridName(date, commit, text, at, (n) => taken.has(n));
    taken.add(name);
    return `${ledgerDir}/quality/${name}`;
  };
  const grid = values.grid ?? gridAt(budget);
  const captions = `${data}/test_captions.csv`;
  const reportCaptions = await exists(captions) ? await unwrap(loadCaptions(captions)) : [];
  let last = 0;
  const appendPoint = async (r: QualityResult) => {
    const scoredAt = points.length === 0
      ? ""
      : `scored at ${r.point} of ${budget} ${unit === "min" ? "minutes" : "steps"}; `;
    const row = runRow({
      date,
      commit,
      recipe: drawnWith(text, r),
      backend,
      minutes: r.minutes,
      steps: r.steps,
      epochs: r.epochs,
      imagesPerSecond: r.imagesPerSecond,
      evaluatorAccuracy: r.heldOutAccuracy,
      summary: r.summary,
      grid: relativeTo(values.ledger, r.gridPath),
      notes: `${scoredAt}${values.note}`,
    });
    await appendRun(values.ledger, row);
    await formatMarkdown(values.ledger);
    const plot = await plotCurves(values.ledger, ledgerDir);
    console.log(row);
    console.log(`row appended: ${values.ledger}; grid ${r.gridPath}; curves ${plot}`);
  };
  await unwrap(runQuality({
    data,
    out,
    evaluator: values.evaluator,
    recipe: recipeFromFlags(values),
    minutes: values.steps === undefined ? values.minutes : undefined,
    maxSteps: values.steps,
    points,
    onPoint: appendPoint,
    cacheDir: values.cache,
    reportCaptions,
    gridPath: grid,
    gridPathAt: gridAt,
    candidates: values.candidates,
    guidance: values.guidance,
    log: (line) => console.log(line),
    onStep: (s) => {
      // Each leg's clock starts at 0: a reading below the last is a new leg.
      if (values.quiet || (s.elapsed - last < 30 && s.elapsed >= last)) return;
      last = s.elapsed;
      console.log(progressLine(s));
    },
  }));
  console.log(`run ${out}`);
}

/** `--checkpoint`: the held-out captions drawn and scored as a quality run's are. */
async function rescore(values: Values, data: string, checkpoint: string) {
  const out = values.out ?? "runs/rescore";
  const captions = `${data}/test_captions.csv`;
  const reportCaptions = await exists(captions) ? await unwrap(loadCaptions(captions)) : [];
  const r = await unwrap(rescoreCheckpoint({
    checkpoint,
    data,
    evaluator: values.evaluator,
    out,
    candidates: values.candidates,
    guidance: values.guidance,
    reportCaptions,
    gridPath: values.grid,
  }));
  const s = r.summary;
  if (r.centered) {
    console.log(`${checkpoint}: no mean condition kept; given one from the training captions`);
  }
  if (r.rivalled) {
    console.log(
      `${checkpoint}: no rivals kept for its matcher; given them from the training captions`,
    );
  }
  console.log(
    `${checkpoint} (K = ${r.candidates}, guidance ${r.guidance.join(",")}, evaluator ${
      (100 * r.heldOutAccuracy).toFixed(1)
    }%): ` +
      `mean score ${s.meanScore.toFixed(4)}, cosine ${s.meanCosine.toFixed(4)}, IS ${
        s.inceptionScore.toFixed(2)
      }, FID ${s.fid?.toFixed(1) ?? "-"}, R-precision ${(100 * s.rPrecision).toFixed(1)}%`,
  );
  console.log(`images ${out}/inference, scores ${out}/score.csv, grid ${r.gridPath}`);
}

if (import.meta.main) {
  await runTask(QUALITY, async (values) => {
    if (values.plot) {
      return console.log(`curves ${await plotCurves(values.ledger, folderOf(values.ledger))}`);
    }
    const backend = await selectBackend(values.backend);
    const data = await resolveData(values);
    await unwrap(evaluatorManifest(values.evaluator)); // one line with the command when missing
    if (values.baselines) await baselines(values, data);
    else if (values.checkpoint) await rescore(values, data, values.checkpoint);
    else await quality(values, data, backend);
  });
}
