/**
 * Image grids with captions written beside the rows: the per-epoch sample sheet of
 * `train`, the 5 × 5 report of `infer --report` and the interpolation strip.
 *
 * @example
 * ```ts
 * import { renderGrid } from "./grid.ts";
 * const rgb64 = new Uint8Array(64 * 64 * 3).fill(200); // a light grey 64×64 image
 * const png = await renderGrid([{ label: "a red flower", images: [rgb64, rgb64] }], 64);
 * ```
 */
import sharp from "sharp";

/** One row of a grid: a label written beside it and its images (RGB bytes). */
export interface GridRow {
  readonly label: string;
  /** size × size × 3 RGB bytes each. */
  readonly images: readonly Uint8Array[];
}

const escapeXml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Breaks `text` into lines of at most `width` characters, on word boundaries. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * One PNG: each row's images side by side (scaled by `scale`, nearest-neighbour so pixels
 * stay honest), its label wrapped in a text column on the left.
 *
 * @example Two rows of two grey images, with their labels.
 * ```ts
 * import { renderGrid } from "../../mod.ts";
 *
 * const grey = new Uint8Array(64 * 64 * 3).fill(200);
 * const png = await renderGrid([
 *   { label: "a red flower", images: [grey, grey] },
 *   { label: "a blue flower", images: [grey, grey] },
 * ], 64);
 * console.log(new TextDecoder().decode(png.subarray(1, 4))); // "PNG"
 * await Deno.writeFile(`${await Deno.makeTempDir()}/grid.png`, png);
 * ```
 */
export async function renderGrid(
  rows: readonly GridRow[],
  size: number,
  { scale = 2, labelWidth = 260, gap = 4 } = {},
): Promise<Uint8Array> {
  const cell = size * scale;
  const cols = Math.max(1, ...rows.map((r) => r.images.length));
  const width = labelWidth + cols * (cell + gap) + gap;
  const height = rows.length * (cell + gap) + gap;
  const fontSize = 12;
  const charsPerLine = Math.floor(labelWidth / (fontSize * 0.55));
  const maxLines = Math.floor(cell / (fontSize + 2));
  const text = rows.map((r, i) => {
    const lines = wrapText(r.label, charsPerLine).slice(0, maxLines);
    const top = gap + i * (cell + gap) + (cell - lines.length * (fontSize + 2)) / 2 + fontSize;
    return lines.map((l, j) =>
      `<text x="6" y="${top + j * (fontSize + 2)}" font-family="DejaVu Sans, sans-serif" ` +
      `font-size="${fontSize}" fill="#222">${escapeXml(l)}</text>`
    ).join("");
  }).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="#fafafa"/>${text}</svg>`;
  const tiles = await Promise.all(rows.flatMap((r, i) =>
    r.images.map(async (img, j) => ({
      input: await sharp(img, { raw: { width: size, height: size, channels: 3 } })
        .resize(cell, cell, { kernel: "nearest" }).png().toBuffer(),
      left: labelWidth + gap + j * (cell + gap),
      top: gap + i * (cell + gap),
    }))
  ));
  const png = await sharp(new TextEncoder().encode(svg)).composite(tiles).png().toBuffer();
  return new Uint8Array(png);
}
