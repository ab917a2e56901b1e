/**
 * The recipe flags that `deno task train` and `deno task quality` share: a preset
 * (`--recipe`) and the settings that override it. Each flag names one field of the typed
 * {@link Recipe} (stages/recipe.ts); its default text is read from the presets, so
 * `--help` and the README tables say what `recipe()` does.
 *
 * @example
 * ```ts
 * import { recipeFromFlags } from "./recipe.ts";
 * recipeFromFlags({ recipe: "dfgan" }).train.lrD; // 8e-4
 * recipeFromFlags({ "lr-d": 1e-3 }).train.lrD; // 1e-3
 * ```
 */
import { ARCHS, LOSS_KINDS, SIZES, UPSAMPLES } from "../stages/config.ts";
import { MAX_PRETRAIN_BATCH, MAX_PRETRAIN_STEPS } from "../pipeline/io/checkpoint_header.ts";
import {
  DEFAULT_SIZE,
  type Recipe,
  recipe,
  RECIPE_NAMES,
  type RecipeOverrides,
} from "../stages/recipe.ts";
import type { Flag, FlagValues } from "./flags.ts";

const DEFAULT = recipe();
const OTHERS = RECIPE_NAMES.filter((n) => n !== DEFAULT.name).map((n) => recipe(n));

const shown = (v: unknown, code: boolean): string => {
  const s = typeof v === "number" && v > 0 && v < 0.01
    ? v.toExponential()
    : typeof v === "boolean"
    ? (v ? "on" : "off")
    : String(v);
  return code && typeof v === "string" ? `\`${s}\`` : s;
};

/**
 * What the presets set for one field, as a flag's default text: the default recipe's
 * value, then where another size or preset differs (`5e-4 (reed: 2e-4; dfgan: 2e-4)`).
 */
export function presetText(field: (r: Recipe) => unknown, code = true): string {
  const base = field(DEFAULT);
  const differs = [
    ...SIZES.filter((s) => s !== DEFAULT.size).map((s) =>
      [s, field(recipe(DEFAULT.name, { size: s }))] as const
    ),
    ...OTHERS.map((r) => [r.name, field(r)] as const),
  ].filter(([, v]) => JSON.stringify(v) !== JSON.stringify(base));
  const rest = differs.map(([who, v]) => `${who}: ${shown(v, code)}`).join("; ");
  return rest ? `${shown(base, code)} (${rest})` : shown(base, code);
}

