/**
 * The built-in synthetic flower set: procedural flowers whose attributes (petal count,
 * petal colour, centre colour, size) are drawn at random and written into their captions,
 * so every command runs offline and tests can check that conditioning works (a caption
 * that says "red" must give a redder image than one that says "blue").
 *
 * It is written in Reed's layout (images/, text_c10/class_*), plus test_captions.csv and
 * the real test images in test_images/ (the reference for scoring), so the whole
 * toolchain treats it exactly like Oxford-102. Class = petal colour × size, for the
 * evaluator only.
 *
 * @example The set `deno task data` writes (512 training images, 64 test images).
 * ```ts ignore
 * import { ensureSyntheticData } from "./synthetic.ts";
 * const dir = await ensureSyntheticData(".cache/synthetic");
 * ```
 */
import { Rng } from "../../stages/rng.ts";
import { encodeJpeg, writeFileAtomic } from "./images.ts";

export const PETAL_COLOURS = {
  red: [214, 30, 38],
  blue: [40, 70, 220],
  yellow: [240, 215, 40],
  purple: [130, 50, 170],
  white: [245, 245, 240],
  orange: [245, 135, 25],
  pink: [245, 140, 190],
} as const;
export const CENTRE_COLOURS = {
  yellow: [250, 200, 30],
  brown: [110, 65, 25],
  green: [70, 150, 50],
  black: [25, 20, 20],
} as const;
const COUNT_WORDS = ["four", "five", "six", "seven", "eight"] as const;
const SIZES = ["small", "large"] as const;

export type PetalColour = keyof typeof PETAL_COLOURS;
export type CentreColour = keyof typeof CENTRE_COLOURS;

export interface FlowerAttributes {
  readonly petals: number;
  readonly petalColour: PetalColour;
  readonly centreColour: CentreColour;
  readonly size: typeof SIZES[number];
}

export function randomAttributes(rng: Rng): FlowerAttributes {
  return {
    petals: 4 + rng.int(COUNT_WORDS.length),
    petalColour: rng.pick(Object.keys(PETAL_COLOURS) as PetalColour[]),
    centreColour: rng.pick(Object.keys(CENTRE_COLOURS) as CentreColour[]),
    size: rng.pick(SIZES),
  };
}

/** Ten captions that state the attributes in different words. */
export function describe(a: FlowerAttributes, rng: Rng): string[] {
  const n = COUNT_WORDS[a.petals - 4];
  const p = a.petalColour;
  const c = a.centreColour;
  const templates = [
    `this flower has ${n} ${p} petals and a ${c} center`,
    `a ${a.size} ${p} flower with ${n} petals`,
    `the petals of this flower are ${p} and the center is ${c}`,
    `${p} petals surround a ${c} center`,
    `this ${a.size} flower is ${p} with a ${c} middle`,
    `a flower with ${n} rounded ${p} petals`,
    `this flower is ${p} in color with a ${c} center`,
    `the flower has ${a.size} ${p} petals around a ${c} pistil`,
    `${n} ${p} petals and a ${c} center on a ${a.size} flower`,
    `this ${p} flower has ${n} petals`,
  ];
  return rng.permutation(templates.length).reduce<string[]>((acc, i) => [...acc, templates[i]], []);
}

