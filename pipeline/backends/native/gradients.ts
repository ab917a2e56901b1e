/**
 * Leaner gradients on the native backend for the ops every conv net trains through:
 * batch norm, relu, leaky relu, and the broadcasts of Mean/Sum. tfjs writes them as
 * chains of full-size elementwise ops (the batch-norm gradient alone is ~15 passes over
 * the activation, two of them held until the backward pass ends); here each is one pass
 * in libpetal, same formulas. On other backends, and for cases outside the fused kernels
 * (non-float32, non-per-channel statistics, higher-order gradients), tfjs's own gradient
 * runs unchanged.
 *
 * @example
 * ```ts
 * import { installNativeGradients } from "./gradients.ts";
 * installNativeGradients(lib); // once, when the "native" backend is registered
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { Libpetal } from "./ffi.ts";
import { timed } from "./profile.ts";
import { check, f32, type KernelArgs, out, recordFast, sizeOf } from "./kernel_util.ts";

const BN_GRAD = "PetalBatchNormGrad";
const ACT_GRAD = "PetalActivationGrad";
const ACT = { relu: 0, leakyRelu: 1 } as const;

type GradFunc = tf.GradConfig["gradFunc"];
type Grads = ReturnType<GradFunc>;

/** Wraps tfjs's gradient for `kernelName`: `fast` may answer on native, else the original. */
function override(
  kernelName: string,
  fast: (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => Grads | null,
): void {
  const original = tf.getGradient(kernelName);
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const d = dy as tf.Tensor;
      // With a tape on, this backward pass is itself being differentiated (e.g. a WGAN-GP
      // penalty): tfjs's gradient is made of differentiable ops, the fused kernels are not.
      const fused = tf.getBackend() === "native" && d.dtype === "float32" &&
        !tf.engine().isTapeOn();
      const r = fused ? fast(d, saved, attrs) : null;
      return r ?? original.gradFunc(dy, saved, attrs);
    },
  });
}

/** Registers a native-only kernel, timed like the others. */
export function registerNative(kernelName: string, kernelFunc: tf.KernelFunc): void {
  const fn = timed(kernelName, kernelFunc, () => true);
  tf.registerKernel({ kernelName, backendName: "native", kernelFunc: fn });
}

/** The native kernels the gradients call (registered for backend "native" only). */
function registerKernels(lib: Libpetal): void {
  registerNative(ACT_GRAD, (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const xv = f32(backend, inputs.x)!, dyv = f32(backend, inputs.dy)!;
    const y = new Float32Array(xv.length);
    const op = attrs.op as number, alpha = attrs.alpha as number;
    check(lib.petal_act_grad(op, xv, dyv, y, y.length, alpha), "activation grad");
    recordFast(ACT_GRAD);
    return out(backend, inputs.x.shape.slice(), y);
  });
  registerNative(BN_GRAD, (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const { x, dy, mean, variance, scale } = inputs;
    const c = mean.shape[0];
    const dx = new Float32Array(sizeOf(x.shape));
    const small = () => new Float32Array(c);
    const [dMean, dVar, dScale, dOffset] = [small(), small(), small(), small()];
    const status = lib.petal_batchnorm_grad(
      f32(backend, x)!,
      f32(backend, dy)!,
      f32(backend, mean)!,
      f32(backend, variance)!,
      scale ? f32(backend, scale)! : null,
      attrs.varianceEpsilon as number,
      dx.length,
      c,
      dx,
      dMean,
      dVar,
      dScale,
      dOffset,
    );
    check(status, "batch norm grad");
    recordFast(BN_GRAD);
    return [dx, dMean, dVar, dScale, dOffset].map((v, i) =>
      out(backend, i === 0 ? x.shape.slice() : [c], v)
    );
  });
}

const isPerChannel = (t: tf.Tensor | undefined, c: number) =>
  t === undefined || (t.dtype === "float32" && t.rank === 1 && t.shape[0] === c);

/**
 * Registers the fused gradient kernels and routes tfjs's gradients through them.
 *
 * @example
 * ```ts
 * installNativeGradients(lib); // then tf.grad(...) on "native" uses one-pass gradients
 * ```
 */
export function installNativeGradients(lib: Libpetal): void {
  registerKernels(lib);

  override("Relu", (dy, [x]) =>
    x.dtype !== "float32" ? null : {
      x: () => tf.engine().runKernel(ACT_GRAD, { x, dy }, { op: ACT.relu, alpha: 0 }) as tf.Tensor,
    });
  override("LeakyRelu", (dy, [x], attrs) =>
    x.dtype !== "float32" ? null : {
      x: () =>
        tf.engine().runKernel(ACT_GRAD, { x, dy }, {
          op: ACT.leakyRelu,
          alpha: attrs.alpha as number,
        }) as tf.Tensor,
    });

  // Computed eagerly (one pass gives all five); tfjs's version also runs eagerly.
  override("FusedBatchNorm", (dy, [x, mean, variance, scale], attrs) => {
    const c = x.shape[x.rank - 1];
    if (x.dtype !== "float32" || x.rank < 2 || !isPerChannel(mean, c)) return null;
    if (!isPerChannel(variance, c) || !isPerChannel(scale ?? undefined, c)) return null;
    const inputs: tf.NamedTensorMap = { x, dy, mean, variance };
    if (scale) inputs.scale = scale;
    const [dx, dMean, dVar, dScale, dOffset] = tf.engine().runKernel(BN_GRAD, inputs, {
      varianceEpsilon: attrs.varianceEpsilon as number,
    }) as tf.Tensor[];
    return {
      x: () => dx,
      mean: () => dMean,
      variance: () => dVar,
      scale: () => dScale,
      offset: () => dOffset,
    };
  });

  // d mean / dx = dy / N broadcast back: one Tile pass instead of ones + mul + div.
  const broadcastBack = (dy: tf.Tensor, x: tf.Tensor, axisAttr: unknown, divideBy: boolean) => {
    const axes = tf.util.parseAxisParam(axisAttr as number | number[], x.shape);
    const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const reps = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    const scaled = divideBy ? tf.div(dy, n) : dy;
    return tf.tile(tf.reshape(scaled, expanded), reps);
  };
  override(
    "Mean",
    (dy, [x], attrs) =>
      x.dtype !== "float32" ? null : { x: () => broadcastBack(dy, x, attrs.axis, true) },
  );
  override(
    "Sum",
    (dy, [x], attrs) =>
      x.dtype !== "float32" ? null : { x: () => broadcastBack(dy, x, attrs.axis, false) },
  );
}
