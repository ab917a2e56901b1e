/**
 * Turns the inert value tree of a pickled pandas DataFrame (see `pickle.ts`) into plain rows,
 * without pandas or NumPy. It understands the layout pandas ≥ 0.14.1 writes: a `BlockManager`
 * whose state carries `{"0.14.1": {axes, blocks}}`, axes built by `_new_Index`, and block values
 * that are ndarrays rebuilt via `numpy.core.multiarray._reconstruct` + BUILD.
 *
 * @example
 * ```ts
 * import * as E from "fp-ts/Either";
 * import { pipe } from "fp-ts/function";
 * import { parsePickle } from "./pickle.ts";
 * import { readPandasDataFrame } from "./pandas.ts";
 * const path = "testData.pkl";
 * const frame = pipe(
 *   parsePickle(await Deno.readFile(path), path),
 *   E.flatMap((v) => readPandasDataFrame(v, path)),
 * ); // Right({ columns: ["ID", "Captions"], rows: [{ ID: 6734, Captions: [...] }, ...] })
 * ```
 */

import * as E from "fp-ts/Either";
import { type PetalError, petalError } from "../errors.ts";
import { decodeDtypeBytes, MAX_ELEMENTS, type NpyData, oneLine } from "./npy.ts";
import { isPyCall, isPyGlobal, type PyCall, type PyValue } from "./pickle.ts";

