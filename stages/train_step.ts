/**
 * One GAN-INT-CLS training step, as the algorithm reads: a discriminator step on
 * (real, right), (fake, right), (real, wrong), then a generator step (with conditioning
 * augmentation's KL term, with GAN-INT the loss on interpolated text, and with
 * `contrastiveWeight` a contrastive text–image loss), then the EMA of the generator. The
 * text encoder learns with the discriminator, unless the run keeps it frozen
 * (`freezeText`, after a contrastive pre-training): then the batch's sentence vectors are
 * computed once per step, with no gradient, and shared by both steps. Before samples are
 * drawn, `emaStandingStatistics` gives the EMA generator its own batch-norm statistics,
 * and `setMeanCondition` the mean condition that drawing's guidance pushes away from.
 *
 * @example
 * ```ts
 * import { createGan, trainStep } from "./train_step.ts";
 * import { modelConfig } from "./config.ts";
 * import { defaultTrainConfig } from "./recipe.ts";
 * const gan = createGan(modelConfig("small", 100), defaultTrainConfig(), 1);
 * // const losses = trainStep(gan, batch, padId); // batch: see BatchTensors
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import { ADA_IMAGES, type ModelConfig, type TrainConfig } from "./config.ts";
import { contrastiveLoss, encodeText, initTextEncoder, sentenceDim } from "./embed.ts";
import { initMatcher, matchFeatures, setRivals } from "./match.ts";
import { conditioning, generate, type Guidance, guide, initGenerator } from "./generate.ts";
import { discriminateFeatures, initDiscriminator, judge } from "./discriminate.ts";
import {
  discriminatorLoss,
  generatorLoss,
  gradientPenalty,
  matchingAwarePenalty,
} from "./losses.ts";
import {
  dfDiscriminateFeatures,
  dfGenerate,
  dfJudge,
  initDfDiscriminator,
  initDfGenerator,
} from "./dfgan.ts";
import {
  type AugmentGates,
  diffAugment,
  type DiffAugmentParams,
  disposeDiffAugment,
  gateDiffAugment,
} from "./diffaugment.ts";
import { powerIteration } from "./spectral.ts";
import {
  applyUpdates,
  type Context,
  named,
  newContext,
  type Params,
  type Prefix,
  standingStatistics,
  trainable,
  variable,
} from "./layers.ts";

/** The models and optimisers of a run: φ, G, D, the EMA of G, and Adam for D and G. */
export interface Gan {
  readonly model: ModelConfig;
  readonly train: TrainConfig;
  readonly text: Params;
  readonly g: Params;
  readonly d: Params;
  /** Exponential moving average of g: what samples and inference use. */
  readonly ema: Params;
  /**
   * The image side of the text pre-training (stages/match.ts), kept frozen after it: the
   * contrastive G loss (`contrastiveWeight`) and inference's best-of-K pick use it.
   * Absent without a pre-training (and in older checkpoints).
   */
  readonly match?: Params;
  readonly optD: tf.Optimizer;
  readonly optG: tf.Optimizer;
}

/**
 * Fresh models and optimisers; `seed` fixes every initial weight. `prefix` names the
 * variables (`PREFIXtext/…`, `PREFIXg/…`, …; see `Prefix`): without it tfjs names them.
 */
export function createGan(
  model: ModelConfig,
  train: TrainConfig,
  seed: number,
  prefix?: Prefix,
): Gan {
  const part = (name: string): Prefix => named(prefix, `${name}/`);
  const textDim = sentenceDim(model);
  const text = initTextEncoder(model, seed, part("text"));
  const df = model.arch === "dfgan";
  const g = df
    ? initDfGenerator(model, textDim, seed + 100, part("g"))
    : initGenerator(model, textDim, seed + 100, part("g"));
  const d = df ? initDfDiscriminator(model, textDim, seed + 200, part("d")) : initDiscriminator(
    model,
    textDim,
    seed + 200,
    train.dBatchNorm && !train.spectralNorm && train.loss !== "wgan-gp",
    part("d"),
    train.spectralNorm,
  );
  const ema: Params = Object.fromEntries(
    Object.entries(g).map(([k, v]) => [k, variable(named(part("ema"), k), v.clone(), false)]),
  );
  // Adaptive augmentation's probability starts at 0 and lives with D (and its checkpoint).
  if (train.adaTarget) d[AUGMENT_P] = variable(named(part("d"), AUGMENT_P), tf.zeros([1]), false);
  const match = train.contrastiveWeight ? initMatcher(textDim, seed, part("match")) : undefined;
  return {
    model,
    train,
    text,
    g,
    d,
    ema,
    ...(match ? { match } : {}),
    optD: tf.train.adam(train.lrD, train.beta1, train.beta2),
    optG: tf.train.adam(train.lrG, train.beta1, train.beta2),
  };
}

