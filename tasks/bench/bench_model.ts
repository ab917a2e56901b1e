/**
 * The bench model of ../shared/peer/README.md, op for op as torch_gan_step.py builds it
 * (GAN-INT-CLS DCGAN, NHWC): one training step (D then G, Adam 2e-4, β 0.5/0.999, BN in
 * training mode) and G inference. `deno task bench` times it on every backend against
 * the PyTorch peer, so it is plain tfjs ops and nothing petal-specific.
 *
 * Its convolutions are stages/layers.ts's: on backends without Conv2DBackpropFilter
 * (wasm), and on cpu where that kernel is pathologically slow, their gradients go through
 * conv2d inside tf.customGrad (../shared/notes/tfjs-on-deno.md); on native and tensorflow
 * they are the plain tfjs ops.
 *
 * @example
 * ```ts
 * import { benchModel } from "./bench_model.ts";
 * const m = benchModel(64);
 * m.step();            // one D + G training step
 * m.infer(819, 64);    // 819 images in chunks of 64
 * m.dispose();
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { conv2d, conv2dTranspose } from "../../stages/layers.ts";

const ZD = 100, ED = 1024, TD = 128, K = 4;
const G_CH = [512, 256, 128, 64];
const D_CH = [3, 64, 128, 256, 512];

/** A built bench model: call step() / infer() on the current tfjs backend. */
export interface BenchModel {
  /** One training step of the peer's recipe; returns [lossD, lossG]. */
  step(): [number, number];
  /** Generates `count` images in chunks of `chunk`; returns how many. */
  infer(count: number, chunk: number): number;
  /** step() with asynchronous reads (webgpu cannot read synchronously in Deno). */
  stepAsync(): Promise<[number, number]>;
  /** infer() with asynchronous reads. */
  inferAsync(count: number, chunk: number): Promise<number>;
  dispose(): void;
}

type Vars = Record<string, tf.Variable>;
type T4 = tf.Tensor4D;
/** conv2d with its gradients routed through conv2d where wasm/cpu need it (layers.ts). */
const conv = (x: T4, w: T4, stride: number, pad: "same" | "valid"): T4 => conv2d(x, w, stride, pad);

/** Transposed conv k4 s2 'same' (PyTorch k4 s2 p1): [n,h,w,ci] -> [n,2h,2w,co]. */
const convT = (x: T4, w: T4): T4 => conv2dTranspose(x, w, 2);

/** BatchNorm in training mode: batch statistics over N, H, W (rank-1 moments). */
function bn(x: tf.Tensor, v: Vars, name: string): tf.Tensor {
  const axes = x.shape.map((_, i) => i).slice(0, -1);
  const { mean, variance } = tf.moments(x, axes, false);
  return tf.batchNorm(x, mean, variance, v[`${name}.beta`], v[`${name}.gamma`], 1e-5);
}

const lrelu = (x: tf.Tensor) => tf.leakyRelu(x, 0.2);

function initVars(prefix: string, shapes: Record<string, number[]>, seed: number): Vars {
  const v: Vars = {};
  let i = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const init = name.endsWith(".gamma")
      ? tf.ones(shape)
      : name.endsWith(".beta") || name.endsWith(".b")
      ? tf.zeros(shape)
      : tf.randomNormal(shape, 0, 0.02, "float32", seed + i++);
    v[name] = tf.variable(init, true, `${prefix}/${name}`);
    init.dispose(); // the variable holds its own reference
  }
  return v;
}

let instances = 0;

function initG(seed: number): Vars {
  const s: Record<string, number[]> = {
    "proj.w": [ED, TD],
    "proj.b": [TD],
    "fc.w": [ZD + TD, 16 * G_CH[0]],
    "bn0.gamma": [G_CH[0]],
    "bn0.beta": [G_CH[0]],
  };
  for (let i = 0; i < 3; i++) {
    s[`up${i}.w`] = [K, K, G_CH[i + 1], G_CH[i]]; // tfjs convT filter: [k, k, out, in]
    s[`bn${i + 1}.gamma`] = [G_CH[i + 1]];
    s[`bn${i + 1}.beta`] = [G_CH[i + 1]];
  }
  s["out.w"] = [K, K, 3, G_CH[3]];
  s["out.b"] = [3];
  return initVars(`benchG${++instances}`, s, seed);
}

function initD(seed: number): Vars {
  const s: Record<string, number[]> = {};
  for (let i = 0; i < 4; i++) {
    s[`down${i}.w`] = [K, K, D_CH[i], D_CH[i + 1]];
    if (i > 0) {
      s[`bn${i}.gamma`] = [D_CH[i + 1]];
      s[`bn${i}.beta`] = [D_CH[i + 1]];
    }
  }
  Object.assign(s, {
    "proj.w": [ED, TD],
    "proj.b": [TD],
    "fuse.w": [1, 1, 512 + TD, 512],
    "bn5.gamma": [512],
    "bn5.beta": [512],
    "out.w": [K, K, 512, 1],
    "out.b": [1],
  });
  return initVars(`benchD${++instances}`, s, seed);
}

