/**
 * Loss plots: `losses.csv` rows → an SVG string (pure), and `OUT/losses.png` written
 * through sharp, so a run's curves exist without the web server. The server serves the
 * same SVG inline, so the page and the PNG never disagree.
 *
 * @example
 * ```ts
 * import { parseLossCsv, renderLossSvg, writeLossPlot } from "./plots.ts";
 * const rows = parseLossCsv("step,epoch,loss_d,loss_g,kl,img_per_s,seconds\n1,0,1.4,0.7,0.1,20,3\n");
 * const svg = renderLossSvg(rows, { title: "demo" }); // "<svg ...>…</svg>"
 * await writeLossPlot("runs/demo"); // runs/demo/losses.png
 * ```
 */
import sharp from "sharp";
import { Buffer } from "node:buffer";
import { writeFileAtomic } from "./images.ts";

/** One row of `losses.csv` (header `step,epoch,loss_d,loss_g,kl,img_per_s,seconds`). */
export interface LossRow {
  readonly step: number;
  readonly epoch: number;
  readonly lossD: number;
  readonly lossG: number;
  readonly kl: number;
  readonly imgPerSec: number;
  readonly seconds: number;
}

/**
 * Parses the loss log. Lines that are not seven numbers are skipped: while training
 * runs, the last line may be half-written when we read it.
 *
 * @example
 * ```ts
 * parseLossCsv("step,epoch,loss_d,loss_g,kl,img_per_s,seconds\n1,0,1.4,0.7,0.1,20,3\n");
 * // [{ step: 1, epoch: 0, lossD: 1.4, lossG: 0.7, kl: 0.1, imgPerSec: 20, seconds: 3 }]
 * ```
 */
export function parseLossCsv(text: string): LossRow[] {
  const rows: LossRow[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(",");
    if (f.length !== 7 || f[0] === "step") continue;
    const n = f.map(Number);
    // NaN/Infinity losses are legal log lines (the NaN stop logs nothing, but be safe);
    // step must be a number for the row to be placed on the x axis at all.
    if (!Number.isFinite(n[0]) || f.some((s) => s === "")) continue;
    rows.push({
      step: n[0],
      epoch: n[1],
      lossD: n[2],
      lossG: n[3],
      kl: n[4],
      imgPerSec: n[5],
      seconds: n[6],
    });
  }
  return rows;
}

/**
 * At most `max` rows, each the mean of a run of consecutive rows: a long run has
 * hundreds of thousands of steps, and a polyline of that many points is slow to draw
 * and noisier than the trend we want to see.
 *
 * @example
 * ```ts
 * downsample(rows, 500).length <= 500; // true
 * ```
 */
export function downsample(rows: readonly LossRow[], max: number): LossRow[] {
  if (rows.length <= max) return [...rows];
  const out: LossRow[] = [];
  for (let b = 0; b < max; b++) {
    const lo = Math.floor((b * rows.length) / max);
    const hi = Math.floor(((b + 1) * rows.length) / max);
    const part = rows.slice(lo, hi);
    const mean = (f: (r: LossRow) => number) => part.reduce((s, r) => s + f(r), 0) / part.length;
    const last = part[part.length - 1];
    out.push({
      step: last.step,
      epoch: last.epoch,
      lossD: mean((r) => r.lossD),
      lossG: mean((r) => r.lossG),
      kl: mean((r) => r.kl),
      imgPerSec: last.imgPerSec,
      seconds: last.seconds,
    });
  }
  return out;
}

/** About `count` round tick values (1, 2, 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The round step closest to the raw one (in ratio), so the count stays near `count`.
  const step = [1, 2, 5, 10].map((m) => m * mag)
    .reduce((a, b) => (Math.abs(Math.log(b / raw)) < Math.abs(Math.log(a / raw)) ? b : a));
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

export interface PlotOptions {
  readonly width?: number;
  readonly height?: number;
  readonly title?: string;
  /** Rows beyond this are averaged into buckets (see `downsample`). */
  readonly maxPoints?: number;
}