/**
 * The GAN with an image–text matcher to pre-train (a fresh one from `seed`, as
 * {@link createGan} would make it; the GAN itself when it has one).
 */
export const withMatcher = (gan: Gan, seed: number, prefix?: Prefix): Gan =>
  gan.match
    ? gan
    : { ...gan, match: initMatcher(sentenceDim(gan.model), seed, named(prefix, "match/")) };

/** One batch, as tensors. Noise is drawn by the caller (randomness lives in pipeline/). */
export interface BatchTensors {
  /** [B, 64, 64, 3] in [-1, 1], augmented. */
  readonly real: tf.Tensor4D;
  /** [B, T] token ids: each image's caption, and a caption of another image. */
  readonly right: tf.Tensor2D;
  readonly wrong: tf.Tensor2D;
  /** [B, zDim] and [B, condDim] standard normals, twice (GAN-INT uses the second pair). */
  readonly z: tf.Tensor2D;
  readonly eps: tf.Tensor2D;
  readonly zInt: tf.Tensor2D;
  readonly epsInt: tf.Tensor2D;
  /** [B] int32: the interpolation partner of each row. */
  readonly partners: tf.Tensor1D;
  /** [B, 1, 1, 1] uniform, for WGAN-GP. */
  readonly alpha: tf.Tensor4D;
  /** DiffAugment's draws for the real and the fake images (with `diffAugment` only). */
  readonly augReal?: DiffAugmentParams;
  readonly augFake?: DiffAugmentParams;
  /** Which operations apply to which image, against p (with `adaTarget` only). */
  readonly gateReal?: AugmentGates;
  readonly gateFake?: AugmentGates;
}

/** Where D keeps adaptive augmentation's probability p ([1]; `d/augment.p` in checkpoints). */
export const AUGMENT_P = "augment.p";

/**
 * An augmentation `a` as this step applies it: gated by the run's p with adaptive
 * augmentation ({@link gateDiffAugment}, a new one the step frees), else `a` as drawn.
 */
function stepAugmentation(
  gan: Gan,
  a?: DiffAugmentParams,
  u?: AugmentGates,
): DiffAugmentParams | undefined {
  const p = gan.d[AUGMENT_P];
  return p && a && u ? gateDiffAugment(a, u, p) : a;
}

/** Frees a gated augmentation (`applied`), never the batch's own (`drawn`). */
const releaseAugmentation = (applied?: DiffAugmentParams, drawn?: DiffAugmentParams) =>
  applied && applied !== drawn && disposeDiffAugment(applied);

/**
 * ADA's update after a D step: p moves by the batch over {@link ADA_IMAGES}, up when D
 * calls more of the real images real than the target asks (E[sign D(real, right)] above
 * it), else down; kept in [0, 1]. On the device: no read-back.
 */
function adaptAugmentation(gan: Gan, realLogits: tf.Tensor1D): void {
  const p = gan.d[AUGMENT_P];
  if (!p) return;
  tf.tidy(() => {
    const B = realLogits.shape[0];
    // E[sign x] = 2·P(x > 0) − 1; the move's sign is 2·step(r − target) − 1.
    const r = tf.sub(tf.mul(2, tf.mean(tf.step(realLogits))), 1);
    const up = tf.sub(tf.mul(2, tf.step(tf.sub(r, gan.train.adaTarget!))), 1);
    p.assign(tf.clipByValue(tf.add(p, tf.mul(B / ADA_IMAGES, up)), 0, 1));
  });
}

/**
 * G(z, e) of the run's architecture: images and the CA KL term (0 for DF-GAN); its
 * condition ({@link generatorCondition}) under `guidance` where given (drawing only).
 */
export function runGenerator(
  gan: Gan,
  p: Params,
  z: tf.Tensor2D,
  e: tf.Tensor2D,
  eps: tf.Tensor2D,
  ctx: Context,
  guidance?: Guidance,
): { images: tf.Tensor4D; kl: tf.Scalar } {
  if (gan.model.arch !== "dfgan") return generate(p, gan.model, z, e, eps, ctx, guidance);
  return { images: dfGenerate(p, gan.model, z, guide(e, guidance)), kl: tf.scalar(0) };
}

