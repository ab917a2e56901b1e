/**
 * The "webgpu" tfjs backend (`@tensorflow/tfjs-backend-webgpu`) on Deno's WebGPU, which
 * needs `--unstable-webgpu` (every task in deno.json sets it) and a GPU adapter: Vulkan on
 * Linux (a driver + libvulkan1), Metal on macOS, D3D12 on Windows.
 *
 * A software adapter (Mesa's lavapipe/llvmpipe, SwiftShader, WARP) runs the shaders on
 * the CPU: `--backend webgpu` accepts it (the test suite runs on it), `auto` never picks it.
 * The tfjs module is imported only when webgpu is tried: it registers itself at a higher
 * priority than wasm and cpu, and would otherwise become tfjs's default.
 *
 * @example
 * ```ts
 * import { describeAdapter, registerWebgpuBackend } from "./webgpu.ts";
 * const r = await registerWebgpuBackend({ allowSoftware: true });
 * if (r.ok) console.log(describeAdapter(r.adapter)); // "llvmpipe (…) — vendor Mesa, …, software …"
 * else console.log(r.reason); // what to install
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { installFusedRoutes } from "./fused_routes.ts";

/** The backend name registered with tfjs. */
export const WEBGPU_BACKEND = "webgpu";

/** What petal reports about the adapter it got. */
export interface AdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  /** True for a CPU implementation of WebGPU (lavapipe, SwiftShader, WARP). */
  readonly software: boolean;
}

export type WebgpuProbe =
  | { ok: true; adapter: AdapterSummary }
  | { ok: false; reason: string };

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|basic render|warp/i;

/** One line of what to install for a GPU adapter on this OS. */
export function installHint(os: string = Deno.build.os): string {
  if (os === "linux") {
    return "install a Vulkan driver and loader (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1; NVIDIA: its driver)";
  }
  if (os === "darwin") return "WebGPU runs on Metal: update macOS and Deno";
  if (os === "windows") return "WebGPU runs on D3D12: update the GPU driver";
  return "WebGPU needs Vulkan, Metal or D3D12, which this OS may not have";
}

/** PCI / Khronos vendor ids that adapters report as a bare number. */
const VENDORS: Record<string, string> = {
  "4098": "AMD",
  "4318": "NVIDIA",
  "32902": "Intel",
  "4203": "Apple",
  "20803": "Qualcomm",
  "5045": "ARM",
  "65541": "Mesa",
};

/**
 * The adapter's fields, as petal reports them.
 *
 * @example
 * ```ts
 * summarizeAdapter({ vendor: "4318", description: "NVIDIA GeForce RTX 3080" });
 * // { vendor: "NVIDIA", architecture: "unknown architecture", description: "NVIDIA…", software: false }
 * ```
 */
export function summarizeAdapter(info: {
  vendor?: string;
  architecture?: string;
  description?: string;
  device?: string;
  isFallbackAdapter?: boolean;
}): AdapterSummary {
  const description = info.description || info.device || "";
  return {
    vendor: VENDORS[info.vendor ?? ""] ?? (info.vendor || "unknown vendor"),
    architecture: info.architecture || "unknown architecture",
    description: description || "no description",
    software: info.isFallbackAdapter === true || SOFTWARE.test(description),
  };
}

/** "llvmpipe (LLVM 15.0.6, 256 bits) — vendor Mesa, unknown architecture, software (…)" */
export const describeAdapter = (a: AdapterSummary): string =>
  `${a.description} — vendor ${a.vendor}, ${a.architecture}, ${
    a.software ? "software (CPU, not a GPU)" : "hardware"
  }`;

/**
 * Deno's WebGPU (through its Vulkan loader) complains twice on stderr when
 * XDG_RUNTIME_DIR is unset; point it at a private temp folder before the first adapter.
 */
