import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  formatProductTable,
  type ProductRow,
  steadyImagesPerSecond,
} from "../tasks/bench/product.ts";

Deno.test("bench: steady training rate leaves out the warm-up steps", () => {
  const csv = [
    "step,epoch,loss_d,loss_g,kl,img_per_s,seconds",
    "1,0,1,1,0,3.0,10.0", // builds primitives
    "2,0,1,1,0,5.0,12.0",
    "3,0,1,1,0,9.0,13.0",
    "4,0,1,1,0,11.0,14.0",
  ].join("\n");
  // Steps 3 and 4: 2 × 32 images in 14.0 − 12.0 s.
  assertEquals(steadyImagesPerSecond(csv), 32);
  assert(Number.isNaN(steadyImagesPerSecond(csv.split("\n").slice(0, 3).join("\n"))));
});

Deno.test("bench: product table shows each backend's ratio to wasm and failures", () => {
  const row = (backend: string, trainImgS: number, inferImgS: number): ProductRow => ({
    backend,
    size: "small",
    trainImgS,
    trainSteps: 12,
    trainRssMiB: 1536,
    inferImgS,
    inferRssMiB: null,
  });
  const table = formatProductTable([
    row("native", 45, 900),
    row("wasm", 15, 300),
    { backend: "native", size: "reed", error: "train: boom" },
  ]);
  assertMatch(table, /\| native \| small \| 45\.0 \| 3\.0× \| 1\.50 GiB \| 900 \| 3\.0× \| \? \|/);
  assertMatch(table, /\| wasm \| small \| 15\.0 \| 1\.0× \|/);
  assertMatch(table, /\| native \| reed \| failed: train: boom \|/);
});
