/**
 * The fault of issue 9: `deno task test` crashed 9 runs in 12 ("corrupted double-linked
 * list", SIGSEGV) on AVX2 machines. libpetal caches oneDNN primitives process-wide, and
 * oneDNN's library-managed scratchpad is per thread: a primitive made on one thread (one
 * test isolate) and run on another wrote through that thread's smaller or missing buffer.
 * These tests run tests/native_stress.ts in a subprocess (a heap fault kills it, not the
 * suite): kernels from several workers at once, child processes spawned meanwhile, then
 * the workers' primitives on the main thread, on oneDNN's AVX2 kernels (where the
 * gemm-based 3-channel convolutions use a large scratchpad) and on the machine's own.
 * Skipped, with the reason printed, when libpetal is not built.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { registerNativeBackend } from "../pipeline/backends/native.ts";
import { loadLibpetal } from "../pipeline/backends/native/ffi.ts";

const registered = await registerNativeBackend();
if (!registered.ok) console.log(`native stress tests skipped: ${registered.reason}`);

const script = new URL("./native_stress.ts", import.meta.url).pathname;

for (const isa of ["AVX2", "the machine's best ISA"]) {
  Deno.test({
    name: `native kernels from 3 workers at once, children spawned meanwhile (${isa})`,
    ignore: !registered.ok,
    fn: async () => {
      const env: Record<string, string> = { NO_COLOR: "1" };
      if (isa === "AVX2") env.DNNL_MAX_CPU_ISA = "AVX2";
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, "--workers", "3", "--rounds", "2", "--children", "3"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, `stress exited ${out.code} (signal ${out.signal}): ${err}`);
      assertMatch(text, /stress ok: 20 cases, 3 workers × 2 rounds/);
      // Convolutions run side by side, each in a context of its own: at most one per
      // thread that ran them (3 workers and the main thread), at least the main thread's.
      const contexts = Number(text.match(/(\d+) convolution contexts/)?.[1]);
      assert(contexts >= 1 && contexts <= 4, `contexts: ${text}`);
    },
  });
}

Deno.test({
  name: "PETAL_NATIVE_GUARD: a native write past a buffer throws, naming the call",
  ignore: !registered.ok,
  fn: async () => {
    // A child process, so the guard is on from the library's load: petal_unary told to
    // write 9 floats into an 8-float buffer must be caught in the canary after it.
    const code = `
      import { loadLibpetal } from ${
      JSON.stringify(new URL("../pipeline/backends/native/ffi.ts", import.meta.url).href)
    };
      const got = loadLibpetal();
      if (!got.ok) throw new Error(got.reason);
      const x = new Float32Array(9).fill(1), y = new Float32Array(8);
      try { got.lib.petal_unary(9, x, y, 9, 0); console.log("not caught"); }
      catch (e) { console.log(e.message); }`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      env: { NO_COLOR: "1", PETAL_NATIVE_GUARD: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, new TextDecoder().decode(out.stderr));
    assertMatch(
      text,
      /libpetal guard: petal_unary wrote outside argument 2 \(32 bytes\), 0 bytes after it/,
    );
    // Unguarded, the same library is the one the suite uses.
    assert(loadLibpetal().ok);
  },
});
