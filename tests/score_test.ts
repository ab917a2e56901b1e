import { assertAlmostEquals, assertEquals } from "./assert.ts";
import {
  cosineDistance,
  frechetDistance,
  inceptionScore,
  rPrecision,
  scoreCsv,
  softmax,
  symmetricEigen,
  taskScores,
} from "../stages/score.ts";

Deno.test("IS of identical one-hot predictions is 1", () => {
  assertAlmostEquals(inceptionScore([[1, 0, 0], [1, 0, 0], [1, 0, 0]]), 1, 1e-12);
});

Deno.test("IS of K equally used one-hot classes is K", () => {
  for (const K of [2, 5, 102]) {
    const probs = Array.from(
      { length: 3 * K },
      (_, i) => Array.from({ length: K }, (_, k) => (k === i % K ? 1 : 0)),
    );
    assertAlmostEquals(inceptionScore(probs), K, 1e-9 * K);
  }
});

Deno.test("cosine distance: 0 for equal, 1 for orthogonal, 2 for opposite", () => {
  assertAlmostEquals(cosineDistance([1, 2, 3], [2, 4, 6]), 0, 1e-12);
  assertAlmostEquals(cosineDistance([1, 0], [0, 5]), 1, 1e-12);
  assertAlmostEquals(cosineDistance([1, -2], [-1, 2]), 2, 1e-12);
});

Deno.test("per-row score = cosine distance + 0.5 / IS, hand-computed", () => {
  // Two images; logits chosen so softmax is easy: [ln 3, 0] → [0.75, 0.25].
  const g = [[Math.log(3), 0], [0, Math.log(3)]];
  const ref = [[1, 0], [1, 0]];
  const p = g.map(softmax);
  assertAlmostEquals(p[0][0], 0.75, 1e-12);
  // Marginal [0.5, 0.5]; KL of each row = 0.75 ln 1.5 + 0.25 ln 0.5.
  const kl = 0.75 * Math.log(1.5) + 0.25 * Math.log(0.5);
  const is = Math.exp(kl);
  const t = taskScores(g, ref);
  assertAlmostEquals(t.inceptionScore, is, 1e-12);
  const cos0 = 1 - Math.log(3) / Math.log(3); // g0 ∥ ref → 0
  const cos1 = 1 - 0; // g1 ⟂ ref → 1
  assertAlmostEquals(t.scores[0], cos0 + 0.5 / is, 1e-12);
  assertAlmostEquals(t.scores[1], cos1 + 0.5 / is, 1e-12);
  assertAlmostEquals(t.mean, (cos0 + cos1) / 2 + 0.5 / is, 1e-12);
});

Deno.test("score.csv is exactly `score,id` with id = row", () => {
  assertEquals(scoreCsv([0.5, 1.25]), "score,id\n0.5,0\n1.25,1\n");
});

Deno.test("symmetric eigen reconstructs the matrix", () => {
  const m = [[4, 1, 0.5], [1, 3, 0.2], [0.5, 0.2, 2]].map((r) => Float64Array.from(r));
  const { values, vectors } = symmetricEigen(m);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += vectors[i][k] * values[k] * vectors[j][k];
      assertAlmostEquals(s, m[i][j], 1e-9);
    }
  }
});

Deno.test("FID: 0 for identical sets, squared mean shift for shifted ones", () => {
  const a = Array.from({ length: 50 }, (_, i) => [Math.sin(i), Math.cos(i * 1.3), (i % 7) / 7]);
  assertAlmostEquals(frechetDistance(a, a), 0, 1e-8);
  const shifted = a.map((r) => [r[0] + 2, r[1], r[2]]);
  assertAlmostEquals(frechetDistance(a, shifted), 4, 1e-8);
});

Deno.test("R-precision: 1 when each image is closest to its reference, 0 when never", () => {
  const ref = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const others = (i: number) => [0, 1, 2].filter((j) => j !== i);
  assertEquals(rPrecision(ref, ref, 3, others), 1);
  const rotated = [ref[1], ref[2], ref[0]];
  assertEquals(rPrecision(rotated, ref, 3, others), 0);
});
