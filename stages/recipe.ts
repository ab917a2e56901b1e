/**
 * The recipe: everything that decides what a run trains, in one typed value. Its
 * presets hold every default; `deno task train`, `deno task quality`, `train()` and the
 * README's flag tables all read them from here, so a script and the command line get the
 * same petal.
 *
 * - `gan-int-cls` (the default): the DCGAN generator with conditioning augmentation,
 *   BCE (GAN-CLS), GAN-INT, batch-norm D, one learning rate (5e-4 small and medium,
 *   2e-4 reed), β₁ 0.5; the text encoder pre-trained contrastively (3000 steps), then
 *   frozen, as Reed et al.'s; nearest ×2 up-sampling and 3×3 convs in G.
 * - `dfgan`: DF-GAN's generator and one-way discriminator (stages/dfgan.ts), hinge loss
 *   with the matching-aware gradient penalty (k 2, p 6), TTUR (G 2e-4, D 8e-4),
 *   Adam β (0, 0.9), DiffAugment, no GAN-INT, no pre-training.
 *
 * @example
 * ```ts
 * import { recipe } from "./recipe.ts";
 * recipe().train.lrG; // 5e-4: the default recipe at the default size
 * recipe("dfgan").train.lrD; // 8e-4
 * recipe("gan-int-cls", { size: "reed" }).train.lrG; // 2e-4
 * ```
 */
import type { ArchName, ModelConfig, SizeName, TrainConfig, Upsample } from "./config.ts";

/** The named presets. */
export const RECIPE_NAMES = ["gan-int-cls", "dfgan"] as const;
/** One of {@link RECIPE_NAMES}. */
export type RecipeName = typeof RECIPE_NAMES[number];

/** What a run trains: a preset's name and every setting, resolved. */
export interface Recipe {
  /** The preset these settings started from. */
  readonly name: RecipeName;
  readonly size: SizeName;
  readonly arch: ArchName;
  readonly upsample: Upsample;
  /** Width of the `dcgan` G's full-resolution conv before RGB (0: none; ModelConfig.gTop). */
  readonly gTop: number;
  /**
   * Contrastive pre-training steps of the text encoder before a fresh run (0: none);
   * at most {@link PRETRAIN_MAX_EPOCHS} passes over the data.
   */
  readonly pretrainSteps: number;
  /** Image–caption pairs per step of that pre-training (each step's contrastive batch). */
  readonly pretrainBatch: number;
  readonly train: TrainConfig;
}

/** What may be set on top of a preset: any field of a {@link Recipe} but its name. */
export type RecipeOverrides =
  & Partial<Pick<Recipe, "size" | "arch" | "upsample" | "gTop" | "pretrainSteps" | "pretrainBatch">>
  & Partial<TrainConfig>;

/**
 * Passes over the data the text pre-training makes at most (a small set needs few steps).
 * Held-out retrieval still rose at 58 passes on the real data (batch 128, 3000 steps).
 */
export const PRETRAIN_MAX_EPOCHS = 60;

/**
 * The text pre-training's batch where a recipe sets none, and of every checkpoint written
 * before recipes kept it.
 */
export const PRETRAIN_BATCH = 32;

/** The budget of a run given none: this many epochs. */
export const DEFAULT_EPOCHS = 20;

/** The model size of every preset unless set. */
export const DEFAULT_SIZE: SizeName = "small";

/**
 * Adam learning rate per size, where the preset sets none: the small model takes a larger
 * step so that colour conditioning shows within a hundred steps (measured on the
 * synthetic set: red−blue margin 0.27 at step 64 with 5e-4, 0.02 with 2e-4); `reed` keeps
 * DCGAN's 2e-4.
 */
export const SIZE_LR: Readonly<Record<SizeName, number>> = {
  small: 5e-4,
  medium: 5e-4,
  reed: 2e-4,
};

