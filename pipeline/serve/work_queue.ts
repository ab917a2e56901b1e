/**
 * A bounded queue of jobs run one at a time: tfjs is single-threaded anyway, and one job
 * at a time means a generator is never disposed while another job uses it.
 *
 * Bounded three ways: at most `maxWaiting` jobs wait behind the running one (one more is
 * refused at once with {@link QueueFull}); a job that has not finished `timeoutMs` after
 * it was queued is answered with {@link QueueTimeout} (a waiting one is dropped; a
 * running one cannot be interrupted, so it finishes unseen and the queue stays busy
 * until it does); and a job whose `signal` aborts (its client went away) is dropped
 * while it waits.
 *
 * @example
 * ```ts
 * import { WorkQueue } from "./work_queue.ts";
 * const q = new WorkQueue({ maxWaiting: 4, timeoutMs: 60_000 });
 * const n = await q.run(async () => 42, request.signal); // 42
 * ```
 */

/** The queue is full: try again later. */
export class QueueFull extends Error {
  constructor(readonly waiting: number) {
    super(`busy: ${waiting} requests are already waiting`);
    this.name = "QueueFull";
  }
}

/** The job did not finish within the time limit. */
export class QueueTimeout extends Error {
  constructor(readonly ms: number) {
    super(`the request took longer than ${ms / 1000} s`);
    this.name = "QueueTimeout";
  }
}

/** The job's client went away before it ran. */
export class QueueAborted extends Error {
  constructor() {
    super("the client went away");
    this.name = "QueueAborted";
  }
}

export interface WorkQueueOptions {
  /** Jobs that may wait behind the running one. */
  readonly maxWaiting: number;
  /** Time from queueing to answer, in ms. */
  readonly timeoutMs: number;
}

interface Waiting {
  readonly start: () => void;
  readonly drop: (e: Error) => void;
}

export class WorkQueue {
  readonly #opts: WorkQueueOptions;
  readonly #waiting: Waiting[] = [];
  #busy = false;
  /** Jobs dropped before they ran (timeout or abort); tests read it. */
  dropped = 0;

  constructor(opts: WorkQueueOptions) {
    this.#opts = opts;
  }

  /** Jobs waiting now (not counting the running one). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Whether a job is running now. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Runs `job` when its turn comes. Rejects with {@link QueueFull} at once when
   * `maxWaiting` jobs already wait, {@link QueueTimeout} after `timeoutMs`, or
   * {@link QueueAborted} when `signal` aborts before the job started.
   */
  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new QueueAborted());
    if (this.#busy && this.#waiting.length >= this.#opts.maxWaiting) {
      return Promise.reject(new QueueFull(this.#waiting.length));
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        f();
      };
      const entry: Waiting = {
        start: () => {
          this.#busy = true;
          // The queue moves on first, so a caller that gets its answer finds it free.
          job().then(
            (v) => (this.#next(), settle(() => resolve(v))),
            (e) => (this.#next(), settle(() => reject(e))),
          );
        },
        drop: (e) => settle(() => reject(e)),
      };
      const leave = (e: Error) => {
        const at = this.#waiting.indexOf(entry);
        if (at >= 0) {
          this.#waiting.splice(at, 1);
          this.dropped++;
        }
        entry.drop(e);
      };
      const onAbort = () => {
        // Running: it cannot be stopped; its answer goes nowhere.
        if (this.#waiting.includes(entry)) leave(new QueueAborted());
      };
      const timer = setTimeout(
        () => leave(new QueueTimeout(this.#opts.timeoutMs)),
        this.#opts.timeoutMs,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      if (this.#busy) this.#waiting.push(entry);
      else entry.start();
    });
  }

  #next(): void {
    this.#busy = false;
    const entry = this.#waiting.shift();
    entry?.start();
  }
}
