/**
 * `serve` against hostile requests: cross-site content types, foreign Host headers (DNS
 * rebinding), oversized bodies, a missing token, a full queue; and its bounded parts —
 * the work queue and the generator cache — on their own.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { createApp, MAX_BODY } from "../pipeline/serve/app.ts";
import {
  hostAllowed,
  hostName,
  isJsonType,
  isLoopback,
  mediaType,
} from "../pipeline/serve/guard.ts";
import { QueueAborted, QueueFull, QueueTimeout, WorkQueue } from "../pipeline/serve/work_queue.ts";
import { tinyRuns } from "./serve_fixture.ts";

const root = await tinyRuns(1);
const app = createApp({ runs: root });
globalThis.addEventListener("unload", () => app.dispose());

const request = (path: string, init: RequestInit = {}) =>
  new Request(`http://127.0.0.1:8000${path}`, init);

/** A generate post for a checkpoint that does not exist: 404 once past every guard. */
const probe = (headers: Record<string, string>, body = '{"checkpoint":"nope","caption":"red"}') =>
  request("/api/generate", { method: "POST", headers, body });

async function refused(res: Response, status: number, pattern: RegExp) {
  const body = await res.json();
  assertEquals(res.status, status, `status (body ${JSON.stringify(body)})`);
  assertMatch(body.error, pattern);
}

Deno.test("content types are parsed: only application/json (UTF-8) passes", async () => {
  for (
    const type of [
      "text/plain; x=application/json",
      "text/plain;charset=application/json",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=application/json",
      "application/json-patch+json",
      "application/jsonx",
      "text/application/json",
      "application/json; charset=latin1",
      "application/json; ;;= bad",
    ]
  ) {
    await refused(await app.handler(probe({ "content-type": type })), 415, /JSON/);
  }
  await refused(await app.handler(probe({})), 415, /JSON/);
  for (
    const type of ["application/json", "Application/JSON; charset=UTF-8", " application/json ;"]
  ) {
    await refused(await app.handler(probe({ "content-type": type })), 404, /unknown checkpoint/);
  }
  assertEquals(mediaType("text/plain; x=application/json")?.type, "text/plain");
  assert(!isJsonType("text/plain; x=application/json"));
});

Deno.test("a foreign Host header (DNS rebinding) is refused with 421, pages and API alike", async () => {
  for (const host of ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "a b"]) {
    for (const path of ["/api/runs", "/", "/api/run/tiny"]) {
      await refused(await app.handler(request(path, { headers: { host } })), 421, /answers to/);
    }
  }
  for (const host of ["127.0.0.1:8000", "localhost", "LOCALHOST:8000", "[::1]:8000"]) {
    assertEquals(
      (await app.handler(request("/api/runs", { headers: { host } }))).status,
      200,
      host,
    );
  }
  assertEquals(hostName("[::1]:80"), "::1");
  assert(!hostAllowed("localhost.evil.example", ["localhost"]));
  assert(isLoopback("127.0.0.5") && isLoopback("[::1]") && !isLoopback("0.0.0.0"));
});

Deno.test("bodies over the cap: refused by Content-Length before reading, or cut while streaming", async () => {
  let pulled = 0;
  const endless = () =>
    new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(16 * 1024).fill(0x20));
      },
    });
  const json = { "content-type": "application/json" };
  const declared = await app.handler(
    request("/api/generate", {
      method: "POST",
      headers: { ...json, "content-length": String(1e9) },
      body: endless(),
    }),
  );
  await refused(declared, 413, /body over 65536 bytes/);
  assert(pulled <= 1, `Content-Length over the cap: ${pulled} chunks read`);
  pulled = 0;
  const streamed = await app.handler(
    request("/api/generate", { method: "POST", headers: json, body: endless() }),
  );
  await refused(streamed, 413, /body over/);
  assert(pulled <= MAX_BODY / (16 * 1024) + 2, `stopped at the cap, not after ${pulled} chunks`);
  // Multi-byte characters count as bytes, not UTF-16 units.
  const wide = JSON.stringify({ checkpoint: "nope", caption: "花".repeat(MAX_BODY / 3 + 10) });
  assert(wide.length < MAX_BODY, "under the cap in UTF-16 units");
  await refused(await app.handler(probe(json, wide)), 413, /body over/);
  await refused(
    await app.handler(
      request("/api/generate", {
        method: "POST",
        headers: json,
        body: new Uint8Array([0x7b, 0xff, 0x7d]),
      }),
    ),
    400,
    /not UTF-8/,
  );
});

