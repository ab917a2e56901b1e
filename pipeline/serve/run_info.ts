/**
 * What a run folder says about its training, for the web page: which folders under
 * `--runs` are runs, the checkpoint's progress (header only — never the weights), the loss
 * log, the sample grids, evaluator/score JSON, and a summary (img/s, elapsed, ETA).
 *
 * Files live in `readRun`/`listRuns`; `summarizeRun` and `estimateEta` are pure.
 *
 * @example
 * ```ts
 * import { listRuns, readRun } from "./run_info.ts";
 * const runs = await listRuns("runs"); // [{ name: "demo", checkpoint: true, ... }]
 * const run = await readRun("runs", "demo", Date.now());
 * console.log(run.summary.eta ?? "unknown");
 * ```
 */
import { type LossRow, parseLossCsv } from "../io/plots.ts";
import { CHECKPOINT_FILE, type Progress, readCheckpointHeader } from "../io/checkpoint.ts";

/**
 * Run and file names the server accepts: one path segment, no leading dot. Anything else
 * (`..`, `a/b`, `%2e%2e`) is refused before it reaches the file system.
 */
export const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const isSafeName = (name: string) => SAFE_NAME.test(name) && !name.includes("..");

export interface RunListing {
  readonly name: string;
  /** Holds `checkpoint.petal`: usable on the generate page. */
  readonly checkpoint: boolean;
  /** Holds `losses.csv`: shown on the training page. */
  readonly losses: boolean;
  /** Latest mtime of the two, ms since the epoch. */
  readonly updated: number;
}

const statOrNull = async (path: string) => {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
};

/**
 * Folders directly under `root` that hold a checkpoint or a loss log, newest first.
 * A missing `root` is an empty list: the server starts before the first `train`.
 *
 * @example
 * ```ts
 * (await listRuns("runs")).filter((r) => r.checkpoint).map((r) => r.name);
 * ```
 */
export async function listRuns(root: string): Promise<RunListing[]> {
  const out: RunListing[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (!isSafeName(entry.name) || entry.isFile) continue;
      const [ck, log] = await Promise.all([
        statOrNull(`${root}/${entry.name}/${CHECKPOINT_FILE}`),
        statOrNull(`${root}/${entry.name}/losses.csv`),
      ]);
      if (!ck && !log) continue;
      out.push({
        name: entry.name,
        checkpoint: ck?.isFile ?? false,
        losses: log?.isFile ?? false,
        updated: Math.max(ck?.mtime?.getTime() ?? 0, log?.mtime?.getTime() ?? 0),
      });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => b.updated - a.updated || a.name.localeCompare(b.name));
}

/**
 * A run's stated budget, `OUT/budget.json`: `{"totalSteps": N}` and/or
 * `{"deadline": "ISO time"}` (written by `deno task train`). Without it, ETA is unknown.
 */
export interface Budget {
  readonly totalSteps?: number;
  readonly deadline?: string;
}

/**
 * Seconds left, or undefined when no budget is known. The step budget is paced by the
 * recent rows (the last 50 steps), not the whole run, so a resume on a faster backend
 * shows its own pace; a deadline caps it.
 *
 * @example
 * ```ts
 * estimateEta(rows, { totalSteps: 1000 }, Date.now()); // e.g. 312.5
 * estimateEta(rows, undefined, Date.now()); // undefined → "unknown"
 * ```
 */
export function estimateEta(
  rows: readonly LossRow[],
  budget: Budget | undefined,
  nowMs: number,
): number | undefined {
  const candidates: number[] = [];
  if (budget?.totalSteps !== undefined && rows.length > 0) {
    const last = rows[rows.length - 1];
    const first = rows[Math.max(0, rows.length - 51)];
    const left = Math.max(0, budget.totalSteps - last.step);
    if (left === 0) candidates.push(0);
    else if (last.step > first.step && last.seconds > first.seconds) {
      candidates.push((left * (last.seconds - first.seconds)) / (last.step - first.step));
    }
  }
  if (budget?.deadline) {
    const t = Date.parse(budget.deadline);
    if (Number.isFinite(t)) candidates.push(Math.max(0, (t - nowMs) / 1000));
  }
  return candidates.length ? Math.min(...candidates) : undefined;
}

export interface RunSummary {
  readonly step: number;
  readonly epoch: number;
  readonly imagesPerSecond?: number;
  /** Training seconds so far (across resumes). */
  readonly elapsed?: number;
  readonly eta?: number;
  /** Seconds since the loss log or checkpoint last changed: small while training runs. */
  readonly idle?: number;
  readonly lossD?: number;
  readonly lossG?: number;
}

