/**
 * `deno task serve` beyond loopback: a warning, a token made and printed at start, and
 * every API request refused without it; a token too short to guard anything is refused.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runTask } from "./fixtures.ts";

const SERVE = new URL("../tasks/serve.ts", import.meta.url).pathname;

/** Lines of `stream` until one matches `last`, as text. */
async function readUntil(stream: ReadableStream<Uint8Array>, last: RegExp): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!last.test(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

Deno.test("--host 0.0.0.0: a warning, a printed token, and the API refused without it", async () => {
  const runs = await Deno.makeTempDir({ prefix: "petal-serve-task-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-no-legacy-abort",
      SERVE,
      "--host",
      "0.0.0.0",
      "--port",
      "0",
      "--runs",
      runs,
      "--backend",
      "cpu",
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Should it never print what is awaited, its streams end here and the test fails.
  const stop = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const [out, err] = await Promise.all([
      readUntil(child.stdout, /training: .*\n/),
      readUntil(child.stderr, /warning: .*\n/),
    ]);
    assertMatch(err, /warning: --host 0\.0\.0\.0 shares this page with every machine/);
    const token = /^token: ([0-9a-f]{32})$/m.exec(out)?.[1];
    assert(token, `a token printed: ${out}`);
    const port = /generate: http:\/\/0\.0\.0\.0:(\d+)\/\?token=([0-9a-f]+)$/m.exec(out);
    assert(port && port[2] === token, `the page URL carries the token: ${out}`);
    const api = `http://127.0.0.1:${port[1]}/api/runs`;
    const without = await fetch(api);
    assertEquals(without.status, 401);
    assertMatch((await without.json()).error, /token/);
    const wrong = await fetch(api, { headers: { authorization: "Bearer 0000" } });
    assertEquals(wrong.status, 401);
    await wrong.body?.cancel();
    const ok = await fetch(api, { headers: { authorization: `Bearer ${token}` } });
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).runs, []);
    // The address it printed is one it answers to.
    const page = await fetch(`http://127.0.0.1:${port[1]}/`, {
      headers: { host: `0.0.0.0:${port[1]}` },
    });
    assertEquals(page.status, 200);
    await page.body?.cancel();
  } finally {
    clearTimeout(stop);
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
  }
});

Deno.test("a --token too short to guard anything is one line and exit 1", async () => {
  const r = await runTask("serve.ts", ["--token", "abc", "--port", "0"]);
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr.trim(),
    "error: --token: a token is at least 8 letters, digits or -._~ — pass a longer --token, " +
      "or leave it out to have one made",
  );
});