Deno.test("with a token, every API request needs it; the page gets it as a strict cookie", async () => {
  const token = "s3cret-token-42";
  const guarded = createApp({ runs: root, token });
  try {
    await refused(await guarded.handler(request("/api/runs")), 401, /token/);
    await refused(
      await guarded.handler(
        request("/api/runs", { headers: { authorization: "Bearer wrong-token-42" } }),
      ),
      401,
      /token/,
    );
    await refused(
      await guarded.handler(request("/api/runs?token=s3cret-token-42")),
      401,
      /token/,
    );
    const bearer = await guarded.handler(
      request("/api/runs", { headers: { authorization: `Bearer ${token}` } }),
    );
    assertEquals(bearer.status, 200);
    await bearer.body?.cancel();
    const page = await guarded.handler(request(`/?token=${token}`));
    assertEquals(page.status, 200);
    await page.body?.cancel();
    const cookie = page.headers.get("set-cookie") ?? "";
    assertMatch(cookie, /^petal_token=s3cret-token-42; Path=\/; HttpOnly; SameSite=Strict$/);
    const viaCookie = await guarded.handler(
      request("/api/runs", { headers: { cookie: "other=1; petal_token=s3cret-token-42" } }),
    );
    assertEquals(viaCookie.status, 200);
    await viaCookie.body?.cancel();
    const wrongPage = await guarded.handler(request("/?token=guess"));
    assertEquals(wrongPage.headers.get("set-cookie"), null, "a wrong token sets no cookie");
    await wrongPage.body?.cancel();
  } finally {
    guarded.dispose();
  }
});

Deno.test("a full queue answers 429 with Retry-After, and the app answers again once free", async () => {
  const busy = createApp({ runs: root, cache: { maxWaiting: 0 } });
  try {
    let release!: () => void;
    const blocker = busy.generators.queue.run(() => new Promise<void>((r) => (release = r)));
    const body = JSON.stringify({ checkpoint: "tiny", caption: "red petals", count: 1 });
    const res = await busy.handler(
      request("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
    assertEquals(res.headers.get("retry-after"), "2");
    await refused(res, 429, /busy.*try again in 2 s/);
    release();
    await blocker;
    const ok = await busy.handler(
      request("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).images.length, 1);
  } finally {
    busy.dispose();
  }
});

Deno.test("work queue: bounded waiting, timeouts and aborted clients drop jobs unrun", async () => {
  const q = new WorkQueue({ maxWaiting: 2, timeoutMs: 200 });
  let release!: () => void;
  const first = q.run(() => new Promise<string>((r) => (release = () => r("first"))))
    .catch((e) => e);
  const ran: string[] = [];
  const job = (name: string) => () => Promise.resolve(ran.push(name)).then(() => name);
  const aborter = new AbortController();
  const aborted = q.run(job("aborted"), aborter.signal);
  const timed = q.run(job("timed"), undefined);
  assertEquals(q.waiting, 2);
  const full = await q.run(job("full")).catch((e) => e);
  assert(full instanceof QueueFull, String(full));
  aborter.abort();
  const a = await aborted.catch((e) => e);
  assert(a instanceof QueueAborted, String(a));
  const t = await timed.catch((e) => e);
  assert(t instanceof QueueTimeout, String(t));
  assertEquals([q.waiting, q.dropped, ran], [0, 2, []]);
  // The running job is past its time too: its client is answered, the queue stays busy
  // until the job really ends.
  assert((await first) instanceof QueueTimeout);
  assert(q.busy, "still busy with the timed-out job");
  release();
  assertEquals(await q.run(job("after")), "after");
  assertEquals(ran, ["after"]);
  assert(!q.busy);
});

Deno.test("the generator cache keeps at most maxEntries loaded; tensors stay flat", async () => {
  await Deno.mkdir(`${root}/second`);
  await Deno.copyFile(`${root}/tiny/checkpoint.petal`, `${root}/second/checkpoint.petal`);
  const one = createApp({ runs: root, cache: { maxEntries: 1 } });
  const gen = async (checkpoint: string) => {
    const res = await one.handler(
      request("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ checkpoint, caption: "red petals", count: 1 }),
      }),
    );
    assertEquals(res.status, 200, checkpoint);
    await res.body?.cancel();
  };
  try {
    await gen("tiny");
    const loaded = tf.memory().numTensors;
    await gen("second");
    assertEquals(one.generators.loaded, [`${root}/second/checkpoint.petal`]);
    await gen("tiny");
    await gen("second");
    assertEquals(one.generators.loaded.length, 1);
    assertEquals(one.generators.loads, 4, "each switch reloads");
    assertEquals(tf.memory().numTensors, loaded, "one generator's tensors, not two");
  } finally {
    one.dispose();
    await Deno.remove(`${root}/second`, { recursive: true });
  }
});