/** Colours of the two curves; tests look for them in the rendered PNG. */
export const PLOT_COLORS = { lossD: "#d62728", lossG: "#1f77b4" } as const;

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

const label = (v: number) => {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
};

/**
 * The loss curves as a standalone SVG: loss_d and loss_g against step, with axes, tick
 * labels, a legend and a title. No rows → the frame and "no steps logged yet".
 *
 * @example
 * ```ts
 * const svg = renderLossSvg(parseLossCsv(await Deno.readTextFile("runs/a/losses.csv")));
 * ```
 */
export function renderLossSvg(rows: readonly LossRow[], opts: PlotOptions = {}): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const m = { left: 64, right: 20, top: 36, bottom: 48 };
  const box = { W, H, m, pw: W - m.left - m.right, ph: H - m.top - m.bottom };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
    `viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" ${FONT} font-size="15" text-anchor="middle" fill="#222">` +
    `${escapeXml(opts.title ?? "training losses")}</text>`,
  ];
  const pts = downsample(rows, opts.maxPoints ?? 800);
  const values = pts.flatMap((r) => [r.lossD, r.lossG]).filter(Number.isFinite);
  if (pts.length === 0 || values.length === 0) {
    return [...parts, ...emptyPlot(box), `</svg>`].join("\n");
  }
  const scale = plotScale(box, [pts[0].step, pts[pts.length - 1].step], values);
  return [...parts, ...axes(box, scale), ...curves(pts, scale), ...legend(box), `</svg>`]
    .join("\n");
}

const FONT = `font-family="DejaVu Sans, sans-serif"`;

/** The plot's size and margins. */
interface PlotBox {
  readonly W: number;
  readonly H: number;
  readonly m: { left: number; right: number; top: number; bottom: number };
  readonly pw: number;
  readonly ph: number;
}

/** Data → pixel maps, with the data ranges (steps padded, losses with 5% air). */
interface PlotScale {
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
  readonly sx: (x: number) => number;
  readonly sy: (y: number) => number;
}

/** The data → pixel maps for x in [x0, x1] and the `values` on y. */
function plotScale(b: PlotBox, [x0, x1]: [number, number], values: number[]): PlotScale {
  if (x1 <= x0) [x0, x1] = [x0 - 1, x0 + 1];
  let y0 = Math.min(...values), y1 = Math.max(...values);
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  return {
    x0,
    x1,
    y0,
    y1,
    sx: (x: number) => b.m.left + ((x - x0) / (x1 - x0)) * b.pw,
    sy: (y: number) => b.m.top + (1 - (y - y0) / (y1 - y0)) * b.ph,
  };
}

/** A frame that says no step is logged yet (the SVG ends without a legend). */
const emptyPlot = ({ m, pw, ph }: PlotBox): string[] => [
  `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
  `<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" ${FONT} font-size="14" ` +
  `text-anchor="middle" fill="#666">no steps logged yet</text>`,
];

/** Grid lines and tick labels on both axes, the frame, and the axis titles. */
function axes({ H, m, pw, ph }: PlotBox, s: PlotScale, xName = "step", yName = "loss"): string[] {
  const parts: string[] = [];
  for (const t of niceTicks(s.y0, s.y1)) {
    const y = s.sy(t).toFixed(1);
    parts.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`,
      `<text x="${m.left - 6}" y="${y}" dy="4" ${FONT} font-size="11" text-anchor="end" ` +
        `fill="#333">${label(t)}</text>`,
    );
  }
  for (const t of niceTicks(s.x0, s.x1, 6).filter(Number.isInteger)) {
    const x = s.sx(t).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#333"/>`,
      `<text x="${x}" y="${m.top + ph + 17}" ${FONT} font-size="11" text-anchor="middle" ` +
        `fill="#333">${label(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 10}" ${FONT} font-size="12" text-anchor="middle" ` +
      `fill="#222">${escapeXml(xName)}</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" ${FONT} font-size="12" ` +
      `text-anchor="middle" fill="#222">${escapeXml(yName)}</text>`,
  );
  return parts;
}

