/**
 * The mean of values across replicas: threads (the main thread and Deno workers) that
 * share one SharedArrayBuffer, each with a slot of `capacity` floats. Data-parallel
 * training (pipeline/replicas.ts) averages its gradients through it, so every replica
 * applies the same update and their weights stay equal.
 *
 * Each replica writes its values into its own slot, waits at a barrier for the others,
 * sums the slots in rank order (so every replica gets the same bits back) and waits at a
 * second barrier before a slot may be written again. A replica that fails calls
 * {@link Exchange.fail}: the others, waiting, throw instead of waiting for ever.
 *
 * @example Two exchanges of one buffer, as two threads would hold them.
 * ```ts
 * import { Exchange, exchangeBuffer } from "./allreduce.ts";
 * const buffer = exchangeBuffer(2, 3);
 * const a = new Exchange(buffer, 0, 2);
 * // in a worker: new Exchange(buffer, 1, 2).mean([Float32Array.of(3, 4, 5)]);
 * // a.mean([Float32Array.of(1, 2, 3)]) → [Float32Array [2, 3, 4]] on both
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { GradientReduce } from "../stages/train_step.ts";

/** Control words at the buffer's start: arrivals, the barrier's generation, a failure. */
const COUNT = 0;
const GENERATION = 1;
const FAILED = 2;
const CONTROL_BYTES = 16;

/** A buffer for `size` replicas exchanging up to `capacity` floats each. */
export const exchangeBuffer = (size: number, capacity: number): SharedArrayBuffer =>
  new SharedArrayBuffer(CONTROL_BYTES + size * capacity * 4);

/** One replica's end of an exchange buffer. */
export class Exchange {
  readonly #control: Int32Array;
  readonly #slots: Float32Array[];
  /** Floats one exchange may carry. */
  readonly capacity: number;

  /**
   * `rank` in [0, size); `timeoutMs`: how long a barrier waits for the others before it
   * throws (a replica that died without calling fail()).
   */
  constructor(
    buffer: SharedArrayBuffer,
    readonly rank: number,
    readonly size: number,
    readonly timeoutMs = 300_000,
  ) {
    this.capacity = (buffer.byteLength - CONTROL_BYTES) / 4 / size;
    if (!Number.isInteger(this.capacity) || rank < 0 || rank >= size) {
      throw new RangeError(`exchange: rank ${rank} of ${size} does not fit its buffer`);
    }
    this.#control = new Int32Array(buffer, 0, CONTROL_BYTES / 4);
    this.#slots = Array.from(
      { length: size },
      (_, r) => new Float32Array(buffer, CONTROL_BYTES + r * this.capacity * 4, this.capacity),
    );
  }

  /** Waits until every replica has arrived here. */
  barrier(): void {
    const c = this.#control;
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.add(c, COUNT, 1) === this.size - 1) {
      Atomics.store(c, COUNT, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(c, GENERATION) === generation) {
      if (Atomics.load(c, FAILED)) throw new Error("exchange: another replica failed");
      if (Date.now() > deadline) {
        throw new Error(`exchange: no word from the other replicas in ${this.timeoutMs} ms`);
      }
      Atomics.wait(c, GENERATION, generation, 500);
    }
  }

  /**
   * The element-wise mean over replicas of `parts` (every replica passes parts of the
   * same lengths), the same bits on each. Throws when the parts exceed the capacity.
   */
  mean(parts: readonly Float32Array[]): Float32Array[] {
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (total > this.capacity) {
      throw new RangeError(`exchange: ${total} values, the buffer holds ${this.capacity}`);
    }
    const own = this.#slots[this.rank];
    let at = 0;
    for (const p of parts) {
      own.set(p, at);
      at += p.length;
    }
    this.barrier();
    at = 0;
    const scale = 1 / this.size;
    const out = parts.map((p) => {
      const sum = this.#slots[0].slice(at, at + p.length);
      for (let r = 1; r < this.size; r++) {
        const slot = this.#slots[r];
        for (let i = 0; i < sum.length; i++) sum[i] += slot[at + i];
      }
      for (let i = 0; i < sum.length; i++) sum[i] *= scale;
      at += p.length;
      return sum;
    });
    this.barrier();
    return out;
  }

  /** Marks the exchange failed and wakes the replicas waiting at a barrier. */
  fail(): void {
    Atomics.store(this.#control, FAILED, 1);
    Atomics.notify(this.#control, GENERATION);
  }
}

/** A step's {@link GradientReduce} through `exchange`: the mean of every replica's gradients. */
export const gradientMean = (exchange: Exchange): GradientReduce => (grads, vars) => {
  const means = exchange.mean(vars.map((v) => grads[v.name].dataSync() as Float32Array));
  return Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(means[i], v.shape)]));
};