/** Draws one flower, size×size RGB bytes. Background: dark green leaves with noise. */
export function renderFlower(a: FlowerAttributes, size: number, rng: Rng): Uint8Array {
  const img = new Uint8Array(size * size * 3);
  const cx = size * (0.45 + 0.1 * rng.uniform());
  const cy = size * (0.45 + 0.1 * rng.uniform());
  const radius = size * (a.size === "large" ? 0.42 : 0.28) * (0.9 + 0.2 * rng.uniform());
  const turn = rng.uniform() * Math.PI * 2;
  const petal = PETAL_COLOURS[a.petalColour];
  const centre = CENTRE_COLOURS[a.centreColour];
  const shade = 0.85 + 0.15 * rng.uniform();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const r = Math.hypot(dx, dy) / radius;
      const theta = Math.atan2(dy, dx) - turn;
      // A petal is a lobe of the polar rose |cos(k·θ/2)|: k lobes around the centre.
      const lobe = Math.abs(Math.cos((a.petals * theta) / 2));
      let rgb: readonly number[];
      if (r < 0.28) rgb = centre;
      else if (r < 0.35 + 0.65 * Math.pow(lobe, 0.6)) {
        const edge = 1 - 0.25 * r; // petals darken toward their tips
        rgb = petal.map((v) => v * edge * shade);
      } else {
        const leaf = 0.5 + 0.5 * Math.sin(x * 0.3 + y * 0.2 + turn);
        rgb = [30 + 20 * leaf, 70 + 40 * leaf, 30 + 15 * leaf];
      }
      for (let ch = 0; ch < 3; ch++) {
        img[o + ch] = Math.max(0, Math.min(255, Math.round(rgb[ch] + (rng.uniform() - 0.5) * 16)));
      }
    }
  }
  return img;
}

/** Class number (1-based) of a synthetic flower: petal colour × size. Evaluator only. */
export const syntheticClass = (a: FlowerAttributes): number =>
  Object.keys(PETAL_COLOURS).indexOf(a.petalColour) * SIZES.length + SIZES.indexOf(a.size) + 1;

export interface SyntheticOptions {
  readonly trainImages?: number;
  readonly testImages?: number;
  readonly imageSize?: number;
  readonly seed?: number;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/**
 * Writes the synthetic set to `dir` unless the same one is already there; returns `dir`.
 * It is built in a temp folder and renamed into place, so a crash never leaves half a set.
 *
 * @example A small set: 16 training images with captions, 2 test captions and images.
 * ```ts
 * import { ensureSyntheticData } from "../../mod.ts";
 *
 * const data = await ensureSyntheticData(`${await Deno.makeTempDir()}/data`, { trainImages: 16, testImages: 2 });
 * console.log([...Deno.readDirSync(data)].map((e) => e.name).sort());
 * // [ "images", "synthetic.json", "test_captions.csv", "test_images", "text_c10" ]
 * console.log((await Deno.readTextFile(`${data}/test_captions.csv`)).split("\n")[1]);
 * // 17,this small flower is orange with a yellow middle
 * ```
 */
export async function ensureSyntheticData(
  dir: string,
  options: SyntheticOptions = {},
): Promise<string> {
  const { trainImages = 512, testImages = 64, imageSize = 64, seed = 7 } = options;
  const stamp = JSON.stringify({ version: 1, trainImages, testImages, imageSize, seed });
  try {
    if ((await Deno.readTextFile(`${dir}/synthetic.json`)) === stamp) return dir;
    await Deno.remove(dir, { recursive: true });
  } catch { /* absent: build it */ }
  const tmp = `${dir}.${Deno.pid}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${tmp}/images`, { recursive: true });
  await Deno.mkdir(`${tmp}/test_images`, { recursive: true });
  const rng = new Rng(seed);
  const csv = ["id,caption"];
  for (let id = 1; id <= trainImages + testImages; id++) {
    const a = randomAttributes(rng);
    const jpeg = await encodeJpeg(renderFlower(a, imageSize, rng), imageSize);
    const captions = describe(a, rng);
    const name = `image_${pad(id, 5)}`;
    if (id <= trainImages) {
      const classDir = `${tmp}/text_c10/class_${pad(syntheticClass(a), 5)}`;
      await Deno.mkdir(classDir, { recursive: true });
      await Deno.writeFile(`${tmp}/images/${name}.jpg`, jpeg);
      await Deno.writeTextFile(`${classDir}/${name}.txt`, captions.join("\n") + "\n");
    } else {
      await Deno.writeFile(`${tmp}/test_images/${name}.jpg`, jpeg);
      csv.push(`${id},${captions[0]}`);
    }
  }
  await Deno.writeTextFile(`${tmp}/test_captions.csv`, csv.join("\n") + "\n");
  await writeFileAtomic(`${tmp}/synthetic.json`, stamp);
  await Deno.mkdir(dir.split("/").slice(0, -1).join("/") || ".", { recursive: true });
  await Deno.rename(tmp, dir);
  return dir;
}
