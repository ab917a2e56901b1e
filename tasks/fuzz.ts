/**
 * `deno task fuzz [--cases 10000] [--seed 1] [--only NAME]`: property tests of every
 * reader of outside files, on mutated real inputs (fast-check). Each target starts from
 * a good file — the task's testData.pkl and word2Id.npy, a caption CSV, a Reed caption
 * file, a JPEG and a checkpoint (real ones from ../shared where present, else made in
 * code) — and reads it after a few byte mutations (flips, set bytes, extreme 32-bit
 * values, cuts, inserts, deletions, repeats; most of them in the file's header).
 *
 * Properties, per case: the reader answers (a value or a typed error, never a throw); an
 * error is one line naming the file, no stack trace; it takes under {@link HANG_MS};
 * live tensors are as before and the process stays under {@link RSS_GROWTH} above where
 * it started. Before and after the run the good file still loads.
 *
 * tests/fuzz_test.ts runs the same targets with a few dozen cases each.
 */
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import * as E from "fp-ts/Either";
import type { PetalError } from "../pipeline/io/errors.ts";
import { loadTaskDictionary, readTestDataPkl } from "../pipeline/io/formats/task.ts";
import { loadReedFolder, parseTestCaptions } from "../pipeline/io/data.ts";
import { decodeImageTE, encodeJpeg } from "../pipeline/io/images.ts";
import {
  checkpointBytes,
  checkpointParts,
  writeGeneratorCheckpoint,
} from "../pipeline/io/checkpoint.ts";
import { disposeGenerator, loadGenerator } from "../pipeline/infer.ts";
import { modelConfig } from "../stages/config.ts";
import { defaultTrainConfig } from "../stages/recipe.ts";
import { createGan, disposeGan } from "../stages/train_step.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, runTask, SHARED } from "./cli.ts";

/** A case slower than this is a hang. */
export const HANG_MS = 2000;
/** How far the resident memory may grow above its level at the start of a run. */
export const RSS_GROWTH = 1 << 30;

/** A reader's answer: a value, or the typed error it refused the file with. */
export type Outcome = E.Either<PetalError, unknown>;

/** One reader under fuzz. */
export interface FuzzTarget {
  /** Short name: `pickle`, `npy`, `csv`, `reed`, `jpeg`, `checkpoint`. */
  readonly name: string;
  /** The good input and where it came from (a real file, or `made in code`). */
  readonly good: () => Promise<{ bytes: Uint8Array; source: string } | undefined>;
  /** Bytes at the start where most mutations land (the header). */
  readonly hot: (good: Uint8Array) => number;
  /** Reads (mutated) bytes as the file `path` names; frees whatever it loaded. */
  readonly read: (bytes: Uint8Array) => Promise<{ outcome: Outcome; path: string }>;
  /** Structured variants of the good file besides byte mutations (a checkpoint's header fields). */
  readonly edits?: (good: Uint8Array) => fc.Arbitrary<Uint8Array>;
}

const readIfThere = async (path: string) => {
  try {
    return { bytes: await Deno.readFile(path), source: path };
  } catch {
    return undefined;
  }
};

/** A version 1 `.npy` of fixed-width strings, `rows` × `rows[0].length`. */
export function stringsNpy(rows: readonly string[][]): Uint8Array {
  const width = Math.max(1, ...rows.flat().map((s) => s.length));
  let header = `{'descr': '<U${width}', 'fortran_order': False, 'shape': (${rows.length}, ${
    rows[0].length
  }), }`;
  header = header.padEnd(Math.ceil((header.length + 11) / 64) * 64 - 11) + "\n";
  const data = new Uint32Array(rows.length * rows[0].length * width);
  rows.flat().forEach((s, i) =>
    [...s].forEach((c, k) => (data[i * width + k] = c.codePointAt(0)!))
  );
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}

const SMALL_PAIRS: string[][] = [["<PAD>", "5427"], ["<RARE>", "5428"], ["red", "1"], [
  "petals",
  "2",
]];

const tempDir = (() => {
  let dir: string | undefined;
  return () => (dir ??= Deno.makeTempDirSync({ prefix: "petal-fuzz-" }));
})();

const COMPETITION = `${SHARED}/competition`;
const OXFORD = `${SHARED}/oxford102`;

const pickle: FuzzTarget = {
  name: "pickle",
  good: () => readIfThere(`${COMPETITION}/dataset/testData.pkl`),
  hot: (b) => Math.min(b.length, 4096),
  read: (bytes) => {
    const path = "testData.pkl";
    return Promise.resolve({ outcome: readTestDataPkl(bytes, path), path });
  },
};