/** A DataFrame as plain data: column labels in order and one record per row. */
export interface DataFrameRows {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

/** A NumPy array recovered from a pickle: flat `data` in stored order (see `fortran`). */
export interface PickledNdarray {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly fortran: boolean;
  /** Decoded elements; object arrays keep their (plain-converted) Python values. */
  readonly data: NpyData | unknown[];
}

class FrameFailure extends Error {}

/** Nesting depth of lists inside a cell (a caption is one level; a hostile file, any). */
export const MAX_DEPTH = 64;
/** Rows of a frame (a RangeIndex says its length in two numbers, whatever the data holds). */
export const MAX_ROWS = 1 << 22;
/** Columns of a frame. */
export const MAX_COLUMNS = 1 << 16;

const fail = (message: string): never => {
  throw new FrameFailure(message);
};

// NumPy 2 moved `numpy.core` to `numpy._core`; pickles from either must read the same.
const RECONSTRUCT = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"];
const SCALAR = ["numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"];

const describe = (v: PyValue): string =>
  isPyCall(v)
    ? `a call to ${v.$call}`
    : isPyGlobal(v)
    ? `a reference to ${v.$global}`
    : v instanceof Map
    ? "a dict"
    : Array.isArray(v)
    ? "a list/tuple"
    : v instanceof Uint8Array
    ? "bytes"
    : v === null
    ? "None"
    : typeof v;

const asList = (v: PyValue | undefined, what: string): readonly PyValue[] =>
  Array.isArray(v) ? v : fail(`${what} should be a list or tuple, found ${describe(v ?? null)}`);

const asInt = (v: PyValue | undefined, what: string): number =>
  typeof v === "number" && Number.isInteger(v)
    ? v
    : fail(`${what} should be an integer, found ${describe(v ?? null)}`);

const asMap = (v: PyValue | undefined, what: string): Map<PyValue, PyValue> =>
  v instanceof Map ? v : fail(`${what} should be a dict, found ${describe(v ?? null)}`);

/**
 * `numpy.dtype(name, 0, 1)` + BUILD `(3, byteorder, ..., elsize, alignment, flags)` → the
 * header-style dtype string `parseNpy` also uses (`<i8`, `<U1`, `|O`, `|b1`).
 */
const dtypeString = (v: PyValue): string => {
  if (!isPyCall(v, "numpy.dtype")) return fail(`expected a numpy.dtype, found ${describe(v)}`);
  const name = v.args[0];
  if (typeof name !== "string") return fail("numpy.dtype without a type name");
  if (name.startsWith("O")) return "|O";
  const state = Array.isArray(v.state) ? v.state : [];
  const order = typeof state[1] === "string" ? state[1] : "|";
  const elsize = state[5];
  // Flexible types pickle as bare "U"/"S" with the width only in the state's elsize.
  if (/^[US]$/.test(name) && typeof elsize === "number" && elsize > 0) {
    return `${order}${name}${name === "U" ? elsize / 4 : elsize}`;
  }
  return `${order}${name}`;
};

/** Decodes raw bytes of a non-object dtype, as a thrown failure rather than an Either. */
const decodeRaw = (dtype: string, bytes: Uint8Array, count: number): NpyData => {
  const r = decodeDtypeBytes(dtype, bytes, count, "");
  return E.isRight(r) ? r.right : fail(r.left.message);
};

const smallInt = (b: bigint): number | bigint =>
  b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;

/** One decoded element → a plain JS value (int64 as Number while it is exact). */
const elementAt = (data: NpyData, i: number): unknown => {
  const x = data[i];
  return typeof x === "bigint" ? smallInt(x) : x;
};

/** Python 2 pickles carry raw array bytes as a Latin-1 `str`; map it back to bytes. */
const rawBytes = (v: PyValue, what: string): Uint8Array =>
  v instanceof Uint8Array
    ? v
    : typeof v === "string"
    ? Uint8Array.from(v, (c) => c.charCodeAt(0) & 0xff)
    : fail(`${what} should be bytes, found ${describe(v)}`);

/**
 * Converts pickled NumPy pieces inside a value to plain JS: numpy scalars (`scalar(dtype,
 * bytes)`) → number/string/boolean, ndarrays → their flat element arrays, tuples/lists
 * recursively. Anything else is returned unchanged.
 *
 * @example
 * ```ts
 * import { toPlain } from "./pandas.ts";
 * const dtype = { $call: "numpy.dtype", args: ["U1", 0, 1], state: [3, "<", null, null, null, 4, 4, 8] };
 * toPlain({ $call: "numpy.core.multiarray.scalar", args: [dtype, new Uint8Array([0x37, 0, 0, 0])] }); // "7"
 * ```
 */
export const toPlain = (v: PyValue): unknown => plain(v, 0, new Map());

/**
 * {@link toPlain} with its bounds: each list converted once (a pickle's memo can share one
 * list many times, or nest a list inside itself), at most {@link MAX_DEPTH} deep.
 */
const plain = (v: PyValue, depth: number, done: Map<object, unknown>): unknown => {
  if (depth > MAX_DEPTH) return fail(`values nest deeper than ${MAX_DEPTH} levels`);
  if (typeof v !== "object" || v === null) return v;
  if (done.has(v)) {
    const seen = done.get(v);
    return seen === IN_PROGRESS ? fail("a list contains itself") : seen;
  }
  done.set(v, IN_PROGRESS);
  const out = Array.isArray(v)
    ? v.map((x) => plain(x, depth + 1, done))
    : isPyCall(v, ...SCALAR)
    ? scalarValue(v)
    : isPyCall(v, ...RECONSTRUCT)
    ? ndarrayPlain(ndarrayOrThrow(v, depth + 1, done))
    : v;
  done.set(v, out);
  return out;
};

const IN_PROGRESS = Symbol("in progress");

const ndarrayPlain = (arr: PickledNdarray): unknown[] =>
  Array.isArray(arr.data)
    ? arr.data
    : Array.from(arr.data as ArrayLike<unknown>, (x) => typeof x === "bigint" ? smallInt(x) : x);

const scalarValue = (v: PyCall): unknown => {
  const [dtype, raw] = v.args;
  const d = dtypeString(dtype);
  if (d === "|O") return fail("object-dtype numpy scalar cannot be decoded");
  return elementAt(decodeRaw(d, rawBytes(raw, "numpy scalar payload"), 1), 0);
};

/** `_reconstruct(ndarray, (0,), b'b')` + BUILD `(version, shape, dtype, isFortran, rawdata)`. */
const ndarrayOrThrow = (
  v: PyValue,
  depth = 0,
  done: Map<object, unknown> = new Map(),
): PickledNdarray => {
  if (!isPyCall(v, ...RECONSTRUCT)) return fail(`expected a numpy array, found ${describe(v)}`);
  const state = asList(v.state, "ndarray state");
  if (state.length !== 5) fail(`ndarray state has ${state.length} fields, expected 5`);
  const [, shapeV, dtypeV, fortranV, raw] = state;
  const dims = asList(shapeV, "ndarray shape");
  if (dims.length > 32) fail(`ndarray has ${dims.length} dimensions`);
  const shape = dims.map((d) => asInt(d, "ndarray dimension"));
  if (shape.some((d) => d < 0)) fail(`ndarray shape ${JSON.stringify(shape)} is negative`);
  const dtype = dtypeString(dtypeV);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) fail(`ndarray of ${count} elements is beyond ${MAX_ELEMENTS}`);
  const fortran = fortranV === true;
  if (dtype === "|O") {
    // Object arrays pickle their elements as an ordinary Python list.
    const items = asList(raw, "object array contents");
    if (items.length !== count) {
      fail(`object array has ${items.length} items, shape needs ${count}`);
    }
    return { shape, dtype, fortran, data: items.map((x) => plain(x, depth + 1, done)) };
  }
  return { shape, dtype, fortran, data: decodeRaw(dtype, rawBytes(raw, "ndarray data"), count) };
};

