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
  petal_tile: { parameters: ["buffer", "buffer", "i32", "buffer", "buffer"], result: "i32" },
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

let loaded: { ok: true; lib: Libpetal; path: string } | { ok: false; reason: string } | undefined;

/**
 * Opens libpetal once per process. Sets OMP_NUM_THREADS to the core count when unset,
 * before the OpenMP runtime (libgomp, via oneDNN) reads it at load time.
 *
 * @example
 * ```ts
 * const got = loadLibpetal();
 * if (!got.ok) console.log(got.reason); // "... not found: run native/build.sh ..."
 * ```
 */
export function loadLibpetal():
  | { ok: true; lib: Libpetal; path: string }
  | { ok: false; reason: string } {
  if (loaded) return loaded;
  const path = libpetalPath();
  try {
    Deno.statSync(path);
  } catch {
    return loaded = {
      ok: false,
      reason: `${path} not found: run native/build.sh (needs libdnnl-dev, g++)`,
    };
  }
  try {
    if (!Deno.env.get("OMP_NUM_THREADS")) {
      Deno.env.set("OMP_NUM_THREADS", String(navigator.hardwareConcurrency || 2));
    }
    const dl = Deno.dlopen(path, SYMBOLS);
    const fields = dl.symbols.petal_conv_params();
    if (fields !== CONV_PARAMS) {
      dl.close();
      return loaded = {
        ok: false,
        reason: `${path} is stale (conv params ${fields} != ${CONV_PARAMS}): rerun native/build.sh`,
      };
    }
    const guard = Deno.env.get("PETAL_NATIVE_GUARD");
    const lib = guard && guard !== "0" ? guarded(dl.symbols) : dl.symbols;
    return loaded = { ok: true, lib, path };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return loaded = { ok: false, reason: `${path} did not load (${why}): rerun native/build.sh` };
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