const npy: FuzzTarget = (() => {
  let companion: Uint8Array | undefined;
  const id2Word = async () =>
    companion ??= (await readIfThere(`${COMPETITION}/dictionary/id2Word.npy`))?.bytes ??
      stringsNpy(SMALL_PAIRS.map(([w, id]) => [id, w]));
  return {
    name: "npy",
    good: async () =>
      await readIfThere(`${COMPETITION}/dictionary/word2Id.npy`) ??
        { bytes: stringsNpy(SMALL_PAIRS), source: "word2Id.npy made in code" },
    hot: (b) => Math.min(b.length, 256),
    read: async (bytes) => {
      const paths = { word2Id: "word2Id.npy", id2Word: "id2Word.npy" };
      return { outcome: loadTaskDictionary(bytes, await id2Word(), paths), path: paths.word2Id };
    },
  };
})();

const csv: FuzzTarget = {
  name: "csv",
  good: async () =>
    await readIfThere(`${OXFORD}/test_captions.csv`) ?? {
      bytes: new TextEncoder().encode(
        'id,caption\n1,"red petals, yellow centre"\n2,white petals\n3,a pink flower\n',
      ),
      source: "a caption CSV made in code",
    },
  hot: (b) => Math.min(b.length, 512),
  read: (bytes) => {
    const path = "test_captions.csv";
    // As Deno.readTextFile decodes a file: invalid UTF-8 becomes U+FFFD.
    return Promise.resolve({
      outcome: parseTestCaptions(new TextDecoder().decode(bytes), path),
      path,
    });
  },
};

/** A two-image Reed folder whose first caption file is the mutated one. */
const reed: FuzzTarget = (() => {
  let root: string | undefined;
  const folder = () => {
    if (root) return root;
    root = `${tempDir()}/reed`;
    Deno.mkdirSync(`${root}/images`, { recursive: true });
    Deno.mkdirSync(`${root}/text_c10/class_00001`, { recursive: true });
    for (const id of ["00001", "00002"]) {
      Deno.writeFileSync(`${root}/images/image_${id}.jpg`, new Uint8Array(4));
    }
    Deno.writeTextFileSync(`${root}/text_c10/class_00001/image_00002.txt`, "white petals\n");
    return root;
  };
  return {
    name: "reed",
    good: async () =>
      await readIfThere(`${OXFORD}/text_c10/class_00001/image_06734.txt`) ?? {
        bytes: new TextEncoder().encode("this flower has red petals\nred petals, yellow centre\n"),
        source: "a caption file made in code",
      },
    hot: (b) => b.length,
    read: async (bytes) => {
      const dir = folder();
      const path = `${dir}/text_c10/class_00001/image_00001.txt`;
      await Deno.writeFile(path, bytes);
      return { outcome: await loadReedFolder(dir)(), path };
    },
  };
})();

const jpeg: FuzzTarget = {
  name: "jpeg",
  good: async () =>
    await readIfThere(`${OXFORD}/images/image_00001.jpg`) ?? {
      bytes: await encodeJpeg(Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => i % 251), 32),
      source: "a JPEG made in code",
    },
  hot: (b) => Math.min(b.length, 1024),
  read: async (bytes) => {
    const path = "image_00001.jpg";
    return { outcome: await decodeImageTE(path, 64, bytes)(), path };
  },
};

const checkpoint: FuzzTarget = {
  name: "checkpoint",
  good: async () => {
    const vocabulary = SMALL_PAIRS.map(([w]) => w);
    const gan = createGan(modelConfig("small", vocabulary.length), defaultTrainConfig(), 0);
    try {
      const dir = `${tempDir()}/good`;
      const path = await writeGeneratorCheckpoint(dir, gan, {
        step: 1,
        epoch: 0,
        imagesSeen: 8,
        seconds: 1,
      }, vocabulary);
      return {
        bytes: await Deno.readFile(path),
        source: "a small generator checkpoint made in code",
      };
    } finally {
      disposeGan(gan);
    }
  },
  hot: (b) => 12 + new DataView(b.buffer, b.byteOffset).getUint32(8, true),
  edits: headerEdits,
  read: async (bytes) => {
    const path = `${tempDir()}/fuzzed.petal`;
    await Deno.writeFile(path, bytes);
    try {
      disposeGenerator(await loadGenerator(path));
      return { outcome: E.right(undefined), path };
    } catch (e) {
      const error = (e as { error?: PetalError }).error;
      if (error) return { outcome: E.left(error), path };
      throw e;
    }
  },
};

/** Every path to a value in a JSON tree, e.g. `["tensors", 3, "offset"]`. */
function jsonPaths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== "object" || v === null) return [at];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [at, ...keys.flatMap((k) => jsonPaths((v as Record<string, unknown>)[k], [...at, k]))];
}

