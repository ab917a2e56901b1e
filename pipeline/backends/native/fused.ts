/**
 * The kernels of stages/fused.ts on libpetal: the training-mode batch norm with its affine
 * parts and activation (native/src/norm.cpp: batch statistics, affine, G's per-sample
 * affine and the activation in one call forward and one backward), a bias with its
 * activation and eval mode's per-sample affine with its activation (the same file), and nearest ×2 up-sampling and its gradient
 * (native/src/upsample.cpp).
 *
 * @example
 * ```ts
 * import { installFused } from "./fused.ts";
 * installFused(lib); // once, when the "native" backend is registered
 * ```
 */
import type * as tf from "@tensorflow/tfjs";
import type { Libpetal } from "./ffi.ts";
import { check, f32, type KernelArgs, out, recordFast, sizeOf } from "./kernel_util.ts";
import { registerNative } from "./gradients.ts";
import { installFusedRoutes } from "../fused_routes.ts";
import {
  AFFINE_ACT,
  BIAS_ACT,
  BIAS_ACT_GRAD,
  FUSED_COND_NORM,
  FUSED_NORM,
  FUSED_NORM_GRAD,
  UPSAMPLE,
  UPSAMPLE_GRAD,
} from "../../../stages/fused.ts";

/** x's layout for the kernel: [samples, rows per sample, channels]. */
function layout(x: tf.TensorInfo): [number, number, number] {
  const C = x.shape[x.shape.length - 1], B = x.shape[0];
  if (x.shape.length < 2 || x.dtype !== "float32" || C < 1 || B < 1) {
    throw new Error(`fused batch norm: x must be float32 [B, …, C], got ${x.dtype} [${x.shape}]`);
  }
  return [B, sizeOf(x.shape) / (B * C), C];
}

/**
 * The float32 values of `t`, input `name` of kernel `what`, which must be of `shape`: a
 * mismatch is a caller's bug.
 */
function values(
  backend: KernelArgs["backend"],
  t: tf.TensorInfo,
  shape: number[],
  name: string,
  what = "fused batch norm",
): Float32Array {
  const v = f32(backend, t);
  if (!v || t.shape.join() !== shape.join()) {
    throw new Error(`${what}: ${name} must be float32 [${shape}], got [${t.shape}]`);
  }
  return v;
}

function forward(lib: Libpetal, modulated: boolean): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const [B, rows, C] = layout(inputs.x);
    const x = values(backend, inputs.x, inputs.x.shape, "x");
    const gamma = values(backend, inputs.gamma, [C], "gamma");
    const beta = values(backend, inputs.beta, [C], "beta");
    const scale = modulated ? values(backend, inputs.scale, [B, C], "scale") : null;
    const shift = modulated ? values(backend, inputs.shift, [B, C], "shift") : null;
    const y = new Float32Array(x.length),
      mean = new Float32Array(C),
      variance = new Float32Array(C);
    const status = lib.petal_bn_act(
      x,
      gamma,
      beta,
      scale,
      shift,
      B,
      rows,
      C,
      attrs.act as number,
      attrs.alpha as number,
      attrs.epsilon as number,
      y,
      mean,
      variance,
    );
    check(status, "fused batch norm");
    recordFast(modulated ? FUSED_COND_NORM : FUSED_NORM);
    return [
      out(backend, inputs.x.shape.slice(), y),
      out(backend, [C], mean),
      out(backend, [C], variance),
    ];
  };
}

function backward(lib: Libpetal): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const [B, rows, C] = layout(inputs.x);
    const shape = inputs.x.shape;
    const scale = inputs.scale ? values(backend, inputs.scale, [B, C], "scale") : null;
    const dx = new Float32Array(sizeOf(shape)), dgamma = new Float32Array(C);
    const dbeta = new Float32Array(C);
    const dscale = scale ? new Float32Array(B * C) : null;
    const dshift = scale ? new Float32Array(B * C) : null;
    const status = lib.petal_bn_act_grad(
      values(backend, inputs.x, shape, "x"),
      values(backend, inputs.y, shape, "y"),
      values(backend, inputs.dy, shape, "dy"),
      values(backend, inputs.mean, [C], "mean"),
      values(backend, inputs.variance, [C], "variance"),
      values(backend, inputs.gamma, [C], "gamma"),
      values(backend, inputs.beta, [C], "beta"),
      scale,
      B,
      rows,
      C,
      attrs.act as number,
      attrs.alpha as number,
      attrs.epsilon as number,
      dx,
      dgamma,
      dbeta,
      dscale,
      dshift,
    );
    check(status, "fused batch norm gradient");
    recordFast(FUSED_NORM_GRAD);
    const outs = [
      out(backend, shape.slice(), dx),
      out(backend, [C], dgamma),
      out(backend, [C], dbeta),
    ];
    if (dscale && dshift) outs.push(out(backend, [B, C], dscale), out(backend, [B, C], dshift));
    return outs;
  };
}

