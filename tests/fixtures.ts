/** Small data sets made in code, so the suite needs no ../shared. */
import * as tf from "@tensorflow/tfjs";
import { ensureSyntheticData } from "../pipeline/io/synthetic.ts";
import type { Rng } from "../stages/rng.ts";
import type { BatchTensors } from "../stages/train_step.ts";
import { type Recipe, recipe, type RecipeOverrides } from "../stages/recipe.ts";

/**
 * Plain GAN-INT-CLS (transposed convs, φ trained with D, no text pre-training), the
 * small and fast recipe most tests train, with `overrides` on top.
 */
export const plainRecipe = (overrides: RecipeOverrides = {}): Recipe =>
  recipe("gan-int-cls", {
    upsample: "transposed",
    pretrainSteps: 0,
    freezeText: false,
    ...overrides,
  });

export const SHARED = new URL("../../shared/", import.meta.url).pathname;
export const hasShared = (() => {
  try {
    return Deno.statSync(`${SHARED}oxford102/images`).isDirectory;
  } catch {
    return false;
  }
})();

/** The repository's root folder (with a trailing slash). */
export const ROOT = new URL("../", import.meta.url).pathname;

/** Every .ts file under `dir` (relative to {@link ROOT}), recursively, sorted. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** A fresh temp folder holding a small synthetic Reed-layout set. */
export async function syntheticFixture(trainImages = 24, testImages = 6): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "petal-test-" });
  return await ensureSyntheticData(`${dir}/synthetic`, { trainImages, testImages });
}

/** Runs a task as a user would; returns exit code and the text it printed. */
export async function runTask(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-webgpu",
      new URL(`../tasks/${script}`, import.meta.url).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A batch of random images and caption ids from a vocabulary of `vocab` words. */
export function randomBatch(
  B: number,
  zDim: number,
  condDim: number,
  vocab: number,
  rng: Rng,
): BatchTensors {
  const ids = () =>
    tf.tensor2d(Int32Array.from({ length: B * 20 }, () => rng.int(vocab)), [B, 20], "int32");
  return {
    real: tf.tensor4d(Float32Array.from({ length: B * 64 * 64 * 3 }, () => rng.uniform() * 2 - 1), [
      B,
      64,
      64,
      3,
    ]),
    right: ids(),
    wrong: ids(),
    z: tf.tensor2d(rng.normals(B * zDim), [B, zDim]),
    eps: tf.tensor2d(rng.normals(B * condDim), [B, condDim]),
    zInt: tf.tensor2d(rng.normals(B * zDim), [B, zDim]),
    epsInt: tf.tensor2d(rng.normals(B * condDim), [B, condDim]),
    partners: tf.tensor1d(rng.permutation(B), "int32"),
    alpha: tf.tensor4d(Float32Array.from({ length: B }, () => rng.uniform()), [B, 1, 1, 1]),
  };
}