/**
 * What G of the run's architecture is conditioned on at ε = 0, per caption [B, width]:
 * conditioning augmentation's μ (dcgan), the sentence vector itself (DF-GAN).
 */
export const generatorCondition = (gan: Gan, p: Params, e: tf.Tensor2D): tf.Tensor2D =>
  gan.model.arch === "dfgan" ? e : conditioning(p, e).mu;

/** D's text-free image trunk of the run's architecture: images → [B, 4, 4, C]. */
const discriminatorFeatures = (gan: Gan, x: tf.Tensor4D, ctx: Context): tf.Tensor4D =>
  gan.model.arch === "dfgan"
    ? dfDiscriminateFeatures(gan.d, gan.model, x)
    : discriminateFeatures(gan.d, gan.model, x, ctx);

/** D's text head of the run's architecture: trunk features and sentence vectors → logits. */
const judgeFeatures = (gan: Gan, h: tf.Tensor4D, e: tf.Tensor2D, ctx: Context): tf.Tensor1D =>
  gan.model.arch === "dfgan" ? dfJudge(gan.d, h, e) : judge(gan.d, gan.model, h, e, ctx);

/** D(x, e) of the run's architecture, after DiffAugment when the batch carries `aug`. */
export function runDiscriminator(
  gan: Gan,
  x: tf.Tensor4D,
  e: tf.Tensor2D,
  ctx: Context,
  aug?: DiffAugmentParams,
): tf.Tensor1D {
  const seen = aug ? diffAugment(x, aug) : x;
  return judgeFeatures(gan, discriminatorFeatures(gan, seen, ctx), e, ctx);
}

/** Frees a batch's tensors. */
export const disposeBatch = (b: BatchTensors): void => tf.dispose(Object.values(b));

/**
 * The losses of one step: D, G, and the conditioning-augmentation KL term; with adaptive
 * augmentation, its probability p after the step.
 */
export interface StepLosses {
  readonly d: number;
  readonly g: number;
  readonly kl: number;
  readonly augment?: number;
}

/**
 * How a step combines its gradients with other replicas' (data parallelism,
 * pipeline/replicas.ts): the gradients of `vars`, by variable name, in; the ones to apply
 * out. Every replica must get the same values back, so their weights stay equal.
 */
export type GradientReduce = (
  grads: tf.NamedTensorMap,
  vars: readonly tf.Variable[],
) => tf.NamedTensorMap;

/** How a step runs beyond its batch: alone (the default), or as one replica of several. */
export interface StepOptions {
  /** Combines the gradients before they are applied (absent: this step's own). */
  readonly reduce?: GradientReduce;
  /** Update the EMA of G (default true; a replica that never samples skips it). */
  readonly ema?: boolean;
}

/**
 * `optimizer.minimize(f, true, vars)`, with the gradients passed through `reduce` (when
 * given) before Adam applies them. Returns the loss.
 */
function optimize(
  optimizer: tf.Optimizer,
  f: () => tf.Scalar,
  vars: tf.Variable[],
  reduce?: GradientReduce,
): tf.Scalar {
  if (!reduce) return optimizer.minimize(f, true, vars)!;
  const { value, grads } = optimizer.computeGradients(f, vars);
  const shared = reduce(grads, vars);
  try {
    optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: shared[v.name] })));
  } finally {
    tf.dispose(grads);
    if (shared !== grads) tf.dispose(shared);
  }
  return value;
}

const discard = (ctx: Context) => {
  tf.dispose(ctx.updates.map(([, t]) => t));
  ctx.updates.length = 0;
};

/** Sentence vectors [B, 2H] of a batch's right and wrong captions. */
export interface TextPair {
  readonly right: tf.Tensor2D;
  readonly wrong: tf.Tensor2D;
}

/** Both captions of the batch through φ in one pass (2B rows), for a frozen encoder. */
export function encodeBatchText(gan: Gan, b: BatchTensors, padId: number): TextPair {
  return tf.tidy(() => {
    const B = b.right.shape[0];
    const both = encodeText(gan.text, tf.concat([b.right, b.wrong]) as tf.Tensor2D, padId);
    return { right: both.slice([0, 0], [B, -1]), wrong: both.slice([B, 0], [B, -1]) };
  });
}

/**
 * D step: returns the D loss. Updates D, and the text encoder unless `fixed` gives the
 * sentence vectors of a frozen one.
 */
