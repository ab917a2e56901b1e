/**
 * score: the task's metric, exactly, and two extra views of the same logits. Pure.
 *
 * Per image i: score_i = cosine distance(logits_i, reference logits_i) + 0.5 / IS, where
 * IS = exp(mean_i KL(p(y|x_i) ‖ p(y))) over all images, p = softmax(logits), eps 1e-16.
 * Lower is better.
 *
 * @example
 * ```ts
 * import { inceptionScore, cosineDistance } from "./score.ts";
 * inceptionScore([[1, 0], [0, 1]]); // 2: two classes, used equally, each one-hot
 * cosineDistance([1, 0], [-1, 0]); // 2
 * ```
 */

export const EPS = 1e-16;

type Rows = readonly ArrayLike<number>[];

/** 1 − a·b / (‖a‖‖b‖), as scipy's cosine distance. */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / (Math.sqrt(na) * Math.sqrt(nb));
}

/** Row-wise softmax, numerically stable. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** exp(mean KL(p(y|x) ‖ p(y))) over the rows of `probs`. */
export function inceptionScore(probs: Rows): number {
  const K = probs[0].length;
  const marginal = new Float64Array(K);
  for (const p of probs) for (let k = 0; k < K; k++) marginal[k] += p[k] / probs.length;
  let kl = 0;
  for (const p of probs) {
    for (let k = 0; k < K; k++) kl += p[k] * (Math.log(p[k] + EPS) - Math.log(marginal[k] + EPS));
  }
  return Math.exp(kl / probs.length);
}

export interface ScoreTable {
  /** Per row: cosine distance + 0.5 / IS. */
  readonly scores: Float64Array;
  readonly cosine: Float64Array;
  readonly inceptionScore: number;
  readonly mean: number;
  readonly meanCosine: number;
}

/**
 * The task's per-image scores for generated logits against reference logits.
 *
 * @example Two images whose logits point like their references': cosine 0, score 0.5 / IS.
 * ```ts
 * import { taskScores } from "../mod.ts";
 *
 * const t = taskScores([[4, 0], [0, 4]], [[2, 0], [0, 2]]);
 * console.log(t.meanCosine, t.inceptionScore.toFixed(3), t.mean.toFixed(3)); // 0 1.828 0.274
 * ```
 */
export function taskScores(generated: Rows, reference: Rows): ScoreTable {
  if (generated.length !== reference.length) {
    throw new Error(`${generated.length} generated rows but ${reference.length} reference rows`);
  }
  const is = inceptionScore(generated.map(softmax));
  const cosine = Float64Array.from(generated, (g, i) => cosineDistance(g, reference[i]));
  const scores = cosine.map((c) => c + 0.5 / is);
  const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { scores, cosine, inceptionScore: is, mean: mean(scores), meanCosine: mean(cosine) };
}

/** `score,id` CSV text, id = row 0..N−1, as the task writes it. */
export const scoreCsv = (scores: ArrayLike<number>): string =>
  "score,id\n" + Array.from(scores, (s, i) => `${s},${i}`).join("\n") + "\n";

/**
 * Retrieval R-precision on evaluator logits: for each image, its own reference is ranked
 * against `r − 1` other references by cosine similarity; the share ranked first. `pick`
 * chooses the distractors (the caller owns the randomness).
 */
export function rPrecision(
  generated: Rows,
  reference: Rows,
  r: number,
  pick: (i: number) => number[],
): number {
  let hits = 0;
  for (let i = 0; i < generated.length; i++) {
    const own = cosineDistance(generated[i], reference[i]);
    if (pick(i).slice(0, r - 1).every((j) => cosineDistance(generated[i], reference[j]) > own)) {
      hits++;
    }
  }
  return hits / generated.length;
}

// ---------------------------------------------------------------- FID

function meanAndCovariance(x: Rows): { mean: Float64Array; cov: Float64Array[] } {
  const n = x.length;
  const d = x[0].length;
  const mean = new Float64Array(d);
  for (const row of x) for (let j = 0; j < d; j++) mean[j] += row[j] / n;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (const row of x) {
    for (let a = 0; a < d; a++) {
      const da = row[a] - mean[a];
      for (let b = a; b < d; b++) cov[a][b] += (da * (row[b] - mean[b])) / (n - 1);
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a][b] = cov[b][a];
  return { mean, cov };
}

/** Eigen-decomposition of a symmetric matrix (cyclic Jacobi): values and vectors (columns). */
export function symmetricEigen(
  m: readonly Float64Array[],
): { values: Float64Array; vectors: Float64Array[] } {
  const n = m.length;
  const a = m.map((r) => Float64Array.from(r));
  const v = Array.from(
    { length: n },
    (_, i) => Float64Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from(a, (r, i) => r[i]), vectors: v };
}

/**
 * Fréchet distance between Gaussians fitted to two feature sets:
 * ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with Tr((Σ₁Σ₂)^½) = Σ √eig(Σ₁^½ Σ₂ Σ₁^½).
 */
export function frechetDistance(a: Rows, b: Rows): number {
  const A = meanAndCovariance(a);
  const B = meanAndCovariance(b);
  const d = A.mean.length;
  const { values, vectors } = symmetricEigen(A.cov);
  // Σ₁^½ = V diag(√λ) Vᵀ
  const root = Array.from({ length: d }, () => new Float64Array(d));
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        s += vectors[i][k] * Math.sqrt(Math.max(values[k], 0)) * vectors[j][k];
      }
      root[i][j] = s;
    }
  }
  const mul = (x: Float64Array[], y: Float64Array[]) =>
    x.map((row) => {
      const out = new Float64Array(d);
      for (let k = 0; k < d; k++) {
        const r = row[k];
        if (r !== 0) { for (let j = 0; j < d; j++) out[j] += r * y[k][j]; }
      }
      return out;
    });
  const middle = mul(mul(root, B.cov), root);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) middle[i][j] = middle[j][i] = (middle[i][j] + middle[j][i]) / 2;
  }
  const trSqrt = symmetricEigen(middle).values.reduce((s, l) => s + Math.sqrt(Math.max(l, 0)), 0);
  let dist = 0;
  for (let j = 0; j < d; j++) dist += (A.mean[j] - B.mean[j]) ** 2 + A.cov[j][j] + B.cov[j][j];
  // Equal sets give 0 up to rounding; never report a negative distance.
  return Math.max(0, dist - 2 * trSqrt);
}
