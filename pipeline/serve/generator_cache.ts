/**
 * Loaded generators, one per checkpoint file, kept between requests (loading one takes
 * seconds) and reloaded when the file changes — `train` rewrites it at each epoch. At
 * most `maxEntries` stay loaded; the least recently used goes first.
 *
 * All work runs through one bounded {@link WorkQueue}, one job at a time: tfjs is
 * single-threaded anyway, and it means a generator is never disposed while a request is
 * still using it.
 *
 * @example
 * ```ts
 * import { GeneratorCache } from "./generator_cache.ts";
 * const cache = new GeneratorCache();
 * const images = await cache.use("runs/a/checkpoint.petal", (gen) =>
 *   generateImages(gen, ["a red flower"], new Rng(0).normals(gen.gan.model.zDim)));
 * cache.dispose();
 * ```
 */
import { disposeGenerator, type Generator, loadGenerator } from "../infer.ts";
import { WorkQueue, type WorkQueueOptions } from "./work_queue.ts";

interface Entry {
  /** mtime and size when loaded: a rename-over by `train` changes both or at least mtime. */
  readonly version: string;
  readonly gen: Generator;
}

export interface GeneratorCacheOptions extends Partial<WorkQueueOptions> {
  /** Generators kept loaded at once (a `reed` one is ~100 MB of tensors). */
  readonly maxEntries?: number;
}

/** Defaults: two loaded generators, four requests waiting, a minute per request. */
export const CACHE_DEFAULTS = { maxEntries: 2, maxWaiting: 4, timeoutMs: 60_000 } as const;

export class GeneratorCache {
  /** In use order: the first is the least recently used. */
  #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  /** The queue every job runs through. */
  readonly queue: WorkQueue;
  /** How many times a checkpoint was (re)loaded; tests read it to see the cache work. */
  loads = 0;

  constructor(opts: GeneratorCacheOptions = {}) {
    this.#maxEntries = Math.max(1, opts.maxEntries ?? CACHE_DEFAULTS.maxEntries);
    this.queue = new WorkQueue({
      maxWaiting: opts.maxWaiting ?? CACHE_DEFAULTS.maxWaiting,
      timeoutMs: opts.timeoutMs ?? CACHE_DEFAULTS.timeoutMs,
    });
  }

  /** Checkpoints loaded now, least recently used first. */
  get loaded(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Runs `fn` with the generator of `path` (loaded or reloaded as needed) in the queue.
   * Rejects as {@link WorkQueue.run} does when the queue is full, the time is up or
   * `signal` aborts first.
   */
  use<T>(path: string, fn: (gen: Generator) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.queue.run(async () => fn(await this.#get(path)), signal);
  }

  async #get(path: string): Promise<Generator> {
    const stat = await Deno.stat(path);
    const version = `${stat.mtime?.getTime()}:${stat.size}`;
    const entry = this.#entries.get(path);
    if (entry) this.#entries.delete(path);
    if (entry?.version === version) {
      this.#entries.set(path, entry); // now the most recently used
      return entry.gen;
    }
    if (entry) disposeGenerator(entry.gen);
    while (this.#entries.size >= this.#maxEntries) {
      const [oldest, e] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      disposeGenerator(e.gen);
    }
    const gen = await loadGenerator(path);
    this.loads++;
    this.#entries.set(path, { version, gen });
    return gen;
  }

  /** Frees every loaded generator. */
  dispose(): void {
    for (const e of this.#entries.values()) disposeGenerator(e.gen);
    this.#entries.clear();
  }
}