export function discriminatorStep(
  gan: Gan,
  b: BatchTensors,
  padId: number,
  fixed?: TextPair,
  reduce?: GradientReduce,
): tf.Scalar {
  const { train } = gan;
  const fake = tf.tidy(() => {
    const ctx = newContext(true);
    // Outside minimize(): nothing here is taped, so no gradient reaches G or the encoder.
    const e = fixed?.right ?? encodeText(gan.text, b.right, padId);
    const images = runGenerator(gan, gan.g, b.z, e, b.eps, ctx).images;
    discard(ctx);
    return images;
  });
  // Spectral norm's σ estimates move one power iteration, untaped.
  if (train.spectralNorm) powerIteration(gan.d);
  const vars = fixed ? trainable(gan.d) : [...trainable(gan.d), ...trainable(gan.text)];
  const aug = {
    real: stepAugmentation(gan, b.augReal, b.gateReal),
    fake: stepAugmentation(gan, b.augFake, b.gateFake),
  };
  let realRight: tf.Tensor1D | undefined;
  const loss = optimize(
    gan.optD,
    () => {
      const ctx = newContext(true);
      const eRight = fixed?.right ?? encodeText(gan.text, b.right, padId);
      const eWrong = fixed?.wrong ?? encodeText(gan.text, b.wrong, padId);
      const critic = (x: tf.Tensor4D, e: tf.Tensor2D) => runDiscriminator(gan, x, e, ctx);
      // DiffAugment: the real images once (for both texts), the fakes with their own draw.
      const real = aug.real ? diffAugment(b.real, aug.real) : b.real;
      const fakeSeen = aug.fake ? diffAugment(fake, aug.fake) : fake;
      const penalty = train.loss === "wgan-gp"
        ? tf.mul(
          train.gpWeight,
          gradientPenalty((x) => critic(x, eRight), real, fakeSeen, b.alpha),
        ) as tf.Scalar
        : undefined;
      // The real images' trunk once for both captions (the text joins after it): the
      // same values as two D passes, at two thirds of the D step's image work.
      const realFeatures = discriminatorFeatures(gan, real, ctx);
      const realLogits = judgeFeatures(gan, realFeatures, eRight, ctx);
      if (train.adaTarget) realRight = tf.keep(realLogits);
      const loss = discriminatorLoss(
        train.loss,
        realLogits,
        critic(fakeSeen, eRight),
        judgeFeatures(gan, realFeatures, eWrong, ctx),
        penalty,
        1 - (train.labelSmooth ?? 0),
      );
      if (!train.maGpWeight) return loss;
      const ma = matchingAwarePenalty(critic, real, eRight, train.maGpWeight, train.maGpPower ?? 6);
      return tf.add(loss, ma) as tf.Scalar;
    },
    vars,
    reduce,
  );
  fake.dispose();
  if (realRight) adaptAugmentation(gan, realRight);
  tf.dispose(realRight);
  releaseAugmentation(aug.real, b.augReal);
  releaseAugmentation(aug.fake, b.augFake);
  return loss;
}

/** G step: returns [total G loss, KL]. Updates G and its batch-norm running statistics. */
export function generatorStep(
  gan: Gan,
  b: BatchTensors,
  padId: number,
  fixed?: TextPair,
  reduce?: GradientReduce,
): [tf.Scalar, tf.Scalar] {
  const { train } = gan;
  // Computed before minimize(): the G loss does not train the text encoder.
  const eRight = fixed ? fixed.right.clone() : encodeText(gan.text, b.right, padId);
  const augFake = stepAugmentation(gan, b.augFake, b.gateFake);
  const ctx = newContext(true);
  let kl: tf.Scalar | undefined;
  const loss = optimize(
    gan.optG,
    () => {
      const dCtx = newContext(true);
      const critic = (x: tf.Tensor4D, e: tf.Tensor2D) => runDiscriminator(gan, x, e, dCtx, augFake);
      const out = runGenerator(gan, gan.g, b.z, eRight, b.eps, ctx);
      kl = tf.keep(out.kl);
      let total = tf.add(
        generatorLoss(train.loss, critic(out.images, eRight)),
        tf.mul(train.klWeight, out.kl),
      );
      if (train.contrastiveWeight && gan.match) {
        // Each fake should be nearest its own caption among the batch's, for the frozen
        // text–image model of the pre-training (its weights are not in the var list).
        const matched = contrastiveLoss(matchFeatures(gan.match, out.images), eRight);
        total = tf.add(total, tf.mul(train.contrastiveWeight, matched));
      }
      if (train.interpolate) {
        // GAN-INT: text between two captions still has to give a convincing image.
        const beta = train.interpBeta;
        const eInt = tf.add(
          tf.mul(beta, eRight),
          tf.mul(1 - beta, tf.gather(eRight, b.partners)),
        ) as tf.Tensor2D;
        const ctxInt = newContext(true);
        const imgs = runGenerator(gan, gan.g, b.zInt, eInt, b.epsInt, ctxInt).images;
        discard(ctxInt);
        total = tf.add(total, generatorLoss(train.loss, critic(imgs, eInt)));
      }
      return total as tf.Scalar;
    },
    trainable(gan.g),
    reduce,
  );
  applyUpdates(ctx);
  eRight.dispose();
  releaseAugmentation(augFake, b.augFake);
  return [loss, kl!];
}

