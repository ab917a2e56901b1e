/**
 * Conv2D, its two gradients (Conv2DBackpropInput is also conv2dTranspose) and FusedConv2D
 * on oneDNN. tfjs's layouts are passed straight through (NHWC activations, [kh,kw,in,out]
 * filters); libpetal reorders to oneDNN's blocked layouts internally.
 *
 * @example
 * ```ts
 * import { convKernels } from "./kernels_conv.ts";
 * // convKernels(lib) -> { Conv2D: fast, Conv2DBackpropInput: fast, ... }
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { CONV_PARAMS, type Libpetal } from "./ffi.ts";
import { f32, type FastKernel, out, sizeOf } from "./kernel_util.ts";
import { applyActivation, type ElementwiseOps } from "./kernels_math.ts";

type ConvInfo = tf.backend_util.Conv2DInfo;

function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: tf.NamedAttrMap,
  dilations: number | [number, number] = 1,
): ConvInfo | null {
  const dataFormat = (attrs.dataFormat as string | undefined) ?? "NHWC";
  if (dataFormat !== "NHWC") return null;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    dilations,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    "channelsLast",
  );
}

/** The int32 parameter block of native/src/conv.cpp. */
function params(c: ConvInfo): Int32Array {
  const p = new Int32Array(CONV_PARAMS);
  p.set([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.filterHeight,
    c.filterWidth,
    c.outChannels,
    c.outHeight,
    c.outWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
    c.padInfo.bottom,
    c.padInfo.right,
  ]);
  return p;
}

/** Forward conv into a new buffer; null when libpetal declines the shape. */
function conv2d(
  lib: Libpetal,
  backend: MathBackendCPU,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): { info: ConvInfo; y: Float32Array } | null {
  const xs = f32(backend, x), fs = f32(backend, filter);
  if (!xs || !fs) return null;
  const info = convInfo(x.shape, filter.shape, attrs, attrs.dilations as number | [number, number]);
  if (!info) return null;
  const y = new Float32Array(sizeOf(info.outShape));
  if (lib.petal_conv2d(params(info), xs, fs, y) !== 0) return null;
  return { info, y };
}

/**
 * Kernel overrides keyed by tfjs kernel name.
 *
 * @example
 * ```ts
 * const fast = convKernels(lib, elementwiseOps(lib)); // fast.Conv2D(args) or null
 * ```
 */
export function convKernels(lib: Libpetal, ew: ElementwiseOps): Record<string, FastKernel> {
  return {
    Conv2D: ({ inputs, backend, attrs }) => {
      const r = conv2d(lib, backend, inputs.x, inputs.filter, attrs);
      return r && out(backend, r.info.outShape, r.y);
    },
    Conv2DBackpropInput: ({ inputs, backend, attrs }) => {
      const dy = f32(backend, inputs.dy), fs = f32(backend, inputs.filter);
      if (!dy || !fs) return null;
      const inputShape = attrs.inputShape as number[];
      const info = convInfo(inputShape, inputs.filter.shape, attrs);
      if (!info) return null;
      const dx = new Float32Array(sizeOf(inputShape));
      if (lib.petal_conv2d_backprop_input(params(info), dy, fs, dx) !== 0) return null;
      return out(backend, inputShape, dx);
    },
    Conv2DBackpropFilter: ({ inputs, backend, attrs }) => {
      const xs = f32(backend, inputs.x), dy = f32(backend, inputs.dy);
      if (!xs || !dy) return null;
      const filterShape = attrs.filterShape as number[];
      const info = convInfo(inputs.x.shape, filterShape, attrs);
      if (!info) return null;
      const df = new Float32Array(sizeOf(filterShape));
      if (lib.petal_conv2d_backprop_filter(params(info), xs, dy, df) !== 0) return null;
      return out(backend, filterShape, df);
    },
    // conv + bias + activation: the conv on oneDNN, the epilogue in place on both cores.
    FusedConv2D: ({ inputs, backend, attrs }) => {
      const activation = (attrs.activation as string | undefined) ?? "linear";
      if (inputs.preluActivationWeights || activation === "prelu") return null;
      const r = conv2d(lib, backend, inputs.x, inputs.filter, attrs);
      if (!r) return null;
      if (inputs.bias && !ew.addInPlace(backend, r.y, r.info.outShape, inputs.bias)) return null;
      if (!applyActivation(ew, r.y, activation, attrs.leakyreluAlpha as number | undefined)) {
        return null;
      }
      return out(backend, r.info.outShape, r.y);
    },
  };
}