/** Values a hostile header might hold where a number, list or name is expected. */
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    -4,
    0.5,
    1e9,
    2 ** 31,
    2 ** 53,
    -(2 ** 53),
    1e308,
    "",
    "float64",
    null,
    true,
  ),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.array(fc.integer({ min: -8, max: 1 << 20 }), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
);

/**
 * A checkpoint with one to three header values replaced (or removed): field-level edits
 * that byte flips rarely make, e.g. a negative offset or a string shape.
 */
function headerEdits(good: Uint8Array): fc.Arbitrary<Uint8Array> {
  const { header, data } = checkpointParts(good) as {
    header: ReturnType<typeof JSON.parse>;
    data: Uint8Array;
  };
  const paths = jsonPaths(header).filter((p) => p.length > 0);
  const edit = fc.record({
    path: fc.constantFrom(...paths),
    value: hostileJson,
    remove: fc.boolean(),
  });
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const h = structuredClone(header);
    for (const { path, value, remove } of edits) {
      let parent = h;
      for (const k of path.slice(0, -1)) parent = parent?.[k];
      if (typeof parent !== "object" || parent === null) continue;
      const key = path[path.length - 1];
      if (remove && !Array.isArray(parent)) delete parent[key];
      else parent[key] = value;
    }
    return checkpointBytes(h, [data]);
  });
}

/** Every target, in the order the task runs them. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [pickle, npy, csv, reed, jpeg, checkpoint];

/** One byte-level change to a file. */
type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "u32"; at: number; value: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "repeat"; at: number; length: number; times: number };

/** Mutations of a file of `length` bytes whose first `hot` bytes are its header. */
export function mutations(length: number, hot: number): fc.Arbitrary<Mutation[]> {
  const at = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: Math.max(0, hot - 1) }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: Math.max(0, length - 1) }) },
  );
  const extreme = fc.constantFrom(0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff);
  const one: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant("set" as const), at, value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("u32" as const), at, value: extreme }),
    fc.record({ kind: fc.constant("cut" as const), at }),
    fc.record({
      kind: fc.constant("insert" as const),
      at,
      bytes: fc.uint8Array({ maxLength: 16 }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
    }),
    fc.record({
      kind: fc.constant("repeat" as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
      times: fc.integer({ min: 1, max: 8 }),
    }),
  );
  return fc.array(one, { minLength: 1, maxLength: 6 });
}

/** `bytes` with `changes` applied in order (positions wrap to the current length). */
export function mutate(bytes: Uint8Array, changes: readonly Mutation[]): Uint8Array {
  let b = bytes.slice();
  for (const m of changes) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    const cat = (...parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((off, p) => (out.set(p, off), off + p.length), 0);
      return out;
    };
    if (m.kind === "flip" && b.length > 0) b[at] ^= 1 << m.bit;
    else if (m.kind === "set" && b.length > 0) b[at] = m.value;
    else if (m.kind === "u32" && b.length >= 4) {
      new DataView(b.buffer).setUint32(Math.min(at, b.length - 4), m.value, true);
    } else if (m.kind === "cut") b = b.slice(0, at);
    else if (m.kind === "insert") b = cat(b.subarray(0, at), m.bytes, b.subarray(at));
    else if (m.kind === "delete") b = cat(b.subarray(0, at), b.subarray(at + m.length));
    else if (m.kind === "repeat") {
      const piece = b.subarray(at, at + m.length);
      b = cat(b.subarray(0, at), ...Array(m.times + 1).fill(piece), b.subarray(at + m.length));
    }
  }
  return b;
}

/** What a run of one target found. */
export interface FuzzReport {
  readonly name: string;
  readonly source: string;
  readonly cases: number;
  /** 0, or 1 with the (shrunk) failing case: fast-check stops at the first. */
  readonly failures: number;
  readonly refused: number;
  readonly loaded: number;
  readonly slowestMs: number;
  readonly seconds: number;
  readonly failure?: string;
}

/** Checks one answer; throws a one-line reason when a property does not hold. */
function checkOutcome(outcome: Outcome, path: string): void {
  if (E.isRight(outcome)) return;
  const e = outcome.left;
  const line = `error: ${e.path}: ${e.message} — ${e.fix}`;
  if (typeof e.message !== "string" || e.message === "") {
    throw new Error("an error with no message");
  }
  if (/\n/.test(e.message) || /\n/.test(e.fix)) throw new Error(`not one line: ${line}`);
  if (/\bat .*:\d+:\d+/.test(line)) throw new Error(`a stack trace: ${line}`);
  if (!e.path.includes(path.split("/").pop()!)) throw new Error(`does not name ${path}: ${line}`);
}