/** Training settings that no preset changes unless it says so (learning rates: per size). */
const TRAIN_DEFAULTS: Omit<TrainConfig, "lrG" | "lrD"> = {
  batchSize: 32,
  loss: "bce",
  beta1: 0.5,
  beta2: 0.999,
  klWeight: 0.1,
  interpolate: true,
  interpBeta: 0.5,
  gpWeight: 10,
  emaDecay: 0.999,
  dBatchNorm: true,
  spectralNorm: false,
  cropMargin: 8,
  seed: 1,
  maGpWeight: 0,
  maGpPower: 6,
  diffAugment: false,
  freezeText: false,
  contrastiveWeight: 0,
  lrDecay: 0,
  labelSmooth: 0,
  adaTarget: 0,
  // Two threads, each a half batch (pipeline/replicas.ts): both cores busy where one thread
  // running the whole step kept 1.4 of them (README, Speed).
  replicas: 2,
};

type Preset = Omit<RecipeOverrides, "size">;

/** What each preset sets over {@link TRAIN_DEFAULTS}. */
const PRESETS: Readonly<Record<RecipeName, Preset>> = {
  // Reed et al. trained their text encoder first and kept it fixed; so does petal's:
  // contrastive pre-training, then frozen (ledger: 0.4221 against 0.4430 jointly, 20 min).
  // Nearest up-sampling + 3×3 convs instead of transposed convs: 0.3930 (20 min).
  // Its contrastive batch of 128 (1500 steps, 29 passes) against 32: held-out caption→image
  // R@5 11.9% against 5.9%, and the ledger's 60-minute score 0.3081 against 0.3189 (seed 1).
  // 3000 steps of 128 against 1500: R@5 13.4% against 11.9%, and at 60 minutes 0.3041 and
  // 0.3048 (seeds 1, 2) against 0.3028 and 0.3134 (docs/quality.md).
  "gan-int-cls": {
    arch: "dcgan",
    upsample: "nearest",
    pretrainSteps: 3000,
    pretrainBatch: 128,
    freezeText: true,
  },
  dfgan: {
    arch: "dfgan",
    upsample: "nearest",
    pretrainSteps: 0,
    loss: "hinge",
    lrG: 2e-4,
    lrD: 8e-4,
    beta1: 0,
    beta2: 0.9,
    maGpWeight: 2,
    maGpPower: 6,
    diffAugment: true,
    interpolate: false,
    dBatchNorm: false,
  },
};

/**
 * A preset with `overrides` on top, resolved: every setting has its value. Where only
 * `lrG` is given, D takes it too. A preset freezes the text encoder only when it is
 * pre-trained: without pre-training the encoder learns with D, unless `freezeText` says.
 *
 * @example
 * ```ts
 * import { recipe } from "../mod.ts";
 *
 * const r = recipe("gan-int-cls", { pretrainSteps: 0, lrG: 1e-4 });
 * console.log(r.train.freezeText); // false: nothing pre-trained to keep
 * console.log(r.train.lrD); // 0.0001: D takes G's rate
 * console.log(recipe().size, recipe().train.batchSize); // small 32
 * ```
 */
export function recipe(name: RecipeName = "gan-int-cls", overrides: RecipeOverrides = {}): Recipe {
  const given = Object.fromEntries(
    Object.entries(overrides).filter(([, v]) => v !== undefined),
  ) as RecipeOverrides;
  const { arch, upsample, gTop, pretrainSteps, pretrainBatch, size, ...train } = {
    ...PRESETS[name],
    ...given,
  };
  const sized = size ?? DEFAULT_SIZE;
  const steps = pretrainSteps ?? 0;
  const lrG = train.lrG ?? SIZE_LR[sized];
  return {
    name,
    size: sized,
    arch: arch ?? "dcgan",
    upsample: upsample ?? "transposed",
    gTop: gTop ?? 0,
    pretrainSteps: steps,
    pretrainBatch: pretrainBatch ?? PRETRAIN_BATCH,
    train: {
      ...TRAIN_DEFAULTS,
      ...train,
      lrG,
      lrD: given.lrD ?? given.lrG ?? PRESETS[name].lrD ?? lrG,
      freezeText: given.freezeText ?? (steps > 0 && (PRESETS[name].freezeText ?? false)),
    },
  };
}

