/**
 * Backend choice. `auto` takes the fastest engine that loads here:
 * tfjs-node-gpu → tfjs-node → webgpu (on a hardware adapter only) → native (petal's
 * oneDNN/OpenBLAS kernels over Deno FFI) → wasm → cpu. Nothing beyond wasm/cpu is required: tfjs-node only loads where the user
 * installed it (its install script downloads libtensorflow), and native only where
 * `native/build.sh` has built the kernel library.
 *
 * @example
 * ```ts
 * import { useBackend } from "./backend.ts";
 * const name = await useBackend("auto"); // e.g. "wasm"
 * ```
 */
import * as tf from "@tensorflow/tfjs";
// Imported for its side effect: registers the "wasm" backend (a namespace import that is
// never used gets dropped by TypeScript; see ../shared/notes/tfjs-on-deno.md).
import "@tensorflow/tfjs-backend-wasm";
import { petalError, PetalFailure } from "../io/errors.ts";
import { installFastRoutes } from "./fast_routes.ts";
import { installFusedRoutes } from "./fused_routes.ts";

// wasm's and cpu's fast routes (conv filter/input gradients via conv2d, the embedding
// gradient in JS) are kernels they register, and so are stages/fused.ts's kernels (as the
// tf ops they stand for) on every backend but native; stages/ never asks which backend runs.
installFastRoutes();
installFusedRoutes();

/** How much faster `deno task train` runs on native than on wasm (README, Speed). */
export const NATIVE_SPEEDUP = "3.5–7×";

/**
 * What `--backend` accepts: `auto` tries tensorflow, webgpu (hardware adapter
 * only), native, wasm, cpu in turn.
 *
 * @example
 * ```ts
 * BACKEND_CHOICES.includes("wasm"); // true
 * ```
 */
export const BACKEND_CHOICES = ["auto", "tensorflow", "webgpu", "native", "wasm", "cpu"] as const;
/** One of {@link BACKEND_CHOICES}. */
export type BackendChoice = typeof BACKEND_CHOICES[number];

export const isBackendChoice = (s: string): s is BackendChoice =>
  (BACKEND_CHOICES as readonly string[]).includes(s);

type Attempt = { ok: true; name: string } | { ok: false; reason: string };

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** tfjs-node(-gpu) registers backend "tensorflow" when its module imports. */
async function tryTensorflow(): Promise<Attempt> {
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      // Only a package the user installed (with its scripts allowed) is tried, so a
      // plain clone never reaches for the network here.
      const dir = new URL(`../../node_modules/${pkg}/package.json`, import.meta.url);
      await Deno.stat(dir);
      await import(`npm:${pkg}`);
      if (await tf.setBackend("tensorflow")) return { ok: true, name: "tensorflow" };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) return { ok: false, reason: errorText(e) };
    }
  }
  return {
    ok: false,
    reason:
      "@tensorflow/tfjs-node(-gpu) is not installed (deno add --allow-scripts npm:@tensorflow/tfjs-node-gpu)",
  };
}

async function tryNative(): Promise<Attempt> {
  try {
    const { registerNativeBackend } = await import("./native.ts");
    const registered = await registerNativeBackend();
    if (!registered.ok) return registered;
    if (await tf.setBackend("native")) return { ok: true, name: "native" };
    return { ok: false, reason: "tf.setBackend('native') failed" };
  } catch (e) {
    return { ok: false, reason: errorText(e) };
  }
}

/** webgpu: any adapter when asked for by name; `auto` skips a software one (lavapipe). */
async function tryWebgpu(auto: boolean): Promise<Attempt> {
  try {
    const { registerWebgpuBackend } = await import("./webgpu.ts");
    const registered = await registerWebgpuBackend({ allowSoftware: !auto });
    if (!registered.ok) return registered;
    if (await tf.setBackend("webgpu")) return { ok: true, name: "webgpu" };
    return { ok: false, reason: "tf.setBackend('webgpu') failed (see the warning above)" };
  } catch (e) {
    return { ok: false, reason: errorText(e) };
  }
}

async function trySimple(name: "wasm" | "cpu"): Promise<Attempt> {
  try {
    if (await tf.setBackend(name)) {
      await tf.ready();
      return { ok: true, name };
    }
    return { ok: false, reason: `tf.setBackend('${name}') returned false` };
  } catch (e) {
    return { ok: false, reason: errorText(e) };
  }
}

const attempts: Record<Exclude<BackendChoice, "auto">, (auto: boolean) => Promise<Attempt>> = {
  tensorflow: tryTensorflow,
  webgpu: tryWebgpu,
  native: tryNative,
  wasm: () => trySimple("wasm"),
  cpu: () => trySimple("cpu"),
};

/** The order `auto` tries. `PETAL_BACKEND` (same values as --backend) overrides it. */
export const AUTO_ORDER = ["tensorflow", "webgpu", "native", "wasm", "cpu"] as const;

/**
 * Switches tfjs to the chosen backend and returns the name it runs on.
 * Throws a PetalFailure naming the backend and why it did not load.
 *
 * @example The fastest that loads here, or one by name.
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { useBackend } from "../../mod.ts";
 *
 * const name = await useBackend("auto");
 * console.log(name, tf.getBackend() === name); // e.g. native true
 * console.log(await useBackend("cpu")); // cpu
 * ```
 */
export async function useBackend(choice: BackendChoice = "auto"): Promise<string> {
  const name = await pickBackend(choice);
  // tfjs's cpu kernels (which cpu and native build on) greet the first tensor with advice
  // to install tfjs-node; petal already chose, so keep the tasks' output to the point.
  const active = tf.backend() as { firstUse?: boolean };
  if ("firstUse" in active) active.firstUse = false;
  return name;
}

/**
 * The one line `auto` prints when it falls past native: why, and what installing it buys.
 * The ratio is `deno task train`'s img/s, native vs wasm, from `deno task bench`.
 */
function nativeMissingNotice(reason: string, running: string): string {
  return `petal: ${reason} — running on ${running}; the native backend trains ` +
    `${NATIVE_SPEEDUP} faster (README, Speed)`;
}

async function pickBackend(choice: BackendChoice): Promise<string> {
  const env = Deno.env.get("PETAL_BACKEND");
  const effective = choice === "auto" && env && isBackendChoice(env) ? env : choice;
  if (effective !== "auto") {
    const got = await attempts[effective](false);
    if (got.ok) return got.name;
    throw new PetalFailure(
      petalError("Backend", `--backend ${effective}`, got.reason, "pick another with --backend"),
    );
  }
  const reasons: string[] = [];
  for (const name of AUTO_ORDER) {
    const got = await attempts[name](true);
    if (!got.ok) {
      reasons.push(`${name}: ${got.reason}`);
      continue;
    }
    const native = reasons.find((r) => r.startsWith("native:"));
    if (native) console.error(nativeMissingNotice(native, got.name));
    return got.name;
  }
  throw new PetalFailure(
    petalError("Backend", "--backend auto", reasons.join("; "), "install a tfjs backend"),
  );
}
