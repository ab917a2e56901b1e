/**
 * `serve` under a burst on loopback: several clients post generate requests at once,
 * some of them walking away. Every answer is 200 or 429 (never 5xx), the live tensors
 * are as before once it settles, and the page still answers at the end.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "./assert.ts";
import { startServer } from "../pipeline/serve/app.ts";
import { tinyRuns } from "./serve_fixture.ts";

const CLIENTS = 4;
const PER_CLIENT = 5;

Deno.test("a burst of generate requests: 200 or 429, no 5xx, tensors flat; a broken run 422 ×5", async () => {
  const root = await tinyRuns(1);
  const server = startServer({ runs: root, port: 0, cache: { maxWaiting: 2, timeoutMs: 60_000 } });
  try {
    const post = (caption: string, signal?: AbortSignal) =>
      fetch(`${server.url}api/generate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ checkpoint: "tiny", caption, count: 2, seed: 1 }),
        signal,
      });
    // Warm: the generator is loaded and tfjs has made its lasting tensors.
    const warm = await post("red petals");
    assertEquals(warm.status, 200);
    await warm.body?.cancel();
    const tensors = tf.memory().numTensors;

    const statuses: number[] = [];
    const retryAfter: (string | null)[] = [];
    const client = async (c: number) => {
      for (let i = 0; i < PER_CLIENT; i++) {
        // Two at a time per client: the burst outruns the queue.
        await Promise.all([0, 1].map(async (k) => {
          const res = await post(`client ${c} try ${i}.${k} white petals`);
          statuses.push(res.status);
          if (res.status === 429) retryAfter.push(res.headers.get("retry-after"));
          await res.body?.cancel();
        }));
      }
    };
    // Clients that give up at once: their requests are dropped from the queue.
    const leavers = Array.from({ length: 3 }, () => {
      const ac = new AbortController();
      const p = post("a client that walks away", ac.signal).catch((e) => e);
      setTimeout(() => ac.abort(), 1);
      return p;
    });
    await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), ...leavers]);

    assert(statuses.every((s) => s === 200 || s === 429), `statuses: ${statuses}`);
    assert(statuses.includes(200), `some were served: ${statuses}`);
    assert(statuses.includes(429), `the queue is bounded: ${statuses}`);
    console.log(
      `burst: ${statuses.filter((s) => s === 200).length} × 200, ${
        statuses.filter((s) => s === 429).length
      } × 429`,
    );
    assert(retryAfter.every((r) => r === "2"), `Retry-After on every 429: ${retryAfter}`);
    assertEquals(statuses.length, CLIENTS * PER_CLIENT * 2);
    // The walked-away requests may still run (a running job is not interrupted).
    const queue = server.app.generators.queue;
    while (queue.busy || queue.waiting > 0) await new Promise((r) => setTimeout(r, 50));
    assertEquals(tf.memory().numTensors, tensors, "live tensors flat after the burst");

    const page = await fetch(server.url);
    assertEquals(page.status, 200);
    await page.body?.cancel();
    const after = await post("the page still answers");
    assertEquals(after.status, 200);
    assertEquals((await after.json()).images.length, 2);

    // A run whose checkpoint does not load, five times in a row: 422, nothing left behind.
    const good = await Deno.readFile(`${root}/tiny/checkpoint.petal`);
    await Deno.mkdir(`${root}/broken`);
    await Deno.writeFile(`${root}/broken/checkpoint.petal`, good.subarray(0, good.length - 100));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}api/generate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ checkpoint: "broken", caption: "red petals", count: 1 }),
      });
      const body = await res.json();
      assertEquals(res.status, 422, JSON.stringify(body));
      assert(/broken\/checkpoint\.petal: .*past the end/.test(body.error), body.error);
      assertEquals(tf.memory().numTensors, before, `try ${i}: no tensor left`);
    }
  } finally {
    await server.shutdown();
  }
});