/**
 * Training settings alone: the defaults (learning rates of the small size), `overrides`
 * on top. For building a model by hand; a run takes a whole {@link recipe}.
 *
 * @example
 * ```ts
 * defaultTrainConfig({ loss: "hinge" }).batchSize; // 32
 * ```
 */
export const defaultTrainConfig = (overrides: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TRAIN_DEFAULTS,
  lrG: SIZE_LR[DEFAULT_SIZE],
  lrD: SIZE_LR[DEFAULT_SIZE],
  ...overrides,
});

/** Settings that a resume may change: the learning rates (everything else is the run's). */
export const RESUMABLE: readonly (keyof TrainConfig)[] = ["lrG", "lrD"];

/**
 * The first setting in which `asked` differs from `stored` (a resumed run's recipe),
 * the learning rates aside; undefined when they agree.
 *
 * @example
 * ```ts
 * recipeConflict(recipe(), recipe("gan-int-cls", { size: "reed" })); // "size: small, not reed"
 * recipeConflict(recipe(), recipe("gan-int-cls", { lrG: 1e-3 })); // undefined
 * ```
 */
export function recipeConflict(stored: Recipe, asked: Recipe): string | undefined {
  const flat = (r: Recipe): Record<string, unknown> => {
    const { train, ...rest } = r;
    const kept = Object.entries(train).filter(([k]) => !RESUMABLE.includes(k as keyof TrainConfig));
    return { ...rest, ...Object.fromEntries(kept) };
  };
  const a = flat(stored);
  const b = flat(asked);
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) {
      return `${key}: ${String(a[key])}, not ${String(b[key])}`;
    }
  }
  return undefined;
}

/**
 * What a checkpoint keeps of a recipe beside its model and training settings (which
 * hold the rest): the preset's name and the pre-training's steps and batch (absent in
 * checkpoints written before it was kept: {@link PRETRAIN_BATCH}).
 */
export type RecipeOrigin =
  & Pick<Recipe, "name" | "pretrainSteps">
  & Partial<Pick<Recipe, "pretrainBatch">>;

/**
 * The recipe a checkpoint was trained with, from its model and training settings and its
 * {@link RecipeOrigin}. Checkpoints written before recipes were stored have no origin:
 * their preset is read from the architecture, and their pre-training from whether the
 * text encoder was frozen (the preset's steps) or not (0).
 *
 * @example
 * ```ts
 * import { modelConfig } from "./config.ts";
 * const r = recipe("gan-int-cls", { size: "medium" });
 * const back = storedRecipe(modelConfig(r.size, 100, r.arch, r.upsample, r.gTop), r.train, r);
 * recipeConflict(r, back); // undefined: the same recipe
 * ```
 */
export function storedRecipe(
  model: ModelConfig,
  train: TrainConfig,
  origin?: RecipeOrigin,
): Recipe {
  const name = origin?.name ?? (model.arch === "dfgan" ? "dfgan" : "gan-int-cls");
  const frozen = train.freezeText ?? false;
  return recipe(name, {
    ...train,
    size: model.size,
    arch: model.arch ?? "dcgan",
    upsample: model.upsample ?? "transposed",
    gTop: model.gTop ?? 0,
    pretrainSteps: origin?.pretrainSteps ?? (frozen ? PRESETS[name].pretrainSteps ?? 0 : 0),
    pretrainBatch: origin?.pretrainBatch ?? PRETRAIN_BATCH,
    freezeText: frozen,
    // Checkpoints from before data parallelism trained on one thread.
    replicas: train.replicas ?? 1,
  });
}
