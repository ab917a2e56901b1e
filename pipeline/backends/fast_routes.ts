/**
 * The wasm and cpu backends' fast routes, as kernels they register: stages call plain tf
 * ops (tf.conv2d, tf.conv2dTranspose, tf.gather) and never ask which backend runs them.
 *
 * - `Conv2DBackpropFilter` (a conv's filter gradient): missing on wasm, pathologically
 *   slow on cpu; here a stride-1 conv2d of the transposed input with the transposed output
 *   gradient (stages/layers.ts `conv2dFilterGrad`, ../shared/notes/tfjs-on-deno.md).
 * - `Conv2DBackpropInput` (a conv's input gradient, and every transposed conv): wasm's is
 *   a slow reference loop while its Conv2D is XNNPACK; here a conv2d of the zero-dilated
 *   input (stages/layers.ts `conv2dTransposeAsConv`).
 * - `UnsortedSegmentSum` (the gradient of an embedding lookup, tf.gather): missing on
 *   wasm; here the B·T rows are scatter-added in JS, far cheaper than a one-hot matmul
 *   over the vocabulary.
 *
 * A call outside what a route covers (another data format, unequal strides, explicit
 * pads) goes to the backend's own kernel where it has one. tfjs's gradients of Conv2D and
 * Conv2DBackpropInput are made of these kernels, so a gradient of a gradient (WGAN-GP)
 * takes the same routes.
 *
 * @example
 * ```ts
 * import { installFastRoutes } from "./fast_routes.ts";
 * installFastRoutes(); // once; backend.ts does it when it loads
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { conv2dFilterGrad, conv2dTransposeAsConv } from "../../stages/layers.ts";

type Args = {
  inputs: Record<string, tf.TensorInfo>;
  attrs: Record<string, unknown>;
  backend: unknown;
};

/** The backends whose kernels these routes replace or add. */
export const FAST_ROUTE_BACKENDS = ["wasm", "cpu"] as const;

/**
 * A kernel's inputs as tensors for the duration of `f` (freed after). Each wrapper takes
 * its own reference to the data (makeTensorFromTensorInfo alone does not), so freeing it
 * leaves the caller's tensor intact.
 */
export function withTensors<T>(infos: tf.TensorInfo[], f: (ts: tf.Tensor[]) => T): T {
  const engine = tf.engine();
  const ts = infos.map((i) => {
    const t = engine.makeTensorFromTensorInfo(i);
    engine.backend.incRef(i.dataId);
    return t;
  });
  try {
    return f(ts);
  } finally {
    tf.dispose(ts);
  }
}

/** The single stride and 'same'/'valid' pad of a NHWC conv, or null (outside the route). */
function routable(
  attrs: Record<string, unknown>,
): { stride: number; pad: "same" | "valid" } | null {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs;
  const [sh, sw] = typeof strides === "number" ? [strides, strides] : strides as number[];
  if (sh !== sw || (pad !== "same" && pad !== "valid")) return null;
  if ((dataFormat ?? "NHWC") !== "NHWC" || dimRoundingMode != null) return null;
  return { stride: sh, pad };
}

/** Replaces (or adds) `kernelName` on `backendName`; `fast` may decline with null. */
function route(
  kernelName: string,
  backendName: string,
  fast: (args: Args) => tf.Tensor | null,
): void {
  const original = tf.getKernel(kernelName, backendName);
  if ((original as { petal?: boolean } | undefined)?.petal) return;
  if (original) tf.unregisterKernel(kernelName, backendName);
  const kernelFunc = (args: Args) => {
    const out = fast(args);
    if (out) return out;
    if (!original) throw new Error(`${kernelName} on ${backendName}: no kernel for these attrs`);
    return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
  };
  tf.registerKernel(
    { kernelName, backendName, kernelFunc, petal: true } as unknown as tf.KernelConfig,
  );
}

const filterGrad = ({ inputs, attrs }: Args) => {
  const r = routable(attrs);
  if (!r) return null;
  const [kh, kw] = attrs.filterShape as number[];
  return withTensors(
    [inputs.x, inputs.dy],
    ([x, dy]) => conv2dFilterGrad(x as tf.Tensor4D, dy as tf.Tensor4D, [kh, kw], r.stride, r.pad),
  );
};

const inputGrad = ({ inputs, attrs }: Args) => {
  const r = routable(attrs);
  if (!r) return null;
  const shape = attrs.inputShape as [number, number, number, number];
  return withTensors(
    [inputs.dy, inputs.filter],
    ([dy, w]) => conv2dTransposeAsConv(dy as tf.Tensor4D, w as tf.Tensor4D, r.stride, shape, r.pad),
  );
};

/** Rows of x [N, …] added into segment ids[n] of [numSegments, …], in JS. */
const segmentSum = ({ inputs, attrs }: Args) => {
  const { x, segmentIds } = inputs;
  if (x.dtype !== "float32" || segmentIds.shape.length !== 1) return null;
  return withTensors([x, segmentIds], ([xt, idt]) => {
    const numSegments = attrs.numSegments as number;
    const width = xt.size / Math.max(1, xt.shape[0]);
    const values = xt.dataSync();
    const ids = idt.dataSync();
    const out = new Float32Array(numSegments * width);
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r];
      if (id < 0 || id >= numSegments) continue;
      const src = r * width;
      const dst = id * width;
      for (let c = 0; c < width; c++) out[dst + c] += values[src + c];
    }
    return tf.tensor(out, [numSegments, ...xt.shape.slice(1)], "float32");
  });
};

/**
 * Registers the routes on `backends` (default wasm and cpu; idempotent). Kernels are
 * registered per backend name, so this may run before a backend is initialised.
 */
export function installFastRoutes(
  backends: readonly (typeof FAST_ROUTE_BACKENDS)[number][] = FAST_ROUTE_BACKENDS,
): void {
  for (const backend of backends) {
    route("Conv2DBackpropFilter", backend, filterGrad);
    route("Conv2DBackpropInput", backend, inputGrad);
  }
  if (backends.includes("wasm") && !tf.getKernel("UnsortedSegmentSum", "wasm")) {
    route("UnsortedSegmentSum", "wasm", segmentSum);
  }
}
