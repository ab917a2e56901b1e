/**
 * Loads libpetal (native/build/libpetal.so, built by native/build.sh) over Deno FFI.
 * `PETAL_NATIVE_LIB` overrides the path. Loading never throws: a missing or broken
 * library comes back as a reason, so `auto` can move on to wasm.
 *
 * @example
 * ```ts
 * import { loadLibpetal } from "./ffi.ts";
 * const got = loadLibpetal();
 * if (got.ok) console.log("libpetal at", got.path);
 * ```
 */

/** FFI signatures of native/src/*.cpp. Pointers are "buffer": Deno passes TypedArrays. */
const SYMBOLS = {
  petal_conv_params: { parameters: [], result: "i32" },
  petal_tune_allocator: { parameters: [], result: "i32" },
  petal_conv2d: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  petal_conv2d_backprop_input: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  petal_conv2d_backprop_filter: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  petal_batch_matmul: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  petal_binary: {
    parameters: ["i32", "buffer", "buffer", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_compare: {
    parameters: ["i32", "buffer", "buffer", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_unary: { parameters: ["i32", "buffer", "buffer", "i32", "f32"], result: "i32" },
  petal_select: { parameters: ["buffer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  petal_batchnorm: {
    parameters: [
      "buffer",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  petal_reduce: {
    parameters: ["i32", "buffer", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_adam: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
    ],
    result: "i32",
  },
  petal_conv_stats: { parameters: ["buffer"], result: "void" },
  petal_conv_contexts: { parameters: [], result: "i32" },
  petal_ew_threads: { parameters: [], result: "i32" },
  petal_set_threads: { parameters: ["i32"], result: "i32" },
  petal_copy_rows: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_slice: {
    parameters: ["buffer", "buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  petal_act_grad: {
    parameters: ["i32", "buffer", "buffer", "buffer", "i32", "f32"],
    result: "i32",
  },
  petal_batchnorm_grad: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "f32",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  petal_bn_act: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "f32",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  petal_bn_act_grad: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "f32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  petal_affine_act: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "f32"],
    result: "i32",
  },
  petal_bias_act: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "i32", "f32"],
    result: "i32",
  },
  petal_bias_act_grad: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "f32"],
    result: "i32",
  },
  petal_upsample2x: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_upsample2x_grad: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  petal_tile: { parameters: ["buffer", "buffer", "i32", "buffer", "buffer"], result: "i32" },
  petal_transpose: { parameters: ["buffer", "buffer", "i32", "buffer", "buffer"], result: "i32" },
  petal_segment_sum: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type Libpetal = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Number of int32 fields in the conv parameter block (native/src/conv.cpp ConvParams). */
export const CONV_PARAMS = 17;

/** Where the library is looked for: PETAL_NATIVE_LIB, else native/build/ of this repo. */
export function libpetalPath(): string {
  const override = Deno.env.get("PETAL_NATIVE_LIB");
  if (override) return override;
  return new URL("../../../native/build/libpetal.so", import.meta.url).pathname;
}

let loaded: { ok: true; lib: Libpetal; path: string } | undefined;
let buildTried = false;

/** What a machine needs to build libpetal, as one apt line. */
export const NATIVE_PREREQUISITES = "apt-get install g++ libdnnl-dev";

/** native/build.sh of this checkout, or null when the library path is overridden. */
function buildScript(): string | null {
  if (Deno.env.get("PETAL_NATIVE_LIB")) return null;
  return new URL("../../../native/build.sh", import.meta.url).pathname;
}

const fileExists = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};

/** True when g++ and oneDNN's headers are installed, so build.sh can run. */
function canBuild(): boolean {
  if (!fileExists("/usr/include/oneapi/dnnl/dnnl.hpp")) return false;
  const path = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  return path.split(":").some((dir) => fileExists(`${dir}/g++`));
}

/**
 * Builds libpetal with native/build.sh, once per process, when the build tools are there
 * (build.sh is idempotent and takes a lock, so parallel processes build it once). Prints a
 * one-line notice; returns why it could not, or null after a successful build.
 */
function buildOnce(): string | null {
  const script = buildScript();
  if (!script || buildTried) return "not built";
  buildTried = true;
  if (!canBuild()) {
    return `not built, and its build needs g++ and oneDNN: ${NATIVE_PREREQUISITES}`;
  }
  console.error("petal: building the native backend once (native/build.sh, about a minute)");
  const out = new Deno.Command(script, { stdout: "piped", stderr: "piped" }).outputSync();
  if (out.success) return null;
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
  return `native/build.sh failed: ${err ?? `exit ${out.code}`}`;
}

/**
 * Opens libpetal once per process, building it first (native/build.sh) when it is missing
 * or stale and g++ and libdnnl-dev are installed. Sets OMP_NUM_THREADS to the core count
 * and OMP_WAIT_POLICY to PASSIVE when unset, before the OpenMP runtime (libgomp, via
 * oneDNN) reads them at load time.
 *
 * @example
 * ```ts
 * const got = loadLibpetal();
 * if (!got.ok) console.log(got.reason); // "... not built, and its build needs g++ ..."
 * ```
 */
export function loadLibpetal():
  | { ok: true; lib: Libpetal; path: string }
  | { ok: false; reason: string } {
  if (loaded) return loaded;
  const path = libpetalPath();
  let got = open(path);
  if (!got.ok && got.buildable) {
    const why = buildOnce();
    got = why === null ? open(path) : { ok: false, reason: `${path} ${why}`, buildable: false };
  }
  if (!got.ok) return { ok: false, reason: got.reason };
  return loaded = { ok: true, lib: got.lib, path };
}

/** dlopen + version check; `buildable` when a (re)build could fix it. */
function open(path: string):
  | { ok: true; lib: Libpetal }
  | { ok: false; reason: string; buildable: boolean } {
  if (!fileExists(path)) return { ok: false, reason: `${path} not built`, buildable: true };
  try {
    if (!Deno.env.get("OMP_NUM_THREADS")) {
      Deno.env.set("OMP_NUM_THREADS", String(navigator.hardwareConcurrency || 2));
    }
    // libgomp's default wait policy spins at every barrier; when another process holds a
    // core, the spinning thread burns the timeslice its descheduled partner needs. Passive
    // waits sleep at once: `deno task train` (small, real data) with one core busy ran at
    // 35.6 img/s passive against 8.7 spinning, and 62.4 against 13.1 beside a one-thread
    // training run (2026-11-29).
    if (!Deno.env.get("OMP_WAIT_POLICY")) Deno.env.set("OMP_WAIT_POLICY", "PASSIVE");
    const dl = Deno.dlopen(path, SYMBOLS);
    const fields = dl.symbols.petal_conv_params();
    if (fields !== CONV_PARAMS) {
      dl.close();
      return {
        ok: false,
        reason: `${path} is stale (conv params ${fields} != ${CONV_PARAMS}): rerun native/build.sh`,
        buildable: true,
      };
    }
    const guard = Deno.env.get("PETAL_NATIVE_GUARD");
    return { ok: true, lib: guard && guard !== "0" ? guarded(dl.symbols) : dl.symbols };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return {
      ok: false,
      reason: `${path} did not load (${why}): rerun native/build.sh`,
      buildable: true,
    };
  }
}

/** Bytes of canary on each side of a guarded buffer. */
const GUARD_BYTES = 256;
const CANARY = 0xa5;

/**
 * PETAL_NATIVE_GUARD=1: every buffer argument is copied into a larger one with canary
 * bytes on both sides, and after each call the canaries are checked, so a native write
 * outside a buffer (libpetal, oneDNN or OpenMP) throws at the call that made it, naming
 * the function and the argument, instead of corrupting the heap for a later crash.
 * Slow (a copy per argument per call): for hunting faults, never for speed.
 */
function guarded(lib: Libpetal): Libpetal {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(lib) as [string, (...a: unknown[]) => unknown][]) {
    wrapped[name] = (...args: unknown[]) => {
      const pads = args.map((a) => ArrayBuffer.isView(a) ? padded(a) : null);
      const result = fn(...args.map((a, i) => pads[i]?.inner ?? a));
      pads.forEach((p, i) => {
        if (!p) return;
        const bad = firstNonCanary(p.outer);
        if (bad >= 0) {
          const where = bad < GUARD_BYTES
            ? `${GUARD_BYTES - bad} bytes before`
            : `${bad - (p.outer.length - GUARD_BYTES)} bytes after`;
          throw new Error(
            `libpetal guard: ${name} wrote outside argument ${i} ` +
              `(${p.inner.length} bytes), ${where} it`,
          );
        }
        const view = args[i] as ArrayBufferView;
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(p.inner);
      });
      return result;
    };
  }
  return wrapped as Libpetal;
}

/** Index of the first byte of either canary run that was overwritten, or -1. */
function firstNonCanary(outer: Uint8Array): number {
  const tail = outer.length - GUARD_BYTES;
  for (let j = 0; j < GUARD_BYTES; j++) if (outer[j] !== CANARY) return j;
  for (let j = tail; j < outer.length; j++) if (outer[j] !== CANARY) return j;
  return -1;
}

/** A copy of `view`'s bytes between two canary runs. */
function padded(view: ArrayBufferView): { outer: Uint8Array; inner: Uint8Array } {
  const outer = new Uint8Array(view.byteLength + 2 * GUARD_BYTES).fill(CANARY);
  const inner = outer.subarray(GUARD_BYTES, GUARD_BYTES + view.byteLength);
  inner.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return { outer, inner };
}
