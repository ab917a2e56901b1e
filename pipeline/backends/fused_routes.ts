/**
 * The kernels of stages/fused.ts on every backend that has none of its own, and their
 * gradients on every backend. Stages call them as kernels and never ask which backend runs
 * them: native implements them in libpetal (pipeline/backends/native/fused.ts); here cpu,
 * wasm, webgpu and tensorflow (tfjs-node) get the same computation as the tf ops it stands
 * for (stages/layers.ts: `batchNormActOps`, `biasActOps`, `upsampleNearestOps`), run
 * inside one kernel.
 *
 * A gradient runs the backend's gradient kernel where it has one (native) and the backward
 * pass is not itself on a tape; otherwise the tf-op gradients of stages/fused.ts, which a
 * gradient penalty can differentiate again.
 *
 * @example
 * ```ts
 * import { installFusedRoutes } from "./fused_routes.ts";
 * installFusedRoutes(); // once; backend.ts does it when it loads
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Activation,
  ACTIVATIONS,
  AFFINE_ACT,
  affineActGradOps,
  batchNormActGradOps,
  BIAS_ACT,
  BIAS_ACT_GRAD,
  biasActGradOps,
  FUSED_COND_NORM,
  FUSED_NORM,
  FUSED_NORM_GRAD,
  type NormGrads,
  UPSAMPLE,
  UPSAMPLE_GRAD,
  upsampleGradOps,
} from "../../stages/fused.ts";
import {
  affineActOps,
  batchNormActOps,
  biasActOps,
  upsampleNearestOps,
} from "../../stages/layers.ts";
import { withTensors } from "./fast_routes.ts";

/** The backends that get the tf-op versions (native registers its own). */
export const FUSED_ROUTE_BACKENDS = ["cpu", "wasm", "webgpu", "tensorflow"] as const;

type Args = { inputs: Record<string, tf.TensorInfo>; attrs: tf.NamedAttrMap };

const activation = (code: unknown): Activation => {
  const name = (Object.keys(ACTIVATIONS) as Activation[]).find((k) => ACTIVATIONS[k] === code);
  if (!name) throw new Error(`fused kernel: unknown activation code ${code}`);
  return name;
};

const normKernel = (modulated: boolean) => ({ inputs, attrs }: Args) => {
  const names = modulated ? ["x", "gamma", "beta", "scale", "shift"] : ["x", "gamma", "beta"];
  return withTensors(
    names.map((n) => inputs[n]),
    ([x, gamma, beta, scale, shift]) =>
      tf.tidy(() => {
        const mod = modulated
          ? { scale: scale as tf.Tensor2D, shift: shift as tf.Tensor2D }
          : undefined;
        const r = batchNormActOps(
          x,
          gamma,
          beta,
          activation(attrs.act),
          attrs.epsilon as number,
          mod,
        );
        return [r.y, r.mean, r.variance];
      }),
  );
};

const biasKernel = ({ inputs, attrs }: Args) =>
  withTensors(
    [inputs.x, inputs.bias],
    ([x, bias]) => tf.tidy(() => biasActOps(x, bias, activation(attrs.act))),
  );

const affineKernel = ({ inputs, attrs }: Args) =>
  withTensors(
    [inputs.x, inputs.a, inputs.b],
    ([x, a, b]) => tf.tidy(() => affineActOps(x, a, b, activation(attrs.act))),
  );

const upsampleKernel = ({ inputs }: Args) =>
  withTensors([inputs.x], ([x]) => tf.tidy(() => upsampleNearestOps(x as tf.Tensor4D)));

/** True when the backward pass may use the active backend's gradient kernel `name`. */
const gradKernel = (name: string) =>
  !tf.engine().isTapeOn() && tf.getKernel(name, tf.getBackend()) !== undefined;

/** The gradient of one of the two batch-norm kernels (`modulated`: the conditional one). */
function normGradConfig(kernelName: string, modulated: boolean): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: modulated ? ["x", "gamma", "beta", "scale"] : ["x", "gamma", "beta"],
    outputsToSave: [true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, gamma, beta] = saved;
      const scale = modulated ? saved[3] : undefined;
      const [y, mean, variance] = saved.slice(modulated ? 4 : 3);
      let grads: NormGrads;
      if (gradKernel(FUSED_NORM_GRAD)) {
        const inputs: tf.NamedTensorMap = { x, y, dy, mean, variance, gamma, beta };
        if (scale) inputs.scale = scale;
        const [dx, dgamma, dbeta, dscale, dshift] = tf.engine().runKernel(
          FUSED_NORM_GRAD,
          inputs,
          attrs,
        ) as tf.Tensor[];
        grads = { x: dx, gamma: dgamma, beta: dbeta, scale: dscale, shift: dshift };
      } else {
        grads = batchNormActGradOps(x, y, dy, gamma, beta, scale, attrs!);
      }
      const out: Record<string, () => tf.Tensor> = {
        x: () => grads.x,
        gamma: () => grads.gamma,
        beta: () => grads.beta,
      };
      if (modulated) {
        out.scale = () => grads.scale!;
        out.shift = () => grads.shift!;
      }
      return out;
    },
  };
}

function registerGradients(): void {
  tf.registerGradient(normGradConfig(FUSED_NORM, false));
  tf.registerGradient(normGradConfig(FUSED_COND_NORM, true));
  tf.registerGradient({
    kernelName: BIAS_ACT,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const d = dy as tf.Tensor;
      const [dx, dbias] = gradKernel(BIAS_ACT_GRAD)
        ? tf.engine().runKernel(BIAS_ACT_GRAD, { y, dy: d }, attrs) as tf.Tensor[]
        : biasActGradOps(y, d, attrs!);
      return { x: () => dx, bias: () => dbias };
    },
  });
  tf.registerGradient({
    kernelName: AFFINE_ACT,
    inputsToSave: ["x", "a"],
    outputsToSave: [true],
    gradFunc: (dy, [x, a, y], attrs) => {
      const [dx, da, db] = affineActGradOps(x, a, y, dy as tf.Tensor, attrs!);
      return { x: () => dx, a: () => da, b: () => db };
    },
  });
  tf.registerGradient({
    kernelName: UPSAMPLE,
    gradFunc: (dy) => {
      const d = dy as tf.Tensor;
      const dx = gradKernel(UPSAMPLE_GRAD)
        ? tf.engine().runKernel(UPSAMPLE_GRAD, { dy: d }) as tf.Tensor
        : upsampleGradOps(d);
      return { x: () => dx };
    },
  });
}

/**
 * Registers the tf-op kernels on `backends` (those without them; idempotent) and the
 * gradients. Kernels are registered per backend name, so this may run before a backend
 * is initialised.
 *
 * @example
 * ```ts
 * installFusedRoutes(); // cpu, wasm, webgpu, tensorflow
 * ```
 */
export function installFusedRoutes(
  backends: readonly string[] = FUSED_ROUTE_BACKENDS,
): void {
  const kernels: Array<[string, (a: Args) => tf.Tensor | tf.Tensor[]]> = [
    [FUSED_NORM, normKernel(false)],
    [FUSED_COND_NORM, normKernel(true)],
    [BIAS_ACT, biasKernel],
    [AFFINE_ACT, affineKernel],
    [UPSAMPLE, upsampleKernel],
  ];
  for (const backendName of backends) {
    for (const [kernelName, body] of kernels) {
      if (tf.getKernel(kernelName, backendName)) continue;
      tf.registerKernel({
        kernelName,
        backendName,
        kernelFunc: body as unknown as tf.KernelFunc,
      });
    }
  }
  if (!tf.getGradient(FUSED_NORM)) registerGradients();
}
