/**
 * Caption retrieval, the baseline a text-to-image GAN has to beat: for a caption, the
 * training photo whose captions share the most words with it.
 *
 * @example
 * ```ts
 * import { captionIndex, retrieveByWords } from "./retrieval.ts";
 * const index = captionIndex([["a white flower"], ["this flower is red", "round red petals"]]);
 * retrieveByWords("a red flower with round petals", index); // 1
 * ```
 */

/** The distinct lower-case words of a text. */
export const wordSet = (text: string): Set<string> =>
  new Set(text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0));

/** How many distinct words of `query` appear in `words`. */
export const sharedWords = (query: ReadonlySet<string>, words: ReadonlySet<string>): number => {
  let n = 0;
  for (const w of query) if (words.has(w)) n++;
  return n;
};

/** Word sets of every caption of every image, built once for many queries. */
export type CaptionIndex = readonly (readonly ReadonlySet<string>[])[];

/** The {@link CaptionIndex} of images given as lists of captions. */
export const captionIndex = (images: readonly (readonly string[])[]): CaptionIndex =>
  images.map((captions) => captions.map(wordSet));

/**
 * The index of the image with a caption that shares the most distinct words with
 * `query`; ties go to the lowest index.
 */
export function retrieveByWords(query: string, index: CaptionIndex): number {
  const q = wordSet(query);
  let best = -1;
  let bestIndex = 0;
  for (const [i, captions] of index.entries()) {
    for (const c of captions) {
      const n = sharedWords(q, c);
      if (n > best) [best, bestIndex] = [n, i];
    }
  }
  return bestIndex;
}
