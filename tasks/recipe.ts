/**
 * The recipe flags that `deno task train` and `deno task quality` share: a named preset
 * (`--recipe`) and the settings that override it, turned into the train pipeline's
 * options, and written back as the short recipe text of a ledger row.
 *
 * - `gan-int-cls` (the default): the DCGAN generator with conditioning augmentation,
 *   BCE, GAN-INT, batch-norm D, one learning rate (5e-4 small, 2e-4 reed), β₁ 0.5; the
 *   text encoder pre-trained contrastively (1500 steps), then frozen, as Reed et al.'s;
 *   nearest ×2 up-sampling and 3×3 convs in G (no checkerboard).
 * - `dfgan`: DF-GAN's generator and one-way discriminator (stages/dfgan.ts), hinge loss
 *   with the matching-aware gradient penalty (k 2, p 6), TTUR (G 2e-4, D 8e-4),
 *   Adam β (0, 0.9), DiffAugment, no GAN-INT.
 *
 * @example
 * ```ts
 * import { recipeSettings } from "./recipe.ts";
 * recipeSettings({ recipe: "dfgan", size: "small" }).train.lrD; // 8e-4
 * ```
 */
import {
  type ArchName,
  ARCHS,
  LOSS_KINDS,
  type LossKind,
  type SizeName,
  SIZES,
  type TrainConfig,
  type Upsample,
  UPSAMPLES,
} from "../stages/config.ts";
import type { Flag } from "./flags.ts";

/** The named recipes of `--recipe`. */
export const RECIPES = ["gan-int-cls", "dfgan"] as const;
/** One of {@link RECIPES}. */
export type RecipeName = typeof RECIPES[number];

/** The flags of a recipe, as tasks/flags.ts declares them. */
export const RECIPE_FLAGS = {
  recipe: {
    type: "choice",
    choices: RECIPES,
    default: "gan-int-cls",
    arg: "R",
    help: "the preset that the flags below override (README, How it works)",
  },
  size: {
    type: "choice",
    choices: SIZES,
    default: "small",
    arg: "S",
    help: "model size (`reed`: Reed et al. 2016, the bench model)",
  },
  arch: {
    type: "choice",
    choices: ARCHS,
    arg: "A",
    help: "G and D architecture (`dfgan`: residual up-blocks, deep text fusion, one-way D)",
    defaultText: "the recipe's",
  },
  upsample: {
    type: "choice",
    choices: UPSAMPLES,
    help: "how the dcgan G doubles its resolution (`nearest`: nearest ×2 and a 3×3 conv)",
    defaultText: "`nearest`",
  },
  batch: { type: "number", integer: true, min: 1, help: "batch size", defaultText: "32" },
  loss: {
    type: "choice",
    choices: LOSS_KINDS,
    arg: "L",
    help: "GAN loss (`bce` is GAN-CLS)",
    defaultText: "`bce`; `hinge` for dfgan",
  },
  lr: {
    type: "number",
    arg: "X",
    min: 0,
    help: "Adam learning rate of G (and of D unless --lr-d; a `--resume` may change it)",
    defaultText: "5e-4 small, 2e-4 reed; 2e-4 dfgan",
  },
  "lr-d": {
    type: "number",
    arg: "X",
    min: 0,
    help: "Adam learning rate of D (TTUR: above --lr)",
    defaultText: "--lr; 8e-4 dfgan",
  },
  "ma-gp": {
    type: "number",
    arg: "K",
    min: 0,
    help: "weight of the matching-aware zero-centred gradient penalty on (real, right text)",
    defaultText: "0; 2 dfgan",
  },
  "lr-decay": {
    type: "number",
    arg: "F",
    min: 0,
    max: 1,
    help: "let both learning rates fall linearly to 0 over the last F of the budget",
    defaultText: "0",
  },
  diffaug: { type: "boolean", help: "DiffAugment (colour, translation, cutout) before D" },
  "no-diffaug": { type: "boolean", help: "no DiffAugment (the dfgan recipe has it on)" },
  "pretrain-text": {
    type: "number",
    integer: true,
    min: 0,
    arg: "N",
    help:
      "contrastive (CLIP-style) pre-training of the text encoder, N steps (at most 10 passes over the data), before a fresh run",
    defaultText: "1500; 0 dfgan",
  },
  "freeze-text": {
    type: "boolean",
    help:
      "keep the text encoder fixed in the GAN after its pre-training (the D loss does not train it)",
    defaultText: "on in gan-int-cls when pre-trained",
  },
  "joint-text": {
    type: "boolean",
    help: "train the text encoder with the D loss instead of freezing it",
  },
  contrastive: {
    type: "number",
    arg: "W",
    min: 0,
    help:
      "weight of the contrastive G loss (each fake vs its caption, by the pre-trained image model)",
    defaultText: "0",
  },
  "no-d-bn": {
    type: "boolean",
    help: "discriminator without batch norm (always so for `wgan-gp` and dfgan)",
  },
  "no-interp": {
    type: "boolean",
    help: "turn off the GAN-INT interpolated-text loss (off in dfgan)",
  },
  ema: {
    type: "number",
    arg: "X",
    min: 0,
    max: 1,
    help: "EMA decay of the generator used for samples and inference",
    defaultText: "0.999",
  },
  seed: { type: "number", integer: true, help: "random seed", defaultText: "1" },
} as const satisfies Record<string, Flag>;