const SERIES = [["lossD", "loss_d"], ["lossG", "loss_g"]] as const;

/** One polyline per loss (a dot when there is one point). */
const curves = (pts: readonly LossRow[], s: PlotScale): string[] =>
  SERIES.map(([key]) => {
    const coords = pts.filter((r) => Number.isFinite(r[key]))
      .map((r) => `${s.sx(r.step).toFixed(1)},${s.sy(r[key]).toFixed(1)}`);
    // One point draws no polyline segment; a dot keeps a one-step run visible.
    return coords.length === 1
      ? `<circle cx="${coords[0].split(",")[0]}" cy="${coords[0].split(",")[1]}" r="3" ` +
        `fill="${PLOT_COLORS[key]}"/>`
      : `<polyline points="${coords.join(" ")}" fill="none" stroke="${PLOT_COLORS[key]}" ` +
        `stroke-width="1.8" stroke-linejoin="round"/>`;
  });

/** The legend, on a light box so that curves passing under it stay readable. */
const legend = ({ m, pw }: PlotBox): string[] => [
  `<rect x="${m.left + pw - 156}" y="${m.top + 3}" width="150" height="20" fill="#fff" ` +
  `fill-opacity="0.85" stroke="#ccc"/>`,
  ...SERIES.flatMap(([key, name], i) => {
    const x = m.left + pw - 150 + i * 75;
    return [
      `<line x1="${x}" x2="${x + 18}" y1="${m.top + 12}" y2="${m.top + 12}" ` +
      `stroke="${PLOT_COLORS[key]}" stroke-width="3"/>`,
      `<text x="${x + 22}" y="${m.top + 16}" ${FONT} font-size="12" fill="#222">${name}</text>`,
    ];
  }),
];

/** SVG text → PNG bytes (librsvg inside sharp; DejaVu fonts are installed). */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

/**
 * Renders `OUT/losses.csv` to `OUT/losses.png` (atomically) and returns its path.
 * A run without a log yet gets the empty frame, so the file always exists after train.
 *
 * @example
 * ```ts
 * await writeLossPlot("runs/demo"); // "runs/demo/losses.png"
 * ```
 */
