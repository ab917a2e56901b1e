/**
 * The shapes of the models and the types of the training settings. Their values, every
 * default included, are the recipe's (stages/recipe.ts). `small` trains a recognisable
 * result on the synthetic set in minutes on 2 cores; `reed` is the GAN-INT-CLS DCGAN of
 * Reed et al. 2016 (the bench model of ../shared/peer/README.md).
 *
 * @example
 * ```ts
 * import { modelConfig } from "./config.ts";
 * const cfg = modelConfig("small", 5175); // vocabulary of 5175 ids
 * ```
 */

export type LossKind = "bce" | "hinge" | "wgan-gp";
/** Every {@link LossKind}. */
export const LOSS_KINDS: readonly LossKind[] = ["bce", "hinge", "wgan-gp"];
/** The model sizes: `small` (trains in minutes) and `reed` (Reed et al. 2016). */
export const SIZES = ["small", "medium", "reed"] as const;
/** One of {@link SIZES}. */
export type SizeName = typeof SIZES[number];
/**
 * The architecture of G and D: `dcgan` (GAN-INT-CLS: transposed convs, conditioning
 * augmentation) or `dfgan` (Tao et al. 2022: residual up-blocks with nearest up-sampling
 * and 3×3 convs, deep text fusion; residual D with a one-way output; stages/dfgan.ts).
 */
export const ARCHS = ["dcgan", "dfgan"] as const;
/** One of {@link ARCHS}. */
export type ArchName = typeof ARCHS[number];
/**
 * How the `dcgan` generator doubles its resolution: a stride-2 4×4 transposed conv
 * (GAN-INT-CLS), or nearest ×2 up-sampling then a 3×3 conv (no checkerboard texture;
 * 2.25× the multiply-adds).
 */
export const UPSAMPLES = ["transposed", "nearest"] as const;
/** One of {@link UPSAMPLES}. */
export type Upsample = typeof UPSAMPLES[number];

/** The architecture: widths, depths and dimensions of φ, G and D. */
export interface ModelConfig {
  readonly size: SizeName;
  /** G and D architecture; absent in older checkpoints and for `dcgan` (the default). */
  readonly arch?: ArchName;
  /** The `dcgan` generator's up-sampling; absent (older checkpoints): `transposed`. */
  readonly upsample?: Upsample;
  /**
   * Width of the `dcgan` generator's extra 3×3 conv at full resolution (conditional batch
   * norm, ReLU), between its last up-sampling and its RGB conv, as DF-GAN's last block
   * works at 64×64. Absent or 0 (older checkpoints): none, the last up-sampling's conv
   * writes RGB itself.
   */
  readonly gTop?: number;
  readonly imageSize: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  /** Word embedding width. */
  readonly wordDim: number;
  /** GRU hidden width per direction; the sentence vector is 2× this (bidirectional). */
  readonly hiddenDim: number;
  readonly zDim: number;
  /** Conditioning-augmentation output width (c in G(z, c)). */
  readonly condDim: number;
  /** Generator channels from 4×4 up, one up-sampling per entry (64 = 4·2^4). */
  readonly gChannels: readonly number[];
  /** Discriminator channels from 32×32 down. */
  readonly dChannels: readonly number[];
  /** Width of the text projection the discriminator tiles over its 4×4 map. */
  readonly dTextDim: number;
}

type Preset = Omit<ModelConfig, "vocabSize" | "size">;

const SMALL: Preset = {
  imageSize: 64,
  seqLen: 20,
  wordDim: 64,
  hiddenDim: 64,
  zDim: 64,
  condDim: 64,
  gChannels: [128, 64, 32, 16],
  dChannels: [16, 32, 64, 128],
  dTextDim: 64,
};

const PRESETS: Record<SizeName, Preset> = {
  small: SMALL,
  // Twice small's widths in G and D; the text encoder stays small's.
  medium: { ...SMALL, gChannels: [256, 128, 64, 32], dChannels: [32, 64, 128, 256] },
  reed: {
    imageSize: 64,
    seqLen: 20,
    wordDim: 300,
    hiddenDim: 512,
    zDim: 100,
    condDim: 128,
    gChannels: [512, 256, 128, 64],
    dChannels: [64, 128, 256, 512],
    dTextDim: 128,
  },
};

/**
 * The architecture of a size for a vocabulary.
 *
 * @example
 * ```ts
 * modelConfig("small", 5429).imageSize; // 64
 * modelConfig("small", 5429, "dfgan").arch; // "dfgan"
 * ```
 */
