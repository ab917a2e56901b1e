import sharp from "sharp";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  downsample,
  type LossRow,
  niceTicks,
  parseLossCsv,
  PLOT_COLORS,
  renderLossSvg,
  svgToPng,
  writeLossPlot,
} from "../pipeline/io/plots.ts";

const HEADER = "step,epoch,loss_d,loss_g,kl,img_per_s,seconds";

const csv = (n: number) =>
  [
    HEADER,
    ...Array.from({ length: n }, (_, i) => {
      const s = i + 1;
      return `${s},${Math.floor(s / 10)},${1.4 - s / 200},${0.7 + s / 100},0.01,25.5,${s * 0.5}`;
    }),
  ].join("\n") + "\n";

/** Pixels within `tol` of an `#rrggbb` colour. */
async function countColour(png: Uint8Array, hex: string, tol = 40) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (
      Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < tol
    ) n++;
  }
  return n;
}

Deno.test("parseLossCsv reads rows and skips the header and a half-written last line", () => {
  const rows = parseLossCsv(csv(3) + "4,0,1.2");
  assertEquals(rows.length, 3);
  assertEquals(rows[0], {
    step: 1,
    epoch: 0,
    lossD: 1.395,
    lossG: 0.71,
    kl: 0.01,
    imgPerSec: 25.5,
    seconds: 0.5,
  });
  assertEquals(parseLossCsv(""), []);
});

Deno.test("downsample averages into at most `max` buckets, ending at the last step", () => {
  const rows = parseLossCsv(csv(1000));
  const d = downsample(rows, 100);
  assertEquals(d.length, 100);
  assertEquals(d[99].step, 1000);
  const mean = rows.slice(0, 10).reduce((s, r) => s + r.lossG, 0) / 10;
  assert(Math.abs(d[0].lossG - mean) < 1e-12, `bucket mean ${d[0].lossG} vs ${mean}`);
  assertEquals(downsample(rows.slice(0, 5), 100).length, 5);
});

Deno.test("niceTicks are round and cover the range", () => {
  assertEquals(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assertEquals(niceTicks(0.31, 1.49), [0.4, 0.6, 0.8, 1, 1.2, 1.4]);
  assertEquals(niceTicks(3, 3), [3]);
});

Deno.test("renderLossSvg: both curves, axes labels, escaped title", () => {
  const svg = renderLossSvg(parseLossCsv(csv(50)), { title: "run <a> & b" });
  assertMatch(svg, /^<svg [^>]*width="640" height="360"/);
  assertEquals(svg.match(/<polyline /g)?.length, 2);
  assert(svg.includes(PLOT_COLORS.lossD) && svg.includes(PLOT_COLORS.lossG), "curve colours");
  for (const text of [">step<", ">loss<", ">loss_d<", ">loss_g<"]) assert(svg.includes(text), text);
  assert(svg.includes("run &#60;a&#62; &#38; b") && !svg.includes("<a>"), "title escaped");
  assertMatch(renderLossSvg([]), /no steps logged yet/);
  // One row: dots, not empty polylines.
  assertEquals(renderLossSvg(parseLossCsv(csv(1))).match(/<circle /g)?.length, 2);
});

Deno.test("the PNG has the plot's size and the two curves' colours; empty log has none", async () => {
  const png = await svgToPng(renderLossSvg(parseLossCsv(csv(200))));
  const meta = await sharp(png).metadata();
  assertEquals([meta.format, meta.width, meta.height], ["png", 640, 360]);
  assert((await countColour(png, PLOT_COLORS.lossD)) > 200, "loss_d curve drawn");
  assert((await countColour(png, PLOT_COLORS.lossG)) > 200, "loss_g curve drawn");
  const empty = await svgToPng(renderLossSvg([] as LossRow[]));
  assertEquals(await countColour(empty, PLOT_COLORS.lossD), 0);
  // Text (title, "no steps logged yet") still renders: dark pixels exist.
  assert((await countColour(empty, "#222222", 120)) > 50, "text rendered");
});

Deno.test("writeLossPlot writes OUT/losses.png from OUT/losses.csv", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petal-plot-" });
  try {
    await Deno.writeTextFile(`${dir}/losses.csv`, csv(30));
    assertEquals(await writeLossPlot(dir), `${dir}/losses.png`);
    const png = await Deno.readFile(`${dir}/losses.png`);
    assertEquals((await sharp(png).metadata()).width, 640);
    assert((await countColour(png, PLOT_COLORS.lossG)) > 100, "curve drawn");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