/**
 * The learning-rate factor when `done` (0–1) of the budget is spent and its last `decay`
 * fraction decays linearly to 0: 1 before that, then (1 − done) / decay.
 *
 * @example
 * ```ts
 * decayScale(0.5, 0.2); // 1
 * decayScale(0.9, 0.2); // 0.5
 * ```
 */
export const decayScale = (done: number, decay: number): number =>
  decay > 0 ? Math.min(1, Math.max(0, (1 - done) / decay)) : 1;

/** Sets both optimisers' rates to the run's lrG and lrD times `scale`. */
export function scaleLearningRates(gan: Gan, scale: number): void {
  const rate = (o: tf.Optimizer, lr: number) =>
    (o as unknown as { learningRate: number }).learningRate = lr * scale;
  rate(gan.optD, gan.train.lrD);
  rate(gan.optG, gan.train.lrG);
}

/**
 * ema ← d·ema + (1−d)·g, with d warmed up as min(decay, (1+t)/(10+t)) so that a short
 * run's EMA is not still the initial weights.
 */
export function updateEma(gan: Gan, step: number): void {
  const decay = Math.min(gan.train.emaDecay, (1 + step) / (10 + step));
  tf.tidy(() => {
    for (const [k, v] of Object.entries(gan.g)) {
      gan.ema[k].assign(tf.add(tf.mul(gan.ema[k], decay), tf.mul(v, 1 - decay)));
    }
  });
}

/** One batch of a standing-statistics pass: captions [B, T] and noise [B, zDim]. */
export interface StandingDraw {
  readonly ids: tf.Tensor2D;
  readonly z: tf.Tensor2D;
}

/**
 * {@link standingStatistics} of the EMA generator: its batch-norm running mean and
 * variance become the average batch moments of its own activations over `draws`, at the
 * mean condition (eps = 0) as inference runs it. The EMA of G's running averages
 * belongs to G's weights of many steps ago, not to the averaged weights; these fit them.
 * Only the statistics change. Returns how many variables were set (0: G has no batch
 * norm, as DF-GAN's).
 */
export function emaStandingStatistics(
  gan: Gan,
  draws: readonly StandingDraw[],
  padId: number,
): number {
  return standingStatistics(draws.map(({ ids, z }) => (ctx: Context) => {
    const eps = tf.zeros([z.shape[0], gan.model.condDim]) as tf.Tensor2D;
    return runGenerator(gan, gan.ema, z, encodeText(gan.text, ids, padId), eps, ctx);
  }));
}

/**
 * The whole step (with `options`, one replica's share of it). Returns once the work is queued, with the read-back of its three losses
 * (one [3] tensor, one transfer) started: on a GPU the caller can queue the next step
 * before awaiting this one, so the device never idles while the losses come back.
 */
export function trainStep(
  gan: Gan,
  b: BatchTensors,
  padId: number,
  step: number,
  { reduce, ema = true }: StepOptions = {},
): Promise<StepLosses> {
  const fixed = gan.train.freezeText ? encodeBatchText(gan, b, padId) : undefined;
  const lossD = discriminatorStep(gan, b, padId, fixed, reduce);
  const [lossG, kl] = generatorStep(gan, b, padId, fixed, reduce);
  if (fixed) tf.dispose([fixed.right, fixed.wrong]);
  if (ema) updateEma(gan, step);
  const p = gan.d[AUGMENT_P];
  // One [3] tensor, or [4] with p: one read-back either way, no extra op without --ada.
  const all = p
    ? tf.tidy(() => tf.concat([tf.stack([lossD, lossG, kl]), p]))
    : tf.stack([lossD, lossG, kl]);
  tf.dispose([lossD, lossG, kl]);
  return all.data().then((v) => {
    all.dispose();
    return { d: v[0], g: v[1], kl: v[2], ...(p ? { augment: v[3] } : {}) };
  }, (e) => {
    all.dispose();
    throw e;
  });
}