/**
 * Decodes a pickled NumPy array (the `_reconstruct` + BUILD form pandas and NumPy emit).
 *
 * @example
 * ```ts
 * import { readPickledNdarray } from "./pandas.ts";
 * // value: a PyCall from parsePickle for np.array([[1, 2]], dtype="<i8")
 * // readPickledNdarray(value, "x.pkl") → Right({ shape: [1, 2], dtype: "<i8", fortran: false, data: BigInt64Array [1n, 2n] })
 * ```
 */
export const readPickledNdarray = (
  value: PyValue,
  path: string,
): E.Either<PetalError, PickledNdarray> => guard(path, () => ndarrayOrThrow(value));

/** A pandas Index: its labels, or for a RangeIndex its (start, step, length) alone. */
type Index =
  | { readonly range: true; readonly start: number; readonly step: number; readonly length: number }
  | { readonly range: false; readonly labels: unknown[] };

/** A pandas Index as rebuilt by `_new_Index(cls, {data | start/stop/step, name})`. */
const readIndex = (v: PyValue): Index => {
  if (!isPyCall(v)) return fail(`expected a pandas Index, found ${describe(v)}`);
  const [cls, attrs] = v.args;
  const clsName = isPyGlobal(cls) ? cls.$global : v.$call;
  const d = asMap(attrs ?? v.state ?? null, `${clsName} attributes`);
  if (clsName.endsWith("RangeIndex")) {
    const start = asInt(d.get("start") ?? 0, "RangeIndex start");
    const stop = asInt(d.get("stop") ?? null, "RangeIndex stop");
    const step = asInt(d.get("step") ?? 1, "RangeIndex step");
    if (step === 0) fail("RangeIndex step is 0");
    const length = Math.max(0, Math.ceil((stop - start) / step));
    // Two numbers can claim any length: bound it before anything is allocated.
    if (!Number.isSafeInteger(length) || length > MAX_ROWS) {
      fail(`RangeIndex of ${length} labels is beyond ${MAX_ROWS}`);
    }
    return { range: true, start, step, length };
  }
  const data = d.get("data");
  if (data === undefined) return fail(`${clsName} has no 'data'`);
  const arr = ndarrayOrThrow(data);
  return {
    range: false,
    labels: Array.isArray(arr.data)
      ? arr.data
      : Array.from({ length: arr.data.length }, (_, i) => elementAt(arr.data as NpyData, i)),
  };
};

const indexLength = (index: Index): number => index.range ? index.length : index.labels.length;

/** Labels of an Index, at most `max` of them. */
const indexLabels = (v: PyValue, max: number, what: string): unknown[] => {
  const index = readIndex(v);
  if (indexLength(index) > max) fail(`${indexLength(index)} ${what} is more than ${max}`);
  return index.range
    ? Array.from({ length: index.length }, (_, i) => index.start + i * index.step)
    : index.labels;
};

/** `mgr_locs`: which DataFrame columns a block holds — a `slice` or an int array. */
const blockLocs = (v: PyValue | undefined, n: number): number[] => {
  if (isPyCall(v, "builtins.slice", "__builtin__.slice")) {
    const [start, stop, step] = v.args;
    const s = start === null || start === undefined ? 0 : asInt(start, "slice start");
    const st = step === null || step === undefined ? 1 : asInt(step, "slice step");
    if (n > MAX_COLUMNS) fail(`a block of ${n} columns is more than ${MAX_COLUMNS}`);
    const locs = Array.from({ length: n }, (_, i) => s + i * st);
    if (stop !== null && stop !== undefined && locs.some((l) => l >= asInt(stop, "slice stop"))) {
      fail("block mgr_locs slice is shorter than the block");
    }
    return locs;
  }
  const arr = ndarrayOrThrow(v ?? null);
  return Array.from({ length: arr.data.length }, (_, i) => Number(arr.data[i]));
};