/**
 * Runs `cases` mutated inputs of `target` through its reader, checking the properties
 * in the module doc. Undefined when the target's good file is not there.
 */
export async function fuzzTarget(
  target: FuzzTarget,
  cases: number,
  seed: number,
): Promise<FuzzReport | undefined> {
  const good = await target.good();
  if (!good) return undefined;
  const started = performance.now();
  const loadsGood = async (when: string) => {
    const { outcome, path } = await target.read(good.bytes);
    if (E.isLeft(outcome)) {
      throw new Error(
        `${target.name}: the good file does not load ${when}: ${outcome.left.message} (${path})`,
      );
    }
  };
  await loadsGood("before fuzzing");
  const rssLimit = Deno.memoryUsage().rss + RSS_GROWTH;
  let refused = 0;
  let loaded = 0;
  let slowestMs = 0;
  const mutated = mutations(good.bytes.length, target.hot(good.bytes))
    .map((changes) => mutate(good.bytes, changes));
  const inputs = target.edits
    ? fc.oneof({ weight: 2, arbitrary: mutated }, {
      weight: 1,
      arbitrary: target.edits(good.bytes),
    })
    : mutated;
  const property = fc.asyncProperty(
    inputs,
    async (bytes) => {
      const tensors = tf.memory().numTensors;
      const t0 = performance.now();
      let answer;
      try {
        answer = await target.read(bytes);
      } catch (e) {
        throw new Error(`threw instead of a typed error: ${String((e as Error)?.stack ?? e)}`);
      }
      const ms = performance.now() - t0;
      slowestMs = Math.max(slowestMs, ms);
      if (ms > HANG_MS) throw new Error(`took ${ms.toFixed(0)} ms (> ${HANG_MS})`);
      checkOutcome(answer.outcome, answer.path);
      if (tf.memory().numTensors !== tensors) {
        throw new Error(`left ${tf.memory().numTensors - tensors} tensors behind`);
      }
      const rss = Deno.memoryUsage().rss;
      if (rss > rssLimit) throw new Error(`resident memory ${(rss / 2 ** 20).toFixed(0)} MiB`);
      if (E.isLeft(answer.outcome)) refused++;
      else loaded++;
    },
  );
  const result = await fc.check(property, { numRuns: cases, seed, endOnFailure: true });
  await loadsGood("after fuzzing");
  return {
    name: target.name,
    source: good.source,
    cases: result.numRuns,
    failures: result.failed ? 1 : 0,
    refused,
    loaded,
    slowestMs,
    seconds: (performance.now() - started) / 1000,
    failure: result.failed
      ? `${
        result.errorInstance instanceof Error ? result.errorInstance.message : result.errorInstance
      } ` +
        `(seed ${result.seed}, path ${result.counterexamplePath})`
      : undefined,
  };
}

/** The record line of one report, as README keeps it. */
export const reportLine = (r: FuzzReport): string =>
  `fuzz ${r.name}: ${r.cases} cases, ${r.failures} failures (${r.refused} refused, ${r.loaded} read), ` +
  `slowest ${r.slowestMs.toFixed(0)} ms, ${r.seconds.toFixed(0)} s — ${r.source}`;

export const FUZZ = defineTask({
  name: "fuzz",
  summary: "property tests of every file reader on mutated real inputs (fast-check)",
  flags: {
    cases: {
      type: "number",
      integer: true,
      min: 1,
      default: 10000,
      arg: "N",
      help: "mutated inputs per reader",
    },
    seed: { type: "number", integer: true, default: 1, arg: "N", help: "fast-check seed" },
    only: {
      type: "string",
      arg: "NAME",
      help: "one reader: pickle, npy, csv, reed, jpeg or checkpoint",
    },
    backend: { ...BACKEND_FLAG, default: "cpu" },
  },
});

if (import.meta.main) {
  await runTask(FUZZ, async (values) => {
    const { useBackend } = await import("../pipeline/backends/backend.ts");
    await useBackend(values.backend);
    let failed = false;
    for (const target of FUZZ_TARGETS) {
      if (values.only !== undefined && values.only !== target.name) continue;
      const report = await fuzzTarget(target, values.cases, values.seed);
      if (!report) {
        console.log(`fuzz ${target.name}: skipped (its file is not there)`);
        continue;
      }
      console.log(reportLine(report));
      if (report.failure) {
        console.log(`  first failure: ${report.failure}`);
        failed = true;
      }
    }
    if (failed) Deno.exit(1);
  });
}