/**
 * The numbers at the top of the training page, from the last log row and the
 * checkpoint's progress (the log is ahead of the checkpoint between epochs).
 *
 * @example
 * ```ts
 * summarizeRun(rows, header?.progress, undefined, Date.now(), mtime).imagesPerSecond;
 * ```
 */
export function summarizeRun(
  rows: readonly LossRow[],
  progress: Progress | undefined,
  budget: Budget | undefined,
  nowMs: number,
  updatedMs: number | undefined,
): RunSummary {
  const last = rows[rows.length - 1];
  return {
    step: Math.max(last?.step ?? 0, progress?.step ?? 0),
    epoch: Math.max(last?.epoch ?? 0, progress?.epoch ?? 0),
    imagesPerSecond: last?.imgPerSec,
    elapsed: last ? Math.max(last.seconds, progress?.seconds ?? 0) : progress?.seconds,
    eta: estimateEta(rows, budget, nowMs),
    idle: updatedMs === undefined ? undefined : Math.max(0, (nowMs - updatedMs) / 1000),
    lossD: last?.lossD,
    lossG: last?.lossG,
  };
}

/** Top-level numbers and short strings of a JSON object: what a score table can show. */
export function scalarFields(json: unknown): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  if (json && typeof json === "object" && !Array.isArray(json)) {
    for (const [k, v] of Object.entries(json)) {
      if (typeof v === "number" || typeof v === "boolean") out[k] = v;
      else if (typeof v === "string" && v.length <= 80) out[k] = v;
    }
  }
  return out;
}

export interface RunDetail {
  readonly name: string;
  readonly summary: RunSummary;
  readonly losses: readonly LossRow[];
  /** Files in `samples/`, `latest.png` first, then epochs newest first. */
  readonly samples: readonly string[];
  /** mtime of samples/latest.png, so the page can bust its cache only when it changes. */
  readonly samplesVersion?: number;
  readonly model?: { size: string; imageSize: number; zDim: number; vocabSize: number };
  readonly train?: Record<string, unknown>;
  readonly budget?: Budget;
  /** Scalar fields of `evaluator.json` and `score.json` in the run folder, when present. */
  readonly scores: { evaluator?: Record<string, unknown>; score?: Record<string, unknown> };
}

const readJson = async (path: string): Promise<unknown> => {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    // Missing, or caught mid-write: the next poll will see it.
    return undefined;
  }
};

/**
 * Everything the training page shows for `root/name`; undefined when it is not a run.
 * `name` must already satisfy `isSafeName`.
 */
export async function readRun(
  root: string,
  name: string,
  nowMs: number,
): Promise<RunDetail | undefined> {
  const dir = `${root}/${name}`;
  const [ckStat, logStat] = await Promise.all([
    statOrNull(`${dir}/${CHECKPOINT_FILE}`),
    statOrNull(`${dir}/losses.csv`),
  ]);
  if (!ckStat && !logStat) return undefined;
  const header = ckStat ? await readCheckpointHeader(`${dir}/${CHECKPOINT_FILE}`) : undefined;
  let rows: LossRow[] = [];
  try {
    rows = parseLossCsv(await Deno.readTextFile(`${dir}/losses.csv`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const samples: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/samples`)) {
      if (e.isFile && /^(latest|epoch_\d+)\.png$/.test(e.name)) samples.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  samples.sort((a, b) => (a === "latest.png" ? -1 : b === "latest.png" ? 1 : b.localeCompare(a)));
  const latest = await statOrNull(`${dir}/samples/latest.png`);
  const budgetJson = await readJson(`${dir}/budget.json`) as Budget | undefined;
  const budget = budgetJson && typeof budgetJson === "object" ? budgetJson : undefined;
  const updated = Math.max(ckStat?.mtime?.getTime() ?? 0, logStat?.mtime?.getTime() ?? 0);
  const evaluator = await readJson(`${dir}/evaluator.json`);
  const score = await readJson(`${dir}/score.json`);
  return {
    name,
    summary: summarizeRun(rows, header?.progress, budget, nowMs, updated || undefined),
    losses: rows,
    samples,
    samplesVersion: latest?.mtime?.getTime(),
    model: header && {
      size: header.model.size,
      imageSize: header.model.imageSize,
      zDim: header.model.zDim,
      vocabSize: header.model.vocabSize,
    },
    train: header?.train as Record<string, unknown> | undefined,
    budget,
    scores: {
      evaluator: evaluator === undefined ? undefined : scalarFields(evaluator),
      score: score === undefined ? undefined : scalarFields(score),
    },
  };
}
