import sharp from "sharp";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { createApp, parseGenerateRequest, parseInterpolateRequest } from "../pipeline/serve/app.ts";
import { estimateEta, isSafeName, summarizeRun } from "../pipeline/serve/run_info.ts";
import type { LossRow } from "../pipeline/io/plots.ts";
import { tinyRuns } from "./serve_fixture.ts";

const root = await tinyRuns(1);
const app = createApp({ runs: root });
globalThis.addEventListener("unload", () => app.dispose());

const call = (path: string, init: RequestInit = {}) =>
  app.handler(new Request(`http://127.0.0.1${path}`, init));
const post = (path: string, body: unknown, type = "application/json") =>
  call(path, {
    method: "POST",
    headers: { "content-type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** Status and `error` of a refused request; fails when it was not refused. */
async function refused(res: Response, status: number, pattern: RegExp) {
  const body = await res.json();
  assertEquals(res.status, status, `status (body ${JSON.stringify(body)})`);
  assert(typeof body.error === "string", "a JSON {error} body");
  assertMatch(body.error, pattern);
}

const decode = async (url: string) => {
  assertMatch(url, /^data:image\/png;base64,/);
  const png = Buffer.from(url.slice(url.indexOf(",") + 1), "base64");
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), info };
};

Deno.test("generate: N decodable 64×64 PNGs, same seed same images, another seed others", async () => {
  const res = await post("/api/generate", {
    checkpoint: "tiny",
    caption: "this flower has pink petals",
    count: 3,
    seed: 11,
  });
  assertEquals(res.status, 200);
  const body = await res.json();
  assertEquals(body.images.length, 3);
  const images = await Promise.all(body.images.map(decode));
  for (const { info } of images) {
    assertEquals([info.width, info.height, info.channels], [64, 64, 3]);
  }
  // Different noise rows → different images.
  assert(images[0].data.some((v: number, i: number) => v !== images[1].data[i]), "rows differ");
  const again = await (await post("/api/generate", {
    checkpoint: "tiny",
    caption: "this flower has pink petals",
    count: 1,
    seed: 11,
  })).json();
  assertEquals(again.images[0], body.images[0], "same seed, same first image");
  const other = await (await post("/api/generate", {
    checkpoint: "tiny",
    caption: "this flower has pink petals",
    count: 1,
    seed: 12,
  })).json();
  assert(other.images[0] !== body.images[0], "another seed, another image");
});

Deno.test("interpolate: `steps` images, the first one is generate's first for that seed", async () => {
  const body = { checkpoint: "tiny", a: "pink petals", b: "white petals", steps: 5, seed: 3 };
  const res = await post("/api/interpolate", body);
  assertEquals(res.status, 200);
  const { images } = await res.json();
  assertEquals(images.length, 5);
  const gen = await (await post("/api/generate", {
    checkpoint: "tiny",
    caption: "pink petals",
    count: 1,
    seed: 3,
  })).json();
  assertEquals(images[0], gen.images[0]);
  assert(images[0] !== images[4], "the ends differ");
});

Deno.test("bad requests: 4xx with a message that says what is wrong", async () => {
  const ok = { checkpoint: "tiny", caption: "red petals", count: 2 };
  await refused(await post("/api/generate", { ...ok, caption: "   " }), 400, /caption is empty/);
  await refused(await post("/api/generate", { ...ok, caption: 5 }), 400, /caption must be text/);
  await refused(await post("/api/generate", { ...ok, count: 0 }), 400, /count.*1 to 16/);
  await refused(await post("/api/generate", { ...ok, count: 17 }), 400, /count.*1 to 16, got 17/);
  await refused(await post("/api/generate", { ...ok, count: 2.5 }), 400, /count/);
  await refused(await post("/api/generate", { ...ok, seed: -1 }), 400, /seed/);
  await refused(
    await post("/api/generate", { ...ok, checkpoint: "nope" }),
    404,
    /unknown checkpoint "nope"/,
  );
  await refused(
    await post("/api/generate", { ...ok, checkpoint: "" }),
    400,
    /checkpoint is missing/,
  );
  for (const name of ["../tiny", "..", "tiny/../tiny", "/etc", ".hidden"]) {
    await refused(
      await post("/api/generate", { ...ok, checkpoint: name }),
      400,
      /bad checkpoint name/,
    );
  }
  await refused(await post("/api/generate", '{"caption": "red'), 400, /malformed JSON/);
  await refused(await post("/api/generate", "[1, 2]"), 400, /JSON object/);
  await refused(await post("/api/generate", ok, "text/plain"), 415, /JSON/);
  await refused(await call("/api/generate"), 405, /POST only/);
  await refused(
    await post("/api/interpolate", { checkpoint: "tiny", a: "red", b: "" }),
    400,
    /second caption is empty/,
  );
  await refused(
    await post("/api/interpolate", { checkpoint: "tiny", a: "red", b: "blue", steps: 1 }),
    400,
    /steps/,
  );
  await refused(await call("/api/run/..%2F..%2Fetc"), 400, /bad run name/);
  await refused(await call("/api/run/nope"), 404, /unknown run "nope"/);
  await refused(await call("/api/run/tiny/samples/..%2Fcheckpoint.petal"), 404, /no sample grid/);
  await refused(await call("/api/nothing"), 404, /no API route/);
  await refused(await call("/web/..%2F..%2Fdeno.json"), 404, /no page/);
  // The app still answers normally after all of that.
  assertEquals((await post("/api/generate", ok)).status, 200);
});

Deno.test("runs, run detail, loss SVG, sample grids, pages", async () => {
  const { runs } = await (await call("/api/runs")).json();
  assertEquals(runs.map((r: { name: string }) => r.name), ["tiny"]);
  assertEquals(runs[0].checkpoint, true);
  const run = await (await call("/api/run/tiny")).json();
  assertEquals(run.summary.step, 1);
  assertEquals(run.losses.length, 1);
  assertEquals(run.summary.eta, 0, "train wrote budget.json {totalSteps: 1}: all done → ETA 0");
  assert(run.summary.imagesPerSecond > 0, "img/s from the log");
  assert(run.samples.includes("latest.png"), JSON.stringify(run.samples));
  assertEquals(run.model.imageSize, 64);
  const svg = await call("/api/run/tiny/losses.svg");
  assertEquals(svg.headers.get("content-type"), "image/svg+xml");
  assertMatch(await svg.text(), /^<svg[\s\S]*loss_d[\s\S]*<\/svg>$/);
  const grid = await call("/api/run/tiny/samples/latest.png");
  assertEquals(grid.status, 200);
  assertEquals((await sharp(new Uint8Array(await grid.arrayBuffer())).metadata()).format, "png");
  const page = await call("/");
  assertMatch(await page.text(), /id="generate"/);
  assertMatch(await (await call("/training")).text(), /id="plot"/);
  assertEquals(
    (await call("/web/generate.js")).headers.get("content-type")?.split(";")[0],
    "text/javascript",
  );
  // train wrote the loss plot beside the checkpoint.
  const meta = await sharp(`${root}/tiny/losses.png`).metadata();
  assertEquals([meta.width, meta.height], [640, 360]);
});

Deno.test("run detail reports the budget and the evaluator/score JSON when present", async () => {
  const dir = `${root}/tiny`;
  await Deno.writeTextFile(`${dir}/budget.json`, JSON.stringify({ totalSteps: 100 }));
  await Deno.writeTextFile(
    `${dir}/score.json`,
    JSON.stringify({ meanScore: 0.42, rPrecision: 0.3, perImage: [1, 2] }),
  );
  await Deno.writeTextFile(
    `${dir}/evaluator.json`,
    JSON.stringify({ heldOutAccuracy: 0.81, classes: ["a", "b"], tensors: [{ name: "w" }] }),
  );
  try {
    const run = await (await call("/api/run/tiny")).json();
    assertEquals(run.scores.evaluator, { heldOutAccuracy: 0.81 });
    // One row only: no pace yet, so still unknown; the budget itself is reported.
    assertEquals(run.budget, { totalSteps: 100 });
    assertEquals(run.scores.score, { meanScore: 0.42, rPrecision: 0.3 });
  } finally {
    await Deno.remove(`${dir}/budget.json`);
    await Deno.remove(`${dir}/score.json`);
    await Deno.remove(`${dir}/evaluator.json`);
  }
});

Deno.test("a rewritten checkpoint is reloaded; an unchanged one is not", async () => {
  const body = { checkpoint: "tiny", caption: "red petals", count: 1 };
  await post("/api/generate", body);
  const before = app.generators.loads;
  await post("/api/generate", body);
  assertEquals(app.generators.loads, before, "cached");
  const path = `${root}/tiny/checkpoint.petal`;
  const later = new Date(Date.now() + 5000);
  await Deno.utime(path, later, later);
  assertEquals((await post("/api/generate", body)).status, 200);
  assertEquals(app.generators.loads, before + 1, "reloaded after the file changed");
});

const row = (step: number, seconds: number): LossRow => ({
  step,
  epoch: 0,
  lossD: 1,
  lossG: 1,
  kl: 0,
  imgPerSec: 10,
  seconds,
});

Deno.test("ETA: unknown without a budget, paced by recent steps, capped by a deadline", () => {
  const rows = Array.from({ length: 10 }, (_, i) => row(i + 1, 2 * (i + 1)));
  assertEquals(estimateEta(rows, undefined, 0), undefined);
  assertEquals(estimateEta(rows, { totalSteps: 20 }, 0), 20); // 10 steps left × 2 s
  assertEquals(estimateEta(rows, { totalSteps: 10 }, 0), 0);
  const now = Date.parse("2025-01-01T00:00:00Z");
  assertEquals(estimateEta(rows, { totalSteps: 20, deadline: "2025-01-01T00:00:05Z" }, now), 5);
  const s = summarizeRun(rows, undefined, undefined, now, now - 3000);
  assertEquals([s.step, s.elapsed, s.idle, s.eta], [10, 20, 3, undefined]);
});

Deno.test("request parsing and names", () => {
  assertEquals(parseGenerateRequest({ checkpoint: "a", caption: " red " }), {
    checkpoint: "a",
    caption: "red",
    count: 4,
    seed: 0,
  });
  assertEquals(parseGenerateRequest({ checkpoint: "a", caption: "x", count: "16" }).count, 16);
  assertEquals(parseInterpolateRequest({ checkpoint: "a", a: "x", b: "y" }).steps, 9);
  for (const bad of ["..", "../a", "a/b", ".git", "", "a\0b"]) assert(!isSafeName(bad), bad);
  for (const good of ["tiny", "run-2024.01_a", "latest"]) assert(isSafeName(good), good);
});