/** The recipe flags' values, as parsed. */
export interface RecipeValues {
  readonly recipe: RecipeName;
  readonly size: SizeName;
  readonly arch?: ArchName;
  readonly upsample?: Upsample;
  readonly batch?: number;
  readonly loss?: LossKind;
  readonly lr?: number;
  readonly "lr-d"?: number;
  readonly "lr-decay"?: number;
  readonly "ma-gp"?: number;
  readonly diffaug?: boolean;
  readonly "no-diffaug"?: boolean;
  readonly "pretrain-text"?: number;
  readonly "freeze-text"?: boolean;
  readonly "joint-text"?: boolean;
  readonly contrastive?: number;
  readonly "no-d-bn"?: boolean;
  readonly "no-interp"?: boolean;
  readonly ema?: number;
  readonly seed?: number;
}

/** What a recipe sets: size, architecture, training settings, pre-training steps. */
export interface RecipeSettings {
  readonly size: SizeName;
  readonly arch: ArchName;
  readonly upsample: Upsample;
  readonly train: Partial<TrainConfig>;
  readonly pretrainSteps: number;
}

type Preset = Partial<TrainConfig> & {
  arch: ArchName;
  upsample: Upsample;
  pretrainSteps: number;
};

const PRESETS: Record<RecipeName, () => Preset> = {
  // The learning rate is left to the size's default (DEFAULT_LR), as before recipes.
  // Reed et al. trained their text encoder first and kept it fixed; so does petal's:
  // contrastive pre-training, then frozen (ledger: 0.4221 against 0.4430 jointly, 20 min).
  // Nearest up-sampling + 3×3 convs instead of transposed convs: 0.3930 (20 min).
  "gan-int-cls": () => ({
    arch: "dcgan",
    upsample: "nearest",
    pretrainSteps: 1500,
    freezeText: true,
  }),
  dfgan: () => ({
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
  }),
};

/**
 * The recipe's preset with the given flags on top (only what was given overrides).
 *
 * @example
 * ```ts
 * recipeSettings({ recipe: "gan-int-cls", size: "small", "lr-d": 1e-3 }).train.lrD; // 1e-3
 * ```
 */
export function recipeSettings(v: RecipeValues): RecipeSettings {
  const { arch, upsample, pretrainSteps: presetSteps, freezeText: presetFreeze, ...preset } =
    PRESETS[v.recipe]();
  const pretrainSteps = v["pretrain-text"] ?? presetSteps;
  // A frozen encoder is a pre-trained one: without pre-training it learns with D.
  const freezeText = !v["joint-text"] &&
    (v["freeze-text"] === true || (presetFreeze === true && pretrainSteps > 0));
  const given = <K extends keyof TrainConfig>(key: K, value: TrainConfig[K] | undefined) =>
    value === undefined ? {} : { [key]: value } as Partial<TrainConfig>;
  const train: Partial<TrainConfig> = {
    ...preset,
    ...given("lrG", v.lr ?? preset.lrG),
    ...given("lrD", v["lr-d"] ?? v.lr ?? preset.lrD),
    ...given("loss", v.loss),
    ...given("lrDecay", v["lr-decay"]),
    ...given("maGpWeight", v["ma-gp"]),
    ...given("contrastiveWeight", v.contrastive),
    ...(v.diffaug ? { diffAugment: true } : {}),
    ...(v["no-diffaug"] ? { diffAugment: false } : {}),
    ...(v["no-interp"] ? { interpolate: false } : {}),
    ...(v["no-d-bn"] ? { dBatchNorm: false } : {}),
    ...(freezeText ? { freezeText } : {}),
    ...given("batchSize", v.batch),
    ...given("emaDecay", v.ema),
    ...given("seed", v.seed),
  };
  return {
    size: v.size,
    arch: v.arch ?? arch,
    upsample: v.upsample ?? upsample,
    train,
    pretrainSteps,
  };
}

const RECIPE_FLAG_NAMES = Object.keys(RECIPE_FLAGS) as (keyof typeof RECIPE_FLAGS)[];

/**
 * The recipe flags as given on the command line, for a ledger row: `--recipe dfgan
 * --lr-d 1e-3` (the preset always, the rest only when set).
 */
export function recipeText(v: RecipeValues): string {
  const parts = [`--recipe ${v.recipe}`];
  for (const name of RECIPE_FLAG_NAMES) {
    const value = v[name];
    if (name === "recipe" || value === undefined || value === false) continue;
    if (name === "size" && value === "small") continue;
    parts.push(value === true ? `--${name}` : `--${name} ${value}`);
  }
  return parts.join(" ");
}