const frameOrThrow = (value: PyValue): DataFrameRows => {
  if (!isPyCall(value) || !value.$call.endsWith(".DataFrame")) {
    return fail(`top-level object is ${describe(value)}, not a pandas DataFrame`);
  }
  const attrs = asMap(value.state ?? null, "DataFrame state");
  // pandas < 1.1 named the manager `_data`, newer versions `_mgr`.
  const mgr = attrs.get("_mgr") ?? attrs.get("_data");
  if (!isPyCall(mgr) || !mgr.$call.endsWith("BlockManager")) {
    return fail("DataFrame state has no BlockManager (_mgr/_data)");
  }
  const mgrState = asList(mgr.state, "BlockManager state");
  const extra = mgrState[3];
  const modern = extra instanceof Map ? extra.get("0.14.1") : undefined;
  if (!(modern instanceof Map)) {
    return fail("BlockManager state lacks the '0.14.1' layout (pickled by pandas before 0.14.1?)");
  }
  const [colAxis, rowAxis] = asList(modern.get("axes"), "BlockManager axes");
  const columns = indexLabels(colAxis ?? null, MAX_COLUMNS, "columns").map(String);
  if (columns.length === 0) fail("the frame has no columns");
  const nRows = indexLength(readIndex(rowAxis ?? null));
  if (nRows > MAX_ROWS) fail(`${nRows} rows is more than ${MAX_ROWS}`);
  const columnData: (readonly unknown[] | undefined)[] = columns.map(() => undefined);
  for (const b of asList(modern.get("blocks"), "BlockManager blocks")) {
    const block = asMap(b, "block");
    const arr = ndarrayOrThrow(block.get("values") ?? null);
    // Blocks are 2-D (columns-in-block × rows); 1-D values (extension blocks) hold one column.
    const [nItems, blockRows] = arr.shape.length === 2 ? arr.shape : [1, arr.shape[0] ?? 0];
    if (blockRows !== nRows) fail(`a block has ${blockRows} rows but the index has ${nRows}`);
    const locs = blockLocs(block.get("mgr_locs"), nItems);
    if (locs.length !== nItems) {
      fail(`block mgr_locs names ${locs.length} columns, block has ${nItems}`);
    }
    locs.forEach((col, item) => {
      if (col < 0 || col >= columns.length) {
        fail(`block refers to column ${col} of ${columns.length}`);
      }
      columnData[col] = Array.from({ length: nRows }, (_, row) => {
        const i = arr.fortran ? row * nItems + item : item * nRows + row;
        return Array.isArray(arr.data) ? arr.data[i] : elementAt(arr.data as NpyData, i);
      });
    });
  }
  const missing = columns.filter((_, i) => columnData[i] === undefined);
  if (missing.length > 0) fail(`no block holds column(s) ${missing.join(", ")}`);
  const rows = Array.from(
    { length: nRows },
    (_, r) => Object.fromEntries(columns.map((c, i) => [c, columnData[i]![r]])),
  );
  return { columns, rows };
};

const guard = <T>(path: string, f: () => T): E.Either<PetalError, T> => {
  try {
    return E.right(f());
  } catch (e) {
    return E.left(
      petalError(
        "BadFormat",
        path,
        `not a pandas DataFrame this reader understands: ${oneLine(e)}`,
        "re-save it with pandas ≥ 0.14.1 (df.to_pickle) using int64/float64/object columns",
      ),
    );
  }
};

/**
 * Reads a pickled pandas DataFrame (the value from `parsePickle`) into columns and row records.
 * Supported block dtypes: int64 (→ number; bigint beyond 2^53), other fixed-size numerics, bool,
 * fixed-width strings, and object blocks (Python values, with numpy scalars made plain).
 *
 * @example
 * ```ts
 * import * as E from "fp-ts/Either";
 * import { parsePickle } from "./pickle.ts";
 * import { readPandasDataFrame } from "./pandas.ts";
 * const v = parsePickle(await Deno.readFile("testData.pkl"), "testData.pkl");
 * const df = E.isRight(v) ? readPandasDataFrame(v.right, "testData.pkl") : v;
 * // Right({ columns: ["ID", "Captions"], rows: [...819 records] })
 * ```
 */
export const readPandasDataFrame = (
  value: PyValue,
  path: string,
): E.Either<PetalError, DataFrameRows> => guard(path, () => frameOrThrow(value));