/** The flags of a recipe, as tasks/flags.ts declares them. */
export const RECIPE_FLAGS = {
  recipe: {
    type: "choice",
    choices: RECIPE_NAMES,
    arg: "R",
    help: "the preset that the flags below override (README, How it works)",
    defaultText: `\`${DEFAULT.name}\``,
  },
  size: {
    type: "choice",
    choices: SIZES,
    arg: "S",
    help: "model size (`reed`: Reed et al. 2016, the bench model)",
    defaultText: `\`${DEFAULT_SIZE}\``,
  },
  arch: {
    type: "choice",
    choices: ARCHS,
    arg: "A",
    help: "G and D architecture (`dfgan`: residual up-blocks, deep text fusion, one-way D)",
    defaultText: presetText((r) => r.arch),
  },
  upsample: {
    type: "choice",
    choices: UPSAMPLES,
    help: "how the dcgan G doubles its resolution (`nearest`: nearest ×2 and a 3×3 conv)",
    defaultText: presetText((r) => r.upsample),
  },
  "g-top": {
    type: "number",
    integer: true,
    min: 0,
    arg: "C",
    help: "width of an extra 3×3 conv in the dcgan G at 64×64, before its RGB conv (0: none)",
    defaultText: presetText((r) => r.gTop),
  },
  batch: {
    type: "number",
    integer: true,
    min: 1,
    help: "batch size",
    defaultText: presetText((r) => r.train.batchSize),
  },
  loss: {
    type: "choice",
    choices: LOSS_KINDS,
    arg: "L",
    help: "GAN loss (`bce` is GAN-CLS)",
    defaultText: presetText((r) => r.train.loss),
  },
  lr: {
    type: "number",
    arg: "X",
    min: 0,
    help: "Adam learning rate of G (and of D unless --lr-d; a `--resume` may change it)",
    defaultText: presetText((r) => r.train.lrG),
  },
  "lr-d": {
    type: "number",
    arg: "X",
    min: 0,
    help: "Adam learning rate of D (TTUR: above --lr; a `--resume` may change it)",
    defaultText: presetText((r) => r.train.lrD === r.train.lrG ? "--lr" : r.train.lrD, false),
  },
  "ma-gp": {
    type: "number",
    arg: "K",
    min: 0,
    help: "weight of the matching-aware zero-centred gradient penalty on (real, right text)",
    defaultText: presetText((r) => r.train.maGpWeight),
  },
  "lr-decay": {
    type: "number",
    arg: "F",
    min: 0,
    max: 1,
    help: "let both learning rates fall linearly to 0 over the last F of the budget",
    defaultText: presetText((r) => r.train.lrDecay),
  },
  "label-smooth": {
    type: "number",
    arg: "S",
    min: 0,
    max: 0.5,
    help: "one-sided label smoothing: D's `bce` target for (real, right text) is 1 − S",
    defaultText: presetText((r) => r.train.labelSmooth),
  },
  diffaug: {
    type: "boolean",
    help: "DiffAugment (colour, translation, cutout) before D",
    defaultText: presetText((r) => r.train.diffAugment),
  },
  "no-diffaug": { type: "boolean", help: "no DiffAugment" },
  ada: {
    type: "number",
    arg: "T",
    min: 0,
    max: 1,
    help:
      "adaptive DiffAugment (implies --diffaug and --replicas 1): p rises while E[sign D(real)] > T, else falls",
    defaultText: presetText((r) => r.train.adaTarget),
  },
  "pretrain-text": {
    type: "number",
    integer: true,
    min: 0,
    // A checkpoint names it: no more than its reader takes back.
    max: MAX_PRETRAIN_STEPS,
    arg: "N",
    help:
      "contrastive (CLIP-style) pre-training of the text encoder, N steps (at most 60 passes over the data), before a fresh run",
    defaultText: presetText((r) => r.pretrainSteps),
  },
  "pretrain-batch": {
    type: "number",
    integer: true,
    min: 2,
    max: MAX_PRETRAIN_BATCH,
    arg: "N",
    help: "image–caption pairs per step of the text pre-training (its contrastive batch)",
    defaultText: presetText((r) => r.pretrainBatch),
  },
  "freeze-text": {
    type: "boolean",
    help:
      "keep the text encoder fixed in the GAN after its pre-training (the D loss does not train it)",
    defaultText: presetText((r) => r.train.freezeText),
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
    defaultText: presetText((r) => r.train.contrastiveWeight),
  },
  "no-d-bn": {
    type: "boolean",
    help: "discriminator without batch norm (always so for `wgan-gp`)",
    defaultText: `D batch norm ${presetText((r) => r.train.dBatchNorm)}`,
  },
  "spectral-norm": {
    type: "boolean",
    help:
      "spectral normalisation of every discriminator weight, in place of its batch norm (`dcgan` only)",
    defaultText: presetText((r) => r.train.spectralNorm),
  },
  "no-interp": {
    type: "boolean",
    help: "turn off the GAN-INT interpolated-text loss",
    defaultText: `GAN-INT ${presetText((r) => r.train.interpolate)}`,
  },
  ema: {
    type: "number",
    arg: "X",
    min: 0,
    max: 1,
    help: "EMA decay of the generator used for samples and inference",
    defaultText: presetText((r) => r.train.emaDecay),
  },
  replicas: {
    type: "number",
    integer: true,
    min: 1,
    max: 64,
    arg: "N",
    help:
      "data parallelism: each step's batch in N parts on N threads sharing the cores, gradients averaged (batch norm per part)",
    defaultText: presetText((r) => r.train.replicas),
  },
  seed: {
    type: "number",
    integer: true,
    help: "random seed",
    defaultText: presetText((r) => r.train.seed),
  },
} as const satisfies Record<string, Flag>;