/** Sentence vectors for captions, for inference (no gradient, eval mode). */
export const embedCaptions = (gan: Gan, ids: tf.Tensor2D, padId: number): tf.Tensor2D =>
  encodeText(gan.text, ids, padId);

/**
 * Images from the EMA generator at the mean condition (eps = 0), eval-mode batch norm,
 * with guidance `scale` (1: none; else the GAN must keep its {@link meanCondition}).
 */
export function sample(gan: Gan, z: tf.Tensor2D, text: tf.Tensor2D, scale = 1): tf.Tensor4D {
  const center = meanCondition(gan);
  if (scale !== 1 && !center) {
    throw new Error(`guidance ${scale} needs the generator's mean condition, which it lacks`);
  }
  return tf.tidy(() => {
    const eps = tf.zeros([z.shape[0], gan.model.condDim]) as tf.Tensor2D;
    const guidance = scale === 1 ? undefined : { center: center!, scale };
    return runGenerator(gan, gan.ema, z, text, eps, newContext(false), guidance).images;
  });
}

/** Where the EMA generator keeps its mean condition (`ema/cond.center` in checkpoints). */
export const MEAN_CONDITION = "cond.center";

/**
 * The EMA generator's mean condition [width] ({@link setMeanCondition}); undefined before
 * the first one is set, and in checkpoints written before petal kept it.
 */
export const meanCondition = (gan: Gan): tf.Variable | undefined => gan.ema[MEAN_CONDITION];

/**
 * `f` of each batch, each in its own `tf.tidy`: only the results outlive a batch. One tidy
 * around all of them kept every batch's intermediates at once (a GRU's per-step states:
 * 2.6 GiB for 1024 captions through reed's encoder, where one batch of 64 needs 0.15).
 */
function eachBatch<T extends tf.Tensor>(
  batches: readonly tf.Tensor2D[],
  f: (ids: tf.Tensor2D) => T,
): T[] {
  return batches.map((ids) => tf.tidy(() => f(ids)));
}

/**
 * Sets the EMA generator's mean condition: {@link generatorCondition} averaged over the
 * captions of `batches` (token ids [B, T] each), which should be training captions. The
 * variable is made the first time (untrainable) and assigned after that.
 */
export function setMeanCondition(gan: Gan, batches: readonly tf.Tensor2D[], padId: number): void {
  const sums = eachBatch(
    batches,
    (ids) => tf.sum(generatorCondition(gan, gan.ema, encodeText(gan.text, ids, padId)), 0),
  );
  const count = batches.reduce((n, ids) => n + ids.shape[0], 0);
  const mean = tf.tidy(() => tf.div(tf.addN(sums), count));
  tf.dispose(sums);
  const known = meanCondition(gan);
  if (!known) gan.ema[MEAN_CONDITION] = variable(undefined, mean, false);
  else {
    known.assign(mean);
    mean.dispose();
  }
}

/**
 * Keeps the sentence vectors of the captions of `batches` (token ids [B, T] each), which
 * should be training captions, as the matcher's rivals (stages/match.ts `setRivals`): a
 * pick then asks how surely an image is its own caption's rather than theirs. Nothing
 * for a GAN without a matcher.
 */
export function setCaptionRivals(gan: Gan, batches: readonly tf.Tensor2D[], padId: number): void {
  if (!gan.match) return;
  const parts = eachBatch(batches, (ids) => encodeText(gan.text, ids, padId));
  const sentences = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  try {
    setRivals(gan.match, sentences);
  } finally {
    sentences.dispose();
  }
}

/** Every variable of the GAN by a stable name (for checkpoints): "text/…", "g/…", … */
export function namedVariables(gan: Gan): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const part of ["text", "g", "d", "ema", "match"] as const) {
    for (const [k, v] of Object.entries(gan[part] ?? {})) out.set(`${part}/${k}`, v);
  }
  return out;
}

/** Frees every tensor the GAN holds. */
export function disposeGan(gan: Gan): void {
  for (const v of namedVariables(gan).values()) v.dispose();
  gan.optD.dispose();
  gan.optG.dispose();
}