/** act(x + bias) and (`grad`) its gradients from y and dy, over x's last axis. */
function biasAct(lib: Libpetal, grad: boolean): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const t = grad ? inputs.y : inputs.x;
    const C = t.shape[t.shape.length - 1], rows = sizeOf(t.shape) / C;
    if (t.shape.length < 1 || t.dtype !== "float32" || !(C > 0)) {
      throw new Error(
        `bias and activation: ${grad ? "y" : "x"} must be float32 [.., C], got [${t.shape}]`,
      );
    }
    const what = "bias and activation";
    const v = values(backend, t, t.shape, grad ? "y" : "x", what);
    const act = attrs.act as number, alpha = attrs.alpha as number;
    const y = new Float32Array(v.length);
    if (!grad) {
      const bias = values(backend, inputs.bias, [C], "bias", what);
      check(lib.petal_bias_act(v, bias, y, rows, C, act, alpha), "bias and activation");
      recordFast(BIAS_ACT);
      return out(backend, t.shape.slice(), y);
    }
    const dy = values(backend, inputs.dy, t.shape, "dy", what), dbias = new Float32Array(C);
    check(
      lib.petal_bias_act_grad(v, dy, y, dbias, rows, C, act, alpha),
      "bias and activation gradient",
    );
    recordFast(BIAS_ACT_GRAD);
    return [out(backend, t.shape.slice(), y), out(backend, [C], dbias)];
  };
}

/** act(x · a + b), a and b [B, C] per sample and channel of x [B, …, C] (eval-mode batch norm). */
function affineAct(lib: Libpetal): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const what = "affine and activation";
    const x = inputs.x;
    const C = x.shape[x.shape.length - 1], B = x.shape[0];
    if (x.shape.length < 2 || x.dtype !== "float32" || !(C > 0) || !(B > 0)) {
      throw new Error(`${what}: x must be float32 [B, …, C], got ${x.dtype} [${x.shape}]`);
    }
    const xv = values(backend, x, x.shape, "x", what);
    const a = values(backend, inputs.a, [B, C], "a", what);
    const b = values(backend, inputs.b, [B, C], "b", what);
    const y = new Float32Array(xv.length);
    const rows = xv.length / (B * C);
    const act = attrs.act as number, alpha = attrs.alpha as number;
    check(lib.petal_affine_act(xv, a, b, y, B, rows, C, act, alpha), what);
    recordFast(AFFINE_ACT);
    return out(backend, x.shape.slice(), y);
  };
}

/** Nearest ×2 up-sampling (`grad`: the sum of each 2×2 block) of a float32 [B, H, W, C]. */
function upsample(lib: Libpetal, grad: boolean): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const t = grad ? inputs.dy : inputs.x;
    const [B, H, W, C] = t.shape;
    if (t.shape.length !== 4 || t.dtype !== "float32" || (grad && (H % 2 || W % 2))) {
      const want = grad ? "[B, 2H, 2W, C]" : "[B, H, W, C]";
      throw new Error(
        `nearest up-sampling: ${grad ? "dy" : "x"} must be float32 ${want}, got [${t.shape}]`,
      );
    }
    const v = f32(backend, t)!;
    const shape = grad ? [B, H / 2, W / 2, C] : [B, 2 * H, 2 * W, C];
    const y = new Float32Array(sizeOf(shape));
    const status = grad
      ? lib.petal_upsample2x_grad(v, y, B, H / 2, W / 2, C)
      : lib.petal_upsample2x(v, y, B, H, W, C);
    check(status, grad ? "up-sampling gradient" : "up-sampling");
    recordFast(grad ? UPSAMPLE_GRAD : UPSAMPLE);
    return out(backend, shape, y);
  };
}

/**
 * Registers the kernels of stages/fused.ts on "native", and their gradients (which call the
 * gradient kernels registered here).
 *
 * @example
 * ```ts
 * installFused(lib); // then batchNormAct and upsampleNearest run one kernel per pass
 * ```
 */
export function installFused(lib: Libpetal): void {
  registerNative(FUSED_NORM, forward(lib, false));
  registerNative(FUSED_COND_NORM, forward(lib, true));
  registerNative(FUSED_NORM_GRAD, backward(lib));
  registerNative(BIAS_ACT, biasAct(lib, false));
  registerNative(BIAS_ACT_GRAD, biasAct(lib, true));
  registerNative(AFFINE_ACT, affineAct(lib));
  registerNative(UPSAMPLE, upsample(lib, false));
  registerNative(UPSAMPLE_GRAD, upsample(lib, true));
  installFusedRoutes(); // the kernels' gradients (and the other backends' kernels)
}