/** The recipe flags' values, as parsed (absent: not given). */
export type RecipeValues = Partial<FlagValues<typeof RECIPE_FLAGS>>;

const given = <K extends keyof RecipeOverrides>(key: K, value: RecipeOverrides[K] | undefined) =>
  value === undefined ? {} : { [key]: value } as RecipeOverrides;

/** The settings the flags give (only those given), as the recipe's typed fields. */
export const recipeOverrides = (v: RecipeValues): RecipeOverrides => ({
  ...given("size", v.size),
  ...given("arch", v.arch),
  ...given("upsample", v.upsample),
  ...given("gTop", v["g-top"]),
  ...given("batchSize", v.batch),
  ...given("loss", v.loss),
  ...given("lrG", v.lr),
  ...given("lrD", v["lr-d"]),
  ...given("maGpWeight", v["ma-gp"]),
  ...given("lrDecay", v["lr-decay"]),
  ...given("labelSmooth", v["label-smooth"]),
  ...given("adaTarget", v.ada),
  ...(v.ada ? { diffAugment: true, replicas: 1 } : {}),
  ...(v.diffaug ? { diffAugment: true } : {}),
  ...(v["no-diffaug"] ? { diffAugment: false } : {}),
  ...given("pretrainSteps", v["pretrain-text"]),
  ...given("pretrainBatch", v["pretrain-batch"]),
  ...(v["freeze-text"] ? { freezeText: true } : {}),
  ...(v["joint-text"] ? { freezeText: false } : {}),
  ...given("contrastiveWeight", v.contrastive),
  ...(v["no-d-bn"] ? { dBatchNorm: false } : {}),
  ...(v["spectral-norm"] ? { spectralNorm: true } : {}),
  ...(v["no-interp"] ? { interpolate: false } : {}),
  ...given("emaDecay", v.ema),
  ...given("replicas", v.replicas),
  ...given("seed", v.seed),
});

/** The recipe the flags ask for: `--recipe`'s preset (or the default) with the rest on top. */
export const recipeFromFlags = (v: RecipeValues): Recipe =>
  recipe(v.recipe ?? DEFAULT.name, recipeOverrides(v));

/**
 * A stored recipe (a resumed run's) with the flags on top: `--recipe` and every setting
 * given must agree with it, except the learning rates (train() checks and says which).
 */
export const resumedRecipe = (stored: Recipe, v: RecipeValues): Recipe =>
  recipe(v.recipe ?? stored.name, {
    size: stored.size,
    arch: stored.arch,
    upsample: stored.upsample,
    gTop: stored.gTop,
    pretrainSteps: stored.pretrainSteps,
    pretrainBatch: stored.pretrainBatch,
    ...stored.train,
    // --lr alone moves both rates, as on a fresh run.
    ...(v.lr !== undefined && v["lr-d"] === undefined ? { lrD: v.lr } : {}),
    ...recipeOverrides(v),
  });

const FLAG_NAMES = Object.keys(RECIPE_FLAGS) as (keyof typeof RECIPE_FLAGS)[];

/**
 * The recipe flags as given on the command line, for a ledger row: `--recipe dfgan
 * --lr-d 1e-3` (the preset always, the rest only when set).
 */
export function recipeText(v: RecipeValues): string {
  const parts = [`--recipe ${v.recipe ?? DEFAULT.name}`];
  for (const name of FLAG_NAMES) {
    const value = v[name];
    if (name === "recipe" || value === undefined || value === false) continue;
    if (name === "size" && value === DEFAULT_SIZE) continue;
    parts.push(value === true ? `--${name}` : `--${name} ${value}`);
  }
  return parts.join(" ");
}
