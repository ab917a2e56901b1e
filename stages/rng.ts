/**
 * A seeded random stream (mulberry32) whose whole state is one 32-bit number. Checkpoints
 * store no RNG state: training draws every batch from a fresh stream seeded by (seed,
 * epoch, step) (pipeline/steps.ts `streamFor`), so the counters are the RNG state.
 *
 * @example
 * ```ts
 * import { Rng } from "../mod.ts";
 *
 * const rng = new Rng(42);
 * console.log(rng.uniform() < 1, rng.int(6) < 6, rng.normals(3).length); // true true 3
 * console.log(new Rng(42).uniform() === new Rng(42).uniform()); // true: same seed, same stream
 * console.log(new Rng(42).permutation(5).toSorted()); // Int32Array(5) [ 0, 1, 2, 3, 4 ]
 * ```
 */
export class Rng {
  state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** `n` standard normals. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** Fisher–Yates shuffle of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