function ensureRuntimeDir(): void {
  if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
  try {
    const dir = Deno.makeTempDirSync({ prefix: "petal-xdg-" });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch { /* only a cosmetic warning is at stake */ }
}

type Gpu = { requestAdapter(o?: unknown): Promise<{ info?: Record<string, unknown> } | null> };

/**
 * Finds the adapter tfjs will use (high-performance), without creating a device.
 *
 * @example
 * ```ts
 * const p = await probeWebgpu();
 * console.log(p.ok ? p.adapter.software : p.reason); // reason: what to install
 * ```
 */
export async function probeWebgpu(): Promise<WebgpuProbe> {
  const gpu = (globalThis.navigator as { gpu?: Gpu } | undefined)?.gpu;
  if (!gpu) {
    return {
      ok: false,
      reason: "WebGPU is off in this Deno: run it with --unstable-webgpu (the deno tasks do)",
    };
  }
  ensureRuntimeDir();
  let adapter;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    return { ok: false, reason: `no WebGPU adapter (${errorText(e)}): ${installHint()}` };
  }
  if (!adapter) return { ok: false, reason: `no WebGPU adapter: ${installHint()}` };
  return { ok: true, adapter: summarizeAdapter(adapter.info ?? {}) };
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

let active: AdapterSummary | undefined;

/** The adapter the webgpu backend runs on, once registered. */
export const activeAdapter = (): AdapterSummary | undefined => active;

/**
 * Registers tfjs's webgpu backend when an adapter is there (a software one only with
 * `allowSoftware`) and sets the flags petal needs. Does not switch backends.
 */
export async function registerWebgpuBackend(
  opts: { allowSoftware: boolean },
): Promise<WebgpuProbe> {
  const probe = await probeWebgpu();
  if (!probe.ok) return probe;
  if (probe.adapter.software && !opts.allowSoftware) {
    return {
      ok: false,
      reason: `only a software adapter (${probe.adapter.description}), which auto skips; ` +
        `force it with --backend webgpu`,
    };
  }
  try {
    // Registers "webgpu" with tfjs (only where navigator.gpu exists).
    const { webgpu_util } = await import("@tensorflow/tfjs-backend-webgpu");
    fixCastToFloat(webgpu_util);
    avoidSplitKTransposedB();
    installFusedRoutes(); // stages/fused.ts's kernels, as the tf ops they stand for
  } catch (e) {
    return { ok: false, reason: `@tensorflow/tfjs-backend-webgpu: ${errorText(e)}` };
  }
  active = probe.adapter;
  return probe;
}

type DispatchUtil = {
  flatDispatchLayout(shape: number[]): { x: number[] };
  computeDispatch(
    layout: { x: number[] },
    shape: number[],
    workgroup: [number, number, number],
  ): [number, number, number];
};

/** A shader that converts an int32/bool buffer to float32 element by element. */
function toFloatProgram(shape: number[], util: DispatchUtil) {
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(shape);
  return {
    variableNames: ["A"],
    size: true,
    outputShape: shape,
    workgroupSize,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, shape, workgroupSize),
    shaderKey: "petal_int_to_float",
    // The generated accessor reads A's i32 and returns it as f32.
    getUserCode: () =>
      `fn main(index : i32) {
        if (index < uniforms.size) { setOutputAtIndex(index, getAByOutputIndex(index)); }
      }`,
  };
}

type CastBackend = {
  tensorMap: { get(id: unknown): { values?: ArrayLike<number> | null } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  runWebGPUProgram(program: unknown, inputs: tf.TensorInfo[], dtype: string): tf.TensorInfo;
};

/**
 * tfjs-webgpu 4.22 casts int32 and bool to float32 by relabelling the buffer (no
 * "encoding loss"), but it stores those as i32: every float kernel that reads the result
 * sees the integer's bits (1 → 1.4e-45). Text masks (`cast(notEqual(ids, pad))`) and
 * one-hot labels all came out ~0. This replaces the Cast kernel for those two cases with
 * a real conversion (tests/webgpu_kernels_test.ts checks it).
 */
function fixCastToFloat(util: DispatchUtil): void {
  const original = tf.getKernel("Cast", WEBGPU_BACKEND);
  if (!original || (original as { petal?: boolean }).petal) return;
  tf.unregisterKernel("Cast", WEBGPU_BACKEND);
  const kernel = {
    kernelName: "Cast",
    backendName: WEBGPU_BACKEND,
    petal: true,
    kernelFunc: (args: tf.KernelFunc extends (a: infer A) => unknown ? A : never) => {
      const x = args.inputs.x as tf.TensorInfo;
      const dtype = (args.attrs as { dtype: string }).dtype;
      if (dtype !== "float32" || (x.dtype !== "int32" && x.dtype !== "bool")) {
        return original.kernelFunc(args);
      }
      const backend = args.backend as unknown as CastBackend;
      const values = backend.tensorMap.get(x.dataId).values;
      if (values) return backend.makeTensorInfo(x.shape, "float32", Float32Array.from(values));
      return backend.runWebGPUProgram(toFloatProgram(x.shape, util), [x], "float32");
    },
  };
  tf.registerKernel(kernel as tf.KernelConfig);
}

type MatMulArgs = {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
};

/**
 * tfjs-webgpu 4.22 picks MatMulSplitKProgram for one matrix with few output tiles and an
 * inner size ≥ 2000, and that program is wrong for a·bᵀ (relative error ~1: measured on
 * lavapipe). tfjs's own gradient of a dense layer is exactly that (dy·Wᵀ with K = the
 * layer's width, 2048 in the small G's first layer). Such calls run here with the
 * small-output-size program instead (tests/webgpu_kernels_test.ts checks it).
 */
function avoidSplitKTransposedB(): void {
  const original = tf.getKernel("BatchMatMul", WEBGPU_BACKEND);
  if (!original || (original as { petal?: boolean }).petal) return;
  tf.unregisterKernel("BatchMatMul", WEBGPU_BACKEND);
  const FLAG = "WEBGPU_MATMUL_PROGRAM_TYPE";
  const SMALL_OUTPUT_SIZE_PROGRAM = 2;
  const kernel = {
    kernelName: "BatchMatMul",
    backendName: WEBGPU_BACKEND,
    petal: true,
    kernelFunc: (args: tf.KernelFunc extends (a: infer A) => unknown ? A : never) => {
      const { inputs, attrs } = args as unknown as MatMulArgs;
      const inner = inputs.a.shape.at(attrs.transposeA ? -2 : -1)!;
      const env = tf.env();
      if (!attrs.transposeB || attrs.transposeA || inner < 2000 || env.getNumber(FLAG) >= 0) {
        return original.kernelFunc(args);
      }
      env.set(FLAG, SMALL_OUTPUT_SIZE_PROGRAM);
      try {
        return original.kernelFunc(args);
      } finally {
        env.set(FLAG, -1);
      }
    },
  };
  tf.registerKernel(kernel as tf.KernelConfig);
}