export async function writeLossPlot(outDir: string): Promise<string> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${outDir}/losses.csv`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const name = outDir.replace(/\/+$/, "").split("/").pop() ?? "";
  const path = `${outDir.replace(/\/+$/, "")}/losses.png`;
  const title = `training losses${name ? ` — ${name}` : ""}`;
  await writeFileAtomic(path, await svgToPng(renderLossSvg(parseLossCsv(text), { title })));
  return path;
}

/** One panel of {@link renderCurvesSvg}: a title, a y-axis name and its curves. */
export interface CurvePanel {
  readonly title: string;
  readonly yLabel: string;
  readonly curves: readonly { name: string; points: readonly (readonly [number, number])[] }[];
  /** Dashed horizontal lines with their names (baselines, targets). */
  readonly references?: readonly { name: string; y: number }[];
}

/** Colours of the curves, in order (recipes beyond ten reuse them). */
export const CURVE_COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
] as const;

/**
 * Panels side by side, each a set of curves against minutes (a dot per point, a line
 * through them), and one legend under them naming the curves by colour.
 *
 * @example
 * ```ts
 * import { renderCurvesSvg } from "./plots.ts";
 * const curves = [{ name: "--recipe gan-int-cls", points: [[15, 0.40], [60, 0.33]] as const }];
 * const svg = renderCurvesSvg([{ title: "mean score", yLabel: "score", curves }]);
 * ```
 */
export function renderCurvesSvg(panels: readonly CurvePanel[]): string {
  const names = [...new Set(panels.flatMap((p) => p.curves.map((c) => c.name)))];
  const PW = 420, PH = 300, legendH = 18 * names.length + 16;
  const W = PW * Math.max(1, panels.length), H = PH + legendH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    ...panels.flatMap((p, i) => curvePanel(p, i * PW, PW, PH, names)),
    ...names.flatMap((name, i) => {
      const y = PH + 14 + 18 * i, color = CURVE_COLORS[i % CURVE_COLORS.length];
      return [
        `<line x1="64" x2="86" y1="${y - 4}" y2="${y - 4}" stroke="${color}" stroke-width="3"/>`,
        `<text x="92" y="${y}" ${FONT} font-size="12" fill="#222">${escapeXml(name)}</text>`,
      ];
    }),
    `</svg>`,
  ];
  return parts.join("\n");
}

/** One panel at `left`: frame, ticks, axis names and its curves (coloured by `names`). */
function curvePanel(p: CurvePanel, left: number, W: number, H: number, names: string[]): string[] {
  const m = { left: 64, right: 16, top: 36, bottom: 44 };
  const box: PlotBox = { W, H, m, pw: W - m.left - m.right, ph: H - m.top - m.bottom };
  const pts = p.curves.flatMap((c) => c.points);
  const title = `<text x="${left + W / 2}" y="22" ${FONT} font-size="14" text-anchor="middle" ` +
    `fill="#222">${escapeXml(p.title)}</text>`;
  const shift = (part: string) => `<g transform="translate(${left} 0)">${part}</g>`;
  if (pts.length === 0) return [title, ...emptyPlot(box).map(shift)];
  const refs = p.references ?? [];
  const xs = pts.map(([x]) => x), ys = [...pts.map(([, y]) => y), ...refs.map((r) => r.y)];
  const scale = plotScale(box, [Math.min(0, ...xs), Math.max(...xs)], ys);
  const drawn = p.curves.flatMap((c) => {
    const color = CURVE_COLORS[names.indexOf(c.name) % CURVE_COLORS.length];
    const xy = c.points.map(([x, y]) => `${scale.sx(x).toFixed(1)},${scale.sy(y).toFixed(1)}`);
    return [
      `<polyline points="${xy.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`,
      ...xy.map((q) => {
        const [cx, cy] = q.split(",");
        return `<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`;
      }),
    ];
  });
  const lines = refs.flatMap((r) => {
    const y = scale.sy(r.y).toFixed(1);
    return [
      `<line x1="${m.left}" x2="${m.left + box.pw}" y1="${y}" y2="${y}" stroke="#555" ` +
      `stroke-dasharray="5 4"/>`,
      `<text x="${m.left + 4}" y="${y}" dy="-4" ${FONT} font-size="11" fill="#444">` +
      `${escapeXml(r.name)}</text>`,
    ];
  });
  const named = axes(box, scale, "minutes", p.yLabel);
  return [title, ...[...named, ...lines, ...drawn].map(shift)];
}

/**
 * Mean score and IS against minutes, one curve per recipe, from a ledger's last runs
 * table, written as a PNG (atomically); returns its path.
 */
export async function writeCurvesPlot(
  curves: { score: CurvePanel["curves"]; is: CurvePanel["curves"] },
  path: string,
  references: { score?: CurvePanel["references"]; is?: CurvePanel["references"] } = {},
): Promise<string> {
  const svg = renderCurvesSvg([
    {
      title: "mean score (lower is better)",
      yLabel: "mean score",
      curves: curves.score,
      references: references.score,
    },
    {
      title: "Inception score (higher is sharper)",
      yLabel: "IS",
      curves: curves.is,
      references: references.is,
    },
  ]);
  await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  await writeFileAtomic(path, await svgToPng(svg));
  return path;
}