function generator(v: Vars, z: tf.Tensor2D, e: tf.Tensor2D): T4 {
  const t = lrelu(tf.add(tf.matMul(e, v["proj.w"]), v["proj.b"]));
  let h = tf.matMul(tf.concat([z, t], 1), v["fc.w"]).reshape([-1, 4, 4, G_CH[0]]) as T4;
  h = tf.relu(bn(h, v, "bn0")) as T4;
  for (let i = 0; i < 3; i++) h = tf.relu(bn(convT(h, v[`up${i}.w`] as T4), v, `bn${i + 1}`)) as T4;
  return tf.tanh(tf.add(convT(h, v["out.w"] as T4), v["out.b"])) as T4;
}

function discriminator(v: Vars, x: T4, e: tf.Tensor2D): tf.Tensor1D {
  let h = lrelu(conv(x, v["down0.w"] as T4, 2, "same")) as T4;
  for (let i = 1; i < 4; i++) {
    h = lrelu(bn(conv(h, v[`down${i}.w`] as T4, 2, "same"), v, `bn${i}`)) as T4;
  }
  const b = x.shape[0];
  const t = lrelu(tf.add(tf.matMul(e, v["proj.w"]), v["proj.b"])).reshape([b, 1, 1, TD]);
  h = tf.concat([h, tf.tile(t, [1, 4, 4, 1])], 3) as T4;
  h = lrelu(bn(conv(h, v["fuse.w"] as T4, 1, "valid"), v, "bn5")) as T4;
  return tf.add(conv(h, v["out.w"] as T4, 1, "valid"), v["out.b"]).reshape([b]) as tf.Tensor1D;
}

const bce = (logits: tf.Tensor, target: 0 | 1) =>
  tf.losses.sigmoidCrossEntropy(target ? tf.onesLike(logits) : tf.zerosLike(logits), logits);

/**
 * Builds G, D, both Adams and the peer's fixed random inputs on the current backend.
 *
 * @example
 * ```ts
 * const m = benchModel(64);
 * const [lossD, lossG] = m.step();
 * ```
 */
export function benchModel(batch: number, seed = 0): BenchModel {
  const g = initG(seed + 1), d = initD(seed + 100);
  const optG = tf.train.adam(2e-4, 0.5, 0.999), optD = tf.train.adam(2e-4, 0.5, 0.999);
  const real = tf.randomUniform([batch, 64, 64, 3], -1, 1, "float32", seed + 2) as T4;
  const right = tf.randomNormal([batch, ED], 0, 1, "float32", seed + 3) as tf.Tensor2D;
  const wrong = tf.randomNormal([batch, ED], 0, 1, "float32", seed + 4) as tf.Tensor2D;
  let stepNo = 0;
  /** One step, queued; the caller reads and disposes the two losses. */
  const queueStep = (): [tf.Scalar, tf.Scalar] => {
    const z = tf.randomNormal([batch, ZD], 0, 1, "float32", seed + 10 + stepNo++) as tf.Tensor2D;
    const fake = tf.tidy(() => generator(g, z, right)); // no gradient, as torch.no_grad()
    const lossD = optD.minimize(
      () =>
        tf.add(
          bce(discriminator(d, real, right), 1),
          tf.mul(
            0.5,
            tf.add(bce(discriminator(d, fake, right), 0), bce(discriminator(d, real, wrong), 0)),
          ),
        ) as tf.Scalar,
      true,
      Object.values(d),
    )!;
    const lossG = optG.minimize(
      () => bce(discriminator(d, generator(g, z, right), right), 1) as tf.Scalar,
      true,
      Object.values(g),
    )!;
    tf.dispose([z, fake]);
    return [lossD, lossG];
  };
  /** Chunk i of inference: images from fixed noise and text. */
  const images = (i: number, n: number) =>
    tf.tidy(() => {
      const z = tf.randomNormal([n, ZD], 0, 1, "float32", seed + 1000 + i) as tf.Tensor2D;
      const e = tf.randomNormal([n, ED], 0, 1, "float32", seed + 2000 + i) as tf.Tensor2D;
      return generator(g, z, e);
    });
  return {
    step() {
      const [lossD, lossG] = queueStep();
      const losses: [number, number] = [lossD.dataSync()[0], lossG.dataSync()[0]];
      tf.dispose([lossD, lossG]);
      return losses;
    },
    infer(count, chunk) {
      let done = 0;
      for (let i = 0; done < count; i++) {
        const n = Math.min(chunk, count - done);
        const out = images(i, n);
        out.dataSync(); // force the work on every backend
        out.dispose();
        done += n;
      }
      return done;
    },
    async stepAsync() {
      const [lossD, lossG] = queueStep();
      const losses: [number, number] = [(await lossD.data())[0], (await lossG.data())[0]];
      tf.dispose([lossD, lossG]);
      return losses;
    },
    async inferAsync(count, chunk) {
      let done = 0;
      for (let i = 0; done < count; i++) {
        const n = Math.min(chunk, count - done);
        const out = images(i, n);
        await out.data(); // wait for the work
        out.dispose();
        done += n;
      }
      return done;
    },
    dispose() {
      tf.dispose([real, right, wrong, ...Object.values(g), ...Object.values(d)]);
      optG.dispose();
      optD.dispose();
    },
  };
}
