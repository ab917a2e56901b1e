/// <reference lib="dom" />
/**
 * End to end in a real browser: Debian's chromium driven by playwright-core against a
 * server on a free loopback port. Saves serve-generate.png and serve-training.png
 * (to $PETAL_SCREENSHOTS, e.g. docs/, else a temp folder).
 */
import { chromium } from "playwright-core";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { startServer } from "../pipeline/serve/app.ts";
import { tinyRuns } from "./serve_fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.log(
    `serve browser test ignored: ${CHROMIUM} is missing (apt-get install -y chromium)`,
  );
}

/**
 * Screenshots go to a temp folder, so a test run never rewrites tracked files;
 * `PETAL_SCREENSHOTS=docs deno task test` refreshes the ones the docs show.
 */
const DOCS = Deno.env.get("PETAL_SCREENSHOTS")
  ? `${Deno.env.get("PETAL_SCREENSHOTS")!.replace(/\/$/, "")}/`
  : `${Deno.makeTempDirSync({ prefix: "petal-shots-" })}/`;

Deno.test({
  name: "browser: generate images, interpolate, show an error, watch training",
  ignore: !hasChromium,
  // playwright keeps pipes and timers of its own until the browser process is gone.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await tinyRuns(2); // one epoch: latest.png and epoch_0001.png
    const server = startServer({ runs: root, port: 0, hostname: "127.0.0.1" });
    const profile = await Deno.makeTempDir({ prefix: "petal-chromium-" });
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      // A sanitizer run preloads libasan into deno (native/sanitize.sh): keep it from chromium.
      env: Object.fromEntries(
        Object.entries(Deno.env.toObject()).filter(([k]) => k !== "LD_PRELOAD"),
      ),
      headless: true,
      viewport: { width: 1100, height: 860 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const outside: string[] = [];
    try {
      const page = await ctx.newPage();
      // The pages must need nothing beyond this server (no CDN, no web fonts).
      await page.route("**/*", (route) => {
        const url = new URL(route.request().url());
        if (url.protocol === "data:" || url.origin === new URL(server.url).origin) {
          return route.continue();
        }
        outside.push(url.href);
        return route.abort();
      });
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(e.message));

      await page.goto(server.url);
      await page.waitForSelector("#checkpoint option[value=tiny]", { state: "attached" });
      await page.fill("#caption", "this flower has bright yellow petals and a round center");
      await page.fill("#count", "6");
      await page.click("#generate");
      await page.waitForFunction(() => {
        const imgs = [...document.querySelectorAll<HTMLImageElement>("#images img")];
        return imgs.length === 6 && imgs.every((i) => i.complete && i.naturalWidth > 0);
      });
      const sizes = await page.$$eval(
        "#images img",
        (imgs) => (imgs as HTMLImageElement[]).map((i) => [i.naturalWidth, i.naturalHeight]),
      );
      assertEquals(sizes, Array(6).fill([64, 64]));

      await page.click("#interpolate");
      await page.waitForFunction(() => document.querySelectorAll("#strip img").length === 9);
      await page.locator("#slider").fill("4");
      const [shown, fifth] = await page.evaluate(() => [
        document.querySelector<HTMLImageElement>("#interp-image")!.src,
        document.querySelectorAll<HTMLImageElement>("#strip img")[4].src,
      ]);
      assertEquals(shown, fifth, "the slider shows the image at its position");
      assertMatch(await page.textContent("#slider-label") ?? "", /50% first caption/);
      await page.screenshot({ path: `${DOCS}serve-generate.png`, fullPage: true });

      // An empty caption: the server's message shows, and the page still works after.
      await page.fill("#caption", "");
      await page.click("#generate");
      await page.waitForSelector("#error:not([hidden])");
      assertMatch(await page.textContent("#error") ?? "", /caption is empty/);
      await page.fill("#count", "2");
      await page.fill("#caption", "white petals");
      await page.click("#generate");
      await page.waitForFunction(() =>
        document.querySelectorAll("#images img").length === 2 &&
        document.querySelector<HTMLElement>("#error")!.hidden
      );

      await page.goto(`${server.url}training`);
      await page.waitForSelector("#plot svg polyline");
      await page.waitForFunction(() => {
        const latest = document.querySelector<HTMLImageElement>("#latest")!;
        const earlier = document.querySelector<HTMLImageElement>("#earlier img");
        return latest.naturalWidth > 0 && earlier !== null && earlier.naturalWidth > 0;
      });
      assertEquals(await page.textContent("#stat-step"), "2");
      assertEquals(
        await page.textContent("#stat-eta"),
        "done",
        "train wrote budget.json; every step done",
      );
      assertMatch(await page.textContent("#stat-ips") ?? "", /^\d+\.\d$/);
      await page.screenshot({ path: `${DOCS}serve-training.png`, fullPage: true });

      // Training goes on: the page picks the new row up by itself.
      await Deno.writeTextFile(`${root}/tiny/losses.csv`, "3,1,1.1,2.2,0.01,1.50,30.0\n", {
        append: true,
      });
      await page.waitForFunction(
        () => document.querySelector("#stat-step")!.textContent === "3",
        undefined,
        { timeout: 10_000 },
      );
      assertEquals(pageErrors, [], "no script errors");
      assertEquals(outside, [], "nothing fetched from outside the server");
    } finally {
      await ctx.close();
      await server.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
    const shot = await Deno.stat(`${DOCS}serve-training.png`);
    assert(shot.size > 10_000, "a real screenshot");
  },
});
