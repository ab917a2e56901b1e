/**
 * Loaded generators, one per checkpoint file, kept between requests (loading one takes
 * seconds) and reloaded when the file changes — `train` rewrites it at each epoch.
 * All work runs one job at a time: tfjs is single-threaded anyway, and it means a
 * generator is never disposed while a request is still using it.
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

interface Entry {
  /** mtime and size when loaded: a rename-over by `train` changes both or at least mtime. */
  readonly version: string;
  readonly gen: Generator;
}

export class GeneratorCache {
  #entries = new Map<string, Entry>();
  #queue: Promise<unknown> = Promise.resolve();
  /** How many times a checkpoint was (re)loaded; tests read it to see the cache work. */
  loads = 0;

  /** Runs `fn` with the generator of `path` (loaded or reloaded as needed), serialized. */
  use<T>(path: string, fn: (gen: Generator) => Promise<T>): Promise<T> {
    const job = this.#queue.then(async () => fn(await this.#get(path)));
    // The queue goes on after a failed job; the failure still reaches this caller.
    this.#queue = job.catch(() => {});
    return job;
  }

  async #get(path: string): Promise<Generator> {
    const stat = await Deno.stat(path);
    const version = `${stat.mtime?.getTime()}:${stat.size}`;
    const entry = this.#entries.get(path);
    if (entry?.version === version) return entry.gen;
    if (entry) {
      this.#entries.delete(path);
      disposeGenerator(entry.gen);
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