export const modelConfig = (
  size: SizeName,
  vocabSize: number,
  arch: ArchName = "dcgan",
  upsample: Upsample = "transposed",
  gTop = 0,
): ModelConfig => ({
  size,
  // Only a non-default arch (up-sampling, top conv) is written, so configs (and
  // checkpoints) of the DCGAN recipe stay byte-equal to those written before these fields.
  ...(arch === "dcgan" ? {} : { arch }),
  ...(upsample === "transposed" ? {} : { upsample }),
  ...(gTop === 0 ? {} : { gTop }),
  vocabSize,
  ...PRESETS[size],
});

/**
 * Images over which adaptive augmentation's probability can go from 0 to 1 (ADA used
 * 500k; a 2-core hour trains on about 400k, so petal's moves five times faster).
 */
export const ADA_IMAGES = 100_000;

/** The training settings a checkpoint keeps (a resume may change only the rates). */
export interface TrainConfig {
  readonly batchSize: number;
  readonly loss: LossKind;
  readonly lrG: number;
  readonly lrD: number;
  readonly beta1: number;
  readonly beta2: number;
  /** Weight of the conditioning-augmentation KL term in the G loss. */
  readonly klWeight: number;
  /** GAN-INT: add the G loss on interpolated text embeddings (β = interpBeta). */
  readonly interpolate: boolean;
  readonly interpBeta: number;
  /** WGAN-GP gradient-penalty weight. */
  readonly gpWeight: number;
  /**
   * Weight k of DF-GAN's matching-aware zero-centred gradient penalty on (real, right
   * text), k·mean(‖∇(x, e) D‖^p); 0 or absent (older checkpoints): off.
   */
  readonly maGpWeight?: number;
  /** Power p of that penalty (DF-GAN: 6). */
  readonly maGpPower?: number;
  /** DiffAugment (colour, translation, cutout) on real and fake images before D. */
  readonly diffAugment?: boolean;
  /**
   * Adaptive DiffAugment (ADA's heuristic, Karras et al. 2020): each operation applies to
   * an image with a probability p that starts at 0 and moves each step by the batch over
   * {@link ADA_IMAGES}, up while the share of real images D calls real, as
   * E[sign D(real, right)], is above this target and down while below. Needs
   * `diffAugment`. 0 or absent (older checkpoints): every image is augmented (p = 1).
   */
  readonly adaTarget?: number;
  /**
   * Keep the text encoder frozen during the GAN (it learns only in the contrastive
   * pre-training, `--pretrain-text`): the D loss no longer trains it, and each step
   * encodes its captions once, without gradient. Absent (older checkpoints): false.
   */
  readonly freezeText?: boolean;
  /**
   * Weight of the contrastive G loss: each fake image, through the frozen text–image
   * model of the pre-training (stages/match.ts), should pick its own caption out of the
   * batch's. 0 or absent (older checkpoints): off. Needs a pre-trained, frozen φ.
   */
  readonly contrastiveWeight?: number;
  /**
   * The last fraction of the budget (steps, epochs or minutes) over which both learning
   * rates fall linearly to 0. 0 or absent (older checkpoints): constant rates.
   */
  readonly lrDecay?: number;
  /**
   * One-sided label smoothing of the `bce` D loss (Salimans et al. 2016): D's target for
   * (real, right text) is 1 − labelSmooth; fakes and wrong texts keep 0. 0 or absent
   * (older checkpoints): off.
   */
  readonly labelSmooth?: number;
  /**
   * Data parallelism: each step's batch is cut into this many parts, one per thread (the
   * main thread and a worker per other part, the cores shared among them), their
   * gradients averaged (pipeline/replicas.ts). Batch norm's statistics are then those of a
   * part. 1 or absent (older checkpoints): one thread runs the step on the whole batch.
   */
  readonly replicas?: number;
  /** EMA decay of the generator copy used for samples and inference. */
  readonly emaDecay: number;
  /**
   * Batch norm in the discriminator. Off for WGAN-GP (the penalty is per sample) and
   * selectable otherwise.
   */
  readonly dBatchNorm: boolean;
  /**
   * Spectral normalisation of every weight of the `dcgan` discriminator
   * (stages/spectral.ts), which then has no batch norm. Absent (older checkpoints): off.
   */
  readonly spectralNorm?: boolean;
  /** Images are loaded this much larger, then randomly cropped back (and flipped). */
  readonly cropMargin: number;
  readonly seed: number;
}
